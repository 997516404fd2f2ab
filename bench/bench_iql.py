"""IQL updates/s: robot_irl's IQL against a straightforward CORL-style torch implementation, side by side.

Both run the same update (the paper's: expectile V on the min of the target critics, then AWR actor and twin-Q
regression with the updated V, Polyak 0.005, cosine actor-lr decay) at batch 256 on the same synthetic
hopper-sized data (11-d observations, 3-d actions, 1M transitions), on CPU with 2 threads by default.

The reference follows CORL's ``algorithms/offline/iql.py`` design: a ``ReplayBuffer`` object sampled each step with
numpy indices, separate ``V``, two separate Q networks (``TwinQ``), a ``MultivariateNormal`` Gaussian actor, three
Adam optimisers (default, per-parameter implementation), ``.item()`` on every loss each step and a per-parameter
``soft_update``. Ours: the trainer's packed one-gather sampling, fused twin critics (one batched matmul per layer),
fused Adam, one backward pass for actor and critics, ``_foreach_lerp_`` for the target, metrics read back only
every 100 steps (as the trainer logs); optionally ``torch.compile`` of the loss computations.

Before timing, a sanity check: the reference is given our initial weights and both take the same 5 minibatches;
their losses and final weights must agree (to float32 round-off).

Timing alternates rounds of ``--round`` updates (ours, reference, ours compiled, ...) so that load from other
processes hits every variant alike; the figure is the median over rounds, and the ratio the median of per-round
ratios. ``--bf16`` adds ours with ``TrainerConfig.matmul_precision="medium"`` (bfloat16 matmul inputs, fp32
accumulation: not the reference's arithmetic, so a separate row). Run:
    .venv/bin/python bench/bench_iql.py                  # add --compile and/or --bf16 for those rows
"""
from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import MultivariateNormal

from robot_irl.learn.iql import IQL, IQLConfig
from robot_irl.learn.trainer import Trainer, TrainerConfig

OBS, ACT, BATCH = 11, 3, 256
EXP_ADV_MAX = 100.0


# ---------------------------------------------------------------------------------------------------------------
# the CORL-style reference (CORL algorithms/offline/iql.py, update order as in the paper's code)
# ---------------------------------------------------------------------------------------------------------------
class ReplayBuffer:
    def __init__(self, state_dim: int, action_dim: int, buffer_size: int, device: str = "cpu") -> None:
        self._buffer_size, self._pointer, self._size, self._device = buffer_size, 0, 0, device
        self._states = torch.zeros((buffer_size, state_dim), dtype=torch.float32, device=device)
        self._actions = torch.zeros((buffer_size, action_dim), dtype=torch.float32, device=device)
        self._rewards = torch.zeros((buffer_size, 1), dtype=torch.float32, device=device)
        self._next_states = torch.zeros((buffer_size, state_dim), dtype=torch.float32, device=device)
        self._dones = torch.zeros((buffer_size, 1), dtype=torch.float32, device=device)

    def _to_tensor(self, data: np.ndarray) -> torch.Tensor:
        return torch.tensor(data, dtype=torch.float32, device=self._device)

    def load_d4rl_dataset(self, data: dict[str, np.ndarray]) -> None:
        n = data["observations"].shape[0]
        self._states[:n] = self._to_tensor(data["observations"])
        self._actions[:n] = self._to_tensor(data["actions"])
        self._rewards[:n] = self._to_tensor(data["rewards"][..., None])
        self._next_states[:n] = self._to_tensor(data["next_observations"])
        self._dones[:n] = self._to_tensor(data["terminals"][..., None])
        self._size += n
        self._pointer = min(self._size, n)

    def sample(self, batch_size: int) -> list[torch.Tensor]:
        indices = np.random.randint(0, min(self._size, self._pointer), size=batch_size)
        return [self._states[indices], self._actions[indices], self._rewards[indices],
                self._next_states[indices], self._dones[indices]]


