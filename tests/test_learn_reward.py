"""Preference reward models and relabelling: the Bradley-Terry maths, ensembles and segments, learning known
orderings from states and images, early stopping, tie handling, relabelled LeRobot and D4RL datasets, scaling, the
command line and the errors for bad inputs."""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_irl.core.config import ConfigError
from robot_irl.data.d4rl import export_d4rl, load_d4rl, read_d4rl_attrs
from robot_irl.data.synthetic import render, synthetic_d4rl_arrays
from robot_irl.label.job import LabelConfig, run_label_job
from robot_irl.label.pairs import FrameRef, pair_id
from robot_irl.learn import cli_reward
from robot_irl.learn.relabel import D4RL_TRUE, RelabelError, RewardScaling, apply_scaling, relabel_dataset
from robot_irl.learn.reward import (
    PreferenceData,
    PreferenceRewardLearner,
    RewardModel,
    RewardModelConfig,
    RewardModelError,
    bradley_terry_loss,
    load_reward_model,
    preference_accuracy,
    torch_threads,
    train_reward_model,
)

W = np.array([1.0, -2.0, 0.5, 0.0, 0.3, 0.0], np.float32)  # the hidden linear reward over 6-d states
FAST = {"hidden": [64, 64], "lr": 3e-3, "max_epochs": 40, "batch_size": 64, "stop_train_accuracy": 0.0,
        "patience": 0}


def _files(root: Path) -> dict[str, str]:
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _d4rl(path: Path, n_episodes: int = 12, length: int = 30, seed: int = 0, reward: str = "linear",
          images: bool = False, obs_dim: int = 6) -> Path:
    d = synthetic_d4rl_arrays(n_episodes, length, obs_dim, 2, seed)
    pos, goal = d["infos/qpos"], d["observations"][:, 4:6]
    if reward == "linear":
        d["rewards"] = d["observations"] @ W[:obs_dim]
    elif reward == "distance":  # distance to the goal of the frame shown
        d["rewards"] = -np.linalg.norm(pos - goal, axis=1).astype(np.float32)
    elif reward == "coarse":  # many exact ties
        d["rewards"] = np.round(d["observations"] @ W[:obs_dim]).astype(np.float32)
    d["infos/noise"] = np.random.default_rng(seed).standard_normal(len(pos)).astype(np.float32)
    if images:
        d["images"] = np.stack([render(p, g, (32, 32)) for p, g in zip(pos, goal)])
    return export_d4rl(path, d)


def _label(dataset: Path, out: Path, pairs: int, signals=("rewards",), camera=None, segment_length: int = 1,
           seed: int = 0) -> Path:
    cfg = LabelConfig.from_dict({"dataset": str(dataset), "backend": "oracle", "pairs": pairs, "seed": seed,
                                 "camera": camera, "segment_length": segment_length,
                                 "oracle": {"signals": list(signals)}})
    run_label_job(cfg, out, progress=False)
    return out


# ---------------------------------------------------------------------------------------------------------------
# maths
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.unit
def test_bradley_terry_loss_on_known_numbers():
    zeros = torch.zeros(2, 4)
    for target in (0.0, 1.0, 0.5):
        assert torch.allclose(bradley_terry_loss(zeros, zeros, torch.full((4,), target)), torch.full((2,), math.log(2)))
    ra, rb = torch.zeros(1, 1), torch.full((1, 1), math.log(3.0))  # P(b > a) = 3/4
    assert bradley_terry_loss(ra, rb, torch.ones(1)).item() == pytest.approx(math.log(4 / 3))
    assert bradley_terry_loss(ra, rb, torch.zeros(1)).item() == pytest.approx(math.log(4))
    tie = bradley_terry_loss(ra, rb, torch.full((1,), 0.5)).item()
    assert tie == pytest.approx(0.5 * math.log(4 / 3) + 0.5 * math.log(4))
    d = torch.zeros(1, requires_grad=True)  # a 0.5 target is best met by equal returns: zero gradient there
    bradley_terry_loss(torch.zeros(1, 1), d.view(1, 1), torch.full((1,), 0.5)).sum().backward()
    assert d.grad.abs().item() < 1e-7
    # accuracy: ties excluded, equal returns count half, no decided pair -> nan
    a, b = torch.tensor([0.0, 0.0, 1.0, 0.0]), torch.tensor([1.0, 1.0, 0.0, 0.0])
    assert preference_accuracy(a, b, torch.tensor([1.0, 0.0, 0.0, 1.0])) == pytest.approx((1 + 0 + 1 + 0.5) / 4)
    assert preference_accuracy(a, b, torch.tensor([1.0, 0.5, 0.5, 0.5])) == 1.0
    assert math.isnan(preference_accuracy(a, b, torch.full((4,), 0.5)))


