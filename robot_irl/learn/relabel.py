"""Write a learned reward into a new copy of a dataset, with the reward scaling explicit and recorded.

:func:`relabel_dataset` scores every frame with a reward model (:mod:`robot_irl.learn.reward`: batched, no
gradients, the ensemble mean), rescales the scores over the whole dataset (:class:`RewardScaling`) and writes:

* a LeRobot dataset folder: a copy of the input (videos hard-linked when the file system allows, else copied; data
  and episode parquet files rewritten with pyarrow) whose ``next.reward`` holds the learned reward, with the
  original moved to ``next.reward_true`` (a dataset relabelled before keeps its ``next.reward_true``);
  ``meta/info.json``, ``meta/stats.json`` and the per-episode statistics in ``meta/episodes`` describe both
  columns, so ``LeRobotDataset`` loads it like any other; ``meta/robot_irl/reward_relabel.json`` records the
  model, the scaling and the statistics of the rewards before and after it;
* a D4RL ``.hdf5`` file: ``rewards`` replaced, the original in ``infos/rewards_true``, the same record in the
  ``reward_relabel`` attribute.

Row ``t`` gets ``r(o_t)``, the reward of the frame's own observation: the frame the labeller was shown for that
row. The input is never modified; an existing non-empty output is refused unless ``overwrite``.

Scaling matters downstream: IQL's published hyperparameters (temperature, expectile) assume rewards of order one,
and a tanh reward model's raw outputs are whatever the ensemble settled on. ``minmax`` (the default) maps the
dataset's learned rewards to [0, 1]; ``standardize`` to zero mean and unit standard deviation; ``affine`` applies a
given ``scale * r + shift``; ``none`` keeps them. Importing this module imports no torch.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robot_irl.core.config import Config, check

log = logging.getLogger(__name__)

SCALING_MODES = ("none", "standardize", "minmax", "affine")
RELABEL_FORMAT = "robot_irl.reward_relabel/1"
RELABEL_RECORD = "meta/robot_irl/reward_relabel.json"
LEROBOT_REWARD, LEROBOT_TRUE = "next.reward", "next.reward_true"
D4RL_REWARD, D4RL_TRUE = "rewards", "infos/rewards_true"
REWARD_FEATURE = {"dtype": "float32", "shape": [1], "names": None}


class RelabelError(ValueError):
    """A dataset, output path or reward model that cannot be relabelled as asked (the message says which)."""


@dataclass
class RewardScaling(Config):
    """How learned rewards are rescaled over the whole dataset: ``r' = scale * r + shift`` with the parameters
    fitted by ``mode`` (``minmax``: to [0, 1]; ``standardize``: zero mean, unit std) or given (``affine``)."""

    mode: Literal["none", "standardize", "minmax", "affine"] = "minmax"
    scale: float = 1.0  # affine only
    shift: float = 0.0  # affine only

    def validate(self) -> None:
        w = "RewardScaling"
        check(np.isfinite(self.scale) and np.isfinite(self.shift), f"{w}.scale", "scale and shift must be finite")
        if self.mode == "affine":
            check(self.scale != 0, f"{w}.scale", "must not be 0 (every reward would be the same)")
        else:
            check(self.scale == 1.0 and self.shift == 0.0, f"{w}.scale",
                  f"scale/shift are only used with mode 'affine' (mode is {self.mode!r})")

    def fit(self, rewards: np.ndarray) -> dict[str, Any]:
        """The parameters for these rewards: ``mode``, ``scale``, ``shift`` and what they were computed from."""
        r = np.asarray(rewards, dtype=np.float64)
        out: dict[str, Any] = {"mode": self.mode, "formula": "scaled = scale * learned + shift"}
        scale, shift = 1.0, 0.0
        if self.mode == "minmax":
            lo, hi = float(r.min()), float(r.max())
            out.update(min=lo, max=hi)
            scale = 1.0 / (hi - lo) if hi > lo else 1.0
            shift = -lo * scale  # the minimum maps to exactly 0
        elif self.mode == "standardize":
            mean, std = float(r.mean()), float(r.std())
            out.update(mean=mean, std=std)
            scale = 1.0 / std if std > 0 else 1.0
            shift = -mean * scale
        elif self.mode == "affine":
            scale, shift = float(self.scale), float(self.shift)
        if self.mode in ("minmax", "standardize") and np.ptp(r) == 0:
            log.warning("the learned rewards are all %.6g: %s scaling maps them to 0", float(r[0]), self.mode)
            out["warning"] = "constant learned rewards"
        out.update(scale=scale, shift=shift)
        return out


def apply_scaling(rewards: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    return (np.asarray(rewards, dtype=np.float64) * params["scale"] + params["shift"]).astype(np.float32)


def reward_stats(rewards: np.ndarray) -> dict[str, float]:
    r = np.asarray(rewards, dtype=np.float64)
    return {"frames": int(len(r)), "min": float(r.min()), "max": float(r.max()), "mean": float(r.mean()),
            "std": float(r.std()), "median": float(np.median(r))}


def _as_scaling(scaling: RewardScaling | Mapping[str, Any] | str | None) -> RewardScaling:
    if scaling is None:
        return RewardScaling()
    if isinstance(scaling, RewardScaling):
        return scaling
    if isinstance(scaling, str):
        return RewardScaling.from_dict({"mode": scaling})
    return RewardScaling.from_dict(dict(scaling))


# ---------------------------------------------------------------------------------------------------------------
# scoring every frame
# ---------------------------------------------------------------------------------------------------------------
def predict_dataset_rewards(model, data, progress: bool = True) -> np.ndarray:
    """The ensemble-mean learned reward of every row of ``data`` (a
    :class:`~robot_irl.learn.reward.DatasetInputs`), (N,) float32."""
    from tqdm.auto import tqdm

    from robot_irl.learn.reward import resize_images

    meta = getattr(model, "meta", {})
    spec = meta.get("input", {})
    batch = model.config.eval_batch_size
    if model.kind == "state":
        keys = list(spec.get("state_keys") or [])
        states, names = data.states(keys)
        if states.shape[1] != model.input_shape[0]:
            raise RelabelError(f"{data.path}: the state keys {keys} have {states.shape[1]} entries; the reward model "
                               f"was trained on {model.input_shape[0]}")
        trained = spec.get("names")
        if trained and names != trained and not all(n.split(":", 1)[1].isdigit() for n in names + trained):
            diff = next(f"{a!r} vs {b!r}" for a, b in zip(names, trained) if a != b)
            raise RelabelError(f"{data.path}: the state entries differ from the reward model's ({diff})")
        chunks = range(0, len(states), batch)
        return np.concatenate([model.predict(states[i:i + batch], batch)
                               for i in tqdm(chunks, disable=not progress, desc="relabel", unit="batch")])
    camera = data.resolve_camera(spec.get("camera") or model.config.camera)
    size = model.config.image_size
    parts = []
    for episode in tqdm(range(len(data.episode_lengths)), disable=not progress, desc="relabel", unit="episode"):
        parts.append(model.predict(resize_images(data.episode_images(camera, episode), size), batch))
    return np.concatenate(parts)


# ---------------------------------------------------------------------------------------------------------------
# LeRobot output
# ---------------------------------------------------------------------------------------------------------------
def _lerobot_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot's statistics (min, max, mean, std, count, quantiles) of a (1,)-shaped feature."""
    from robot_irl.data.lerobot_io import _lerobot

    _lerobot()
    from lerobot.datasets.compute_stats import get_feature_stats

    return get_feature_stats(np.asarray(values, np.float32).reshape(-1, 1), axis=0, keepdims=False)


