"""A simulated robot that plays the ros2_control side over real DDS (console script ``robot_emulator``).

Like ros2_control's mock hardware with a forward position controller: it publishes ``/joint_states`` at its
control rate and follows ``std_msgs/Float64MultiArray`` position targets on
``/forward_position_controller/commands`` (the last command is kept, as the controller does). The robot is any
simulated driver with joint-position actions (parameter ``backend``: ``mujoco_arm`` by default, ``mock`` for a
physics-free stand-in), so the hardware path (:mod:`robot_irl.ros.hardware_bridge`) runs in CI.

Parameters: ``backend``, ``driver_config`` (as for driver_node), ``joint_states_topic``, ``command_topic``,
``imu_topic`` (``/imu/data``). Image features of the backend are published on ``/camera/<name>/image_raw``; a
backend whose state has ``imu.*`` entries (a legged robot) also publishes ``sensor_msgs/Imu`` on ``imu_topic``.
Actions may be named by joint (``shoulder``) or by joint position (``shoulder.pos``).
"""
from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, Imu, JointState
from std_msgs.msg import Float64MultiArray

from robot_irl.core.contracts import RobotDriver
from robot_irl.core.safety import validate_action
from robot_irl.ros import conversions as conv
from robot_irl.ros.driver_node import build_driver, run_node

DEFAULT_BACKEND = "mujoco_arm"


class RobotEmulator(Node):
    """Publishes joint states of ``driver`` and applies the position commands it receives."""

    def __init__(self, driver: RobotDriver | None = None, *, node_name: str = "robot_emulator", namespace: str = "",
                 context=None, parameter_overrides: dict[str, Any] | None = None) -> None:
        overrides = [Parameter(k, value=v) for k, v in (parameter_overrides or {}).items()]
        super().__init__(node_name, namespace=namespace, context=context, parameter_overrides=overrides)
        p = {name: self.declare_parameter(name, default).value for name, default in (
            ("backend", DEFAULT_BACKEND), ("driver_config", ""), ("joint_states_topic", "/joint_states"),
            ("command_topic", "/forward_position_controller/commands"), ("imu_topic", "/imu/data"))}
        self.driver = driver if driver is not None else build_driver("sim", p["backend"], p["driver_config"])
        if not self.driver.is_connected:
            self.driver.connect()
        features = self.driver.observation_features
        self.layout = conv.StateLayout.from_names(features["observation.state"].names,
                                                  getattr(self.driver, "joint_names", None))
        self._check_position_actions()
        self.imu_layout = conv.ImuLayout.from_names(features["observation.state"].names)
        self.imu_pub = self.create_publisher(Imu, p["imu_topic"], 10) if self.imu_layout.present else None
        self.cameras = [k.removeprefix("observation.images.") for k, f in features.items()
                        if k.startswith("observation.images.") and f.is_image]
        self._lock = threading.Lock()
        self._target: np.ndarray | None = None
        self.rejected_commands = 0
        self.joint_state_pub = self.create_publisher(JointState, p["joint_states_topic"], 10)
        self.image_pubs = {c: self.create_publisher(Image, f"/camera/{c}/image_raw", 5) for c in self.cameras}
        self.create_subscription(Float64MultiArray, p["command_topic"], self._on_command, 10)
        self.timer = self.create_timer(1.0 / self.driver.fps, self.tick)
        self.get_logger().info(f"emulating {self.driver.name} joints {list(self.layout.joint_names)} at "
                               f"{self.driver.fps:g} Hz: {p['joint_states_topic']} out, {p['command_topic']} in")

    def _check_position_actions(self) -> None:
        action_names = tuple(n.removesuffix(".pos") for n in self.driver.action_features["action"].names or ())
        if action_names != tuple(self.layout.joint_names):
            raise ValueError(f"robot_emulator needs a driver whose actions are its joint positions; "
                             f"{self.driver.name} acts on {list(action_names)} but its joints are "
                             f"{list(self.layout.joint_names)}")

    def _on_command(self, msg: Float64MultiArray) -> None:
        try:
            target = conv.action_from_msg(msg, self.driver.action_dim, "forward_position_controller command")
            validate_action(target, self.driver.safety_limits, "forward_position_controller command")
        except ValueError as e:
            self.rejected_commands += 1
            self.get_logger().error(f"rejected command: {e}", throttle_duration_sec=2.0)
            return
        with self._lock:
            self._target = target

    def tick(self) -> None:
        """Move toward the last target (or hold) and publish the joint states."""
        try:
            with self._lock:
                target = self._target
            self.driver.send_action(target if target is not None else self.driver.hold_action())
            now = self.get_clock().now().nanoseconds * 1e-9
            obs = self.driver.get_observation()
            self.joint_state_pub.publish(conv.joint_state_from_state(obs["observation.state"], self.layout, now))
            if self.imu_pub is not None:
                self.imu_pub.publish(conv.imu_from_state(obs["observation.state"], self.imu_layout, now))
            for cam, pub in self.image_pubs.items():
                pub.publish(conv.image_to_msg(obs[f"observation.images.{cam}"], now, cam))
        except Exception as e:
            self.get_logger().error(f"tick failed: {type(e).__name__}: {e}", throttle_duration_sec=2.0)

    def close(self) -> None:
        try:
            self.timer.cancel()
            self.driver.disconnect()
        finally:
            self.destroy_node()


def main(argv: list[str] | None = None) -> int:
    """Console script: ``robot_emulator --ros-args -p backend:=mock``."""
    return run_node(RobotEmulator, "robot_emulator", argv)


if __name__ == "__main__":
    sys.exit(main())
