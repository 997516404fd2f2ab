"""Network pieces shared by the learners (BC, IQL, and the RL learners to come): MLPs, ensembles, actors, normaliser.

* :func:`mlp` builds ``Linear -> activation (-> LayerNorm) (-> Dropout)`` stacks; a value critic ``V(s)`` is just
  ``mlp(obs_dim, 1, hidden)``.
* :class:`EnsembleLinear` / :func:`ensemble_mlp` evaluate ``E`` independent MLPs in one batched matmul per layer
  (weights ``(E, in, out)``): twin Q critics (:class:`EnsembleCritic`), reward-model or dynamics ensembles. One
  ``bmm`` instead of ``E`` separate networks means fewer, larger kernels and one optimiser tensor per layer.
* :class:`DeterministicActor` predicts an action; :class:`GaussianActor` predicts a mean and keeps a
  state-independent log standard deviation (as IQL's actor does), so the same head serves NLL-trained BC and
  advantage-weighted regression. Both can squash the mean with ``tanh`` (IQL: "tanh on the mean only", actions
  scaled to [-1, 1]) and act with the mean (:meth:`predict`).
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
_INPLACE = ("relu", "elu", "silu")  # applied in place on the layer output they follow (same values, no copy)


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name (in place where torch allows it: ~5-10% faster small MLPs on CPU)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name](inplace=True) if name in _INPLACE else ACTIVATIONS[name]()


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
        layers.append(make_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class EnsembleLinear(nn.Module):
    """``E`` independent linear layers applied in one batched matmul: ``(B, in)`` or ``(E, B, in)`` -> ``(E, B, out)``.

    Each member is initialised as :class:`torch.nn.Linear` would be (uniform in ``+-1/sqrt(in)``), independently.
    A 2-d input is shared by every member (the first layer of a twin critic).
    """

    def __init__(self, in_features: int, out_features: int, ensemble: int) -> None:
        super().__init__()
        if in_features <= 0 or out_features <= 0 or ensemble <= 0:
            raise ValueError(f"EnsembleLinear: sizes must be positive, got in={in_features} out={out_features} "
                             f"ensemble={ensemble}")
        self.in_features, self.out_features, self.ensemble = in_features, out_features, ensemble
        self.weight = nn.Parameter(torch.empty(ensemble, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(ensemble, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return torch.matmul(x, self.weight) + self.bias  # broadcast the shared input over the members
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, ensemble={self.ensemble}"


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over the last dimension with a separate affine transform per ensemble member."""

    def __init__(self, features: int, ensemble: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(ensemble, 1, features))
        self.bias = nn.Parameter(torch.zeros(ensemble, 1, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.layer_norm(x, x.shape[-1:], eps=self.eps) * self.weight + self.bias


def ensemble_mlp(in_dim: int, out_dim: int, ensemble: int, hidden: Sequence[int] = (256, 256),
                 activation: str = "relu", layer_norm: bool = False) -> nn.Sequential:
    """``ensemble`` independent MLPs ``in_dim -> hidden... -> out_dim`` evaluated together: output ``(E, B, out)``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"ensemble_mlp: unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")
    if in_dim <= 0 or out_dim <= 0 or ensemble <= 0 or any(h <= 0 for h in hidden):
        raise ValueError(f"ensemble_mlp: sizes must be positive, got in={in_dim} hidden={list(hidden)} "
                         f"out={out_dim} ensemble={ensemble}")
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers.append(EnsembleLinear(width, h, ensemble))
        if layer_norm:
            layers.append(EnsembleLayerNorm(h, ensemble))
        layers.append(make_activation(activation))
        width = h
    layers.append(EnsembleLinear(width, out_dim, ensemble))
    return nn.Sequential(*layers)


class EnsembleCritic(nn.Module):
    """``E`` critics of the concatenated inputs in one pass: ``forward(*inputs) -> (E, B)``.

    A twin Q critic is ``EnsembleCritic(obs_dim + act_dim, 2)`` called as ``critic(obs, action)``.
    """

    def __init__(self, in_dim: int, ensemble: int = 2, hidden: Sequence[int] = (256, 256), activation: str = "relu",
                 layer_norm: bool = False) -> None:
        super().__init__()
        self.ensemble = ensemble
        self.net = ensemble_mlp(in_dim, 1, ensemble, hidden, activation, layer_norm)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        x = inputs[0] if len(inputs) == 1 else torch.cat(inputs, dim=-1)
        return self.net(x).squeeze(-1)


class DeterministicActor(nn.Module):
    """``a = f(s)``: an MLP whose output is the (normalised) action (``tanh``-squashed if ``tanh_mean``)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256), activation: str = "relu",
                 dropout: float = 0.0, layer_norm: bool = False, tanh_mean: bool = False) -> None:
        super().__init__()
        self.net = mlp(obs_dim, act_dim, hidden, activation, dropout, layer_norm)
        self.tanh_mean = bool(tanh_mean)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.net(obs)
        return torch.tanh(out) if self.tanh_mean else out

    def predict(self, obs: torch.Tensor) -> torch.Tensor:
        return self.forward(obs)


