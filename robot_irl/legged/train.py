"""The on-policy runner: PPO (and RMA's adaptation phase) on the legged vec env, with logs, checkpoints and resume.

``train_legged(LeggedTrainConfig(...), out)`` repeats, for ``iterations = ceil(total_steps / (num_envs *
steps_per_env))``:

1. **rollout** (no gradient): ``steps_per_env`` steps of the whole env batch with one batched actor call per step;
   each env's proprioceptive history (:class:`~robot_irl.learn.ppo.HistoryBuffer`, restarted on ``done``) feeds
   the RMA/HIB encoders; time-outs are bootstrapped;
2. **update**: GAE and :meth:`PPO.update <robot_irl.learn.ppo.PPO.update>`, then the observation statistics take
   in the rollout (constant within an iteration, see :mod:`robot_irl.learn.ppo`). In RMA's second phase the
   update is :meth:`~robot_irl.learn.ppo.PPO.update_adaptation` instead, on rollouts of the student (adaptation
   latent + the frozen teacher actor, mean actions), with frozen statistics.

**The training recipe** (:func:`recipe_env`, :func:`recipe_ppo`, the defaults of :class:`LeggedTrainConfig`) is
what makes velocity tracking emerge in a CPU budget of a few million env steps; legged_gym's settings alone
(rsl_rl PPO, its reward terms, no gait prior) leave every policy standing still after 1.5M steps. Measured on
the HIB experiment's setup (DR policy, ``train`` randomization, 128 envs x 24 steps, [128, 128] networks, 1M env
steps, tracking error on 32 evaluation episodes of the ``train`` range, one seed; standing still scores the mean
commanded speed, 0.41-0.45 m/s):

==========================================================================  ==========  =====
training setup                                                              lin. error  falls
==========================================================================  ==========  =====
legged_gym's (the previous default)                                          0.41        0.03
+ gait clock in the observation + contact-schedule reward (Siekmann 2021)    0.34        0.19
+ gamma 0.97 and desired KL 0.02, without the clock and its reward            0.43        0.25
**+ both** (this recipe)                                                     **0.23**    0.03
this recipe, seed 1                                                          0.29        0.22
this recipe + an in-place trot generator (residual actions, PMTG-style)      0.29        0.34
this recipe + a command-conditioned striding trot generator                  0.17        0.12
this recipe + penalties at a third                                           0.23        0.12
this recipe + a command curriculum (forward-only first)                      0.24        0.12
this recipe, 2M env steps                                                    0.14        0.12
==========================================================================  ==========  =====

Hence the clock and its reward, the shorter horizon and the looser trust region; no trot generator (the in-place
one hurts; the striding one tracks better but falls more and hand-codes the walking, so it stays an option,
:class:`~robot_irl.legged.gait.GaitConfig`), no curriculum and legged_gym's penalty weights. The gait clock is
proprioception-only (the policy counts its own steps), so deployment is unchanged
(:class:`~robot_irl.legged.policy.LeggedPolicy`).

**The RMA budget.** ``total_steps`` is the same for every policy kind: RMA spends ``rma_teacher_fraction`` of it
training the teacher with PPO (the teacher *is* an oracle policy, trained on fewer steps than the ``oracle`` run)
and the rest on the adaptation module, so teacher + student cost what every other policy costs. With ``teacher=
CKPT`` (an oracle or RMA checkpoint) the teacher is taken as given and the whole budget goes to adaptation; the
summary then reports the teacher's steps separately (``teacher_steps``) so a comparison can count them.

Written under ``out``: ``config.json`` (the run), ``metrics.jsonl`` (one record per logged iteration: episode
return, length, fall rate, tracking errors and each reward term over the episodes that ended; losses, KL,
learning rate; env samples/s, rollout and learner seconds), TensorBoard events in ``tb/``, ``curves.png``
(return, tracking error, falls, losses) and ``checkpoint/`` (:mod:`robot_irl.learn.trainer`'s folder format:
``model.safetensors`` with every network, ``normalizer.safetensors`` with the running observation statistics,
``optimizer.safetensors`` + ``trainer_state.json`` for resuming, and ``runner_state.safetensors``: the current
observations, histories, random generators and, where the env can save it, the env state). Resuming from a
checkpoint whose env state was saved continues exactly as the uninterrupted run would have.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.core.config import Config, check, merge_dicts
from robot_irl.learn.ppo import ActorCriticConfig, PPOConfig

RUNNER_STATE = "runner_state.safetensors"
CURVES = "curves.png"
EPISODE_KEYS = ("return", "length", "fell", "lin_vel_error", "ang_vel_error", "command_speed")


def recipe_env() -> dict[str, Any]:
    """The training env's settings beyond :class:`~robot_irl.legged.env.LeggedEnvConfig`'s defaults (the module
    docstring says why each): legged_gym's clip of each step's reward at 0 (without it an untrained policy learns
    that falling early beats paying the penalties), a 2 Hz trot clock in the observation with a reward for the
    contact schedule it implies, and air-time credit from 0.2 s of swing (legged_gym's 0.5 s target taxed every
    step of a 2 Hz trot)."""
    return {"rewards": {"only_positive_rewards": True, "gait_contact": 1.0, "feet_air_time_target": 0.2},
            "gait": {"frequency": 2.0}}


def recipe_ppo() -> PPOConfig:
    """PPO for small CPU batches: rsl_rl's settings with a shorter horizon (gamma 0.97, MuJoCo Playground's Go1
    discount) and a looser trust region (desired KL 0.02) for the adaptive learning rate."""
    return PPOConfig(gamma=0.97, desired_kl=0.02)



@dataclass
class LeggedTrainConfig(Config):
    task: str = "go1_flat"
    num_envs: int = 64
    steps_per_env: int = 24  # env steps per env and iteration (rsl_rl's num_steps_per_env)
    total_steps: int = 1_000_000  # env steps over all envs, for the whole run (RMA: teacher + adaptation)
    randomization: str = "train"  # DR preset of the training envs
    model_variant: str = "default"
    # further LeggedEnvConfig fields; by default the recipe of recipe_env() (see the module docstring)
    env: dict[str, Any] = field(default_factory=lambda: recipe_env())
    ppo: PPOConfig = field(default_factory=lambda: recipe_ppo())
    actor_critic: ActorCriticConfig = field(default_factory=ActorCriticConfig)
    rma_teacher_fraction: float = 0.8  # rma: the share of total_steps that trains the teacher
    teacher: str = ""  # rma: a trained oracle/rma checkpoint; then all of total_steps train the adaptation module
    clip_actions: float = 0.0  # actions sent to the env are clipped to +-clip_actions; 0: not clipped
    seed: int = 0
    device: str = "auto"  # auto: cuda when available, else cpu
    num_threads: int = 1  # torch intra-op threads (0: torch's default); 1 is fastest on a shared CPU
    env_threads: int = 2  # simulator threads
    log_every: int = 1  # iterations between metrics records
    checkpoint_every: int = 50  # iterations between checkpoints; 0: only at the end
    progress: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "") -> LeggedTrainConfig:
        """As :meth:`Config.from_dict`, but ``env`` and ``ppo`` are overrides of the recipe (:func:`recipe_env`,
        :func:`recipe_ppo`), merged key by key: ``{"ppo": {"epochs": 1}}`` keeps the recipe's gamma and
        ``{"env": {"gait": {"lift": 0.1}}}`` keeps its reward clip. A saved config (every key given) loads as saved;
        to leave a part of the recipe out, set it (``{"env": {"gait": {"frequency": 0}, "rewards":
        {"gait_contact": 0}}}``)."""
        data = dict(data or {})
        if isinstance(data.get("env"), dict):
            data["env"] = merge_dicts(recipe_env(), data["env"])
        if isinstance(data.get("ppo"), dict):
            data["ppo"] = {**recipe_ppo().to_dict(), **data["ppo"]}
        return super().from_dict(data, where)

    def validate(self) -> None:
        w = "LeggedTrainConfig"
        for name in ("num_envs", "steps_per_env", "total_steps", "log_every"):
            check(getattr(self, name) >= 1, f"{w}.{name}", f"must be >= 1, got {getattr(self, name)}")
        check(self.checkpoint_every >= 0, f"{w}.checkpoint_every", "must be >= 0")
        check(0.0 < self.rma_teacher_fraction < 1.0, f"{w}.rma_teacher_fraction",
              f"must be in (0, 1), got {self.rma_teacher_fraction}")
        check(self.clip_actions >= 0, f"{w}.clip_actions", "must be >= 0")
        check(self.num_threads >= 0 and self.env_threads >= 1, f"{w}.num_threads",
              "num_threads must be >= 0 and env_threads >= 1")
        check(self.device in ("auto", "cpu") or self.device.startswith("cuda"), f"{w}.device",
              f"must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")
        check(not self.teacher or self.actor_critic.kind == "rma", f"{w}.teacher",
              f"only an 'rma' policy takes a teacher checkpoint, not {self.actor_critic.kind!r}")
        check(self.num_envs * self.steps_per_env >= self.ppo.minibatches, f"{w}.num_envs",
              "num_envs * steps_per_env must be at least ppo.minibatches")

    @property
    def kind(self) -> str:
        return self.actor_critic.kind

    @property
    def batch(self) -> int:
        return self.num_envs * self.steps_per_env

    @property
    def iterations(self) -> int:
        return max(1, math.ceil(self.total_steps / self.batch))

    @property
    def teacher_iterations(self) -> int:
        """Iterations of PPO (all of them except RMA's adaptation phase)."""
        if self.kind != "rma":
            return self.iterations
        if self.teacher:
            return 0
        return min(self.iterations - 1, max(1, round(self.rma_teacher_fraction * self.iterations)))


# ---------------------------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------------------------
def load_ppo_checkpoint(path: str | Path, device: str = "cpu"):
    """``(PPO with the saved weights and frozen-at-save statistics, config.json contents)`` of a checkpoint folder
    (or a run folder holding ``checkpoint/``) written by :func:`train_legged`."""
    from safetensors.torch import load_file

    from robot_irl.learn.ppo import PPO
    from robot_irl.learn.trainer import CheckpointError, read_checkpoint_config

    config = read_checkpoint_config(path)
    folder = Path(config["path"])
    if config.get("algorithm") != "ppo" or "actor_critic" not in config:
        raise CheckpointError(f"{folder}: not a legged PPO checkpoint (algorithm {config.get('algorithm')!r})")
    dims = config["dims"]
    ppo = PPO(dims["obs_dim"], dims["priv_dim"], dims["critic_dim"], dims["act_dim"],
              PPOConfig.from_dict(config["algorithm_config"], where=f"{folder}: ppo config"),
              ActorCriticConfig.from_dict(config["actor_critic"], where=f"{folder}: actor_critic config"), device)
    weights = load_file(str(folder / "model.safetensors"))
    prefix = "actor_critic."
    try:
        ppo.model.load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
    except RuntimeError as e:
        raise CheckpointError(f"{folder}: weights do not fit the {ppo.kind!r} actor-critic: {e}") from None
    stats = load_file(str(folder / "normalizer.safetensors"))
    for name, norm in ppo.normalizers.items():
        try:
            norm.load_tensors(stats, name)
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"{folder}: normaliser {name!r}: {e}") from None
    return ppo, config