def _relabel_features(features: Mapping[str, dict], move: bool) -> dict[str, dict]:
    """Feature dicts with ``next.reward`` learned (float32) and, if ``move``, the original as ``next.reward_true``;
    a new ``next.reward`` goes before LeRobot's own columns."""
    from robot_irl.data.lerobot_io import LEROBOT_DEFAULT_KEYS

    out: dict[str, dict] = {}
    for key, ft in features.items():
        if key == LEROBOT_REWARD:
            out[key] = dict(REWARD_FEATURE)
            if move:
                out[LEROBOT_TRUE] = ft
            continue
        if key in LEROBOT_DEFAULT_KEYS and LEROBOT_REWARD not in features and LEROBOT_REWARD not in out:
            out[LEROBOT_REWARD] = dict(REWARD_FEATURE)
        out[key] = ft
    out.setdefault(LEROBOT_REWARD, dict(REWARD_FEATURE))
    return out


def _rewrite_data(path: Path, dest: Path, rewards: np.ndarray, move: bool) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    index = table.column("index").to_numpy()
    if len(index) and (index.min() < 0 or index.max() >= len(rewards)):
        raise RelabelError(f"{path}: row index {int(index.max())} is outside the dataset's {len(rewards)} frames")
    new = pa.array(rewards[index], type=pa.float32())
    names = table.column_names
    if LEROBOT_REWARD in names:
        pos = names.index(LEROBOT_REWARD)
        old = table.column(pos)
        table = table.set_column(pos, LEROBOT_REWARD, new)
        if move:
            table = table.add_column(pos + 1, LEROBOT_TRUE, old)
    else:
        pos = names.index("timestamp") if "timestamp" in names else len(names)
        table = table.add_column(pos, LEROBOT_REWARD, new)
    metadata = dict(table.schema.metadata or {})
    if b"huggingface" in metadata:  # datasets' feature description, kept in step with the columns
        hf = json.loads(metadata[b"huggingface"])
        old_features = hf.get("info", {}).get("features", {})
        learned = {"dtype": "float32", "_type": "Value"}
        hf.setdefault("info", {})["features"] = {
            c: learned if c == LEROBOT_REWARD else old_features.get(LEROBOT_REWARD if c == LEROBOT_TRUE and move
                                                                    else c, learned)
            for c in table.column_names}
        hf.pop("fingerprint", None)  # the content changed
        metadata[b"huggingface"] = json.dumps(hf).encode()
    pq.write_table(table.replace_schema_metadata(metadata), dest)


