"""Small synthetic datasets for tests and demos, generated on the spot (nothing downloaded).

A point mass in ``act_dim`` dimensions is pushed by a noisy PD controller toward one of four named goals; the
language instruction names the goal ("go to the top left corner") and may change mid-episode, moving the goal
(a language perturbation, as in ADC). Rewards mean something: ``-distance to the goal``; success is being within
``success_radius``; an episode ends early (terminal) on success.

``observation.state`` is ``[position, velocity, goal, zeros...]`` truncated/padded to ``obs_dim``
(``obs_dim >= 2 * act_dim``); an optional camera renders the mass (red) and goal (green) as a small image.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_irl.core.features import Feature, image, vector

GOALS = {"top left corner": (-0.5, 0.5), "top right corner": (0.5, 0.5), "bottom left corner": (-0.5, -0.5),
         "bottom right corner": (0.5, -0.5)}
CAMERA_KEY = "observation.images.top"
DT = 0.1
SUCCESS_RADIUS = 0.1


def task_text(goal_name: str) -> str:
    return f"go to the {goal_name}"


@dataclass
class Rollout:
    """One synthetic episode as arrays of length T (positions/velocities before each action)."""

    positions: np.ndarray
    velocities: np.ndarray
    goals: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    successes: np.ndarray
    tasks: list[str]
    terminated: bool

    def __len__(self) -> int:
        return len(self.actions)

    def states(self, obs_dim: int) -> np.ndarray:
        full = np.concatenate([self.positions, self.velocities, self.goals], axis=1)
        out = np.zeros((len(self), obs_dim), np.float32)
        width = min(obs_dim, full.shape[1])
        out[:, :width] = full[:, :width]
        return out


def _goal(name: str, act_dim: int) -> np.ndarray:
    g = np.zeros(act_dim)
    g[: min(2, act_dim)] = GOALS[name][: min(2, act_dim)]
    return g


def rollout(rng: np.random.Generator, length: int, act_dim: int = 2, task_change_at: int | None = None,
            noise: float = 0.3, terminate_on_success: bool = True) -> Rollout:
    """Simulate one episode of at most ``length`` steps (shorter when it succeeds and terminates)."""
    names = list(GOALS)
    first, second = rng.choice(len(names), size=2, replace=False)
    pos = rng.uniform(-1.0, 1.0, act_dim)
    vel = np.zeros(act_dim)
    rec: dict[str, list] = {k: [] for k in ("pos", "vel", "goal", "act", "rew", "succ", "task")}
    terminated = False
    for t in range(length):
        name = names[second] if task_change_at is not None and t >= task_change_at else names[first]
        goal = _goal(name, act_dim)
        action = np.clip(2.0 * (goal - pos) - 1.0 * vel + noise * rng.standard_normal(act_dim), -1.0, 1.0)
        rec["pos"].append(pos.copy())
        rec["vel"].append(vel.copy())
        rec["goal"].append(goal)
        rec["act"].append(action)
        rec["task"].append(task_text(name))
        vel = 0.9 * vel + DT * 1.0 * action
        pos = np.clip(pos + DT * vel, -1.0, 1.0)
        dist = float(np.linalg.norm(pos - goal))
        rec["rew"].append(-dist)
        rec["succ"].append(dist < SUCCESS_RADIUS)
        if dist < SUCCESS_RADIUS and terminate_on_success and (task_change_at is None or t >= task_change_at):
            terminated = True
            break
    arr = {k: np.asarray(v) for k, v in rec.items() if k != "task"}
    return Rollout(arr["pos"].astype(np.float32), arr["vel"].astype(np.float32), arr["goal"].astype(np.float32),
                   arr["act"].astype(np.float32), arr["rew"].astype(np.float32), arr["succ"].astype(bool),
                   rec["task"], terminated)


def render(position: np.ndarray, goal: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A top view: gray floor, green goal square, red point mass (first two dimensions), uint8 HxWx3."""
    h, w = size
    img = np.full((h, w, 3), 90, np.uint8)
    img[:, :, 2] = np.linspace(60, 140, w, dtype=np.uint8)[None, :]  # a gradient so frames are not flat

    def pixel(p: np.ndarray) -> tuple[int, int]:
        x = p[0] if len(p) > 0 else 0.0
        y = p[1] if len(p) > 1 else 0.0
        return round(float(1 - (y + 1) / 2) * (h - 1)), round(float(x + 1) / 2 * (w - 1))

    r = max(1, min(h, w) // 12)
    for p, color in ((goal, (40, 200, 60)), (position, (230, 40, 40))):
        cy, cx = pixel(p)
        img[max(0, cy - r):cy + r + 1, max(0, cx - r):cx + r + 1] = color
    return img


def synthetic_features(obs_dim: int = 4, act_dim: int = 2, image_size: int | tuple[int, int] | None = None
                       ) -> tuple[dict[str, Feature], dict[str, Feature], dict[str, Feature]]:
    """(observation_features, action_features, extra_features) matching :func:`synthetic_episodes`."""
    if act_dim < 1 or obs_dim < 2 * act_dim:
        raise ValueError(f"synthetic point mass: need act_dim >= 1 and obs_dim >= 2 * act_dim, got obs_dim="
                         f"{obs_dim}, act_dim={act_dim}")
    axes = "xyzuvw"
    state_names = [f"pos_{axes[i % 6]}{i // 6 or ''}" for i in range(act_dim)]
    state_names += [f"vel_{axes[i % 6]}{i // 6 or ''}" for i in range(act_dim)]
    state_names += [f"goal_{axes[i % 6]}{i // 6 or ''}" for i in range(act_dim)]
    state_names = (state_names + [f"pad_{i}" for i in range(obs_dim)])[:obs_dim]
    obs = {"observation.state": vector(state_names)}
    if image_size is not None:
        h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
        obs[CAMERA_KEY] = image(h, w)
    action = {"action": vector([f"force_{axes[i % 6]}{i // 6 or ''}" for i in range(act_dim)])}
    extra = {"next.reward": Feature("float32", (1,)), "next.success": Feature("bool", (1,))}
    return obs, action, extra


def synthetic_episodes(n_episodes: int = 3, length: int = 20, obs_dim: int = 4, act_dim: int = 2, seed: int = 0,
                       image_size: int | tuple[int, int] | None = None, task_change_at: int | None = None,
                       fps: float = 20.0, start_time: float = 1.7e9) -> Iterator[list[dict]]:
    """Yield episodes as lists of frames, each ``recorder.add_frame(**frame)``-ready.

    A frame is ``{"observation": {...}, "action_sent": array, "task": str, "timestamp": float,
    "extras": {"next.reward": (1,), "next.success": (1,)}}``. Timestamps are wall-clock-like seconds from
    ``start_time`` at ``fps``. ``task_change_at`` switches instruction and goal at that frame of every episode.
    """
    obs_features, _, _ = synthetic_features(obs_dim, act_dim, image_size)
    size = obs_features[CAMERA_KEY].shape[:2] if CAMERA_KEY in obs_features else None
    rng = np.random.default_rng(seed)
    clock = float(start_time)
    for _ in range(n_episodes):
        ro = rollout(rng, length, act_dim, task_change_at)
        states = ro.states(obs_dim)
        frames = []
        for t in range(len(ro)):
            observation = {"observation.state": states[t]}
            if size is not None:
                observation[CAMERA_KEY] = render(ro.positions[t], ro.goals[t], size)
            frames.append({"observation": observation, "action_sent": ro.actions[t], "task": ro.tasks[t],
                           "timestamp": clock,
                           "extras": {"next.reward": np.array([ro.rewards[t]], np.float32),
                                      "next.success": np.array([ro.successes[t]])}})
            clock += 1.0 / fps
        clock += 2.0  # a reset pause between episodes
        yield frames


def synthetic_d4rl_arrays(n_episodes: int = 10, length: int = 50, obs_dim: int = 4, act_dim: int = 2,
                          seed: int = 0, task_change_at: int | None = None) -> dict[str, np.ndarray]:
    """Flat D4RL arrays: successful episodes end on a terminal, the others on a timeout."""
    from robot_irl.data.d4rl import episodes_to_arrays

    synthetic_features(obs_dim, act_dim)  # validates the dimensions
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(n_episodes):
        ro = rollout(rng, length, act_dim, task_change_at)
        t = len(ro)
        terminals = np.zeros(t, bool)
        terminals[-1] = ro.terminated
        episodes.append({"observations": ro.states(obs_dim), "actions": ro.actions, "rewards": ro.rewards,
                         "terminals": terminals, "timeouts": ~terminals & (np.arange(t) == t - 1),
                         "infos/qpos": ro.positions, "infos/qvel": ro.velocities})
    return episodes_to_arrays(episodes)


def make_synthetic_d4rl(path: str | Path, n_episodes: int = 10, length: int = 50, obs_dim: int = 4,
                        act_dim: int = 2, seed: int = 0, overwrite: bool = False) -> Path:
    """Write :func:`synthetic_d4rl_arrays` to a D4RL HDF5 file and return its path."""
    from robot_irl.data.d4rl import export_d4rl

    data = synthetic_d4rl_arrays(n_episodes, length, obs_dim, act_dim, seed)
    attrs = {"source": "robot_irl.data.synthetic point mass", "seed": seed, "n_episodes": n_episodes,
             "max_length": length, "reward": "-distance to goal", "success_radius": SUCCESS_RADIUS}
    return export_d4rl(path, data, attrs=attrs, overwrite=overwrite)
