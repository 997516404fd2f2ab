"""Record and read LeRobot v3.0 datasets through lerobot 0.4.4's own ``LeRobotDataset``.

What we add on top of LeRobot's writer:

* **Validation with names.** Every frame is checked before LeRobot sees it: missing/unexpected keys, shapes,
  dtypes and NaN/inf are reported with the key, the episode and the frame index.
* **Real clock times.** LeRobot's ``timestamp`` is ``frame_index / fps`` (it must be, to find video frames). We also
  store the frame's wall-clock time in ``observation.timestamp_wall`` (float64 in the parquet files; note that
  ``LeRobotDataset.__getitem__`` converts it to a float32 tensor, so read exact times with :func:`read_frames`).
* **Durable episodes.** LeRobot keeps its parquet writers open until ``finalize()``: a crash loses every episode
  of the session (lerobot issues #2495, #3522). :meth:`LeRobotRecorder.save_episode` closes the writers after each
  episode, fsyncs what was written and makes LeRobot continue in new files (its own resume path), so every saved
  episode is readable even if the process dies before ``finalize()``. The price: one parquet file and one mp4 per
  episode instead of a few large ones, which LeRobot reads the same way.
* **A sidecar** ``meta/robot_irl/episodes.jsonl``: one JSON line per saved episode (index, length, success,
  duration, dropped frames, task changes, caller metadata such as perturbation events), appended and fsynced.

Per-frame annotation strings are ordinary features here: lerobot 0.4.4 accepts ``dtype: "string"`` features
(shape ``(1,)``), stores them as parquet strings and returns them as ``str`` items. Use
``Feature("string", (1,))`` in ``extra_features``.

lerobot (and torch) are imported lazily, inside the functions that need them. Nothing is ever downloaded: every
dataset lives under a local ``root`` and ``HF_HUB_OFFLINE`` defaults to ``1`` before lerobot is imported.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Self

import numpy as np

from robot_irl.core.features import Feature

log = logging.getLogger(__name__)

WALL_TIME_KEY = "observation.timestamp_wall"
SIDECAR_DIR = "meta/robot_irl"
EPISODES_SIDECAR = f"{SIDECAR_DIR}/episodes.jsonl"
DATASET_SIDECAR = f"{SIDECAR_DIR}/dataset.json"
IMAGE_NAMES = ["height", "width", "channels"]
# Columns LeRobot adds to every frame itself; callers may not define features with these names.
LEROBOT_DEFAULT_KEYS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
RESERVED_KEYS = (*LEROBOT_DEFAULT_KEYS, "task", WALL_TIME_KEY)
# SVT-AV1 (LeRobot's default codec, through PyAV) kills the process with a floating point exception on frames
# 24 pixels wide or narrower (measured with lerobot 0.4.4: width 25 works, 24 crashes; height does not matter).
SVTAV1_MIN_WIDTH = 25


class DatasetError(ValueError):
    """A dataset that cannot be created, resumed or read as asked (the message says what and where)."""


class FrameError(ValueError):
    """A frame that does not match the recorder's features (the message names the key, episode and frame)."""


