"""PPO with a privileged critic, and the four legged policies (DR-only, oracle, RMA, HIB) as configs of one learner.

Why our own PPO and not rsl_rl: rsl_rl is not in our lock (it would pull its own pins next to lerobot's torch), and
the issue needs the four encoders as *configurations of one actor-critic* sharing one update, which rsl_rl spreads
over separate modules and runners. The algorithm follows rsl_rl / legged_gym exactly where it matters:

* clipped surrogate (``clip`` 0.2), clipped value loss, entropy bonus (0.01), one Adam optimiser over all trained
  networks, gradient-norm clip (1.0), ``epochs`` (5) x ``minibatches`` (4) per rollout;
* GAE(lambda) (gamma 0.99, lambda 0.95) with advantages normalised over the rollout;
* time-outs are bootstrapped: ``r += gamma * V(s_T)`` where ``info["time_out"]``, with ``s_T`` the final
  observation the env reports before its auto-reset (``info["final_observation"]``), or rsl_rl's ``V(s_t)``
  when an env does not report it;
* the adaptive learning rate: after each minibatch the KL between the rollout's and the current Gaussian policy
  divides the rate by 1.5 above ``2 * desired_kl`` and multiplies it by 1.5 below ``desired_kl / 2``
  (``desired_kl`` 0.01, rate kept in [1e-5, 1e-2]).

Observations are normalised with running statistics (:class:`~robot_irl.learn.networks.RunningNormalizer`) held
by the learner, outside the networks, saved with every checkpoint. The runner calls :meth:`PPO.update_normalizers`
with each rollout *after* the update, so statistics are constant during a rollout and its update: the stored raw
observations and histories are normalised identically when acting and when learning (the probability ratio is
exactly 1 at the first minibatch), and a deployed policy sees the same frozen statistics as the last rollout.

The critic always sees the ``critic`` observation (noise-free proprioception + privileged factors + base linear
velocity). What the actor sees is :attr:`ActorCriticConfig.kind`:

``dr``      the current proprioceptive observation only (domain randomisation, no history).
``oracle``  proprio + ``latent_dim`` latent of an MLP encoder of the privileged vector (RMA's phase-1 policy).
``rma``     phase 1 is the oracle (the teacher); phase 2 (:meth:`PPO.update_adaptation`) regresses the teacher's
            latent from an ``H=50`` step history with RMA's adaptation module (per-step embedding + three 1D
            convolutions, :class:`~robot_irl.learn.networks.HistoryEncoder`), MSE, on rollouts of the *student*
            (the adaptation latent drives the frozen actor: DAgger-style on-policy data). Deployed: adaptation
            module + the teacher's actor. The runner decides how the env-step budget is split
            (:mod:`robot_irl.legged.train`).
``hib``     single stage: a history encoder (``H=8`` steps, MLP) gives ``q(z|h) = N(mu, sigma)``; the actor sees
            proprio + ``z = mu + sigma * eps`` (reparameterised; ``eps`` is stored in the rollout, so the policy's
            log-probability is that of a deterministic function of (history, eps) and the PPO ratio is exact).
            Loss = PPO + ``beta_kl * KL(q(z|h) || N(0, I))`` + ``lambda_mi * InfoNCE(z, g(privileged))``: an
            information bottleneck that keeps in ``z`` what predicts the privileged dynamics (the contrastive term
            is a lower bound on their mutual information; positives are the same env-step, negatives the rest of
            a ``mi_batch`` subset of the minibatch, cosine similarity over ``temperature``, symmetric). Encoder,
            projection ``g`` and actor are trained jointly by all three terms. Deployed: ``z = mu``.

:class:`RolloutBuffer` stores a rollout (raw observations, histories, actions, log-probs, values, rewards, dones)
and computes GAE; :class:`HistoryBuffer` keeps the per-env proprioceptive history (first observation of an
episode repeated to fill it), used by the runner, the evaluator and the deployed policy alike.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from robot_irl.core.config import Config, check
from robot_irl.learn.networks import ACTIVATIONS, HistoryEncoder, RunningNormalizer, mlp

KINDS = ("dr", "oracle", "rma", "hib")
DEFAULT_HISTORY = {"rma": 50, "hib": 8}
NORMALIZED = ("proprio", "privileged", "critic")


@dataclass
class PPOConfig(Config):
    gamma: float = 0.99
    lam: float = 0.95
    clip: float = 0.2
    epochs: int = 5
    minibatches: int = 4
    lr: float = 1e-3
    schedule: Literal["adaptive", "fixed"] = "adaptive"
    desired_kl: float = 0.01
    lr_min: float = 1e-5
    lr_max: float = 1e-2
    entropy_coef: float = 0.01
    value_coef: float = 1.0
    clip_value_loss: bool = True
    max_grad_norm: float = 1.0
    normalize_advantages: bool = True
    obs_clip: float = 10.0  # normalised observations are clipped to +-obs_clip
    adaptation_lr: float = 1e-3  # RMA phase 2 (its own Adam)
    adaptation_epochs: int = 2

    def validate(self) -> None:
        w = "PPOConfig"
        check(0.0 < self.gamma <= 1.0, f"{w}.gamma", f"must be in (0, 1], got {self.gamma}")
        check(0.0 <= self.lam <= 1.0, f"{w}.lam", f"must be in [0, 1], got {self.lam}")
        check(self.clip > 0, f"{w}.clip", f"must be > 0, got {self.clip}")
        check(self.epochs >= 1, f"{w}.epochs", "must be >= 1")
        check(self.minibatches >= 1, f"{w}.minibatches", "must be >= 1")
        check(self.adaptation_epochs >= 1, f"{w}.adaptation_epochs", "must be >= 1")
        check(0 < self.lr_min <= self.lr <= self.lr_max, f"{w}.lr",
              f"needs lr_min <= lr <= lr_max, got {self.lr_min}, {self.lr}, {self.lr_max}")
        check(self.desired_kl > 0, f"{w}.desired_kl", "must be > 0")
        for name in ("entropy_coef", "value_coef", "max_grad_norm"):
            check(getattr(self, name) >= 0, f"{w}.{name}", "must be >= 0")
        check(self.obs_clip > 0, f"{w}.obs_clip", "must be > 0")
        check(self.adaptation_lr > 0, f"{w}.adaptation_lr", "must be > 0")


@dataclass
class ActorCriticConfig(Config):
    kind: Literal["dr", "oracle", "rma", "hib"] = "dr"
    actor_hidden: tuple[int, ...] = (512, 256, 128)
    critic_hidden: tuple[int, ...] = (512, 256, 128)
    activation: str = "elu"
    init_noise_std: float = 1.0
    latent_dim: int = 8
    encoder_hidden: tuple[int, ...] = (64, 32)  # privileged encoder (oracle, the RMA teacher)
    history: int = 0  # steps of proprio history (rma, hib); 0: the kind's default (rma 50, hib 8)
    history_encoder: Literal["auto", "mlp", "conv"] = "auto"  # auto: conv for rma, mlp for hib
    history_hidden: tuple[int, ...] = (128, 64)  # MLP history encoder
    beta_kl: float = 1e-3  # hib: weight of KL(q(z|h) || N(0, I))
    lambda_mi: float = 0.1  # hib: weight of the InfoNCE term
    temperature: float = 0.1  # hib: InfoNCE temperature (cosine similarities)
    mi_batch: int = 512  # hib: at most this many samples of a minibatch enter InfoNCE (its cost is quadratic)
    projection_hidden: tuple[int, ...] = (64,)  # hib: g(privileged)
    latent_init_std: float = 0.2  # hib: initial sigma of q(z|h) (a unit sigma would drown the actor in noise)

    def validate(self) -> None:
        w = "ActorCriticConfig"
        for name in ("actor_hidden", "critic_hidden", "encoder_hidden", "history_hidden"):
            value = getattr(self, name)
            check(len(value) > 0 and all(h > 0 for h in value), f"{w}.{name}",
                  f"needs positive layer widths, got {list(value)}")
        check(all(h > 0 for h in self.projection_hidden), f"{w}.projection_hidden", "needs positive widths")
        check(self.activation in ACTIVATIONS, f"{w}.activation",
              f"{self.activation!r} is not one of {sorted(ACTIVATIONS)}")
        check(self.init_noise_std > 0, f"{w}.init_noise_std", "must be > 0")
        check(self.latent_dim >= 1, f"{w}.latent_dim", "must be >= 1")
        check(self.history >= 0, f"{w}.history", "must be >= 0")
        check(self.beta_kl >= 0 and self.lambda_mi >= 0, f"{w}.beta_kl", "beta_kl and lambda_mi must be >= 0")
        check(self.temperature > 0, f"{w}.temperature", "must be > 0")
        check(self.mi_batch >= 2, f"{w}.mi_batch", "must be >= 2")
        check(0 < self.latent_init_std <= 1, f"{w}.latent_init_std", "must be in (0, 1]")
        if self.uses_history and self.encoder_kind == "conv":
            try:
                HistoryEncoder.conv_layout(self.history_length)
            except ValueError as e:
                check(False, f"{w}.history", str(e))

    @property
    def uses_history(self) -> bool:
        return self.kind in ("rma", "hib")

    @property
    def history_length(self) -> int:
        """Steps of history the policy needs (1 for kinds without one: the current observation)."""
        if not self.uses_history:
            return 1
        return self.history or DEFAULT_HISTORY[self.kind]

    @property
    def encoder_kind(self) -> str:
        if self.history_encoder != "auto":
            return self.history_encoder
        return "conv" if self.kind == "rma" else "mlp"


# ---------------------------------------------------------------------------------------------------------------
# losses on known numbers (tested directly)
# ---------------------------------------------------------------------------------------------------------------
def gaussian_kl(mu_old: torch.Tensor, std_old: torch.Tensor, mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu_old, std_old) || N(mu, std))`` of diagonal Gaussians, summed over the last dimension (rsl_rl's)."""
    return (torch.log(std / std_old) + (std_old.pow(2) + (mu_old - mu).pow(2)) / (2.0 * std.pow(2)) - 0.5).sum(-1)


