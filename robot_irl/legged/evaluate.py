"""Evaluate a legged checkpoint under dynamics it did or did not train on: tracking error, return, falls.

``evaluate_legged(ckpt, randomization="held_out")`` runs ``episodes`` episodes in the vec env (one per env, all
envs at once; the first episode each env plays is the one counted, so every policy evaluated with the same seed
meets the same robots, dynamics draws and initial commands), deterministic actions through
:meth:`robot_irl.legged.policy.LeggedPolicy.act_batch` with a history buffer per env. Dynamics come from a
randomization preset (``train``, ``held_out``, ``none``) or a config, on the ``default`` robot or the ``sim2sim``
model variant (the differently tuned robot standing in for the real one).

Commands: ``"sampled"`` draws them from the env's ranges (resampled mid-episode as in training); ``"fixed"`` gives
env ``i`` the ``i % len(FIXED_COMMANDS)``-th of a fixed set (forward, backward, sideways, turning, standing).

:func:`sweep_legged` evaluates one dynamics factor at a list of values with everything else nominal (e.g. friction
0.05 ... 3.0), the cheap way to see *where* a policy breaks.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.core.config import merge_dicts

#: (vx, vy, wz) commands of the fixed evaluation set
FIXED_COMMANDS = ((0.5, 0.0, 0.0), (1.0, 0.0, 0.0), (-0.5, 0.0, 0.0), (0.0, 0.3, 0.0), (0.0, 0.0, 0.8),
                  (0.5, 0.0, -0.5), (0.0, 0.0, 0.0), (0.8, 0.2, 0.3))
METRICS = ("return", "length", "fell", "lin_vel_error", "ang_vel_error", "command_speed")


def _policy(checkpoint, device: str, num_threads: int | None):
    from robot_irl.legged.policy import LeggedPolicy

    if isinstance(checkpoint, LeggedPolicy):
        return checkpoint
    return LeggedPolicy(checkpoint, device=device, num_threads=num_threads)


def evaluate_legged(checkpoint: str | Path | Any, randomization: str | dict | Any = "held_out", episodes: int = 32,
                    model_variant: str = "default", seed: int = 10_000, task: str | None = None,
                    commands: str = "sampled", max_steps: int | None = None, num_threads: int = 2,
                    device: str = "cpu", progress: bool = False, env_overrides: dict | None = None) -> dict:
    """Mean tracking errors, return, fall rate (and each reward term) of ``episodes`` deterministic episodes.

    ``checkpoint``: a checkpoint/run folder or a :class:`~robot_irl.legged.policy.LeggedPolicy`. ``task``
    defaults to the one the policy trained on; ``max_steps`` caps episode length (default: the env's time limit).
    """
    import torch
    from tqdm.auto import tqdm

    from robot_irl.learn.ppo import HistoryBuffer
    from robot_irl.legged.env import make_legged_env

    if episodes < 1:
        raise ValueError(f"evaluate_legged: episodes must be >= 1, got {episodes}")
    if commands not in ("sampled", "fixed"):
        raise ValueError(f"evaluate_legged: commands must be 'sampled' or 'fixed', got {commands!r}")
    policy = _policy(checkpoint, device, None)
    train = policy.config.get("train", {})
    task = task or train.get("task", "go1_flat")
    overrides = merge_dicts(train.get("env", {}), env_overrides or {})  # the training env (rewards, gait, ...)
    if max_steps is not None:
        if max_steps < 1:
            raise ValueError(f"evaluate_legged: max_steps must be >= 1, got {max_steps}")
        overrides["episode_s"] = max_steps * policy.config.get("dt", 0.02)
    started = time.time()
    env = make_legged_env(task=task, num_envs=episodes, randomization=randomization, seed=seed,
                          num_threads=num_threads, model_variant=model_variant, **overrides)
    try:
        obs = env.reset(seed=seed)
        if commands == "fixed":
            env.set_command(np.array([FIXED_COMMANDS[i % len(FIXED_COMMANDS)] for i in range(env.num_envs)]))
            obs = env.reset(seed=seed)
        history = HistoryBuffer(env.num_envs, policy.history_length, env.obs_dim, policy.device)
        hist = history.push(torch.as_tensor(obs["proprio"]))
        finished: dict[int, dict] = {}
        steps = 0
        with tqdm(total=env.num_envs, disable=not progress, unit="episode", desc="evaluate") as bar:
            while len(finished) < env.num_envs and steps < env.max_episode_steps:
                action = policy.act_batch(hist.cpu().numpy(), obs["privileged"])
                obs, _, done, info = env.step(action)
                steps += 1
                for ep in info["episodes"]:
                    if ep["env"] not in finished:
                        finished[ep["env"]] = ep
                        bar.update(1)
                history.reset(torch.as_tensor(np.asarray(done, dtype=bool)))
                hist = history.push(torch.as_tensor(obs["proprio"]))
        describe = env.describe() if hasattr(env, "describe") else {}
    finally:
        env.close()
    eps = [finished[i] for i in sorted(finished)]
    result: dict[str, Any] = {"episodes": len(eps), "kind": policy.kind, "checkpoint": str(policy.checkpoint),
                              "task": task, "randomization": _name(randomization), "model_variant": model_variant,
                              "commands": commands, "seed": seed, "eval_s": round(time.time() - started, 2)}
    for key in METRICS:
        values = np.array([float(e[key]) for e in eps])
        name = "fall_rate" if key == "fell" else f"mean_{key}"
        result[name] = float(values.mean())
        result[f"{name}_std"] = float(values.std())
    result["terms"] = {t: float(np.mean([e["terms"][t] for e in eps])) for t in sorted(eps[0].get("terms", {}))}
    result["max_episode_steps"] = int(describe.get("max_episode_steps", steps))
    return result



def _name(randomization) -> str:
    if isinstance(randomization, str):
        return randomization
    if isinstance(randomization, dict):
        return str(randomization.get("name", "custom"))
    return str(getattr(randomization, "name", "custom"))


def sweep_legged(checkpoint, parameter: str = "friction", values=(0.05, 0.2, 0.5, 1.0, 2.0, 3.0),
                 episodes: int = 16, **kwargs) -> list[dict]:
    """:func:`evaluate_legged` with one dynamics factor fixed at each of ``values`` and the rest nominal (no noise,
    no pushes); ``parameter`` is a :class:`~robot_irl.legged.randomization.DomainRandomizationConfig` range field
    (``friction``, ``payload_mass``, ``kp_scale``, ``action_delay_ms``, ...)."""
    import dataclasses

    from robot_irl.core.config import ConfigError
    from robot_irl.legged.randomization import DomainRandomizationConfig, get_randomization

    known = sorted(f.name for f in dataclasses.fields(DomainRandomizationConfig)
                   if str(f.type) == "Ranges" and f.name != "push_velocity")
    if parameter not in known:
        raise ConfigError(f"sweep_legged: unknown parameter {parameter!r}; known: {known}")
    policy = _policy(checkpoint, kwargs.pop("device", "cpu"), None)
    out = []
    for value in values:
        dr = get_randomization("none").replace(name=f"{parameter}={value:g}", **{parameter: [[value, value]]})
        result = evaluate_legged(policy, dr, episodes, **kwargs)
        out.append({"parameter": parameter, "value": float(value), **result})
    return out
