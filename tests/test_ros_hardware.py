"""The ros2_control bridge: it refuses to move until armed, then drives the emulator running as a real process."""
from __future__ import annotations

import io
import os
import threading
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
from robot_irl.core.contracts import DriverNotConnectedError
from robot_irl.drivers import make_driver
from robot_irl.graphs import GraphSpec, NodeSpec
from robot_irl.launcher import GraphProcesses
from robot_irl.ros.hardware_bridge import (
    NotArmedError,
    Ros2ControlBridgeConfig,
    Ros2ControlBridgeDriver,
    StaleJointStateError,
)

pytestmark = pytest.mark.ros


def topics(tag: str) -> dict[str, str]:
    """Private topic names so this test never hears another test's robot."""
    base = f"/hw_{tag}_{os.getpid()}"
    return {"joint_states_topic": f"{base}/joint_states", "command_topic": f"{base}/commands"}


def emulator_graph(tag: str) -> GraphSpec:
    return GraphSpec("emulator", [NodeSpec("robot_emulator", "robot_emulator", parameters={
        "backend": "mock", "driver_config": '{"control_freq": 50.0}', **topics(tag)})])


def wait_until(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_registry_builds_the_bridge_and_it_needs_a_connection():
    driver = make_driver("hardware", {"joint_names": ["a", "b"], "limits": {"a": {"upper": 1.0}}})
    assert isinstance(driver, Ros2ControlBridgeDriver) and driver.requires_arming
    assert driver.action_dim == 2 and driver.safety_limits.upper == (1.0, np.pi)
    assert not driver.is_armed
    with pytest.raises(DriverNotConnectedError):
        driver.send_action([0.0, 0.0])
    with pytest.raises(ValueError, match="limits"):
        Ros2ControlBridgeConfig(joint_names=("a",), limits={"zz": {}})


def test_connect_without_a_robot_names_the_topic():
    driver = Ros2ControlBridgeDriver(Ros2ControlBridgeConfig(connect_timeout_s=0.3, **topics("none")))
    with pytest.raises(TimeoutError, match=r"/hw_none_\d+/joint_states"):
        driver.connect()
    assert not driver.is_connected


def test_bridge_refuses_until_armed_then_drives_the_emulator_process():
    out = io.StringIO()
    graph = GraphProcesses(emulator_graph("emu"), out=out).start()
    driver = make_driver("ros2_control", {
        "connect_timeout_s": 20.0, "control_freq": 50.0, "stale_after_ms": 300.0,
        "default_limit": {"lower": -1.0, "upper": 1.0, "max_velocity": 2.0}, **topics("emu")})
    try:
        driver.connect()
        assert driver.joint_names == ("joint_0", "joint_1", "joint_2")  # discovered from the emulator
        start = driver.get_observation()["observation.state"].copy()
        with pytest.raises(NotArmedError, match="not armed"):
            driver.send_action([0.5, 0.0, 0.0])
        time.sleep(0.2)  # the emulator would have moved by now had anything been sent
        np.testing.assert_allclose(driver.get_observation()["observation.state"], start, atol=1e-9)

        driver.arm()
        target = np.array([0.5, -0.3, 0.2])
        for _ in range(100):
            sent = driver.send_action(target)
            assert np.all(np.abs(sent - driver._safety_reference()) <= 0.04 + 1e-6)  # step-limited
            time.sleep(0.02)
            if np.allclose(driver.get_observation()["observation.state"], target, atol=1e-3):
                break
        np.testing.assert_allclose(driver.get_observation()["observation.state"], target, atol=1e-3)

        driver.disarm()
        with pytest.raises(NotArmedError):
            driver.send_action(target)
        driver.arm()
        codes = graph.stop()  # the robot goes away: its joint states turn stale
        assert codes == {"robot_emulator": 0}, out.getvalue()
        assert wait_until(lambda: driver.status()["joint_state_age_ms"] > 300.0, 2.0)
        with pytest.raises(StaleJointStateError, match="refusing to move"):
            driver.send_action(target)
    finally:
        driver.disconnect()
        graph.stop()
    assert "emulating mock joints" in out.getvalue()


class CommandListener:
    """Counts what reaches the robot's command topic (the wire between the bridge and ros2_control)."""

    def __init__(self, topic: str) -> None:
        import rclpy
        import rclpy.signals
        from rclpy.context import Context
        from std_msgs.msg import Float64MultiArray

        from robot_irl.ros.probe import BackgroundSpinner

        self.context = Context()
        rclpy.init(args=[], context=self.context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
        self.node = rclpy.create_node("command_listener", context=self.context, start_parameter_services=False)
        self.count = 0
        self.node.create_subscription(Float64MultiArray, topic, self._on, 100)
        self.spinner = BackgroundSpinner(self.node, context=self.context)

    def _on(self, _msg) -> None:
        self.count += 1

    def close(self) -> None:
        self.spinner.stop()
        self.node.destroy_node()
        self.context.shutdown()


def test_stale_joint_states_disarm_and_latch_until_rearmed():
    """kill -9 the robot while commands stream, start it again: nothing reaches it until arm() (ros2_control style)."""
    wiring = topics("latch")
    listener = CommandListener(wiring["command_topic"])
    out = io.StringIO()
    graph = GraphProcesses(emulator_graph("latch"), out=out).start()
    driver = make_driver("ros2_control", {"connect_timeout_s": 20.0, "control_freq": 50.0, "stale_after_ms": 200.0,
                                          "default_limit": {"lower": -1.0, "upper": 1.0}, **wiring})
    outcomes: list[str] = []
    stop = threading.Event()

    def stream() -> None:  # a teleop/policy that keeps commanding through the outage
        while not stop.is_set():
            try:
                driver.send_action([0.3, 0.0, 0.0])
                outcomes.append("sent")
            except (NotArmedError, StaleJointStateError) as e:
                outcomes.append(type(e).__name__)
            time.sleep(0.02)

    streamer = threading.Thread(target=stream, daemon=True)
    try:
        driver.connect()
        driver.arm()
        streamer.start()
        assert wait_until(lambda: listener.count > 5, 5.0), out.getvalue()
        graph.procs["robot_emulator"].kill()  # kill -9: no goodbye
        assert wait_until(lambda: "StaleJointStateError" in outcomes, 3.0)
        time.sleep(0.2)  # commands already on the wire
        forwarded = listener.count
        graph.stop()
        graph = GraphProcesses(emulator_graph("latch"), out=out).start()  # the robot comes back
        assert wait_until(lambda: (driver.status()["joint_state_age_ms"] or 1e9) < 100.0, 20.0), out.getvalue()
        n = len(outcomes)
        assert wait_until(lambda: len(outcomes) > n + 25, 5.0)  # half a second of commands with fresh states
        assert listener.count == forwarded, "commands reached the robot again without arm()"
        assert set(outcomes[n:]) == {"NotArmedError"} and not driver.is_armed
        assert "stale_after_ms" in driver.fault and driver.status()["fault"] == driver.fault
        with pytest.raises(NotArmedError, match="disarmed by a fault"):
            driver.send_action([0.3, 0.0, 0.0])
        driver.arm()  # the explicit re-arm clears the fault
        assert driver.fault is None
        assert wait_until(lambda: listener.count > forwarded + 5, 5.0)
    finally:
        stop.set()
        if streamer.is_alive():
            streamer.join(timeout=2.0)
        driver.disconnect()
        graph.stop()
        listener.close()


def test_a_gap_in_joint_states_trips_the_bridge_even_without_commands():
    """No action went out during the outage: the first joint state after a gap > stale_after_ms still disarms."""
    from sensor_msgs.msg import JointState

    driver = Ros2ControlBridgeDriver(Ros2ControlBridgeConfig(joint_names=("a",), stale_after_ms=50.0))
    msg = JointState(name=["a"], position=[0.1])
    driver._on_joint_state(msg)
    driver._connected = True  # connected without a node: only the state bookkeeping is exercised
    driver.arm()
    driver._on_joint_state(msg)  # in time: still armed
    assert driver.is_armed and driver.fault is None
    time.sleep(0.1)
    driver._on_joint_state(msg)
    assert not driver.is_armed and "joint states on /joint_states stopped for" in driver.fault
    driver.arm()
    assert driver.is_armed and driver.fault is None


def test_bridge_drives_the_default_mujoco_arm_emulator():
    pytest.importorskip("mujoco")
    spec = emulator_graph("mj")
    spec.nodes[0].parameters.update(backend="mujoco_arm", driver_config='{"control_freq": 50.0}')
    out = io.StringIO()
    driver = make_driver("ros2_control", {"connect_timeout_s": 20.0, "control_freq": 50.0, **topics("mj")})
    with GraphProcesses(spec, out=out):
        try:
            driver.connect()
            assert driver.joint_names == ("base_yaw", "shoulder", "elbow", "wrist", "gripper"), out.getvalue()
            driver.arm()
            start = driver.get_observation()["observation.state"].copy()
            target = start.astype(np.float64)
            target[0] += 0.2  # turn the base
            assert wait_until(lambda: driver.send_action(target) is not None and
                              driver.get_observation()["observation.state"][0] > start[0] + 0.15, 10.0)
        finally:
            driver.disconnect()


def test_proprio_bridge_against_the_go1_emulator_matches_the_simulated_driver():
    """A legged robot over ros2_control: joint positions + velocities + sensor_msgs/Imu, features = the Go1 driver's."""
    pytest.importorskip("mujoco")
    from robot_irl.graphs import load_mapping

    base = f"/hw_go1_{os.getpid()}"
    wiring = {"joint_states_topic": f"{base}/joint_states", "command_topic": f"{base}/commands",
              "imu_topic": f"{base}/imu"}
    spec = GraphSpec("emulator", [NodeSpec("robot_emulator", "robot_emulator", parameters={
        "backend": "go1", "driver_config": "{}", **wiring})])
    config = {**load_mapping("hardware/go1_ros2_control.yaml"), **wiring, "connect_timeout_s": 30.0,
              "stale_after_ms": 500.0}
    driver = make_driver("hardware", config)
    sim = make_driver("go1")
    assert driver.observation_features["observation.state"].names == sim.observation_features[
        "observation.state"].names  # a policy trained on the sim driver sees the same features on the robot
    assert driver.action_features["action"].names == sim.action_features["action"].names
    out = io.StringIO()
    with GraphProcesses(spec, out=out):
        try:
            driver.connect()
            state = driver.get_observation()["observation.state"]
            names = list(driver.observation_features["observation.state"].names)
            quat = state[names.index("imu.qw"):names.index("imu.qw") + 4]
            assert abs(np.linalg.norm(quat) - 1.0) < 1e-3, out.getvalue()  # a real orientation arrived
            az = names.index("imu.az")  # it spawns in the air (free fall reads 0), then stands and feels gravity
            assert wait_until(lambda: driver.get_observation()["observation.state"][az] > 5.0, 10.0), out.getvalue()
            state = driver.get_observation()["observation.state"]
            with pytest.raises(NotArmedError):
                driver.send_action(state[:12])
            driver.arm()
            target = state[:12].astype(np.float64).copy()
            target[names.index("FR_thigh.pos")] += 0.2
            assert wait_until(lambda: driver.send_action(target) is not None and abs(
                driver.get_observation()["observation.state"][1] - target[1]) < 0.1, 15.0), out.getvalue()
        finally:
            driver.disconnect()
