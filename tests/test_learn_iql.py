"""robot_irl.learn.iql and the TD data pipeline: the maths on known numbers, the update order, terminals vs
timeouts, reward scaling, D4RL files to a policy that acts, exact resume, and IQL beating BC where it should."""
from __future__ import annotations

import copy
import json

import h5py
import numpy as np
import pytest
import torch

from robot_irl.core.config import ConfigError
from robot_irl.core.features import Feature, vector
from robot_irl.data.d4rl import D4RLFormatError, export_d4rl, load_d4rl, qlearning_dataset
from robot_irl.data.lerobot_io import LeRobotRecorder
from robot_irl.data.synthetic import make_synthetic_d4rl, synthetic_d4rl_arrays
from robot_irl.learn.datasets import (
    ActionCodec,
    FeatureSpec,
    LearningDataError,
    ObservationEncoder,
    OfflineData,
    TDDataConfig,
    dataset_kind,
    load_any,
    load_d4rl_offline,
    reward_transform,
)
from robot_irl.learn.iql import IQL, IQLConfig, awr_weights, cosine_lr, expectile_loss, td_target
from robot_irl.learn.networks import EnsembleCritic, EnsembleLinear, Normalizer
from robot_irl.learn.policy import LearnedPolicy
from robot_irl.learn.trainer import Trainer, TrainerConfig, load_checkpoint, train_policy

pytestmark = pytest.mark.unit

SMALL = {"hidden": [32, 32]}


def _trainer(steps: int, **kw) -> TrainerConfig:
    base = {"steps": steps, "batch_size": 64, "log_every": 20, "progress": False, "num_threads": 1,
            "tensorboard": False, "device": "cpu"}
    return TrainerConfig(**{**base, **kw})


def _batch(n: int = 32, obs: int = 3, act: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(n, obs, generator=g), "action": torch.rand(n, act, generator=g) * 1.8 - 0.9,
            "reward": torch.randn(n, generator=g), "next_obs": torch.randn(n, obs, generator=g),
            "done": (torch.rand(n, generator=g) < 0.3).float()}


# -- the maths ----------------------------------------------------------------------------------------------------
def test_expectile_loss_on_known_numbers():
    diff = torch.tensor([1.0, -2.0])  # target - prediction
    assert expectile_loss(diff, 0.7).item() == pytest.approx((0.7 * 1 + 0.3 * 4) / 2)
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * (1 + 4) / 2)  # tau 0.5: half the MSE
    assert expectile_loss(diff, 0.9).item() == pytest.approx((0.9 * 1 + 0.1 * 4) / 2)


