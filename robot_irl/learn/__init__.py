"""Learning from recorded datasets: behaviour cloning now, offline RL (IQL) later, on shared pieces.

* :mod:`~robot_irl.learn.datasets`  LeRobot dataset -> arrays: observation encoding (+ goal one-hot), action
  representation (delta / absolute end-effector targets), episode boundaries.
* :mod:`~robot_irl.learn.networks`  MLP builder, deterministic / Gaussian actors, observation normaliser.
* :mod:`~robot_irl.learn.bc`        :class:`BCConfig`, :class:`BC` (``update(batch) -> metrics``).
* :mod:`~robot_irl.learn.trainer`   minibatches, logging, safetensors checkpoints, resume, learning curve;
  :func:`train_policy` goes from an :class:`OfflineData` to a checkpoint folder.
* :mod:`~robot_irl.learn.policy`    :class:`LearnedPolicy`: a checkpoint acting through the driver contract.

Learners are registered by name in :data:`ALGORITHMS` (lazy entries: importing this package imports no torch).
"""
from __future__ import annotations

from robot_irl.core.registry import Registry

ALGORITHMS: Registry[type] = Registry("algorithm")
ALGORITHMS.register("bc", "robot_irl.learn.bc:BC")
ALGORITHMS.register("iql", "robot_irl.learn.iql:IQL")
