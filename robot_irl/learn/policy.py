"""A trained checkpoint acting through the driver contract.

``LearnedPolicy("runs/bc/checkpoint").act(observation)`` does, per step: encode the observation exactly as the
training frames were encoded (the :class:`~robot_irl.learn.datasets.ObservationEncoder` stored in the checkpoint,
with the goal one-hot taken from ``observation["task"]``, which :func:`robot_irl.runner.run_episode` fills with the
instruction in force), normalise, predict with the learner (the mean for a Gaussian policy), un-normalise, and turn
the prediction back into the driver's action (:class:`~robot_irl.learn.datasets.ActionCodec`).

Actions are predicted *relative to the current end-effector pose* by default (``FeatureSpec.action_mode="delta"``)
and sent as the absolute ``ee_target`` the robosuite driver takes: a delta is the same wherever the object is, is
bounded by the safety layer's per-tick step (so targets are well scaled), and small errors stay small instead of
pointing the arm at a wrong absolute place; see :mod:`robot_irl.learn.datasets`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from robot_irl.core.contracts import Policy, RobotDriver
from robot_irl.learn.datasets import ActionCodec, LearningDataError, ObservationEncoder
from robot_irl.learn.trainer import load_checkpoint


class LearnedPolicy(Policy):
    """Acts with a checkpoint written by :mod:`robot_irl.learn.trainer` (a folder, or a run folder holding one)."""

    name = "learned"

    def __init__(self, checkpoint: str | Path, device: str = "cpu", num_threads: int | None = None) -> None:
        if num_threads:
            torch.set_num_threads(num_threads)
        self.algorithm, self.config, norms = load_checkpoint(checkpoint, device)
        self.checkpoint = Path(self.config["path"])
        self.device = torch.device(device)
        self.encoder = ObservationEncoder.from_dict(self.config["encoder"])
        self.codec = ActionCodec.from_dict(self.config["codec"])
        self.obs_norm, self.action_norm = norms["obs"], norms["action"]
        if self.encoder.dim != self.algorithm.obs_dim:
            raise LearningDataError(f"{self.checkpoint}: the encoder gives {self.encoder.dim} inputs, the network "
                                    f"takes {self.algorithm.obs_dim}")

    @classmethod
    def from_driver(cls, driver: RobotDriver, seed: int | None = 0, noise: float = 0.0,
                    checkpoint: str | Path | None = None, **kwargs) -> LearnedPolicy:
        """Load ``checkpoint`` and check that ``driver`` observes and acts with the features it was trained on."""
        if checkpoint is None:
            raise ValueError("LearnedPolicy.from_driver needs checkpoint=PATH")
        policy = cls(checkpoint, **kwargs)
        policy.check_features(driver)
        return policy

    def check_features(self, driver: RobotDriver) -> None:
        """Raise :class:`LearningDataError` naming the first mismatch between the driver's and the training
        data's observation / action features."""
        obs = driver.observation_features
        for key, names in self.encoder.names.items():
            have = list(obs[key].names or ()) if key in obs else None
            if have != names:
                raise LearningDataError(f"{self.checkpoint}: trained on {key} = {names}; {driver.name} has "
                                        f"{have if have is not None else 'no such feature'}")
        actions = list(driver.action_features["action"].names or ())
        if actions != self.codec.action_names:
            raise LearningDataError(f"{self.checkpoint}: trained on actions {self.codec.action_names}; "
                                    f"{driver.name} takes {actions}")

    @property
    def vocabulary(self) -> list[str]:
        return list(self.encoder.vocabulary.instructions)

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        task = observation.get("task")
        x = self.encoder.encode(observation, None if task is None else str(task))
        with torch.no_grad():
            obs = self.obs_norm.normalize(torch.as_tensor(x, device=self.device).unsqueeze(0))
            pred = self.action_norm.denormalize(self.algorithm.predict(obs))[0].cpu().numpy()
        state = observation.get(self.codec.state_key) if self.codec.mode == "delta" else None
        return self.codec.decode(pred, state)