@pytest.mark.unit
def test_ensemble_shapes_segment_returns_and_normalisation():
    cfg = RewardModelConfig(ensemble=3, hidden=(16,))
    torch.manual_seed(0)
    model = RewardModel("state", (5,), cfg, mean=np.full(5, 2.0), std=np.full(5, 4.0))
    frames = torch.randn(7, 5)
    member = model.member_rewards(frames)
    assert member.shape == (3, 7) and member.abs().max() < 1  # tanh
    assert torch.allclose(model(frames), member.mean(0))
    assert torch.allclose(model.preprocess(frames), (frames - 2.0) / 4.0)
    segments = torch.randn(4, 3, 5)  # 4 segments of 3 frames
    returns = model.segment_returns(segments)
    assert returns.shape == (3, 4)
    assert torch.allclose(returns, model.member_rewards(segments.reshape(12, 5)).view(3, 4, 3).sum(-1), atol=1e-6)
    own = torch.randn(3, 4, 2, 5)  # member e scores own[e]
    mine = model.member_segment_returns(own)
    for e in range(3):
        assert torch.allclose(mine[e], model.segment_returns(own[e])[e], atol=1e-6)
    assert model.predict(frames.numpy(), batch_size=3).shape == (7,)
    linear = RewardModel("state", (5,), cfg.replace(output="linear", ensemble=2))
    assert linear.member_rewards(frames * 100).abs().max() > 1 and linear.ensemble_size == 2
    image = RewardModel("image", (3, 16, 16), RewardModelConfig(image_size=16, ensemble=2, channels=(4, 8)),
                        mean=np.full(3, 0.5), std=np.full(3, 0.25))
    pixels = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    assert image.member_rewards(pixels).shape == (2, 5)
    assert torch.allclose(image.preprocess(pixels), (pixels.float() / 255 - 0.5) / 0.25)
    with pytest.raises(RewardModelError, match=r"image input shape must be \(3, 16, 16\)"):
        RewardModel("image", (3, 32, 32), RewardModelConfig(image_size=16))
    with pytest.raises(ConfigError, match="RewardModelConfig.ensemble"):
        RewardModelConfig(ensemble=0)
    with pytest.raises(ConfigError, match="RewardModelConfig.ties"):
        RewardModelConfig.from_dict({"ties": "zero"})


@pytest.mark.unit
def test_learner_fits_a_hidden_linear_reward_with_its_own_minibatch_per_member():
    rng = np.random.default_rng(0)
    states = torch.as_tensor(rng.standard_normal((400, 6)), dtype=torch.float32)
    true = states @ torch.as_tensor(W)
    pairs = torch.as_tensor(rng.integers(0, 400, (600, 2)))
    data = PreferenceData(states, pairs[:, :1], pairs[:, 1:], (true[pairs[:, 1]] > true[pairs[:, 0]]).float(),
                          np.arange(400), [str(i) for i in range(600)])
    cfg = RewardModelConfig(hidden=(32, 32), lr=3e-3, ensemble=2)
    torch.manual_seed(0)
    learner = PreferenceRewardLearner(RewardModel("state", (6,), cfg), cfg)
    train, held = torch.arange(500), torch.arange(500, 600)
    before = learner.evaluate(data.batch(held))
    with torch_threads(1):
        for _ in range(300):
            idx = torch.stack([train[torch.randperm(500)[:64]] for _e in range(2)])  # (E, B): a minibatch per member
            metrics = learner.update(data.batch(idx))
    after = learner.evaluate(data.batch(held))
    assert set(metrics) == {"loss", "accuracy"} and after["loss"] < before["loss"]
    assert after["accuracy"] > 0.9, after


