"""PPO and the four actor-critic kinds, on known numbers and on a tiny fake vec env (no simulator).

The fake env (:class:`FakeVecEnv`) implements the legged vec-env interface for a batch of point masses tracking a
2-D velocity command, ``v' = 0.5 v + 0.5 g a``, whose actuator gain ``g`` is hidden from the proprioceptive
observation and given in ``privileged``; commands change every 15 steps. One observation cannot tell ``g``, two
consecutive ones can, so an oracle tracks better than a memoryless (DR) policy and a history policy can close the
gap: a fast, meaningful test of the oracle/RMA/HIB machinery.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from robot_irl.core.config import ConfigError
from robot_irl.learn.networks import HistoryEncoder, RunningNormalizer
from robot_irl.learn.ppo import (
    KINDS,
    PPO,
    ActorCriticConfig,
    HistoryBuffer,
    PPOConfig,
    RolloutBuffer,
    compute_gae,
    info_nce,
    kl_to_standard_normal,
    surrogate_loss,
    value_loss,
)

pytestmark = pytest.mark.unit


class FakeVecEnv:
    """Point masses with a hidden actuator gain (see the module docstring); the legged vec-env interface."""

    act_dim, obs_dim, priv_dim, critic_dim = 2, 6, 1, 7
    dt = 0.02
    privileged_names = ("gain",)

    def __init__(self, num_envs: int = 128, seed: int = 0, gain=(0.4, 2.0), max_episode_steps: int = 60,
                 command_every: int = 15, noise: float = 0.02) -> None:
        self.num_envs, self.max_episode_steps, self.command_every = num_envs, max_episode_steps, command_every
        self.gain_range, self.noise = gain, noise
        self.rng = np.random.default_rng(seed)
        self.resample_commands = True
        n = num_envs
        self.v, self.cmd, self.last = np.zeros((n, 2)), np.zeros((n, 2)), np.zeros((n, 2))
        self.gain, self.t, self.ret, self.err = np.ones(n), np.zeros(n, int), np.zeros(n), np.zeros(n)

    def _reset_envs(self, idx) -> None:
        self.v[idx] = self.last[idx] = 0.0
        self.t[idx], self.ret[idx], self.err[idx] = 0, 0.0, 0.0
        self.gain[idx] = self.rng.uniform(*self.gain_range, size=len(idx))
        self.cmd[idx] = self.rng.uniform(-1, 1, size=(len(idx), 2))

    def _obs(self) -> dict:
        priv = ((self.gain - 1.2) / 0.8)[:, None].astype(np.float32)
        noisy = self.v + self.noise * self.rng.standard_normal(self.v.shape)
        return {"proprio": np.concatenate([self.cmd, noisy, self.last], 1).astype(np.float32), "privileged": priv,
                "critic": np.concatenate([self.cmd, self.v, self.last, priv], 1).astype(np.float32)}

    def reset(self, seed=None) -> dict:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._reset_envs(np.arange(self.num_envs))
        return self._obs()

    def step(self, action):
        a = np.clip(np.asarray(action, float), -5, 5)
        self.v = 0.5 * self.v + 0.5 * self.gain[:, None] * a
        err = np.linalg.norm(self.v - self.cmd, axis=1)
        tracking, effort = np.exp(-err ** 2 / 0.25), -0.01 * (a ** 2).sum(1)
        reward = tracking + effort
        self.last = a
        self.t += 1
        self.ret += reward
        self.err += err
        fell = np.linalg.norm(self.v, axis=1) > 4.0
        time_out = (self.t >= self.max_episode_steps) & ~fell
        done = fell | time_out
        final = self._obs()
        episodes = [{"return": float(self.ret[i]), "length": int(self.t[i]), "fell": bool(fell[i]),
                     "lin_vel_error": float(self.err[i] / self.t[i]), "ang_vel_error": 0.0,
                     "terms": {"tracking": 0.0}, "env": int(i)} for i in np.flatnonzero(done)]
        change = (self.t % self.command_every == 0) & ~done
        self.cmd[change] = self.rng.uniform(-1, 1, size=(int(change.sum()), 2))
        self._reset_envs(np.flatnonzero(done))
        info = {"time_out": time_out, "episodes": episodes, "final_observation": final,
                "terms": {"tracking": tracking.astype(np.float32), "effort": effort.astype(np.float32)}}
        return self._obs(), reward.astype(np.float32), done, info

    def get_state(self) -> dict:
        rng = np.frombuffer(json.dumps(self.rng.bit_generator.state).encode(), dtype=np.uint8)
        return {"v": self.v, "cmd": self.cmd, "last": self.last, "gain": self.gain, "t": self.t, "ret": self.ret,
                "err": self.err, "rng": rng}

    def set_state(self, state: dict) -> None:
        for k in ("v", "cmd", "last", "gain", "t", "ret", "err"):
            setattr(self, k, np.array(state[k]))
        self.rng.bit_generator.state = json.loads(bytes(np.asarray(state["rng"], dtype=np.uint8)).decode())

    def close(self) -> None:
        pass


def make_ppo(kind: str, env=FakeVecEnv, hidden=(64, 64), **ac) -> PPO:
    return PPO(env.obs_dim, env.priv_dim, env.critic_dim, env.act_dim, PPOConfig(),
               ActorCriticConfig(kind=kind, actor_hidden=hidden, critic_hidden=hidden, init_noise_std=0.5, **ac))


@torch.no_grad()
def deterministic_return(ppo: PPO, seed: int = 1000, envs: int = 256) -> float:
    """Mean return of one full episode per env, acting with the mean (and HIB's mu)."""
    env = FakeVecEnv(envs, seed=seed)
    obs = {k: torch.as_tensor(v) for k, v in env.reset().items()}
    history = HistoryBuffer(envs, ppo.history_length, env.obs_dim)
    hist = history.push(obs["proprio"])
    returns = []
    for _ in range(env.max_episode_steps):
        out = ppo.act(obs, hist if ppo.history_length > 1 else None, deterministic=True)
        raw, _, done, info = env.step(out["action"].numpy())
        returns += [e["return"] for e in info["episodes"]]
        obs = {k: torch.as_tensor(v) for k, v in raw.items()}
        history.reset(torch.as_tensor(done))
        hist = history.push(obs["proprio"])
    return float(np.mean(returns))


def train_fake(kind: str, iterations: int, seed: int = 0, tmp_path=None, **ac) -> PPO:
    from robot_irl.legged.train import LeggedRunner, LeggedTrainConfig

    config = LeggedTrainConfig.from_dict({
        "num_envs": 256, "steps_per_env": 16, "total_steps": 256 * 16 * iterations, "seed": seed, "progress": False,
        "checkpoint_every": 0, "actor_critic": {"kind": kind, "actor_hidden": [64, 64], "critic_hidden": [64, 64],
                                                 "init_noise_std": 0.5, **ac},
        # the algorithm's own (rsl_rl) settings: the fake env tests PPO, not the Go1 training recipe
        "ppo": PPOConfig().to_dict()})
    runner = LeggedRunner(config, tmp_path, env=FakeVecEnv(256, seed=seed))
    runner._start()
    while runner.iteration < config.iterations:
        phase = runner.phase()
        runner.collect(phase)
        runner.learn(phase)
        runner.iteration += 1
    return runner.ppo


# ---------------------------------------------------------------------------------------------------------------
# known numbers
# ---------------------------------------------------------------------------------------------------------------
def test_gae_on_known_numbers_with_episode_end():
    gamma, lam = 0.9, 0.8
    rewards = torch.tensor([[1.0], [1.0], [1.0]])
    values = torch.tensor([[0.5], [0.5], [0.5]])
    dones = torch.tensor([[0.0], [1.0], [0.0]])
    last = torch.tensor([2.0])
    adv, ret = compute_gae(rewards, values, dones, last, gamma, lam)
    d2 = 1.0 + gamma * 2.0 - 0.5  # bootstraps from the last value
    d1 = 1.0 - 0.5  # the episode ended: no bootstrap, and nothing flows back across the end
    d0 = 1.0 + gamma * 0.5 - 0.5
    expected = torch.tensor([[d0 + gamma * lam * d1], [d1], [d2]])
    assert torch.allclose(adv, expected)
    assert torch.allclose(ret, expected + values)


def test_time_out_is_bootstrapped_from_the_final_observation_value():
    buf = RolloutBuffer(2, 2, {"proprio": 1, "privileged": 1, "critic": 1}, act_dim=1, history=1)
    obs = {k: torch.zeros(2, 1) for k in ("proprio", "privileged", "critic")}
    out = {"action": torch.zeros(2, 1), "mean": torch.zeros(2, 1), "std": torch.ones(2, 1),
           "log_prob": torch.zeros(2), "value": torch.tensor([3.0, 3.0])}
    done, time_out = torch.tensor([True, True]), torch.tensor([True, False])  # env 0 timed out, env 1 fell
    buf.add(obs, None, out, torch.ones(2), done, time_out, gamma=0.5, bootstrap=torch.tensor([10.0, 10.0]))
    buf.add(obs, None, out, torch.ones(2), done, time_out, gamma=0.5)  # no final observation: V(s_t) (rsl_rl)
    assert buf.data["reward"].tolist() == [[1.0 + 0.5 * 10.0, 1.0], [1.0 + 0.5 * 3.0, 1.0]]
    buf.compute_returns(torch.zeros(2), gamma=0.5, lam=1.0, normalize=False)
    assert buf.data["return"][:, 0].tolist() == [6.0, 2.5]  # the time-out's return is its bootstrapped reward


def test_clipped_surrogate_and_value_losses():
    adv = torch.tensor([1.0, -1.0, 1.0])
    old = torch.zeros(3)
    new = torch.log(torch.tensor([1.5, 1.5, 0.5]))  # ratios 1.5, 1.5, 0.5
    # A>0, r=1.5: clipped to 1.2 -> -1.2; A<0, r=1.5: unclipped (pessimistic) -> 1.5; A>0, r=0.5 -> -0.5
    assert surrogate_loss(new, old, adv, 0.2).item() == pytest.approx((-1.2 + 1.5 - 0.5) / 3)
    values, old_values, returns = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0])
    # value 0 -> 2 is clipped to 0.2: max((2-1)^2, (0.2-1)^2) = 1; the second is unchanged: 1
    assert value_loss(values, old_values, returns, 0.2).item() == pytest.approx(1.0)
    assert value_loss(torch.tensor([1.1]), torch.tensor([0.0]), torch.tensor([1.0]), 0.2).item() == \
        pytest.approx((0.2 - 1.0) ** 2)  # clipped value is farther: the max takes it
    assert value_loss(values, old_values, returns, None).item() == pytest.approx(1.0)


