"""Reward models learned from preference labels (RL-VLM-F), and the runner that trains them.

A label (:mod:`robot_irl.label`) says which of two frames, or two segments of ``L`` consecutive frames, of a
dataset is closer to the goal. The reward model ``r(o)`` scores single frames; a side's return ``R`` is the sum of
``r`` over its frames, and the Bradley-Terry model ``P(b > a) = sigmoid(R(b) - R(a))`` is fitted to the labels by
cross-entropy. A tie (-1) is dropped (RL-VLM-F) or kept as a 0.5/0.5 soft target (B-Pref, Uni-RLHF):
:attr:`RewardModelConfig.ties`.

* Inputs (:attr:`RewardModelConfig.inputs`): ``state`` (observation vectors concatenated, an MLP) or ``image``
  (camera frames resized to ``image_size``, scaled to [0, 1] and normalised per channel; a small CNN, four stride-2
  convolutions 16/32/64/128 and a linear head, small enough for a CPU). ``auto`` takes images when the dataset has
  a camera and the label run showed images, else states. Normalisation constants live inside the model (buffers),
  so whoever loads it feeds raw frames.
* An ensemble (default 3 members, as in RL-VLM-F); each member sees its own minibatch order (``member_data:
  shuffle``) or its own bootstrap resample of the pairs (``bootstrap``). The reward is the members' mean; the
  output goes through ``tanh`` (RL-VLM-F) or stays ``linear``.
* Training (:func:`train_reward_model`): epochs over the labelled pairs with a held-out fraction of *pairs*;
  stop when the training accuracy reaches ``stop_train_accuracy`` (RL-VLM-F's 97% rule), when the held-out pair
  accuracy has not improved for ``patience`` epochs (the best weights are restored), or at ``max_epochs``.

:func:`train_reward_model` writes ``OUT/reward_model/`` (``model.safetensors`` and ``config.json``: the config,
the input description and normaliser statistics, the label run and dataset it came from), ``metrics.jsonl`` (one
line per epoch), ``learning_curve.png``, ``report.json`` (pairs used, tie handling, accuracies, why it stopped, and
how the learned reward orders frames compared with the dataset's true reward, when it has one) and ``config.json``
(the run's resolved config). :mod:`robot_irl.learn.relabel` writes the learned reward into a copy of a dataset.

Frames are addressed by dataset row (the global frame index); :class:`DatasetInputs` reads the rows' states
(parquet or HDF5 arrays, no video) and camera frames (LeRobot videos decoded one pass per episode with LeRobot's
own decoder, the same frames ``LeRobotDataset`` returns; HDF5 image arrays as they are).
"""
from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robot_irl.core.config import Config, check
from robot_irl.learn.networks import ACTIVATIONS, Normalizer, mlp

log = logging.getLogger(__name__)

MODEL_FORMAT = "robot_irl.reward_model/1"
MODEL_DIR = "reward_model"
STATE_DEFAULTS = ("observation.state", "observation.environment_state")
D4RL_STATE = "observations"
#: the dataset's own reward, in the order it is looked for (a relabelled dataset keeps the original in *_true)
TRUE_SIGNALS = {"lerobot": ("next.reward_true", "next.reward", "next.success"),
                "d4rl": ("infos/rewards_true", "rewards")}
VIDEO_TOLERANCE_S = 1e-4  # LeRobotDataset's default


class RewardModelError(ValueError):
    """Labels, a dataset or a reward model that cannot be used as asked (the message says what and where)."""


