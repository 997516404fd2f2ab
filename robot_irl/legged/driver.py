"""The Go1 simulation as a ``RobotDriver`` (registered as ``go1``): the same robot the vec env trains on, behind
the driver contract, so a legged policy runs through ``driver_node``, the graph and the rollout runner unchanged.

Action: 12 absolute joint position targets (``<joint>.pos``, Unitree order FR, FL, RR, RL x hip, thigh, calf),
through the base class's safety layer (joint limits, a per-tick step limit around the measured position), then
delayed by the model variant's and the randomization's action delay inside the 5 physics substeps of a 50 Hz tick,
exactly as :class:`robot_irl.legged.env.LeggedVecEnv` does (:func:`robot_irl.legged.model.substep_controls`).
``hold_action()`` (the watchdog's) is the last target sent, the default standing pose after a reset.

Observation: ``observation.state`` = joint positions, joint velocities, IMU orientation (w, x, y, z), gyro and
accelerometer (body frame): what the real robot measures, names in
:func:`robot_irl.legged.observations.state_names`; a deployed policy builds its input from it with
:func:`robot_irl.legged.observations.proprio_from_state`. ``observation.environment_state`` holds sim-only truths
(base position, base linear velocity in world and body frames, height above the ground, foot contacts, the
normalised privileged dynamics factors) that a deployable policy must not use. The gyro and orientation are read
from the state after the last substep (as the env's observation is); the accelerometer is MuJoCo's sensor of the
last substep. The driver adds no observation noise (that is a training-time randomization of the env).

Dynamics: ``randomization`` (a preset name, default ``none``) is sampled at every reset (seeded) and written into the
driver's model; ``model_variant="sim2sim"`` is the differently tuned robot. ``task_status()`` gives the env's
reward for the configured velocity ``command`` and ``success`` = not fallen since the reset. Perturbations: ``push``
on ``trunk`` adds a velocity kick (m/s, world frame) to the trunk, ``move_object`` on ``trunk`` teleports it.
``get_state``/``set_state`` cover the physics, the delay line, the sampled dynamics and the reward memory, so a
restored driver replays exactly.

:class:`TrotPolicy` is an open-loop trot (absolute joint targets) for smoke tests and demos.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_irl.core.config import Config, check
from robot_irl.core.contracts import Policy, RobotDriver
from robot_irl.core.features import Feature, vector
from robot_irl.core.perturbation import Perturbation, PerturbationBounds, PerturbationError, PerturbationKind
from robot_irl.core.safety import SafetyLimits
from robot_irl.drivers.mujoco_arm import (
    physics_state,
    restore_physics_state,
    set_free_joint_pose,
    simulation_problem,
)
from robot_irl.legged import LEGGED_TASKS
from robot_irl.legged import randomization as dr
from robot_irl.legged.env import LeggedEnvConfig, RewardComputer, quat_to_matrix
from robot_irl.legged.model import (
    DEFAULT_POSE,
    FEET,
    JOINT_NAMES,
    PHYSICS_DT,
    VARIANTS,
    apply_dynamics,
    build_model,
    delay_steps_of,
    history_length,
    import_mujoco,
    substep_controls,
)
from robot_irl.legged.observations import ProprioSpec, state_names


@dataclass
class Go1Config(Config):
    task: str = "go1_flat"  # go1_flat | go1_rough
    control_freq: float = 50.0
    model_variant: str = "default"  # default | sim2sim
    randomization: str = "none"  # train | held_out | none: dynamics sampled at every reset
    seed: int = 0  # seeds resets without an explicit seed (dynamics, rough-ground spawn)
    terrain_seed: int = 0
    command: tuple[float, float, float] = (0.5, 0.0, 0.0)  # vx, vy (m/s), wz (rad/s): what task_status rewards
    max_joint_step: float = 1.0  # rad per tick around the measured position (safety layer)
    action_scale: float = 0.25  # the env's, to express targets as policy actions for the reward
    tilt_limit: float = 1.0  # rad: beyond it the robot has fallen
    instruction: str = "walk at the commanded velocity"

    def validate(self) -> None:
        w = "Go1Config"
        check(self.task in LEGGED_TASKS, f"{w}.task", f"unknown task {self.task!r}; known: {LEGGED_TASKS.names()}")
        check(self.model_variant in VARIANTS, f"{w}.model_variant",
              f"unknown variant {self.model_variant!r}; known: {sorted(VARIANTS)}")
        check(self.randomization in dr.PRESETS, f"{w}.randomization",
              f"unknown preset {self.randomization!r}; known presets: {sorted(dr.PRESETS)}")
        check(self.control_freq > 0, f"{w}.control_freq", "must be > 0")
        substeps = 1.0 / (self.control_freq * PHYSICS_DT)
        check(abs(substeps - round(substeps)) < 1e-6 and round(substeps) >= 1, f"{w}.control_freq",
              f"the control period must be a multiple of the {PHYSICS_DT} s physics step, got {self.control_freq} Hz")
        check(all(np.isfinite(self.command)), f"{w}.command", "must be finite")
        check(self.max_joint_step > 0, f"{w}.max_joint_step", "must be > 0")
        check(self.action_scale > 0, f"{w}.action_scale", "must be > 0")
        check(0 < self.tilt_limit <= np.pi, f"{w}.tilt_limit", "must be in (0, pi]")


class Go1Driver(RobotDriver):
    """The simulated Go1 (see the module docstring)."""

    name = "go1"
    config_class = Go1Config
    config: Go1Config

    TRUNK = "trunk"

    def __init__(self, config: Go1Config | None = None) -> None:
        super().__init__(config)
        c = self.config
        self._mj = import_mujoco()
        self.task = LEGGED_TASKS.get(c.task)
        self.built = build_model(self.task.terrain, c.model_variant, c.terrain_seed)
        self.model = self.built.model
        self.layout = self.built.layout
        self.data = None
        self.spec = ProprioSpec()
        self.randomization = dr.get_randomization(c.randomization)
        self.sampler = dr.DynamicsSampler(self.randomization, self.layout.nominal_friction)
        self.substeps = int(round(1.0 / (c.control_freq * PHYSICS_DT)))
        max_delay = self.layout.intrinsic_delay_steps + int(dr.delay_steps(self.randomization.max_delay_ms()))
        self._history = np.tile(DEFAULT_POSE, (1, history_length(max_delay, self.substeps), 1))
        self.params = self.sampler.nominal()
        self.delay = np.zeros(1, dtype=np.int64)
        self.command = np.asarray(c.command, dtype=np.float64)
        self._rewards = RewardComputer(LeggedEnvConfig().rewards, 1, 1.0 / c.control_freq)
        self._rng = np.random.default_rng(c.seed)
        self._fallen = False
        self._last_reward = 0.0
        self._key_home = self._mj.mj_name2id(self.model, self._mj.mjtObj.mjOBJ_KEY, "home")
        self._foot_contact = np.zeros(4, dtype=bool)

    # -- description ----------------------------------------------------------------------------------------------
    @property
    def joint_names(self) -> tuple[str, ...]:
        return JOINT_NAMES

    @property
    def observation_features(self) -> dict[str, Feature]:
        env = (["base.x", "base.y", "base.z", "base.vx_world", "base.vy_world", "base.vz_world", "base.vx",
                "base.vy", "base.vz", "base.height"] + [f"{f}.contact" for f in FEET]
               + [f"privileged.{p}" for p in dr.PRIVILEGED_NAMES])
        return {"observation.state": vector(state_names(JOINT_NAMES)), "observation.environment_state": vector(env)}

    @property
    def action_features(self) -> dict[str, Feature]:
        return {"action": vector([f"{j}.pos" for j in JOINT_NAMES])}

    @property
    def safety_limits(self) -> SafetyLimits:
        rng = self.layout.joint_range
        return SafetyLimits(tuple(f"{j}.pos" for j in JOINT_NAMES), lower=rng[:, 0], upper=rng[:, 1],
                            max_step=[self.config.max_joint_step] * 12, dt=1.0 / self.config.control_freq)

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def _connect(self) -> None:
        self.data = self._mj.MjData(self.model)
        self._reset(None)

    def _disconnect(self) -> None:
        self.data = None

    def _reset(self, seed: int | None) -> dict[str, np.ndarray]:
        mj, m, d, lay = self._mj, self.model, self.data, self.layout
        rng = np.random.default_rng(seed) if seed is not None else self._rng
        self._set_dynamics(self.sampler.sample(rng, 1)[0])
        mj.mj_resetDataKeyframe(m, d, self._key_home)
        half = self.task.spawn_half_extent_m
        xy = rng.uniform(-half, half, 2) if half > 0 else np.zeros(2)
        d.qpos[lay.root_qadr:lay.root_qadr + 2] = xy
        d.qpos[lay.root_qadr + 2] = float(self.built.spawn_height(xy[0], xy[1]))
        d.ctrl[:] = DEFAULT_POSE
        self._history[:] = DEFAULT_POSE
        self._rewards.reset(slice(None))
        self._fallen = False
        self._last_reward = 0.0
        self._foot_contact[:] = True
        mj.mj_forward(m, d)
        return self._get_observation()

    def _set_dynamics(self, params: np.ndarray) -> None:
        self.params = np.asarray(params, dtype=np.float64).copy()
        apply_dynamics(self.model, self.layout, self.params)
        self.delay = delay_steps_of(self.layout, self.params)

    # -- the loop -------------------------------------------------------------------------------------------------
    def _base(self) -> dict[str, np.ndarray]:
        d, lay = self.data, self.layout
        r = lay.root_qadr
        quat = d.qpos[r + 3:r + 7] / np.linalg.norm(d.qpos[r + 3:r + 7])
        rot = quat_to_matrix(quat[None])[0]
        v = d.qvel[lay.root_dadr:lay.root_dadr + 3]
        return {"pos": d.qpos[r:r + 3].copy(), "quat": quat, "rot": rot, "vel_world": v.copy(), "vel_body": rot.T @ v,
                "gyro": d.qvel[lay.root_dadr + 3:lay.root_dadr + 6].copy()}

    def _get_observation(self) -> dict[str, np.ndarray]:
        d, lay = self.data, self.layout
        b = self._base()
        state = np.concatenate([d.qpos[lay.joint_qadr], d.qvel[lay.joint_dadr], b["quat"], b["gyro"],
                                d.sensordata[lay.accelerometer]]).astype(np.float32)
        height = b["pos"][2] - float(self.built.ground_height(b["pos"][0], b["pos"][1]))
        env = np.concatenate([b["pos"], b["vel_world"], b["vel_body"], [height], self._foot_contact.astype(float),
                              dr.normalize_privileged(self.params)]).astype(np.float32)
        return {"observation.state": state, "observation.environment_state": env}

    def _apply_action(self, action: np.ndarray) -> None:
        mj, m, d = self._mj, self.model, self.data
        target = action.astype(np.float32).astype(np.float64)  # exactly what send_action returns
        self._history[:, :-1] = self._history[:, 1:]
        self._history[:, -1] = target
        ctrl = substep_controls(self._history, self.delay, self.substeps)[0]
        touched = np.zeros(m.nsensordata, dtype=bool)
        for s in range(self.substeps):
            d.ctrl[:] = ctrl[s]
            mj.mj_step(m, d)
            touched |= d.sensordata > 0.5
        self._score(target, touched)

    def _score(self, target: np.ndarray, touched: np.ndarray) -> None:
        """Advance the reward memory and the fall flag after one tick (the env's terms, for one robot)."""
        d, lay = self.data, self.layout
        b = self._base()
        foot = touched[lay.foot_contact]
        thigh, calf = touched[lay.thigh_contact], touched[lay.calf_contact]
        gravity = -b["rot"][2, :]
        fell = bool(touched[lay.trunk_contact] or thigh.any() or gravity[2] > -np.cos(self.config.tilt_limit))
        height = b["pos"][2] - float(self.built.ground_height(b["pos"][0], b["pos"][1]))
        action = (target - DEFAULT_POSE) / self.config.action_scale
        terms = self._rewards.compute(
            command=self.command[None], lin_vel_body=b["vel_body"][None], ang_vel_body=b["gyro"][None],
            gravity_body=gravity[None], base_height=np.array([height]),
            torques=d.sensordata[lay.actuator_force][None], joint_vel=d.qvel[lay.joint_dadr][None],
            action=action[None], foot_contact=foot[None], collisions=np.array([thigh.sum() + calf.sum()]),
            fell=np.array([fell and not self._fallen]))
        self._last_reward = float(sum(float(v[0]) for v in terms.values()))
        self._fallen = self._fallen or fell
        self._foot_contact = foot

    def _safety_reference(self) -> np.ndarray:
        return self.data.qpos[self.layout.joint_qadr].copy()

    def hold_action(self) -> np.ndarray:
        """The last target sent (the default pose after a reset), not the measured position: a position-servoed leg
        sags under the robot's weight, and re-commanding the sagged position every tick would fold the robot up."""
        self._require_connected("hold_action")
        return self._history[0, -1].astype(np.float32)

    def task_status(self) -> dict[str, float | bool]:
        """``reward``: the env's per-step reward for :attr:`command`; ``success``: not fallen since the reset."""
        if self.data is None:
            return {}
        return {"reward": self._last_reward, "success": not self._fallen}

    @property
    def fallen(self) -> bool:
        return self._fallen

    # -- perturbations --------------------------------------------------------------------------------------------
    #: the trunk stays above the ground near the origin
    PERTURBATION_BOUNDS = PerturbationBounds(workspace_low=(-10.0, -10.0, 0.05), workspace_high=(10.0, 10.0, 1.5))

    def perturbation_bounds(self) -> PerturbationBounds:
        return self.PERTURBATION_BOUNDS

    def perturbation_targets(self) -> dict[PerturbationKind, list[str]]:
        return {**super().perturbation_targets(), PerturbationKind.PUSH: [self.TRUNK],
                PerturbationKind.MOVE_OBJECT: [self.TRUNK]}

    def _simulation_problem(self) -> str | None:
        return simulation_problem(self.model, self.data, self.substeps)

    def _perturb(self, request: Perturbation) -> dict[str, Any]:
        d, lay = self.data, self.layout
        if request.kind is PerturbationKind.PUSH:
            v = d.qvel[lay.root_dadr:lay.root_dadr + 3]
            v += np.asarray(request.params["velocity"], dtype=np.float64)
            applied = {"base_velocity": v.tolist()}
        elif request.kind is PerturbationKind.MOVE_OBJECT:
            applied = set_free_joint_pose(d.qpos, d.qvel, lay.root_qadr, lay.root_dadr, request.params)
        else:  # perturbation_targets() keeps other kinds out
            raise PerturbationError(f"{self.name} does not implement {request.kind.value}")
        self._mj.mj_forward(self.model, d)
        return applied

    # -- full state -----------------------------------------------------------------------------------------------
    def get_state(self) -> np.ndarray:
        """``[step_count, fallen, last reward, dynamics (P), delay line, reward memory, MuJoCo integration state]``."""
        self._require_connected("get_state")
        r = self._rewards
        return np.concatenate([[float(self._steps), float(self._fallen), self._last_reward], self.params,
                               self._history.ravel(), r.air_time.ravel(), r.last_contact.ravel().astype(float),
                               r.last_action.ravel(), r.last_joint_vel.ravel(), self._foot_contact.astype(float),
                               physics_state(self.model, self.data)])

    def set_state(self, state: np.ndarray) -> None:
        self._require_connected("set_state")
        s = np.asarray(state, dtype=np.float64)
        head = 3 + dr.P + self._history.size + 4 + 4 + 12 + 12 + 4
        if s.ndim != 1 or s.size <= head:
            raise ValueError(f"{self.name}.set_state: expected a 1-D state vector longer than {head}, "
                             f"got shape {s.shape}")
        restore_physics_state(self.model, self.data, s[head:], f"{self.name}.set_state")
        i = 3
        self._set_dynamics(s[i:i + dr.P])
        i += dr.P
        self._history[:] = s[i:i + self._history.size].reshape(self._history.shape)
        i += self._history.size
        r = self._rewards
        for arr, size in ((r.air_time, 4), (r.last_contact, 4), (r.last_action, 12), (r.last_joint_vel, 12)):
            arr[:] = s[i:i + size].reshape(arr.shape).astype(arr.dtype)
            i += size
        self._foot_contact = s[i:i + 4] > 0.5
        self._steps, self._fallen, self._last_reward = int(s[0]), bool(s[1] > 0.5), float(s[2])
        self._mj.mj_forward(self.model, self.data)


def trot_targets(time_s, frequency: float = 2.0, thigh_swing: float = 0.25, calf_lift: float = 0.4) -> np.ndarray:
    """Open-loop trot joint targets (12,) at ``time_s``: diagonal pairs (FR+RL, FL+RR) in antiphase; each leg's
    thigh swings +-``thigh_swing`` rad about the default pose (forward while lifted), the calf folds by up to
    ``calf_lift`` rad in swing. Walks forward at ~0.25 m/s on flat ground with the default gains."""
    phase = 2 * np.pi * frequency * float(time_s) + np.array([0.0, np.pi, np.pi, 0.0])
    target = DEFAULT_POSE.reshape(4, 3).copy()
    target[:, 1] += thigh_swing * np.cos(phase)
    target[:, 2] -= calf_lift * np.maximum(np.sin(phase), 0.0)
    return target.ravel()


class TrotPolicy(Policy):
    """:func:`trot_targets` as a policy for :class:`Go1Driver` (absolute joint targets at 50 Hz)."""

    name = "go1_trot"

    def __init__(self, frequency: float = 2.0, thigh_swing: float = 0.25, calf_lift: float = 0.4,
                 control_freq: float = 50.0) -> None:
        self.frequency, self.thigh_swing, self.calf_lift = frequency, thigh_swing, calf_lift
        self.dt = 1.0 / control_freq
        self.t = 0

    def reset(self, seed: int | None = None) -> None:
        self.t = 0

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        target = trot_targets(self.t * self.dt, self.frequency, self.thigh_swing, self.calf_lift)
        self.t += 1
        return target.astype(np.float32)