def kl_to_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(log_var)) || N(0, I))`` per sample: ``0.5 * sum(mu^2 + var - 1 - log_var)``."""
    return 0.5 * (mu.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)


def info_nce(z: torch.Tensor, target: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Symmetric InfoNCE between row-paired embeddings: row ``i`` of ``z`` and of ``target`` are the positive
    pair, every other row a negative; similarities are cosines divided by ``temperature``. Its minimum over
    encoders bounds ``log(B) - I(z; target)`` from above (van den Oord et al. 2018)."""
    logits = nn.functional.normalize(z, dim=-1) @ nn.functional.normalize(target, dim=-1).T / temperature
    labels = torch.arange(len(z), device=z.device)
    return 0.5 * (nn.functional.cross_entropy(logits, labels) + nn.functional.cross_entropy(logits.T, labels))


def surrogate_loss(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor,
                   clip: float) -> torch.Tensor:
    """PPO's clipped surrogate (to minimise): ``mean(max(-A * r, -A * clip(r, 1 - c, 1 + c)))``."""
    ratio = torch.exp(log_prob - old_log_prob)
    return torch.max(-advantages * ratio, -advantages * ratio.clamp(1.0 - clip, 1.0 + clip)).mean()


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip: float | None
               ) -> torch.Tensor:
    """Squared error to the returns; clipped as rsl_rl (the new value may move at most ``clip`` from the old)."""
    if clip is None:
        return (returns - values).pow(2).mean()
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    return torch.max((values - returns).pow(2), (clipped - returns).pow(2)).mean()


