"""policy_node: a policy drives the driver node over real DDS, from the observation bundle or from sensor topics.

In-process (driver node + policy node + a probe in one context) for the behaviour; one test starts the ``deploy``
graph as processes with a BC checkpoint trained here, as ``robot-irl up deploy`` does.
"""
from __future__ import annotations

import itertools
import os
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
import rclpy
import rclpy.signals
from geometry_msgs.msg import Twist
from rclpy.context import Context
from up_process import UpProcess

from robot_irl.core.contracts import Policy
from robot_irl.core.features import Feature, vector
from robot_irl.drivers.mock import MockArmConfig, MockArmDriver
from robot_irl.graphs import GraphError, build_graph
from robot_irl.ros import conversions as conv
from robot_irl.ros.driver_node import DriverNode
from robot_irl.ros.policy_node import PolicyNode
from robot_irl.ros.probe import BackgroundSpinner, RobotProbe

pytestmark = pytest.mark.ros
_ids = itertools.count()
IMU = [1.0, 0.0, 0.0, 0.0, 0.01, -0.02, 0.5, 0.0, 0.1, 9.81]  # qw qx qy qz, wx wy wz, ax ay az


class ImuArm(MockArmDriver):
    """The mock arm with joint velocities and an IMU in its state (the legged layout, in small)."""

    @property
    def observation_features(self) -> dict[str, Feature]:
        joints = self.joint_names
        names = [f"{j}.pos" for j in joints] + [f"{j}.vel" for j in joints] + list(
            conv.IMU_PARTS["orientation"] + conv.IMU_PARTS["angular_velocity"] + conv.IMU_PARTS["linear_acceleration"])
        return {"observation.state": vector(names)}

    def _get_observation(self) -> dict[str, np.ndarray]:
        pos = super()._get_observation()["observation.state"]
        return {"observation.state": np.concatenate([pos, pos * 0.0 + 0.25, IMU]).astype(np.float32)}


class TargetPolicy(Policy):
    """Steps toward a fixed joint target; remembers what it saw."""

    def __init__(self, target, bad_after: int | None = None) -> None:
        self.target = np.asarray(target, dtype=np.float64)
        self.seen: list[dict] = []
        self.bad_after = bad_after
        self.command = np.zeros(3)
        self.commands: list[np.ndarray] = []
        self.resets = 0

    def reset(self, seed=None) -> None:
        self.resets += 1

    def act(self, observation):
        self.seen.append(observation)
        self.commands.append(np.array(self.command))
        if self.bad_after is not None and len(self.seen) > self.bad_after:
            return np.full(3, np.nan)
        return self.target