class GaussianActor(nn.Module):
    """``a ~ N(mu(s), diag(exp(log_std)^2))`` with a learned, state-independent ``log_std`` clamped to a range."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256), activation: str = "relu",
                 dropout: float = 0.0, layer_norm: bool = False, log_std_min: float = -5.0,
                 log_std_max: float = 2.0, log_std_init: float = 0.0, tanh_mean: bool = False) -> None:
        super().__init__()
        if not log_std_min < log_std_max:
            raise ValueError(f"GaussianActor: log_std_min {log_std_min} must be < log_std_max {log_std_max}")
        self.net = mlp(obs_dim, act_dim, hidden, activation, dropout, layer_norm)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))
        self.log_std_min, self.log_std_max = float(log_std_min), float(log_std_max)
        self.tanh_mean = bool(tanh_mean)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (``tanh``-squashed if ``tanh_mean``; the distribution itself is not) and (clamped) log standard
        deviation, broadcast to the batch."""
        mean = self.net(obs)
        if self.tanh_mean:
            mean = torch.tanh(mean)
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
    def fit_range(cls, data: np.ndarray, min_range: float = 1e-4) -> Normalizer:
        """Map each dimension's observed ``[min, max]`` onto ``[-1, 1]`` (for actors with a ``tanh`` mean)."""
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or len(data) == 0:
            raise ValueError(f"Normalizer.fit_range: expected a non-empty (N, D) array, got shape {data.shape}")
        low, high = data.min(axis=0), data.max(axis=0)
        half = (high - low) / 2
        return cls((high + low) / 2, np.where(half < min_range, 1.0, half))

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


# ---------------------------------------------------------------------------------------------------------------
# on-policy pieces (PPO, robot_irl.learn.ppo): running observation statistics and proprioceptive-history encoders
# ---------------------------------------------------------------------------------------------------------------
class RunningNormalizer:
    """Standardisation with statistics accumulated over a stream of batches (on-policy RL has no dataset to fit).

    ``update`` merges a batch into the running mean and variance (Chan et al.'s parallel formula, in float64);
    ``normalize`` standardises and clips to ``+-clip``. Statistics are only changed by ``update``, so a caller
    freezes them by not calling it (evaluation, deployment). ``tensors(prefix)`` writes ``mean``/``std`` like
    :class:`Normalizer` (so :func:`load_normalizers` reads a frozen copy) plus the exact float64 ``mean64``,
    ``var`` and ``count`` to resume.
    """

    def __init__(self, dim: int, clip: float = 10.0, epsilon: float = 1e-2, device: str | torch.device = "cpu"
                 ) -> None:
        if dim <= 0:
            raise ValueError(f"RunningNormalizer: dim must be positive, got {dim}")
        self.dim, self.clip, self.epsilon = int(dim), float(clip), float(epsilon)
        self.device = torch.device(device)
        self.mean = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        self.var = torch.ones(self.dim, dtype=torch.float64, device=self.device)
        self.count = torch.zeros((), dtype=torch.float64, device=self.device)
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def update(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, self.dim).to(self.device, torch.float64)
        if len(x) == 0:
            return
        n = float(len(x))
        batch_mean, batch_var = x.mean(0), x.var(0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.var = (self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total) / total
        self.count = total
        self._cache = None

    @property
    def std(self) -> torch.Tensor:
        """Standard deviation, at least ``epsilon`` (a constant input passes through centred)."""
        return self.var.sqrt().clamp_min(self.epsilon)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if self._cache is None or self._cache[0].device != x.device:
            self._cache = (self.mean.to(x.device, torch.float32), self.std.to(x.device, torch.float32))
        mean, std = self._cache
        return ((x - mean) / std).clamp(-self.clip, self.clip)

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.mean": self.mean.float().cpu(), f"{prefix}.std": self.std.float().cpu(),
                f"{prefix}.mean64": self.mean.cpu(), f"{prefix}.var": self.var.cpu(),
                f"{prefix}.count": self.count.reshape(1).cpu()}

    def load_tensors(self, tensors: Mapping[str, torch.Tensor], prefix: str) -> RunningNormalizer:
        missing = [k for k in (f"{prefix}.mean", f"{prefix}.var", f"{prefix}.count") if k not in tensors]
        if missing:
            raise KeyError(f"RunningNormalizer: {missing} not among the stored tensors {sorted(tensors)}")
        if tensors[f"{prefix}.mean"].numel() != self.dim:
            raise ValueError(f"RunningNormalizer {prefix!r}: stored dim {tensors[f'{prefix}.mean'].numel()} "
                             f"!= {self.dim}")
        mean = tensors.get(f"{prefix}.mean64", tensors[f"{prefix}.mean"])
        self.mean = mean.to(self.device, torch.float64).reshape(self.dim)
        self.var = tensors[f"{prefix}.var"].to(self.device, torch.float64).reshape(self.dim)
        self.count = tensors[f"{prefix}.count"].to(self.device, torch.float64).reshape(())
        self._cache = None
        return self


