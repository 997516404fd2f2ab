"""Trained checkpoints as :class:`~robot_irl.core.contracts.Policy` objects, whatever learned them.

A checkpoint folder's ``config.json`` names the ``algorithm`` that wrote it; :data:`CHECKPOINT_POLICIES` maps that
name to the policy class that acts with it (filled here and only here; lazy, so nothing heavy is imported until a
checkpoint is loaded):

* ``bc``, ``iql``: :class:`robot_irl.learn.policy.LearnedPolicy` (offline learners on recorded datasets: they see
  the driver's whole observation, object poses included, and the instruction);
* ``ppo``: :class:`robot_irl.legged.policy.LeggedPolicy` (legged locomotion: proprioception only, a velocity
  command and a history buffer inside).

Every such class has ``from_driver(driver, checkpoint=PATH)``, which checks the driver's features against the
training data's and raises naming the first mismatch. A class may set ``inputs = "sensors"`` to say it needs only
``observation.state`` (what ``/joint_states`` + ``/imu`` carry), so the policy node can run it from sensor topics;
the default ``"observation"`` means the driver's full observation bundle.
"""
from __future__ import annotations

import json
from pathlib import Path

from robot_irl.core.contracts import Policy, RobotDriver
from robot_irl.core.registry import Registry

CHECKPOINT_POLICIES: Registry[type[Policy]] = Registry("checkpoint algorithm")
CHECKPOINT_POLICIES.register("bc", "robot_irl.learn.policy:LearnedPolicy")
CHECKPOINT_POLICIES.register("iql", "robot_irl.learn.policy:LearnedPolicy")
CHECKPOINT_POLICIES.register("ppo", "robot_irl.legged.policy:LeggedPolicy")


class CheckpointPolicyError(ValueError):
    """A path that is not a checkpoint a policy can be built from (the message says what is wrong)."""


def checkpoint_config(path: str | Path) -> dict:
    """The ``config.json`` of a checkpoint folder, or of the ``checkpoint/`` folder inside a training run."""
    path = Path(path).expanduser()
    for folder in (path / "checkpoint", path):  # a run folder has a config.json of its own: the checkpoint's first
        if (folder / "config.json").is_file():
            try:
                config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise CheckpointPolicyError(f"{folder / 'config.json'}: not valid JSON ({e})") from None
            if not isinstance(config, dict) or "algorithm" not in config:
                raise CheckpointPolicyError(f"{folder / 'config.json'}: no 'algorithm' entry; not a robot_irl "
                                            "checkpoint")
            config["path"] = str(folder)
            return config
    raise CheckpointPolicyError(f"no checkpoint at {path}: neither {path / 'config.json'} nor "
                                f"{path / 'checkpoint' / 'config.json'} exists")


def policy_class(path: str | Path) -> type[Policy]:
    """The policy class for the checkpoint at ``path`` (by the algorithm that wrote it)."""
    return CHECKPOINT_POLICIES.get(str(checkpoint_config(path)["algorithm"]))


def load_policy(path: str | Path, driver: RobotDriver, **kwargs) -> Policy:
    """Load the checkpoint at ``path`` as a policy for ``driver`` (features checked against the training data)."""
    config = checkpoint_config(path)
    cls = CHECKPOINT_POLICIES.get(str(config["algorithm"]))
    return cls.from_driver(driver, checkpoint=config["path"], **kwargs)


__all__ = ["CHECKPOINT_POLICIES", "CheckpointPolicyError", "checkpoint_config", "load_policy", "policy_class"]
