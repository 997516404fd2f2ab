"""The driver node in-process with the mock driver, talked to over real DDS by a probe node."""
from __future__ import annotations

import itertools
import json
import os

import numpy as np
import pytest

pytest.importorskip("rclpy")
import rclpy
import rclpy.signals
from rclpy.context import Context

from robot_irl.core.perturbation import Perturbation, PerturbationKind
from robot_irl.drivers.mock import MockArmConfig, MockArmDriver
from robot_irl.ros.driver_node import DriverNode, build_driver
from robot_irl.ros.probe import BackgroundSpinner, RobotProbe, watchdog_trial

pytestmark = pytest.mark.ros
_ids = itertools.count()


@pytest.fixture(scope="module")
def context():
    ctx = Context()
    rclpy.init(args=[], context=ctx, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    yield ctx
    ctx.shutdown()


@pytest.fixture
def rig(context):
    """``rig(**params)`` -> (node, probe): a mock arm at 50 Hz in a fresh namespace, discovered by the probe."""
    made = []

    def make(driver=None, **params):
        ns = f"dn_test_{os.getpid()}_{next(_ids)}"
        driver = driver or MockArmDriver(MockArmConfig(control_freq=50.0))
        node = DriverNode(driver, namespace=ns, context=context, parameter_overrides=params)
        probe = RobotProbe(namespace=ns, context=context)
        made.append((node, probe, BackgroundSpinner(node, probe, context=context)))
        assert probe.wait_for_driver(10.0), "driver node not discovered"
        return node, probe

    yield make
    for node, probe, spinner in made:
        spinner.stop()
        node.close()
        probe.destroy_node()


def positions(probe) -> np.ndarray:
    return np.asarray(probe.latest("joint_states").position)


def drive(probe, target, until, timeout=5.0) -> bool:
    """Publish ``target`` at ~50 Hz until ``until()`` holds."""
    for _ in range(int(timeout / 0.02)):
        probe.send_command(target)
        if probe.wait_for(until, 0.02):
            return True
    return False


def test_commands_move_the_joints_and_action_sent_reports_them(rig):
    node, probe = rig()
    target = [0.3, 0.2, -0.1]
    assert drive(probe, target, lambda: np.allclose(positions(probe), target, atol=1e-3))
    assert list(probe.latest("joint_states").name) == ["joint_0", "joint_1", "joint_2"]
    np.testing.assert_allclose(probe.latest("action_sent").data, target, atol=1e-6)
    assert node.rejected_commands == 0


def test_commands_are_clamped_and_the_clamped_action_is_reported(rig):
    _node, probe = rig()
    probe.send_command([2.4, 0.0, 0.0])  # far beyond the 2 rad/s * 20 ms step limit from 0

    def moving() -> list[float]:
        return [m.data[0] for _, m in probe.received["action_sent"] if m.data[0] > 0]

    assert probe.wait_for(lambda: len(moving()) > 0, 2.0)
    assert moving()[0] == pytest.approx(0.04, abs=1e-6)  # the first step, clamped to the step limit


def test_nan_and_wrong_length_commands_are_rejected_and_the_robot_holds(rig):
    node, probe = rig()
    assert drive(probe, [0.2, 0.0, 0.0], lambda: positions(probe)[0] > 0.15)
    probe.send_command([float("nan"), 0.0, 0.0])
    assert probe.wait_for(lambda: node.rejected_commands == 1, 2.0)
    probe.send_command([0.1, 0.2])
    assert probe.wait_for(lambda: node.rejected_commands == 2, 2.0)
    n = probe.count("joint_states")
    assert probe.wait_for(lambda: probe.count("joint_states") > n + 5, 2.0)
    held = positions(probe)
    assert np.all(np.isfinite(held))
    sent = np.asarray(probe.latest("action_sent").data)
    np.testing.assert_allclose(sent, held, atol=1e-5)  # the hold action is the measured position


def test_watchdog_holds_after_command_timeout(rig):
    node, probe = rig(command_timeout_ms=150)
    probe.send_command([1.0, 0.0, 0.0])  # one command, never repeated
    assert probe.wait_for(lambda: positions(probe)[0] > 0.02, 2.0)
    # after the timeout the node sends the hold action: the joint stops short of the target and stays
    assert probe.wait_for(lambda: node.last_source == "timeout", 2.0)
    stopped = positions(probe)[0]
    n = probe.count("joint_states")
    assert probe.wait_for(lambda: probe.count("joint_states") > n + 5, 2.0)
    assert positions(probe)[0] == pytest.approx(stopped, abs=1e-6)
    assert stopped < 0.5


def _sim_driver(backend: str):
    if backend == "mock":
        return MockArmDriver(MockArmConfig(control_freq=20.0))
    pytest.importorskip("mujoco")
    from robot_irl.drivers.mujoco_arm import MujocoArmDriver

    return MujocoArmDriver()


@pytest.mark.sim
@pytest.mark.parametrize("backend", ["mock", "mujoco_arm"])
def test_a_dead_operator_is_held_within_the_command_timeout(rig, backend):
    """Commands stop (the tele-operator died): the first hold comes within command_timeout_ms (default 100 ms),
    not at the next control tick after it, and the robot moves at most the steps taken before the deadline."""
    driver = _sim_driver(backend)
    node, probe = rig(driver)
    assert node.command_timeout_s == pytest.approx(0.1)  # the default
    period = 1.0 / driver.fps  # 50 ms: a tick-granular check would hold 100-150 ms late
    limits = driver.safety_limits
    max_step = np.asarray(limits.max_step if limits.max_step is not None
                          else np.asarray(limits.max_velocity) * limits.dt)
    target = np.asarray(limits.upper) * 0.9  # far away: the arm moves at full speed until held
    trials = [watchdog_trial(probe, target if i % 2 == 0 else np.asarray(limits.lower) * 0.9, period)
              for i in range(3)]
    latencies = sorted(t.latency_ms for t in trials)
    # margins for a loaded 2-core machine; a check at the control tick alone held after 144-148 ms here (median,
    # bench/RESULTS.md), 539-595 ms with the old 500 ms default, the arm moving 0.5-1.4 rad meanwhile
    assert latencies[1] < 100 + 25 and latencies[-1] < 100 + 100, latencies
    steps = int(np.ceil(0.1 / period)) + 1  # the last command's own tick and those before the deadline
    for trial in trials:
        assert trial.moved <= steps * float(np.max(max_step)) + 1e-6, trials
    assert node.last_source == "timeout"


def test_reset_service_returns_the_arm_home(rig):
    _node, probe = rig()
    assert drive(probe, [0.3, 0.0, 0.0], lambda: positions(probe)[0] > 0.25)
    response = probe.call("reset")
    assert response.success, response.message
    assert probe.wait_for(lambda: abs(positions(probe)[0]) < 1e-9, 2.0)


def test_disarmed_simulator_holds_until_armed(rig):
    node, probe = rig(start_armed=False)
    assert not node.armed
    for _ in range(10):
        probe.send_command([0.3, 0.0, 0.0])
        probe.wait_for(lambda: False, 0.02)
    assert positions(probe)[0] == pytest.approx(0.0)
    assert probe.call("arm").success and node.armed
    assert drive(probe, [0.3, 0.0, 0.0], lambda: positions(probe)[0] > 0.25)
    assert probe.call("disarm").success and not node.armed


def test_instruction_perturbation_round_trip(rig):
    _node, probe = rig()
    assert probe.wait_for(lambda: probe.latest("instruction") is not None, 2.0)
    assert probe.latest("instruction").data == "move the arm"
    probe.send_perturbation(Perturbation(PerturbationKind.INSTRUCTION, "task", {"text": "wave"}))
    event = probe.wait_for_message("perturbation_events")
    record = Perturbation.from_json(event.data)
    assert record.kind is PerturbationKind.INSTRUCTION and record.params["text"] == "wave"
    assert record.params["previous"] == "move the arm" and record.step is not None
    assert probe.wait_for(lambda: probe.latest("instruction").data == "wave", 2.0)


def test_malformed_and_unsupported_perturbations_become_error_events(rig):
    _node, probe = rig()
    probe.send_perturbation("{not json")
    event = json.loads(probe.wait_for_message("perturbation_events").data)
    assert "not JSON" in event["error"] and event["request"] == "{not json"
    probe.send_perturbation(Perturbation(PerturbationKind.PUSH, "cube", {"velocity": [0.1, 0, 0]}))
    event = json.loads(probe.wait_for_message("perturbation_events", after=1).data)
    assert "does not support push" in event["error"]
    n = probe.count("joint_states")
    assert probe.wait_for(lambda: probe.count("joint_states") > n, 2.0)  # the node is still running


def test_refused_perturbations_do_not_echo_huge_requests(rig):
    _node, probe = rig()
    probe.send_perturbation(Perturbation(PerturbationKind.INSTRUCTION, "task", {"text": "w" * 200_000}))
    event = probe.wait_for_message("perturbation_events")
    assert len(event.data) < 1500, len(event.data)
    data = json.loads(event.data)
    assert "max_instruction_chars" in data["error"] and data["request"]["kind"] == "instruction"
    assert probe.latest("instruction").data == "move the arm"  # nothing applied


def test_build_driver_from_parameters():
    driver = build_driver("sim", "mock", '{"joints": 4}')
    assert isinstance(driver, MockArmDriver) and driver.action_dim == 4
    with pytest.raises(ValueError, match="expected a mapping"):
        build_driver("sim", "mock", "[1, 2]")
