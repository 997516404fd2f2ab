"""The gait prior of the legged policies: a trot clock, its contact schedule and an open-loop trot generator. Pure
numpy, shared by the training env and the deployed policy (like :mod:`robot_irl.legged.observations`).

Why. PPO from scratch needs tens of millions of env steps before a quadruped discovers stepping (legged_gym's flat
Go1/ANYmal runs: 4096 envs x ~300 iterations); a CPU budget buys two to four million. Two proven priors make
velocity tracking emerge in that budget (both measured, see ``bench/`` and the HIB experiment's notes):

* **a gait clock** (Siekmann et al. 2021, "periodic reward composition"): the phase ``2 pi f t`` of a trot is part
  of the proprioceptive observation (sin, cos; :class:`~robot_irl.legged.observations.ProprioSpec`
  ``gait_frequency``) and a reward term pays each foot for being in contact when the schedule says stance and in
  the air when it says swing (:func:`contact_schedule`); commands that ask to stand ask for four feet down;
* **a trot generator** (PMTG, Iscen et al. 2018): joint targets are ``default pose + trot_offsets(phase) +
  action_scale * action``; the generator steps in place (each foot lifted straight up under its hip in swing,
  diagonal pairs FR+RL and FL+RR in antiphase), so the policy starts from a stepping robot and only learns where to
  put the feet. It rests (offsets 0) when the command asks to stand.

The clock is time since the episode (or, deployed, since :meth:`~robot_irl.legged.policy.LeggedPolicy.reset`)
started: the env and the policy each count their own steps, nothing else is needed on the robot.

Leg order is Unitree's (FR, FL, RR, RL); leg ``i`` is in swing while ``sin(phase + LEG_OFFSETS[i]) > 0``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_irl.core.config import Config, check

#: phase offset of each leg (FR, FL, RR, RL): a trot, diagonal pairs in antiphase
LEG_OFFSETS = np.array([0.0, np.pi, np.pi, 0.0])
#: (x, y) of each leg's thigh joint in the trunk frame (m, sim/go1.xml): where a yaw rate moves each foot
HIP_XY = np.array([[0.1881, -0.12755], [0.1881, 0.12755], [-0.1881, -0.12755], [-0.1881, 0.12755]])


@dataclass
class GaitConfig(Config):
    """The gait clock and the trot generator (see the module docstring). ``frequency`` 0 turns both off."""

    frequency: float = 0.0  # Hz of the trot clock; 0: no clock in the observation, no generator
    generator: bool = False  # joint targets = default + trot_offsets + action_scale * action
    lift: float = 0.2  # rad: in swing the thigh turns by up to +lift and the calf by -2 * lift (foot lifted ~7 cm)
    stride_x: float = 0.0  # rad of thigh swing per m/s of the foot's commanded forward speed (0: step in place)
    stride_y: float = 0.0  # rad of hip abduction swing per m/s of the foot's commanded sideways speed
    stand_speed: float = 0.05  # commands with |v_xy| (m/s) and |wz| (rad/s) both below this ask to stand

    def validate(self) -> None:
        w = "GaitConfig"
        check(self.frequency >= 0, f"{w}.frequency", f"must be >= 0, got {self.frequency}")
        check(not self.generator or self.frequency > 0, f"{w}.generator", "needs a frequency > 0")
        check(0 <= self.lift <= 0.5, f"{w}.lift", f"must be in [0, 0.5] rad, got {self.lift}")
        check(self.stand_speed >= 0, f"{w}.stand_speed", "must be >= 0")
        check(0 <= self.stride_x <= 1.0 and 0 <= self.stride_y <= 1.0, f"{w}.stride_x",
              f"stride_x and stride_y must be in [0, 1] rad s/m, got {self.stride_x}, {self.stride_y}")

    @property
    def enabled(self) -> bool:
        return self.frequency > 0


def clock_phase(time_s, frequency: float) -> np.ndarray:
    """The gait phase ``2 pi f t`` (rad) of times ``time_s`` (s since the episode started)."""
    return 2.0 * np.pi * float(frequency) * np.asarray(time_s, dtype=np.float64)


def clock_features(time_s, frequency: float) -> np.ndarray:
    """``(..., 2)`` = (sin, cos) of the gait phase: the clock entries of the proprioceptive observation."""
    phase = clock_phase(time_s, frequency)
    return np.stack([np.sin(phase), np.cos(phase)], axis=-1)


def standing(command, stand_speed: float) -> np.ndarray:
    """``(...,)`` bool: the command ``(..., 3)`` asks the robot to stand (slower than ``stand_speed`` in every
    component)."""
    c = np.asarray(command, dtype=np.float64)
    return (np.linalg.norm(c[..., :2], axis=-1) < stand_speed) & (np.abs(c[..., 2]) < stand_speed)


def swing_profile(time_s, frequency: float) -> np.ndarray:
    """``(..., 4)`` in [0, 1]: how far each leg is into its swing (``max(sin(leg phase), 0)``; 0 in stance)."""
    phase = clock_phase(time_s, frequency)[..., None] + LEG_OFFSETS
    return np.maximum(np.sin(phase), 0.0)


def contact_schedule(time_s, frequency: float, command, stand_speed: float) -> np.ndarray:
    """``(..., 4)`` bool: the feet that should touch the ground (stance half of the cycle; all four when the command
    asks to stand)."""
    phase = clock_phase(time_s, frequency)[..., None] + LEG_OFFSETS
    stance = np.sin(phase) <= 0.0
    return stance | standing(command, stand_speed)[..., None]


def trot_offsets(time_s, command, config: GaitConfig) -> np.ndarray:
    """``(..., 12)`` joint-target offsets (rad, added to the default pose) of the trot generator: each foot lifted
    straight up under its hip in swing (thigh ``+lift * s``, calf ``-2 * lift * s``, ``s`` the swing profile: with
    equal thigh and calf lengths the foot then stays above where it stood); with ``stride_x``/``stride_y``, a
    stride toward the commanded velocity of that foot (the base's ``v_xy`` plus ``w_z x`` its hip position): the
    thigh swings by ``stride_x * v_foot_x * cos(leg phase)`` (forward in swing, back in stance) and the hip
    abduction by ``-stride_y * v_foot_y * cos(leg phase)``. Zeros when the command asks to stand or the generator
    is off."""
    t = np.asarray(time_s, dtype=np.float64)
    cmd = np.asarray(command, dtype=np.float64)
    shape = np.broadcast_shapes(t.shape, cmd.shape[:-1])
    out = np.zeros((*shape, 4, 3))
    if config.generator and config.frequency > 0:
        moving = ~standing(cmd, config.stand_speed)[..., None]
        s = swing_profile(t, config.frequency) * moving
        out[..., 1] = config.lift * s
        out[..., 2] = -2.0 * config.lift * s
        if config.stride_x or config.stride_y:
            c = np.cos(clock_phase(t, config.frequency)[..., None] + LEG_OFFSETS) * moving
            vx = cmd[..., 0:1] - cmd[..., 2:3] * HIP_XY[:, 1]
            vy = cmd[..., 1:2] + cmd[..., 2:3] * HIP_XY[:, 0]
            out[..., 1] += config.stride_x * vx * c
            out[..., 0] -= config.stride_y * vy * c
    return out.reshape(*shape, 12)


__all__ = ["LEG_OFFSETS", "GaitConfig", "clock_features", "clock_phase", "contact_schedule", "standing",
           "swing_profile", "trot_offsets"]
