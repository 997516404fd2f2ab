"""The offline-RL chain from the shell, as a user runs it: record -> label -> train-reward (+ relabel) -> train iql ->
eval, once on a LeRobot dataset recorded by robot_irl and once on a D4RL-style HDF5 file exported from it."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from robot_irl.cli import main

pytestmark = [pytest.mark.sim, pytest.mark.data]

#: random episodes never lift the cube (reward 0 everywhere): the oracle ranks frames by a dense per-frame signal
SIGNAL = ("--oracle-signal", "observation.state:shoulder.pos")
TINY = '{algorithm: {hidden: [32, 32]}, trainer: {num_threads: 1, batch_size: 64, log_every: 10}}'


def run(capsys, *argv: str) -> str:
    code = main(list(argv))
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    return out.out


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    root = tmp_path_factory.mktemp("offline_rl") / "rec"
    assert main(["record", "--backend", "mujoco_arm", "--policy", "random", "--episodes", "4", "--max-steps", "25",
                 "--out", str(root)]) == 0
    return root


def test_chain_on_a_lerobot_dataset(recording, tmp_path, capsys):
    dataset = recording / "dataset"
    out = run(capsys, "label", "--dataset", str(dataset), "--backend", "oracle", "--pairs", "60", "--out",
              str(tmp_path / "labels"), "--no-progress", *SIGNAL)
    assert "pairs        60" in out
    run(capsys, "train-reward", "--labels", str(tmp_path / "labels"), "--out", str(tmp_path / "reward"),
        "--relabel", str(tmp_path / "relabelled"), "--max-epochs", "3", "--no-progress")
    info = json.loads((tmp_path / "relabelled" / "meta" / "info.json").read_text())
    assert {"next.reward", "next.reward_true"} <= set(info["features"])
    out = run(capsys, "train", "iql", "--dataset", str(tmp_path / "relabelled"), "--steps", "30", "--out",
              str(tmp_path / "iql"), "--config", TINY, "--no-progress")
    assert (tmp_path / "iql" / "checkpoint" / "model.safetensors").is_file()
    assert list((tmp_path / "iql" / "tb").glob("events.out.tfevents.*"))  # TensorBoard logs
    out = run(capsys, "eval", "--policy", str(tmp_path / "iql"), "--episodes", "1", "--max-steps", "10")
    assert "success rate" in out  # the driver that recorded the data is found from the checkpoint
    result = json.loads((tmp_path / "iql" / "eval.json").read_text())
    assert len(result["episodes"]) == 1 and result["episodes"][0]["steps"] == 10


def test_chain_on_a_d4rl_file(recording, tmp_path, capsys):
    h5 = tmp_path / "rec.hdf5"
    run(capsys, "export-d4rl", str(recording / "dataset"), str(h5))
    run(capsys, "label", "--dataset", str(h5), "--backend", "oracle", "--pairs", "60", "--out",
        str(tmp_path / "labels"), "--no-progress", "--oracle-signal", "observations:1")
    relabelled = tmp_path / "relabelled.hdf5"
    run(capsys, "train-reward", "--labels", str(tmp_path / "labels"), "--out", str(tmp_path / "reward"),
        "--relabel", str(relabelled), "--max-epochs", "3", "--no-progress")
    with h5py.File(relabelled, "r") as f, h5py.File(h5, "r") as g:
        np.testing.assert_allclose(f["infos/rewards_true"][:], g["rewards"][:])  # the original reward is kept
        assert f["rewards"].shape == g["rewards"].shape
    run(capsys, "train", "iql", "--dataset", str(relabelled), "--steps", "30", "--out", str(tmp_path / "iql"),
        "--config", TINY, "--no-progress")
    out = run(capsys, "eval", "--policy", str(tmp_path / "iql"), "--episodes", "1", "--max-steps", "10",
              "--backend", "mujoco_arm")
    assert "success rate" in out