def test_awr_weights_are_clipped_and_td_target_stops_at_terminals():
    w = awr_weights(torch.tensor([-1.0, 0.0, 1.0, 10.0]), beta=3.0, max_weight=100.0)
    assert w.tolist() == pytest.approx([np.exp(-3.0), 1.0, np.exp(3.0), 100.0], rel=1e-6)
    target = td_target(torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0]), torch.tensor([10.0, 10.0]), 0.9)
    assert target.tolist() == pytest.approx([10.0, 1.0])  # a terminal does not bootstrap
    assert cosine_lr(3e-4, 0, 100) == pytest.approx(3e-4)
    assert cosine_lr(3e-4, 50, 100) == pytest.approx(1.5e-4)
    assert cosine_lr(3e-4, 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert cosine_lr(3e-4, 7, 0) == 3e-4


def test_ensemble_linear_is_independent_linear_layers():
    layer = EnsembleLinear(5, 4, ensemble=3)
    x = torch.randn(7, 5)
    out = layer(x)
    assert out.shape == (3, 7, 4)
    for i in range(3):
        assert torch.allclose(out[i], x @ layer.weight[i] + layer.bias[i], atol=1e-6)
    assert not torch.allclose(layer.weight[0], layer.weight[1])  # members are initialised independently
    critic = EnsembleCritic(5, 2, hidden=(8,), layer_norm=True)
    assert critic(torch.randn(6, 3), torch.randn(6, 2)).shape == (2, 6)


def test_iql_config_defaults_are_the_papers_and_are_validated():
    c = IQLConfig()
    assert (c.expectile, c.beta, c.gamma, c.polyak, c.exp_adv_max) == (0.7, 3.0, 0.99, 0.005, 100.0)
    assert (c.actor_lr, c.critic_lr, c.value_lr, c.hidden, c.actor_lr_schedule) == (3e-4, 3e-4, 3e-4, (256, 256),
                                                                                     "cosine")
    with pytest.raises(ConfigError, match="IQLConfig.expectile"):
        IQLConfig(expectile=1.0)
    with pytest.raises(ConfigError, match="IQLConfig.actor"):
        IQLConfig.from_dict({"actor": "mixture"})
    assert IQL.resolve_config(IQLConfig(), 1234).schedule_steps == 1234
    assert IQL.resolve_config(IQLConfig(schedule_steps=9), 1234).schedule_steps == 9


# -- the update -----------------------------------------------------------------------------------------------------
def test_update_order_losses_and_polyak():
    """V steps first; the actor and Q losses use the *updated* V; the target moves 0.005 of the way to Q."""
    torch.manual_seed(0)
    iql = IQL(3, 2, IQLConfig(hidden=(16, 16), schedule_steps=100, value_lr=1e-2))
    order: list[str] = []
    for name, opt in iql.optimizers().items():
        opt.register_step_post_hook(lambda *_, name=name: order.append(name))
    before = {k: copy.deepcopy(m) for k, m in iql.modules().items()}
    batch = _batch()
    metrics = iql.update(batch)
    assert order == ["value", "actor", "q"]
    assert all(torch.is_tensor(v) and v.dim() == 0 and not v.requires_grad for v in metrics.values())

    obs, act, rew, nxt, done = (batch[k] for k in ("obs", "action", "reward", "next_obs", "done"))
    with torch.no_grad():
        q_min = before["q_target"](obs, act).min(0).values
        assert metrics["v_loss"].item() == pytest.approx(
            expectile_loss(q_min - before["value"](obs).squeeze(-1), 0.7).item(), rel=1e-5)
        v_new, v_next = iql.value(obs).squeeze(-1), iql.value(nxt).squeeze(-1)  # V after its step
        assert not torch.allclose(v_new, before["value"](obs).squeeze(-1))
        target = rew + 0.99 * (1 - done) * v_next
        q_loss = (before["q"](obs, act) - target).pow(2).mean()
        assert metrics["q_loss"].item() == pytest.approx(q_loss.item(), rel=1e-5)
        weights = torch.exp(3.0 * (q_min - v_new)).clamp(max=100.0)
        actor_loss = -(weights * before["actor"].log_prob(obs, act)).mean()
        assert metrics["actor_loss"].item() == pytest.approx(actor_loss.item(), rel=1e-5)
        for (name, old), new_q, new_t in zip(before["q_target"].state_dict().items(), iql.q.state_dict().values(),
                                             iql.q_target.state_dict().values()):
            assert torch.allclose(new_t, 0.995 * old + 0.005 * new_q, atol=1e-7), name
    assert iql.updates == 1 and iql.actor_optimizer.param_groups[0]["lr"] == pytest.approx(3e-4)
    iql.update(batch)
    assert iql.actor_optimizer.param_groups[0]["lr"] == pytest.approx(cosine_lr(3e-4, 1, 100))


def test_actor_dropout_reaches_the_actor_and_acting_is_deterministic():
    iql = IQL(4, 2, IQLConfig(hidden=(64, 64), actor_dropout=0.5))
    assert sum(isinstance(m, torch.nn.Dropout) for m in iql.actor.modules()) == 2
    obs = torch.randn(8, 4)
    iql.actor.train()
    assert not torch.equal(iql.actor(obs)[0], iql.actor(obs)[0])  # dropout active while training
    assert torch.equal(iql.predict(obs), iql.predict(obs))  # acting uses the mean, no dropout
    assert iql.predict(obs).abs().max() < 1  # tanh on the mean
    det = IQL(4, 2, IQLConfig(hidden=(16,), actor="deterministic"))
    metrics = det.update(_batch(obs=4))
    assert np.isfinite(metrics["actor_loss"].item()) and det.predict(obs).shape == (8, 2)


def test_trainer_reads_tensor_metrics_back_only_at_log_steps_and_stops_on_nan(tmp_path):
    records = Trainer.mean_metrics([{"a": torch.tensor(1.0), "b": 2.0}, {"a": torch.tensor(3.0), "b": 4.0}])
    assert records == {"a": 2.0, "b": 3.0}

    class Diverging:
        name, obs_dim, act_dim, config = "diverging", 1, 1, IQLConfig()

        def __init__(self):
            self.net = torch.nn.Linear(1, 1)
            self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1)

        def modules(self):
            return {"net": self.net}

        def optimizers(self):
            return {"net": self.opt}

        def update(self, batch):
            return {"loss": torch.tensor(float("nan"))}

    data = {"obs": torch.zeros(10, 1), "action": torch.zeros(10, 1)}
    with pytest.raises(FloatingPointError, match=r"\['loss'\] became non-finite at step 20"):
        Trainer(Diverging(), data, _trainer(50), tmp_path, {}).run()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_update_never_synchronises_with_the_host():
    iql = IQL(11, 3, IQLConfig(hidden=(64, 64), schedule_steps=10), device="cuda")
    data = {k: v.cuda() for k, v in _batch(512, 11, 3).items()}
    trainer = Trainer(iql, data, _trainer(10, device="cuda"), "/nonexistent", {})
    iql.update(trainer.sample())  # warm-up (lazy CUDA initialisation may synchronise)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            metrics = iql.update(trainer.sample())
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert metrics["q_loss"].device.type == "cuda"


