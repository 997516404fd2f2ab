"""Learning robot behaviour: offline learners on recorded data, preference rewards, and PPO in simulation.

* :mod:`~robot_irl.learn.datasets`  LeRobot datasets and D4RL files -> arrays: observation encoding (+ goal
  one-hot), action representation (delta / absolute end-effector targets), episode boundaries, and the
  (s, a, r, s', done) transitions of TD learners under an explicit :class:`TDDataConfig`.
* :mod:`~robot_irl.learn.networks`  MLP and ensemble builders, deterministic / Gaussian actors, the fused twin-Q
  critic, normalisers, history encoders (shared by every learner).
* :mod:`~robot_irl.learn.bc`        behaviour cloning; :mod:`~robot_irl.learn.iql` implicit Q-learning (one
  readable file each, ``update(batch) -> metrics``).
* :mod:`~robot_irl.learn.trainer`   minibatches, logging (TensorBoard, metrics.jsonl, a PNG), safetensors
  checkpoints, exact resume, periodic evaluation in simulation; :func:`train_policy` goes from data to a checkpoint.
* :mod:`~robot_irl.learn.policy`    :class:`LearnedPolicy`: a BC/IQL checkpoint acting through the driver contract.
* :mod:`~robot_irl.learn.reward` / :mod:`~robot_irl.learn.relabel`  the Bradley-Terry preference reward model and
  dataset relabelling; :mod:`~robot_irl.learn.ppo` PPO with the DR / oracle / RMA / HIB actor-critic kinds (its
  runner is :mod:`robot_irl.legged.train`).
* :mod:`~robot_irl.learn.cli_train`, :mod:`~robot_irl.learn.cli_reward`  ``robot-irl train|eval|train-reward|relabel``.

The offline learners are registered by name in :data:`ALGORITHMS` (lazy entries: importing this package imports no
torch).
"""
from __future__ import annotations

from robot_irl.core.registry import Registry

ALGORITHMS: Registry[type] = Registry("algorithm")
ALGORITHMS.register("bc", "robot_irl.learn.bc:BC")
ALGORITHMS.register("iql", "robot_irl.learn.iql:IQL")
