"""A small MuJoCo arm (``sim/small_arm.xml``): joint-position targets, a free cube, thousands of steps per second.

Cheap stand-in for a real arm: the robot emulator plays it, and tests use it wherever physics matters but the
Panda would be slow. The action is one absolute position target per actuated joint (``joint_names``, the gripper
included, in actuator order); position actuators in the model track them.

The module also holds the free-joint helpers both MuJoCo drivers share (teleport or push an object). MuJoCo is
imported when a driver is built, not at import, after defaulting ``MUJOCO_GL`` to ``egl``: the first
``import mujoco`` in a process fixes its OpenGL backend, and headless machines need EGL for cameras.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.core.config import Config, check
from robot_irl.core.contracts import RobotDriver
from robot_irl.core.features import Feature, vector
from robot_irl.core.perturbation import Perturbation, PerturbationBounds, PerturbationError, PerturbationKind
from robot_irl.core.safety import SafetyLimits


def import_mujoco():
    """``import mujoco`` with a headless OpenGL default (EGL) unless the caller chose one."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    import mujoco

    return mujoco


# -- free-joint helpers (pure numpy on qpos/qvel; shared with the robosuite driver) -------------------------------
def yaw_quat(yaw: float) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a rotation by ``yaw`` rad about world z."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def set_free_joint_pose(qpos: np.ndarray, qvel: np.ndarray, qadr: int, dadr: int,
                        params: dict[str, Any]) -> dict[str, list[float]]:
    """Teleport a free joint per ``move_object`` params (position and/or yaw or quat); zero its velocity.

    Returns the resulting ``position`` and ``quat`` (w, x, y, z).
    """
    if "position" in params:
        qpos[qadr:qadr + 3] = params["position"]
    if "quat" in params:
        quat = np.asarray(params["quat"], dtype=np.float64)
        norm = np.linalg.norm(quat)
        if norm < 1e-9:
            raise PerturbationError(f"move_object.quat {params['quat']} has zero length")
        qpos[qadr + 3:qadr + 7] = quat / norm
    elif "yaw" in params:
        qpos[qadr + 3:qadr + 7] = yaw_quat(params["yaw"])
    qvel[dadr:dadr + 6] = 0.0
    return {"position": qpos[qadr:qadr + 3].tolist(), "quat": qpos[qadr + 3:qadr + 7].tolist()}


def set_free_joint_velocity(qvel: np.ndarray, dadr: int, velocity) -> dict[str, list[float]]:
    """``push``: set a free joint's linear velocity (world frame, m/s); returns the applied ``velocity``."""
    qvel[dadr:dadr + 3] = velocity
    return {"velocity": qvel[dadr:dadr + 3].tolist()}


def free_joint_addresses(model, joint_name: str) -> tuple[int, int]:
    """(qpos address, dof address) of the free joint ``joint_name``; raises naming the joint if it is not free."""
    mujoco = import_mujoco()
    jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, joint_name)
    if jid < 0 or model.jnt_type[jid] != mujoco.mjtJoint.mjJNT_FREE:
        raise ValueError(f"{joint_name!r} is not a free joint of the model")
    return int(model.jnt_qposadr[jid]), int(model.jnt_dofadr[jid])


#: MuJoCo's warnings that mean the integration blew up (it then resets the data: the arm "teleports" home)
INSTABILITY_WARNINGS = ("mjWARN_BADQPOS", "mjWARN_BADQVEL", "mjWARN_BADQACC")


def simulation_problem(model, data, nstep: int) -> str | None:
    """Why the simulation in ``data`` is not sound, else ``None``: a non-finite state now, or a MuJoCo
    instability warning (or a non-finite state) within ``nstep`` physics steps, tried on a copy of ``data``
    (the real one is not advanced)."""
    mujoco = import_mujoco()
    for name in ("qpos", "qvel", "qacc"):
        if not np.all(np.isfinite(getattr(data, name))):
            return f"the simulation state has non-finite {name}"
    trial = copy.copy(data)
    warnings = {w: int(getattr(mujoco.mjtWarning, w)) for w in INSTABILITY_WARNINGS}
    counts = {w: trial.warning[i].number for w, i in warnings.items()}
    mujoco.mj_step(model, trial, nstep=max(1, int(nstep)))
    fired = [w for w, i in warnings.items() if trial.warning[i].number > counts[w]]
    if fired:
        return f"MuJoCo instability warning {fired} within {nstep} physics steps"
    if not (np.all(np.isfinite(trial.qpos)) and np.all(np.isfinite(trial.qvel))):
        return f"the simulation state turns non-finite within {nstep} physics steps"
    return None


