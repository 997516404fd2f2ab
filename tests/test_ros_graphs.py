"""``up`` of the sim and hardware graphs as real processes, driven over DDS, then stopped with Ctrl-C."""
from __future__ import annotations

import io
import signal
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
import rclpy
import rclpy.signals
from rclpy.context import Context
from up_process import UpProcess

from robot_irl.graphs import GraphSpec, NodeSpec
from robot_irl.launcher import run_graph
from robot_irl.ros.probe import BackgroundSpinner, RobotProbe

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def context():
    ctx = Context()
    rclpy.init(args=[], context=ctx, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    yield ctx
    ctx.shutdown()


def positions(probe) -> np.ndarray:
    return np.asarray(probe.latest("joint_states").position)


def drive(probe, target, timeout=10.0) -> bool:
    """Publish ``target`` at ~50 Hz until /robot_irl/joint_states reach it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe.send_command(target)
        if probe.wait_for(lambda: np.allclose(positions(probe), target, atol=1e-3), 0.02):
            return True
    return False


def run_and_probe(context, check, **up_kwargs) -> str:
    """Start ``up`` in a child, run ``check(probe)``, Ctrl-C it and require a clean exit; return its output."""
    up = UpProcess(**up_kwargs)
    probe = RobotProbe(namespace="robot_irl", node_name="graph_test_probe", context=context)
    spinner = BackgroundSpinner(probe, context=context)
    try:
        assert probe.wait_for_driver(30.0), "the driver node did not come up"
        check(probe)
    finally:
        spinner.stop()
        probe.destroy_node()
        code, out = up.interrupt()
    assert code == 0, out
    assert "Traceback" not in out, out
    return out


def test_up_sim_graph(context):
    def check(probe):
        assert drive(probe, [0.3, -0.2, 0.1])
        assert probe.latest("instruction").data == "move the arm"

    out = run_and_probe(context, check, graph_name="bringup", driver="sim", backend="mock", rate=50.0, task="lift")
    assert "[driver_node]" in out and "note: task='lift'" in out


def test_up_hardware_graph_with_the_emulator(context):
    def check(probe):
        for _ in range(10):  # disarmed: commands are ignored
            probe.send_command([0.3, 0.0, 0.0])
            time.sleep(0.02)
        assert abs(positions(probe)[0]) < 1e-9
        assert probe.call("arm").success
        assert drive(probe, [0.3, -0.2, 0.1])
        assert probe.call("disarm").success

    out = run_and_probe(context, check, graph_name="bringup", driver="hardware", emulate=True,
                        emulator_backend="mock", rate=50.0)
    assert "[robot_emulator]" in out and "DISARMED" in out


def test_a_dying_node_stops_the_graph_with_a_non_zero_code():
    spec = GraphSpec("broken", [
        NodeSpec("robot_emulator", "robot_emulator", parameters={"backend": "mock",
                                                                 "joint_states_topic": "/broken/joint_states"}),
        NodeSpec("driver_node", "driver_node", namespace="broken",
                 parameters={"driver": "sim", "backend": "mock", "driver_config": '{"no_such_key": 1}'}),
    ])
    out = io.StringIO()
    started = time.monotonic()
    code = run_graph(spec, duration=60.0, out=out)
    assert code == 1, out.getvalue()
    assert time.monotonic() - started < 30.0
    text = out.getvalue()
    assert "no_such_key" in text and "driver_node exited with code 1" in text


def test_sigterm_stops_a_node_cleanly():
    from robot_irl.launcher import GraphProcesses

    spec = GraphSpec("one", [NodeSpec("driver_node", "driver_node", namespace="sigterm_test",
                                      parameters={"driver": "sim", "backend": "mock"})])
    out = io.StringIO()
    graph = GraphProcesses(spec, out=out).start()
    try:
        deadline = time.monotonic() + 30.0
        while "armed" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "armed" in out.getvalue(), out.getvalue()
        graph.procs["driver_node"].send_signal(signal.SIGTERM)
        assert graph.procs["driver_node"].wait(timeout=10.0) == 0, out.getvalue()
    finally:
        graph.stop()
