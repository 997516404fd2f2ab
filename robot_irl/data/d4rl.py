"""D4RL-style HDF5 files: write, read with validation, build Q-learning transitions, convert our recordings.

Layout (as in D4RL v2): ``observations`` (N, obs_dim) float32, ``actions`` (N, act_dim) float32, ``rewards`` (N,)
float32, ``terminals`` (N,) bool, ``timeouts`` (N,) bool, optionally ``infos/qpos`` and ``infos/qvel`` (N, ...).
Rows are consecutive steps; an episode ends at a row whose ``terminals`` or ``timeouts`` is set. File attributes
record every choice made when the file was produced (source, reward key, how episode ends were labelled).

Terminals vs timeouts matters: a *terminal* is a true end of the task (no bootstrapping past it); a *timeout* is an
episode cut off by a time limit or by the operator, which a value function must still bootstrap through. Only
terminals stop bootstrapping in :func:`qlearning_dataset`; transitions ending on a timeout are dropped because
their next observation (row i+1) belongs to another episode.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")
OPTIONAL_KEYS = ("infos/qpos", "infos/qvel")
FLOAT_KEYS = ("observations", "actions", "rewards")
FLAG_KEYS = ("terminals", "timeouts")
END_MODES = ("success", "timeout", "terminal")


class D4RLFormatError(ValueError):
    """A D4RL array or file that is missing a key or has the wrong shape/dtype (the message names which)."""


# ---------------------------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------------------------
def _as_flags(key: str, arr: np.ndarray, source: str) -> np.ndarray:
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind in "uif" and np.isin(arr, (0, 1)).all():
        return arr.astype(bool)
    raise D4RLFormatError(f"{source}: '{key}' must hold booleans (or 0/1), got dtype {arr.dtype}")


def _check_float(key: str, arr: np.ndarray, ndim: int, source: str) -> np.ndarray:
    if arr.dtype.kind not in "uif":
        raise D4RLFormatError(f"{source}: '{key}' must be numeric, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        want = "(N,)" if ndim == 1 else "(N, dim)"
        raise D4RLFormatError(f"{source}: '{key}' must have shape {want}, got {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    finite = np.isfinite(arr) if ndim == 1 else np.isfinite(arr).all(axis=1)
    if not finite.all():
        raise D4RLFormatError(f"{source}: '{key}' has NaN/inf at row {int(np.argmin(finite))}")
    return arr


def validate_d4rl(data: Mapping[str, Any], source: str = "D4RL data") -> dict[str, np.ndarray]:
    """Check a D4RL dict (keys, equal lengths, dtypes, finiteness) and return it with canonical dtypes.

    Floats become float32, flags become bool; unknown keys are kept as they are. Raises
    :class:`D4RLFormatError` naming the key.
    """
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise D4RLFormatError(f"{source}: missing required key(s) {missing} (has {sorted(data)})")
    out = {k: np.asarray(v) for k, v in data.items()}
    out["observations"] = _check_float("observations", out["observations"], 2, source)
    out["actions"] = _check_float("actions", out["actions"], 2, source)
    if out["rewards"].ndim == 2 and out["rewards"].shape[1] == 1:
        out["rewards"] = out["rewards"][:, 0]
    out["rewards"] = _check_float("rewards", out["rewards"], 1, source)
    for key in FLAG_KEYS:
        if out[key].ndim != 1:
            raise D4RLFormatError(f"{source}: '{key}' must have shape (N,), got {out[key].shape}")
        out[key] = _as_flags(key, out[key], source)
    n = len(out["observations"])
    for key, arr in out.items():
        if arr.ndim == 0 or len(arr) != n:
            raise D4RLFormatError(f"{source}: '{key}' has {len(arr) if arr.ndim else 0} rows, 'observations' "
                                  f"has {n}")
    if n == 0:
        raise D4RLFormatError(f"{source}: no rows")
    both = out["terminals"] & out["timeouts"]
    if both.any():
        raise D4RLFormatError(f"{source}: row {int(np.argmax(both))} is both a terminal and a timeout")
    return out


# ---------------------------------------------------------------------------------------------------------------
# episodes -> flat arrays
# ---------------------------------------------------------------------------------------------------------------
def episodes_to_arrays(episodes: Iterable[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Concatenate episode dicts into D4RL arrays.

    Each episode has ``observations``, ``actions``, ``rewards`` (length T) and optionally ``terminals`` /
    ``timeouts`` and ``infos/...`` arrays. An episode whose last step is neither terminal nor timeout gets
    ``timeouts[-1] = True`` (it was cut off, not finished), so episode boundaries are never lost.
    """
    parts: dict[str, list[np.ndarray]] = {}
    count = 0
    for i, ep in enumerate(episodes):
        missing = [k for k in ("observations", "actions", "rewards") if k not in ep]
        if missing:
            raise D4RLFormatError(f"episode {i}: missing {missing}")
        t = len(ep["observations"])
        if t == 0:
            raise D4RLFormatError(f"episode {i}: no steps")
        ep = {k: np.asarray(v) for k, v in ep.items()}
        ep.setdefault("terminals", np.zeros(t, bool))
        ep.setdefault("timeouts", np.zeros(t, bool))
        ep["terminals"], ep["timeouts"] = ep["terminals"].astype(bool), ep["timeouts"].astype(bool)
        if not (ep["terminals"][-1] or ep["timeouts"][-1]):
            ep["timeouts"] = ep["timeouts"].copy()
            ep["timeouts"][-1] = True
        if count and set(ep) != set(parts):
            raise D4RLFormatError(f"episode {i}: keys {sorted(ep)} differ from episode 0's {sorted(parts)}")
        for k, v in ep.items():
            if len(v) != t:
                raise D4RLFormatError(f"episode {i}: '{k}' has {len(v)} rows, 'observations' has {t}")
            parts.setdefault(k, []).append(v)
        count += 1
    if not count:
        raise D4RLFormatError("no episodes given")
    return {k: np.concatenate(v) for k, v in parts.items()}


