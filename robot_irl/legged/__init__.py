"""Legged robots: the Go1 simulation (model, domain randomization, vectorised env, driver) and its learners' runners.

Importing this package is light (no MuJoCo, no torch); the heavy modules import what they need:

* :mod:`robot_irl.legged.observations` the one proprioceptive observation function (pure numpy);
* :mod:`robot_irl.legged.randomization` the domain-randomization config, presets and sampler (pure numpy);
* :mod:`robot_irl.legged.terrain` seeded rough ground (pure numpy);
* :mod:`robot_irl.legged.model` the MuJoCo model (``sim/go1.xml``), its variants and dynamics writes;
* :mod:`robot_irl.legged.env` :class:`~robot_irl.legged.env.LeggedVecEnv`, the vectorised training env;
* :mod:`robot_irl.legged.driver` :class:`~robot_irl.legged.driver.Go1Driver`, the sim as a ``RobotDriver``.

:data:`LEGGED_TASKS` is the task registry (filled here and only here).
"""
from __future__ import annotations

from dataclasses import dataclass

from robot_irl.core.registry import Registry


@dataclass(frozen=True)
class LeggedTask:
    """A velocity-command tracking task: which ground, and where episodes start."""

    name: str
    terrain: str  # "flat" | "rough"
    spawn_half_extent_m: float  # spawn x, y uniform in +-this (rough: different ground under each episode)
    description: str


LEGGED_TASKS: Registry[LeggedTask] = Registry("legged task")
LEGGED_TASKS.register("go1_flat", LeggedTask("go1_flat", "flat", 0.0,
                                             "Go1 tracks (vx, vy, wz) commands on flat ground"))
LEGGED_TASKS.register("go1_rough", LeggedTask("go1_rough", "rough", 2.5,
                                              "Go1 tracks (vx, vy, wz) commands on a seeded heightfield of bumps "
                                              "and steps of a few cm"))