def physics_state(model, data) -> np.ndarray:
    """Everything ``mj_step`` reads (time, qpos, qvel, act, warm start, controls, applied forces, mocap)."""
    mujoco = import_mujoco()
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    out = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, out, spec)
    return out


def restore_physics_state(model, data, state: np.ndarray, where: str) -> None:
    """Inverse of :func:`physics_state` (then ``mj_forward`` so derived quantities match)."""
    mujoco = import_mujoco()
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    size = mujoco.mj_stateSize(model, spec)
    state = np.asarray(state, dtype=np.float64)
    if state.shape != (size,):
        raise ValueError(f"{where}: physics state must have shape ({size},), got {state.shape}")
    mujoco.mj_setState(model, data, state, spec)
    mujoco.mj_forward(model, data)


# -- the driver -----------------------------------------------------------------------------------------------------
@dataclass
class MujocoArmConfig(Config):
    model: str = "small_arm.xml"  # a file under sim/, or a path
    control_freq: float = 20.0
    max_joint_step: float = 0.15  # rad per control tick (3 rad/s at 20 Hz)
    max_gripper_step: float = 0.04  # m per tick: the whole finger range
    cube_xy_low: tuple[float, float] = (0.18, -0.12)  # cube spawn box on the table (seeded resets)
    cube_xy_high: tuple[float, float] = (0.30, 0.12)
    instruction: str = "pick up the red cube"

    def validate(self) -> None:
        w = "MujocoArmConfig"
        check(bool(self.model), f"{w}.model", "must name an MJCF file")
        check(0 < self.control_freq <= 1000, f"{w}.control_freq", f"must be in (0, 1000] Hz, got {self.control_freq}")
        check(self.max_joint_step > 0, f"{w}.max_joint_step", "must be > 0")
        check(self.max_gripper_step > 0, f"{w}.max_gripper_step", "must be > 0")
        check(all(lo <= hi for lo, hi in zip(self.cube_xy_low, self.cube_xy_high)), f"{w}.cube_xy_low",
              f"must be <= cube_xy_high elementwise ({self.cube_xy_low} vs {self.cube_xy_high})")