# ---------------------------------------------------------------------------------------------------------------
# the runner on D4RL files (states and images)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.data
def test_state_model_learns_a_hidden_linear_reward_and_writes_its_run(tmp_path):
    data = _d4rl(tmp_path / "lin.hdf5")
    labels = _label(data, tmp_path / "labels", 400)
    report = train_reward_model(labels, None, tmp_path / "rm", FAST, progress=False)
    assert report["inputs"] == "state" and report["input"]["state_keys"] == ["observations"]
    assert report["pairs"]["used"] == 400 and report["pairs"]["val"] == 80 and report["dataset_check"] == "same path"
    assert report["val"]["accuracy"] > 0.9, report["val"]
    true = report["true_reward"]
    assert true["signal"] == "rewards" and true["on"] == "held-out pairs"
    assert true["spearman"] > 0.9 and true["all_frames"]["spearman"] > 0.9 and true["labels_agree"] == 1.0
    out = tmp_path / "rm"
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == report["epochs"] == 40
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history[0])
    assert (out / "learning_curve.png").stat().st_size > 1000
    assert json.loads((out / "report.json").read_text())["val"] == report["val"]
    saved = json.loads((out / "reward_model" / "config.json").read_text())
    assert saved["reward_config"]["hidden"] == [64, 64] and saved["label_run"] == str(labels)
    assert saved["dataset"] == str(data.resolve()) and len(saved["normalizer"]["mean"]) == 6
    model = load_reward_model(out)  # the run folder or its reward_model folder
    obs = load_d4rl(data)["observations"][:50]
    again = load_reward_model(out / "reward_model").predict(obs)
    np.testing.assert_allclose(model.predict(obs), again, rtol=1e-6)
    with pytest.raises(FileExistsError, match="not empty"):
        train_reward_model(labels, None, out, FAST, progress=False)


@pytest.mark.data
def test_segments_sum_frame_rewards_and_learn_too(tmp_path):
    data = _d4rl(tmp_path / "lin.hdf5")
    labels = _label(data, tmp_path / "labels", 300, segment_length=4)
    report = train_reward_model(labels, data, tmp_path / "rm", FAST, progress=False)
    assert report["segment_length"] == 4 and report["val"]["accuracy"] > 0.85, report["val"]
    assert report["true_reward"]["pair_accuracy"] > 0.85


@pytest.mark.data
def test_image_model_learns_distance_to_goal_from_rendered_frames(tmp_path):
    data = _d4rl(tmp_path / "img.hdf5", n_episodes=12, length=30, reward="distance", images=True)
    labels = _label(data, tmp_path / "labels", 240, camera="images")
    cfg = {"image_size": 16, "channels": [8, 16, 32], "ensemble": 2, "lr": 2e-3, "max_epochs": 15,
           "batch_size": 32, "stop_train_accuracy": 0.0}  # frames rendered at 32x32, resized to 16x16
    report = train_reward_model(labels, None, tmp_path / "rm", cfg, progress=False)
    assert report["inputs"] == "image" and report["input"]["camera"] == "images"  # auto: the labels showed images
    assert report["val"]["accuracy"] > 0.75, report["val"]  # chance is 0.5
    assert report["true_reward"]["spearman"] > 0.6, report["true_reward"]
    record = relabel_dataset(tmp_path / "rm", data, tmp_path / "relabelled.hdf5", progress=False)
    assert record["model_kind"] == "image" and record["true_reward"]["spearman"] > 0.6


@pytest.mark.data
def test_early_stopping_on_patience_and_on_training_accuracy(tmp_path):
    data = _d4rl(tmp_path / "lin.hdf5")
    noise = _label(data, tmp_path / "noise", 200, signals=("infos/noise",))  # labels unrelated to the states
    cfg = {**FAST, "max_epochs": 300, "patience": 3}
    report = train_reward_model(noise, None, tmp_path / "rm_noise", cfg, progress=False)
    assert report["stop_reason"] == "patience" and report["epochs"] < 300
    assert report["best_val_epoch"] <= report["epochs"] - 3
    assert report["restored_epoch"] in (None, report["best_val_epoch"])
    labels = _label(data, tmp_path / "labels", 200)
    fast = train_reward_model(labels, None, tmp_path / "rm", {**cfg, "stop_train_accuracy": 0.9}, progress=False)
    assert fast["stop_reason"] == "train_accuracy" and fast["epochs"] < 300


