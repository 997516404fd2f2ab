"""The vectorised Go1 env: velocity-command tracking on flat or rough ground, with domain randomization.

``make_legged_env(task="go1_flat", num_envs=64, randomization="train", seed=0, num_threads=2)`` builds a
:class:`LeggedVecEnv`: ``reset()`` and ``step(action)`` on all envs at once, observations as dicts of float32 arrays
(``proprio``: what the robot measures, with noise; ``privileged``: the normalised dynamics factors; ``critic``:
noise-free proprio + privileged + base linear velocity), auto-reset, per-term rewards (legged_gym's terms),
episode statistics. Nothing renders.

Stepping. All envs advance through one ``mujoco.rollout`` call per policy step (5 physics steps of 4 ms = 50 Hz):
the rollout runs in C++ on ``num_threads`` threads with the GIL released, over one ``MjModel`` copy per env (the
randomized dynamics live in the copies, written at each reset by :func:`robot_irl.legged.model.apply_dynamics`)
and a full-physics state vector per env kept here in numpy. Action delay is applied inside the 5 substeps: the
control sequence handed to the rollout holds, per substep, the target issued ``delay`` physics steps earlier
(:func:`robot_irl.legged.model.substep_controls`). Measured with bench/bench_legged.py (256 envs, one core):
the rollout over per-env copies ran at 0.88x a raw single-thread ``mj_step`` loop, the rollout over one shared
model at 1.03x (the copies cost cache), a Python thread pool over ``mj_step`` at 0.75x, and one shared model with
each env's parameters written before its ``mj_step`` at 0.74x; this env at 0.83x (standing) to 0.71x (random
actions with falls and resets).

Robustness. A non-finite action row is replaced by zeros (counted in ``info["bad_actions"]``); an env whose
physics diverges (non-finite state, or MuJoCo's own instability reset, seen as a time that did not advance) ends
its episode as ``unstable`` and is reset (counted in ``info["unstable"]`` and :attr:`LeggedVecEnv.unstable_resets`);
the run never crashes.

Rewards (:class:`RewardConfig`, every weight a config field; weights are per second and multiplied by the policy
dt, as in legged_gym, except ``termination``, paid once per fall): tracking of the commanded body-frame
``vx, vy`` and yaw rate (exp kernels), penalties on vertical velocity, roll/pitch rate, tilt, base height error,
torques, joint accelerations, action rate and thigh/calf contacts, a feet air-time bonus, and a termination
penalty. ``info["terms"]`` holds each weighted term; they sum to the reward.

Termination: trunk or (by default) thigh contact with the ground, or a tilt beyond ``tilt_limit``; time-out after
``episode_s`` (``info["time_out"]``, which PPO bootstraps through).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_irl.core.config import Config, check
from robot_irl.legged import LEGGED_TASKS
from robot_irl.legged import randomization as dr
from robot_irl.legged.gait import GaitConfig, contact_schedule, trot_offsets
from robot_irl.legged.model import (
    DEFAULT_POSE,
    LEGS,
    PHYSICS_DT,
    apply_dynamics,
    build_model,
    delay_steps_of,
    history_length,
    import_mujoco,
    substep_controls,
)
from robot_irl.legged.observations import ProprioSpec, proprio_observation
from robot_irl.legged.randomization import DomainRandomizationConfig, DynamicsSampler, get_randomization

__all__ = ["LEGGED_TASKS", "CommandConfig", "LeggedEnvConfig", "LeggedVecEnv", "RewardConfig", "RewardComputer",
           "make_legged_env"]

#: critic-only scale of the base linear velocity (legged_gym's)
LIN_VEL_SCALE = 2.0


@dataclass
class RewardConfig(Config):
    tracking_lin_vel: float = 1.0
    tracking_ang_vel: float = 0.5
    lin_vel_z: float = -2.0
    ang_vel_xy: float = -0.05
    orientation: float = -1.0
    base_height: float = -10.0
    torques: float = -2e-4
    joint_acc: float = -2.5e-7
    action_rate: float = -0.01
    feet_air_time: float = 1.0
    gait_contact: float = 0.0  # per foot whose contact matches the gait clock's schedule (needs gait.frequency)
    collision: float = -1.0
    termination: float = -1.0  # once per fall (not scaled by dt)
    tracking_sigma: float = 0.25
    base_height_target: float = 0.27  # m above the ground under the trunk
    feet_air_time_target: float = 0.5  # s; longer swings earn, shorter ones cost
    only_positive_rewards: bool = False  # legged_gym's clip of the per-step sum at 0 (as its own term, "clip")

    def validate(self) -> None:
        check(self.tracking_sigma > 0, "RewardConfig.tracking_sigma", "must be > 0")
        check(self.base_height_target > 0, "RewardConfig.base_height_target", "must be > 0")
        check(self.feet_air_time_target >= 0, "RewardConfig.feet_air_time_target", "must be >= 0")

    def term_names(self) -> tuple[str, ...]:
        names = ("tracking_lin_vel", "tracking_ang_vel", "lin_vel_z", "ang_vel_xy", "orientation", "base_height",
                 "torques", "joint_acc", "action_rate", "feet_air_time", "collision", "termination")
        if self.gait_contact:
            names += ("gait_contact",)
        return names + (("clip",) if self.only_positive_rewards else ())


@dataclass
class CommandConfig(Config):
    """Velocity commands, sampled uniformly per episode (and every ``resample_s``).

    The ranges are those a CPU budget can learn: forward faster than backward, little sideways (MuJoCo
    Playground's Go1 joystick range is wider, for 200M steps). Measured on the HIB experiment's setup at 1M env
    steps: a command curriculum (forward-only at first, widened as tracking succeeded, legged_gym-style) ended at
    0.24 m/s tracking error against 0.23 without one, so there is none.
    """

    vx: tuple[float, float] = (-0.5, 1.0)  # m/s, body frame
    vy: tuple[float, float] = (-0.3, 0.3)  # m/s
    wz: tuple[float, float] = (-1.0, 1.0)  # rad/s
    zero_prob: float = 0.1  # fraction of commands that are "stand still"
    min_speed: float = 0.1  # xy commands slower than this become 0 (legged_gym)
    resample_s: float = 10.0  # mid-episode resampling interval; 0: only at reset

    def validate(self) -> None:
        for name in ("vx", "vy", "wz"):
            lo, hi = getattr(self, name)
            check(lo <= hi, f"CommandConfig.{name}", f"needs lo <= hi, got {(lo, hi)}")
        check(0 <= self.zero_prob <= 1, "CommandConfig.zero_prob", "must be in [0, 1]")
        check(self.min_speed >= 0 and self.resample_s >= 0, "CommandConfig", "min_speed, resample_s must be >= 0")


@dataclass
class LeggedEnvConfig(Config):
    task: str = "go1_flat"
    num_envs: int = 64
    randomization: str | DomainRandomizationConfig = "train"  # a preset name or a full config
    seed: int = 0
    num_threads: int = 1  # rollout threads (1: the calling thread)
    model_variant: str = "default"  # "sim2sim": the differently tuned robot
    terrain_seed: int = 0
    episode_s: float = 20.0
    control_dt: float = 0.02  # 50 Hz policy
    action_scale: float = 0.25  # joint target = default pose + action_scale * action
    action_clip: float = 10.0  # actions are clipped to +-this first
    tilt_limit: float = 1.0  # rad between the trunk's z axis and the vertical
    terminate_on_thigh_contact: bool = True
    resample_commands: bool = True
    reset_joint_noise: float = 0.1  # rad, uniform around the default pose at reset
    reset_velocity_noise: float = 0.1  # m/s and rad/s, uniform base velocity at reset
    rewards: RewardConfig = field(default_factory=RewardConfig)
    commands: CommandConfig = field(default_factory=CommandConfig)
    gait: GaitConfig = field(default_factory=GaitConfig)  # the gait clock and trot generator (robot_irl.legged.gait)

    def validate(self) -> None:
        w = "LeggedEnvConfig"
        check(self.task in LEGGED_TASKS, f"{w}.task", f"unknown task {self.task!r}; known tasks: "
              f"{LEGGED_TASKS.names()}")
        check(self.num_envs >= 1, f"{w}.num_envs", f"must be >= 1, got {self.num_envs}")
        check(self.num_threads >= 1, f"{w}.num_threads", f"must be >= 1, got {self.num_threads}")
        from robot_irl.legged.model import VARIANTS

        check(self.model_variant in VARIANTS, f"{w}.model_variant",
              f"unknown variant {self.model_variant!r}; known: {sorted(VARIANTS)}")
        if isinstance(self.randomization, str):
            check(self.randomization in dr.PRESETS, f"{w}.randomization",
                  f"unknown preset {self.randomization!r}; known presets: {sorted(dr.PRESETS)}")
        substeps = self.control_dt / PHYSICS_DT
        check(abs(substeps - round(substeps)) < 1e-9 and round(substeps) >= 1, f"{w}.control_dt",
              f"must be a multiple of the {PHYSICS_DT} s physics step, got {self.control_dt}")
        check(self.episode_s >= self.control_dt, f"{w}.episode_s", "must be >= control_dt")
        check(self.action_scale > 0 and self.action_clip > 0, w, "action_scale and action_clip must be > 0")
        check(0 < self.tilt_limit <= np.pi, f"{w}.tilt_limit", "must be in (0, pi]")
        check(self.reset_joint_noise >= 0 and self.reset_velocity_noise >= 0, w, "reset noise must be >= 0")
        check(not self.rewards.gait_contact or self.gait.enabled, f"{w}.rewards.gait_contact",
              "needs the gait clock (gait.frequency > 0)")


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(N, 4) unit quaternions (w, x, y, z) -> (N, 3, 3) body-to-world rotations."""
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], 1)