# ---------------------------------------------------------------------------------------------------------------
# lazy lerobot import
# ---------------------------------------------------------------------------------------------------------------
def _lerobot():
    """Import lerobot's dataset module offline (it pulls torch; only the functions that need it call this)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("SVT_LOG", "1")  # the AV1 encoder's ~40-line banner per video: errors only
    from lerobot.datasets import lerobot_dataset

    return lerobot_dataset


# ---------------------------------------------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------------------------------------------
def _lerobot_feature(feature: Feature, use_videos: bool) -> dict:
    if feature.is_image:
        return {"dtype": "video" if use_videos else "image", "shape": tuple(feature.shape), "names": IMAGE_NAMES}
    if feature.dtype == "string":
        if feature.shape != (1,):
            raise DatasetError(f"string features hold one string per frame: shape must be (1,), got {feature.shape}")
        return {"dtype": "string", "shape": (1,), "names": None}
    return {"dtype": feature.dtype, "shape": tuple(feature.shape),
            "names": list(feature.names) if feature.names else None}


def _check_feature_keys(group: str, features: Mapping[str, Feature], seen: set[str]) -> None:
    for key, feature in features.items():
        if not isinstance(feature, Feature):
            raise DatasetError(f"{group}[{key!r}] must be a robot_irl.core.features.Feature, got "
                               f"{type(feature).__name__}")
        if "/" in key:
            raise DatasetError(f"{group}: feature name {key!r} contains '/', which LeRobot does not allow")
        if key in RESERVED_KEYS:
            raise DatasetError(f"{group}: feature name {key!r} is reserved (reserved: {list(RESERVED_KEYS)})")
        if key in seen:
            raise DatasetError(f"{group}: feature {key!r} is defined twice")
        seen.add(key)


def features_for_lerobot(observation_features: Mapping[str, Feature], action_features: Mapping[str, Feature],
                         use_videos: bool = True, extra: Mapping[str, Feature] | None = None) -> dict[str, dict]:
    """LeRobot feature dicts for a driver's features, plus ``observation.timestamp_wall`` and ``extra``.

    Images (HxWx3 uint8) become ``video`` (or ``image`` when ``use_videos`` is False) features named
    ``["height", "width", "channels"]``; vectors keep their dtype and per-entry names; ``string`` features hold one
    string per frame. ``extra`` holds caller features such as ``next.reward`` (float32 (1,)), ``next.success``
    (bool (1,)), ``observation.sim_state`` or annotation strings.
    """
    if not observation_features:
        raise DatasetError("observation_features is empty: a dataset needs at least one observation")
    if not action_features:
        raise DatasetError("action_features is empty: a dataset needs the action that was sent")
    bad = [k for k in observation_features if not k.startswith("observation.")]
    if bad:
        raise DatasetError(f"observation feature names must start with 'observation.': {bad}")
    seen: set[str] = set()
    groups = {"observation_features": observation_features, "action_features": action_features,
              "extra": extra or {}}
    out: dict[str, dict] = {}
    for group, features in groups.items():
        _check_feature_keys(group, features, seen)
        for key, feature in features.items():
            if feature.is_image and group != "observation_features":
                raise DatasetError(f"{group}[{key!r}]: camera frames belong in observation_features")
            out[key] = _lerobot_feature(feature, use_videos)
    out[WALL_TIME_KEY] = {"dtype": "float64", "shape": (1,), "names": None}
    return out


def _normalise(ft: dict) -> tuple:
    names = ft.get("names")
    return ft["dtype"], tuple(int(s) for s in ft["shape"]), list(names) if names is not None else None


def feature_differences(existing: Mapping[str, dict], wanted: Mapping[str, dict]) -> list[str]:
    """Human-readable differences between two LeRobot feature dicts (LeRobot's own columns ignored)."""
    existing = {k: v for k, v in existing.items() if k not in LEROBOT_DEFAULT_KEYS}
    wanted = {k: v for k, v in wanted.items() if k not in LEROBOT_DEFAULT_KEYS}
    diffs = []
    if missing := sorted(set(wanted) - set(existing)):
        diffs.append(f"not in the dataset: {missing}")
    if extra := sorted(set(existing) - set(wanted)):
        diffs.append(f"in the dataset but not requested: {extra}")
    for key in sorted(set(existing) & set(wanted)):
        have, want = _normalise(existing[key]), _normalise(wanted[key])
        for what, h, w in zip(("dtype", "shape", "names"), have, want):
            if h != w:
                diffs.append(f"{key}: {what} is {h} in the dataset, {w} requested")
    return diffs


# ---------------------------------------------------------------------------------------------------------------
# frame validation
# ---------------------------------------------------------------------------------------------------------------
def _check_value(key: str, feature: Feature, value: Any, where: str) -> Any:
    if feature.dtype == "string":
        if isinstance(value, np.ndarray) and value.shape in ((), (1,)):
            value = value.reshape(-1)[0]
        if not isinstance(value, (str, np.str_)):
            raise FrameError(f"{where}: {key} must be a str, got {type(value).__name__}")
        return str(value)
    arr = np.asarray(value)
    if arr.shape == () and feature.shape == (1,):
        arr = arr.reshape(1)
    if arr.shape != feature.shape:
        raise FrameError(f"{where}: {key} has shape {arr.shape}, expected {feature.shape}")
    kind = arr.dtype.kind
    if feature.dtype == "uint8":
        if arr.dtype != np.uint8:
            raise FrameError(f"{where}: {key} must be uint8 (0-255), got {arr.dtype}")
        return arr
    if feature.dtype == "bool":
        if kind not in "bui" or (kind in "ui" and not np.isin(arr, (0, 1)).all()):
            raise FrameError(f"{where}: {key} must be boolean, got {arr.dtype} {arr.tolist()}")
        return arr.astype(bool)
    if feature.dtype == "int64":
        if kind not in "bui":
            raise FrameError(f"{where}: {key} must be integer, got {arr.dtype}")
        return arr.astype(np.int64)
    if kind not in "buif":
        raise FrameError(f"{where}: {key} must be numeric, got {arr.dtype}")
    arr = arr.astype(feature.dtype)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise FrameError(f"{where}: {key} has non-finite values (NaN/inf) at indices "
                         f"{np.argwhere(bad).reshape(-1).tolist()[:10]}")
    return arr


def check_frame(values: Mapping[str, Any], features: Mapping[str, Feature], where: str, what: str) -> dict:
    """Validate and convert one frame's ``values`` against ``features``; raise :class:`FrameError` naming keys."""
    if not isinstance(values, Mapping):
        raise FrameError(f"{where}: {what} must be a dict keyed by feature name, got {type(values).__name__}")
    missing, unexpected = sorted(set(features) - set(values)), sorted(set(values) - set(features))
    if missing or unexpected:
        raise FrameError(f"{where}: {what} does not match the recorder's features: missing {missing}, "
                         f"unexpected {unexpected} (expected keys {sorted(features)})")
    return {key: _check_value(key, feature, values[key], where) for key, feature in features.items()}


# ---------------------------------------------------------------------------------------------------------------
# small file helpers
# ---------------------------------------------------------------------------------------------------------------
def _fsync(path: Path) -> None:
    """Flush a file (or a directory entry) to disk; missing paths are ignored."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, IsADirectoryError):
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"cannot store a {type(obj).__name__} in episode metadata (use JSON types, numpy arrays or "
                    f"objects with to_dict())")


def append_record(path: Path, record: dict) -> str:
    """Append one JSON line and fsync it; returns the line written."""
    line = json.dumps(record, default=_json_default, sort_keys=True, allow_nan=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())
    return line


def read_jsonl(path: Path) -> list[dict]:
    """Records of a JSON-lines file; a torn last line (crash mid-write) is skipped with a warning."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if n == len(lines) - 1:
                log.warning("%s: ignoring a torn last line", path)
            else:
                raise DatasetError(f"{path}: line {n + 1} is not JSON") from None
    return records


def set_episode_success(root: str | Path, episode_index: int, success: bool | None, source: str = "operator") -> dict:
    """Change a saved episode's success flag in the sidecar ``meta/robot_irl/episodes.jsonl``; return its record.

    The previous value is kept in the record's ``success_history`` (``[{"success", "source", "wall"}]``). The file
    is rewritten atomically (temporary file, fsync, rename), so a crash leaves the old or the new version.
    """
    path = Path(root) / EPISODES_SIDECAR
    records = read_jsonl(path)
    matches = [r for r in records if r.get("episode_index") == episode_index]
    if not matches:
        known = [r.get("episode_index") for r in records]
        raise DatasetError(f"{path}: no saved episode {episode_index} to mark (episodes: {known})")
    record = matches[-1]
    history = record.setdefault("success_history", [])
    history.append({"success": record.get("success"), "source": record.get("success_source", "recorded"),
                    "wall": time.time()})
    record["success"] = None if success is None else bool(success)
    record["success_source"] = str(source)
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, default=_json_default, sort_keys=True, allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    _fsync(path.parent)
    return record


def _is_dataset(root: Path) -> bool:
    return (root / "meta" / "info.json").is_file()


def remove_encoder_leftovers(root: Path) -> list[Path]:
    """Delete LeRobot's temporary video folders (``tmpXXXXXXXX/`` holding only ``.mp4`` files) in ``root``.

    LeRobot encodes each episode's video into a ``tempfile.mkdtemp(dir=root)`` folder and moves it into place when
    the episode is saved; a process that dies mid-episode leaves the folder behind. Returns what was removed.
    """
    removed = []
    for folder in sorted(Path(root).glob("tmp*")):
        if not folder.is_dir() or any(not p.is_file() or p.suffix != ".mp4" for p in folder.rglob("*")):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    if removed:
        log.info("%s: removed %d temporary video folders left by an interrupted recording", root, len(removed))
    return removed


def _load_info(root: Path) -> dict:
    from robot_irl.data.integrity import read_json

    path = Path(root) / "meta" / "info.json"
    if not path.is_file():
        raise DatasetError(f"{root} is not a LeRobot dataset: {path} does not exist")
    return read_json(path)


# ---------------------------------------------------------------------------------------------------------------
# the recorder
# ---------------------------------------------------------------------------------------------------------------
def episode_record(index: int, wall_times: list[float], task_changes: list[dict], success_seen: bool | None,
                   metadata: dict, fps: float, save_s: float = 0.0) -> dict:
    """The sidecar record of a saved episode (see :meth:`LeRobotRecorder.save_episode`); pops ``success``."""
    times = np.asarray(wall_times)
    gaps = np.round(np.diff(times) * fps) - 1 if len(times) > 1 else np.zeros(0)
    success = metadata.pop("success", success_seen)
    return {"episode_index": int(index), "length": len(times),
            "success": None if success is None else bool(success),
            "duration_s": float(times[-1] - times[0]) + 1.0 / fps,
            "dropped_frames": int(np.clip(gaps, 0, None).sum()), "wall_start": float(times[0]),
            "wall_end": float(times[-1]), "task_changes": task_changes, "save_s": round(save_s, 4),
            "metadata": metadata}


def task_changes_of(tasks: list[str]) -> list[dict]:
    """``[{frame, task}]`` each time the per-frame task changes (as the sidecar stores it)."""
    return [{"frame": i, "task": t} for i, t in enumerate(tasks) if i == 0 or tasks[i - 1] != t]


@dataclass
class _Episode:
    """What the recorder tracks about the episode being recorded."""

    index: int
    wall_times: list[float] = field(default_factory=list)
    task_changes: list[dict] = field(default_factory=list)
    success_seen: bool | None = None

    @property
    def length(self) -> int:
        return len(self.wall_times)


class LeRobotRecorder:
    """Writes episodes to a local LeRobot v3.0 dataset, one validated frame at a time.

    ``observation`` dicts are keyed like ``observation_features``; ``action_sent`` is the action actually sent
    (after the safety layer), a vector for the single ``action`` feature or a dict for several action features.
    ``root`` must not exist or be empty, unless ``overwrite`` (delete an existing dataset there) or ``resume``
    (append to it; its features, fps and robot type must match exactly).

    ``vcodec`` is LeRobot's (``libsvtav1``, ``h264``, ``hevc``); ``streaming_encoding`` encodes video while
    recording instead of writing PNGs and encoding in ``save_episode``.
    """

    def __init__(self, root: str | Path, repo_id: str, fps: float, observation_features: Mapping[str, Feature],
                 action_features: Mapping[str, Feature], robot_type: str, use_videos: bool = True,
                 extra_features: Mapping[str, Feature] | None = None, overwrite: bool = False,
                 resume: bool = False, vcodec: str = "libsvtav1", streaming_encoding: bool = False) -> None:
        if overwrite and resume:
            raise DatasetError("LeRobotRecorder: overwrite=True and resume=True contradict each other")
        if not isinstance(fps, (int, float)) or not fps > 0 or float(fps) != int(fps):
            raise DatasetError(f"LeRobotRecorder: fps must be a positive whole number (LeRobot stores an int), "
                               f"got {fps!r}")
        self.root = Path(root)
        self.repo_id = str(repo_id)
        self.fps = int(fps)
        self.robot_type = str(robot_type)
        self.observation_features = dict(observation_features)
        self.action_features = dict(action_features)
        self.extra_features = dict(extra_features or {})
        self.lerobot_features = features_for_lerobot(self.observation_features, self.action_features,
                                                     use_videos, self.extra_features)
        self._camera_keys = [k for k, f in self.observation_features.items() if f.is_image]
        if use_videos and vcodec == "libsvtav1":
            narrow = {k: self.observation_features[k].shape for k in self._camera_keys
                      if self.observation_features[k].shape[1] < SVTAV1_MIN_WIDTH}
            if narrow:
                raise DatasetError(f"cameras {narrow} are narrower than {SVTAV1_MIN_WIDTH} px, which crashes the "
                                   f"libsvtav1 encoder; use vcodec='h264' or use_videos=False")
        self._episode: _Episode | None = None
        self._finalized = False
        self._saved_episodes: list[dict] = []
        self._use_videos, self._vcodec, self._streaming_encoding = use_videos, vcodec, streaming_encoding
        if resume and _is_dataset(self.root):
            self._dataset = self._open_existing(vcodec, streaming_encoding)
        else:
            self._prepare_root(overwrite)
            self._dataset = self._create_dataset(use_videos)

    # -- opening --------------------------------------------------------------------------------------------
    def _prepare_root(self, overwrite: bool) -> None:
        if not self.root.exists():
            return
        if not self.root.is_dir():
            raise DatasetError(f"dataset root {self.root} exists and is not a folder")
        if not any(self.root.iterdir()):
            self.root.rmdir()  # LeRobot creates the folder itself and refuses an existing one
            return
        if not overwrite:
            raise DatasetError(f"dataset root {self.root} already exists and is not empty; pass overwrite=True to "
                               f"replace it or resume=True to append to it")
        if not _is_dataset(self.root):
            raise DatasetError(f"refusing to delete {self.root}: it does not look like a LeRobot dataset "
                               f"(no meta/info.json)")
        shutil.rmtree(self.root)

    def _open_existing(self, vcodec: str, streaming_encoding: bool):
        info = _load_info(self.root)
        problems = feature_differences(info["features"], self.lerobot_features)
        if int(info["fps"]) != self.fps:
            problems.append(f"fps is {info['fps']} in the dataset, {self.fps} requested")
        if info.get("robot_type") != self.robot_type:
            problems.append(f"robot_type is {info.get('robot_type')!r} in the dataset, {self.robot_type!r} requested")
        if problems:
            raise DatasetError(f"cannot resume {self.root}: it differs from what was requested:\n  - "
                               + "\n  - ".join(problems))
        if info["total_episodes"] == 0:  # nothing saved yet: LeRobot cannot open an empty dataset, start afresh
            shutil.rmtree(self.root)
            return self._create_dataset(info.get("video_path") is not None)
        # PNGs of an episode that was never saved (a crash mid-episode) would be encoded into the next video
        shutil.rmtree(self.root / "images", ignore_errors=True)
        remove_encoder_leftovers(self.root)
        sidecar = read_jsonl(self.root / EPISODES_SIDECAR)
        if len(sidecar) != info["total_episodes"]:
            log.warning("%s: %d episodes in the dataset but %d in %s", self.root, info["total_episodes"],
                        len(sidecar), EPISODES_SIDECAR)
        dataset = _lerobot().LeRobotDataset(self.repo_id, root=self.root, video_backend="pyav", vcodec=vcodec,
                                            streaming_encoding=streaming_encoding)
        dataset.meta.episodes = [dict(ep) for ep in dataset.meta.episodes]
        return dataset

    def _create_dataset(self, use_videos: bool):
        """A new, empty LeRobot dataset at ``root`` (which must not exist) and our sidecar."""
        dataset = _lerobot().LeRobotDataset.create(
            self.repo_id, fps=self.fps, features=self.lerobot_features, root=self.root, robot_type=self.robot_type,
            use_videos=use_videos, video_backend="pyav", vcodec=self._vcodec,
            streaming_encoding=self._streaming_encoding)
        self._write_dataset_sidecar()
        return dataset

    def _write_dataset_sidecar(self) -> None:
        path = self.root / DATASET_SIDECAR
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"repo_id": self.repo_id, "robot_type": self.robot_type, "fps": self.fps,
                  "created_wall": time.time(), "wall_time_key": WALL_TIME_KEY,
                  "features": {k: f.to_dict() for k, f in {**self.observation_features, **self.action_features,
                                                           **self.extra_features}.items()}}
        path.write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
        _fsync(path)

    # -- state ----------------------------------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        """Episodes saved in the dataset (including those there before a resume)."""
        return int(self._dataset.meta.total_episodes)

    @property
    def num_frames(self) -> int:
        return int(self._dataset.meta.total_frames)

    @property
    def episode_length(self) -> int:
        """Frames added to the episode being recorded (0 when none is open)."""
        return self._episode.length if self._episode else 0

    @property
    def saved_episodes(self) -> list[dict]:
        """Sidecar records of the episodes saved by this recorder (not those there before a resume)."""
        return list(self._saved_episodes)

    @property
    def dataset(self):
        """The underlying ``LeRobotDataset`` (for advanced use; prefer :func:`load_dataset` to read)."""
        return self._dataset

    def _require_open(self, what: str) -> None:
        if self._finalized:
            raise DatasetError(f"LeRobotRecorder.{what}: the recorder for {self.root} is finalized")

    # -- recording ------------------------------------------------------------------------------------------
    def start_episode(self) -> int:
        """Begin a new episode and return its index. Unsaved frames of a previous episode are an error."""
        self._require_open("start_episode")
        if self._episode is not None and self._episode.length:
            raise DatasetError(f"episode {self._episode.index} has {self._episode.length} unsaved frames; call "
                               f"save_episode() or discard_episode() first")
        self._episode = _Episode(index=self.num_episodes)
        self._remove_frame_images(self._episode.index)
        return self._episode.index

    def _remove_frame_images(self, episode_index: int) -> None:
        """Delete the temporary PNGs of an episode (LeRobot only deletes those of image, not video, features)."""
        for key in self._camera_keys:
            shutil.rmtree(self.root / "images" / key / f"episode-{episode_index:06d}", ignore_errors=True)

    def add_frame(self, observation: Mapping[str, Any], action_sent: Any, task: str, timestamp: float,
                  extras: Mapping[str, Any] | None = None) -> None:
        """Validate one frame and buffer it (camera frames go to disk as PNGs or into the video encoder).

        ``timestamp`` is the frame's wall-clock time in seconds (``time.time()``); it must not go backwards.
        ``task`` is the language instruction in force at this frame; it may change within an episode.
        """
        self._require_open("add_frame")
        if self._episode is None:
            self.start_episode()
        ep = self._episode
        where = f"episode {ep.index} frame {ep.length}"
        if not isinstance(task, str) or not task.strip():
            raise FrameError(f"{where}: task must be a non-empty string, got {task!r}")
        if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float, np.floating, np.integer)) \
                or not math.isfinite(float(timestamp)):
            raise FrameError(f"{where}: timestamp must be a finite number of seconds, got {timestamp!r}")
        timestamp = float(timestamp)
        if ep.wall_times and timestamp < ep.wall_times[-1]:
            raise FrameError(f"{where}: timestamp {timestamp} is earlier than the previous frame's "
                             f"{ep.wall_times[-1]}")
        if not isinstance(action_sent, Mapping):
            if len(self.action_features) != 1:
                raise FrameError(f"{where}: several action features {sorted(self.action_features)}: pass "
                                 f"action_sent as a dict")
            action_sent = {next(iter(self.action_features)): action_sent}
        frame = check_frame(observation, self.observation_features, where, "observation")
        frame.update(check_frame(action_sent, self.action_features, where, "action_sent"))
        frame.update(check_frame(extras or {}, self.extra_features, where, "extras"))
        frame[WALL_TIME_KEY] = np.array([timestamp], dtype=np.float64)
        frame["task"] = task
        buffer = self._dataset.episode_buffer
        size = buffer["size"] if buffer is not None else 0
        try:
            self._dataset.add_frame(frame)
        except BaseException:
            # LeRobot appends column by column: a failure half-way (the streaming video encoder's RuntimeError
            # on a full disk, an image that cannot be written) leaves columns of different lengths
            self._truncate_buffer(size)
            raise
        self._note_frame(ep, frame, task, timestamp)

    def _truncate_buffer(self, size: int) -> None:
        """Cut every column of LeRobot's episode buffer back to ``size`` frames (consistent again)."""
        buffer = self._dataset.episode_buffer
        if buffer is None:
            return
        for value in buffer.values():
            if isinstance(value, list):
                del value[size:]
        buffer["size"] = size

    def _note_frame(self, ep: _Episode, frame: dict, task: str, timestamp: float) -> None:
        if not ep.task_changes or ep.task_changes[-1]["task"] != task:
            ep.task_changes.append({"frame": ep.length, "task": task})
        if "next.success" in frame:
            ep.success_seen = bool(ep.success_seen) or bool(np.asarray(frame["next.success"]).any())
        ep.wall_times.append(timestamp)

    def save_episode(self, metadata: Mapping[str, Any] | None = None) -> dict:
        """Write the episode; when this returns it is on disk and readable. Returns its sidecar record.

        ``metadata`` (JSON-able; numpy arrays and objects with ``to_dict()`` such as perturbation records are
        converted) goes into the sidecar. ``metadata["success"]`` sets the success flag; otherwise it is whether
        ``next.success`` was true at any frame (None when neither is known).

        The record: ``episode_index``, ``length``, ``success``, ``duration_s`` (first to last frame's clock time
        plus one period), ``dropped_frames`` (missing periods in the clock times: a gap of k/fps counts k-1),
        ``wall_start``/``wall_end``, ``task_changes`` ([{frame, task}] each time the instruction changed),
        ``save_s`` (time spent saving) and ``metadata``.
        """
        self._require_open("save_episode")
        ep = self._episode
        if ep is None or ep.length == 0:
            raise DatasetError("save_episode: no frames were added to the current episode")
        metadata = dict(metadata or {})
        json.dumps(metadata, default=_json_default, allow_nan=False)  # fail before writing anything
        started = time.perf_counter()
        from lerobot.utils.utils import SuppressProgressBars

        with SuppressProgressBars(), warnings.catch_warnings():  # datasets' per-episode "Map" bars
            warnings.filterwarnings("ignore", message="Converting input from bool")  # LeRobot's stats of bools
            self._dataset.save_episode()
        self._commit()
        record = self._episode_record(ep, metadata, time.perf_counter() - started)
        record = json.loads(append_record(self.root / EPISODES_SIDECAR, record))
        self._saved_episodes.append(record)
        self._episode = None
        return record

    def _episode_record(self, ep: _Episode, metadata: dict, save_s: float) -> dict:
        return episode_record(ep.index, ep.wall_times, ep.task_changes, ep.success_seen, metadata, self.fps, save_s)

    def _commit(self) -> None:
        """Close LeRobot's open parquet writers, fsync, and make the next episode start new files.

        Relies on lerobot 0.4.4 internals: with ``latest_episode`` cleared and ``meta.episodes`` holding the
        saved episodes, LeRobot takes its resume path and writes the next episode to the next file index.
        """
        ds, meta = self._dataset, self._dataset.meta
        last = {k: (v[0] if isinstance(v, list) and k != "tasks" else v) for k, v in meta.latest_episode.items()
                if not k.startswith("stats/")}
        last["tasks"] = list(meta.latest_episode["tasks"][0])
        ds._close_writer()
        meta._close_writer()
        previous = list(meta.episodes) if meta.episodes is not None else []
        meta.episodes = previous + [last]
        meta.latest_episode = None
        ds.latest_episode = None
        ds._writer_closed_for_reading = False
        for path in self._files_of(last):
            _fsync(path)

    def _files_of(self, ep: dict) -> list[Path]:
        meta = self._dataset.meta
        from lerobot.datasets.utils import DEFAULT_EPISODES_PATH

        files = [self.root / meta.data_path.format(chunk_index=ep["data/chunk_index"],
                                                   file_index=ep["data/file_index"]),
                 self.root / DEFAULT_EPISODES_PATH.format(chunk_index=ep["meta/episodes/chunk_index"],
                                                          file_index=ep["meta/episodes/file_index"]),
                 self.root / "meta" / "info.json", self.root / "meta" / "stats.json",
                 self.root / "meta" / "tasks.parquet"]
        for key in meta.video_keys:
            files.append(self.root / meta.video_path.format(video_key=key, chunk_index=ep[f"videos/{key}/chunk_index"],
                                                            file_index=ep[f"videos/{key}/file_index"]))
        return files + sorted({f.parent for f in files})

    def discard_episode(self) -> None:
        """Drop the frames of the current episode (nothing of it stays on disk)."""
        self._require_open("discard_episode")
        if self._episode is None:
            return
        ds = self._dataset
        if ds.episode_buffer is not None:
            ds.clear_episode_buffer(delete_images=True)
        self._remove_frame_images(self._episode.index)
        self._episode = None

    def reopen(self) -> None:
        """After a failed write (a full disk): drop the episode in progress and load the dataset again from what is
        on disk, so that recording can go on once the cause is gone. Saved episodes are not touched. Raises
        (``OSError``, :class:`DatasetError`) when the dataset cannot be opened yet; calling it again retries."""
        self._require_open("reopen")
        old, self._episode = self._dataset, None
        # best effort: the old object's writers and encoder may be broken (it stays in place until a new one opens)
        with contextlib.suppress(Exception):
            old.clear_episode_buffer(delete_images=True)  # also cancels the streaming encoder
        for close in (old._close_writer, old.meta._close_writer):
            with contextlib.suppress(Exception):
                close()
        shutil.rmtree(self.root / "images", ignore_errors=True)
        if _is_dataset(self.root):
            self._dataset = self._open_existing(self._vcodec, self._streaming_encoding)
        elif not read_jsonl(self.root / EPISODES_SIDECAR):  # nothing was ever saved here: start afresh
            shutil.rmtree(self.root, ignore_errors=True)
            self._dataset = self._create_dataset(self._use_videos)
        else:
            raise DatasetError(f"{self.root}: meta/info.json is missing although episodes were saved there")

    def finalize(self) -> None:
        """Close the dataset. Unsaved frames are discarded (with a warning); calling it twice is harmless."""
        if self._finalized:
            return
        if self._episode is not None and self._episode.length:
            log.warning("%s: discarding %d unsaved frames of episode %d at finalize()", self.root,
                        self._episode.length, self._episode.index)
        if self._episode is not None:
            self.discard_episode()
        self._dataset.finalize()
        images = self.root / "images"
        if images.is_dir() and not any(p.is_file() for p in images.rglob("*")):
            shutil.rmtree(images)
        self._finalized = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finalize()