def _load_teacher(ppo, path: str, device: str) -> dict:
    """Copy a trained oracle/RMA teacher (privileged encoder, actor, critic, std, statistics) into ``ppo``."""
    from robot_irl.learn.trainer import CheckpointError

    teacher, config = load_ppo_checkpoint(path, device)
    if teacher.kind not in ("oracle", "rma"):
        raise CheckpointError(f"{path}: a {teacher.kind!r} policy has no privileged encoder to teach RMA with")
    if teacher.dims() != ppo.dims():
        raise CheckpointError(f"{path}: teacher dimensions {teacher.dims()} differ from this env's {ppo.dims()}")
    state = {k: v for k, v in teacher.model.state_dict().items() if not k.startswith("adaptation.")}
    missing, unexpected = ppo.model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("adaptation.") for k in missing):
        raise CheckpointError(f"{path}: teacher networks do not fit (missing {missing}, unexpected {unexpected}); "
                              "train RMA with the teacher's actor_critic sizes")
    for name, norm in ppo.normalizers.items():
        norm.load_tensors(teacher.normalizers[name].tensors(name), name)
    return {"path": str(config["path"]), "kind": teacher.kind, "steps": int(config.get("step", 0))}


def teacher_actor_critic(path: str, ours: ActorCriticConfig) -> ActorCriticConfig:
    """Our RMA actor-critic config with the network sizes of the teacher at ``path`` (so its weights fit)."""
    from robot_irl.learn.trainer import read_checkpoint_config

    theirs = read_checkpoint_config(path).get("actor_critic")
    if theirs is None:
        from robot_irl.learn.trainer import CheckpointError

        raise CheckpointError(f"{path}: not a legged PPO checkpoint")
    keep = ("actor_hidden", "critic_hidden", "activation", "latent_dim", "encoder_hidden", "init_noise_std")
    return ours.replace(**{k: theirs[k] for k in keep if k in theirs})