@pytest.mark.slow
def test_compiled_update_matches_eager():
    torch.manual_seed(0)
    eager = IQL(3, 2, IQLConfig(hidden=(16, 16), schedule_steps=10))
    torch.manual_seed(0)
    compiled = IQL(3, 2, IQLConfig(hidden=(16, 16), schedule_steps=10, compile=True))
    for step in range(3):
        a, b = eager.update(_batch(seed=step)), compiled.update(_batch(seed=step))
        for k in a:
            assert a[k].item() == pytest.approx(b[k].item(), rel=1e-4, abs=1e-6), k


# -- data: terminals, timeouts, rewards -----------------------------------------------------------------------------
def test_d4rl_transitions_match_qlearning_dataset(tmp_path):
    raw = synthetic_d4rl_arrays(n_episodes=12, length=15, seed=3)  # 4 terminals, 8 timeouts
    assert raw["terminals"].any() and raw["timeouts"].any()
    path = export_d4rl(tmp_path / "pm.hdf5", raw)
    data, encoder, codec = load_d4rl_offline(path)
    frames, nxt, done = data.transitions("drop")
    ref = qlearning_dataset(load_d4rl(path))
    if raw["terminals"][-1]:  # qlearning_dataset drops the very last row even when it is terminal
        frames, nxt, done = frames[:-1], nxt[:-1], done[:-1]
    assert np.array_equal(data.observations[frames], ref["observations"])
    assert np.array_equal(data.observations[nxt][~done], ref["next_observations"][~ref["terminals"]])
    assert np.array_equal(data.rewards[frames], ref["rewards"]) and np.array_equal(done, ref["terminals"])
    assert encoder.feature_names == [f"observation.state:obs.{i}" for i in range(4)] and codec.mode == "absolute"
    # bootstrap_self keeps the timeouts, bootstrapping from the frame itself
    frames2, nxt2, done2 = data.transitions("bootstrap_self")
    timeouts = np.flatnonzero(raw["timeouts"])
    assert len(frames2) == len(data) and np.array_equal(nxt2[timeouts], timeouts) and not done2[timeouts].any()
    t = data.transition_tensors("cpu", "drop")
    assert t["done"].sum().item() == raw["terminals"].sum() and len(t["obs"]) == len(data) - raw["timeouts"].sum()


def _point_mass_dataset(root, rewards_true: bool = True):
    """Two 6-frame episodes of a 4-d state; episode 0 succeeds from frame 3 on (held), episode 1 never."""
    obs_f = {"observation.state": vector(["x", "y", "vx", "vy"])}
    act_f = {"action": vector(["fx", "fy"])}
    extra = {"next.reward": Feature("float32", (1,)), "next.success": Feature("bool", (1,))}
    if rewards_true:
        extra["next.reward_true"] = Feature("float32", (1,))
    rng = np.random.default_rng(0)
    with LeRobotRecorder(root, "local/pm", 20, obs_f, act_f, "mock", use_videos=False, extra_features=extra) as rec:
        t = 0.0
        for ep in range(2):
            rec.start_episode()
            for i in range(6):
                success = ep == 0 and i >= 3
                t += 0.05
                extras = {"next.reward": np.float32(i), "next.success": np.array([success])}
                if rewards_true:
                    extras["next.reward_true"] = np.float32(10 + i)
                rec.add_frame({"observation.state": rng.normal(size=4).astype(np.float32)},
                              rng.uniform(-1, 1, 2).astype(np.float32), "reach", t, extras)
            rec.save_episode()
    return root