class Squeeze(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(dim=-1)


class MLP(nn.Module):
    def __init__(self, dims, output_activation_fn=None, squeeze_output: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(len(dims) - 2):
            layers += [nn.Linear(dims[i], dims[i + 1]), nn.ReLU()]
        layers.append(nn.Linear(dims[-2], dims[-1]))
        if output_activation_fn is not None:
            layers.append(output_activation_fn())
        if squeeze_output:
            layers.append(Squeeze())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class GaussianPolicy(nn.Module):
    def __init__(self, state_dim: int, act_dim: int, log_std_min: float, log_std_max: float) -> None:
        super().__init__()
        self.net = MLP([state_dim, 256, 256, act_dim], output_activation_fn=nn.Tanh)
        self.log_std = nn.Parameter(torch.zeros(act_dim, dtype=torch.float32))
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, obs: torch.Tensor) -> MultivariateNormal:
        mean = self.net(obs)
        std = torch.exp(self.log_std.clamp(self.log_std_min, self.log_std_max))
        return MultivariateNormal(mean, scale_tril=torch.diag(std))


class TwinQ(nn.Module):
    def __init__(self, state_dim: int, action_dim: int) -> None:
        super().__init__()
        dims = [state_dim + action_dim, 256, 256, 1]
        self.q1, self.q2 = MLP(dims, squeeze_output=True), MLP(dims, squeeze_output=True)

    def both(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sa = torch.cat([state, action], 1)
        return self.q1(sa), self.q2(sa)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.min(*self.both(state, action))


class ValueFunction(nn.Module):
    def __init__(self, state_dim: int) -> None:
        super().__init__()
        self.v = MLP([state_dim, 256, 256, 1], squeeze_output=True)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.v(state)


def asymmetric_l2_loss(u: torch.Tensor, tau: float) -> torch.Tensor:
    return torch.mean(torch.abs(tau - (u < 0).float()) * u**2)


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    for target_param, source_param in zip(target.parameters(), source.parameters()):
        target_param.data.copy_((1 - tau) * target_param.data + tau * source_param.data)


class ImplicitQLearning:
    def __init__(self, config: IQLConfig, max_steps: int) -> None:
        self.qf, self.vf = TwinQ(OBS, ACT), ValueFunction(OBS)
        self.q_target = copy.deepcopy(self.qf).requires_grad_(False)
        self.actor = GaussianPolicy(OBS, ACT, config.log_std_min, config.log_std_max)
        self.v_optimizer = torch.optim.Adam(self.vf.parameters(), lr=config.value_lr)
        self.q_optimizer = torch.optim.Adam(self.qf.parameters(), lr=config.critic_lr)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.actor_lr_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.actor_optimizer, max_steps)
        self.iql_tau, self.beta, self.discount, self.tau = config.expectile, config.beta, config.gamma, config.polyak
        self.total_it = 0

    def _update_v(self, observations, actions, log_dict) -> torch.Tensor:
        with torch.no_grad():
            target_q = self.q_target(observations, actions)
        v = self.vf(observations)
        v_loss = asymmetric_l2_loss(target_q - v, self.iql_tau)
        log_dict["value_loss"] = v_loss.item()
        self.v_optimizer.zero_grad()
        v_loss.backward()
        self.v_optimizer.step()
        return target_q

    def _update_policy(self, adv, observations, actions, log_dict) -> None:
        exp_adv = torch.exp(self.beta * adv.detach()).clamp(max=EXP_ADV_MAX)
        bc_losses = -self.actor(observations).log_prob(actions)
        policy_loss = torch.mean(exp_adv * bc_losses)
        log_dict["actor_loss"] = policy_loss.item()
        self.actor_optimizer.zero_grad()
        policy_loss.backward()
        self.actor_optimizer.step()
        self.actor_lr_schedule.step()

    def _update_q(self, next_v, observations, actions, rewards, terminals, log_dict) -> None:
        targets = rewards + (1.0 - terminals.float()) * self.discount * next_v.detach()
        qs = self.qf.both(observations, actions)
        q_loss = sum(F.mse_loss(q, targets) for q in qs) / len(qs)
        log_dict["q_loss"] = q_loss.item()
        self.q_optimizer.zero_grad()
        q_loss.backward()
        self.q_optimizer.step()
        soft_update(self.q_target, self.qf, self.tau)

    def train(self, batch: list[torch.Tensor]) -> dict[str, float]:
        self.total_it += 1
        observations, actions, rewards, next_observations, dones = batch
        log_dict: dict[str, float] = {}
        target_q = self._update_v(observations, actions, log_dict)  # 1. V
        with torch.no_grad():  # the updated V, for the advantage and the TD target
            adv = target_q - self.vf(observations)
            next_v = self.vf(next_observations)
        rewards, dones = rewards.squeeze(dim=-1), dones.squeeze(dim=-1)
        self._update_policy(adv, observations, actions, log_dict)  # 2. actor
        self._update_q(next_v, observations, actions, rewards, dones, log_dict)  # 3. Q, then the target
        return log_dict


# ---------------------------------------------------------------------------------------------------------------
# same weights, same batches: same losses
# ---------------------------------------------------------------------------------------------------------------
def copy_weights_into_reference(ours: IQL, ref: ImplicitQLearning) -> None:
    """Our fused critics' member ``i`` -> the reference's ``q{i+1}`` (weights (E, in, out) -> Linear (out, in))."""
    with torch.no_grad():
        for critic, twin in ((ours.q, ref.qf), (ours.q_target, ref.q_target)):
            linears = [m for m in critic.net if hasattr(m, "ensemble")]
            for i, q in enumerate((twin.q1, twin.q2)):
                for ens, lin in zip(linears, [m for m in q.net if isinstance(m, nn.Linear)]):
                    lin.weight.copy_(ens.weight[i].T)
                    lin.bias.copy_(ens.bias[i, 0])
        ref.vf.v.net.load_state_dict(ours.value.state_dict())
        ref.actor.net.net.load_state_dict(ours.actor.net.state_dict())
        ref.actor.log_std.copy_(ours.actor.log_std)


def sanity_check(config: IQLConfig, steps: int = 5) -> float:
    torch.manual_seed(0)
    ours = IQL(OBS, ACT, config.replace(compile=False))
    ref = ImplicitQLearning(config, config.schedule_steps)
    copy_weights_into_reference(ours, ref)
    g = torch.Generator().manual_seed(1)
    worst = 0.0
    for _ in range(steps):
        obs, nxt = torch.randn(BATCH, OBS, generator=g), torch.randn(BATCH, OBS, generator=g)
        act = torch.rand(BATCH, ACT, generator=g) * 1.8 - 0.9
        rew, done = torch.randn(BATCH, generator=g), (torch.rand(BATCH, generator=g) < 0.1).float()
        m = ours.update({"obs": obs, "action": act, "reward": rew, "next_obs": nxt, "done": done})
        r = ref.train([obs, act, rew[:, None], nxt, done[:, None]])
        for a, b in (("v_loss", "value_loss"), ("actor_loss", "actor_loss"), ("q_loss", "q_loss")):
            rel = abs(float(m[a]) - r[b]) / max(abs(r[b]), 1e-6)
            assert rel < 1e-4, f"sanity check: {a} {float(m[a])} vs reference {r[b]}"
            worst = max(worst, rel)
    ref_params = {"value": ref.vf.v.net.state_dict(), "actor": ref.actor.net.net.state_dict()}
    for name, state in ref_params.items():
        module = ours.value if name == "value" else ours.actor.net
        for (k, a), b in zip(module.state_dict().items(), state.values()):
            assert torch.allclose(a, b, atol=1e-5), f"sanity check: {name}.{k} differs after {steps} updates"
    for critic, twin in ((ours.q, ref.qf), (ours.q_target, ref.q_target)):
        linears = [m for m in critic.net if hasattr(m, "ensemble")]
        for i, q in enumerate((twin.q1, twin.q2)):
            for ens, lin in zip(linears, [m for m in q.net if isinstance(m, nn.Linear)]):
                assert torch.allclose(ens.weight[i].T, lin.weight, atol=1e-5), "sanity check: critics differ"
    return worst


# ---------------------------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------------------------
def synthetic_transitions(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((n, OBS), dtype=np.float32)
    return {"observations": obs, "actions": rng.uniform(-1, 1, (n, ACT)).astype(np.float32),
            "rewards": rng.standard_normal(n, dtype=np.float32),
            "next_observations": obs + 0.01 * rng.standard_normal((n, OBS), dtype=np.float32),
            "terminals": rng.random(n) < 0.001}


class Ours:
    """The trainer's per-step work: one packed gather, ``IQL.update``, metrics read back every 100 steps."""

    def __init__(self, data: dict[str, np.ndarray], config: IQLConfig, precision: str = "highest") -> None:
        self.precision = precision  # TrainerConfig.matmul_precision
        torch.manual_seed(0)
        self.iql = IQL(OBS, ACT, config)
        tensors = {"obs": data["observations"], "action": data["actions"], "reward": data["rewards"],
                   "next_obs": data["next_observations"], "done": data["terminals"].astype(np.float32)}
        self.trainer = Trainer(self.iql, {k: torch.from_numpy(v) for k, v in tensors.items()},
                               TrainerConfig(batch_size=BATCH, device="cpu", tensorboard=False, progress=False),
                               "/nonexistent", {})
        self.pending: list = []

    def step(self) -> None:
        self.pending.append(self.iql.update(self.trainer.sample()))
        if len(self.pending) == 100:
            Trainer.mean_metrics(self.pending)
            self.pending = []


class Reference:
    def __init__(self, data: dict[str, np.ndarray], config: IQLConfig) -> None:
        torch.manual_seed(0)
        np.random.seed(0)
        self.buffer = ReplayBuffer(OBS, ACT, len(data["observations"]))
        self.buffer.load_d4rl_dataset(data)
        self.iql = ImplicitQLearning(config, config.schedule_steps)

    def step(self) -> None:
        self.iql.train(self.buffer.sample(BATCH))


def rate(impl, n: int) -> float:
    torch.set_float32_matmul_precision(getattr(impl, "precision", "highest"))
    start = time.perf_counter()
    for _ in range(n):
        impl.step()
    elapsed = time.perf_counter() - start
    torch.set_float32_matmul_precision("highest")
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--round", type=int, default=100, help="updates per variant per round")
    parser.add_argument("--compile", action="store_true", help="also time ours with torch.compile")
    parser.add_argument("--bf16", action="store_true", help="also time ours with bfloat16 matmuls "
                                                            "(TrainerConfig.matmul_precision='medium')")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = IQLConfig(schedule_steps=1_000_000)
    worst = sanity_check(config)
    print(f"sanity check: same weights + same 5 batches -> losses agree (max relative difference {worst:.1e}), "
          "weights agree", flush=True)
    data = synthetic_transitions(args.transitions)
    variants = {"CORL-style reference": Reference(data, config), "robot_irl IQL": Ours(data, config)}
    if args.bf16:
        variants["robot_irl IQL, matmul_precision=medium (bf16 matmuls)"] = Ours(data, config, "medium")
    compile_s = None
    if args.compile:
        variants["robot_irl IQL + torch.compile"] = Ours(data, config.replace(compile=True))
        start = time.perf_counter()
        for _ in range(3):
            variants["robot_irl IQL + torch.compile"].step()
        compile_s = time.perf_counter() - start
        print(f"torch.compile: first 3 updates (compilation) took {compile_s:.0f} s", flush=True)
    for impl in variants.values():  # warm-up
        rate(impl, 20)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(args.rounds):
        for name, impl in variants.items():
            rates[name].append(rate(impl, args.round))
        print(f"round {i + 1}/{args.rounds}: " + ", ".join(f"{n} {r[-1]:.0f}/s" for n, r in rates.items()),
              flush=True)
    ref = np.array(rates["CORL-style reference"])
    print(f"\ncommand: .venv/bin/python bench/bench_iql.py --threads {args.threads} --rounds {args.rounds} "
          f"--round {args.round}{' --compile' if args.compile else ''}{' --bf16' if args.bf16 else ''}")
    print(f"\n| IQL update, batch {BATCH}, {args.transitions:,} transitions ({OBS}-d obs, {ACT}-d act), CPU "
          f"{args.threads} threads | updates/s (median of {args.rounds}) | min-max | vs reference |")
    print("|---|---:|---:|---:|")
    for name, values in rates.items():
        v = np.array(values)
        ratio = float(np.median(v / ref))
        print(f"| {name} | {np.median(v):.0f} | {v.min():.0f}-{v.max():.0f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
