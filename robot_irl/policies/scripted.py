"""Non-learned policies: a seeded random policy and a scripted pick (Lift) / pick-and-place (Stack) expert.

:class:`ScriptedPolicy` reads only the observation (``observation.state`` and ``observation.environment_state``,
located by feature *names*, so it also works on a driver reached over ROS) and emits absolute end-effector targets
for :class:`robot_irl.drivers.robosuite_arm.RobosuiteDriver` with ``control="ee_target"``. It is a small state
machine (approach above the object, descend, close, lift, ...) that always aims at the final waypoint and lets the
driver's safety layer cut each tick's step; optional gaussian noise on the pose targets makes it a "noisy expert"
for offline-RL data. The object to pick is chosen by name (``target``, e.g. a distractor) and may be changed
mid-episode with :meth:`ScriptedPolicy.set_target`; :meth:`ScriptedPolicy.release` puts a held object down and
lets go, and :meth:`ScriptedPolicy.restart` goes back to a phase. The reactive ADC operator
(:class:`robot_irl.collect.operators.ScriptedOperator`) drives the policy through these.

:class:`RandomPolicy` samples uniformly inside the driver's safety bounds, or takes small random steps around
the driver's hold action; both are seeded.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from robot_irl.core.contracts import Policy, RobotDriver
from robot_irl.core.features import Feature
from robot_irl.core.safety import SafetyLimits
from robot_irl.drivers.robosuite_arm import (
    action_names,
    environment_state_names,
    quat_mul,
    quat_to_mat,
    quat_to_rotvec,
    rotvec_to_quat,
    state_names,
)

OPEN, CLOSED = -1.0, 1.0
#: phases in which the gripper is closed on the object
HOLDING_PHASES = ("grasp", "lift", "carry", "lower")
#: phases of :meth:`ScriptedPolicy.release`: lower the held object to where it was picked, open, rise
RELEASE_PHASES = ("put_down", "let_go", "back_off")


def _wrap_quarter_turn(angle: float) -> float:
    """``angle`` modulo pi/2, in [-pi/4, pi/4): a cube looks the same every quarter turn."""
    return (angle + np.pi / 4) % (np.pi / 2) - np.pi / 4


def _yaw(quat) -> float:
    """Heading (rad) of the x axis of the frame ``quat`` (w, x, y, z), projected on the horizontal plane."""
    r = quat_to_mat(quat)
    return float(np.arctan2(r[1, 0], r[0, 0]))


class RandomPolicy(Policy):
    """Seeded random actions that respect the safety bounds.

    ``mode="uniform"``: each action uniform in ``[lower, upper]`` (and inside the workspace box, if any).
    ``mode="delta"``: the driver's hold action plus a uniform step of at most ``scale`` times the per-tick step
    bound (needs ``hold``, a callable returning the hold action, e.g. ``driver.hold_action``).
    """

    name = "random"

    def __init__(self, limits: SafetyLimits, mode: Literal["uniform", "delta"] = "uniform", scale: float = 0.5,
                 seed: int | None = 0, hold=None) -> None:
        if mode not in ("uniform", "delta"):
            raise ValueError(f"RandomPolicy.mode must be 'uniform' or 'delta', got {mode!r}")
        if mode == "uniform" and (limits.lower is None or limits.upper is None
                                  or not np.all(np.isfinite(limits.lower + limits.upper))):
            raise ValueError("RandomPolicy(mode='uniform') needs finite lower/upper safety bounds")
        if mode == "delta" and (hold is None or limits.step_bound() is None):
            raise ValueError("RandomPolicy(mode='delta') needs a hold callable and a per-tick step bound")
        if not 0 < scale <= 1:
            raise ValueError(f"RandomPolicy.scale must be in (0, 1], got {scale}")
        self.limits, self.mode, self.scale, self.hold = limits, mode, scale, hold
        self._seed = seed
        self._rng = np.random.default_rng(seed)

    @classmethod
    def from_driver(cls, driver: RobotDriver, seed: int | None = 0, noise: float = 0.0, **kwargs) -> RandomPolicy:
        """Small random steps around the hold action (``noise`` in (0, 1] overrides the step ``scale``)."""
        if noise > 0:
            kwargs.setdefault("scale", min(float(noise), 1.0))
        kwargs.setdefault("mode", "delta")
        return cls(driver.safety_limits, seed=seed, hold=driver.hold_action, **kwargs)

    def reset(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(self._seed if seed is None else seed)

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        lim = self.limits
        if self.mode == "delta":
            step = lim.step_bound() * self.scale
            action = np.asarray(self.hold(), dtype=np.float64) + self._rng.uniform(-step, step)
        else:
            action = self._rng.uniform(lim.lower, lim.upper)
        if lim.lower is not None:
            action = np.clip(action, lim.lower, lim.upper)
        if lim.workspace_low is not None:
            idx = list(lim.workspace_dims)
            action[idx] = np.clip(action[idx], lim.workspace_low, lim.workspace_high)
        return action.astype(np.float32)


class ScriptedPolicy(Policy):
    """Scripted expert for robosuite Lift and Stack in ``ee_target`` mode.

    ``ScriptedPolicy(task="lift", noise=0.0, seed=0)``; ``features`` (a driver's observation features) default
    to the robosuite driver's layout. ``noise``: std of gaussian noise added to the pose targets (m for position,
    rad for orientation); the gripper command is never noised. ``target``: the object to pick, by its name in
    ``observation.environment_state`` (default: the task's cube).
    """

    name = "scripted"
    TASKS = ("lift", "stack")

    def __init__(self, task: str = "lift", noise: float = 0.0, seed: int | None = 0,
                 features: dict[str, Feature] | None = None, hover: float = 0.08, lift_height: float = 0.2,
                 grasp_steps: int = 10, target: str | None = None) -> None:
        if task not in self.TASKS:
            raise ValueError(f"ScriptedPolicy solves {list(self.TASKS)}, not {task!r}")
        if noise < 0:
            raise ValueError(f"ScriptedPolicy.noise must be >= 0, got {noise}")
        self.task, self.noise = task, noise
        self.hover, self.lift_height, self.grasp_steps = hover, lift_height, grasp_steps
        self._seed = seed
        state = list(features["observation.state"].names) if features else state_names()
        self._env_names = (list(features["observation.environment_state"].names) if features
                           else environment_state_names(task, 3))
        self._eef = self._indices(state, "eef", "observation.state")
        self.default_target = "cube" if task == "lift" else "cubeA"
        self.set_target(target or self.default_target)
        self._place = self._indices(self._env_names, "cubeB", "observation.environment_state") \
            if task == "stack" else None
        self.reset(seed)

    @staticmethod
    def _indices(names: list[str], prefix: str, key: str) -> np.ndarray:
        wanted = [f"{prefix}.{k}" for k in ("x", "y", "z", "qw", "qx", "qy", "qz")]
        missing = [w for w in wanted if w not in names]
        if missing:
            raise ValueError(f"ScriptedPolicy: {key} lacks {missing} (has {names})")
        return np.array([names.index(w) for w in wanted])

    @classmethod
    def from_driver(cls, driver: RobotDriver, seed: int | None = 0, noise: float = 0.0, **kwargs) -> ScriptedPolicy:
        """Build for ``driver`` (its task and observation layout); it must take ``ee_target`` actions."""
        names = list(driver.action_features["action"].names or ())
        if names != action_names("ee_target"):
            raise ValueError(f"ScriptedPolicy needs end-effector target actions {action_names('ee_target')}; "
                             f"{driver.name} takes {names} (use control='ee_target')")
        feats = driver.observation_features
        env_names = feats["observation.environment_state"].names if "observation.environment_state" in feats else ()
        task = "stack" if any(n.startswith("cubeB.") for n in env_names or ()) else "lift"
        return cls(task=task, noise=noise, seed=seed, features=feats, **kwargs)

    def reset(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(self._seed if seed is None else seed)
        self._phase = "approach"
        self._count = 0
        self._down: np.ndarray | None = None  # gripper-down orientation at episode start
        self._grasp_quat: np.ndarray | None = None
        self._lift_z = 0.0
        self._grasp_z: float | None = None  # height of the object's centre when it was grasped
        self._hold_xy: np.ndarray | None = None  # where release() began

    # -- target and phase -----------------------------------------------------------------------------------------
    @property
    def target(self) -> str:
        """The object being picked (its name in ``observation.environment_state``)."""
        return self._target

    @property
    def objects(self) -> list[str]:
        """Objects whose pose is in the observation (possible targets)."""
        return [n[:-2] for n in self._env_names if n.endswith(".x") and f"{n[:-2]}.qz" in self._env_names]

    def set_target(self, name: str) -> None:
        """Pick ``name`` from now on (the phase is left as it is: see :meth:`restart` and :meth:`release`)."""
        self._pick = self._indices(self._env_names, name, "observation.environment_state")
        self._target = name

    @property
    def phase(self) -> str:
        """The state machine's phase: approach, descend, grasp, lift (Stack: carry, lower, release, retreat), or
        put_down, let_go, back_off while releasing."""
        return self._phase

    def restart(self, phase: str = "approach") -> None:
        """Go back to ``phase`` (forgetting the grasp orientation), e.g. after the object was pushed away."""
        self._grasp_quat = None
        self._advance(phase)

    def release(self, observation: dict[str, np.ndarray], holding: bool = True) -> None:
        """Let go of the object: lower it to where it was picked (when ``holding``), open, rise, then approach."""
        self._hold_xy = self.eef_pose(observation)[:2].copy()
        self._advance("put_down" if holding and self._grasp_z is not None else "let_go")

    def eef_pose(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """End-effector pose ``[x, y, z, qw, qx, qy, qz]`` from ``observation.state``."""
        return np.asarray(observation["observation.state"], dtype=np.float64)[self._eef]

    def object_pose(self, observation: dict[str, np.ndarray], name: str | None = None) -> np.ndarray:
        """Pose ``[x, y, z, qw, qx, qy, qz]`` of ``name`` (default: the target) from the environment state."""
        env = np.asarray(observation["observation.environment_state"], dtype=np.float64)
        index = self._pick if name is None else self._indices(self._env_names, name, "observation.environment_state")
        return env[index]

    # -- acting ---------------------------------------------------------------------------------------------------
    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        eef = self.eef_pose(observation)
        if self._down is None:
            self._down = eef[3:] / np.linalg.norm(eef[3:])
        pick = self.object_pose(observation)
        place = np.asarray(observation["observation.environment_state"], dtype=np.float64)[self._place] \
            if self._place is not None else None
        position, gripper = self._waypoint(eef[:3], pick, place)
        quat = self._grasp_quat if self._grasp_quat is not None else self._aligned(pick[3:])
        pose = np.concatenate([position, quat_to_rotvec(quat)])
        if self.noise > 0:
            pose = pose + self._rng.normal(0.0, self.noise, size=6)
        return np.concatenate([pose, [gripper]]).astype(np.float32)

    def _aligned(self, object_quat: np.ndarray) -> np.ndarray:
        """The start orientation turned about world z so the fingers line up with the object's faces."""
        turn = _wrap_quarter_turn(_yaw(object_quat) - _yaw(self._down))
        return quat_mul(rotvec_to_quat([0.0, 0.0, turn]), self._down)

    def _advance(self, phase: str) -> None:
        self._phase, self._count = phase, 0

    def _waypoint(self, eef: np.ndarray, pick: np.ndarray, place: np.ndarray | None) -> tuple[np.ndarray, float]:
        """Position target and gripper command for the current phase; moves to the next phase when reached."""
        above = pick[:3] + [0.0, 0.0, self.hover]
        grasp = pick[:3]
        self._count += 1
        phase = self._phase
        if phase in RELEASE_PHASES:
            return self._release_waypoint(eef)
        if phase == "approach":
            if self._near(eef, above, xy=0.012, z=0.02):
                self._advance("descend")
            return above, OPEN
        if phase == "descend":
            if self._near(eef, grasp, xy=0.012, z=0.008) or self._count > 30:
                self._advance("grasp")
            return grasp, OPEN
        if phase == "grasp":
            if self._count >= self.grasp_steps:
                self._grasp_quat = self._aligned(pick[3:])
                self._lift_z = float(grasp[2] + self.lift_height)
                self._grasp_z = float(grasp[2])
                self._advance("lift")
            return grasp, CLOSED
        if place is None:  # lift: raise the cube and hold it there
            return np.array([eef[0], eef[1], self._lift_z]), CLOSED
        return self._place_waypoint(eef, pick, place)

    def _release_waypoint(self, eef: np.ndarray) -> tuple[np.ndarray, float]:
        """put_down (closed, down to the grasp height), let_go (open), back_off (open, up by ``hover``)."""
        xy = self._hold_xy if self._hold_xy is not None else eef[:2]
        rest_z = self._grasp_z if self._grasp_z is not None else float(eef[2])
        phase = self._phase
        if phase == "put_down":
            target = np.array([xy[0], xy[1], rest_z])
            if abs(eef[2] - rest_z) < 0.01 or self._count > 20:
                self._advance("let_go")
            return target, CLOSED
        if phase == "let_go":
            if self._count >= self.grasp_steps:
                self._advance("back_off")
            return np.array([xy[0], xy[1], max(float(eef[2]), rest_z)]), OPEN
        target = np.array([xy[0], xy[1], rest_z + self.hover])
        if eef[2] > target[2] - 0.02 or self._count > 20:
            self.restart("approach")
        return target, OPEN

    def _place_waypoint(self, eef: np.ndarray, pick: np.ndarray, place: np.ndarray) -> tuple[np.ndarray, float]:
        """Stack: carry the held cube above the other one, lower it, let go, back off."""
        carry_z = place[2] + 0.1
        over = np.array([place[0], place[1], carry_z])
        drop = np.array([place[0], place[1], place[2] + 0.05])
        phase = self._phase
        if phase == "lift":
            target = np.array([eef[0], eef[1], carry_z])
            if eef[2] > carry_z - 0.02:
                self._advance("carry")
            return target, CLOSED
        if phase == "carry":
            if self._near(eef, over, xy=0.01, z=0.02):
                self._advance("lower")
            return over, CLOSED
        if phase == "lower":
            if self._near(eef, drop, xy=0.01, z=0.008) or self._count > 30:
                self._advance("release")
            return drop, CLOSED
        if phase == "release":
            if self._count >= self.grasp_steps:
                self._advance("retreat")
            return drop, OPEN
        return over, OPEN  # retreat

    @staticmethod
    def _near(eef: np.ndarray, target: np.ndarray, xy: float, z: float) -> bool:
        return bool(np.linalg.norm(eef[:2] - target[:2]) < xy and abs(eef[2] - target[2]) < z)