# ---------------------------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------------------------
def _default_repo_id(root: Path) -> str:
    sidecar = root / DATASET_SIDECAR
    if sidecar.is_file():
        return json.loads(sidecar.read_text(encoding="utf-8")).get("repo_id") or f"local/{root.name}"
    return f"local/{root.name}"


def load_dataset(root: str | Path, repo_id: str | None = None, **kwargs: Any):
    """Open a local dataset with LeRobot itself (``video_backend="pyav"``, never downloading).

    Extra keyword arguments go to ``LeRobotDataset`` (e.g. ``episodes=[0, 2]``, ``delta_timestamps``).
    """
    root = Path(root)
    info = _load_info(root)
    if info.get("total_episodes", 0) == 0:
        raise DatasetError(f"{root} holds no saved episode; LeRobot cannot open an empty dataset")
    kwargs.setdefault("video_backend", "pyav")
    lerobot_dataset = _lerobot()
    from huggingface_hub.errors import OfflineModeIsEnabled

    try:
        return lerobot_dataset.LeRobotDataset(repo_id or _default_repo_id(root), root=root, **kwargs)
    except OfflineModeIsEnabled:  # LeRobot falls back to downloading when local files are missing or torn
        raise DatasetError(f"{root}: LeRobot could not read the local dataset files (some data, video or "
                           f"meta/episodes files are missing or were not closed) and we never download") from None


