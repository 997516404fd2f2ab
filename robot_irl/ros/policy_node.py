"""A trained policy driving the robot graph (console script ``policy_node``).

The node loads a checkpoint (parameter ``policy``: a checkpoint folder or a training run holding one; any
algorithm in :data:`robot_irl.policies.checkpoint.CHECKPOINT_POLICIES`), builds, but never connects, the driver
node's driver from the same ``driver``/``backend``/``driver_config`` parameters to check that the robot observes
and acts with the features the policy was trained on, and then acts once per control tick of the driver node:

* ``inputs=observation`` (BC, IQL: manipulation policies that need object poses): on each ``observation`` bundle of
  the driver node (every non-image observation vector of that tick) plus the latched ``instruction``;
* ``inputs=sensors`` (legged policies: proprioception only): on each ``joint_states`` message, with the latest
  ``imu`` (``sensor_msgs/Imu``), assembled into the driver's ``observation.state`` layout by
  :func:`robot_irl.ros.conversions.state_from_sensors`; the velocity command comes from ``cmd_vel``
  (``geometry_msgs/Twist``) and falls back to zero (stand still) when no command arrived for ``cmd_vel_timeout_s``.
  The policy keeps its own history buffer.

``auto`` (the default) takes the policy class's ``inputs`` attribute. Every action goes out on ``commands``
(``std_msgs/Float64MultiArray``, labelled ``policy:<n>``): the driver node's safety layer clamps it, its watchdog
holds the robot if this node stops or stalls, and on hardware nothing moves until the driver node is armed. A
non-finite action or an observation that does not fit is logged and nothing is published for that tick (the
watchdog holds). Services (std_srvs/Trigger) ``policy/start`` and ``policy/stop`` pause and resume acting (stopped,
the node publishes nothing); ``policy/reset`` clears the policy's state (history). With ``episode_steps > 0`` the
node also calls the driver node's ``reset`` every that many actions and resets the policy (sim evaluation loops;
never use it on hardware).

Parameters: ``policy`` (required), ``driver``/``backend``/``driver_config``, ``inputs`` (auto), ``command``
([vx, vy, wz] used before any ``cmd_vel``; default zeros), ``cmd_vel_timeout_s`` (0.5; 0 = keep the last),
``episode_steps`` (0), ``start_enabled`` (true), ``device`` (cpu).
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any

import numpy as np
from geometry_msgs.msg import Twist
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from robot_irl.ros import conversions as conv
from robot_irl.ros.driver_node import DEFAULT_NAMESPACE, LATCHED, build_driver, run_node

INPUTS = ("auto", "observation", "sensors")
PARAMETERS: dict[str, Any] = {"policy": "", "driver": "sim", "backend": "", "driver_config": "", "inputs": "auto",
                              "command": [0.0, 0.0, 0.0], "cmd_vel_timeout_s": 0.5, "episode_steps": 0,
                              "start_enabled": True, "device": "cpu"}
_THROTTLE_S = 2.0
IMU_WAIT_S = 2.0  # joint states without an Imu for longer than this (legged inputs) get a warning


class PolicyNode(Node):
    """The node around one policy. Pass ``policy`` and ``driver`` (tests), or build both from the parameters."""

    def __init__(self, policy=None, driver=None, *, node_name: str = "policy_node",
                 namespace: str = DEFAULT_NAMESPACE, context=None,
                 parameter_overrides: dict[str, Any] | None = None) -> None:
        overrides = [Parameter(k, value=v) for k, v in (parameter_overrides or {}).items()]
        super().__init__(node_name, namespace=namespace, context=context, parameter_overrides=overrides)
        p = {name: self.declare_parameter(name, default).value for name, default in PARAMETERS.items()}
        self.driver = driver if driver is not None else build_driver(p["driver"], p["backend"], p["driver_config"])
        if policy is None:
            from robot_irl.policies.checkpoint import load_policy

            if not p["policy"]:
                raise ValueError("policy_node: parameter 'policy' (a checkpoint folder) is required")
            kwargs = {"device": p["device"]} if str(p["device"]) != "cpu" else {}
            policy = load_policy(p["policy"], self.driver, **kwargs)
        self.policy = policy
        inputs = str(p["inputs"])
        if inputs not in INPUTS:
            raise ValueError(f"policy_node: inputs must be one of {list(INPUTS)}, got {inputs!r}")
        self.inputs = str(getattr(policy, "inputs", "observation")) if inputs == "auto" else inputs
        self.state_names = list(self.driver.observation_features["observation.state"].names or ())
        self.action_dim = self.driver.action_dim
        self.default_command = self._command_param(p["command"])
        self.cmd_vel_timeout_s = float(p["cmd_vel_timeout_s"])
        self.episode_steps = int(p["episode_steps"])
        self.enabled = bool(p["start_enabled"])
        self._lock = threading.Lock()
        self._instruction = str(self.driver.instruction)
        self._imu: Imu | None = None
        self._needs_imu = any(n.startswith("imu.") for n in self.state_names)
        self._waiting_imu_since: float | None = None
        self._command = self.default_command.copy()
        self._command_time: float | None = None
        self.actions = 0
        self.errors = 0
        self._episode_actions = 0
        self._reset_pending = None
        self.command_pub = self.create_publisher(Float64MultiArray, "commands", 10)
        self.create_subscription(String, "instruction", self._on_instruction, LATCHED)
        if self.inputs == "sensors":
            self.create_subscription(JointState, "joint_states", self._on_joint_state, 10)
            self.create_subscription(Imu, "imu", self._on_imu, 10)
            self.create_subscription(Twist, "cmd_vel", self._on_cmd_vel, 10)
        else:
            self.create_subscription(Float64MultiArray, "observation", self._on_bundle, 10)
        self.reset_client = self.create_client(Trigger, "reset")
        for name, handler in (("start", self._on_start), ("stop", self._on_stop), ("reset", self._on_policy_reset)):
            self.create_service(Trigger, f"policy/{name}", handler)
        self.policy.reset()
        self.get_logger().info(
            f"policy {type(policy).__name__} ({p['policy'] or 'in-process'}) on {self.driver.name}: inputs "
            f"{self.inputs}, {self.action_dim} action dims, {'acting' if self.enabled else 'stopped'}")

    @staticmethod
    def _command_param(value) -> np.ndarray:
        cmd = np.asarray(list(value), dtype=np.float64).reshape(-1)
        if cmd.size != 3 or not np.all(np.isfinite(cmd)):
            raise ValueError(f"policy_node: command must be 3 finite numbers [vx, vy, wz], got {list(value)}")
        return cmd

    # -- inputs ---------------------------------------------------------------------------------------------
    def _on_instruction(self, msg: String) -> None:
        self._instruction = msg.data

    def _on_imu(self, msg: Imu) -> None:
        with self._lock:
            self._imu = msg

    def _on_cmd_vel(self, msg: Twist) -> None:
        try:
            command = conv.twist_to_command(msg)
        except conv.ConversionError as e:
            self.get_logger().error(f"ignored cmd_vel: {e}", throttle_duration_sec=_THROTTLE_S)
            return
        with self._lock:
            self._command, self._command_time = command, time.monotonic()

    def velocity_command(self) -> np.ndarray:
        """The command in force: the last ``cmd_vel`` unless stale (then zero), else the ``command`` parameter."""
        with self._lock:
            command, when = self._command.copy(), self._command_time
        if when is not None and self.cmd_vel_timeout_s > 0 and time.monotonic() - when > self.cmd_vel_timeout_s:
            return np.zeros(3)
        return command

    def _on_bundle(self, msg: Float64MultiArray) -> None:
        try:
            bundle = conv.bundle_from_msg(msg)
        except conv.ConversionError as e:
            self._fail(f"bad observation bundle: {e}")
            return
        observation = {k: v.astype(np.float32) for k, v in bundle["features"].items()}
        self._act(observation)

    def _on_joint_state(self, msg: JointState) -> None:
        with self._lock:
            imu = self._imu
        if imu is None and self._needs_imu:  # the IMU's first message may come after the joints' at start: wait
            now = time.monotonic()
            self._waiting_imu_since = self._waiting_imu_since or now
            if now - self._waiting_imu_since > IMU_WAIT_S:
                self.get_logger().warning(f"no Imu on {self.resolve_topic_name('imu')} for {IMU_WAIT_S:g} s after "
                                          f"the first joint states: the policy waits (is the robot's IMU "
                                          f"publishing?)", throttle_duration_sec=_THROTTLE_S * 5)
            return
        try:
            state = conv.state_from_sensors(self.state_names, msg, imu)
        except conv.ConversionError as e:
            self._fail(f"cannot build observation.state from joint_states/imu: {e}")
            return
        self._act({"observation.state": state.astype(np.float32)})

    # -- acting ---------------------------------------------------------------------------------------------
    def _act(self, observation: dict[str, np.ndarray]) -> None:
        if not self.enabled or self._reset_pending is not None:
            return
        if self.inputs == "sensors":
            if hasattr(self.policy, "set_command"):
                self.policy.set_command(self.velocity_command())
            elif hasattr(self.policy, "command"):
                self.policy.command = self.velocity_command()
        try:
            action = np.asarray(self.policy.act({**observation, "task": self._instruction}), dtype=np.float64)
        except Exception as e:  # a policy failure must not take the node down; the watchdog holds the robot
            self._fail(f"policy.act failed: {type(e).__name__}: {e}")
            return
        if action.shape != (self.action_dim,) or not np.all(np.isfinite(action)):
            self._fail(f"policy produced {action.shape} action with non-finite values or the wrong size "
                       f"(need {self.action_dim} finite values): not sent")
            return
        self.actions += 1
        self.command_pub.publish(conv.action_to_msg(action, label=f"policy:{self.actions}"))
        self._episode_actions += 1
        if self.episode_steps > 0 and self._episode_actions >= self.episode_steps:
            self._request_reset()

    def _fail(self, message: str) -> None:
        self.errors += 1
        self.get_logger().error(message, throttle_duration_sec=_THROTTLE_S)

    def _request_reset(self) -> None:
        if not self.reset_client.service_is_ready():
            self._fail("episode_steps reached but the driver node's reset service is not available")
            self._episode_actions = 0
            return
        self._reset_pending = self.reset_client.call_async(Trigger.Request())
        self._reset_pending.add_done_callback(self._reset_done)

    def _reset_done(self, future) -> None:
        result = future.result()
        if result is None or not result.success:
            self._fail(f"driver reset failed: {getattr(result, 'message', 'no reply')}")
        self.policy.reset()
        self._episode_actions = 0
        self._reset_pending = None

    # -- services -------------------------------------------------------------------------------------------
    def _on_start(self, request, response):
        self.enabled = True
        response.success, response.message = True, "acting"
        return response

    def _on_stop(self, request, response):
        self.enabled = False
        response.success, response.message = True, "stopped: nothing is published, the driver node holds"
        return response

    def _on_policy_reset(self, request, response):
        self.policy.reset()
        self._episode_actions = 0
        response.success, response.message = True, "policy state cleared"
        return response

    def close(self) -> None:
        self.destroy_node()


def main(argv: list[str] | None = None) -> int:
    """Console script: ``policy_node --ros-args -p policy:=runs/iql/checkpoint -p driver:=sim``."""
    return run_node(PolicyNode, "policy_node", argv)


if __name__ == "__main__":
    sys.exit(main())