# ---------------------------------------------------------------------------------------------------------------
# file I/O
# ---------------------------------------------------------------------------------------------------------------
def export_d4rl(path: str | Path, data: Mapping[str, Any] | Iterable[Mapping[str, Any]], *,
                attrs: Mapping[str, Any] | None = None, overwrite: bool = False,
                compression: str | None = None) -> Path:
    """Write ``data`` (a dict of flat D4RL arrays, or an iterable of episode dicts) to an HDF5 file.

    ``attrs`` are stored as file attributes (non-string values as JSON). An existing file is refused unless
    ``overwrite``. ``compression`` (e.g. ``"gzip"``) trades load speed for size; the default stores raw arrays.
    """
    import h5py

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    flat = data if isinstance(data, Mapping) else episodes_to_arrays(data)
    flat = validate_d4rl(flat, source=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        for key, arr in flat.items():
            f.create_dataset(key, data=arr, compression=compression)
        f.attrs["format"] = "d4rl"
        for key, value in (attrs or {}).items():
            f.attrs[key] = value if isinstance(value, str) else json.dumps(value)
    tmp.replace(path)
    return path


def _read_all(group, prefix: str = "") -> dict[str, np.ndarray]:
    import h5py

    out = {}
    for name, item in group.items():
        key = f"{prefix}{name}"
        if isinstance(item, h5py.Dataset):
            out[key] = item[()]  # one read per array: no per-row Python
        else:
            out.update(_read_all(item, key + "/"))
    return out


def load_d4rl(path: str | Path) -> dict[str, np.ndarray]:
    """Read every array of a D4RL HDF5 file (groups flattened as ``infos/qpos``) and validate it."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"D4RL file not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            data = _read_all(f)
    except OSError as e:
        raise D4RLFormatError(f"{path}: not a readable HDF5 file ({e})") from None
    return validate_d4rl(data, source=str(path))


def read_d4rl_attrs(path: str | Path) -> dict[str, Any]:
    """The file attributes written by :func:`export_d4rl` (JSON values decoded)."""
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        for key, value in f.attrs.items():
            value = value.decode() if isinstance(value, bytes) else value
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    pass
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------------------------
# Q-learning transitions
# ---------------------------------------------------------------------------------------------------------------
def qlearning_dataset(data: Mapping[str, np.ndarray], terminate_on_end: bool = False) -> dict[str, np.ndarray]:
    """(s, a, s', r, done) transitions with D4RL's semantics, vectorised.

    The next observation of row i is row i+1; the last row of the data is dropped (it has no successor); rows
    with ``timeouts[i]`` are dropped (their successor starts another episode) unless ``terminate_on_end``; only
    ``terminals`` set ``terminals`` in the output (the learner stops bootstrapping there).
    """
    data = validate_d4rl(data, source="qlearning_dataset input")
    n = len(data["observations"])
    keep = np.ones(n - 1, dtype=bool) if terminate_on_end else ~data["timeouts"][:-1]
    idx = np.flatnonzero(keep)
    obs = data["observations"]
    return {"observations": obs[idx], "actions": data["actions"][idx], "next_observations": obs[idx + 1],
            "rewards": data["rewards"][idx], "terminals": data["terminals"][idx]}


def episode_returns(data: Mapping[str, np.ndarray]) -> np.ndarray:
    """The undiscounted return of each episode (episodes end at terminals or timeouts; a trailing partial one
    counts)."""
    ends = np.flatnonzero(np.asarray(data["terminals"], bool) | np.asarray(data["timeouts"], bool))
    rewards = np.asarray(data["rewards"], dtype=np.float64)
    if not len(ends) or ends[-1] != len(rewards) - 1:
        ends = np.append(ends, len(rewards) - 1)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return np.add.reduceat(rewards, starts)


# ---------------------------------------------------------------------------------------------------------------
# LeRobot recording -> D4RL
# ---------------------------------------------------------------------------------------------------------------
def _default_obs_keys(features: Mapping[str, dict]) -> list[str]:
    from robot_irl.data.lerobot_io import WALL_TIME_KEY

    return [k for k, ft in features.items()
            if k.startswith("observation.") and k != WALL_TIME_KEY and ft["dtype"] in ("float32", "float64")
            and len(ft["shape"]) == 1]


def _episode_success(frames: Mapping[str, np.ndarray], success_key: str | None, sidecar: list[dict],
                     episode_ids: np.ndarray, n_episodes: int) -> np.ndarray | None:
    if success_key is not None and success_key in frames:
        flags = np.asarray(frames[success_key]).reshape(len(episode_ids), -1).any(axis=1)
        return np.bincount(episode_ids, weights=flags, minlength=n_episodes) > 0
    by_index = {r["episode_index"]: r.get("success") for r in sidecar}
    if all(by_index.get(e) is not None for e in range(n_episodes)):
        return np.array([bool(by_index[e]) for e in range(n_episodes)])
    return None


def lerobot_to_d4rl(root: str | Path, out_path: str | Path, reward_key: str | None = "next.reward",
                    obs_keys: list[str] | None = None, action_key: str = "action",
                    end_of_episode: str = "success", success_key: str | None = "next.success",
                    qpos_key: str | None = None, qvel_key: str | None = None,
                    overwrite: bool = False) -> dict[str, Any]:
    """Convert a dataset recorded with :class:`~robot_irl.data.lerobot_io.LeRobotRecorder` to a D4RL file.

    * observations: the ``obs_keys`` columns concatenated (default: every float vector ``observation.*`` feature
      except the wall-clock time, in feature order). Camera frames are not converted.
    * rewards: the ``reward_key`` column (``next.reward``: reward after the frame's action); ``reward_key=None``
      writes zeros (for reward learning later).
    * episode ends, ``end_of_episode``: ``"success"`` (default) labels the last step of a successful episode a
      terminal and every other episode end a timeout; ``"timeout"`` labels every end a timeout (nothing is a true
      termination, e.g. tasks that continue after success); ``"terminal"`` labels every end a terminal. Success
      comes from the ``success_key`` column (true at any frame) or else the recorder's sidecar flags.

    Returns the file's attributes (every choice made, for logging).
    """
    from robot_irl.data.lerobot_io import (
        EPISODES_SIDECAR,
        _load_info,
        read_frames,
        read_jsonl,
    )

    if end_of_episode not in END_MODES:
        raise ValueError(f"end_of_episode must be one of {END_MODES}, got {end_of_episode!r}")
    root = Path(root)
    features = _load_info(root)["features"]
    obs_keys = list(obs_keys) if obs_keys is not None else _default_obs_keys(features)
    if not obs_keys:
        raise D4RLFormatError(f"{root}: no float vector observation features to convert; pass obs_keys")
    for what, key in (("reward_key", reward_key), ("action_key", action_key), ("qpos_key", qpos_key),
                      ("qvel_key", qvel_key), *(("obs_keys", k) for k in obs_keys)):
        if key is not None and key not in features:
            raise D4RLFormatError(f"{root}: {what} {key!r} is not a feature of the dataset; features: "
                                  f"{sorted(features)}")
    extra = [k for k in (reward_key, qpos_key, qvel_key) if k] + (
        [success_key] if success_key and success_key in features else [])
    frames = read_frames(root, list(dict.fromkeys([*obs_keys, action_key, "episode_index", *extra])))
    episode_ids = frames["episode_index"].astype(np.int64)
    n_episodes = int(episode_ids.max()) + 1
    last = np.append(episode_ids[1:] != episode_ids[:-1], True)
    success = _episode_success(frames, success_key, read_jsonl(root / EPISODES_SIDECAR), episode_ids, n_episodes)
    if end_of_episode == "terminal":
        terminal_end = np.ones(n_episodes, bool)
    elif end_of_episode == "success" and success is not None:
        terminal_end = success
    else:
        terminal_end = np.zeros(n_episodes, bool)
    terminals = last & terminal_end[episode_ids]
    n = len(episode_ids)
    data = {"observations": np.concatenate([np.asarray(frames[k], np.float32).reshape(n, -1) for k in obs_keys], 1),
            "actions": np.asarray(frames[action_key], np.float32).reshape(n, -1),
            "rewards": (np.asarray(frames[reward_key], np.float32).reshape(n) if reward_key
                        else np.zeros(n, np.float32)),
            "terminals": terminals, "timeouts": last & ~terminals}
    if qpos_key:
        data["infos/qpos"] = np.asarray(frames[qpos_key])
    if qvel_key:
        data["infos/qvel"] = np.asarray(frames[qvel_key])
    attrs = {"source": str(root), "obs_keys": obs_keys, "action_key": action_key, "reward_key": reward_key,
             "end_of_episode": end_of_episode, "success_key": success_key,
             "success_known": success is not None, "episodes": n_episodes,
             "terminal_episodes": int(terminals.sum())}
    export_d4rl(out_path, data, attrs=attrs, overwrite=overwrite)
    return attrs