class RewardComputer:
    """legged_gym-style reward terms for N robots, with the per-robot memory they need (air time, last action,
    last joint velocity). The env uses one for all its envs, the driver one for its single robot."""

    def __init__(self, config: RewardConfig, n: int, dt: float) -> None:
        self.config, self.n, self.dt = config, n, dt
        self.names = config.term_names()
        self.air_time = np.zeros((n, 4))
        self.last_contact = np.zeros((n, 4), dtype=bool)
        self.last_action = np.zeros((n, 12))
        self.last_joint_vel = np.zeros((n, 12))

    def reset(self, idx, joint_vel=None) -> None:
        self.air_time[idx] = 0.0
        self.last_contact[idx] = True
        self.last_action[idx] = 0.0
        self.last_joint_vel[idx] = 0.0 if joint_vel is None else joint_vel

    def compute(self, *, command, lin_vel_body, ang_vel_body, gravity_body, base_height, torques, joint_vel,
                action, foot_contact, collisions, fell, desired_contact=None) -> dict[str, np.ndarray]:
        """Weighted per-step terms (N,) each; advances the memory. Inputs are (N, ...) arrays; ``desired_contact``
        (N, 4) bool is the gait clock's schedule (:func:`robot_irl.legged.gait.contact_schedule`), needed when the
        ``gait_contact`` weight is set."""
        c, dt = self.config, self.dt
        lin_err = np.sum((command[:, :2] - lin_vel_body[:, :2]) ** 2, axis=1)
        ang_err = (command[:, 2] - ang_vel_body[:, 2]) ** 2
        contact_filt = foot_contact | self.last_contact
        first_contact = (self.air_time > 0) & contact_filt
        self.air_time += dt
        moving = np.linalg.norm(command[:, :2], axis=1) > 0.1
        air = np.sum((self.air_time - c.feet_air_time_target) * first_contact, axis=1) * moving
        self.air_time *= ~contact_filt
        self.last_contact[:] = foot_contact
        raw = {
            "tracking_lin_vel": np.exp(-lin_err / c.tracking_sigma),
            "tracking_ang_vel": np.exp(-ang_err / c.tracking_sigma),
            "lin_vel_z": lin_vel_body[:, 2] ** 2,
            "ang_vel_xy": np.sum(ang_vel_body[:, :2] ** 2, axis=1),
            "orientation": np.sum(gravity_body[:, :2] ** 2, axis=1),
            "base_height": (base_height - c.base_height_target) ** 2,
            "torques": np.sum(torques ** 2, axis=1),
            "joint_acc": np.sum(((joint_vel - self.last_joint_vel) / dt) ** 2, axis=1),
            "action_rate": np.sum((action - self.last_action) ** 2, axis=1),
            "feet_air_time": air,
            "collision": collisions.astype(np.float64),
        }
        if c.gait_contact:
            if desired_contact is None:
                raise ValueError("RewardComputer: the gait_contact term needs desired_contact")
            raw["gait_contact"] = np.mean(np.asarray(foot_contact) == np.asarray(desired_contact), axis=1)
        terms = {k: (getattr(c, k) * dt * v).astype(np.float32) for k, v in raw.items()}
        terms["termination"] = (c.termination * fell).astype(np.float32)
        if c.only_positive_rewards:
            total = sum(v for k, v in terms.items() if k != "termination")
            terms["clip"] = np.maximum(-total, 0.0).astype(np.float32)
        self.last_action[:] = action  # in place: the memory stays float64 whatever the caller passes
        self.last_joint_vel[:] = joint_vel
        return terms


