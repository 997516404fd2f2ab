"""The one proprioceptive observation function, shared by training (the vec env) and deployment (the driver).

Pure numpy, no MuJoCo: :func:`proprio_observation` turns what a real quadruped measures (joint positions and
velocities, the IMU's gyro and orientation) plus the velocity command and the policy's previous action into the
policy's input. :class:`robot_irl.legged.env.LeggedVecEnv` calls it on all its envs at once (then adds observation
noise); a deployed policy calls it on the driver's ``observation.state`` through :func:`proprio_from_state`, so
training and deployment can never disagree on order, scaling or the default pose.

Layout (45 values, legged_gym's order without base linear velocity, which a real robot does not measure; 47 with
the gait clock):

==================  ====  ================================================  =========
component           size  value                                             scale
==================  ====  ================================================  =========
``ang_vel``            3  base angular velocity, body frame (gyro), rad/s   0.25
``gravity``            3  unit gravity vector in the body frame             1
``command``            3  velocity command vx, vy (m/s), wz (rad/s)         2, 2, 0.25
``joint_pos``         12  joint position - default pose, rad                1
``joint_vel``         12  joint velocity, rad/s                             0.05
``last_action``       12  the previous policy action (nominally in [-1, 1])  1
``clock``              2  sin, cos of the gait phase ``2 pi f t`` (only      1
                          when ``ProprioSpec.gait_frequency`` > 0)
==================  ====  ================================================  =========

The gait clock (:mod:`robot_irl.legged.gait`) is the phase of the trot the policy was trained to step to: ``t`` is
the time since the episode started (``time_s``), which the env and the deployed policy each count themselves.

Joint order is Unitree's: FR, FL, RR, RL legs, each hip (abduction), thigh, calf (:data:`GO1_JOINT_NAMES`).
Inputs may be single vectors (one robot) or batches with a leading env dimension; the output follows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robot_irl.legged.gait import clock_features

#: the 12 actuated joints, in actuator (= action, = observation) order
GO1_JOINT_NAMES: tuple[str, ...] = tuple(f"{leg}_{part}" for leg in ("FR", "FL", "RR", "RL")
                                         for part in ("hip", "thigh", "calf"))
#: the standing pose (``home`` keyframe of sim/go1.xml): the action's zero
GO1_DEFAULT_POSE: tuple[float, ...] = (-0.1, 0.9, -1.8, 0.1, 0.9, -1.8, -0.1, 0.9, -1.8, 0.1, 0.9, -1.8)

#: observation components in order: name -> size
COMPONENTS: tuple[tuple[str, int], ...] = (("ang_vel", 3), ("gravity", 3), ("command", 3), ("joint_pos", 12),
                                           ("joint_vel", 12), ("last_action", 12), ("clock", 2))


@dataclass(frozen=True)
class ProprioSpec:
    """Joint order, default pose and scales of the proprioceptive observation (see the module docstring)."""

    joint_names: tuple[str, ...] = GO1_JOINT_NAMES
    default_pose: tuple[float, ...] = GO1_DEFAULT_POSE
    ang_vel_scale: float = 0.25
    command_scale: tuple[float, float, float] = (2.0, 2.0, 0.25)
    joint_pos_scale: float = 1.0
    joint_vel_scale: float = 0.05
    gait_frequency: float = 0.0  # Hz of the gait clock in the observation; 0: no clock (45 values)
    _slices: dict = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.default_pose) != len(self.joint_names):
            raise ValueError(f"ProprioSpec: {len(self.default_pose)} default positions for "
                             f"{len(self.joint_names)} joints")
        if len(self.command_scale) != 3:
            raise ValueError("ProprioSpec.command_scale needs 3 values (vx, vy, wz)")
        if not self.gait_frequency >= 0:
            raise ValueError(f"ProprioSpec.gait_frequency must be >= 0, got {self.gait_frequency}")
        n = len(self.joint_names)
        sizes = [(name, n if size == 12 else size) for name, size in COMPONENTS]
        if not self.has_clock:
            sizes = [(name, 0 if name == "clock" else size) for name, size in sizes]
        slices, start = {}, 0
        for name, size in sizes:
            slices[name] = slice(start, start + size)
            start += size
        object.__setattr__(self, "_slices", slices)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def has_clock(self) -> bool:
        return self.gait_frequency > 0

    @property
    def obs_dim(self) -> int:
        return self._slices["clock"].stop

    @property
    def slices(self) -> dict[str, slice]:
        """Component name -> its slice of the observation vector."""
        return dict(self._slices)

    @property
    def names(self) -> tuple[str, ...]:
        """One name per observation entry, e.g. ``ang_vel.x``, ``joint_pos.FR_hip``, ``last_action.RL_calf``."""
        out = [f"ang_vel.{a}" for a in "xyz"] + [f"gravity.{a}" for a in "xyz"] + ["command.vx", "command.vy",
                                                                                  "command.wz"]
        for comp in ("joint_pos", "joint_vel", "last_action"):
            out += [f"{comp}.{j}" for j in self.joint_names]
        if self.has_clock:
            out += ["clock.sin", "clock.cos"]
        return tuple(out)

    def scale_vector(self) -> np.ndarray:
        """Per-entry scale applied to the physical quantity (1 for gravity and the last action)."""
        s = np.ones(self.obs_dim)
        s[self._slices["ang_vel"]] = self.ang_vel_scale
        s[self._slices["command"]] = self.command_scale
        s[self._slices["joint_pos"]] = self.joint_pos_scale
        s[self._slices["joint_vel"]] = self.joint_vel_scale
        return s

    def to_dict(self) -> dict:
        return {"joint_names": list(self.joint_names), "default_pose": list(self.default_pose),
                "ang_vel_scale": self.ang_vel_scale, "command_scale": list(self.command_scale),
                "joint_pos_scale": self.joint_pos_scale, "joint_vel_scale": self.joint_vel_scale,
                "gait_frequency": self.gait_frequency, "names": list(self.names)}

    @classmethod
    def from_dict(cls, d: dict) -> ProprioSpec:
        return cls(tuple(d["joint_names"]), tuple(float(x) for x in d["default_pose"]), float(d["ang_vel_scale"]),
                   tuple(float(x) for x in d["command_scale"]), float(d["joint_pos_scale"]),
                   float(d["joint_vel_scale"]), float(d.get("gait_frequency", 0.0)))  # (older checkpoints: none)


def projected_gravity(quat_wxyz) -> np.ndarray:
    """The world's unit gravity (0, 0, -1) expressed in the body frame of orientation ``quat_wxyz`` (..., 4)."""
    q = np.asarray(quat_wxyz, dtype=np.float64)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    norm2 = w * w + x * x + y * y + z * z
    norm2 = np.where(norm2 > 0, norm2, 1.0)
    # R^T @ (0, 0, -1) = -(third row of R), for R the body-to-world rotation of q
    gx = -2.0 * (x * z - w * y) / norm2
    gy = -2.0 * (y * z + w * x) / norm2
    gz = -(1.0 - 2.0 * (x * x + y * y) / norm2)
    return np.stack([gx, gy, gz], axis=-1)