def test_hib_kl_and_infonce_on_known_numbers():
    mu = torch.tensor([[1.0, 0.0]])
    log_var = torch.tensor([[0.0, math.log(2.0)]])
    assert kl_to_standard_normal(mu, log_var).item() == pytest.approx(0.5 * (1.0 + (1.0 - math.log(2.0))))
    assert kl_to_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max().item() == 0.0
    z = torch.eye(4)  # perfectly aligned, orthogonal pairs: logits 1/t on the diagonal, 0 elsewhere
    t = 0.5
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 3))
    assert info_nce(z, z * 3.0, t).item() == pytest.approx(expected, rel=1e-5)  # cosine: scale does not matter
    shuffled = info_nce(z, z[[1, 2, 3, 0]], t).item()
    assert shuffled > expected + 1.0  # mismatched pairs cost more


def test_kl_adaptive_learning_rate_moves_the_right_way():
    torch.manual_seed(0)

    def rollout(ppo):
        buf = ppo.new_rollout(8, 64)
        env = FakeVecEnv(64)
        obs = {k: torch.as_tensor(v) for k, v in env.reset().items()}
        for _ in range(8):
            out = ppo.act(obs)
            raw, r, d, info = env.step(out["action"].numpy())
            buf.add(obs, None, out, torch.as_tensor(r), torch.as_tensor(d), torch.as_tensor(info["time_out"]), 0.99)
            obs = {k: torch.as_tensor(v) for k, v in raw.items()}
        buf.compute_returns(ppo.value(obs["critic"]), 0.99, 0.95)
        return buf

    big = make_ppo("dr")
    big.config = big.config.replace(lr=1e-2)
    big.set_lr(1e-2)
    big.update(rollout(big))
    assert big.lr < 1e-2  # large steps overshoot the KL target: the rate falls
    small = make_ppo("dr")
    small.set_lr(1e-5)
    small.update(rollout(small))
    assert small.lr > 1e-5  # tiny steps stay far below it: the rate grows
    fixed = make_ppo("dr")
    fixed.config = fixed.config.replace(schedule="fixed")
    fixed.update(rollout(fixed))
    assert fixed.lr == fixed.config.lr


