"""The pure core: contracts, safety, registries, configs and perturbation records.

Nothing here imports rclpy, MuJoCo, torch or touches files; every adapter is built on these pieces.
"""
from robot_irl.core.config import Config, ConfigError
from robot_irl.core.contracts import (
    DriverNotConnectedError,
    Policy,
    RobotDriver,
    Teleoperator,
)
from robot_irl.core.features import Feature
from robot_irl.core.perturbation import Perturbation, PerturbationError, PerturbationKind
from robot_irl.core.registry import Registry, UnknownNameError
from robot_irl.core.safety import SafetyLimits, UnsafeActionError, clamp_action

__all__ = [
    "Config",
    "ConfigError",
    "DriverNotConnectedError",
    "Feature",
    "Perturbation",
    "PerturbationError",
    "PerturbationKind",
    "Policy",
    "Registry",
    "RobotDriver",
    "SafetyLimits",
    "Teleoperator",
    "UnknownNameError",
    "UnsafeActionError",
    "clamp_action",
]