class LeggedVecEnv:
    """N Go1 robots stepped together (see the module docstring and /tmp's legged interface)."""

    def __init__(self, config: LeggedEnvConfig | None = None) -> None:
        config = config or LeggedEnvConfig()
        self.randomization: DomainRandomizationConfig = get_randomization(config.randomization)
        self.config = config.replace(randomization=self.randomization)  # the resolved ranges are logged
        self._mj = mj = import_mujoco()
        from mujoco import rollout as mj_rollout

        c = self.config
        self.task = LEGGED_TASKS.get(c.task)
        self.built = build_model(self.task.terrain, c.model_variant, c.terrain_seed)
        self.model = self.built.model
        self.layout = lay = self.built.layout
        self.gait = c.gait
        self.spec = ProprioSpec(gait_frequency=c.gait.frequency)
        self.num_envs = n = c.num_envs
        self.act_dim = 12
        self.dt = c.control_dt
        self.substeps = int(round(c.control_dt / PHYSICS_DT))
        self.max_episode_steps = int(round(c.episode_s / c.control_dt))
        self.obs_dim = self.spec.obs_dim
        self.privileged_names = dr.PRIVILEGED_NAMES
        self.priv_dim = len(self.privileged_names)
        self.critic_names = (tuple(f"proprio.{k}" for k in self.spec.names)
                             + tuple(f"privileged.{k}" for k in self.privileged_names)
                             + ("base_lin_vel.x", "base_lin_vel.y", "base_lin_vel.z"))
        self.critic_dim = len(self.critic_names)
        self.action_scale = c.action_scale
        self.default_joint_pos = DEFAULT_POSE.copy()
        self.joint_names = self.spec.joint_names
        self.resample_commands = c.resample_commands
        self.sampler = DynamicsSampler(self.randomization, lay.nominal_friction)
        self.reward_names = c.rewards.term_names()

        self.models = [copy.copy(self.model) for _ in range(n)]
        self.datas = [mj.MjData(self.model) for _ in range(c.num_threads)]
        self._rollout = mj_rollout.Rollout(nthread=c.num_threads if c.num_threads > 1 else 0)
        self._chunk = max(1, n // (c.num_threads * 4))
        self._ctrl_spec = int(mj.mjtState.mjSTATE_CTRL)
        d = mj.MjData(self.model)
        mj.mj_resetDataKeyframe(self.model, d, mj.mj_name2id(self.model, mj.mjtObj.mjOBJ_KEY, "home"))
        self._home_state = np.empty(lay.nstate)
        mj.mj_getState(self.model, d, self._home_state, mj.mjtState.mjSTATE_FULLPHYSICS)
        self.state = np.tile(self._home_state, (n, 1))
        self._out_state = np.empty((n, self.substeps, lay.nstate))
        self._out_sensor = np.empty((n, self.substeps, self.model.nsensordata))
        max_delay = lay.intrinsic_delay_steps + int(dr.delay_steps(self.randomization.max_delay_ms()))
        self._history = np.tile(DEFAULT_POSE, (n, history_length(max_delay, self.substeps), 1))
        self.params = np.tile(self.sampler.nominal(), (n, 1))
        self.privileged = dr.normalize_privileged(self.params)
        self.delay = np.zeros(n, dtype=np.int64)
        self.commands = np.zeros((n, 3))
        self._fixed_command: np.ndarray | None = None
        self.last_action = np.zeros((n, 12), dtype=np.float32)
        self.episode_step = np.zeros(n, dtype=np.int64)
        self._command_countdown = np.zeros(n, dtype=np.int64)
        self._push_countdown = np.zeros(n, dtype=np.int64)
        self.rewards = RewardComputer(c.rewards, n, self.dt)
        self._ep_return = np.zeros(n)
        self._ep_lin_err = np.zeros(n)
        self._ep_ang_err = np.zeros(n)
        self._ep_cmd_speed = np.zeros(n)
        self._ep_terms = {k: np.zeros(n) for k in self.reward_names}
        self._noise = self._noise_vector()
        self._foot_contact = np.zeros((n, 4), dtype=bool)
        self.unstable_resets = 0
        self.bad_actions = 0
        self.total_steps = 0
        self.rng = np.random.default_rng(c.seed)
        self._closed = False
        self.reset()

    # -- description ----------------------------------------------------------------------------------------------
    @property
    def obs_names(self) -> tuple[str, ...]:
        return self.spec.names

    def describe(self) -> dict[str, Any]:
        """What a run logs about its env: the config (with the resolved randomization ranges), sizes, the model."""
        return {"config": self.config.to_dict(), "obs_dim": self.obs_dim, "priv_dim": self.priv_dim,
                "critic_dim": self.critic_dim, "act_dim": self.act_dim, "dt": self.dt,
                "substeps": self.substeps, "max_episode_steps": self.max_episode_steps,
                "privileged_names": list(self.privileged_names), "proprio_spec": self.spec.to_dict(),
                "model_variant": self.built.variant.to_dict(), "task": self.task.name, "terrain": self.task.terrain,
                "action_scale": self.action_scale, "action_clip": self.config.action_clip,
                "gait": self.gait.to_dict(),
                "default_joint_pos": self.default_joint_pos.tolist(), "joint_names": list(self.joint_names)}

    def _noise_vector(self) -> np.ndarray:
        amp = self.randomization.noise_amplitudes()
        s = self.spec.slices
        v = np.zeros(self.obs_dim)
        v[s["ang_vel"]] = amp["ang_vel"] * self.spec.ang_vel_scale
        v[s["gravity"]] = amp["gravity"]
        v[s["joint_pos"]] = amp["joint_pos"] * self.spec.joint_pos_scale
        v[s["joint_vel"]] = amp["joint_vel"] * self.spec.joint_vel_scale
        return v

    # -- commands -------------------------------------------------------------------------------------------------
    def set_command(self, command) -> None:
        """Fix the velocity command of every env (``(3,)`` or ``(N, 3)``) and stop resampling it
        (set ``resample_commands = True`` to sample again)."""
        cmd = np.asarray(command, dtype=np.float64)
        if cmd.shape not in ((3,), (self.num_envs, 3)) or not np.all(np.isfinite(cmd)):
            raise ValueError(f"set_command: expected 3 or ({self.num_envs}, 3) finite values (vx, vy, wz), "
                             f"got shape {cmd.shape}")
        self._fixed_command = np.broadcast_to(cmd, (self.num_envs, 3)).copy()
        self.commands[:] = self._fixed_command
        self.resample_commands = False

    def _sample_commands(self, idx: np.ndarray) -> None:
        if not self.resample_commands:
            if self._fixed_command is not None:
                self.commands[idx] = self._fixed_command[idx]
            return
        cc, k, rng = self.config.commands, len(idx), self.rng
        cmd = np.stack([rng.uniform(*cc.vx, k), rng.uniform(*cc.vy, k), rng.uniform(*cc.wz, k)], axis=-1)
        cmd[np.linalg.norm(cmd[:, :2], axis=1) < cc.min_speed, :2] = 0.0
        cmd[rng.uniform(size=k) < cc.zero_prob] = 0.0
        self.commands[idx] = cmd
        steps = int(round(cc.resample_s / self.dt)) if cc.resample_s > 0 else 0
        self._command_countdown[idx] = steps if steps > 0 else -1

    # -- reset ----------------------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Reset every env (new dynamics, command and spawn); ``seed`` re-seeds the env's generator."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._reset_envs(np.arange(self.num_envs))
        return self._observe()

    def _reset_envs(self, idx: np.ndarray) -> None:
        if len(idx) == 0:
            return
        c, lay, rng, k = self.config, self.layout, self.rng, len(idx)
        params = self.sampler.sample(rng, k)
        for j, i in enumerate(idx):
            apply_dynamics(self.models[i], lay, params[j])
        self.params[idx] = params
        self.privileged[idx] = dr.normalize_privileged(params)
        self.delay[idx] = delay_steps_of(lay, params)
        # spawn: home pose (+ noise) at a random place and heading, on the ground
        half = self.task.spawn_half_extent_m
        xy = rng.uniform(-half, half, (k, 2)) if half > 0 else np.zeros((k, 2))
        yaw = rng.uniform(-np.pi, np.pi, k)
        state = np.tile(self._home_state, (k, 1))
        qpos = state[:, lay.state_qpos]
        qvel = state[:, lay.state_qvel]
        qpos[:, 0:2] = xy
        qpos[:, 2] = self.built.spawn_height(xy[:, 0], xy[:, 1])
        qpos[:, 3:7] = np.stack([np.cos(yaw / 2), np.zeros(k), np.zeros(k), np.sin(yaw / 2)], -1)
        jr = lay.joint_range
        qpos[:, 7:19] = np.clip(DEFAULT_POSE + rng.uniform(-1, 1, (k, 12)) * c.reset_joint_noise, jr[:, 0], jr[:, 1])
        qvel[:, 0:6] = rng.uniform(-1, 1, (k, 6)) * c.reset_velocity_noise
        state[:, lay.state_qpos] = qpos
        state[:, lay.state_qvel] = qvel
        self.state[idx] = state
        self._history[idx] = DEFAULT_POSE
        self.last_action[idx] = 0.0
        self.episode_step[idx] = 0
        self._sample_commands(idx)
        self._push_countdown[idx] = self.sampler.push_interval_steps(rng, k, self.dt)
        self.rewards.reset(idx, qvel[:, 6:18])
        self._foot_contact[idx] = True
        self._ep_return[idx] = 0.0
        self._ep_lin_err[idx] = 0.0
        self._ep_ang_err[idx] = 0.0
        self._ep_cmd_speed[idx] = 0.0
        for v in self._ep_terms.values():
            v[idx] = 0.0

    # -- observation ----------------------------------------------------------------------------------------------
    @property
    def episode_time(self) -> np.ndarray:
        """(N,) seconds since each env's episode started: the gait clock's time."""
        return self.episode_step * self.dt

    def desired_contact(self) -> np.ndarray:
        """(N, 4) bool: the feet the gait clock wants on the ground now (all four for a standing command)."""
        return contact_schedule(self.episode_time, self.gait.frequency, self.commands, self.gait.stand_speed)

    def _kinematics(self) -> dict[str, np.ndarray]:
        lay = self.layout
        qpos, qvel = self.state[:, lay.state_qpos], self.state[:, lay.state_qvel]
        quat = qpos[:, 3:7] / np.linalg.norm(qpos[:, 3:7], axis=1, keepdims=True)
        rot = quat_to_matrix(quat)
        return {"qpos": qpos, "qvel": qvel, "quat": quat, "rot": rot,
                "lin_vel_body": np.einsum("nji,nj->ni", rot, qvel[:, 0:3]), "ang_vel_body": qvel[:, 3:6],
                "gravity": -rot[:, 2, :], "joint_pos": qpos[:, 7:19], "joint_vel": qvel[:, 6:18]}

    def _observe(self, kin: dict | None = None) -> dict[str, np.ndarray]:
        kin = kin or self._kinematics()
        clean = proprio_observation(kin["joint_pos"], kin["joint_vel"], kin["ang_vel_body"], kin["quat"],
                                    self.commands, self.last_action, self.spec, self.episode_time)
        if self._noise.any():
            noisy = clean + (self.rng.uniform(-1.0, 1.0, clean.shape) * self._noise).astype(np.float32)
        else:
            noisy = clean.copy()
        critic = np.concatenate([clean, self.privileged, (kin["lin_vel_body"] * LIN_VEL_SCALE).astype(np.float32)],
                                axis=1)
        return {"proprio": noisy, "privileged": self.privileged.copy(), "critic": critic}

    # -- step -----------------------------------------------------------------------------------------------------
    def step(self, action) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, Any]]:
        if self._closed:
            raise RuntimeError("LeggedVecEnv.step: the env is closed")
        n, lay, c = self.num_envs, self.layout, self.config
        a = np.array(action, dtype=np.float32, copy=True)
        if a.shape != (n, 12):
            raise ValueError(f"LeggedVecEnv.step: action must have shape ({n}, 12), got {a.shape}")
        bad_action = ~np.isfinite(a).all(axis=1)
        if bad_action.any():
            a[bad_action] = 0.0
            self.bad_actions += int(bad_action.sum())
        np.clip(a, -c.action_clip, c.action_clip, out=a)
        target = DEFAULT_POSE + c.action_scale * a
        if self.gait.generator:  # the trot generator at the time of the observation the action answers
            target += trot_offsets(self.episode_time, self.commands, self.gait)
        target = np.clip(target, lay.joint_range[:, 0], lay.joint_range[:, 1])
        self._history[:, :-1] = self._history[:, 1:]
        self._history[:, -1] = target
        ctrl = substep_controls(self._history, self.delay, self.substeps)
        t0 = self.state[:, 0].copy()
        self._rollout.rollout(self.models, self.datas, self.state, ctrl, control_spec=self._ctrl_spec,
                              skip_checks=True, nstep=self.substeps, state=self._out_state,
                              sensordata=self._out_sensor, chunk_size=self._chunk)
        new = self._out_state[:, -1]
        unstable = ~np.isfinite(new).all(axis=1) | (np.abs(new[:, 0] - t0 - self.substeps * PHYSICS_DT) > 1e-6)
        self.state[:] = new
        if unstable.any():
            self.state[unstable] = self._home_state  # placeholder until the reset below; keeps numbers finite
        self.last_action = a
        self.episode_step += 1
        self.total_steps += n

        kin = self._kinematics()
        sens = self._out_sensor
        touching = sens > 0.5
        foot = touching[:, :, lay.foot_contact].any(axis=1)
        trunk = touching[:, :, lay.trunk_contact].any(axis=1)
        thigh = touching[:, :, lay.thigh_contact].any(axis=1)
        calf = touching[:, :, lay.calf_contact].any(axis=1)
        tilted = kin["gravity"][:, 2] > -np.cos(c.tilt_limit)
        fell = (trunk | tilted | (thigh.any(axis=1) if c.terminate_on_thigh_contact else False)) & ~unstable
        height = kin["qpos"][:, 2] - self.built.ground_height(kin["qpos"][:, 0], kin["qpos"][:, 1])
        terms = self.rewards.compute(
            command=self.commands, lin_vel_body=kin["lin_vel_body"], ang_vel_body=kin["ang_vel_body"],
            gravity_body=kin["gravity"], base_height=height, torques=sens[:, -1, lay.actuator_force],
            joint_vel=kin["joint_vel"], action=a, foot_contact=foot, collisions=thigh.sum(1) + calf.sum(1),
            fell=fell, desired_contact=self.desired_contact() if c.rewards.gait_contact else None)
        if unstable.any():
            for v in terms.values():
                v[unstable] = 0.0
        reward = np.sum(np.stack(list(terms.values())), axis=0).astype(np.float32)
        self._foot_contact = foot

        terminal = fell | unstable
        time_out = (self.episode_step >= self.max_episode_steps) & ~terminal
        done = terminal | time_out
        self._ep_return += reward
        self._ep_lin_err += np.linalg.norm(kin["lin_vel_body"][:, :2] - self.commands[:, :2], axis=1)
        self._ep_ang_err += np.abs(kin["ang_vel_body"][:, 2] - self.commands[:, 2])
        self._ep_cmd_speed += np.linalg.norm(self.commands[:, :2], axis=1)
        for k, v in terms.items():
            self._ep_terms[k] += v

        # pushes (velocity kicks) and mid-episode command changes, for envs that go on
        self._push_countdown -= 1
        push = (self._push_countdown <= 0) & ~done
        if push.any() and self.randomization.pushes:
            pidx = np.flatnonzero(push)
            kick = self.sampler.push_velocity(self.rng, len(pidx))
            q0 = lay.state_qvel.start
            self.state[pidx, q0:q0 + 3] += kick
            self._push_countdown[pidx] = self.sampler.push_interval_steps(self.rng, len(pidx), self.dt)
        self._command_countdown -= 1
        resample = (self._command_countdown == 0) & ~done
        if resample.any():
            self._sample_commands(np.flatnonzero(resample))

        episodes = []
        final = None
        if done.any():
            final = self._observe(kin)
            for i in np.flatnonzero(done):
                length = int(self.episode_step[i])
                episodes.append({
                    "return": float(self._ep_return[i]), "length": length, "fell": bool(fell[i]),
                    "time_out": bool(time_out[i]), "unstable": bool(unstable[i]),
                    "lin_vel_error": float(self._ep_lin_err[i] / length),
                    "ang_vel_error": float(self._ep_ang_err[i] / length),
                    "command_speed": float(self._ep_cmd_speed[i] / length),
                    "terms": {k: float(v[i]) for k, v in self._ep_terms.items()}, "env": int(i)})
            self.unstable_resets += int(unstable.sum())
            self._reset_envs(np.flatnonzero(done))
        obs = self._observe()
        info = {"time_out": time_out, "terms": terms, "episodes": episodes, "fell": fell,
                "final_observation": final if final is not None else obs, "unstable": int(unstable.sum()),
                "bad_actions": int(bad_action.sum()), "pushed": push}
        return obs, reward, done, info

    # -- exact save/restore (resumable training) --------------------------------------------------------------
    _STATE_FIELDS = ("state", "_history", "params", "privileged", "delay", "commands", "last_action", "episode_step",
                     "_command_countdown", "_push_countdown", "_ep_return", "_ep_lin_err", "_ep_ang_err",
                     "_ep_cmd_speed", "_foot_contact")

    def get_state(self) -> dict[str, np.ndarray]:
        """Everything the next steps depend on (physics, delay lines, dynamics, commands, episode statistics, the
        random generator), as plain arrays; :meth:`set_state` on an env built with the same config restores it."""
        out = {k.lstrip("_"): np.array(getattr(self, k)) for k in self._STATE_FIELDS}
        r = self.rewards
        out.update({"reward.air_time": r.air_time.copy(), "reward.last_contact": r.last_contact.copy(),
                    "reward.last_action": r.last_action.copy(), "reward.last_joint_vel": r.last_joint_vel.copy()})
        out.update({f"ep_terms.{k}": v.copy() for k, v in self._ep_terms.items()})
        out["fixed_command"] = (self._fixed_command.copy() if self._fixed_command is not None
                                else np.full((self.num_envs, 3), np.nan))
        out["flags"] = np.array([int(self.resample_commands), self.unstable_resets, self.bad_actions,
                                 self.total_steps], dtype=np.int64)
        out["rng"] = _rng_to_array(self.rng)
        return out

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        missing = sorted({k.lstrip("_") for k in self._STATE_FIELDS} - set(state))
        if missing:
            raise ValueError(f"LeggedVecEnv.set_state: missing entries {missing}")
        for k in self._STATE_FIELDS:
            current = getattr(self, k)
            value = np.asarray(state[k.lstrip("_")])
            if value.shape != current.shape:
                raise ValueError(f"LeggedVecEnv.set_state: {k.lstrip('_')} has shape {value.shape}, this env needs "
                                 f"{current.shape} (built with another config?)")
            current[...] = value.astype(current.dtype)
        r = self.rewards
        r.air_time[:], r.last_contact[:] = state["reward.air_time"], state["reward.last_contact"]
        r.last_action[:], r.last_joint_vel[:] = state["reward.last_action"], state["reward.last_joint_vel"]
        for k, v in self._ep_terms.items():
            v[:] = state[f"ep_terms.{k}"]
        fixed = np.asarray(state["fixed_command"])
        self._fixed_command = None if np.isnan(fixed).all() else fixed.astype(np.float64)
        flags = np.asarray(state["flags"]).astype(np.int64)
        self.resample_commands = bool(flags[0])
        self.unstable_resets, self.bad_actions, self.total_steps = int(flags[1]), int(flags[2]), int(flags[3])
        self.rng = _rng_from_array(np.asarray(state["rng"]))
        for i in range(self.num_envs):
            apply_dynamics(self.models[i], self.layout, self.params[i])

    def close(self) -> None:
        if not self._closed:
            self._rollout.close()
            self._closed = True

    def __enter__(self) -> LeggedVecEnv:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _rng_to_array(rng: np.random.Generator) -> np.ndarray:
    """A PCG64 generator's state as int64 words (32 bits each), storable in safetensors."""
    st = rng.bit_generator.state
    if st["bit_generator"] != "PCG64":
        raise ValueError(f"cannot store a {st['bit_generator']} generator")
    words = []
    for value in (st["state"]["state"], st["state"]["inc"]):
        words += [(value >> (32 * i)) & 0xFFFFFFFF for i in range(4)]
    return np.array(words + [st["has_uint32"], st["uinteger"]], dtype=np.int64)