# ---------------------------------------------------------------------------------------------------------------
# the runner
# ---------------------------------------------------------------------------------------------------------------
class LeggedRunner:
    """State of one training run (env, learner, buffers, generators, history); :meth:`run` trains to the end."""

    def __init__(self, config: LeggedTrainConfig, out: str | Path, env=None) -> None:
        import torch

        from robot_irl.learn.ppo import PPO, HistoryBuffer
        from robot_irl.learn.trainer import resolve_device

        self.config, self.out = config, Path(out)
        self.device = resolve_device(config.device)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        torch.manual_seed(config.seed)
        self.env = env if env is not None else self._make_env()
        ac = config.actor_critic
        if config.teacher:
            ac = teacher_actor_critic(config.teacher, ac)
        self.ppo = PPO(self.env.obs_dim, self.env.priv_dim, self.env.critic_dim, self.env.act_dim, config.ppo, ac,
                       self.device)
        self.teacher = _load_teacher(self.ppo, config.teacher, self.device) if config.teacher else None
        self.rollout = self.ppo.new_rollout(config.steps_per_env, self.env.num_envs)
        self.history = HistoryBuffer(self.env.num_envs, self.ppo.history_length, self.env.obs_dim, self.device)
        self.action_gen = torch.Generator(device=self.device)
        self.action_gen.manual_seed(config.seed)
        self.batch_gen = torch.Generator()
        self.batch_gen.manual_seed(config.seed + 1)
        self.iteration, self.env_steps, self.train_time_s = 0, 0, 0.0
        self.records: list[dict] = []
        self.obs: dict | None = None
        self.hist = None
        self.episodes: list[dict] = []

    def _make_env(self):
        from robot_irl.legged.env import make_legged_env

        c = self.config
        return make_legged_env(task=c.task, num_envs=c.num_envs, randomization=c.randomization, seed=c.seed,
                               num_threads=c.env_threads, model_variant=c.model_variant, **c.env)

    @property
    def checkpoint_path(self) -> Path:
        from robot_irl.learn.trainer import CHECKPOINT_DIR

        return self.out / CHECKPOINT_DIR

    def phase(self, iteration: int | None = None) -> str:
        it = self.iteration if iteration is None else iteration
        return "rl" if it < self.config.teacher_iterations else "adaptation"

    # -- conversions ----------------------------------------------------------------------------------------
    def _tensors(self, obs: dict) -> dict:
        import torch

        return {k: torch.as_tensor(np.asarray(obs[k], dtype=np.float32), device=self.device)
                for k in ("proprio", "privileged", "critic")}

    def _start(self) -> None:
        self.obs = self._tensors(self.env.reset(seed=self.config.seed))
        self.history.reset()
        self.hist = self.history.push(self.obs["proprio"])

    # -- one iteration ---------------------------------------------------------------------------------------
    def collect(self, phase: str) -> dict[str, float]:
        """Fill the rollout buffer; returns timing."""
        import torch

        c, ppo = self.config, self.ppo
        student = phase == "adaptation"
        source = "privileged" if ppo.kind == "rma" and not student else None
        uses_history = ppo.history_length > 1
        self.rollout.clear()
        env_s, started = 0.0, time.perf_counter()
        for _ in range(c.steps_per_env):
            out = ppo.act(self.obs, self.hist if uses_history else None, deterministic=student, source=source,
                          generator=self.action_gen)
            action = out["action"]
            if c.clip_actions:
                action = action.clamp(-c.clip_actions, c.clip_actions)
            tick = time.perf_counter()
            obs, reward, done, info = self.env.step(action.cpu().numpy())
            env_s += time.perf_counter() - tick
            n = self.env.num_envs
            time_out = np.asarray(info.get("time_out", np.zeros(n, dtype=bool)), dtype=bool)
            as_t = {"device": self.device}
            done_t = torch.as_tensor(np.asarray(done, dtype=bool), **as_t)
            bootstrap = None
            if time_out.any() and "final_observation" in info:
                bootstrap = ppo.value(self._tensors(info["final_observation"])["critic"])
            self.rollout.add(self.obs, self.hist if uses_history else None, out,
                             torch.as_tensor(np.asarray(reward, dtype=np.float32), **as_t), done_t,
                             torch.as_tensor(time_out, **as_t), c.ppo.gamma, bootstrap)
            self.episodes.extend(info.get("episodes", ()))
            self.obs = self._tensors(obs)
            self.history.reset(done_t)
            self.hist = self.history.push(self.obs["proprio"])
        self.env_steps += self.rollout.steps * self.env.num_envs
        return {"rollout_s": time.perf_counter() - started, "env_s": env_s}

    def learn(self, phase: str) -> dict[str, float]:
        c, ppo = self.config, self.ppo
        if phase == "adaptation":
            metrics = ppo.update_adaptation(self.rollout, self.batch_gen)
            metrics["latent_mse"] = ppo.latent_error(self.rollout)
            return metrics
        self.rollout.compute_returns(ppo.value(self.obs["critic"]), c.ppo.gamma, c.ppo.lam,
                                     c.ppo.normalize_advantages)
        metrics = ppo.update(self.rollout, self.batch_gen)
        ppo.update_normalizers(self.rollout)
        return metrics

    def _episode_stats(self) -> dict[str, float]:
        if not self.episodes:
            return {}
        eps = self.episodes
        stats = {"episodes": float(len(eps))}
        for key in EPISODE_KEYS:
            values = [float(e[key]) for e in eps if key in e]
            if values:
                stats[f"episode_{'fall_rate' if key == 'fell' else key}"] = float(np.mean(values))
        terms = sorted({t for e in eps for t in e.get("terms", {})})
        for t in terms:
            stats[f"term_{t}"] = float(np.mean([e["terms"].get(t, 0.0) for e in eps]))
        return stats

    # -- logging ------------------------------------------------------------------------------------------------
    def _log(self, metrics: dict, timing: dict, writer) -> dict:
        c = self.config
        record: dict[str, Any] = {"iteration": self.iteration, "env_steps": self.env_steps,
                                  "phase": self.phase(self.iteration - 1)}
        record.update({k: round(float(v), 6) for k, v in metrics.items()})
        record.update(self._episode_stats())
        batch = c.steps_per_env * self.env.num_envs
        record.update({"rollout_s": round(timing["rollout_s"], 4), "env_s": round(timing["env_s"], 4),
                       "learn_s": round(timing["learn_s"], 4),
                       "env_samples_per_s": round(batch / max(timing["env_s"], 1e-9), 1),
                       "samples_per_s": round(batch / max(timing["rollout_s"] + timing["learn_s"], 1e-9), 1),
                       "time_s": round(self.train_time_s, 2)})
        self.episodes = []
        self.records.append(record)
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("iteration", "env_steps"):
                    group = "episode" if key.startswith(("episode", "term_")) else \
                        "time" if key.endswith(("_s", "per_s")) else "train"
                    writer.add_scalar(f"{group}/{key}", value, self.env_steps)
        return record

    # -- checkpoints -----------------------------------------------------------------------------------------
    def meta(self) -> dict:
        env = self.env
        meta = {"kind": self.ppo.kind, "dims": self.ppo.dims(), "actor_critic": self.ppo.ac_config.to_dict(),
                "train": self.config.to_dict(), "history_length": self.ppo.history_length,
                "privileged_names": list(getattr(env, "privileged_names", []) or []), "dt": float(env.dt),
                "teacher": self.teacher, "teacher_iterations": self.config.teacher_iterations}
        if hasattr(env, "describe"):
            meta["env"] = env.describe()
        spec = getattr(env, "spec", None)
        if spec is not None and hasattr(spec, "to_dict"):
            meta["proprio_spec"] = spec.to_dict()
        for attr in ("action_scale", "action_names"):
            value = getattr(env, attr, None)
            if value is not None:
                meta[attr] = value if isinstance(value, (int, float, str)) else list(np.asarray(value).tolist())
        return meta

    def save(self) -> Path:
        import torch
        from safetensors.torch import save_file

        from robot_irl.learn.trainer import save_checkpoint

        state = {"step": self.env_steps, "iteration": self.iteration, "lr": self.ppo.lr,
                 "train_time_s": self.train_time_s, "history": self.records}
        path = save_checkpoint(self.checkpoint_path, self.ppo, self.ppo.normalizers, self.meta(), state,
                               self.batch_gen)
        tensors = {f"obs.{k}": v.cpu().contiguous() for k, v in self.obs.items()}
        tensors.update({f"history.{k}": v.cpu().contiguous() for k, v in self.history.state().items()})
        tensors["rng.action"] = self.action_gen.get_state()
        if torch.cuda.is_available() and self.device.startswith("cuda"):
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        env_state = self._env_state()
        tensors.update({f"env.{k}": torch.from_numpy(np.array(v, order="C")) for k, v in env_state.items()})
        save_file(tensors, str(path / RUNNER_STATE), metadata={"env_state": json.dumps(bool(env_state))})
        return path

    def _env_state(self) -> dict[str, np.ndarray]:
        getter = getattr(self.env, "get_state", None)
        if getter is None:
            return {}
        return {k: np.asarray(v) for k, v in getter().items()}

    def resume(self) -> bool:
        """Continue from ``OUT/checkpoint``; False when there is none."""
        import torch
        from safetensors import safe_open
        from safetensors.torch import load_file

        from robot_irl.learn.trainer import CheckpointError, _load_optimizers

        ckpt = self.checkpoint_path
        if not (ckpt / "trainer_state.json").is_file():
            return False
        loaded, config = load_ppo_checkpoint(ckpt, self.device)
        if config["dims"] != self.ppo.dims() or config["kind"] != self.ppo.kind:
            raise CheckpointError(f"{ckpt}: a {config['kind']!r} policy with dims {config['dims']} cannot resume as "
                                  f"{self.ppo.kind!r} with {self.ppo.dims()}")
        self.ppo.model.load_state_dict(loaded.model.state_dict())
        for name, norm in self.ppo.normalizers.items():
            norm.load_tensors(loaded.normalizers[name].tensors(name), name)
        state = json.loads((ckpt / "trainer_state.json").read_text())
        tensors = load_file(str(ckpt / "optimizer.safetensors"))
        _load_optimizers(self.ppo.optimizers(), tensors, state["optimizers"], torch.device(self.device))
        self.ppo.set_lr(float(state["lr"]))
        torch.set_rng_state(tensors["rng.torch"])
        self.batch_gen.set_state(tensors["rng.sampler"])
        self.iteration, self.env_steps = int(state["iteration"]), int(state["step"])
        self.train_time_s, self.records = float(state.get("train_time_s", 0.0)), list(state["history"])
        runner = ckpt / RUNNER_STATE
        if not runner.is_file():
            raise CheckpointError(f"{ckpt}: {RUNNER_STATE} is missing; the checkpoint cannot be resumed")
        rs = load_file(str(runner))
        with safe_open(str(runner), framework="pt") as f:
            has_env = json.loads((f.metadata() or {}).get("env_state", "false"))
        self.action_gen.set_state(rs["rng.action"])
        if "rng.cuda" in rs and self.device.startswith("cuda"):
            torch.cuda.set_rng_state(rs["rng.cuda"])
        if has_env and hasattr(self.env, "set_state"):
            self.env.set_state({k[4:]: v.numpy() for k, v in rs.items() if k.startswith("env.")})
            self.obs = {k[4:]: v.to(self.device) for k, v in rs.items() if k.startswith("obs.")}
            self.history.load_state({k[8:]: v for k, v in rs.items() if k.startswith("history.")})
            self.hist = self.history.data
        else:  # the env cannot restore its state: start new episodes (seeded by the iteration)
            self.obs = self._tensors(self.env.reset(seed=self.config.seed + 7919 * self.iteration))
            self.history.reset()
            self.hist = self.history.push(self.obs["proprio"])
        with open(self.out / "metrics.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in self.records)
        return True

    # -- the loop ------------------------------------------------------------------------------------------------
    def run(self, resume: bool = False, stop_at: int | None = None) -> dict:
        """Train to ``config.iterations`` (or only up to iteration ``stop_at``, with a checkpoint to resume from)."""
        from tqdm.auto import tqdm

        c = self.config
        last = c.iterations if stop_at is None else min(c.iterations, int(stop_at))
        self.out.mkdir(parents=True, exist_ok=True)
        resumed = self.resume() if resume else False
        if not resumed:
            (self.out / "metrics.jsonl").unlink(missing_ok=True)
            self._start()
        writer = _summary_writer(self.out / "tb")
        pending: list[dict] = []
        timing = {"rollout_s": 0.0, "env_s": 0.0, "learn_s": 0.0}
        try:
            with tqdm(total=c.iterations * c.batch, initial=self.env_steps, disable=not c.progress, unit="step",
                      unit_scale=True, dynamic_ncols=True, mininterval=1.0, desc=f"ppo {self.ppo.kind}") as bar:
                while self.iteration < last:
                    phase = self.phase()
                    t0 = time.perf_counter()
                    t = self.collect(phase)
                    t1 = time.perf_counter()
                    pending.append(self.learn(phase))
                    t2 = time.perf_counter()
                    self.iteration += 1
                    self.train_time_s += t2 - t0
                    timing = {"rollout_s": timing["rollout_s"] + t["rollout_s"],
                              "env_s": timing["env_s"] + t["env_s"], "learn_s": timing["learn_s"] + t2 - t1}
                    bar.update(c.batch)
                    if self.iteration % c.log_every == 0 or self.iteration == c.iterations \
                            or self.phase() != phase:
                        n = len(pending)
                        merged = {k: float(np.mean([m[k] for m in pending if k in m]))
                                  for k in {k for m in pending for k in m}}
                        record = self._log(merged, {k: v / n for k, v in timing.items()}, writer)
                        pending, timing = [], {"rollout_s": 0.0, "env_s": 0.0, "learn_s": 0.0}
                        bar.set_postfix({k: f"{record[k]:.3g}" for k in ("episode_return", "episode_fall_rate",
                                                                         "adaptation_mse") if k in record})
                    if c.checkpoint_every and self.iteration % c.checkpoint_every == 0 \
                            and self.iteration < c.iterations:
                        self.save()
        finally:
            if writer is not None:
                writer.close()
        self.save()
        plot_curves(self.records, self.out / CURVES, title=f"PPO {self.ppo.kind} on {c.task}")
        final = self.records[-1] if self.records else {}
        steps_rl = sum(c.batch for i in range(c.iterations) if self.phase(i) == "rl")
        return {"kind": self.ppo.kind, "iterations": self.iteration, "env_steps": self.env_steps,
                "rl_steps": steps_rl, "adaptation_steps": self.env_steps - steps_rl if self.ppo.kind == "rma" else 0,
                "teacher_steps": int(self.teacher["steps"]) if self.teacher else 0, "resumed": resumed,
                "train_time_s": round(self.train_time_s, 2),
                "samples_per_s": round(self.env_steps / max(self.train_time_s, 1e-9), 1),
                "final": final, "checkpoint": str(self.checkpoint_path), "device": self.device}


def _summary_writer(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard missing: metrics.jsonl and the PNG still get written
        return None
    return SummaryWriter(str(path))


def train_legged(config: LeggedTrainConfig, out: str | Path, resume: bool = False, env=None,
                 stop_at: int | None = None) -> dict:
    """Train ``config`` into the run folder ``out`` (new or empty unless ``resume``); returns a summary.

    ``stop_at`` ends this call after that iteration (checkpointed; ``resume=True`` continues). ``env`` replaces
    the env :func:`robot_irl.legged.env.make_legged_env` would build (tests, benchmarks); it is closed at the end
    only when this function built it.
    """
    from robot_irl.runs import prepare_run_dir, save_run_config

    out = Path(out)
    if not resume:
        prepare_run_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    save_run_config(out, {"train": "ppo", **config.to_dict()})
    runner = LeggedRunner(config, out, env)
    try:
        return runner.run(resume=resume, stop_at=stop_at)
    finally:
        if env is None:
            runner.env.close()


# ---------------------------------------------------------------------------------------------------------------
# curves
# ---------------------------------------------------------------------------------------------------------------
PANELS = (("episode_return", "episode return"), ("episode_lin_vel_error", "linear velocity error (m/s)"),
          ("episode_ang_vel_error", "yaw rate error (rad/s)"), ("episode_fall_rate", "fall rate"),
          ("surrogate", "surrogate loss"), ("value_loss", "value loss"), ("adaptation_mse", "adaptation MSE"),
          ("kl_z", "HIB KL(q(z|h) || N(0, I))"), ("infonce", "HIB InfoNCE"), ("lr", "learning rate"))


def plot_curves(records: list[dict], path: str | Path, title: str = "") -> Path | None:
    """One panel per logged quantity of :data:`PANELS` against env steps; returns the PNG path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [(k, label) for k, label in PANELS if any(k in r for r in records)]
    if not panels:
        return None
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(4.0 * cols, 3.0 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (key, label) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        points = [(r["env_steps"], r[key]) for r in records if key in r]
        ax.plot([p[0] for p in points], [p[1] for p in points], "-")
        if key == "lr":
            ax.set_yscale("log")
        ax.set_xlabel("env steps")
        ax.set_title(label, fontsize="medium")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.savefig(str(path), dpi=90)
    return Path(path)
