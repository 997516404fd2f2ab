"""robot_irl.learn: BC learns, checkpoints round-trip and resume exactly, datasets load, LearnedPolicy acts."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robot_irl.core.config import ConfigError
from robot_irl.core.features import Feature, vector
from robot_irl.data.lerobot_io import LeRobotRecorder
from robot_irl.drivers.robosuite_arm import (
    RobosuiteConfig,
    RobosuiteDriver,
    action_names,
    environment_state_names,
    quat_to_rotvec,
    state_names,
)
from robot_irl.learn import datasets as lds
from robot_irl.learn.bc import BC, BCConfig
from robot_irl.learn.datasets import (
    ActionCodec,
    FeatureSpec,
    GoalVocabulary,
    LearningDataError,
    ObservationEncoder,
    load_offline_data,
)
from robot_irl.learn.networks import GaussianActor, Normalizer, load_normalizers, mlp, save_normalizers
from robot_irl.learn.policy import LearnedPolicy
from robot_irl.learn.trainer import (
    CheckpointError,
    Trainer,
    TrainerConfig,
    load_checkpoint,
    read_checkpoint_config,
    train_policy,
)

pytestmark = [pytest.mark.unit, pytest.mark.data]

INSTRUCTIONS = ["lift the red cube", "lift the blue box"]
DISTRACTORS = 3


def _toy(n: int = 2048, seed: int = 0) -> dict[str, torch.Tensor]:
    """A smooth nonlinear map R^6 -> R^3 for BC to fit."""
    w = torch.randn(6, 3, generator=torch.Generator().manual_seed(123))  # the same map for every sample
    x = torch.randn(n, 6, generator=torch.Generator().manual_seed(seed))
    return {"obs": x, "action": torch.tanh(x @ w) + 0.1 * x[:, :3] ** 2}


def _trainer(steps: int, **kw) -> TrainerConfig:
    return TrainerConfig(steps=steps, batch_size=128, log_every=25, progress=False, num_threads=2, **kw)


def _identity_norms(dim_obs: int = 6, dim_act: int = 3) -> dict[str, Normalizer]:
    return {"obs": Normalizer.identity(dim_obs), "action": Normalizer.identity(dim_act)}


# -- networks ---------------------------------------------------------------------------------------------------
def test_mlp_shapes_and_bad_sizes():
    net = mlp(5, 2, (16, 8), layer_norm=True, dropout=0.1)
    assert net(torch.zeros(4, 5)).shape == (4, 2)
    with pytest.raises(ValueError, match="activation"):
        mlp(5, 2, activation="nope")
    with pytest.raises(ValueError, match="positive"):
        mlp(0, 2)


def test_gaussian_actor_log_prob_matches_torch_normal():
    actor = GaussianActor(4, 2, hidden=(8,))
    obs, act = torch.randn(5, 4), torch.randn(5, 2)
    mean, log_std = actor(obs)
    expected = torch.distributions.Normal(mean, log_std.exp()).log_prob(act).sum(-1)
    assert torch.allclose(actor.log_prob(obs, act), expected, atol=1e-5)


def test_normalizer_fit_roundtrip_and_constant_dims(tmp_path):
    data = np.c_[np.random.default_rng(0).normal(3.0, 2.0, size=(500, 2)), np.full(500, 7.0)]
    norm = Normalizer.fit(data)
    z = norm.normalize(data)
    assert np.allclose(z[:, :2].mean(0), 0, atol=1e-5) and np.allclose(z[:, :2].std(0), 1, atol=1e-3)
    assert norm.std[2] == 1.0 and np.allclose(z[:, 2], 0)  # a constant input is centred, not blown up
    assert np.allclose(norm.denormalize(z), data, atol=1e-4)
    t = torch.as_tensor(data, dtype=torch.float32)
    assert torch.allclose(norm.normalize(t), torch.as_tensor(z), atol=1e-5)
    save_normalizers(tmp_path / "n.safetensors", {"obs": norm})
    back = load_normalizers(tmp_path / "n.safetensors")["obs"]
    assert np.array_equal(back.mean, norm.mean) and np.array_equal(back.std, norm.std)


# -- BC ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["mse", "nll"])
def test_bc_learns_a_toy_mapping(loss):
    torch.manual_seed(0)
    data = _toy()
    bc = BC(6, 3, BCConfig(hidden=(64, 64), loss=loss, lr=3e-3))
    g = torch.Generator().manual_seed(1)
    first = last = None
    for step in range(1500):
        idx = torch.randint(len(data["obs"]), (128,), generator=g)
        metrics = bc.update({k: v[idx] for k, v in data.items()})
        first = metrics["mse"] if step == 0 else first
        last = metrics["mse"]
    assert last < first / 10
    test = _toy(256, seed=1)  # fresh inputs
    assert bc.evaluate(test)["mse"] < 0.02
    pred = bc.predict(test["obs"][:8])
    assert pred.shape == (8, 3) and torch.allclose(pred, test["action"][:8], atol=0.4)


def test_bc_config_is_validated_by_name():
    with pytest.raises(ConfigError, match="BCConfig.loss"):
        BCConfig.from_dict({"loss": "huber"})
    with pytest.raises(ConfigError, match="BCConfig.hidden"):
        BCConfig(hidden=())


# -- trainer: checkpoints and resume ----------------------------------------------------------------------------
def test_checkpoint_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    bc = BC(6, 3, BCConfig(hidden=(32,), loss="nll"))
    summary = Trainer(bc, _toy(512), _trainer(100), tmp_path, _identity_norms(), {"note": "x"}).run()
    ckpt = tmp_path / "checkpoint"
    assert summary["steps"] == 100 and (ckpt / "model.safetensors").is_file()
    assert {"config.json", "normalizer.safetensors", "optimizer.safetensors", "trainer_state.json"} <= \
        {p.name for p in ckpt.iterdir()}
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[-1])["step"] == 100
    config = read_checkpoint_config(tmp_path)  # a run folder is accepted too
    assert config["algorithm"] == "bc" and config["algorithm_config"]["loss"] == "nll" and config["note"] == "x"
    assert config["step"] == 100 and config["trainer"]["steps"] == 100
    loaded, _, norms = load_checkpoint(ckpt)
    x = torch.randn(7, 6)
    assert torch.equal(loaded.predict(x), bc.predict(x))
    assert set(norms) == {"obs", "action"}


def test_resume_continues_exactly(tmp_path):
    def fresh():
        torch.manual_seed(3)
        return BC(6, 3, BCConfig(hidden=(32,), dropout=0.1))

    straight = fresh()
    Trainer(straight, _toy(512), _trainer(80), tmp_path / "a", _identity_norms()).run()
    Trainer(fresh(), _toy(512), _trainer(40), tmp_path / "b", _identity_norms()).run()
    resumed = fresh()
    summary = Trainer(resumed, _toy(512), _trainer(80), tmp_path / "b", _identity_norms()).run(resume=True)
    assert summary["resumed"] and summary["steps"] == 80
    for (name, a), (_, b) in zip(straight.actor.state_dict().items(), resumed.actor.state_dict().items()):
        assert torch.equal(a, b), name
    history = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [25, 40, 50, 75, 80]


def test_load_checkpoint_errors_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="config.json does not exist"):
        read_checkpoint_config(tmp_path)
    bc = BC(6, 3, BCConfig(hidden=(16,)))
    Trainer(bc, _toy(256), _trainer(5), tmp_path, _identity_norms()).run()
    cfg = tmp_path / "checkpoint" / "config.json"
    data = json.loads(cfg.read_text())
    cfg.write_text(json.dumps({**data, "algorithm_config": {**data["algorithm_config"], "hidden": [8]}}))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path)


# -- datasets ---------------------------------------------------------------------------------------------------
def _random_quat(rng) -> np.ndarray:
    q = rng.normal(size=4)
    return q / np.linalg.norm(q)


@pytest.fixture(scope="module")
def lift_dataset(tmp_path_factory):
    """Three synthetic robosuite-Lift-shaped episodes (8 frames); episode 1 changes instruction at frame 4."""
    root = tmp_path_factory.mktemp("learn") / "ds"
    rng = np.random.default_rng(0)
    obs_f = {"observation.state": vector(state_names()),
             "observation.environment_state": vector(environment_state_names("lift", DISTRACTORS))}
    act_f = {"action": vector(action_names("ee_target"))}
    extra = {"next.reward": Feature("float32", (1,)), "next.success": Feature("bool", (1,))}
    frames = []
    with LeRobotRecorder(root, "local/learn", 20, obs_f, act_f, "panda", use_videos=False,
                         extra_features=extra) as rec:
        t = 0.0
        for ep in range(3):
            rec.start_episode()
            for i in range(8):
                state = rng.normal(size=23).astype(np.float32)
                state[17:21] = _random_quat(rng)
                env = rng.normal(size=7 * (1 + DISTRACTORS)).astype(np.float32)
                action = np.r_[rng.normal(size=3), quat_to_rotvec(_random_quat(rng)), rng.choice([-1.0, 1.0])]
                task = INSTRUCTIONS[1] if ep == 1 and i >= 4 else INSTRUCTIONS[0]
                obs = {"observation.state": state, "observation.environment_state": env}
                t += 0.05
                rec.add_frame(obs, action.astype(np.float32), task, t,
                              {"next.reward": np.float32(i == 7), "next.success": np.array([i == 7])})
                frames.append((obs, action.astype(np.float32), task))
            rec.save_episode()
    return root, frames


def test_load_offline_data_shapes_goals_and_boundaries(lift_dataset):
    root, frames = lift_dataset
    data, encoder, codec = load_offline_data(root, FeatureSpec(), INSTRUCTIONS + ["lift the yellow ball"])
    n_env = 7 * (1 + DISTRACTORS)
    assert data.observations.shape == (24, 23 + n_env + 3 * (1 + DISTRACTORS) + 3) == (24, encoder.dim)
    assert data.actions.shape == (24, 7) and data.num_episodes == 3
    goals = data.observations[:, -3:]
    assert goals.sum(1).tolist() == [1.0] * 24
    assert goals[8 + 4:16, 1].all() and goals[8:8 + 4, 0].all()  # the mid-episode instruction change
    assert list(data.tasks[12:14]) == [INSTRUCTIONS[1]] * 2
    assert data.last.nonzero()[0].tolist() == [7, 15, 23]
    assert data.next_index[7] == 7 and data.next_index[8] == 9
    assert data.rewards.sum() == 3 and data.successes.sum() == 3
    # relative positions: cube - eef, from the raw frame
    obs0, action0, _ = frames[0]
    rel = encoder.feature_names.index("relative:cube.x")
    assert np.allclose(data.observations[0, rel:rel + 3],
                       obs0["observation.environment_state"][:3] - obs0["observation.state"][14:17], atol=1e-6)
    # delta actions decode back to the recorded absolute targets (same rotation)
    back = codec.decode(data.actions[0], obs0["observation.state"])
    assert np.allclose(back[:3], action0[:3], atol=1e-5) and back[6] == action0[6]
    dq = lds.quat_mul(lds.rotvec_to_quat(back[3:6]), lds.quat_conj(lds.rotvec_to_quat(action0[3:6])))
    assert np.linalg.norm(lds.quat_to_rotvec(dq)) < 1e-4
    subset = data.select_episodes([2, 0])
    assert subset.num_episodes == 2 and len(subset) == 16 and subset.episodes.tolist() == [0, 2]
    tensors = data.tensors()
    assert torch.equal(tensors["next_obs"][0], tensors["obs"][1]) and tensors["last"].sum() == 3


def test_dataset_errors_name_what_is_wrong(lift_dataset, tmp_path):
    root, _ = lift_dataset
    with pytest.raises(LearningDataError, match="not in the policy's goal vocabulary"):
        load_offline_data(root, FeatureSpec(), ["lift the red cube"])
    with pytest.raises(LearningDataError, match="not in the dataset"):
        load_offline_data(root, FeatureSpec(observation_keys=("observation.velocity",)))
    with pytest.raises(LearningDataError, match="not a LeRobot dataset"):
        load_offline_data(tmp_path)
    with pytest.raises(ConfigError, match="FeatureSpec.observation_keys"):
        FeatureSpec(observation_keys=("observation.images.agentview",))
    with pytest.raises(LearningDataError, match="end-effector target"):
        ActionCodec("delta", ["joint1", "gripper"], state_names=state_names())
    with pytest.raises(LearningDataError, match="episodes \\[9\\]"):
        load_offline_data(root)[0].select_episodes([9])
    assert GoalVocabulary(INSTRUCTIONS).encode([INSTRUCTIONS[1]]).tolist() == [[0.0, 1.0]]


# -- the learned policy -----------------------------------------------------------------------------------------
def test_learned_policy_acts_from_a_trained_checkpoint(lift_dataset, tmp_path):
    root, frames = lift_dataset
    data, encoder, codec = load_offline_data(root, FeatureSpec(), INSTRUCTIONS)
    summary = train_policy(data, encoder, codec, tmp_path / "run", "bc", {"hidden": [32, 32]},
                           TrainerConfig(steps=300, batch_size=24, progress=False, log_every=100))
    assert summary["frames"] == 24 and summary["final"]["loss"] < 0.5
    policy = LearnedPolicy(tmp_path / "run")
    obs, action, task = frames[3]
    out = policy.act({**obs, "task": task})
    assert out.shape == (7,) and out.dtype == np.float32 and np.all(np.isfinite(out))
    assert np.allclose(out[:3], action[:3], atol=0.25)  # a training frame it has fitted
    assert policy.vocabulary == INSTRUCTIONS
    policy.check_features(RobosuiteDriver(RobosuiteConfig(distractors=DISTRACTORS)))  # no connection needed
    with pytest.raises(LearningDataError, match="observation.environment_state"):
        policy.check_features(RobosuiteDriver(RobosuiteConfig(distractors=1)))
    with pytest.raises(LearningDataError, match="goal vocabulary"):
        policy.act({**obs, "task": "open the door"})
    with pytest.raises(LearningDataError, match="needs the instruction"):
        policy.act(obs)


def test_encoder_round_trips_through_its_dict():
    spec = FeatureSpec(relative_positions=False, goal=False)
    names = {"observation.state": state_names(), "observation.environment_state": environment_state_names("lift")}
    enc = ObservationEncoder(spec, names)
    back = ObservationEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    obs = {"observation.state": np.arange(23, dtype=np.float32), "observation.environment_state": np.ones(7)}
    assert np.array_equal(enc.encode(obs), back.encode(obs)) and back.dim == 30