def _parquet_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("chunk-*/file-*.parquet"))


def _column_to_numpy(column) -> np.ndarray:
    """A pyarrow column as a numpy array: scalars -> (N,), fixed/variable lists of equal length -> (N, D)."""
    import pyarrow as pa

    column = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    if pa.types.is_fixed_size_list(column.type):
        return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), column.type.list_size)
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        lengths = np.diff(column.offsets.to_numpy())
        if len(lengths) and (lengths != lengths[0]).any():
            raise DatasetError("a list column has rows of different lengths")
        width = int(lengths[0]) if len(lengths) else 0
        return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), width)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return np.array(column.to_pylist(), dtype=object)
    return column.to_numpy(zero_copy_only=False)


def read_frames(root: str | Path, columns: list[str] | None = None) -> dict[str, np.ndarray]:
    """Per-frame columns of a dataset as numpy arrays in global frame order, read straight from parquet.

    Exact dtypes are kept (``observation.timestamp_wall`` stays float64). Video features are not decoded here.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    info = _load_info(root)
    files = _parquet_files(root / "data")
    if not files:
        raise DatasetError(f"{root}: no data parquet files under {root / 'data'}")
    available = [k for k, ft in info["features"].items() if ft["dtype"] not in ("video", "image")]
    columns = list(columns) if columns is not None else available
    unknown = sorted(set(columns) - set(available))
    if unknown:
        raise DatasetError(f"{root}: unknown or non-tabular columns {unknown}; available: {available}")
    wanted = list(dict.fromkeys([*columns, "index"]))
    table = pa.concat_tables([pq.read_table(f, columns=wanted) for f in files])
    order = np.argsort(table.column("index").to_numpy(), kind="stable")
    return {c: _column_to_numpy(table.column(c))[order] for c in columns}


def read_episodes_meta(root: str | Path) -> list[dict]:
    """LeRobot's per-episode metadata (index, length, tasks, frame range), from ``meta/episodes``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = _parquet_files(Path(root) / "meta" / "episodes")
    cols = ["episode_index", "length", "tasks", "dataset_from_index", "dataset_to_index"]
    if not files:
        return []
    table = pa.concat_tables([pq.read_table(f, columns=cols) for f in files])
    rows = table.to_pylist()
    return sorted(rows, key=lambda r: r["episode_index"])


