"""Pairs to label, and the datasets they come from.

Pair sampling follows RL-VLM-F: pair number ``k`` is one random frame (or a segment of ``segment_length``
consecutive frames) from each of two different random episodes, drawn from ``numpy.random.default_rng([seed, k])``.
So pair ``k`` is the same on every run with the same seed and dataset, which is what makes the labelling job
resumable: its id (:func:`pair_id`) says which pair it is. Pairs whose shown images are identical are dropped by the
job (the next number is taken instead), deterministically too.

Frame sources give the job what it needs from a dataset without loading more than that:

* :class:`LeRobotSource` — a LeRobot v3.0 dataset recorded by robot_irl: episode lengths and per-frame columns from
  parquet (:func:`~robot_irl.data.lerobot_io.read_frames`), language tasks, and camera frames decoded from the video
  one at a time, only for the frames that are asked for (through ``load_dataset``, LeRobot's own reader).
* :class:`D4RLSource` — a D4RL-style HDF5 file (episodes end at ``terminals | timeouts``); camera frames only when
  the file holds an ``(N, H, W, 3)`` uint8 array (name it as the camera).
* :class:`ArraySource` — in-memory arrays (tests, notebooks).

A *signal* (for the oracle) is a per-frame number named ``column`` or ``column:entry``, where ``entry`` is an entry
name of the column's feature (``observation.environment_state:cube.z``) or an integer index (``infos/qpos:2``).
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CAMERA_PREFIX = "observation.images."


class PairError(ValueError):
    """A dataset, camera or signal that cannot be used for labelling (the message says what and where)."""


# ---------------------------------------------------------------------------------------------------------------
# pairs
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameRef:
    """Frames ``frame .. frame + length - 1`` of ``episode``; ``index`` is the dataset row of the first one."""

    episode: int
    frame: int
    index: int
    length: int = 1

    @property
    def last_index(self) -> int:
        return self.index + self.length - 1

    @property
    def indices(self) -> np.ndarray:
        return np.arange(self.index, self.index + self.length)

    def to_dict(self) -> dict[str, int]:
        return {"episode": self.episode, "frame": self.frame, "index": self.index, "length": self.length}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FrameRef:
        return cls(int(data["episode"]), int(data["frame"]), int(data["index"]), int(data.get("length", 1)))


@dataclass(frozen=True)
class Pair:
    """Candidate pair number ``number`` of a seed: side ``a`` is shown as Image 1, ``b`` as Image 2."""

    pair_id: str
    number: int
    a: FrameRef
    b: FrameRef


def pair_id(seed: int, number: int) -> str:
    """The id of candidate pair ``number`` drawn with ``seed`` (stable across runs)."""
    return f"s{seed}-{number:07d}"


class PairSampler:
    """Deterministic RL-VLM-F pairs over episodes of the given lengths.

    Episodes shorter than ``segment_length`` are never drawn. The two sides come from two different episodes when
    at least two can be drawn; with a single episode, two different positions in it.
    """

    def __init__(self, episode_lengths: Sequence[int], seed: int = 0, segment_length: int = 1) -> None:
        if segment_length < 1:
            raise PairError(f"segment_length must be >= 1, got {segment_length}")
        self.lengths = np.asarray(list(episode_lengths), dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.seed = int(seed)
        self.segment_length = int(segment_length)
        self.eligible = np.flatnonzero(self.lengths >= segment_length)
        if len(self.eligible) == 0:
            raise PairError(f"no episode has {segment_length} frames or more (lengths: {self.lengths.tolist()})")
        if len(self.eligible) == 1 and self._positions(int(self.eligible[0])) < 2:
            raise PairError(f"one usable episode with {self.lengths[self.eligible[0]]} frames: not enough for a "
                            f"pair of {segment_length}-frame segments")

    def _positions(self, episode: int) -> int:
        return int(self.lengths[episode]) - self.segment_length + 1

    def _ref(self, episode: int, frame: int) -> FrameRef:
        return FrameRef(episode, frame, int(self.starts[episode]) + frame, self.segment_length)

    def pair(self, number: int) -> Pair:
        """Candidate pair ``number`` (the same for the same seed, lengths and segment length)."""
        rng = np.random.default_rng([self.seed, int(number)])
        if len(self.eligible) >= 2:
            ea, eb = (int(e) for e in rng.choice(self.eligible, size=2, replace=False))
            fa, fb = int(rng.integers(self._positions(ea))), int(rng.integers(self._positions(eb)))
        else:
            ea = eb = int(self.eligible[0])
            fa, fb = (int(f) for f in rng.choice(self._positions(ea), size=2, replace=False))
        return Pair(pair_id(self.seed, number), int(number), self._ref(ea, fa), self._ref(eb, fb))

    def candidates(self, start: int = 0) -> Iterator[Pair]:
        """Pairs ``start, start + 1, ...`` without end."""
        number = start
        while True:
            yield self.pair(number)
            number += 1


# ---------------------------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------------------------
def image_hash(image: np.ndarray) -> str:
    """SHA-256 (hex) of an image's shape and pixels: equal hashes mean identical images."""
    arr = np.ascontiguousarray(image)
    digest = hashlib.sha256(f"{arr.shape}|{arr.dtype}|".encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()


def _to_hwc_uint8(value: Any, where: str) -> np.ndarray:
    """A camera frame as HxWx3 uint8 (LeRobot returns CxHxW floats in [0, 1])."""
    arr = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.dtype != np.uint8:
        arr = np.clip(np.round(arr.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3):
        raise PairError(f"{where}: expected an HxWx3 image, got shape {arr.shape}")
    return np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr


# ---------------------------------------------------------------------------------------------------------------
# frame sources
# ---------------------------------------------------------------------------------------------------------------
def parse_signal(spec: str) -> tuple[str, str | None]:
    """``"column:entry"`` -> ``("column", "entry")``; ``"column"`` -> ``("column", None)``."""
    column, _, entry = spec.partition(":")
    if not column:
        raise PairError(f"signal {spec!r}: expected 'column' or 'column:entry'")
    return column, entry or None


class FrameSource:
    """What the labelling job reads from a dataset: episodes, per-frame signals, tasks and camera frames."""

    path: str = ""
    camera: str | None = None
    default_signals: tuple[str, ...] = ()

    def __init__(self, episode_lengths: Sequence[int]) -> None:
        self.episode_lengths = [int(n) for n in episode_lengths]
        if not self.episode_lengths or min(self.episode_lengths) < 1:
            raise PairError(f"{self.path or 'dataset'}: needs episodes of at least one frame, got lengths "
                            f"{self.episode_lengths}")
        self._signals: dict[str, np.ndarray] = {}

    @property
    def num_frames(self) -> int:
        return sum(self.episode_lengths)

    @property
    def has_images(self) -> bool:
        return self.camera is not None

    # -- overridden by sources -----------------------------------------------------------------------------
    def columns(self) -> list[str]:
        """Names of the per-frame numeric columns."""
        raise NotImplementedError

    def entry_names(self, column: str) -> list[str] | None:
        """Entry names of a vector column, when known."""
        return None

    def _column(self, column: str) -> np.ndarray:
        raise NotImplementedError

    def _image(self, index: int) -> Any:
        raise NotImplementedError

    def task(self, index: int) -> str | None:
        """The language instruction in force at a row, when the dataset has one."""
        return None

    # -- shared ---------------------------------------------------------------------------------------------
    def has_signal(self, spec: str) -> bool:
        return parse_signal(spec)[0] in self.columns()

    def signal(self, spec: str) -> np.ndarray:
        """The per-frame values of a signal as float64 (N,), read once and kept."""
        if spec not in self._signals:
            self._signals[spec] = self._read_signal(spec)
        return self._signals[spec]

    def _read_signal(self, spec: str) -> np.ndarray:
        column, entry = parse_signal(spec)
        if column not in self.columns():
            raise PairError(f"{self.path}: signal {spec!r}: no column {column!r}; columns: {self.columns()}")
        arr = np.asarray(self._column(column))
        arr = arr.reshape(len(arr), -1) if arr.ndim != 1 else arr.reshape(-1, 1)
        if entry is None:
            if arr.shape[1] != 1:
                raise PairError(f"{self.path}: signal {spec!r}: column {column!r} has {arr.shape[1]} entries; name "
                                f"one as '{column}:<name or index>' (names: {self.entry_names(column)})")
            col = 0
        else:
            col = self._entry_index(column, entry, arr.shape[1], spec)
        values = arr[:, col].astype(np.float64)
        if len(values) != self.num_frames:
            raise PairError(f"{self.path}: signal {spec!r} has {len(values)} rows for {self.num_frames} frames")
        return values

    def _entry_index(self, column: str, entry: str, width: int, spec: str) -> int:
        names = self.entry_names(column)
        if names and entry in names:
            return list(names).index(entry)
        if entry.lstrip("-").isdigit() and -width <= int(entry) < width:
            return int(entry) % width
        raise PairError(f"{self.path}: signal {spec!r}: {column!r} has no entry {entry!r} (names: {names}, "
                        f"{width} entries)")

    def image(self, index: int) -> np.ndarray:
        """The camera frame of a dataset row as HxWx3 uint8."""
        if self.camera is None:
            raise PairError(f"{self.path}: no camera chosen; this dataset gives no images")
        if not 0 <= index < self.num_frames:
            raise PairError(f"{self.path}: row {index} out of range (0..{self.num_frames - 1})")
        return _to_hwc_uint8(self._image(int(index)), f"{self.path} {self.camera} row {index}")

    def describe(self) -> dict[str, Any]:
        return {"path": self.path, "kind": type(self).__name__, "episodes": len(self.episode_lengths),
                "frames": self.num_frames, "camera": self.camera}


class ArraySource(FrameSource):
    """In-memory per-frame ``columns`` (each N rows), optional ``images`` (N, H, W, 3) and ``tasks`` (N)."""

    def __init__(self, episode_lengths: Sequence[int], columns: Mapping[str, Any] | None = None,
                 images: np.ndarray | None = None, tasks: Sequence[str] | None = None,
                 entry_names: Mapping[str, Sequence[str]] | None = None, path: str = "<arrays>",
                 camera: str = "images", default_signals: Sequence[str] = ()) -> None:
        self.path = path
        super().__init__(episode_lengths)
        self._columns = {k: np.asarray(v) for k, v in (columns or {}).items()}
        self._images = images
        self.camera = camera if images is not None else None
        self._tasks = list(tasks) if tasks is not None else None
        self._names = {k: list(v) for k, v in (entry_names or {}).items()}
        self.default_signals = tuple(default_signals)
        for key, arr in {**self._columns, **({"images": images} if images is not None else {})}.items():
            if len(arr) != self.num_frames:
                raise PairError(f"{path}: {key!r} has {len(arr)} rows for {self.num_frames} frames")

    def columns(self) -> list[str]:
        return sorted(k for k, v in self._columns.items() if v.dtype.kind in "biuf")

    def entry_names(self, column: str) -> list[str] | None:
        return self._names.get(column)

    def _column(self, column: str) -> np.ndarray:
        return self._columns[column]

    def _image(self, index: int) -> np.ndarray:
        return self._images[index]

    def task(self, index: int) -> str | None:
        return None if self._tasks is None else str(self._tasks[index])


def _d4rl_episode_lengths(data: Mapping[str, np.ndarray]) -> list[int]:
    ends = np.flatnonzero(np.asarray(data["terminals"], bool) | np.asarray(data["timeouts"], bool))
    n = len(data["rewards"])
    if not len(ends) or ends[-1] != n - 1:
        ends = np.append(ends, n - 1)
    return np.diff(np.concatenate([[-1], ends])).tolist()


class D4RLSource(ArraySource):
    """A D4RL HDF5 file; ``camera`` names an (N, H, W, 3) uint8 array in it (e.g. ``images/agentview``)."""

    def __init__(self, path: str | Path, camera: str | None = None) -> None:
        from robot_irl.data.d4rl import load_d4rl, read_d4rl_attrs

        data = load_d4rl(path)
        attrs = read_d4rl_attrs(path)
        images = None
        if camera:
            if camera not in data:
                arrays = [k for k, v in data.items() if v.ndim == 4]
                raise PairError(f"{path}: no image array {camera!r}; image arrays in the file: {arrays}")
            images = data.pop(camera)
            if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
                raise PairError(f"{path}: {camera!r} must be (N, H, W, 3) uint8, got {images.shape} {images.dtype}")
        tasks = attrs.get("task")
        columns = {k: v for k, v in data.items() if v.ndim <= 2}
        super().__init__(_d4rl_episode_lengths(data), columns, images,
                         tasks=[tasks] * len(data["rewards"]) if isinstance(tasks, str) else None,
                         path=str(path), camera=camera or "images", default_signals=("rewards",))


class LeRobotSource(FrameSource):
    """A LeRobot v3.0 dataset root. Camera frames are decoded one row at a time, only when asked for."""

    default_signals = ("next.success", "next.reward")

    def __init__(self, root: str | Path, camera: str | None = None) -> None:
        from robot_irl.data.lerobot_io import _load_info, read_episodes_meta

        self.root = Path(root)
        self.path = str(root)
        self.info = _load_info(self.root)
        episodes = read_episodes_meta(self.root)
        if not episodes:
            raise PairError(f"{root}: the dataset holds no saved episode")
        super().__init__([int(e["length"]) for e in episodes])
        starts = [int(e["dataset_from_index"]) for e in episodes]
        if starts != np.concatenate([[0], np.cumsum(self.episode_lengths)[:-1]]).tolist():
            raise PairError(f"{root}: episode rows are not contiguous in episode order (starts {starts[:10]})")
        self.camera = self._resolve_camera(camera) if camera is not None else None
        self._dataset = None
        self._tasks: list[str] | None = None
        self._task_index: np.ndarray | None = None

    @property
    def cameras(self) -> list[str]:
        return [k for k, ft in self.info["features"].items() if ft["dtype"] in ("video", "image")]

    def _resolve_camera(self, camera: str) -> str:
        cameras = self.cameras
        if camera == "" and len(cameras) == 1:
            return cameras[0]
        for key in (camera, CAMERA_PREFIX + camera):
            if key in cameras:
                return key
        raise PairError(f"{self.root}: no camera {camera!r}; cameras: {cameras or '(none)'}"
                        + (" (name one)" if camera == "" and cameras else ""))

    def columns(self) -> list[str]:
        return [k for k, ft in self.info["features"].items()
                if ft["dtype"] in ("float32", "float64", "int64", "int32", "bool")]

    def entry_names(self, column: str) -> list[str] | None:
        names = self.info["features"].get(column, {}).get("names")
        if isinstance(names, Mapping):  # LeRobot sometimes stores {"motors": [...]}
            names = next(iter(names.values()), None)
        return list(names) if names else None

    def _column(self, column: str) -> np.ndarray:
        from robot_irl.data.lerobot_io import read_frames

        return read_frames(self.root, [column])[column]

    def _image(self, index: int) -> Any:
        if self._dataset is None:
            from robot_irl.data.lerobot_io import load_dataset

            self._dataset = load_dataset(self.root)
        return self._dataset[index][self.camera]

    def task(self, index: int) -> str | None:
        if self._tasks is None:
            import pyarrow.parquet as pq

            from robot_irl.data.lerobot_io import read_frames

            table = pq.read_table(self.root / "meta" / "tasks.parquet").to_pandas()
            by_index = {int(i): str(t) for t, i in zip(table.index, table["task_index"])}
            self._task_index = read_frames(self.root, ["task_index"])["task_index"].reshape(-1)
            self._tasks = [by_index.get(i, "") for i in range(max(by_index, default=-1) + 1)]
        return self._tasks[int(self._task_index[index])] or None


def open_source(path: str | Path, camera: str | None = None) -> FrameSource:
    """A LeRobot dataset folder or a D4RL ``.hdf5``/``.h5`` file as a :class:`FrameSource`.

    ``camera``: ``None`` for no images; ``""`` for the dataset's only camera; else a camera name (LeRobot:
    ``agentview`` or ``observation.images.agentview``; HDF5: the image array's key).
    """
    path = Path(path)
    if path.is_dir():
        return LeRobotSource(path, camera)
    if path.is_file() and path.suffix in (".hdf5", ".h5"):
        if camera == "":
            raise PairError(f"{path}: name the image array with --camera (HDF5 files have no default camera)")
        return D4RLSource(path, camera)
    raise PairError(f"dataset {path}: expected a LeRobot dataset folder or a D4RL .hdf5 file"
                    + ("" if path.exists() else " (it does not exist)"))


__all__ = ["ArraySource", "D4RLSource", "FrameRef", "FrameSource", "LeRobotSource", "Pair", "PairError",
           "PairSampler", "image_hash", "open_source", "pair_id", "parse_signal"]
