"""Typed descriptions of what a driver observes and accepts, known without connecting to anything.

Names follow LeRobot's conventions (``observation.state``, ``observation.images.<camera>``, ``action``) so a
driver's features map one to one onto a LeRobot dataset's features.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_DTYPES = {"float32", "float64", "int64", "uint8", "bool", "string"}


@dataclass(frozen=True)
class Feature:
    """One named array: dtype, shape and (for vectors) the name of each entry."""

    dtype: str
    shape: tuple[int, ...]
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise ValueError(f"Feature dtype {self.dtype!r} is not one of {sorted(_DTYPES)}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if any(s <= 0 for s in self.shape):
            raise ValueError(f"Feature shape {self.shape} has a non-positive dimension")
        if self.names is not None:
            object.__setattr__(self, "names", tuple(self.names))
            if len(self.shape) != 1 or len(self.names) != self.shape[0]:
                raise ValueError(f"Feature names {self.names} do not match shape {self.shape}")

    @property
    def is_image(self) -> bool:
        """An HxWx3 uint8 array: a camera frame."""
        return self.dtype == "uint8" and len(self.shape) == 3 and self.shape[-1] == 3

    def check(self, key: str, value) -> np.ndarray:
        """Return ``value`` as an array of this feature's shape, or raise naming ``key``."""
        arr = np.asarray(value)
        if arr.shape != self.shape:
            raise ValueError(f"{key}: expected shape {self.shape}, got {arr.shape}")
        return arr

    def to_dict(self) -> dict:
        return {"dtype": self.dtype, "shape": list(self.shape), "names": list(self.names) if self.names else None}

    @classmethod
    def from_dict(cls, d: dict) -> Feature:
        return cls(d["dtype"], tuple(d["shape"]), tuple(d["names"]) if d.get("names") else None)


def vector(names: list[str] | tuple[str, ...], dtype: str = "float32") -> Feature:
    """A 1-D feature with one named entry per element."""
    return Feature(dtype, (len(names),), tuple(names))


def image(height: int, width: int) -> Feature:
    return Feature("uint8", (height, width, 3))