def _rewrite_episodes(path: Path, dest: Path, rewards: np.ndarray, move: bool) -> None:
    """Per-episode statistics of the learned reward (and the original's, moved) in ``meta/episodes``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    froms = table.column("dataset_from_index").to_pylist()
    tos = table.column("dataset_to_index").to_pylist()
    per_episode = [_lerobot_stats(rewards[f:t]) for f, t in zip(froms, tos)]
    prefix, true_prefix = f"stats/{LEROBOT_REWARD}/", f"stats/{LEROBOT_TRUE}/"

    def learned(stat: str, type_: pa.DataType | None) -> pa.Array:
        values = [np.asarray(s[stat]).reshape(-1).tolist() for s in per_episode]
        default = pa.list_(pa.int64()) if stat == "count" else pa.list_(pa.float64())
        return pa.array(values, type=type_ or default)

    columns, names, moved = [], [], []
    stats_written: set[str] = set()
    for name in table.column_names:
        if name.startswith(prefix):
            stat = name[len(prefix):]
            if move:
                moved.append((true_prefix + stat, table.column(name)))
            if stat in per_episode[0]:
                columns.append(learned(stat, table.schema.field(name).type))
                names.append(name)
                stats_written.add(stat)
            continue
        if name.startswith(true_prefix) and move:
            continue
        columns.append(table.column(name))
        names.append(name)
    for stat in per_episode[0]:
        if stat not in stats_written:
            columns.append(learned(stat, None))
            names.append(prefix + stat)
    for name, column in moved:
        columns.append(column)
        names.append(name)
    pq.write_table(pa.table(columns, names=names), dest)


def _link_or_copy(path: Path, dest: Path) -> str:
    try:
        os.link(path, dest)
        return "linked"
    except OSError:
        shutil.copy2(path, dest)
        return "copied"


def _write_lerobot(src: Path, out: Path, rewards: np.ndarray, record: dict, link_videos: bool) -> dict[str, int]:
    from robot_irl.data.lerobot_io import DATASET_SIDECAR, _fsync

    info = json.loads((src / "meta" / "info.json").read_text(encoding="utf-8"))
    features = info["features"]
    move = LEROBOT_REWARD in features and LEROBOT_TRUE not in features
    record["true_key"] = LEROBOT_TRUE if (move or LEROBOT_TRUE in features) else None
    tmp = out.parent / f".{out.name}.relabel-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    counts = {"linked": 0, "copied": 0, "rewritten": 0}
    skip = {"meta/info.json", "meta/stats.json", DATASET_SIDECAR, RELABEL_RECORD}
    try:
        for path in sorted(src.rglob("*")):
            if path.is_dir():
                continue
            rel = path.relative_to(src)
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if rel.as_posix() in skip:
                continue
            if rel.parts[0] == "data" and path.suffix == ".parquet":
                _rewrite_data(path, dest, rewards, move)
                counts["rewritten"] += 1
            elif rel.parts[:2] == ("meta", "episodes") and path.suffix == ".parquet":
                _rewrite_episodes(path, dest, rewards, move)
                counts["rewritten"] += 1
            elif rel.parts[0] == "videos" and link_videos:
                counts[_link_or_copy(path, dest)] += 1
            else:
                shutil.copy2(path, dest)
                counts["copied"] += 1
        info["features"] = _relabel_features(features, move)
        (tmp / "meta" / "info.json").write_text(json.dumps(info, indent=4), encoding="utf-8")
        stats_path = src / "meta" / "stats.json"
        if stats_path.is_file():
            stats = json.loads(stats_path.read_text(encoding="utf-8"))
            if move and LEROBOT_REWARD in stats:
                stats[LEROBOT_TRUE] = stats[LEROBOT_REWARD]
            stats[LEROBOT_REWARD] = {k: np.asarray(v).tolist() for k, v in _lerobot_stats(rewards).items()}
            (tmp / "meta" / "stats.json").write_text(json.dumps(stats, indent=4), encoding="utf-8")
        sidecar = src / DATASET_SIDECAR
        if sidecar.is_file():
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            feats = meta.get("features", {})
            if move and LEROBOT_REWARD in feats:
                feats[LEROBOT_TRUE] = feats[LEROBOT_REWARD]
            feats[LEROBOT_REWARD] = {"dtype": "float32", "names": None, "shape": [1]}
            meta["features"] = dict(sorted(feats.items()))
            meta["reward_relabel"] = RELABEL_RECORD
            (tmp / DATASET_SIDECAR).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
        (tmp / RELABEL_RECORD).parent.mkdir(parents=True, exist_ok=True)
        (tmp / RELABEL_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
        _fsync(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counts


# ---------------------------------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------------------------------
def _check_paths(src: Path, out: Path, kind: str, overwrite: bool) -> None:
    s, o = src.resolve(), out.resolve()
    if o == s or s in o.parents or o in s.parents:
        raise RelabelError(f"out {out} must lie outside the input dataset {src} (and not contain it): the input is "
                           f"never modified")
    if not out.exists():
        return
    if kind == "d4rl":
        if out.is_dir():
            raise RelabelError(f"out {out} is a folder; a relabelled D4RL dataset is an .hdf5 file")
        if not overwrite:
            raise FileExistsError(f"{out} already exists; pass overwrite=True (--overwrite) to replace it")
        return
    if not out.is_dir():
        raise RelabelError(f"out {out} exists and is not a folder")
    if any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} already exists and is not empty; pass overwrite=True (--overwrite) or "
                                  f"pick another out")
        if not (out / "meta" / "info.json").is_file():
            raise RelabelError(f"refusing to replace {out}: it does not look like a LeRobot dataset "
                               f"(no meta/info.json)")


def relabel_dataset(model_dir: str | Path, dataset: str | Path, out: str | Path,
                    scaling: RewardScaling | Mapping[str, Any] | str | None = None, overwrite: bool = False,
                    progress: bool = True, device: str = "auto", link_videos: bool = True) -> dict[str, Any]:
    """Score every frame of ``dataset`` with the reward model in ``model_dir``, rescale and write a relabelled
    copy at ``out`` (see the module docstring). Returns the relabel record: paths, scaling parameters, statistics
    of the learned rewards before and after scaling, and their rank agreement with the original reward."""
    from robot_irl import __version__
    from robot_irl.learn.reward import DatasetInputs, load_reward_model, rank_agreement

    started = time.perf_counter()
    scaling = _as_scaling(scaling)
    src, out = Path(dataset), Path(out)
    data = DatasetInputs(src)
    _check_paths(src, out, data.kind, overwrite)
    model = load_reward_model(model_dir, device=device)
    raw = predict_dataset_rewards(model, data, progress)
    if len(raw) != data.num_frames or not np.all(np.isfinite(raw)):
        raise RelabelError(f"{model_dir}: the reward model gave {len(raw)} rewards for {data.num_frames} frames "
                           f"or non-finite values")
    params = scaling.fit(raw)
    scaled = apply_scaling(raw, params)
    true_key, true = data.true_reward()
    meta = model.meta
    record: dict[str, Any] = {
        "format": RELABEL_FORMAT, "model": meta["path"], "model_kind": model.kind, "model_input": meta.get("input"),
        "label_run": meta.get("label_run"), "trained_on": meta.get("dataset"), "source": str(src.resolve()),
        "out": str(out.resolve()), "kind": data.kind, "frames": data.num_frames,
        "reward_key": LEROBOT_REWARD if data.kind == "lerobot" else D4RL_REWARD,
        "alignment": "row t gets the reward of its own observation, r(o_t)",
        "scaling": params, "learned": reward_stats(raw), "scaled": reward_stats(scaled),
        "true_reward": None if true is None else {"signal": true_key, **rank_agreement(raw, true)},
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "robot_irl_version": __version__}
    if data.kind == "lerobot":
        record["files"] = _write_lerobot(src, out, scaled, record, link_videos)
        from robot_irl.data.lerobot_io import read_frames

        written = read_frames(out, [LEROBOT_REWARD])[LEROBOT_REWARD].reshape(-1)
        if not np.array_equal(written, scaled):
            raise RelabelError(f"{out}: the written {LEROBOT_REWARD} column does not read back as computed")
    else:
        from robot_irl.data.d4rl import export_d4rl, read_d4rl_attrs

        arrays = dict(data._arrays)
        if D4RL_TRUE not in arrays:
            arrays[D4RL_TRUE] = arrays[D4RL_REWARD].copy()
        arrays[D4RL_REWARD] = scaled
        record["true_key"] = D4RL_TRUE
        attrs = {k: v for k, v in read_d4rl_attrs(src).items() if k != "format"}
        attrs.update(reward_relabel=record, rewards_true_key=D4RL_TRUE, reward_source="learned")
        export_d4rl(out, arrays, attrs=attrs, overwrite=overwrite)
    record["wall_s"] = round(time.perf_counter() - started, 2)
    return record


__all__ = ["D4RL_REWARD", "D4RL_TRUE", "LEROBOT_REWARD", "LEROBOT_TRUE", "RELABEL_RECORD", "SCALING_MODES",
           "RelabelError", "RewardScaling", "apply_scaling", "predict_dataset_rewards", "relabel_dataset",
           "reward_stats"]