@dataclass
class RewardModelConfig(Config):
    """The reward model and how it is trained; saved with the model.

    ``state_keys``: empty for the dataset's default (LeRobot: ``observation.state`` and
    ``observation.environment_state`` where present; D4RL: ``observations``). ``camera``: empty for the camera
    the label run showed (else the dataset's only camera). ``stop_train_accuracy``: stop once the epoch's
    training accuracy reaches it (RL-VLM-F: 0.97); 0 disables. ``patience``: epochs without a better held-out
    accuracy before stopping; 0 disables. ``val_fraction``: share of the labelled pairs held out.
    """

    inputs: Literal["auto", "state", "image"] = "auto"
    state_keys: tuple[str, ...] = ()
    camera: str = ""
    image_size: int = 64
    ensemble: int = 3
    hidden: tuple[int, ...] = (256, 256)
    channels: tuple[int, ...] = (16, 32, 64, 128)
    activation: str = "relu"
    output: Literal["tanh", "linear"] = "tanh"
    ties: Literal["drop", "half"] = "drop"
    lr: float = 3e-4
    weight_decay: float = 0.0
    batch_size: int = 128
    max_epochs: int = 100
    val_fraction: float = 0.2
    patience: int = 10
    stop_train_accuracy: float = 0.97
    member_data: Literal["shuffle", "bootstrap"] = "shuffle"
    seed: int = 0
    device: str = "auto"
    num_threads: int = 1  # torch intra-op threads (small networks run fastest on one); 0: torch's default
    eval_batch_size: int = 1024  # frames per forward pass when evaluating and relabelling

    def validate(self) -> None:
        w = "RewardModelConfig"
        check(self.image_size >= 8, f"{w}.image_size", f"must be >= 8, got {self.image_size}")
        check(self.ensemble >= 1, f"{w}.ensemble", f"must be >= 1, got {self.ensemble}")
        check(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), f"{w}.hidden",
              f"needs positive layer widths, got {list(self.hidden)}")
        check(len(self.channels) > 0 and all(c > 0 for c in self.channels), f"{w}.channels",
              f"needs positive channel counts, got {list(self.channels)}")
        check(self.activation in ACTIVATIONS, f"{w}.activation",
              f"{self.activation!r} is not one of {sorted(ACTIVATIONS)}")
        check(self.lr > 0, f"{w}.lr", f"must be > 0, got {self.lr}")
        check(self.weight_decay >= 0, f"{w}.weight_decay", "must be >= 0")
        check(self.batch_size >= 1, f"{w}.batch_size", f"must be >= 1, got {self.batch_size}")
        check(self.max_epochs >= 1, f"{w}.max_epochs", f"must be >= 1, got {self.max_epochs}")
        check(0.0 <= self.val_fraction < 1.0, f"{w}.val_fraction", f"must be in [0, 1), got {self.val_fraction}")
        check(self.patience >= 0, f"{w}.patience", "must be >= 0")
        check(0.0 <= self.stop_train_accuracy <= 1.0, f"{w}.stop_train_accuracy",
              f"must be in [0, 1] (0 disables), got {self.stop_train_accuracy}")
        check(self.num_threads >= 0, f"{w}.num_threads", "must be >= 0")
        check(self.eval_batch_size >= 1, f"{w}.eval_batch_size", "must be >= 1")
        check(self.device in ("auto", "cpu") or self.device.startswith("cuda"), f"{w}.device",
              f"must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")
        check(len(set(self.state_keys)) == len(self.state_keys), f"{w}.state_keys",
              f"duplicates in {list(self.state_keys)}")


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run with ``count`` torch intra-op threads (0: leave them), restoring the previous number after."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(device: str) -> torch.device:
    """``auto``: the first GPU when torch sees one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# ---------------------------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------------------------
def conv_reward_net(image_size: int, channels: Sequence[int] = (16, 32, 64, 128), activation: str = "relu",
                    in_channels: int = 3) -> nn.Sequential:
    """3x3 stride-2 convolutions (each halves the image), flattened into a linear head with one output."""
    layers: list[nn.Module] = []
    width, size = in_channels, int(image_size)
    for c in channels:
        layers += [nn.Conv2d(width, c, kernel_size=3, stride=2, padding=1), ACTIVATIONS[activation]()]
        width, size = c, (size + 1) // 2
    layers += [nn.Flatten(), nn.Linear(width * size * size, 1)]
    return nn.Sequential(*layers)


class RewardModel(nn.Module):
    """An ensemble of per-frame reward networks over raw frames (normalised inside).

    ``kind`` ``"state"``: frames are (N, D) float vectors, ``mean``/``std`` (D,). ``"image"``: frames are
    (N, 3, S, S) uint8 (already resized to ``config.image_size``), ``mean``/``std`` (3,) per channel in [0, 1].
    """

    def __init__(self, kind: str, input_shape: Sequence[int], config: RewardModelConfig,
                 mean: np.ndarray | None = None, std: np.ndarray | None = None) -> None:
        super().__init__()
        if kind not in ("state", "image"):
            raise RewardModelError(f"RewardModel: kind must be 'state' or 'image', got {kind!r}")
        self.kind, self.config = kind, config
        self.input_shape = tuple(int(s) for s in input_shape)
        if kind == "state":
            if len(self.input_shape) != 1:
                raise RewardModelError(f"RewardModel: state input shape must be (D,), got {self.input_shape}")
            stats_dim = self.input_shape[0]
            build = lambda: mlp(stats_dim, 1, config.hidden, config.activation)  # noqa: E731
        else:
            if self.input_shape != (3, config.image_size, config.image_size):
                raise RewardModelError(f"RewardModel: image input shape must be (3, {config.image_size}, "
                                       f"{config.image_size}), got {self.input_shape}")
            stats_dim = 3
            build = lambda: conv_reward_net(config.image_size, config.channels, config.activation)  # noqa: E731
        self.members = nn.ModuleList(build() for _ in range(config.ensemble))
        mean = np.zeros(stats_dim) if mean is None else np.asarray(mean, dtype=np.float32).reshape(-1)
        std = np.ones(stats_dim) if std is None else np.asarray(std, dtype=np.float32).reshape(-1)
        if mean.shape != (stats_dim,) or std.shape != (stats_dim,) or not (std > 0).all():
            raise RewardModelError(f"RewardModel: normaliser mean/std must be ({stats_dim},) with std > 0, got "
                                   f"{mean.shape}/{std.shape}")
        self.register_buffer("input_mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("input_std", torch.as_tensor(std, dtype=torch.float32))

    @property
    def ensemble_size(self) -> int:
        return len(self.members)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """Raw frames -> normalised float network inputs."""
        if self.kind == "image":
            x = frames.to(torch.float32) / 255.0
            return (x - self.input_mean.view(1, -1, 1, 1)) / self.input_std.view(1, -1, 1, 1)
        return (frames.to(torch.float32) - self.input_mean) / self.input_std

    def _member(self, index: int, x: torch.Tensor) -> torch.Tensor:
        out = self.members[index](x).squeeze(-1)
        return torch.tanh(out) if self.config.output == "tanh" else out

    def member_rewards(self, frames: torch.Tensor) -> torch.Tensor:
        """(E, N): every member's reward for each of N frames."""
        x = self.preprocess(frames)
        return torch.stack([self._member(e, x) for e in range(self.ensemble_size)])

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(N,): the ensemble-mean reward of each frame."""
        return self.member_rewards(frames).mean(0)

    def segment_returns(self, segments: torch.Tensor) -> torch.Tensor:
        """(E, B): every member's return (sum of frame rewards) of B segments given as (B, L, *frame)."""
        b, length = segments.shape[:2]
        return self.member_rewards(segments.reshape(b * length, *segments.shape[2:])).view(-1, b, length).sum(-1)

    def member_segment_returns(self, segments: torch.Tensor) -> torch.Tensor:
        """(E, B): member ``e`` scores its own segments ``segments[e]``, given as (E, B, L, *frame)."""
        e, b, length = segments.shape[:3]
        if e != self.ensemble_size:
            raise RewardModelError(f"member_segment_returns: {e} member batches for {self.ensemble_size} members")
        x = self.preprocess(segments.reshape(e * b * length, *segments.shape[3:])).view(e, b * length,
                                                                                         *segments.shape[3:])
        return torch.stack([self._member(i, x[i]) for i in range(e)]).view(e, b, length).sum(-1)

    @torch.no_grad()
    def predict(self, frames: torch.Tensor | np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Ensemble-mean rewards of raw frames, in batches, without gradients: (N,) float32 numpy."""
        device = self.input_mean.device
        frames = torch.as_tensor(frames)
        was_training = self.training
        self.eval()
        try:
            out = [self(frames[i:i + batch_size].to(device)).cpu() for i in range(0, len(frames), batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(out).numpy().astype(np.float32) if out else np.zeros(0, np.float32)


# ---------------------------------------------------------------------------------------------------------------
# the loss and the learner
# ---------------------------------------------------------------------------------------------------------------
def bradley_terry_loss(returns_a: torch.Tensor, returns_b: torch.Tensor, target_b: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``P(b > a) = sigmoid(R_b - R_a)`` against ``target_b`` (1: b preferred, 0: a, 0.5: tie),
    averaged over the last (pair) axis: shape of the leading axes (e.g. (E,) for per-member returns (E, B))."""
    target = target_b.to(returns_a.dtype).expand_as(returns_a)
    return F.binary_cross_entropy_with_logits(returns_b - returns_a, target, reduction="none").mean(-1)


def preference_accuracy(returns_a: torch.Tensor, returns_b: torch.Tensor, target_b: torch.Tensor) -> float:
    """Share of decided pairs (target not 0.5) whose preferred side has the higher return (equal returns count
    half); averaged over any leading (member) axis. NaN when no pair is decided."""
    target = target_b.expand_as(returns_a)
    decided = target != 0.5
    if not bool(decided.any()):
        return float("nan")
    right = torch.where(returns_b == returns_a, torch.full_like(returns_a, 0.5),
                        ((returns_b > returns_a) == (target > 0.5)).to(returns_a.dtype))
    return float(right[decided].mean())


class PreferenceRewardLearner:
    """Fits a :class:`RewardModel` to preference pairs with the Bradley-Terry loss (see the module docstring).

    Batches hold raw frames: ``update`` takes ``a``/``b`` (E, B, L, *frame), one minibatch per member, and
    ``target`` (E, B) = P(b preferred); ``evaluate`` takes ``a``/``b`` (P, L, *frame) and ``target`` (P,) and
    scores the ensemble mean.
    """

    name = "preference_reward"
    config_class = RewardModelConfig

    def __init__(self, model: RewardModel, config: RewardModelConfig | None = None, device: str = "cpu") -> None:
        self.config = config or model.config
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.config.lr,
                                          weight_decay=self.config.weight_decay)

    def modules(self) -> dict[str, nn.Module]:
        return {"reward": self.model}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"reward": self.optimizer}

    def update(self, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """One gradient step; returns the mean member loss and the members' mean accuracy on the batch."""
        self.model.train()
        ra = self.model.member_segment_returns(batch["a"])
        rb = self.model.member_segment_returns(batch["b"])
        losses = bradley_terry_loss(ra, rb, batch["target"])
        loss = losses.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach()), "accuracy": preference_accuracy(ra.detach(), rb.detach(),
                                                                                batch["target"])}

    @torch.no_grad()
    def returns(self, segments: torch.Tensor) -> torch.Tensor:
        """(E, P) member returns of (P, L, *frame) segments, in chunks of about ``eval_batch_size`` frames."""
        self.model.eval()
        step = max(1, self.config.eval_batch_size // max(1, segments.shape[1]))
        parts = [self.model.segment_returns(segments[i:i + step].to(self.device))
                 for i in range(0, len(segments), step)]
        self.model.train()
        if not parts:
            return torch.zeros(self.model.ensemble_size, 0, device=self.device)
        return torch.cat(parts, dim=1)

    @torch.no_grad()
    def evaluate(self, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """``loss`` (mean member loss) and ``accuracy`` (of the ensemble-mean return) over all pairs of ``batch``."""
        ra, rb = self.returns(batch["a"]), self.returns(batch["b"])
        target = batch["target"].to(self.device)
        loss = float(bradley_terry_loss(ra, rb, target).mean()) if ra.shape[1] else float("nan")
        return {"loss": loss, "accuracy": preference_accuracy(ra.mean(0), rb.mean(0), target)}


# ---------------------------------------------------------------------------------------------------------------
# datasets: states, camera frames, the true reward
# ---------------------------------------------------------------------------------------------------------------
def resize_images(images: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, size, size) uint8 (bilinear with antialiasing; non-square frames are
    squeezed to a square)."""
    x = torch.as_tensor(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    if tuple(x.shape[2:]) == (size, size):
        return x.contiguous()
    y = F.interpolate(x.to(torch.float32), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return y.round_().clamp_(0, 255).to(torch.uint8)


class DatasetInputs:
    """What a reward model reads from a LeRobot dataset folder or a D4RL ``.hdf5`` file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            from robot_irl.data.lerobot_io import _load_info, read_episodes_meta

            self.kind = "lerobot"
            self.info = _load_info(self.path)
            episodes = read_episodes_meta(self.path)
            if not episodes:
                raise RewardModelError(f"{self.path}: the dataset holds no saved episode")
            self.episode_lengths = [int(e["length"]) for e in episodes]
            self._arrays: dict[str, np.ndarray] = {}
        elif self.path.is_file() and self.path.suffix in (".hdf5", ".h5"):
            from robot_irl.data.d4rl import load_d4rl
            from robot_irl.label.pairs import _d4rl_episode_lengths

            self.kind = "d4rl"
            self.info = {}
            self._arrays = load_d4rl(self.path)
            self.episode_lengths = _d4rl_episode_lengths(self._arrays)
        else:
            raise RewardModelError(f"dataset {self.path}: expected a LeRobot dataset folder or a D4RL .hdf5 file"
                                   + ("" if self.path.exists() else " (it does not exist)"))
        self.starts = np.concatenate([[0], np.cumsum(self.episode_lengths)[:-1]]).astype(np.int64)
        self._timestamps: np.ndarray | None = None
        self._video_meta: dict[str, list[dict]] = {}

    @property
    def num_frames(self) -> int:
        return int(sum(self.episode_lengths))

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "kind": self.kind, "episodes": len(self.episode_lengths),
                "frames": self.num_frames}

    def locate(self, row: int) -> tuple[int, int]:
        """(episode, frame) of a dataset row."""
        episode = int(np.searchsorted(self.starts, row, side="right") - 1)
        return episode, int(row - self.starts[episode])

    # -- states ---------------------------------------------------------------------------------------------
    def vector_keys(self) -> list[str]:
        if self.kind == "d4rl":
            return [k for k, v in self._arrays.items() if v.ndim in (1, 2) and v.dtype.kind in "biuf"]
        return [k for k, ft in self.info["features"].items()
                if ft["dtype"] in ("float32", "float64") and len(ft["shape"]) == 1]

    def default_state_keys(self) -> list[str]:
        if self.kind == "d4rl":
            return [D4RL_STATE]
        keys = [k for k in STATE_DEFAULTS if k in self.info["features"]]
        if not keys:
            obs = [k for k in self.vector_keys() if k.startswith("observation.")]
            raise RewardModelError(f"{self.path}: none of {list(STATE_DEFAULTS)} in the dataset; name the state "
                                   f"keys (RewardModelConfig.state_keys) among {obs}")
        return keys

    def state_names(self, key: str, width: int) -> list[str]:
        names = self.info.get("features", {}).get(key, {}).get("names") if self.kind == "lerobot" else None
        if isinstance(names, Mapping):
            names = next(iter(names.values()), None)
        names = [str(n) for n in names] if names and len(names) == width else [str(i) for i in range(width)]
        return [f"{key}:{n}" for n in names]

    def states(self, keys: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """(N, D) float32 states of every row (the keys concatenated) and their names; NaN/inf is an error."""
        available = self.vector_keys()
        unknown = [k for k in keys if k not in available]
        if unknown:
            raise RewardModelError(f"{self.path}: state key(s) {unknown} are not numeric vector columns of the "
                                   f"dataset; available: {available}")
        if self.kind == "lerobot":
            from robot_irl.data.lerobot_io import read_frames

            columns = read_frames(self.path, list(keys))
        else:
            columns = {k: self._arrays[k] for k in keys}
        parts, names = [], []
        for key in keys:
            arr = np.asarray(columns[key], dtype=np.float32)
            arr = arr.reshape(len(arr), -1)
            if len(arr) != self.num_frames:
                raise RewardModelError(f"{self.path}: {key!r} has {len(arr)} rows for {self.num_frames} frames")
            bad = ~np.isfinite(arr).all(axis=1)
            if bad.any():
                row = int(np.argmax(bad))
                episode, frame = self.locate(row)
                raise RewardModelError(f"{self.path}: {key!r} has NaN/inf at row {row} (episode {episode}, frame "
                                       f"{frame}; {int(bad.sum())} rows in all)")
            parts.append(arr)
            names += self.state_names(key, arr.shape[1])
        return np.concatenate(parts, axis=1), names

    # -- camera frames --------------------------------------------------------------------------------------
    def cameras(self) -> list[str]:
        if self.kind == "d4rl":
            return [k for k, v in self._arrays.items() if v.ndim == 4 and v.shape[-1] == 3 and v.dtype == np.uint8]
        return [k for k, ft in self.info["features"].items() if ft["dtype"] in ("video", "image")]

    def resolve_camera(self, camera: str | None) -> str:
        from robot_irl.label.pairs import CAMERA_PREFIX

        cameras = self.cameras()
        if not camera:
            if len(cameras) == 1:
                return cameras[0]
            raise RewardModelError(f"{self.path}: name a camera (RewardModelConfig.camera); cameras: "
                                   f"{cameras or '(none)'}")
        for key in (camera, CAMERA_PREFIX + camera):
            if key in cameras:
                return key
        raise RewardModelError(f"{self.path}: no camera {camera!r}; cameras: {cameras or '(none)'}")

    def _video_episode(self, camera: str, episode: int) -> tuple[Path, float]:
        if camera not in self._video_meta:
            import pyarrow as pa
            import pyarrow.parquet as pq

            files = sorted((self.path / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
            cols = ["episode_index", f"videos/{camera}/chunk_index", f"videos/{camera}/file_index",
                    f"videos/{camera}/from_timestamp"]
            rows = pa.concat_tables([pq.read_table(f, columns=cols) for f in files]).to_pylist()
            self._video_meta[camera] = sorted(rows, key=lambda r: r["episode_index"])
        ep = self._video_meta[camera][episode]
        path = self.path / self.info["video_path"].format(video_key=camera,
                                                          chunk_index=ep[f"videos/{camera}/chunk_index"],
                                                          file_index=ep[f"videos/{camera}/file_index"])
        return path, float(ep[f"videos/{camera}/from_timestamp"])

    def _decode(self, camera: str, episode: int, frames: np.ndarray) -> np.ndarray:
        """Frames of one episode from its video, one decoding pass (LeRobot's decoder, as LeRobotDataset)."""
        from robot_irl.data.lerobot_io import _lerobot, read_frames

        _lerobot()  # offline environment defaults before lerobot is imported
        from lerobot.datasets.video_utils import decode_video_frames

        if self._timestamps is None:
            self._timestamps = read_frames(self.path, ["timestamp"])["timestamp"].reshape(-1).astype(np.float64)
        path, offset = self._video_episode(camera, episode)
        stamps = [offset + float(t) for t in self._timestamps[self.starts[episode] + frames]]
        decoded = decode_video_frames(path, stamps, VIDEO_TOLERANCE_S, "pyav")
        out = (decoded * 255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        return out.numpy()

    def images(self, camera: str, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """(n, H, W, 3) uint8 camera frames of dataset rows (LeRobot videos: one decoding pass per episode)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.kind == "d4rl":
            return np.asarray(self._arrays[camera][rows])
        if self.info["features"][camera]["dtype"] != "video":  # images stored in parquet: LeRobot's own reader
            from robot_irl.label.pairs import LeRobotSource

            source = LeRobotSource(self.path, camera)
            return np.stack([source.image(int(r)) for r in rows]) if len(rows) else np.zeros((0, 0, 0, 3), np.uint8)
        out: np.ndarray | None = None
        episodes = np.searchsorted(self.starts, rows, side="right") - 1
        for episode in np.unique(episodes):
            mask = episodes == episode
            frames = self._decode(camera, int(episode), rows[mask] - self.starts[episode])
            if out is None:
                out = np.zeros((len(rows), *frames.shape[1:]), np.uint8)
            out[mask] = frames
        return out if out is not None else np.zeros((0, 0, 0, 3), np.uint8)

    def episode_images(self, camera: str, episode: int) -> np.ndarray:
        """Every camera frame of one episode, (T, H, W, 3) uint8."""
        start = int(self.starts[episode])
        return self.images(camera, np.arange(start, start + self.episode_lengths[episode]))

    # -- the dataset's own reward ---------------------------------------------------------------------------
    def true_reward(self) -> tuple[str | None, np.ndarray | None]:
        """(key, per-row float64 values) of the dataset's own reward or success, or (None, None)."""
        for key in TRUE_SIGNALS[self.kind]:
            if self.kind == "d4rl" and key in self._arrays:
                return key, np.asarray(self._arrays[key], dtype=np.float64).reshape(-1)
            if self.kind == "lerobot" and key in self.info["features"]:
                from robot_irl.data.lerobot_io import read_frames

                return key, read_frames(self.path, [key])[key].astype(np.float64).reshape(-1)
        return None, None


# ---------------------------------------------------------------------------------------------------------------
# label runs
# ---------------------------------------------------------------------------------------------------------------
def label_run_info(label_run: str | Path) -> dict[str, Any]:
    """Where a label run's labels are and what its ``config.json`` says (dataset, camera, segment length)."""
    from robot_irl.label.store import LABELS_FILE, read_records

    path = Path(label_run)
    run = path if path.is_dir() else path.parent
    labels = path / LABELS_FILE if path.is_dir() else path
    if not labels.is_file():
        raise RewardModelError(f"label run {label_run}: no {LABELS_FILE} (run `robot-irl label` first)")
    info: dict[str, Any] = {"run": str(run), "labels_file": str(labels), "config": None, "dataset": None,
                            "camera": None, "source": None}
    cfg = run / "config.json"
    if cfg.is_file():
        try:
            saved = json.loads(cfg.read_text(encoding="utf-8")).get("config", {})
        except json.JSONDecodeError:
            raise RewardModelError(f"{cfg}: not valid JSON") from None
        label = saved.get("label") if isinstance(saved, Mapping) else None
        if isinstance(label, Mapping):
            info["config"] = dict(label)
            info["dataset"] = (saved.get("identity") or {}).get("dataset") or label.get("dataset")
            info["source"] = saved.get("source")
            info["camera"] = (saved.get("source") or {}).get("camera")
    info["used_images"] = (info["camera"] is not None if info["config"] is not None
                           else any(r.get("image_hashes") for r in read_records(labels)))
    return info


def _check_label_dataset(run: Mapping[str, Any], data: DatasetInputs) -> str:
    """Refuse labels made on another dataset; returns how the dataset was matched."""
    if run["dataset"] is None:
        log.warning("%s: no label run config; only the frame references are checked", run["labels_file"])
        return "no label config: frame references checked only"
    if Path(run["dataset"]).resolve() == data.path.resolve():
        return "same path"
    source = run.get("source") or {}
    same_size = source.get("episodes") == len(data.episode_lengths) and source.get("frames") == data.num_frames
    if not same_size:
        raise RewardModelError(
            f"labels in {run['run']} were made on {run['dataset']} ({source.get('episodes')} episodes, "
            f"{source.get('frames')} frames), not on {data.path} ({len(data.episode_lengths)} episodes, "
            f"{data.num_frames} frames)")
    log.warning("labels in %s were made on %s; using %s, which has the same episodes and frames", run["run"],
                run["dataset"], data.path)
    return f"different path ({run['dataset']}), same episodes and frames"


def _check_refs(prefs: Sequence, data: DatasetInputs, labels_file: str) -> None:
    lengths = data.episode_lengths
    for p in prefs:
        for side, ref in (("a", p.a), ("b", p.b)):
            ok = (0 <= ref.episode < len(lengths) and ref.frame >= 0 and ref.frame + ref.length <= lengths[ref.episode]
                  and ref.index == data.starts[ref.episode] + ref.frame)
            if not ok:
                raise RewardModelError(
                    f"{labels_file}: pair {p.pair_id} side {side} refers to episode {ref.episode} frames "
                    f"{ref.frame}..{ref.frame + ref.length - 1} (row {ref.index}), which are not in {data.path} "
                    f"({len(lengths)} episodes, {data.num_frames} frames)")


# ---------------------------------------------------------------------------------------------------------------
# preference data
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class PreferenceData:
    """Labelled pairs over a table of raw frames: ``a``/``b`` (P, L) index ``frames`` (F, *frame); ``rows``
    (F,) are the dataset rows of the frames; ``target`` (P,) is P(b preferred)."""

    frames: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    target: torch.Tensor
    rows: np.ndarray
    pair_ids: list[str]

    def __len__(self) -> int:
        return len(self.target)

    def to(self, device: torch.device) -> PreferenceData:
        return PreferenceData(self.frames.to(device), self.a.to(device), self.b.to(device), self.target.to(device),
                              self.rows, self.pair_ids)

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gathered raw frames of pairs ``idx``: (..., L, *frame) for ``a``/``b``, (...) for ``target``."""
        return {"a": self.frames[self.a[idx]], "b": self.frames[self.b[idx]], "target": self.target[idx]}


def build_preference_data(prefs: Sequence, frames_of_rows) -> PreferenceData:
    """Pairs -> :class:`PreferenceData`; ``frames_of_rows(rows)`` returns the raw frames of sorted unique rows."""
    from robot_irl.label.store import preference_arrays

    arrays = preference_arrays(prefs)
    length = int(arrays["length"][0])
    offsets = np.arange(length)
    a_rows = arrays["a_index"][:, None] + offsets
    b_rows = arrays["b_index"][:, None] + offsets
    rows = np.unique(np.concatenate([a_rows.reshape(-1), b_rows.reshape(-1)]))
    frames = torch.as_tensor(frames_of_rows(rows))
    a = torch.as_tensor(np.searchsorted(rows, a_rows), dtype=torch.int64)
    b = torch.as_tensor(np.searchsorted(rows, b_rows), dtype=torch.int64)
    return PreferenceData(frames, a, b, torch.as_tensor(arrays["targets"]), rows, [p.pair_id for p in prefs])


def _image_stats(frames: torch.Tensor, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std in [0, 1] of (N, 3, H, W) uint8 frames."""
    total, sq, count = np.zeros(3), np.zeros(3), 0
    for i in range(0, len(frames), chunk):
        x = frames[i:i + chunk].to(torch.float64) / 255.0
        total += x.sum(dim=(0, 2, 3)).numpy()
        sq += (x * x).sum(dim=(0, 2, 3)).numpy()
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(sq / max(count, 1) - mean ** 2, 0.0))
    return mean, np.where(std < 1e-3, 1.0, std)


# ---------------------------------------------------------------------------------------------------------------
# saving and loading
# ---------------------------------------------------------------------------------------------------------------
def save_reward_model(path: str | Path, model: RewardModel, meta: Mapping[str, Any]) -> Path:
    """Write ``model.safetensors`` and ``config.json`` to the folder ``path`` (replacing what is there)."""
    import shutil

    from safetensors.torch import save_file

    from robot_irl import __version__

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              str(tmp / "model.safetensors"))
    config = {"format": MODEL_FORMAT, "kind": model.kind, "input_shape": list(model.input_shape),
              "reward_config": model.config.to_dict(),
              "normalizer": {"mean": model.input_mean.cpu().tolist(), "std": model.input_std.cpu().tolist()},
              "robot_irl_version": __version__, **meta}
    (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=_json_default))
    if path.exists():
        shutil.rmtree(path)
    tmp.replace(path)
    return path


def read_reward_model_config(path: str | Path) -> dict[str, Any]:
    """``config.json`` of a reward model folder (``path`` may be the training run folder holding it)."""
    path = Path(path)
    if (path / MODEL_DIR / "config.json").is_file():
        path = path / MODEL_DIR
    cfg = path / "config.json"
    if not cfg.is_file():
        raise RewardModelError(f"no reward model at {path}: {cfg.name} does not exist")
    config = json.loads(cfg.read_text(encoding="utf-8"))
    if config.get("format") != MODEL_FORMAT:
        raise RewardModelError(f"{cfg}: format {config.get('format')!r} is not {MODEL_FORMAT!r}")
    config["path"] = str(path)
    return config


def load_reward_model(path: str | Path, device: str = "cpu") -> RewardModel:
    """The saved :class:`RewardModel` (its ``config.json`` contents in ``model.meta``), on ``device``."""
    from safetensors.torch import load_file

    meta = read_reward_model_config(path)
    folder = Path(meta["path"])
    config = RewardModelConfig.from_dict(meta["reward_config"], where=f"{folder}/config.json reward_config")
    model = RewardModel(meta["kind"], meta["input_shape"], config)
    try:
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
    except (RuntimeError, FileNotFoundError) as e:
        raise RewardModelError(f"{folder}: weights do not fit the model described in config.json: {e}") from None
    model.meta = meta
    return model.to(resolve_device(device))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store a {type(obj).__name__} as JSON")


def _finite(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 6)


# ---------------------------------------------------------------------------------------------------------------
# agreement with the dataset's own reward
# ---------------------------------------------------------------------------------------------------------------
def rank_agreement(learned: np.ndarray, true: np.ndarray) -> dict[str, Any]:
    """Spearman and Kendall (tau-b) correlations between learned and true per-frame rewards."""
    from scipy import stats

    learned, true = np.asarray(learned, np.float64), np.asarray(true, np.float64)
    out: dict[str, Any] = {"frames": int(len(learned))}
    if len(learned) < 3 or np.ptp(true) == 0 or np.ptp(learned) == 0:
        out.update(spearman=None, kendall=None, note="too few frames or a constant reward")
        return out
    out["spearman"] = _finite(stats.spearmanr(learned, true).statistic)
    out["kendall"] = _finite(stats.kendalltau(learned, true).statistic)
    return out


def _true_agreement(model: RewardModel, data: PreferenceData, idx: np.ndarray, true: np.ndarray,
                    batch_size: int) -> dict[str, Any]:
    """How the learned reward and the labels order the pairs ``idx`` and their frames, against ``true``."""
    a, b = data.a.cpu().numpy()[idx], data.b.cpu().numpy()[idx]
    positions = np.unique(np.concatenate([a.reshape(-1), b.reshape(-1)]))
    learned = np.zeros(len(data.rows), np.float64)
    learned[positions] = model.predict(data.frames[torch.as_tensor(positions, device=data.frames.device)],
                                       batch_size)
    true_frames = true[data.rows]
    out = rank_agreement(learned[positions], true_frames[positions])
    ta, tb = true_frames[a].sum(1), true_frames[b].sum(1)
    decided = ta != tb
    if decided.any():
        la, lb = learned[a].sum(1), learned[b].sum(1)
        out["pair_accuracy"] = _finite(np.mean(np.where(la == lb, 0.5, (lb > la) == (tb > ta))[decided]))
        target = data.target.cpu().numpy()[idx]
        labelled = decided & (target != 0.5)
        out["labels_agree"] = _finite(np.mean((target[labelled] > 0.5) == (tb > ta)[labelled])) \
            if labelled.any() else None
    out["pairs"], out["pairs_decided"] = int(len(idx)), int(decided.sum())
    return out


# ---------------------------------------------------------------------------------------------------------------
# the runner
# ---------------------------------------------------------------------------------------------------------------
def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng([seed, 7]).permutation(n)
    held = int(round(fraction * n))
    if fraction > 0 and held == 0 and n >= 10:
        held = 1
    held = min(held, n - 1)
    return np.sort(order[held:]), np.sort(order[:held])


def _resolve_inputs(config: RewardModelConfig, run: Mapping[str, Any], data: DatasetInputs
                    ) -> tuple[str, str | None, list[str]]:
    """(kind, camera, state keys) for this run."""
    kind = config.inputs
    if kind == "auto":
        kind = "image" if data.cameras() and run["used_images"] else "state"
    if kind == "image":
        camera = config.camera or run.get("camera") or ""
        return kind, data.resolve_camera(camera), []
    return kind, None, list(config.state_keys) or data.default_state_keys()


def plot_reward_curve(history: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> Path | None:
    """Loss and pair accuracy (train and held-out) per epoch, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not history:
        return None
    fig = Figure(figsize=(8.5, 3.2), layout="constrained")
    FigureCanvasAgg(fig)
    epochs = [h["epoch"] for h in history]
    for i, key in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, i + 1)
        for name, label, style in ((key, "train", "-"), (f"val_{key}", "held-out pairs", "--")):
            values = [np.nan if h.get(name) is None else h[name] for h in history]
            if not np.all(np.isnan(values)):
                ax.plot(epochs, values, style, marker="." if len(epochs) < 30 else None, label=label)
        if key == "loss":
            ax.axhline(np.log(2), color="gray", lw=0.8, ls=":", label="chance (log 2)")
        else:
            ax.set_ylim(0.0, 1.02)
            ax.axhline(0.5, color="gray", lw=0.8, ls=":", label="chance")
        ax.set_xlabel("epoch")
        ax.set_title("Bradley-Terry loss" if key == "loss" else "pair accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.savefig(str(path), dpi=90)
    return Path(path)


def train_reward_model(label_run: str | Path, dataset: str | Path | None, out: str | Path,
                       config: RewardModelConfig | Mapping[str, Any] | None = None, overwrite: bool = False,
                       progress: bool = True) -> dict[str, Any]:
    """Train a reward model on the labels of ``label_run`` over ``dataset`` (None: the label run's dataset) and
    write it under ``out`` (see the module docstring). Returns the report (also ``out/report.json``) with
    ``model_dir``, ``out`` and the accuracies."""
    from tqdm.auto import tqdm

    from robot_irl.label.store import load_preferences
    from robot_irl.runs import prepare_run_dir, save_run_config

    started = time.perf_counter()
    if config is None or isinstance(config, Mapping):
        config = RewardModelConfig.from_dict(dict(config or {}))
    run = label_run_info(label_run)
    dataset = dataset if dataset is not None else run["dataset"]
    if dataset is None:
        raise RewardModelError(f"label run {label_run}: no config.json saying which dataset was labelled; pass "
                               f"the dataset")
    data = DatasetInputs(dataset)
    dataset_check = _check_label_dataset(run, data)

    every = load_preferences(run["labels_file"], include_ties=True, include_failed=True)
    informative = load_preferences(run["labels_file"], include_ties=True)
    prefs = [p for p in informative if p.label != -1 or config.ties == "half"]
    counts = {"records": len(every), "failed": len(every) - len(informative),
              "ties": sum(1 for p in informative if p.label == -1), "ties_handling": config.ties, "used": len(prefs)}
    if len(prefs) < 2:
        raise RewardModelError(f"{run['labels_file']}: {len(prefs)} usable preference pair(s) ({counts['records']} "
                               f"records, {counts['ties']} ties {'dropped' if config.ties == 'drop' else 'kept'}, "
                               f"{counts['failed']} failed queries); need at least 2"
                               + (" (ties='half' keeps ties)" if config.ties == "drop" and counts["ties"] else ""))
    _check_refs(prefs, data, run["labels_file"])
    kind, camera, state_keys = _resolve_inputs(config, run, data)

    out = prepare_run_dir(out, overwrite)
    with torch_threads(config.num_threads):
        device = resolve_device(config.device)
        if kind == "state":
            states, names = data.states(state_keys)
            norm = Normalizer.fit(states)
            pref_data = build_preference_data(prefs, lambda rows: states[rows])
            mean, std = norm.mean, norm.std
            input_desc: dict[str, Any] = {"state_keys": state_keys, "names": names, "dim": int(states.shape[1])}
        else:
            pref_data = build_preference_data(prefs, lambda rows: resize_images(data.images(camera, rows),
                                                                                config.image_size))
            mean, std = _image_stats(pref_data.frames)
            input_desc = {"camera": camera, "image_size": config.image_size}
        input_shape = tuple(pref_data.frames.shape[1:])
        pref_data = pref_data.to(device)

        train_idx, val_idx = _split(len(pref_data), config.val_fraction, config.seed)
        torch.manual_seed(config.seed)
        model = RewardModel(kind, input_shape, config, mean, std)
        learner = PreferenceRewardLearner(model, config, str(device))
        rng = np.random.default_rng(config.seed)
        members = [rng.choice(train_idx, size=len(train_idx), replace=True) if config.member_data == "bootstrap"
                   else train_idx for _ in range(config.ensemble)]
        val_batch = pref_data.batch(torch.as_tensor(val_idx, device=device)) if len(val_idx) else None

        history: list[dict[str, Any]] = []
        metrics_path = out / "metrics.jsonl"
        best = {"accuracy": -1.0, "loss": float("inf"), "epoch": 0, "state": None}
        reason, stale = "max_epochs", 0
        with tqdm(total=config.max_epochs, disable=not progress, unit="epoch", dynamic_ncols=True,
                  desc=f"reward model ({kind})") as bar, open(metrics_path, "w") as metrics_file:
            for epoch in range(1, config.max_epochs + 1):
                tick = time.perf_counter()
                orders = [rng.permutation(m) for m in members]
                sums = {"loss": 0.0, "accuracy": 0.0, "n": 0, "n_acc": 0}
                for s in range(0, len(train_idx), config.batch_size):
                    idx = torch.as_tensor(np.stack([o[s:s + config.batch_size] for o in orders]), device=device)
                    m = learner.update(pref_data.batch(idx))
                    n = idx.shape[1]
                    sums["loss"] += m["loss"] * n
                    sums["n"] += n
                    if np.isfinite(m["accuracy"]):
                        sums["accuracy"] += m["accuracy"] * n
                        sums["n_acc"] += n
                record: dict[str, Any] = {"epoch": epoch, "loss": sums["loss"] / sums["n"],
                                          "accuracy": sums["accuracy"] / sums["n_acc"] if sums["n_acc"] else None}
                if val_batch is not None:
                    v = learner.evaluate(val_batch)
                    record.update(val_loss=_finite(v["loss"]), val_accuracy=_finite(v["accuracy"]))
                record["time_s"] = round(time.perf_counter() - tick, 3)
                history.append(record)
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k not in ("epoch", "time_s")
                                 and v is not None})
                if val_batch is not None and record.get("val_accuracy") is not None:
                    va, vl = record["val_accuracy"], record["val_loss"]
                    if va > best["accuracy"] + 1e-9 or (abs(va - best["accuracy"]) <= 1e-9 and vl < best["loss"]):
                        best.update(accuracy=va, loss=vl, epoch=epoch,
                                    state=copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()}))
                        stale = 0
                    else:
                        stale += 1
                if config.stop_train_accuracy > 0 and record["accuracy"] is not None \
                        and record["accuracy"] >= config.stop_train_accuracy:
                    reason = "train_accuracy"
                    break
                if config.patience and best["state"] is not None and stale >= config.patience:
                    reason = "patience"
                    break
        restored = None
        if reason != "train_accuracy" and best["state"] is not None and best["epoch"] != len(history):
            model.load_state_dict(best["state"])
            restored = best["epoch"]

        final_train = learner.evaluate(pref_data.batch(torch.as_tensor(train_idx, device=device)))
        final_val = learner.evaluate(val_batch) if val_batch is not None else None
        true_key, true = data.true_reward()
        agreement: dict[str, Any] | None = None
        if true is not None:
            held = val_idx if len(val_idx) else train_idx
            agreement = {"signal": true_key,
                         "on": "held-out pairs" if len(val_idx) else "training pairs (none held out)",
                         **_true_agreement(model, pref_data, held, true, config.eval_batch_size)}
            if kind == "state":
                agreement["all_frames"] = rank_agreement(model.predict(torch.as_tensor(states), config.eval_batch_size),
                                                         true)
        segment_length = int(pref_data.a.shape[1])
        trained = {"epochs": len(history), "stop_reason": reason, "restored_epoch": restored,
                   "best_val_epoch": best["epoch"] or None}
        meta = {"label_run": run["run"], "labels_file": run["labels_file"], "dataset": str(data.path.resolve()),
                "dataset_kind": data.kind, "segment_length": segment_length, "input": input_desc, "trained": trained,
                "pairs": {**counts, "train": int(len(train_idx)), "val": int(len(val_idx))}}
        model_dir = save_reward_model(out / MODEL_DIR, model, meta)
        curve = plot_reward_curve(history, out / "learning_curve.png",
                                  title=f"reward model ({kind}, {config.ensemble} members): {Path(run['run']).name}")
        report = {"model_dir": str(model_dir), "out": str(out), "label_run": run["run"], "dataset": str(data.path),
                  "dataset_check": dataset_check, "inputs": kind, "input": input_desc, "device": str(device),
                  "segment_length": segment_length, "frames_cached": int(len(pref_data.frames)),
                  "pairs": meta["pairs"], "ensemble": config.ensemble, **trained,
                  "train": {"accuracy": _finite(final_train["accuracy"]), "loss": _finite(final_train["loss"])},
                  "val": None if final_val is None else {"accuracy": _finite(final_val["accuracy"]),
                                                         "loss": _finite(final_val["loss"])},
                  "true_reward": agreement, "wall_s": round(time.perf_counter() - started, 2),
                  "metrics": str(metrics_path), "learning_curve": str(curve) if curve else None}
        (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True, default=_json_default))
        save_run_config(out, {"reward_model": config.to_dict(), "label_run": run["run"], "dataset": str(data.path)})
        return report


__all__ = ["MODEL_DIR", "MODEL_FORMAT", "DatasetInputs", "PreferenceData", "PreferenceRewardLearner",
           "RewardModel", "RewardModelConfig", "RewardModelError", "bradley_terry_loss", "build_preference_data",
           "conv_reward_net", "label_run_info", "load_reward_model", "plot_reward_curve", "preference_accuracy",
           "rank_agreement", "read_reward_model_config", "resize_images", "resolve_device", "save_reward_model",
           "torch_threads", "train_reward_model"]