class HistoryEncoder(nn.Module):
    """A fixed-length proprioceptive history ``(B, H, D)`` -> a vector ``(B, out_dim)``.

    * ``kind="mlp"``: an MLP on the flattened history (HIMLoco-style; right for short histories, H <= ~10).
    * ``kind="conv"``: RMA's adaptation module: a per-step linear embedding (32) then three 1D convolutions over
      time (32 channels; kernels/strides 8/4, 5/1, 5/1 when ``H >= 40``, else 3/1 three times) and a linear head.
    """

    RMA_CONVS = ((8, 4), (5, 1), (5, 1))
    SHORT_CONVS = ((3, 1), (3, 1), (3, 1))

    def __init__(self, obs_dim: int, history: int, out_dim: int, kind: str = "mlp",
                 hidden: Sequence[int] = (128, 64), activation: str = "elu", channels: int = 32) -> None:
        super().__init__()
        if kind not in ("mlp", "conv"):
            raise ValueError(f"HistoryEncoder: unknown kind {kind!r}; known: ['conv', 'mlp']")
        self.obs_dim, self.history, self.out_dim, self.kind = int(obs_dim), int(history), int(out_dim), kind
        if kind == "mlp":
            self.net = mlp(self.obs_dim * self.history, self.out_dim, hidden, activation)
            return
        convs = self.conv_layout(self.history)
        act = ACTIVATIONS[activation]
        self.embed = nn.Sequential(nn.Linear(self.obs_dim, channels), act())
        layers: list[nn.Module] = []
        for kernel, stride in convs:
            layers += [nn.Conv1d(channels, channels, kernel, stride), act()]
        self.convs = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(channels * self.conv_output_length(self.history, convs), self.out_dim)

    @classmethod
    def conv_layout(cls, history: int) -> tuple[tuple[int, int], ...]:
        convs = cls.RMA_CONVS if history >= 40 else cls.SHORT_CONVS
        if cls.conv_output_length(history, convs) < 1:
            raise ValueError(f"HistoryEncoder: a history of {history} steps is too short for the conv encoder "
                             "(needs >= 7)")
        return convs

    @staticmethod
    def conv_output_length(history: int, convs: Sequence[tuple[int, int]]) -> int:
        length = history
        for kernel, stride in convs:
            length = (length - kernel) // stride + 1
        return length

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        if history.shape[-2:] != (self.history, self.obs_dim):
            raise ValueError(f"HistoryEncoder: expected (B, {self.history}, {self.obs_dim}), got "
                             f"{tuple(history.shape)}")
        if self.kind == "mlp":
            return self.net(history.flatten(-2))
        x = self.embed(history).transpose(-1, -2)  # (B, channels, H)
        return self.head(self.convs(x))
