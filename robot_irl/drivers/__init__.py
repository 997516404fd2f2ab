"""The driver registry, filled here and only here.

Entries are lazy (``module:Class``): listing drivers imports neither MuJoCo nor rclpy. ``sim`` and ``hardware``
are the two families the launch argument ``driver:=sim|hardware`` chooses between; each family names its
default backend in :data:`DEFAULT_BACKEND`.
"""
from __future__ import annotations

from typing import Any

from robot_irl.core.contracts import RobotDriver
from robot_irl.core.registry import Registry

DRIVERS: Registry[type[RobotDriver]] = Registry("driver")
DRIVERS.register("mock", "robot_irl.drivers.mock:MockArmDriver")
DRIVERS.register("mujoco_arm", "robot_irl.drivers.mujoco_arm:MujocoArmDriver")
DRIVERS.register("robosuite", "robot_irl.drivers.robosuite_arm:RobosuiteDriver")
DRIVERS.register("ros2_control", "robot_irl.ros.hardware_bridge:Ros2ControlBridgeDriver")
DRIVERS.register("go1", "robot_irl.legged.driver:Go1Driver")

#: which backend each family of the ``driver`` launch argument uses unless ``backend`` names another
FAMILIES: dict[str, tuple[str, ...]] = {
    "sim": ("robosuite", "mujoco_arm", "mock", "go1"),
    "hardware": ("ros2_control",),
}
DEFAULT_BACKEND = {"sim": "robosuite", "hardware": "ros2_control"}


def resolve_backend(driver: str, backend: str | None = None) -> str:
    """Map ``driver:=sim|hardware`` (+ optional backend) or a backend name to a registered backend name."""
    if driver in FAMILIES:
        name = backend or DEFAULT_BACKEND[driver]
        if name not in FAMILIES[driver]:
            raise ValueError(f"backend {name!r} is not a {driver} backend; {driver} backends: {list(FAMILIES[driver])}")
        return name
    if driver in DRIVERS:
        return driver
    raise ValueError(f"unknown driver {driver!r}; use one of {sorted(FAMILIES)} or a backend: {DRIVERS.names()}")


def make_driver(name: str, config: dict[str, Any] | None = None, backend: str | None = None) -> RobotDriver:
    """Build a driver by family or backend name from a plain config mapping (validated by its config class)."""
    cls = DRIVERS.get(resolve_backend(name, backend))
    return cls(cls.config_class.from_dict(config or {}, where=f"driver {cls.name} config"))