def dataset_summary(root: str | Path) -> dict:
    """Everything ``robot-irl info`` shows: sizes, fps, features, tasks, episode lengths and our sidecar.

    Every parquet file is checked first (its footer): a torn one raises naming it."""
    import pyarrow.parquet as pq

    from robot_irl.data.integrity import check_dataset_files

    root = Path(root)
    info = _load_info(root)
    check_dataset_files(root)
    episodes = read_episodes_meta(root)
    tasks_path = root / "meta" / "tasks.parquet"
    tasks = []
    if tasks_path.is_file():
        table = pq.read_table(tasks_path).to_pandas()
        tasks = [str(t) for t in table.sort_values("task_index").index]
    sidecar = read_jsonl(root / EPISODES_SIDECAR)
    warnings = []
    if len(sidecar) != info["total_episodes"]:
        warnings.append(f"{len(sidecar)} records in {EPISODES_SIDECAR} for {info['total_episodes']} episodes")
    lengths = [int(e["length"]) for e in episodes]
    if [e["episode_index"] for e in episodes] != list(range(len(episodes))):
        warnings.append("episode indices are not 0..N-1 without gaps")
    successes = [r.get("success") for r in sidecar]
    return {
        "root": str(root), "repo_id": _default_repo_id(root), "codebase_version": info.get("codebase_version"),
        "robot_type": info.get("robot_type"), "fps": info["fps"], "episodes": info["total_episodes"],
        "frames": info["total_frames"], "data_s": round(info["total_frames"] / info["fps"], 3),
        "features": {k: {"dtype": ft["dtype"], "shape": list(ft["shape"]), "names": ft.get("names")}
                     for k, ft in info["features"].items()},
        "tasks": tasks, "episode_lengths": lengths, "episode_tasks": [list(e["tasks"]) for e in episodes],
        "robot_irl": {
            "episodes_recorded": len(sidecar),
            "successes": sum(1 for s in successes if s), "failures": sum(1 for s in successes if s is False),
            "dropped_frames": sum(int(r.get("dropped_frames", 0)) for r in sidecar),
            "duration_s": round(sum(float(r.get("duration_s", 0.0)) for r in sidecar), 3),  # wall clock
            "records": sidecar,
        },
        "warnings": warnings,
    }


