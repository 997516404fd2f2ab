"""The safety layer at the driver boundary: pure functions on action vectors.

Every driver's ``send_action`` passes through :func:`clamp_action` before anything moves, and what it returns
(the clamped action) is what is sent and what gets recorded. Order of operations:

1. reject: wrong shape, NaN or inf -> :class:`UnsafeActionError` naming the offending entries (nothing is sent);
2. absolute bounds per dimension (joint position limits, gripper range);
3. workspace box on the end-effector position dimensions (for end-effector targets);
4. relative step around the current measured value (``max_step`` and ``max_velocity * dt``, the tighter wins).

Applying the step limit last means the command never jumps, even when the robot currently sits outside its
limits: it is walked back at most one step per tick. When the reference lies inside the bounds and the box, the
result lies inside them too (a point between two points of a box is in the box).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The command watchdog's deadline (driver node parameter ``command_timeout_ms``): when commands stop (a dead
#: tele-operator or policy), the robot is held within this many milliseconds of the last one.
COMMAND_TIMEOUT_MS = 100


class UnsafeActionError(ValueError):
    """An action that cannot be made safe by clamping (NaN, inf, wrong shape)."""


@dataclass(frozen=True)
class SafetyLimits:
    """Limits for one action vector. ``None`` disables a check.

    names: one per action dimension (used in error messages).
    lower/upper: absolute bounds per dimension.
    max_step: largest change per tick from the measured reference, per dimension.
    max_velocity: largest rate of change per dimension (units/s); with ``dt`` it bounds the step too.
    workspace_low/high: an axis-aligned box (3 values each) for the dimensions ``workspace_dims``.
    """

    names: tuple[str, ...]
    lower: tuple[float, ...] | None = None
    upper: tuple[float, ...] | None = None
    max_step: tuple[float, ...] | None = None
    max_velocity: tuple[float, ...] | None = None
    dt: float = 0.05
    workspace_low: tuple[float, float, float] | None = None
    workspace_high: tuple[float, float, float] | None = None
    workspace_dims: tuple[int, int, int] = (0, 1, 2)

    def __post_init__(self) -> None:
        n = len(self.names)
        for field in ("lower", "upper", "max_step", "max_velocity"):
            v = getattr(self, field)
            if v is not None:
                v = tuple(float(x) for x in v)
                object.__setattr__(self, field, v)
                if len(v) != n:
                    raise ValueError(f"SafetyLimits.{field} has {len(v)} values for {n} action dimensions")
                if not all(np.isfinite(v)) and field in ("max_step", "max_velocity"):
                    raise ValueError(f"SafetyLimits.{field} must be finite")
        if self.lower is not None and self.upper is not None:
            bad = [self.names[i] for i in range(n) if self.lower[i] > self.upper[i]]
            if bad:
                raise ValueError(f"SafetyLimits: lower > upper for {bad}")
        for field in ("max_step", "max_velocity"):
            v = getattr(self, field)
            if v is not None and min(v) < 0:
                raise ValueError(f"SafetyLimits.{field} must be >= 0")
        if self.dt <= 0:
            raise ValueError("SafetyLimits.dt must be > 0")
        if (self.workspace_low is None) != (self.workspace_high is None):
            raise ValueError("SafetyLimits: workspace_low and workspace_high go together")
        if self.workspace_low is not None:
            object.__setattr__(self, "workspace_low", tuple(float(x) for x in self.workspace_low))
            object.__setattr__(self, "workspace_high", tuple(float(x) for x in self.workspace_high))
            if len(self.workspace_low) != 3 or len(self.workspace_high) != 3 or len(self.workspace_dims) != 3:
                raise ValueError("SafetyLimits: the workspace box has 3 dimensions")
            if any(lo > hi for lo, hi in zip(self.workspace_low, self.workspace_high)):
                raise ValueError("SafetyLimits: workspace_low > workspace_high")
            if max(self.workspace_dims) >= n or min(self.workspace_dims) < 0:
                raise ValueError(f"SafetyLimits.workspace_dims {self.workspace_dims} out of range for {n} dims")

    @property
    def dim(self) -> int:
        return len(self.names)

    def step_bound(self) -> np.ndarray | None:
        """Per-dimension largest change per tick, or None when unlimited."""
        bounds = []
        if self.max_step is not None:
            bounds.append(np.asarray(self.max_step))
        if self.max_velocity is not None:
            bounds.append(np.asarray(self.max_velocity) * self.dt)
        if not bounds:
            return None
        return np.minimum.reduce(bounds)


def validate_action(action, limits: SafetyLimits, where: str = "action") -> np.ndarray:
    """Return ``action`` as a float64 vector, or raise :class:`UnsafeActionError` naming what is wrong."""
    try:
        a = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise UnsafeActionError(f"{where}: not a numeric vector ({e})") from e
    if a.shape != (limits.dim,):
        raise UnsafeActionError(f"{where}: expected shape ({limits.dim},) for {list(limits.names)}, got {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        named = [f"{limits.names[i]}={a[i]}" for i in np.flatnonzero(bad)]
        raise UnsafeActionError(f"{where}: non-finite values {named}; nothing was sent")
    return a


def clamp_action(
    action, limits: SafetyLimits, reference=None, where: str = "action"
) -> tuple[np.ndarray, np.ndarray]:
    """Make ``action`` safe. Returns ``(clamped, mask)`` with ``mask[i]`` true where dimension i was changed.

    ``reference`` is the current measured value in the action's space (joint positions for joint targets, the
    end-effector pose for pose targets); without it the relative step limit is skipped.
    """
    a = validate_action(action, limits, where)
    out = a.copy()
    if limits.lower is not None:
        out = np.maximum(out, limits.lower)
    if limits.upper is not None:
        out = np.minimum(out, limits.upper)
    if limits.workspace_low is not None:
        idx = list(limits.workspace_dims)
        out[idx] = np.clip(out[idx], limits.workspace_low, limits.workspace_high)
    step = limits.step_bound()
    if step is not None and reference is not None:
        ref = validate_action(reference, limits, f"{where} reference (measured state)")
        out = np.clip(out, ref - step, ref + step)
    return out, out != a