class MujocoArmDriver(RobotDriver):
    """The small arm. ``joint_names`` = actuated joints in actuator order = the action's entries."""

    name = "mujoco_arm"
    config_class = MujocoArmConfig
    config: MujocoArmConfig

    GRIPPER_JOINT = "gripper"
    CUBE = "cube"

    def __init__(self, config: MujocoArmConfig | None = None) -> None:
        super().__init__(config)
        self._mj = import_mujoco()
        self.model_path = self._resolve_model(self.config.model)
        self.model = self._mj.MjModel.from_xml_path(str(self.model_path))
        self.data = None
        mj = self._mj
        joint_ids = [int(self.model.actuator_trnid[i, 0]) for i in range(self.model.nu)]
        if any(self.model.actuator_trntype[i] != mj.mjtTrn.mjTRN_JOINT for i in range(self.model.nu)):
            raise ValueError(f"{self.model_path}: every actuator must drive a joint")
        self._joint_names = tuple(mj.mj_id2name(self.model, mj.mjtObj.mjOBJ_JOINT, j) for j in joint_ids)
        self._qadr = np.array([self.model.jnt_qposadr[j] for j in joint_ids])
        self._dadr = np.array([self.model.jnt_dofadr[j] for j in joint_ids])
        self._range = np.array([self.model.jnt_range[j] for j in joint_ids])
        self._cube_qadr, self._cube_dadr = free_joint_addresses(self.model, self.CUBE)
        self._key_home = mj.mj_name2id(self.model, mj.mjtObj.mjOBJ_KEY, "home")
        period = 1.0 / self.config.control_freq
        self._substeps = round(period / self.model.opt.timestep)
        if self._substeps < 1 or abs(self._substeps * self.model.opt.timestep - period) > 1e-9:
            raise ValueError(f"{self.name}: control period {period} s is not a multiple of the model timestep "
                             f"{self.model.opt.timestep} s; pick control_freq accordingly")

    @staticmethod
    def _resolve_model(name: str) -> Path:
        path = Path(name)
        if path.is_file():
            return path
        from robot_irl.paths import asset

        return asset("sim", name)

    # -- description ----------------------------------------------------------------------------------------------
    @property
    def joint_names(self) -> tuple[str, ...]:
        return self._joint_names

    @property
    def observation_features(self) -> dict[str, Feature]:
        names = [f"{j}.pos" for j in self._joint_names] + [f"{j}.vel" for j in self._joint_names]
        cube = [f"cube.{k}" for k in ("x", "y", "z", "qw", "qx", "qy", "qz")]
        return {"observation.state": vector(names), "observation.environment_state": vector(cube)}

    @property
    def action_features(self) -> dict[str, Feature]:
        return {"action": vector(self._joint_names)}

    @property
    def safety_limits(self) -> SafetyLimits:
        step = [self.config.max_gripper_step if j == self.GRIPPER_JOINT else self.config.max_joint_step
                for j in self._joint_names]
        return SafetyLimits(self._joint_names, lower=self._range[:, 0], upper=self._range[:, 1], max_step=step,
                            dt=1.0 / self.config.control_freq)

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def _connect(self) -> None:
        self.data = self._mj.MjData(self.model)
        self._reset(None)

    def _disconnect(self) -> None:
        self.data = None

    def _reset(self, seed: int | None) -> dict[str, np.ndarray]:
        mj, m, d = self._mj, self.model, self.data
        if self._key_home >= 0:
            mj.mj_resetDataKeyframe(m, d, self._key_home)
        else:
            mj.mj_resetData(m, d)
            d.ctrl[:] = d.qpos[self._qadr]
        if seed is not None:
            rng = np.random.default_rng(seed)
            xy = rng.uniform(self.config.cube_xy_low, self.config.cube_xy_high)
            z = d.qpos[self._cube_qadr + 2]
            set_free_joint_pose(d.qpos, d.qvel, self._cube_qadr, self._cube_dadr,
                                {"position": [xy[0], xy[1], z], "yaw": rng.uniform(-np.pi, np.pi)})
        mj.mj_forward(m, d)
        return self._get_observation()

    # -- the loop -------------------------------------------------------------------------------------------------
    def _get_observation(self) -> dict[str, np.ndarray]:
        d = self.data
        state = np.concatenate([d.qpos[self._qadr], d.qvel[self._dadr]]).astype(np.float32)
        cube = d.qpos[self._cube_qadr:self._cube_qadr + 7].astype(np.float32)
        return {"observation.state": state, "observation.environment_state": cube}

    def _apply_action(self, action: np.ndarray) -> None:
        self.data.ctrl[:] = action.astype(np.float32)  # exactly what send_action returns: bit-exact replays
        self._mj.mj_step(self.model, self.data, nstep=self._substeps)

    def _safety_reference(self) -> np.ndarray:
        return self.data.qpos[self._qadr].copy()

    def task_status(self) -> dict[str, float | bool]:
        """Success: the cube is lifted 5 cm above the table; reward: its height above rest (m, >= 0)."""
        if self.data is None:
            return {}
        lift = float(self.data.qpos[self._cube_qadr + 2]) - 0.02
        return {"reward": max(lift, 0.0), "success": lift > 0.05}

    # -- perturbations --------------------------------------------------------------------------------------------
    #: the table top (z = 0, 1 x 1 m around x = 0.2) and 0.5 m above it
    PERTURBATION_BOUNDS = PerturbationBounds(workspace_low=(-0.3, -0.5, 0.0), workspace_high=(0.7, 0.5, 0.5))

    def perturbation_bounds(self) -> PerturbationBounds:
        return self.PERTURBATION_BOUNDS

    def perturbation_targets(self) -> dict[PerturbationKind, list[str]]:
        return {**super().perturbation_targets(),
                PerturbationKind.MOVE_OBJECT: [self.CUBE], PerturbationKind.PUSH: [self.CUBE]}

    def _simulation_problem(self) -> str | None:
        return simulation_problem(self.model, self.data, self._substeps)

    def _perturb(self, request: Perturbation) -> dict[str, Any]:
        d = self.data
        if request.kind is PerturbationKind.MOVE_OBJECT:
            applied = set_free_joint_pose(d.qpos, d.qvel, self._cube_qadr, self._cube_dadr, request.params)
        elif request.kind is PerturbationKind.PUSH:
            applied = set_free_joint_velocity(d.qvel, self._cube_dadr, request.params["velocity"])
        else:  # perturbation_targets() keeps other kinds out
            raise PerturbationError(f"{self.name} does not implement {request.kind.value}")
        self._mj.mj_forward(self.model, d)
        return applied

    # -- full state -----------------------------------------------------------------------------------------------
    def get_state(self) -> np.ndarray:
        """``[step_count, MuJoCo integration state...]``: restoring it reproduces the following steps exactly."""
        self._require_connected("get_state")
        return np.concatenate([[float(self._steps)], physics_state(self.model, self.data)])

    def set_state(self, state: np.ndarray) -> None:
        self._require_connected("set_state")
        state = np.asarray(state, dtype=np.float64)
        if state.ndim != 1 or state.size < 1:
            raise ValueError(f"{self.name}.set_state: expected a 1-D state vector, got shape {state.shape}")
        restore_physics_state(self.model, self.data, state[1:], f"{self.name}.set_state")
        self._steps = int(state[0])