def system_ffmpeg() -> bool:
    """Whether FFmpeg's shared libraries are installed, which LeRobot's default video backend (torchcodec) loads.

    Without them ``LeRobotDataset(repo_id, root=...)`` fails on video datasets ("Could not load libtorchcodec");
    ``video_backend="pyav"`` reads the same files through PyAV's bundled FFmpeg. ``make setup`` installs them
    (Debian's libavdevice and its libraries, ~55 MB).
    """
    import ctypes.util

    return all(ctypes.util.find_library(lib) for lib in ("avutil", "avcodec", "avformat", "avdevice", "avfilter"))


def loading_hint(summary: Mapping[str, Any]) -> str:
    """How a LeRobot user opens this dataset, with the video backend that works on this machine."""
    has_video = any(ft["dtype"] == "video" for ft in summary["features"].values())
    call = f'LeRobotDataset("{summary["repo_id"]}", root="{summary["root"]}"'
    if not has_video:
        return call + ")"
    if system_ffmpeg():
        return call + ')  (videos: the default backend, torchcodec, finds the system FFmpeg; video_backend="pyav" ' \
                      'works everywhere)'
    return call + ', video_backend="pyav")  (pass it: the default backend, torchcodec, needs the system FFmpeg ' \
                  'libraries, which this machine lacks; make setup installs them)'


