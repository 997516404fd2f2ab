"""Device input -> robot action: a velocity twist integrated into an absolute target, with limits.

Every device produces a :class:`TeleopInput`: a twist ``[vx, vy, vz, wx, wy, wz]`` normalised to [-1, 1] (world
frame), an absolute gripper command (-1 open .. 1 closed, or ``None`` to keep it), the deadman state, and episode
events (``save``, ``rerecord``, ``success``, ``failure``, ``stop``).

:class:`EETargetMapper` integrates the twist into the robosuite driver's ``control="ee_target"`` action
``[x, y, z, ax, ay, az, gripper]`` (axis-angle orientation). When the deadman is pressed the target is anchored at
the measured end-effector pose; each tick it moves by ``twist x max speed x dt`` (capped per tick) and never runs
more than ``max_lead_*`` ahead of the measured pose, so a blocked arm does not wind up a large jump. Released
deadman: no action at all (the driver node's watchdog holds the robot). :class:`JointTargetMapper` does the same in
joint space for drivers whose action is joint positions (twist component i drives joint i; ``gripper`` joint from
the gripper command). The driver's safety layer still clamps whatever is sent.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from robot_irl.core.config import Config, check

EPISODE_EVENTS = ("save", "rerecord", "success", "failure", "stop")
#: recorder services each episode event calls, in order (``save`` = save & start the next episode)
EVENT_SERVICES = {"save": ("save_episode", "start_episode"), "rerecord": ("discard_episode", "start_episode"),
                  "success": ("mark_success",), "failure": ("mark_failure",), "stop": ("stop",)}
EE_TARGET_NAMES = ("x", "y", "z", "ax", "ay", "az", "gripper")
POSE_NAMES = tuple(f"eef.{k}" for k in ("x", "y", "z", "qw", "qx", "qy", "qz"))
GRIPPER_OPEN, GRIPPER_CLOSED = -1.0, 1.0


class TeleopError(RuntimeError):
    """A device that cannot be used (missing, no terminal, bad mapping); the message says what to do."""


@dataclass
class TeleopInput:
    """One reading of a device."""

    twist: np.ndarray = field(default_factory=lambda: np.zeros(6))
    gripper: float | None = None
    deadman: bool = False
    events: tuple[str, ...] = ()


@dataclass
class TeleopLimits(Config):
    max_linear: float = 0.15  # m/s at full deflection
    max_angular: float = 0.8  # rad/s at full deflection
    max_step_pos: float = 0.02  # m per tick, whatever the rate
    max_step_rot: float = 0.1  # rad per tick
    max_lead_pos: float = 0.06  # m the target may run ahead of the measured pose
    max_lead_rot: float = 0.4  # rad
    max_joint_speed: float = 1.0  # rad/s (joint-space drivers)
    max_lead_joint: float = 0.3  # rad

    def validate(self) -> None:
        for name in ("max_linear", "max_angular", "max_step_pos", "max_step_rot", "max_lead_pos", "max_lead_rot",
                     "max_joint_speed", "max_lead_joint"):
            check(getattr(self, name) > 0, f"TeleopLimits.{name}", "must be > 0")


def _twist(inp: TeleopInput) -> np.ndarray:
    twist = np.asarray(inp.twist, dtype=np.float64).reshape(-1)
    if twist.shape != (6,) or not np.all(np.isfinite(twist)):
        raise TeleopError(f"teleop twist must be 6 finite numbers, got {inp.twist!r}")
    return np.clip(twist, -1.0, 1.0)


def pose_from_state(state: Sequence[float], names: Sequence[str]) -> np.ndarray:
    """The end-effector pose ``[x, y, z, qw, qx, qy, qz]`` from ``observation.state`` and its entry names."""
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in POSE_NAMES if n not in index]
    if missing:
        raise TeleopError(f"observation.state has no end-effector pose entries {missing} (names: {list(names)[:8]}...)")
    s = np.asarray(state, dtype=np.float64)
    return s[[index[n] for n in POSE_NAMES]]


class EETargetMapper:
    """TeleopInput + measured pose -> an ``ee_target`` action, or ``None`` while the deadman is released."""

    def __init__(self, limits: TeleopLimits | None = None, dt: float = 0.05) -> None:
        self.limits = limits or TeleopLimits()
        self.dt = float(dt)
        self.gripper = GRIPPER_OPEN
        self._pos: np.ndarray | None = None
        self._quat: np.ndarray | None = None
        self._rotvec: np.ndarray | None = None

    def reset(self) -> None:
        self._pos = self._quat = self._rotvec = None

    def step(self, inp: TeleopInput, pose: Sequence[float]) -> np.ndarray | None:
        from robot_irl.drivers.robosuite_arm import quat_mul, quat_to_rotvec, rotvec_near, rotvec_to_quat

        if inp.gripper is not None:
            self.gripper = float(np.clip(inp.gripper, -1.0, 1.0))
        if not inp.deadman:
            self.reset()
            return None
        lim, twist = self.limits, _twist(inp)
        pose = np.asarray(pose, dtype=np.float64)
        measured_pos, measured_quat = pose[:3], pose[3:7] / np.linalg.norm(pose[3:7])
        if self._pos is None:
            self._pos, self._quat = measured_pos.copy(), measured_quat.copy()
            self._rotvec = quat_to_rotvec(measured_quat)
        dpos = np.clip(twist[:3] * lim.max_linear * self.dt, -lim.max_step_pos, lim.max_step_pos)
        self._pos = np.clip(self._pos + dpos, measured_pos - lim.max_lead_pos, measured_pos + lim.max_lead_pos)
        drot = np.clip(twist[3:] * lim.max_angular * self.dt, -lim.max_step_rot, lim.max_step_rot)
        quat = quat_mul(rotvec_to_quat(drot), self._quat)  # world-frame rotation increment
        lead = quat_mul(quat, measured_quat * np.array([1, -1, -1, -1]))  # target relative to measured
        if np.linalg.norm(quat_to_rotvec(lead)) <= lim.max_lead_rot:
            self._quat = quat / np.linalg.norm(quat)
        self._rotvec = rotvec_near(quat_to_rotvec(self._quat), self._rotvec)
        return np.concatenate([self._pos, self._rotvec, [self.gripper]]).astype(np.float32)


class JointTargetMapper:
    """Joint-position drivers: twist component i moves joint i (gripper joint from the gripper command)."""

    def __init__(self, joint_names: Sequence[str], lower: Sequence[float], upper: Sequence[float],
                 limits: TeleopLimits | None = None, dt: float = 0.05) -> None:
        self.names = list(joint_names)
        self.lower, self.upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
        self.limits = limits or TeleopLimits()
        self.dt = float(dt)
        self.gripper_index = self.names.index("gripper") if "gripper" in self.names else None
        self.arm = [i for i in range(len(self.names)) if i != self.gripper_index][:6]
        self.gripper = GRIPPER_OPEN
        self._target: np.ndarray | None = None

    def reset(self) -> None:
        self._target = None

    def step(self, inp: TeleopInput, reference: Sequence[float]) -> np.ndarray | None:
        if inp.gripper is not None:
            self.gripper = float(np.clip(inp.gripper, -1.0, 1.0))
        if not inp.deadman:
            self.reset()
            return None
        twist, lim = _twist(inp), self.limits
        measured = np.asarray(reference, dtype=np.float64)
        if self._target is None:
            self._target = measured.copy()
        delta = np.zeros_like(measured)
        delta[self.arm] = twist[:len(self.arm)] * lim.max_joint_speed * self.dt
        target = np.clip(self._target + delta, measured - lim.max_lead_joint, measured + lim.max_lead_joint)
        if self.gripper_index is not None:
            g = self.gripper_index
            target[g] = self.lower[g] + (self.gripper + 1.0) / 2.0 * (self.upper[g] - self.lower[g])
        self._target = np.clip(target, self.lower, self.upper)
        return self._target.astype(np.float32)


def make_mapper(driver, limits: TeleopLimits | None = None) -> EETargetMapper | JointTargetMapper:
    """The mapper for a (never connected) driver's action space."""
    names = tuple(driver.action_features["action"].names or ())
    dt = 1.0 / driver.fps
    if names == EE_TARGET_NAMES:
        return EETargetMapper(limits, dt)
    safety = driver.safety_limits
    if safety.lower is None or safety.upper is None:
        raise TeleopError(f"driver {driver.name}: joint-space teleop needs joint limits in its safety limits")
    return JointTargetMapper(names, safety.lower, safety.upper, limits, dt)