@pytest.mark.data
def test_ties_are_dropped_or_kept_as_half_targets(tmp_path):
    data = _d4rl(tmp_path / "coarse.hdf5", reward="coarse")
    labels = _label(data, tmp_path / "labels", 200)
    cfg = {**FAST, "max_epochs": 3}
    drop = train_reward_model(labels, None, tmp_path / "drop", cfg, progress=False)
    half = train_reward_model(labels / "labels.jsonl", None, tmp_path / "half",  # the file names its run too
                              {**cfg, "ties": "half", "member_data": "bootstrap"}, progress=False)
    ties = drop["pairs"]["ties"]
    assert ties > 20 and half["pairs"]["ties"] == ties
    assert drop["pairs"]["used"] == 200 - ties and half["pairs"]["used"] == 200
    assert (drop["pairs"]["ties_handling"], half["pairs"]["ties_handling"]) == ("drop", "half")
    records = [json.loads(line) for line in (labels / "labels.jsonl").read_text().splitlines()]
    for r in records[:5]:  # rewrite the labels as ties only: 'drop' has nothing left to learn from
        r["label"], r["reason"] = -1, "tie"
    (tmp_path / "ties").mkdir()
    (tmp_path / "ties" / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:5]))
    with pytest.raises(RewardModelError, match=r"0 usable preference pair.*5 ties dropped.*ties='half'"):
        train_reward_model(tmp_path / "ties", data, tmp_path / "none", cfg, progress=False)


# ---------------------------------------------------------------------------------------------------------------
# relabelling and scaling
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.unit
def test_scaling_modes_are_explicit():
    r = np.array([-2.0, 0.0, 2.0, 4.0])
    minmax = RewardScaling().fit(r)
    assert minmax["mode"] == "minmax" and (minmax["min"], minmax["max"]) == (-2.0, 4.0)
    np.testing.assert_allclose(apply_scaling(r, minmax), [0, 1 / 3, 2 / 3, 1], rtol=1e-6)
    std = RewardScaling(mode="standardize").fit(r)
    scaled = apply_scaling(r, std)
    assert abs(scaled.mean()) < 1e-6 and scaled.std() == pytest.approx(1.0, rel=1e-5)
    affine = RewardScaling(mode="affine", scale=2.0, shift=-1.0).fit(r)
    np.testing.assert_allclose(apply_scaling(r, affine), 2 * r - 1)
    np.testing.assert_allclose(apply_scaling(r, RewardScaling(mode="none").fit(r)), r)
    constant = RewardScaling().fit(np.full(3, 0.7))
    assert constant["warning"] == "constant learned rewards"
    assert np.allclose(apply_scaling(np.full(3, 0.7), constant), 0)
    with pytest.raises(ConfigError, match="RewardScaling.scale.*only used with mode 'affine'"):
        RewardScaling(mode="minmax", scale=2.0)
    with pytest.raises(ConfigError, match="RewardScaling.mode"):
        RewardScaling.from_dict({"mode": "log"})