def format_summary(summary: Mapping[str, Any]) -> str:
    """A readable multi-line report of :func:`dataset_summary`."""
    lengths = summary["episode_lengths"]
    ri = summary["robot_irl"]
    lines = [
        f"dataset   {summary['root']} ({summary['repo_id']}, LeRobot {summary['codebase_version']})",
        f"robot     {summary['robot_type']} at {summary['fps']} fps",
        f"episodes  {summary['episodes']}, frames {summary['frames']} = {summary['data_s']:.1f} s of data at "
        f"{summary['fps']} fps"
        + (f", length min/mean/max {min(lengths)}/{np.mean(lengths):.1f}/{max(lengths)}" if lengths else ""),
        (f"success   {ri['successes']} succeeded, {ri['failures']} failed, "
         f"{ri['episodes_recorded'] - ri['successes'] - ri['failures']} unknown; "
         f"dropped frames {ri['dropped_frames']}; recording took {ri['duration_s']:.1f} s of wall-clock time"),
        "features",
    ]
    for key, ft in summary["features"].items():
        if key in LEROBOT_DEFAULT_KEYS:
            continue
        names = ft.get("names")
        shown = "" if not names or ft["dtype"] in ("video", "image") else f" {list(names)[:6]}" + (
            " ..." if len(names) > 6 else "")
        lines.append(f"  {key:<34} {ft['dtype']:<8} {tuple(ft['shape'])}{shown}")
    lines.append(f"tasks ({len(summary['tasks'])})")
    lines.extend(f"  {i}: {t}" for i, t in enumerate(summary["tasks"]))
    lines.append(f"load      {loading_hint(summary)}")
    lines.extend(f"warning: {w}" for w in summary["warnings"])
    return "\n".join(lines)