def test_the_four_kinds_build_with_the_right_inputs():
    d, p = FakeVecEnv.obs_dim, FakeVecEnv.priv_dim
    dims = {}
    for kind in KINDS:
        ppo = make_ppo(kind, latent_dim=4)
        dims[kind] = (ppo.model.actor_input_dim, ppo.history_length)
        assert ppo.model.critic[0].in_features == FakeVecEnv.critic_dim  # the critic is privileged for all
    assert dims == {"dr": (d, 1), "oracle": (d + 4, 1), "rma": (d + 4, 50), "hib": (d + 4, 8)}
    rma, hib, oracle = make_ppo("rma", latent_dim=4), make_ppo("hib", latent_dim=4), make_ppo("oracle", latent_dim=4)
    assert rma.model.adaptation.kind == "conv" and rma.model.priv_encoder[0].in_features == p
    assert hib.model.history_encoder.kind == "mlp" and hib.model.history_encoder.net[0].in_features == 8 * d
    assert hib.model.history_encoder.out_dim == 8  # mu and log-variance
    assert not hasattr(oracle.model, "adaptation") and not hasattr(make_ppo("dr").model, "priv_encoder")
    assert set(rma.optimizers()) == {"ppo", "adaptation"} and set(hib.optimizers()) == {"ppo"}
    # acting: a history policy needs its history, an oracle its privileged vector
    obs = {"proprio": torch.zeros(3, d), "privileged": torch.zeros(3, p)}
    with pytest.raises(ValueError, match="needs the history"):
        hib.act(obs)
    assert hib.act(obs, torch.zeros(3, 8, d))["action"].shape == (3, 2)
    assert "eps" in hib.act(obs, torch.zeros(3, 8, d)) and "eps" not in hib.act(obs, torch.zeros(3, 8, d), True)
    with pytest.raises(ValueError, match="needs the privileged"):
        oracle.act({"proprio": torch.zeros(3, d)})
    with pytest.raises(ValueError, match="no privileged encoder"):
        hib.act(obs, torch.zeros(3, 8, d), source="privileged")
    with pytest.raises(ValueError, match="only an 'rma' policy"):
        hib.update_adaptation(hib.new_rollout(2, 2))


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="ActorCriticConfig.kind"):
        ActorCriticConfig.from_dict({"kind": "transformer"})
    with pytest.raises(ConfigError, match="ActorCriticConfig.history"):
        ActorCriticConfig(kind="rma", history=4, history_encoder="conv")
    with pytest.raises(ConfigError, match="PPOConfig.lr"):
        PPOConfig(lr=1.0)
    with pytest.raises(ConfigError, match="PPOConfig.gamma"):
        PPOConfig.from_dict({"gamma": 1.5})


