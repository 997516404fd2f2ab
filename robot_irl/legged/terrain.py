"""Rough ground for ``go1_rough``: a seeded heightfield of smooth bumps and small steps, pure numpy.

:func:`generate_heights` returns a grid of heights in metres (row = y, column = x, MuJoCo's heightfield layout);
:func:`robot_irl.legged.model.build_model` puts it into the model as an ``hfield`` geom centred on the origin over
the flat floor (outside the patch the ground is flat). :func:`height_at` looks heights up (bilinear, as MuJoCo
interpolates the heightfield's triangles closely enough for a base-height reward and for spawning).

The same ``seed`` gives the same ground. A flat square around the centre (``flat_center_m``) is left for the
robot's first steps; spawns elsewhere sit on the ground with :func:`max_height_in`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_irl.core.config import Config, check


@dataclass
class TerrainConfig(Config):
    size_m: float = 8.0  # side of the square patch
    resolution_m: float = 0.05  # grid spacing
    bump_height_m: float = 0.04  # peak height of the smooth bumps
    bump_width_m: float = 0.35  # their typical width (Gaussian sigma ~ width / 2)
    bumps_per_m2: float = 1.5
    step_height_m: float = 0.03  # height of the flat-topped square steps
    steps_per_m2: float = 0.3
    step_size_m: tuple[float, float] = (0.3, 0.8)  # side of a step, uniform in this range
    flat_center_m: float = 0.0  # side of a flat square kept at the centre (0: none)

    def validate(self) -> None:
        w = "TerrainConfig"
        check(self.size_m > 0, f"{w}.size_m", "must be > 0")
        check(0 < self.resolution_m <= self.size_m / 4, f"{w}.resolution_m", "must be in (0, size_m / 4]")
        for name in ("bump_height_m", "bump_width_m", "bumps_per_m2", "step_height_m", "steps_per_m2",
                     "flat_center_m"):
            check(getattr(self, name) >= 0, f"{w}.{name}", "must be >= 0")
        check(0 < self.step_size_m[0] <= self.step_size_m[1], f"{w}.step_size_m", "needs 0 < low <= high")

    @property
    def cells(self) -> int:
        """Grid points per side."""
        return int(round(self.size_m / self.resolution_m)) + 1

    @property
    def max_height_m(self) -> float:
        """An upper bound of the generated heights (the heightfield's elevation scale)."""
        return max(self.bump_height_m * 2.0 + self.step_height_m * 2.0, 1e-3)


def generate_heights(config: TerrainConfig, seed: int) -> np.ndarray:
    """A ``(cells, cells)`` float64 grid of ground heights in metres, all in ``[0, config.max_height_m]``."""
    rng = np.random.default_rng(seed)
    n, size = config.cells, config.size_m
    coords = np.linspace(-size / 2, size / 2, n)
    x, y = np.meshgrid(coords, coords)  # rows = y, columns = x
    h = np.zeros((n, n))
    area = size * size
    for _ in range(rng.poisson(config.bumps_per_m2 * area)):
        cx, cy = rng.uniform(-size / 2, size / 2, 2)
        sigma = config.bump_width_m / 2 * rng.uniform(0.6, 1.4)
        amp = config.bump_height_m * rng.uniform(0.3, 1.0) * rng.choice([-1.0, 1.0])
        h += amp * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma * sigma))
    h = np.maximum(h, 0.0)  # dips are cut off at the floor level, so the patch's edge meets the floor
    for _ in range(rng.poisson(config.steps_per_m2 * area)):
        cx, cy = rng.uniform(-size / 2, size / 2, 2)
        half = rng.uniform(*config.step_size_m, 2) / 2
        inside = (np.abs(x - cx) <= half[0]) & (np.abs(y - cy) <= half[1])
        h[inside] += config.step_height_m * rng.uniform(0.5, 1.0)
    if config.flat_center_m > 0:
        center = (np.abs(x) <= config.flat_center_m / 2) & (np.abs(y) <= config.flat_center_m / 2)
        h[center] = 0.0
    return np.clip(h, 0.0, config.max_height_m)


def height_at(heights: np.ndarray, size_m: float, x, y) -> np.ndarray:
    """Ground height (m) at world points ``(x, y)`` of a patch centred at the origin; 0 outside the patch."""
    n = heights.shape[0]
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    u = (x + size_m / 2) / size_m * (n - 1)
    v = (y + size_m / 2) / size_m * (n - 1)
    inside = (u >= 0) & (u <= n - 1) & (v >= 0) & (v <= n - 1)
    u = np.clip(u, 0, n - 1)
    v = np.clip(v, 0, n - 1)
    i0 = np.minimum(np.floor(v).astype(int), n - 2)
    j0 = np.minimum(np.floor(u).astype(int), n - 2)
    fu, fv = u - j0, v - i0
    h = (heights[i0, j0] * (1 - fu) * (1 - fv) + heights[i0, j0 + 1] * fu * (1 - fv)
         + heights[i0 + 1, j0] * (1 - fu) * fv + heights[i0 + 1, j0 + 1] * fu * fv)
    return np.where(inside, h, 0.0)


def max_height_in(heights: np.ndarray, size_m: float, x, y, half_extent: float) -> np.ndarray:
    """Highest ground within a square of half side ``half_extent`` around each ``(x, y)`` (a 5x5 sample)."""
    x = np.asarray(x, dtype=np.float64)[..., None]
    y = np.asarray(y, dtype=np.float64)[..., None]
    offsets = np.linspace(-half_extent, half_extent, 5)
    ox, oy = np.meshgrid(offsets, offsets)
    return height_at(heights, size_m, x + ox.ravel(), y + oy.ravel()).max(axis=-1)