def proprio_observation(joint_pos, joint_vel, gyro, base_quat_wxyz, command, last_action,
                        spec: ProprioSpec | None = None, time_s=None) -> np.ndarray:
    """The policy's proprioceptive observation, float32, ``(N, obs_dim)`` (or ``(obs_dim,)`` for 1-D inputs).

    joint_pos/joint_vel: (N, 12) rad, rad/s in ``spec.joint_names`` order; gyro: (N, 3) body-frame angular
    velocity, rad/s; base_quat_wxyz: (N, 4) base orientation; command: (N, 3) or (3,) vx, vy (m/s), wz (rad/s);
    last_action: (N, 12) the previous action as the policy output it; time_s: (N,) or a scalar, seconds since the
    episode started (needed, and only used, when the spec has a gait clock).
    """
    spec = spec or ProprioSpec()
    single = np.ndim(joint_pos) == 1
    q = np.atleast_2d(np.asarray(joint_pos, dtype=np.float64))
    n, nj = q.shape[0], spec.num_joints
    parts = {"joint_pos": q, "joint_vel": joint_vel, "ang_vel": gyro, "base_quat_wxyz": base_quat_wxyz,
             "command": command, "last_action": last_action}
    sizes = {"joint_pos": nj, "joint_vel": nj, "ang_vel": 3, "base_quat_wxyz": 4, "command": 3, "last_action": nj}
    arrays = {}
    for key, value in parts.items():
        a = np.asarray(value, dtype=np.float64)
        a = np.broadcast_to(a, (n, a.shape[-1])) if a.ndim == 1 else a
        if a.shape != (n, sizes[key]):
            raise ValueError(f"proprio_observation: {key} must have shape ({n}, {sizes[key]}), got {a.shape}")
        arrays[key] = a
    out = np.empty((n, spec.obs_dim), dtype=np.float32)
    s = spec.slices
    out[:, s["ang_vel"]] = arrays["ang_vel"] * spec.ang_vel_scale
    out[:, s["gravity"]] = projected_gravity(arrays["base_quat_wxyz"])
    out[:, s["command"]] = arrays["command"] * np.asarray(spec.command_scale)
    out[:, s["joint_pos"]] = (arrays["joint_pos"] - np.asarray(spec.default_pose)) * spec.joint_pos_scale
    out[:, s["joint_vel"]] = arrays["joint_vel"] * spec.joint_vel_scale
    out[:, s["last_action"]] = arrays["last_action"]
    if spec.has_clock:
        if time_s is None:
            raise ValueError("proprio_observation: this spec has a gait clock; pass time_s (s since the episode "
                             "started)")
        t = np.asarray(time_s, dtype=np.float64).reshape(-1)
        if t.shape not in ((1,), (n,)) or not np.all(np.isfinite(t)):
            raise ValueError(f"proprio_observation: time_s must be a finite scalar or ({n},), got shape {t.shape}")
        out[:, s["clock"]] = clock_features(np.broadcast_to(t, (n,)), spec.gait_frequency)
    return out[0] if single else out