def test_history_buffer_fills_new_episodes_and_shifts():
    h = HistoryBuffer(2, 3, 1)
    first = h.push(torch.tensor([[1.0], [10.0]]))
    assert first[:, :, 0].tolist() == [[1, 1, 1], [10, 10, 10]]  # a new episode is filled with its first obs
    h.push(torch.tensor([[2.0], [20.0]]))
    h.reset(torch.tensor([False, True]))
    third = h.push(torch.tensor([[3.0], [30.0]]))
    assert third[:, :, 0].tolist() == [[1, 2, 3], [30, 30, 30]]
    assert first[:, :, 0].tolist() == [[1, 1, 1], [10, 10, 10]]  # earlier returns stay valid
    with pytest.raises(ValueError, match="expected"):
        h.push(torch.zeros(3, 1))


def test_running_normalizer_merges_batches_exactly_and_round_trips():
    x = torch.randn(1000, 3, dtype=torch.float64) * torch.tensor([1.0, 5.0, 0.0]) + 2.0
    norm = RunningNormalizer(3)
    for chunk in x.split(137):
        norm.update(chunk)
    assert torch.allclose(norm.mean, x.mean(0)) and torch.allclose(norm.var, x.var(0, unbiased=False))
    assert norm.std[2].item() == pytest.approx(norm.epsilon)  # a constant input passes through centred
    assert norm.normalize(torch.full((1, 3), 1e6)).max().item() == norm.clip
    copy = RunningNormalizer(3).load_tensors(norm.tensors("obs"), "obs")
    assert torch.equal(copy.mean, norm.mean) and torch.equal(copy.var, norm.var) and copy.count == norm.count
    with pytest.raises(ValueError, match="dim"):
        RunningNormalizer(4).load_tensors(norm.tensors("obs"), "obs")