@pytest.mark.data
def test_lerobot_terminal_on_success_reward_key_and_scaling(tmp_path):
    root = _point_mass_dataset(tmp_path / "ds")
    data, encoder, codec, info = load_any(root, TDDataConfig(), require_reward=True)
    assert info["kind"] == "lerobot" and info["data"]["reward_key"] == "next.reward" and info["terminals"] == 0
    frames, _, done = data.transitions()
    assert frames.tolist() == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10] and not done.any()  # both last frames dropped
    assert codec.mode == "absolute" and not encoder.spec.relative_positions  # fitted to the data's features

    data, *_ = load_any(root, TDDataConfig(terminal_on_success=True))
    frames, nxt, done = data.transitions()
    assert frames.tolist() == [0, 1, 2, 3, 6, 7, 8, 9, 10]  # the task ended at frame 3: frames 4, 5 are dropped
    assert done.tolist() == [False, False, False, True] + [False] * 5
    assert nxt[:3].tolist() == [1, 2, 3]

    data, *_ , info = load_any(root, TDDataConfig(reward_key="next.reward_true", reward_mode="antmaze",
                                                   reward_scale=2.0, reward_shift=0.5))
    assert data.rewards[:6].tolist() == pytest.approx([(10 + i - 1) * 2 + 0.5 for i in range(6)])
    assert (info["reward_scale"], info["reward_shift"]) == (2.0, -1.5)
    with pytest.raises(LearningDataError, match="no reward column 'next.reward_x'"):
        load_any(root, TDDataConfig(reward_key="next.reward_x"), require_reward=True)


def test_reward_transform_modes():
    rewards = np.array([1.0, 1.0, 1.0, 3.0, 3.0], np.float32)  # returns 3 and 6
    episodes = np.array([0, 0, 0, 1, 1])
    assert reward_transform(TDDataConfig(), rewards, episodes) == (1.0, 0.0)
    scale, shift = reward_transform(TDDataConfig(reward_mode="d4rl_locomotion"), rewards, episodes)
    assert scale == pytest.approx(1000.0 / 3.0) and shift == 0.0
    assert reward_transform(TDDataConfig(reward_mode="antmaze"), rewards, episodes) == (1.0, -1.0)
    assert reward_transform(TDDataConfig(reward_scale=0.1, reward_shift=2.0), rewards, episodes) == (0.1, 2.0)
    with pytest.raises(LearningDataError, match="different returns"):
        reward_transform(TDDataConfig(reward_mode="d4rl_locomotion"), np.ones(4), np.array([0, 0, 1, 1]))
    with pytest.raises(ConfigError, match="TDDataConfig.reward_mode"):
        TDDataConfig.from_dict({"reward_mode": "atari"})


@pytest.mark.data
def test_nan_and_bad_paths_give_clear_errors(tmp_path):
    raw = synthetic_d4rl_arrays(n_episodes=3, length=10)
    raw["rewards"] = raw["rewards"].copy()
    raw["rewards"][5] = np.nan
    with h5py.File(tmp_path / "nan.hdf5", "w") as f:  # written raw: export_d4rl would refuse it
        for k, v in raw.items():
            f.create_dataset(k, data=v)
    with pytest.raises(D4RLFormatError, match="'rewards' has NaN/inf at row 5"):
        load_any(tmp_path / "nan.hdf5")
    root = tmp_path / "ds"
    _point_mass_dataset(root, rewards_true=False)
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted((root / "data").rglob("*.parquet"))
    table = pq.read_table(files[0])
    column = table.column("next.reward").to_numpy().copy()
    column[4] = np.nan
    table = table.set_column(table.schema.get_field_index("next.reward"), table.schema.field("next.reward"),
                             pa.array(column, type=table.schema.field("next.reward").type))
    pq.write_table(table, files[0])
    with pytest.raises(LearningDataError, match="'next.reward' has NaN/inf at frame 4"):
        load_any(root)
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(LearningDataError, match="expected a LeRobot dataset folder or a D4RL .hdf5/.h5 file"):
        dataset_kind(tmp_path / "data.csv")
    with pytest.raises(LearningDataError, match="no such file or folder"):
        load_any(tmp_path / "missing.hdf5")
    with pytest.raises(LearningDataError, match="one D4RL file at a time"):
        load_any([tmp_path / "nan.hdf5", root])