def state_names(joint_names: tuple[str, ...] = GO1_JOINT_NAMES) -> tuple[str, ...]:
    """Names of the Go1 driver's ``observation.state``: ``<joint>.pos`` x12, ``<joint>.vel`` x12, IMU quat, gyro,
    accelerometer."""
    return (tuple(f"{j}.pos" for j in joint_names) + tuple(f"{j}.vel" for j in joint_names)
            + ("imu.qw", "imu.qx", "imu.qy", "imu.qz", "imu.wx", "imu.wy", "imu.wz", "imu.ax", "imu.ay", "imu.az"))


def proprio_from_state(state, command, last_action, spec: ProprioSpec | None = None, time_s=None) -> np.ndarray:
    """:func:`proprio_observation` from the driver's ``observation.state`` vector(s) (see :func:`state_names`)."""
    spec = spec or ProprioSpec()
    s = np.asarray(state, dtype=np.float64)
    nj = spec.num_joints
    if s.shape[-1] != 2 * nj + 10:
        raise ValueError(f"proprio_from_state: observation.state must have {2 * nj + 10} entries "
                         f"({nj} pos, {nj} vel, 10 IMU), got shape {s.shape}")
    return proprio_observation(s[..., :nj], s[..., nj:2 * nj], s[..., 2 * nj + 4:2 * nj + 7],
                               s[..., 2 * nj:2 * nj + 4], command, last_action, spec, time_s)
