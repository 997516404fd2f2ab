"""Implicit Q-learning (Kostrikov, Nair and Levine, ICLR 2022): offline RL without querying unseen actions.

The whole algorithm is :meth:`IQL.update`, on a minibatch of transitions ``(s, a, r, s', d)`` (``d`` = 1 where the
transition ends the task: no bootstrapping past it), in the order of the authors' code:

1. **V** by expectile regression towards the *minimum of the target critics*:
   ``L_V = E[|tau - 1(u < 0)| u^2]``, ``u = min_i Q_targ_i(s, a) - V(s)`` (:func:`expectile_loss`). With
   ``tau > 0.5`` V approaches the best value among the dataset's actions, never evaluating an action the data
   does not hold.
2. **Actor** by advantage-weighted regression with the *updated* V:
   ``L_pi = -E[min(exp(beta (Q_targ(s, a) - V(s))), 100) log pi(a | s)]`` (:func:`awr_weights`; squared error
   instead of the log-likelihood for the deterministic actor).
3. **Q** (both critics) towards ``r + gamma (1 - d) V(s')`` (:func:`td_target`) with the updated V, then the
   target critics follow by Polyak averaging, ``Q_targ <- (1 - 0.005) Q_targ + 0.005 Q``.

Steps 2 and 3 touch disjoint parameters and read only the (already updated) V and the target critics, so one
backward pass of ``L_pi + L_Q`` gives both their gradients: the result is exactly "actor, then Q".

The actor is a Gaussian with a state-independent standard deviation and ``tanh`` on the mean only (actions are
scaled to [-1, 1] by the data pipeline, :class:`robot_irl.learn.datasets.TDDataConfig.action_normalization`);
acting uses the mean. ``actor="deterministic"`` regresses the action directly. ``actor_dropout`` really reaches the
actor's hidden layers (CORL's Gaussian actor drops its dropout argument).

Speed: the twin critics are one :class:`~robot_irl.learn.networks.EnsembleCritic` (both Qs in one batched matmul
per layer, and the target critics likewise); optimisers are fused Adam where the device supports it; the target
update is one ``_foreach_lerp_``; ``update`` never reads a tensor back to the host: its metrics are detached 0-d
tensors that the trainer converts only at log steps. ``compile=True`` wraps the two loss computations in
``torch.compile`` (forward and backward graphs; the optimiser steps stay eager). Measured by ``bench/bench_iql.py``.

Defaults are the paper's MuJoCo locomotion settings (tau 0.7, beta 3, gamma 0.99, lr 3e-4, 2x256 MLPs, Polyak
0.005, cosine decay of the actor's learning rate over the run); AntMaze uses ``expectile=0.9, beta=10`` with
``TDDataConfig.reward_mode="antmaze"``, Kitchen/Adroit ``beta=0.5, actor_dropout=0.1``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from robot_irl.core.config import Config, check
from robot_irl.learn.networks import ACTIVATIONS, DeterministicActor, EnsembleCritic, GaussianActor, mlp


@dataclass
class IQLConfig(Config):
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    critic_layer_norm: bool = False
    actor: Literal["gaussian", "deterministic"] = "gaussian"
    actor_dropout: float = 0.0
    tanh_mean: bool = True  # tanh on the actor's mean only (the Gaussian itself is not squashed)
    log_std_min: float = -10.0  # the authors' Gaussian policy bounds
    log_std_max: float = 2.0
    expectile: float = 0.7  # tau of the paper
    beta: float = 3.0  # inverse temperature of the advantage weights
    exp_adv_max: float = 100.0  # clip of exp(beta * advantage)
    gamma: float = 0.99
    polyak: float = 0.005  # target critic step: Q_targ <- (1 - polyak) Q_targ + polyak Q
    num_critics: int = 2
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    value_lr: float = 3e-4
    actor_lr_schedule: Literal["cosine", "constant"] = "cosine"
    schedule_steps: int = 0  # horizon of the cosine decay; 0: the training run's steps (resolved when training)
    compile: bool = False  # torch.compile the loss computations (see bench/bench_iql.py for when it pays)

    def validate(self) -> None:
        w = "IQLConfig"
        check(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), f"{w}.hidden",
              f"needs positive layer widths, got {list(self.hidden)}")
        check(self.activation in ACTIVATIONS, f"{w}.activation",
              f"{self.activation!r} is not one of {sorted(ACTIVATIONS)}")
        check(0.0 <= self.actor_dropout < 1.0, f"{w}.actor_dropout", f"must be in [0, 1), got {self.actor_dropout}")
        check(self.log_std_min < self.log_std_max, f"{w}.log_std_min", "must be < log_std_max")
        check(0.0 < self.expectile < 1.0, f"{w}.expectile", f"must be in (0, 1), got {self.expectile}")
        check(self.beta >= 0, f"{w}.beta", f"must be >= 0, got {self.beta}")
        check(self.exp_adv_max > 0, f"{w}.exp_adv_max", "must be > 0")
        check(0.0 <= self.gamma <= 1.0, f"{w}.gamma", f"must be in [0, 1], got {self.gamma}")
        check(0.0 < self.polyak <= 1.0, f"{w}.polyak", f"must be in (0, 1], got {self.polyak}")
        check(self.num_critics >= 1, f"{w}.num_critics", "must be >= 1")
        for name in ("actor_lr", "critic_lr", "value_lr"):
            check(getattr(self, name) > 0, f"{w}.{name}", f"must be > 0, got {getattr(self, name)}")
        check(self.schedule_steps >= 0, f"{w}.schedule_steps", "must be >= 0 (0: the run's steps)")


# ---------------------------------------------------------------------------------------------------------------
# the three pieces of maths, as functions (tested on known numbers)
# ---------------------------------------------------------------------------------------------------------------
def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """``mean(|tau - 1(diff < 0)| * diff^2)`` with ``diff = target - prediction``."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return (weight * diff.pow(2)).mean()