@pytest.mark.data
def test_relabel_d4rl_keeps_the_original_and_records_the_scaling(tmp_path):
    data = _d4rl(tmp_path / "lin.hdf5")
    labels = _label(data, tmp_path / "labels", 200)
    train_reward_model(labels, None, tmp_path / "rm", {**FAST, "max_epochs": 10}, progress=False)
    before = _files(data)
    out = tmp_path / "learned.hdf5"
    record = relabel_dataset(tmp_path / "rm", data, out, scaling="standardize", progress=False)
    assert _files(data) == before  # the input is untouched
    original, relabelled = load_d4rl(data), load_d4rl(out)
    model = load_reward_model(tmp_path / "rm")
    expected = apply_scaling(model.predict(original["observations"]), record["scaling"])
    np.testing.assert_allclose(relabelled["rewards"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(relabelled["infos/rewards_true"], original["rewards"])
    np.testing.assert_array_equal(relabelled["observations"], original["observations"])
    assert abs(relabelled["rewards"].mean()) < 1e-4 and record["scaled"]["std"] == pytest.approx(1.0, rel=1e-4)
    attrs = read_d4rl_attrs(out)
    assert attrs["reward_relabel"]["scaling"]["mode"] == "standardize" and attrs["rewards_true_key"] == D4RL_TRUE
    assert attrs["reward_relabel"]["learned"] == record["learned"] and attrs["reward_relabel"]["source"] == str(data)
    with pytest.raises(FileExistsError, match="already exists"):
        relabel_dataset(tmp_path / "rm", data, out, progress=False)
    again = relabel_dataset(tmp_path / "rm", out, tmp_path / "twice.hdf5", scaling="none", progress=False)
    assert again["true_reward"]["signal"] == D4RL_TRUE  # a relabelled file keeps the original reward
    np.testing.assert_array_equal(load_d4rl(tmp_path / "twice.hdf5")["infos/rewards_true"], original["rewards"])
    with pytest.raises(RelabelError, match="must lie outside the input dataset"):
        relabel_dataset(tmp_path / "rm", data, data, overwrite=True, progress=False)
    narrow = _d4rl(tmp_path / "narrow.hdf5", obs_dim=4)
    with pytest.raises(RelabelError, match="have 4 entries; the reward model was trained on 6"):
        relabel_dataset(tmp_path / "rm", narrow, tmp_path / "narrow_out.hdf5", progress=False)



# ---------------------------------------------------------------------------------------------------------------
# LeRobot datasets
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lerobot(tmp_path_factory):
    """Four point-mass episodes of 12 frames with a 32x32 AV1 camera, and oracle labels shown as images."""
    from robot_irl.data.lerobot_io import LeRobotRecorder
    from robot_irl.data.synthetic import synthetic_episodes, synthetic_features

    base = tmp_path_factory.mktemp("reward_lerobot")
    root = base / "pm"
    obs, act, extra = synthetic_features(4, 2, image_size=32)
    with LeRobotRecorder(root, "local/pm", 20, obs, act, "point_mass", extra_features=extra) as rec:
        for frames in synthetic_episodes(4, 12, image_size=32, seed=7):
            for frame in frames:
                rec.add_frame(**frame)
            rec.save_episode()
    labels = _label(root, base / "labels", 80, signals=("next.reward",), camera="top")
    return root, labels


@pytest.mark.data
def test_relabel_lerobot_dataset_loads_with_learned_and_true_rewards(lerobot, tmp_path):
    from robot_irl.data.lerobot_io import RESERVED_KEYS, load_dataset, read_frames
    from robot_irl.label.pairs import open_source
    from robot_irl.learn.reward import DatasetInputs

    root, labels = lerobot
    rows = [0, 7, 13, 30, 47]  # one decoding pass per episode gives LeRobotDataset's own frames
    source = open_source(root, camera="top")
    np.testing.assert_array_equal(DatasetInputs(root).images("observation.images.top", rows),
                                  np.stack([source.image(r) for r in rows]))
    cfg = {"image_size": 32, "max_epochs": 4, "stop_train_accuracy": 0.0, "ensemble": 2}
    report = train_reward_model(labels, root, tmp_path / "rm", cfg, progress=False)
    assert report["inputs"] == "image" and report["input"]["camera"] == "observation.images.top"
    before = _files(root)
    out = tmp_path / "learned"
    record = relabel_dataset(tmp_path / "rm", root, out, progress=False)
    assert _files(root) == before  # input untouched
    assert record["scaling"]["mode"] == "minmax" and record["true_key"] == "next.reward_true"
    assert record["files"]["linked"] + record["files"].get("copied", 0) >= 4

    frames = read_frames(out, ["next.reward", "next.reward_true", "observation.state"])
    original = read_frames(root, ["next.reward", "observation.state"])
    np.testing.assert_array_equal(frames["next.reward_true"], original["next.reward"])
    np.testing.assert_array_equal(frames["observation.state"], original["observation.state"])
    model = load_reward_model(tmp_path / "rm")
    data = DatasetInputs(root)
    from robot_irl.learn.reward import resize_images

    raw = np.concatenate([model.predict(resize_images(data.episode_images("observation.images.top", e), 32))
                          for e in range(4)])
    np.testing.assert_allclose(frames["next.reward"], apply_scaling(raw, record["scaling"]), rtol=1e-5, atol=1e-6)
    assert frames["next.reward"].min() == 0.0 and frames["next.reward"].max() == pytest.approx(1.0)

    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["features"]["next.reward"]["dtype"] == "float32" and "next.reward_true" in info["features"]
    stats = json.loads((out / "meta" / "stats.json").read_text())
    assert stats["next.reward"]["max"] == [pytest.approx(1.0)]
    assert stats["next.reward_true"] == json.loads((root / "meta" / "stats.json").read_text())["next.reward"]
    saved = json.loads((out / "meta" / "robot_irl" / "reward_relabel.json").read_text())
    assert saved["scaling"] == record["scaling"] and saved["model"] == record["model"]
    assert saved["learned"]["frames"] == 48 and saved["scaled"]["min"] == 0.0

    ds = load_dataset(out)  # LeRobot itself reads the relabelled copy, videos included
    item = ds[13]
    assert float(item["next.reward"]) == pytest.approx(float(frames["next.reward"][13]), rel=1e-6)
    assert float(item["next.reward_true"]) == pytest.approx(float(original["next.reward"][13]), rel=1e-6)
    assert tuple(item["observation.images.top"].shape) == (3, 32, 32)
    import pyarrow.parquet as pq

    episodes = pq.read_table(sorted((out / "meta" / "episodes").rglob("*.parquet"))[1]).to_pylist()[0]
    first = pq.read_table(sorted((root / "meta" / "episodes").rglob("*.parquet"))[1]).to_pylist()[0]
    assert episodes["stats/next.reward_true/mean"] == first["stats/next.reward/mean"]
    assert episodes["stats/next.reward/mean"][0] == pytest.approx(float(frames["next.reward"][12:24].mean()), rel=1e-5)
    assert "next.reward_true" not in RESERVED_KEYS

    # a state model relabelling the relabelled copy keeps the original reward in next.reward_true
    state = train_reward_model(labels, root, tmp_path / "rm_state", {**FAST, "inputs": "state", "max_epochs": 5},
                               progress=False)
    assert state["input"]["state_keys"] == ["observation.state"]
    twice = relabel_dataset(tmp_path / "rm_state", out, tmp_path / "twice", scaling="none", progress=False)
    assert twice["true_reward"]["signal"] == "next.reward_true"
    again = read_frames(tmp_path / "twice", ["next.reward_true"])["next.reward_true"]
    np.testing.assert_array_equal(again, original["next.reward"])
    with pytest.raises(FileExistsError, match="not empty"):
        relabel_dataset(tmp_path / "rm_state", root, out, progress=False)
    relabel_dataset(tmp_path / "rm_state", root, out, overwrite=True, progress=False)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(RelabelError, match="does not look like a LeRobot dataset"):
        relabel_dataset(tmp_path / "rm_state", root, tmp_path / "notes", overwrite=True, progress=False)


@pytest.mark.data
def test_bad_inputs_are_named(lerobot, tmp_path):
    root, labels = lerobot
    other = _d4rl(tmp_path / "other.hdf5", n_episodes=3, length=10)
    with pytest.raises(RewardModelError, match=r"labels in .* were made on .*pm \(4 episodes, 48 frames\), not on "
                                               r".*other.hdf5 \(3 episodes, 30 frames\)"):
        train_reward_model(labels, other, tmp_path / "a", FAST, progress=False)
    # hand-made label files (no config.json), one with a frame outside the dataset
    recs = [{"pair_id": pair_id(0, k), "a": FrameRef(0, k, k).to_dict(), "b": FrameRef(1, k, 12 + k).to_dict(),
             "label": k % 2, "reason": "ok"} for k in range(3)]
    hand, run = tmp_path / "hand", tmp_path / "hand_bad"
    for folder, records in ((hand, recs), (run, recs + [{"pair_id": pair_id(0, 9), "a": FrameRef(0, 1, 1).to_dict(),
                                                          "b": FrameRef(9, 2, 110).to_dict(), "label": 0,
                                                          "reason": "ok"}])):
        folder.mkdir()
        (folder / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(RewardModelError, match=r"pair s0-0000009 side b refers to episode 9 frames 2..2 \(row 110\)"):
        train_reward_model(run, root, tmp_path / "b", FAST, progress=False)
    with pytest.raises(RewardModelError, match="no config.json saying which dataset"):
        train_reward_model(run, None, tmp_path / "c", FAST, progress=False)
    # NaN in a state column
    import pyarrow as pa
    import pyarrow.parquet as pq

    broken = tmp_path / "nan"
    shutil.copytree(root, broken)
    path = sorted((broken / "data").rglob("*.parquet"))[1]
    table = pq.read_table(path)
    states = np.stack(table.column("observation.state").to_pylist()).astype(np.float32)
    states[3, 1] = np.nan
    column = pa.FixedSizeListArray.from_arrays(pa.array(states.reshape(-1)), 4)
    pq.write_table(table.set_column(table.column_names.index("observation.state"), "observation.state", column)
                   .replace_schema_metadata(table.schema.metadata), path)
    with pytest.raises(RewardModelError, match=r"'observation.state' has NaN/inf at row 15 \(episode 1, frame 3"):
        train_reward_model(hand, broken, tmp_path / "d", {**FAST, "inputs": "state"}, progress=False)
    with pytest.raises(RewardModelError, match=r"state key\(s\) \['observation.velocity'\] are not numeric"):
        train_reward_model(labels, root, tmp_path / "e", {**FAST, "inputs": "state",
                                                           "state_keys": ["observation.velocity"]},
                           progress=False)
    with pytest.raises(RewardModelError, match="no camera 'wrist'"):
        train_reward_model(labels, root, tmp_path / "f", {**FAST, "inputs": "image", "camera": "wrist"},
                           progress=False)
    with pytest.raises(RewardModelError, match="no labels.jsonl"):
        train_reward_model(tmp_path / "nowhere", root, tmp_path / "g", FAST, progress=False)
    with pytest.raises(RewardModelError, match="no reward model at"):
        relabel_dataset(tmp_path / "nowhere", root, tmp_path / "h", progress=False)


# ---------------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robot-irl")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_reward.add_train_reward_parser(sub)
    cli_reward.add_relabel_parser(sub)
    return parser


@pytest.mark.unit
def test_cli_is_light_and_its_choices_match_the_configs():
    code = "import sys, robot_irl.learn.cli_reward, robot_irl.learn.relabel; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    hints = typing.get_type_hints(RewardModelConfig)
    assert typing.get_args(hints["inputs"]) == cli_reward.INPUTS
    assert typing.get_args(typing.get_type_hints(RewardScaling)["mode"]) == cli_reward.SCALINGS
    args = _parser().parse_args(["train-reward", "--labels", "L", "--out", "O", "--inputs", "state", "--ties",
                                 "half", "--config", "{ensemble: 5, lr: 0.001}", "--relabel", "R"])
    cfg = cli_reward.reward_config_from_args(args)
    assert (cfg.inputs, cfg.ties, cfg.ensemble, cfg.lr) == ("state", "half", 5, 0.001) and args.relabel == "R"
    assert args.dataset is None and args.scaling == "minmax"
    with pytest.raises(SystemExit):
        _parser().parse_args(["relabel", "--reward-model", "M", "--dataset", "D", "--out", "O", "--scaling", "log"])


@pytest.mark.data
def test_cli_train_reward_relabel_and_errors(tmp_path, capsys):
    data = _d4rl(tmp_path / "lin.hdf5")
    labels = _label(data, tmp_path / "labels", 150)
    code = cli_reward.main(["train-reward", "--labels", str(labels), "--out", str(tmp_path / "rm"), "--config",
                            json.dumps({**FAST, "max_epochs": 5}), "--relabel", str(tmp_path / "learned.hdf5"),
                            "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0 and "accuracy" in printed and "held-out" in printed and "minmax: scaled =" in printed
    assert load_d4rl(tmp_path / "learned.hdf5")["rewards"].max() == pytest.approx(1.0)
    code = cli_reward.main(["relabel", "--reward-model", str(tmp_path / "rm"), "--dataset", str(data), "--out",
                            str(tmp_path / "affine.hdf5"), "--scaling", "affine", "--scale", "2", "--shift", "-1",
                            "--no-progress"])
    assert code == 0 and "affine: scaled = 2 * learned + -1" in capsys.readouterr().out
    code = cli_reward.main(["relabel", "--reward-model", str(tmp_path / "rm"), "--dataset", str(data), "--out",
                            str(tmp_path / "x.hdf5"), "--scale", "2", "--no-progress"])
    assert code == 2 and "--scale/--shift need --scaling affine" in capsys.readouterr().err
    code = cli_reward.main(["relabel", "--reward-model", str(tmp_path / "rm"), "--dataset", str(data), "--out",
                            str(tmp_path / "affine.hdf5"), "--no-progress"])
    assert code == 2 and "already exists" in capsys.readouterr().err
    code = cli_reward.main(["train-reward", "--labels", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"),
                            "--no-progress"])
    assert code == 2 and "no labels.jsonl" in capsys.readouterr().err