def compute_gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_values: torch.Tensor,
                gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over a ``(T, N)`` rollout; returns ``(advantages, returns)``.

    ``dones[t]`` ends the episode after step ``t`` (no bootstrap from the next value); time-outs are bootstrapped
    beforehand by adding ``gamma * V`` to their reward (:meth:`RolloutBuffer.add`).
    """
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(last_values)
    for t in reversed(range(len(rewards))):
        next_values = last_values if t == len(rewards) - 1 else values[t + 1]
        alive = 1.0 - dones[t].float()
        delta = rewards[t] + gamma * next_values * alive - values[t]
        running = delta + gamma * lam * alive * running
        advantages[t] = running
    return advantages, advantages + values


# ---------------------------------------------------------------------------------------------------------------
# histories and rollouts
# ---------------------------------------------------------------------------------------------------------------
class HistoryBuffer:
    """The last ``length`` proprioceptive observations of each of ``num_envs`` envs, ``(N, H, D)``, newest last.

    :meth:`push` appends one observation per env; rows flagged in ``reset`` (a new episode) are first filled with
    that observation, so a history never mixes two episodes and never holds made-up zeros.
    """

    def __init__(self, num_envs: int, length: int, dim: int, device: str | torch.device = "cpu") -> None:
        self.num_envs, self.length, self.dim = int(num_envs), int(length), int(dim)
        self.data = torch.zeros(self.num_envs, self.length, self.dim, device=device)
        self._fresh = torch.ones(self.num_envs, dtype=torch.bool, device=device)

    def reset(self, mask: torch.Tensor | None = None) -> None:
        """Mark envs (all, or where ``mask``) as starting an episode: their next :meth:`push` fills the row."""
        if mask is None:
            self._fresh[:] = True
        else:
            self._fresh |= torch.as_tensor(mask, dtype=torch.bool, device=self._fresh.device)

    def push(self, obs: torch.Tensor) -> torch.Tensor:
        """Append ``obs`` (N, D); returns the new history (a new tensor: earlier returns stay valid)."""
        obs = obs.to(self.data.device, self.data.dtype)
        if obs.shape != (self.num_envs, self.dim):
            raise ValueError(f"HistoryBuffer.push: expected ({self.num_envs}, {self.dim}), got {tuple(obs.shape)}")
        data = torch.cat([self.data[:, 1:], obs[:, None]], dim=1)
        if bool(self._fresh.any()):
            data[self._fresh] = obs[self._fresh, None].expand(-1, self.length, -1)
            self._fresh[:] = False
        self.data = data
        return data

    def state(self) -> dict[str, torch.Tensor]:
        return {"data": self.data.clone(), "fresh": self._fresh.clone()}

    def load_state(self, state: Mapping[str, torch.Tensor]) -> None:
        self.data = state["data"].to(self.data.device).clone()
        self._fresh = state["fresh"].to(self._fresh.device).clone()


class RolloutBuffer:
    """``steps`` x ``num_envs`` transitions on the device, then GAE and shuffled minibatches."""

    def __init__(self, steps: int, num_envs: int, dims: Mapping[str, int], act_dim: int, history: int,
                 latent_dim: int = 0, device: str | torch.device = "cpu") -> None:
        self.steps, self.num_envs, self.device = int(steps), int(num_envs), torch.device(device)
        shape = (self.steps, self.num_envs)

        def zeros(*tail: int) -> torch.Tensor:
            return torch.zeros(*shape, *tail, device=self.device)

        self.data: dict[str, torch.Tensor] = {name: zeros(dims[name]) for name in NORMALIZED}
        if history > 1:
            self.data["history"] = zeros(history, dims["proprio"])
        if latent_dim:
            self.data["eps"] = zeros(latent_dim)
        for name in ("action", "mean", "std"):
            self.data[name] = zeros(act_dim)
        for name in ("log_prob", "value", "reward", "done", "advantage", "return"):
            self.data[name] = zeros()
        self.step = 0

    def add(self, obs: Mapping[str, torch.Tensor], history: torch.Tensor | None, out: Mapping[str, torch.Tensor],
            reward: torch.Tensor, done: torch.Tensor, time_out: torch.Tensor, gamma: float,
            bootstrap: torch.Tensor | None = None) -> None:
        """Store one step; a time-out's reward gets ``gamma * bootstrap``: the value of the final observation
        when the env reports it (``info["final_observation"]``), else ``V(s_t)`` (rsl_rl's approximation)."""
        if self.step >= self.steps:
            raise RuntimeError(f"RolloutBuffer: full ({self.steps} steps); call clear() first")
        t, d = self.step, self.data
        for name in NORMALIZED:
            d[name][t] = obs[name]
        if "history" in d:
            d["history"][t] = history
        if "eps" in d:
            d["eps"][t] = out["eps"]
        for name in ("action", "mean", "std", "log_prob", "value"):
            d[name][t] = out[name]
        bootstrap = out["value"] if bootstrap is None else bootstrap
        d["reward"][t] = reward + gamma * bootstrap * time_out.float()
        d["done"][t] = done.float()
        self.step += 1

    def clear(self) -> None:
        self.step = 0

    @property
    def full(self) -> bool:
        return self.step == self.steps

    def compute_returns(self, last_values: torch.Tensor, gamma: float, lam: float, normalize: bool = True) -> None:
        d = self.data
        advantages, returns = compute_gae(d["reward"], d["value"], d["done"], last_values, gamma, lam)
        d["return"] = returns
        if normalize:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        d["advantage"] = advantages

    def minibatches(self, count: int, epochs: int, generator: torch.Generator | None = None,
                    keys: tuple[str, ...] | None = None) -> Iterator[dict[str, torch.Tensor]]:
        """``epochs`` passes over the flattened rollout in ``count`` shuffled minibatches each."""
        total = self.steps * self.num_envs
        flat = {k: v.reshape(total, *v.shape[2:]) for k, v in self.data.items() if keys is None or k in keys}
        size = total // count
        if size < 1:
            raise ValueError(f"RolloutBuffer: {total} samples cannot make {count} minibatches")
        for _ in range(epochs):
            order = torch.randperm(total, generator=generator, device="cpu").to(self.device)
            for i in range(count):
                idx = order[i * size:(i + 1) * size]
                yield {k: v[idx] for k, v in flat.items()}


# ---------------------------------------------------------------------------------------------------------------
# the actor-critic
# ---------------------------------------------------------------------------------------------------------------
class ActorCritic(nn.Module):
    """One actor-critic; :class:`ActorCriticConfig.kind` decides which latent the actor gets (module docstring).

    Inputs are *normalised* tensors: ``proprio`` (B, D), ``privileged`` (B, P), ``history`` (B, H, D),
    ``critic`` (B, C). ``source`` picks the latent: ``"privileged"`` (oracle, RMA teacher), ``"history"``
    (RMA student, HIB) or None (the kind's deployable choice).
    """

    def __init__(self, obs_dim: int, priv_dim: int, critic_dim: int, act_dim: int, config: ActorCriticConfig
                 ) -> None:
        super().__init__()
        c = self.config = config
        self.obs_dim, self.priv_dim, self.critic_dim, self.act_dim = obs_dim, priv_dim, critic_dim, act_dim
        latent = c.latent_dim if c.kind != "dr" else 0
        self.actor = mlp(obs_dim + latent, act_dim, c.actor_hidden, c.activation)
        self.critic = mlp(critic_dim, 1, c.critic_hidden, c.activation)
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(c.init_noise_std)))
        if c.kind in ("oracle", "rma"):
            self.priv_encoder = mlp(priv_dim, c.latent_dim, c.encoder_hidden, c.activation)
        if c.kind == "rma":
            self.adaptation = HistoryEncoder(obs_dim, c.history_length, c.latent_dim, c.encoder_kind,
                                             c.history_hidden, c.activation)
        if c.kind == "hib":
            self.history_encoder = HistoryEncoder(obs_dim, c.history_length, 2 * c.latent_dim, c.encoder_kind,
                                                  c.history_hidden, c.activation)
            self.projection = mlp(priv_dim, c.latent_dim, c.projection_hidden, c.activation)
            head = self.history_encoder.net[-1] if c.encoder_kind == "mlp" else self.history_encoder.head
            with torch.no_grad():
                head.bias[c.latent_dim:] = 2.0 * math.log(c.latent_init_std)

    @property
    def actor_input_dim(self) -> int:
        return self.actor[0].in_features

    def default_source(self) -> str | None:
        return {"dr": None, "oracle": "privileged", "rma": "history", "hib": "history"}[self.config.kind]

    def hib_posterior(self, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, log_var)`` of ``q(z | history)`` (log-variance clamped to [-10, 4])."""
        mu, log_var = self.history_encoder(history).chunk(2, dim=-1)
        return mu, log_var.clamp(-10.0, 4.0)

    def latent(self, privileged: torch.Tensor | None = None, history: torch.Tensor | None = None,
               eps: torch.Tensor | None = None, source: str | None = None) -> dict[str, torch.Tensor]:
        """The actor's latent ``z`` (key ``"z"``; HIB adds ``mu``/``log_var``); ``{}`` for ``dr``."""
        kind = self.config.kind
        source = source or self.default_source()
        if kind == "dr":
            return {}
        if source == "privileged":
            if kind not in ("oracle", "rma"):
                raise ValueError(f"ActorCritic: a {kind!r} policy has no privileged encoder")
            return {"z": self.priv_encoder(_need(privileged, "privileged", kind))}
        if kind == "rma":
            return {"z": self.adaptation(_need(history, "history", kind))}
        if kind == "hib":
            mu, log_var = self.hib_posterior(_need(history, "history", kind))
            z = mu if eps is None else mu + torch.exp(0.5 * log_var) * eps
            return {"z": z, "mu": mu, "log_var": log_var}
        raise ValueError(f"ActorCritic: an {kind!r} policy takes its latent from the privileged vector")

    def action_mean(self, proprio: torch.Tensor, latent: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = torch.cat([proprio, latent["z"]], dim=-1) if "z" in latent else proprio
        return self.actor(x)

    def std(self) -> torch.Tensor:
        return self.log_std.exp()

    def value(self, critic: torch.Tensor) -> torch.Tensor:
        return self.critic(critic).squeeze(-1)


def _need(x: torch.Tensor | None, what: str, kind: str) -> torch.Tensor:
    if x is None:
        raise ValueError(f"ActorCritic: a {kind!r} policy needs the {what} input")
    return x


def gaussian_log_prob(action: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    z = (action - mean) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


# ---------------------------------------------------------------------------------------------------------------
# the learner
# ---------------------------------------------------------------------------------------------------------------
class PPO:
    """PPO over one :class:`ActorCritic` (see the module docstring); inputs to every method are *raw* tensors.

    Surface shared with the other learners: ``name``, ``config``, ``obs_dim``/``act_dim``, ``modules()``,
    ``optimizers()``, ``update(rollout) -> metrics``; plus ``act``, ``value``, ``update_adaptation`` (RMA phase 2)
    and ``normalizers`` (``proprio``, ``privileged``, ``critic``).
    """

    name = "ppo"
    config_class = PPOConfig

    def __init__(self, obs_dim: int, priv_dim: int, critic_dim: int, act_dim: int, config: PPOConfig | None = None,
                 actor_critic: ActorCriticConfig | None = None, device: str = "cpu") -> None:
        self.config = config or PPOConfig()
        self.ac_config = actor_critic or ActorCriticConfig()
        self.obs_dim, self.priv_dim, self.critic_dim, self.act_dim = int(obs_dim), int(priv_dim), int(critic_dim), \
            int(act_dim)
        self.device = torch.device(device)
        self.model = ActorCritic(self.obs_dim, self.priv_dim, self.critic_dim, self.act_dim, self.ac_config)
        self.model.to(self.device)
        self.lr = self.config.lr
        trained = [p for n, p in self.model.named_parameters() if not n.startswith("adaptation.")]
        self.optimizer = torch.optim.Adam(trained, lr=self.lr)
        self.adaptation_optimizer = torch.optim.Adam(self.model.adaptation.parameters(), lr=self.config.adaptation_lr) \
            if self.kind == "rma" else None
        dims = {"proprio": self.obs_dim, "privileged": self.priv_dim, "critic": self.critic_dim}
        self.normalizers = {k: RunningNormalizer(d, clip=self.config.obs_clip, device=self.device)
                            for k, d in dims.items()}

    # -- description ------------------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.ac_config.kind

    @property
    def history_length(self) -> int:
        return self.ac_config.history_length

    def dims(self) -> dict[str, int]:
        return {"obs_dim": self.obs_dim, "priv_dim": self.priv_dim, "critic_dim": self.critic_dim,
                "act_dim": self.act_dim}

    def modules(self) -> dict[str, nn.Module]:
        return {"actor_critic": self.model}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"ppo": self.optimizer}
        if self.adaptation_optimizer is not None:
            opts["adaptation"] = self.adaptation_optimizer
        return opts

    def set_lr(self, lr: float) -> None:
        self.lr = float(lr)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    # -- inputs -----------------------------------------------------------------------------------------------
    def normalize(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Normalised copies of the ``proprio``/``privileged``/``critic``/``history`` entries present in ``batch``."""
        out = {k: self.normalizers[k].normalize(batch[k]) for k in NORMALIZED if k in batch}
        if batch.get("history") is not None:
            out["history"] = self.normalizers["proprio"].normalize(batch["history"])
        return out

    def update_normalizers(self, rollout: RolloutBuffer) -> None:
        """Merge a rollout's raw observations into the running statistics (after its update)."""
        for name in NORMALIZED:
            self.normalizers[name].update(rollout.data[name][:rollout.step])

    def _distribution(self, x: Mapping[str, torch.Tensor], eps: torch.Tensor | None, source: str | None
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        latent = self.model.latent(x.get("privileged"), x.get("history"), eps, source)
        return self.model.action_mean(x["proprio"], latent), latent

    # -- acting ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: Mapping[str, torch.Tensor], history: torch.Tensor | None = None, deterministic: bool = False,
            source: str | None = None, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Sample (or, ``deterministic``, take the mean of) the policy on raw ``obs`` (+ raw ``history``).

        Returns ``action``, ``mean``, ``std``, ``log_prob``, ``value`` (when ``obs`` has ``critic``) and, for
        HIB when sampling, the latent noise ``eps``.
        """
        x = self.normalize({**obs, "history": history})
        eps = None
        if self.kind == "hib" and not deterministic:
            eps = torch.randn(len(x["proprio"]), self.ac_config.latent_dim, device=self.device, generator=generator)
        mean, _ = self._distribution(x, eps, source)
        std = self.model.std().expand_as(mean)
        action = mean if deterministic else mean + std * torch.randn(mean.shape, device=self.device,
                                                                     generator=generator)
        out = {"action": action, "mean": mean, "std": std,
               "log_prob": gaussian_log_prob(action, mean, self.model.log_std.expand_as(mean))}
        if "critic" in x:
            out["value"] = self.model.value(x["critic"])
        if eps is not None:
            out["eps"] = eps
        return out

    @torch.no_grad()
    def value(self, critic: torch.Tensor) -> torch.Tensor:
        return self.model.value(self.normalizers["critic"].normalize(critic))

    # -- learning ----------------------------------------------------------------------------------------------
    def update(self, rollout: RolloutBuffer, generator: torch.Generator | None = None) -> dict[str, float]:
        """``epochs`` x ``minibatches`` PPO steps on a rollout whose returns are computed; mean metrics."""
        c, ac = self.config, self.ac_config
        self.model.train()
        sums: dict[str, float] = {}
        count = 0
        source = "privileged" if self.kind == "rma" else None  # PPO trains RMA's teacher (phase 1)
        keys = tuple(k for k in rollout.data if k != "history") if self.kind == "rma" else None  # (no history)
        for batch in rollout.minibatches(c.minibatches, c.epochs, generator, keys=keys):
            x = self.normalize(batch)
            mean, latent = self._distribution(x, batch.get("eps"), source)
            log_std = self.model.log_std.expand_as(mean)
            std = log_std.exp()
            log_prob = gaussian_log_prob(batch["action"], mean, log_std)
            entropy = (log_std + 0.5 * math.log(2 * math.pi * math.e)).sum(-1).mean()
            with torch.no_grad():
                kl = gaussian_kl(batch["mean"], batch["std"], mean, std).mean()
                if c.schedule == "adaptive":
                    if kl > 2.0 * c.desired_kl:
                        self.set_lr(max(c.lr_min, self.lr / 1.5))
                    elif 0.0 < kl < 0.5 * c.desired_kl:
                        self.set_lr(min(c.lr_max, self.lr * 1.5))
            surrogate = surrogate_loss(log_prob, batch["log_prob"], batch["advantage"], c.clip)
            values = self.model.value(x["critic"])
            v_loss = value_loss(values, batch["value"], batch["return"], c.clip if c.clip_value_loss else None)
            loss = surrogate + c.value_coef * v_loss - c.entropy_coef * entropy
            metrics = {"surrogate": surrogate, "value_loss": v_loss, "entropy": entropy, "kl": kl}
            if self.kind == "hib":
                kl_z = kl_to_standard_normal(latent["mu"], latent["log_var"]).mean()
                subset = slice(0, min(ac.mi_batch, len(mean)))  # minibatches are shuffled: a random subset
                nce = info_nce(latent["z"][subset], self.model.projection(x["privileged"][subset]), ac.temperature)
                loss = loss + ac.beta_kl * kl_z + ac.lambda_mi * nce
                metrics.update(kl_z=kl_z, infonce=nce)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), c.max_grad_norm) if c.max_grad_norm \
                else torch.zeros(())
            self.optimizer.step()
            with torch.no_grad():
                ratio = torch.exp(log_prob - batch["log_prob"])
                metrics.update(loss=loss, grad_norm=grad_norm, lr_mean=torch.tensor(self.lr),
                               clip_fraction=((ratio - 1.0).abs() > c.clip).float().mean())
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            count += 1
        out = {k: v / count for k, v in sums.items()}
        out.update(lr=self.lr, action_std=float(self.model.std().mean().detach()))
        return out

    def update_adaptation(self, rollout: RolloutBuffer, generator: torch.Generator | None = None
                          ) -> dict[str, float]:
        """RMA phase 2: regress the (frozen) teacher latent ``E(privileged)`` from the history, MSE."""
        if self.kind != "rma":
            raise ValueError(f"PPO.update_adaptation: only an 'rma' policy has an adaptation module, not {self.kind!r}")
        c = self.config
        self.model.train()
        losses = []
        for batch in rollout.minibatches(c.minibatches, c.adaptation_epochs, generator,
                                         keys=("proprio", "privileged", "history")):
            x = self.normalize(batch)
            with torch.no_grad():
                target = self.model.priv_encoder(x["privileged"])
            loss = (self.model.adaptation(x["history"]) - target).pow(2).mean()
            self.adaptation_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if c.max_grad_norm:
                nn.utils.clip_grad_norm_(self.model.adaptation.parameters(), c.max_grad_norm)
            self.adaptation_optimizer.step()
            losses.append(float(loss.detach()))
        return {"adaptation_mse": sum(losses) / len(losses)}

    @torch.no_grad()
    def latent_error(self, rollout: RolloutBuffer) -> float:
        """RMA: mean squared distance between the adaptation module's and the teacher's latent on a rollout."""
        d = {k: v[:rollout.step].flatten(0, 1) for k, v in rollout.data.items() if k in ("privileged", "history")}
        x = self.normalize(d)
        return float((self.model.adaptation(x["history"]) - self.model.priv_encoder(x["privileged"])).pow(2).mean())

    def new_rollout(self, steps: int, num_envs: int) -> RolloutBuffer:
        dims = {"proprio": self.obs_dim, "privileged": self.priv_dim, "critic": self.critic_dim}
        return RolloutBuffer(steps, num_envs, dims, self.act_dim, self.history_length,
                             self.ac_config.latent_dim if self.kind == "hib" else 0, self.device)


__all__ = ["KINDS", "ActorCritic", "ActorCriticConfig", "HistoryBuffer", "PPO", "PPOConfig", "RolloutBuffer",
           "compute_gae", "gaussian_kl", "info_nce", "kl_to_standard_normal", "surrogate_loss", "value_loss"]