def awr_weights(advantage: torch.Tensor, beta: float, max_weight: float = 100.0) -> torch.Tensor:
    """``min(exp(beta * advantage), max_weight)``: the advantage-weighted regression weights."""
    return torch.exp(beta * advantage).clamp(max=max_weight)


def td_target(reward: torch.Tensor, done: torch.Tensor, next_value: torch.Tensor, gamma: float) -> torch.Tensor:
    """``r + gamma * (1 - d) * V(s')``: no bootstrapping where ``done`` is 1."""
    return reward + gamma * (1.0 - done) * next_value


def cosine_lr(base: float, step: int, horizon: int) -> float:
    """Cosine decay from ``base`` to 0 over ``horizon`` steps (as ``optax.cosine_decay_schedule``); constant after."""
    if horizon <= 0:
        return base
    return base * 0.5 * (1.0 + math.cos(math.pi * min(step, horizon) / horizon))


def _adam(params, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Fused Adam where the device has it (one kernel for every parameter), else the multi-tensor one."""
    params = list(params)
    if device.type in ("cpu", "cuda"):
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, TypeError):  # an older torch without CPU fused Adam
            pass
    return torch.optim.Adam(params, lr=lr, foreach=True)


class IQL:
    """Implicit Q-learning on normalised transitions (see the module docstring)."""

    name = "iql"
    config_class = IQLConfig
    #: trained on (s, a, r, s', done) transitions, not on every frame (the trainer drops timeouts per TDDataConfig)
    transitions = True

    def __init__(self, obs_dim: int, act_dim: int, config: IQLConfig | None = None, device: str = "cpu") -> None:
        self.config = config or IQLConfig()
        self.obs_dim, self.act_dim, self.device = int(obs_dim), int(act_dim), torch.device(device)
        c = self.config
        common = {"hidden": c.hidden, "activation": c.activation, "dropout": c.actor_dropout,
                  "tanh_mean": c.tanh_mean}
        if c.actor == "gaussian":
            self.actor: nn.Module = GaussianActor(self.obs_dim, self.act_dim, log_std_min=c.log_std_min,
                                                  log_std_max=c.log_std_max, **common)
        else:
            self.actor = DeterministicActor(self.obs_dim, self.act_dim, **common)
        self.q = EnsembleCritic(self.obs_dim + self.act_dim, c.num_critics, c.hidden, c.activation,
                                c.critic_layer_norm)
        self.q_target = EnsembleCritic(self.obs_dim + self.act_dim, c.num_critics, c.hidden, c.activation,
                                       c.critic_layer_norm)
        self.q_target.load_state_dict(self.q.state_dict())
        self.q_target.requires_grad_(False)
        self.value = mlp(self.obs_dim, 1, c.hidden, c.activation)
        for module in self.modules().values():
            module.to(self.device)
        self.actor_optimizer = _adam(self.actor.parameters(), c.actor_lr, self.device)
        self.q_optimizer = _adam(self.q.parameters(), c.critic_lr, self.device)
        self.value_optimizer = _adam(self.value.parameters(), c.value_lr, self.device)
        self._target_params = list(self.q_target.parameters())
        self._online_params = list(self.q.parameters())
        self.updates = 0  # for the actor's learning-rate schedule; saved by training_state()
        self._value_loss, self._actor_critic_loss = self._value_losses, self._actor_critic_losses
        if c.compile:
            self._value_loss = torch.compile(self._value_losses, dynamic=False)
            self._actor_critic_loss = torch.compile(self._actor_critic_losses, dynamic=False)

    @classmethod
    def resolve_config(cls, config: IQLConfig, steps: int) -> IQLConfig:
        """The config a training run of ``steps`` steps uses (``schedule_steps=0`` becomes ``steps``)."""
        return config.replace(schedule_steps=steps) if config.schedule_steps == 0 else config

    # -- the learner surface ------------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "q": self.q, "q_target": self.q_target, "value": self.value}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_optimizer, "q": self.q_optimizer, "value": self.value_optimizer}

    def training_state(self) -> dict:
        return {"updates": self.updates}

    def load_training_state(self, state: dict) -> None:
        self.updates = int(state.get("updates", 0))

    def actor_lr(self, step: int | None = None) -> float:
        c = self.config
        step = self.updates if step is None else step
        return cosine_lr(c.actor_lr, step, c.schedule_steps) if c.actor_lr_schedule == "cosine" else c.actor_lr

    # -- losses ---------------------------------------------------------------------------------------------------
    def _value_losses(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(expectile loss of V, min of the target critics at (s, a))."""
        with torch.no_grad():
            q_min = self.q_target(obs, action).min(dim=0).values
        v = self.value(obs).squeeze(-1)
        return expectile_loss(q_min - v, self.config.expectile), q_min

    def _actor_bc_losses(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        if self.config.actor == "gaussian":
            return -self.actor.log_prob(obs, action)
        return (self.actor(obs) - action).pow(2).sum(-1)

    def _actor_critic_losses(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
                             next_obs: torch.Tensor, done: torch.Tensor, q_min: torch.Tensor) -> dict:
        c = self.config
        with torch.no_grad():
            v_both = self.value(torch.cat([obs, next_obs])).squeeze(-1)  # the updated V, one pass for s and s'
            v, next_v = v_both[: len(obs)], v_both[len(obs):]
            advantage = q_min - v
            weights = awr_weights(advantage, c.beta, c.exp_adv_max)
            target = td_target(reward, done, next_v, c.gamma)
        actor_loss = (weights * self._actor_bc_losses(obs, action)).mean()
        qs = self.q(obs, action)
        q_loss = (qs - target).pow(2).mean()  # the mean of the critics' squared errors
        return {"actor_loss": actor_loss, "q_loss": q_loss, "v": v.mean(), "q": q_min.mean(),
                "advantage": advantage.mean(), "adv_weight": weights.mean()}

    # -- the update -----------------------------------------------------------------------------------------------
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One IQL step on ``obs``, ``action``, ``reward``, ``next_obs``, ``done`` (B rows each); metrics are
        detached 0-d tensors (no host synchronisation)."""
        obs, action, reward = batch["obs"], batch["action"], batch["reward"]
        next_obs, done = batch["next_obs"], batch["done"]
        if self.config.compile:  # compiled kernels are far slower on strided views (the trainer's packed batches)
            obs, action, reward, next_obs, done = (t.contiguous() for t in (obs, action, reward, next_obs, done))
        self.actor.train()
        # 1. V
        value_loss, q_min = self._value_loss(obs, action)
        self.value_optimizer.zero_grad(set_to_none=True)
        value_loss.backward()
        self.value_optimizer.step()
        # 2. + 3. actor and Q with the updated V (disjoint parameters: one backward)
        out = self._actor_critic_loss(obs, action, reward, next_obs, done, q_min)
        for group in self.actor_optimizer.param_groups:
            group["lr"] = self.actor_lr()
        self.actor_optimizer.zero_grad(set_to_none=True)
        self.q_optimizer.zero_grad(set_to_none=True)
        (out["actor_loss"] + out["q_loss"]).backward()
        self.actor_optimizer.step()
        self.q_optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(self._target_params, self._online_params, self.config.polyak)
        self.updates += 1
        return {"v_loss": value_loss.detach(), **{k: v.detach() for k, v in out.items()}}

    @torch.no_grad()
    def predict(self, obs: torch.Tensor) -> torch.Tensor:
        """The action (normalised) for a batch of normalised observations: the actor's mean."""
        self.actor.eval()
        return self.actor.predict(obs)

    @torch.no_grad()
    def evaluate(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Losses on held-out transitions (no gradient step) and the actor's squared error to their actions."""
        self.actor.eval()  # no dropout: evaluating draws no random numbers (resume stays exact)
        value_loss, q_min = self._value_losses(batch["obs"], batch["action"])
        out = self._actor_critic_losses(batch["obs"], batch["action"], batch["reward"], batch["next_obs"],
                                        batch["done"], q_min)
        mse = (self.predict(batch["obs"]) - batch["action"]).pow(2).mean()
        values = torch.stack([value_loss, out["q_loss"], mse]).tolist()
        return dict(zip(("v_loss", "q_loss", "mse"), values))