@pytest.fixture(scope="module")
def context():
    ctx = Context()
    rclpy.init(args=[], context=ctx, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    yield ctx
    ctx.shutdown()


@pytest.fixture
def rig(context):
    """``rig(policy, driver_cls, **policy_params)`` -> (driver node, policy node, probe), spinning."""
    made = []

    def make(policy, driver_cls=MockArmDriver, **params):
        ns = f"pn_test_{os.getpid()}_{next(_ids)}"
        driver = driver_cls(MockArmConfig(control_freq=50.0, instruction="reach the target"))
        node = DriverNode(driver, namespace=ns, context=context)
        pnode = PolicyNode(policy, driver_cls(MockArmConfig(control_freq=50.0)), namespace=ns, context=context,
                           parameter_overrides=params)
        probe = RobotProbe(namespace=ns, context=context)
        made.append((node, pnode, probe, BackgroundSpinner(node, pnode, probe, context=context)))
        assert probe.wait_for_driver(10.0), "driver node not discovered"
        return node, pnode, probe

    yield make
    for node, pnode, probe, spinner in made:
        spinner.stop()
        pnode.close()
        node.close()
        probe.destroy_node()


def _label(msg) -> str:
    return msg.layout.dim[0].label if msg.layout.dim else ""


def test_policy_drives_the_robot_from_the_observation_bundle(rig):
    target = [0.3, -0.2, 0.1]
    node, pnode, probe = rig(TargetPolicy(target))
    assert pnode.inputs == "observation"
    assert probe.wait_for(lambda: np.allclose(probe.latest("joint_states").position, target, atol=1e-3), 10.0)
    assert _label(probe.latest("action_sent")).startswith("policy:")  # the driver node applied the policy's command
    seen = pnode.policy.seen[-1]
    assert seen["task"] == "reach the target" and seen["observation.state"].shape == (3,)
    assert node.last_source == "command" and pnode.errors == 0


def test_stop_service_pauses_the_policy_and_the_watchdog_holds(rig, context):
    from std_srvs.srv import Trigger

    node, pnode, probe = rig(TargetPolicy([0.5, 0.0, 0.0]))
    assert probe.wait_for(lambda: pnode.actions > 3, 5.0)
    client = probe.create_client(Trigger, "policy/stop")
    assert client.wait_for_service(timeout_sec=5.0)
    future = client.call_async(Trigger.Request())
    assert probe.wait_for(lambda: future.done(), 5.0) and future.result().success
    before = pnode.actions
    time.sleep(0.3)
    assert pnode.actions == before and not pnode.enabled
    assert probe.wait_for(lambda: node.last_source in ("timeout", "hold"), 5.0)  # no command: the watchdog holds


def test_non_finite_actions_are_never_published(rig):
    node, pnode, probe = rig(TargetPolicy([0.2, 0.2, 0.2], bad_after=5))
    assert probe.wait_for(lambda: pnode.errors >= 3, 5.0)
    assert pnode.actions == 5  # the five good ones went out, nothing after
    assert probe.wait_for(lambda: node.last_source == "timeout", 5.0)
    assert node.rejected_commands == 0  # nothing bad ever reached the driver node


def test_sensor_inputs_rebuild_the_drivers_state_and_follow_cmd_vel(rig, context):
    policy = TargetPolicy([0.1, 0.0, 0.0])
    node, pnode, probe = rig(policy, ImuArm, inputs="sensors", command=[0.3, 0.0, 0.1], cmd_vel_timeout_s=0.3)
    assert pnode.inputs == "sensors"
    assert probe.wait_for(lambda: len(policy.seen) > 5 and policy.seen[-1]["observation.state"].size == 16, 5.0)
    state = policy.seen[-1]["observation.state"]
    np.testing.assert_allclose(state[3:6], 0.25, atol=1e-6)  # joint velocities from JointState.velocity
    np.testing.assert_allclose(state[6:], IMU, atol=1e-5)  # orientation, gyro, accelerometer from sensor_msgs/Imu
    np.testing.assert_allclose(policy.commands[-1], [0.3, 0.0, 0.1])  # the command parameter before any cmd_vel

    pub = probe.create_publisher(Twist, "cmd_vel", 10)
    twist = conv.command_to_twist([0.8, -0.1, 0.4])
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and not np.allclose(policy.commands[-1], [0.8, -0.1, 0.4]):
        pub.publish(twist)
        time.sleep(0.05)
    np.testing.assert_allclose(policy.commands[-1], [0.8, -0.1, 0.4])
    time.sleep(0.6)  # cmd_vel went stale: stand still
    assert probe.wait_for(lambda: np.allclose(policy.commands[-1], 0.0), 2.0)


def test_deploy_graph_spec_and_bad_arguments(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    spec = build_graph("deploy", driver="sim", backend="mock", policy=str(ckpt), episode_steps="40")
    assert [n.name for n in spec.nodes] == ["driver_node", "policy_node"]
    driver, policy = spec.nodes
    assert {k: policy.parameters[k] for k in ("driver", "backend", "driver_config")} == {
        k: driver.parameters[k] for k in ("driver", "backend", "driver_config")}
    assert policy.parameters["policy"] == str(ckpt.resolve()) and policy.parameters["episode_steps"] == 40
    hardware = build_graph("deploy", driver="hardware", emulate=True, emulator_backend="mock", policy=str(ckpt))
    assert [n.name for n in hardware.nodes] == ["driver_node", "robot_emulator", "policy_node"]
    assert "start_armed" not in hardware.node("driver_node").parameters  # hardware starts disarmed
    with pytest.raises(GraphError, match="checkpoint folder is required"):
        build_graph("deploy", backend="mock")
    with pytest.raises(GraphError, match="no checkpoint at"):
        build_graph("deploy", backend="mock", policy=str(tmp_path / "missing"))
    with pytest.raises(GraphError, match="episode_steps"):
        build_graph("deploy", backend="mock", policy=str(ckpt), episode_steps="-1")


@pytest.mark.sim
def test_deploy_graph_runs_a_bc_checkpoint_as_processes(tmp_path, context):
    """Record random mujoco_arm episodes, train BC briefly, then ``up deploy``: the policy's commands drive the arm."""
    from robot_irl.cli import main
    from robot_irl.learn.datasets import FeatureSpec, load_offline_data
    from robot_irl.learn.trainer import TrainerConfig, train_policy

    assert main(["record", "--backend", "mujoco_arm", "--policy", "random", "--episodes", "2", "--max-steps", "20",
                 "--out", str(tmp_path / "rec")]) == 0
    spec = FeatureSpec(action_mode="absolute", relative_positions=False, goal=False)
    data, encoder, codec = load_offline_data(tmp_path / "rec" / "dataset", spec)
    train_policy(data, encoder, codec, tmp_path / "bc", "bc", {"hidden": [32, 32]},
                 TrainerConfig(steps=30, log_every=10, progress=False))

    up = UpProcess(graph_name="deploy", driver="sim", backend="mujoco_arm", policy=str(tmp_path / "bc"))
    probe = RobotProbe(namespace="robot_irl", node_name="deploy_test_probe", context=context)
    spinner = BackgroundSpinner(probe, context=context)
    try:
        assert probe.wait_for_driver(60.0), "the driver node did not come up"
        assert probe.wait_for(lambda: any(_label(m).startswith("policy:") for _, m in probe.received["action_sent"]),
                              60.0), "no action from the policy node reached the driver"
    finally:
        spinner.stop()
        probe.destroy_node()
        code, out = up.interrupt()
    assert code == 0, out
    assert "policy LearnedPolicy" in out


@pytest.mark.sim
@pytest.mark.parametrize("kind", ["hib"])
def test_legged_graph_walks_a_ppo_checkpoint_from_joint_states_and_imu(tmp_path, context, kind):
    """``up legged``: the simulated Go1 in the driver node, a (tiny) HIB policy acting from /robot_irl/joint_states
    and /robot_irl/imu only; its commands reach the robot through the driver node's safety layer."""
    from sensor_msgs.msg import Imu

    from robot_irl.legged.train import LeggedTrainConfig, train_legged

    config = LeggedTrainConfig.from_dict({
        "num_envs": 8, "steps_per_env": 8, "total_steps": 128, "progress": False, "checkpoint_every": 0,
        "ppo": {"minibatches": 2, "epochs": 1},
        "actor_critic": {"kind": kind, "actor_hidden": [16], "critic_hidden": [16]}})
    train_legged(config, tmp_path / "ppo")

    up = UpProcess(graph_name="legged", driver="sim", policy=str(tmp_path / "ppo"), command="0.3,0,0")
    probe = RobotProbe(namespace="robot_irl", node_name="legged_test_probe", context=context)
    imus: list = []
    probe.create_subscription(Imu, "imu", imus.append, 10)
    spinner = BackgroundSpinner(probe, context=context)
    try:
        assert probe.wait_for_driver(60.0), "the driver node did not come up"
        assert probe.wait_for(lambda: sum(_label(m).startswith("policy:") for _, m in probe.received["action_sent"])
                              > 20, 60.0), "the legged policy's commands did not reach the driver"
        assert imus and abs(imus[-1].orientation.w) > 0.5  # the driver node publishes the IMU the policy reads
        assert len(probe.latest("joint_states").velocity) == 12
    finally:
        spinner.stop()
        probe.destroy_node()
        code, out = up.interrupt()
    assert code == 0, out
    assert "inputs sensors" in out and "LeggedPolicy" in out
    assert "Imu" not in out and "[ERROR]" not in out, out  # the joints' first messages before the IMU's: no error