def test_history_encoders_take_rma_and_short_histories():
    assert HistoryEncoder(6, 50, 8, "conv")(torch.zeros(5, 50, 6)).shape == (5, 8)  # RMA's 8/4, 5/1, 5/1
    assert HistoryEncoder(6, 10, 8, "conv")(torch.zeros(5, 10, 6)).shape == (5, 8)
    assert HistoryEncoder(6, 5, 8, "mlp")(torch.zeros(5, 5, 6)).shape == (5, 8)
    with pytest.raises(ValueError, match="too short"):
        HistoryEncoder(6, 4, 8, "conv")
    with pytest.raises(ValueError, match="expected"):
        HistoryEncoder(6, 5, 8, "mlp")(torch.zeros(5, 4, 6))


def test_first_minibatch_ratio_is_exactly_one():
    """Statistics are constant within a rollout and its update, so the stored log-probabilities are reproduced."""
    for kind in ("dr", "hib"):
        ppo = make_ppo(kind)
        env = FakeVecEnv(32)
        obs = {k: torch.as_tensor(v) for k, v in env.reset().items()}
        ppo.normalizers["proprio"].update(obs["proprio"] * 3)
        history = HistoryBuffer(32, ppo.history_length, env.obs_dim)
        hist = history.push(obs["proprio"])
        out = ppo.act(obs, hist if ppo.history_length > 1 else None)
        x = ppo.normalize({**obs, "history": hist if ppo.history_length > 1 else None})
        mean, _ = ppo._distribution(x, out.get("eps"), None)
        assert torch.allclose(mean, out["mean"], atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# learning on the fake env
# ---------------------------------------------------------------------------------------------------------------
def test_ppo_improves_return_on_the_fake_env(tmp_path):
    torch.manual_seed(0)
    before = deterministic_return(make_ppo("dr"))
    after = deterministic_return(train_fake("dr", 25, tmp_path=tmp_path))
    assert after > before + 10.0, (before, after)  # of at most 60 (tracking 1 per step)


@pytest.mark.slow
def test_oracle_beats_dr_and_history_policies_close_part_of_the_gap(tmp_path):
    scores = {kind: np.mean([deterministic_return(train_fake(kind, 80, seed, tmp_path / f"{kind}{seed}"))
                             for seed in (0, 1)]) for kind in KINDS}
    assert scores["oracle"] > scores["dr"] + 1.0, scores
    assert scores["rma"] > scores["dr"] and scores["hib"] > scores["dr"], scores


def test_rma_adaptation_regresses_the_teacher_latent(tmp_path):
    ppo = train_fake("rma", 12, tmp_path=tmp_path, history=8, history_encoder="mlp")
    from robot_irl.legged.train import LeggedRunner, LeggedTrainConfig

    config = LeggedTrainConfig.from_dict({"num_envs": 256, "steps_per_env": 16, "total_steps": 256 * 16 * 10,
                                          "progress": False, "actor_critic": ppo.ac_config.to_dict()})
    runner = LeggedRunner(config, tmp_path / "phase2", env=FakeVecEnv(256, seed=3))
    runner.ppo = ppo
    runner._start()
    errors = []
    for _ in range(8):
        runner.collect("adaptation")
        errors.append(runner.learn("adaptation")["latent_mse"])
    assert errors[-1] < 0.5 * errors[0], errors


# ---------------------------------------------------------------------------------------------------------------
# the runner on the fake env: files, resume
# ---------------------------------------------------------------------------------------------------------------
def _runner_config(kind: str, iterations: int):
    from robot_irl.legged.train import LeggedTrainConfig

    return LeggedTrainConfig.from_dict({
        "num_envs": 16, "steps_per_env": 8, "total_steps": 16 * 8 * iterations, "progress": False,
        "checkpoint_every": 2, "ppo": {"minibatches": 2, "epochs": 2},
        "actor_critic": {"kind": kind, "actor_hidden": [16], "critic_hidden": [16], "history": 8}})


@pytest.mark.parametrize("kind", ["hib", "rma"])
def test_resume_continues_exactly(tmp_path, kind):
    from robot_irl.legged.train import load_ppo_checkpoint, train_legged

    config = _runner_config(kind, 6)
    whole = train_legged(config, tmp_path / "whole", env=FakeVecEnv(16, seed=0))
    part = train_legged(config, tmp_path / "part", env=FakeVecEnv(16, seed=0), stop_at=3)
    assert part["iterations"] == 3
    resumed = train_legged(config, tmp_path / "part", resume=True, env=FakeVecEnv(16, seed=99))
    assert resumed["resumed"] and resumed["iterations"] == whole["iterations"] == 6
    a, _ = load_ppo_checkpoint(tmp_path / "whole")
    b, config_b = load_ppo_checkpoint(tmp_path / "part")
    for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), name
    for name in a.normalizers:
        assert torch.equal(a.normalizers[name].mean, b.normalizers[name].mean)
    assert a.lr == b.lr and config_b["step"] == whole["env_steps"]
    rows = [json.loads(line) for line in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == list(range(1, 7))
    phases = [r["phase"] for r in rows]
    assert phases == (["rl"] * 5 + ["adaptation"] if kind == "rma" else ["rl"] * 6)


def test_runner_writes_checkpoint_logs_and_curves(tmp_path):
    from robot_irl.legged.train import LeggedTrainConfig, train_legged

    config = LeggedTrainConfig.from_dict({"num_envs": 64, "steps_per_env": 16, "total_steps": 64 * 16 * 8,
                                          "progress": False, "log_every": 2, "actor_critic": {
                                              "kind": "oracle", "actor_hidden": [16], "critic_hidden": [16]}})
    summary = train_legged(config, tmp_path / "run", env=FakeVecEnv(64))
    out = tmp_path / "run"
    for name in ("config.json", "metrics.jsonl", "curves.png", "checkpoint/model.safetensors",
                 "checkpoint/normalizer.safetensors", "checkpoint/runner_state.safetensors"):
        assert (out / name).is_file(), name
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tb").iterdir())
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [2, 4, 6, 8]
    assert all(k in rows[-1] for k in ("surrogate", "value_loss", "kl", "lr", "env_samples_per_s", "learn_s"))
    assert "episode_return" in rows[-1] and "term_tracking" in rows[-1]
    assert summary["env_steps"] == 64 * 16 * 8 and summary["rl_steps"] == summary["env_steps"]
    with pytest.raises(FileExistsError):
        train_legged(config, out, env=FakeVecEnv(64))  # a used run folder is refused without resume


def test_train_config_validation():
    from robot_irl.legged.train import LeggedTrainConfig

    with pytest.raises(ConfigError, match="LeggedTrainConfig.teacher"):
        LeggedTrainConfig(teacher="runs/x")  # only RMA takes a teacher
    with pytest.raises(ConfigError, match="LeggedTrainConfig.device"):
        LeggedTrainConfig(device="tpu")
    with pytest.raises(ConfigError, match="rma_teacher_fraction"):
        LeggedTrainConfig(rma_teacher_fraction=1.0)
    rma = LeggedTrainConfig(total_steps=64 * 24 * 10, actor_critic=ActorCriticConfig(kind="rma"))
    assert (rma.iterations, rma.teacher_iterations) == (10, 8)