def _rng_from_array(words: np.ndarray) -> np.random.Generator:
    w = [int(x) for x in words]
    state = sum(w[i] << (32 * i) for i in range(4))
    inc = sum(w[4 + i] << (32 * i) for i in range(4))
    rng = np.random.default_rng()
    rng.bit_generator.state = {"bit_generator": "PCG64", "state": {"state": state, "inc": inc},
                               "has_uint32": w[8], "uinteger": w[9]}
    return rng


def make_legged_env(task: str = "go1_flat", num_envs: int = 64,
                    randomization: str | dict | DomainRandomizationConfig = "train", seed: int = 0,
                    num_threads: int = 1, model_variant: str = "default", **overrides: Any) -> LeggedVecEnv:
    """Build a :class:`LeggedVecEnv`; ``overrides`` are further :class:`LeggedEnvConfig` fields."""
    rand = get_randomization(randomization) if not isinstance(randomization, str) else randomization
    config = LeggedEnvConfig.from_dict({"task": task, "num_envs": num_envs, "seed": seed, "num_threads": num_threads,
                                        "model_variant": model_variant, **overrides})
    config.randomization = rand
    config.validate()
    return LeggedVecEnv(config)


_ = LEGS  # leg order of the contact arrays (FR, FL, RR, RL), as in robot_irl.legged.model