# -- training end to end ------------------------------------------------------------------------------------------
@pytest.mark.data
def test_d4rl_file_to_iql_checkpoint_to_acting_policy(tmp_path):
    path = make_synthetic_d4rl(tmp_path / "pm.hdf5", n_episodes=8, length=30)
    data, encoder, codec, info = load_any(path, TDDataConfig(reward_mode="d4rl_locomotion"))
    summary = train_policy(data, encoder, codec, tmp_path / "run", "iql", SMALL, _trainer(40),
                           meta={"dataset": info}, data_config=TDDataConfig(reward_mode="d4rl_locomotion"))
    assert summary["steps"] == 40 and summary["transitions"] == len(data) - load_d4rl(path)["timeouts"].sum()
    config = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())
    assert config["algorithm"] == "iql" and config["algorithm_config"]["schedule_steps"] == 40
    assert config["data"]["reward_mode"] == "d4rl_locomotion" and config["dataset"]["reward_scale"] > 1
    algorithm, _, norms = load_checkpoint(tmp_path / "run")
    assert set(algorithm.modules()) == {"actor", "q", "q_target", "value"}
    policy = LearnedPolicy(tmp_path / "run")
    obs = load_d4rl(path)["observations"]
    actions = np.stack([policy.act({"observation.state": o}) for o in obs[:5]])
    low, high = data.actions.min(0), data.actions.max(0)
    assert actions.shape == (5, 2) and np.all(actions >= low - 1e-5) and np.all(actions <= high + 1e-5)
    assert np.allclose(norms["action"].denormalize(np.ones(2)), high)  # minmax: [-1, 1] <-> the data's range


def test_resume_is_exact(tmp_path):
    def fresh():
        torch.manual_seed(3)
        return IQL(3, 2, IQLConfig(hidden=(16, 16), actor_dropout=0.1, schedule_steps=60))

    data = _batch(300)
    straight = fresh()
    Trainer(straight, data, _trainer(60), tmp_path / "a", {}).run()
    Trainer(fresh(), data, _trainer(30), tmp_path / "b", {}).run()
    resumed = fresh()
    summary = Trainer(resumed, data, _trainer(60), tmp_path / "b", {}).run(resume=True)
    assert summary["resumed"] and resumed.updates == 60
    for name, module in straight.modules().items():
        for (key, a), b in zip(module.state_dict().items(), resumed.modules()[name].state_dict().values()):
            assert torch.equal(a, b), f"{name}.{key}"
    assert resumed.actor_optimizer.param_groups[0]["lr"] == straight.actor_optimizer.param_groups[0]["lr"]


def test_iql_beats_bc_on_mixed_quality_data(tmp_path):
    """A one-step task whose best action is known (+0.6 or -0.6 by the sign of s0): 30% expert actions, 70% random.
    BC averages them towards 0; IQL's advantage weights pick the expert's."""
    rng = np.random.default_rng(0)
    n = 4000
    s = rng.standard_normal((n, 2)).astype(np.float32)
    best = np.where(s[:, :1] > 0, 0.6, -0.6).astype(np.float32)
    expert = rng.random(n) < 0.3
    a = np.clip(np.where(expert[:, None], best + 0.05 * rng.standard_normal((n, 1)), rng.uniform(-1, 1, (n, 1))),
                -1, 1).astype(np.float32)
    r = -((a - best) ** 2).sum(1).astype(np.float32)
    data = OfflineData(s, a, r, np.zeros(n, bool), np.arange(n), np.full(n, "", object), ["bandit"],
                       terminals=np.ones(n, bool))  # every step ends the episode
    spec = FeatureSpec(observation_keys=("observation.state",), relative_positions=False, goal=False,
                       action_mode="absolute")
    encoder = ObservationEncoder(spec, {"observation.state": ["s0", "s1"]})
    codec = ActionCodec("absolute", ["a0"])
    test = rng.standard_normal((200, 2)).astype(np.float32)
    test_best = np.where(test[:, :1] > 0, 0.6, -0.6)
    score = {}
    for algo in ("iql", "bc"):
        train_policy(data, encoder, codec, tmp_path / algo, algo, {"hidden": [64, 64]},
                     _trainer(1500, batch_size=256, log_every=500))
        policy = LearnedPolicy(tmp_path / algo)
        pred = np.stack([policy.act({"observation.state": x}) for x in test])
        score[algo] = float(-((pred - test_best) ** 2).mean())
    assert score["iql"] > -0.08 and score["bc"] < -0.12 and score["iql"] > score["bc"] + 0.05, score


def test_normalizer_fit_range_maps_data_onto_unit_box():
    data = np.array([[0.0, 5.0], [2.0, 5.0], [1.0, 5.0]])
    norm = Normalizer.fit_range(data)
    assert np.allclose(norm.normalize(data)[:, 0], [-1, 1, 0]) and np.allclose(norm.normalize(data)[:, 1], 0)
