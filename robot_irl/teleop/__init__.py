"""Tele-operation devices (keyboard, joystick, SpaceMouse) and the mapping from device input to robot actions.

Pure Python: no rclpy here (the ROS node is :mod:`robot_irl.ros.teleop_node`). Every device turns its raw input
into a :class:`~robot_irl.teleop.mapping.TeleopInput` (a normalised twist, gripper, deadman, episode events);
:func:`~robot_irl.teleop.mapping.make_mapper` turns those into the driver's actions.
"""
from robot_irl.teleop.mapping import EPISODE_EVENTS, TeleopError, TeleopInput, TeleopLimits

__all__ = ["EPISODE_EVENTS", "TeleopError", "TeleopInput", "TeleopLimits"]
