"""Behaviour cloning: regress the demonstrated action on the observation.

The whole algorithm is :meth:`BC.update`: predict the (normalised) action of a minibatch of frames and step the
optimiser on either

* ``loss="mse"``: mean squared error to the recorded action (a deterministic policy), or
* ``loss="nll"``: negative log-likelihood under a Gaussian with a learned, state-independent standard deviation
  (the same :class:`~robot_irl.learn.networks.GaussianActor` IQL's actor uses; acting uses its mean).

What BC learns from is chosen elsewhere: the observation encoding and the action representation (absolute or
relative to the end effector) by :class:`robot_irl.learn.datasets.FeatureSpec`, minibatches, logging and
checkpoints by :mod:`robot_irl.learn.trainer`. Every learner exposes the same small surface, which the trainer and
:class:`robot_irl.learn.policy.LearnedPolicy` rely on: ``name``, ``config``, ``obs_dim``/``act_dim``,
``update(batch) -> metrics`` (detached 0-d tensors), ``predict(obs)``, ``modules()`` and ``optimizers()``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from robot_irl.core.config import Config, check
from robot_irl.learn.networks import ACTIVATIONS, DeterministicActor, GaussianActor


@dataclass
class BCConfig(Config):
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False
    dropout: float = 0.0
    loss: Literal["mse", "nll"] = "mse"
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # max gradient norm; 0 disables clipping
    log_std_min: float = -5.0  # nll only
    log_std_max: float = 2.0

    def validate(self) -> None:
        w = "BCConfig"
        check(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), f"{w}.hidden",
              f"needs positive layer widths, got {list(self.hidden)}")
        check(self.activation in ACTIVATIONS, f"{w}.activation", f"{self.activation!r} is not one of "
              f"{sorted(ACTIVATIONS)}")
        check(0.0 <= self.dropout < 1.0, f"{w}.dropout", f"must be in [0, 1), got {self.dropout}")
        check(self.lr > 0, f"{w}.lr", f"must be > 0, got {self.lr}")
        check(self.weight_decay >= 0, f"{w}.weight_decay", "must be >= 0")
        check(self.grad_clip >= 0, f"{w}.grad_clip", "must be >= 0")
        check(self.log_std_min < self.log_std_max, f"{w}.log_std_min", "must be < log_std_max")


class BC:
    """Behaviour cloning on normalised observations and actions (see the module docstring)."""

    name = "bc"
    config_class = BCConfig

    def __init__(self, obs_dim: int, act_dim: int, config: BCConfig | None = None, device: str = "cpu") -> None:
        self.config = config or BCConfig()
        self.obs_dim, self.act_dim, self.device = int(obs_dim), int(act_dim), torch.device(device)
        c = self.config
        common = {"hidden": c.hidden, "activation": c.activation, "dropout": c.dropout, "layer_norm": c.layer_norm}
        if c.loss == "nll":
            self.actor: nn.Module = GaussianActor(self.obs_dim, self.act_dim, log_std_min=c.log_std_min,
                                                  log_std_max=c.log_std_max, **common)
        else:
            self.actor = DeterministicActor(self.obs_dim, self.act_dim, **common)
        self.actor.to(self.device)
        self.optimizer = torch.optim.AdamW(self.actor.parameters(), lr=c.lr, weight_decay=c.weight_decay)

    def modules(self) -> dict[str, nn.Module]:
        return {"actor": self.actor}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.optimizer}

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One gradient step on ``batch["obs"]`` (B, obs_dim) -> ``batch["action"]`` (B, act_dim); metrics are
        detached 0-d tensors (the trainer reads them back only at log steps)."""
        self.actor.train()
        obs, action = batch["obs"], batch["action"]
        if self.config.loss == "nll":
            loss = -self.actor.log_prob(obs, action).mean()
            with torch.no_grad():
                mse = (self.actor.predict(obs) - action).pow(2).mean()
        else:
            loss = (self.actor(obs) - action).pow(2).mean()
            mse = loss.detach()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        metrics = {"loss": loss.detach(), "mse": mse}
        if self.config.grad_clip > 0:
            metrics["grad_norm"] = nn.utils.clip_grad_norm_(self.actor.parameters(), self.config.grad_clip).detach()
        self.optimizer.step()
        return metrics

    @torch.no_grad()
    def predict(self, obs: torch.Tensor) -> torch.Tensor:
        """The action (normalised) for a batch of normalised observations: the mean for a Gaussian policy."""
        self.actor.eval()
        return self.actor.predict(obs)

    @torch.no_grad()
    def evaluate(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Mean squared error of :meth:`predict` on held-out frames (no gradient step)."""
        return {"mse": float((self.predict(batch["obs"]) - batch["action"]).pow(2).mean())}
