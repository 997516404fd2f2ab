"""Network pieces shared by the learners (BC now, IQL later): an MLP builder, actor heads and a normaliser.

* :func:`mlp` builds ``Linear -> activation (-> LayerNorm) (-> Dropout)`` stacks; critics (``Q(s, a)``, ``V(s)``)
  are just ``mlp(in_dim, 1, hidden)``.
* :class:`DeterministicActor` predicts an action; :class:`GaussianActor` predicts a mean and keeps a
  state-independent log standard deviation (as IQL's actor does), so the same head serves NLL-trained BC and
  advantage-weighted regression. Both act with the mean (:meth:`predict`).
* :class:`Normalizer` standardises vectors with statistics fitted on the training data. It is kept outside the
  networks on purpose: the trainer normalises the whole dataset once, on the device, and the policy normalises each
  observation; both read the same stats from the checkpoint (``normalizer.safetensors``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "elu": nn.ELU, "silu": nn.SiLU}


def mlp(in_dim: int, out_dim: int, hidden: Sequence[int] = (256, 256), activation: str = "relu",
        dropout: float = 0.0, layer_norm: bool = False) -> nn.Sequential:
    """A multi-layer perceptron ``in_dim -> hidden... -> out_dim`` (no activation on the output)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"mlp: unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")
    if in_dim <= 0 or out_dim <= 0 or any(h <= 0 for h in hidden):
        raise ValueError(f"mlp: sizes must be positive, got in={in_dim} hidden={list(hidden)} out={out_dim}")
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if layer_norm:
            layers.append(nn.LayerNorm(h))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class DeterministicActor(nn.Module):
    """``a = f(s)``: an MLP whose output is the (normalised) action."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256), activation: str = "relu",
                 dropout: float = 0.0, layer_norm: bool = False) -> None:
        super().__init__()
        self.net = mlp(obs_dim, act_dim, hidden, activation, dropout, layer_norm)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)

    def predict(self, obs: torch.Tensor) -> torch.Tensor:
        return self.forward(obs)


class GaussianActor(nn.Module):
    """``a ~ N(mu(s), diag(exp(log_std)^2))`` with a learned, state-independent ``log_std`` clamped to a range."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256), activation: str = "relu",
                 dropout: float = 0.0, layer_norm: bool = False, log_std_min: float = -5.0,
                 log_std_max: float = 2.0, log_std_init: float = 0.0) -> None:
        super().__init__()
        if not log_std_min < log_std_max:
            raise ValueError(f"GaussianActor: log_std_min {log_std_min} must be < log_std_max {log_std_max}")
        self.net = mlp(obs_dim, act_dim, hidden, activation, dropout, layer_norm)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))
        self.log_std_min, self.log_std_max = float(log_std_min), float(log_std_max)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (clamped) log standard deviation, broadcast to the batch."""
        mean = self.net(obs)
        log_std = self.log_std.clamp(self.log_std_min, self.log_std_max).expand_as(mean)
        return mean, log_std

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Log density of ``action`` under the policy at ``obs``, summed over action dimensions: shape (batch,)."""
        mean, log_std = self.forward(obs)
        z = (action - mean) * torch.exp(-log_std)
        return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    def predict(self, obs: torch.Tensor) -> torch.Tensor:
        return self.forward(obs)[0]


class Normalizer:
    """Per-dimension standardisation ``(x - mean) / std`` with statistics fitted on data.

    Dimensions that never vary (std below ``min_std``) get std 1, so a constant input (a parked object, a goal
    that never changes) passes through centred instead of blowing up. Works on numpy arrays and torch tensors.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        mean, std = np.asarray(mean, dtype=np.float32).reshape(-1), np.asarray(std, dtype=np.float32).reshape(-1)
        if mean.shape != std.shape:
            raise ValueError(f"Normalizer: mean {mean.shape} and std {std.shape} differ in shape")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
            raise ValueError("Normalizer: statistics must be finite with std > 0")
        self.mean, self.std = mean, std
        self._torch: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def fit(cls, data: np.ndarray, min_std: float = 1e-4) -> Normalizer:
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or len(data) == 0:
            raise ValueError(f"Normalizer.fit: expected a non-empty (N, D) array, got shape {data.shape}")
        std = data.std(axis=0)
        return cls(data.mean(axis=0), np.where(std < min_std, 1.0, std))

    @classmethod
    def identity(cls, dim: int) -> Normalizer:
        return cls(np.zeros(dim), np.ones(dim))

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (like.device, like.dtype)
        if key not in self._torch:
            self._torch[key] = (torch.as_tensor(self.mean, device=like.device, dtype=like.dtype),
                                torch.as_tensor(self.std, device=like.device, dtype=like.dtype))
        return self._torch[key]

    def normalize(self, x):
        if isinstance(x, torch.Tensor):
            mean, std = self._stats(x)
            return (x - mean) / std
        return ((np.asarray(x, dtype=np.float32) - self.mean) / self.std).astype(np.float32)

    def denormalize(self, x):
        if isinstance(x, torch.Tensor):
            mean, std = self._stats(x)
            return x * std + mean
        return (np.asarray(x, dtype=np.float32) * self.std + self.mean).astype(np.float32)

    # -- persistence ----------------------------------------------------------------------------------------
    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.mean": torch.from_numpy(self.mean.copy()),
                f"{prefix}.std": torch.from_numpy(self.std.copy())}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor], prefix: str) -> Normalizer:
        missing = [k for k in (f"{prefix}.mean", f"{prefix}.std") if k not in tensors]
        if missing:
            raise KeyError(f"Normalizer: {missing} not among the stored tensors {sorted(tensors)}")
        return cls(tensors[f"{prefix}.mean"].numpy(), tensors[f"{prefix}.std"].numpy())


def save_normalizers(path: str | Path, normalizers: Mapping[str, Normalizer]) -> Path:
    """Write several named normalisers to one safetensors file (keys ``<name>.mean``, ``<name>.std``)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for name, norm in normalizers.items():
        tensors.update(norm.tensors(name))
    save_file(tensors, str(path))
    return Path(path)


def load_normalizers(path: str | Path) -> dict[str, Normalizer]:
    """Inverse of :func:`save_normalizers`."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no normaliser statistics at {path}")
    tensors = load_file(str(path))
    names = sorted({k.rsplit(".", 1)[0] for k in tensors})
    return {name: Normalizer.from_tensors(tensors, name) for name in names}
