"""``robot-irl train bc|iql`` and ``robot-irl eval``: D4RL files and a recorded LeRobot dataset to checkpoints,
TensorBoard logs and learning curves, resume, evaluation in simulation with a video, and one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from robot_irl.data.synthetic import make_synthetic_d4rl
from robot_irl.learn.cli_train import TRAIN_COMMANDS, load_sections, main

pytestmark = pytest.mark.data

FAST = "{iql: {hidden: [32, 32]}, trainer: {log_every: 20, batch_size: 32, num_threads: 1}}"
FAST_BC = "{bc: {hidden: [32, 32]}, trainer: {log_every: 20, batch_size: 32, num_threads: 1}}"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse usage errors
        code = int(e.code)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def d4rl_file(tmp_path_factory):
    return make_synthetic_d4rl(tmp_path_factory.mktemp("cli") / "pm.hdf5", n_episodes=10, length=20)


@pytest.fixture(scope="module")
def arm_recording(tmp_path_factory):
    """A tiny LeRobot dataset recorded by ``robot-irl record`` on the small MuJoCo arm (its config.json says so)."""
    from robot_irl.cli import main as robot_irl

    out = tmp_path_factory.mktemp("rec") / "run"
    assert robot_irl(["record", "--backend", "mujoco_arm", "--policy", "random", "--episodes", "3", "--max-steps",
                      "10", "--out", str(out)]) == 0
    return out


def test_importing_and_building_the_parser_imports_no_torch():
    code = ("import sys, argparse; from robot_irl.learn.cli_train import add_train_parser, add_eval_parser; "
            "p = argparse.ArgumentParser(); s = p.add_subparsers(); add_train_parser(s); add_eval_parser(s); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert TRAIN_COMMANDS.names() == ["bc", "iql", "ppo"]


def test_config_sections_are_checked():
    assert load_sections("{iql: {beta: 10}, data: {reward_mode: antmaze}}", "iql")["algorithm"] == {"beta": 10}
    from robot_irl.core.config import ConfigError

    with pytest.raises(ConfigError, match="unknown section"):
        load_sections("{model: {}}", "iql")


def test_train_iql_and_bc_on_a_d4rl_file_and_resume(d4rl_file, tmp_path, capsys):
    out = tmp_path / "iql"
    code, stdout, err = run(capsys, "train", "iql", "--dataset", d4rl_file, "--steps", 40, "--out", out,
                            "--no-progress", "--device", "cpu", "--config", FAST)
    assert code == 0, err
    assert "trained iql for 40 steps" in stdout and "checkpoint:" in stdout
    assert {"config.json", "model.safetensors", "normalizer.safetensors", "optimizer.safetensors"} <= \
        {p.name for p in (out / "checkpoint").iterdir()}
    assert list((out / "tb").glob("events.out.tfevents.*")) and (out / "learning_curve.png").stat().st_size > 1000
    run_config = json.loads((out / "config.json").read_text())["config"]
    assert run_config["data"]["data"]["reward_key"] == "rewards" and run_config["data"]["data"]["timeouts"] == "drop"
    assert run_config["algorithm_config"]["schedule_steps"] == 40 and run_config["trainer"]["device"] == "cpu"
    assert run_config["driver"] is None  # a plain D4RL file names no driver

    code, stdout, err = run(capsys, "train", "iql", "--dataset", d4rl_file, "--steps", 60, "--out", out,
                            "--no-progress", "--device", "cpu", "--config", FAST, "--resume")
    assert code == 0, err
    assert "60 steps" in stdout and "resumed" in stdout
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [20, 40, 60]

    code, stdout, err = run(capsys, "train", "bc", "--dataset", d4rl_file, "--steps", 20, "--out", tmp_path / "bc",
                            "--no-progress", "--config", FAST_BC)
    assert code == 0, err
    assert "trained bc for 20 steps on 170 frames" in stdout  # every frame: BC drops no timeouts


@pytest.mark.sim
def test_train_on_a_recording_then_eval_with_video(arm_recording, tmp_path, capsys):
    out = tmp_path / "iql"
    code, stdout, err = run(capsys, "train", "iql", "--dataset", arm_recording / "dataset", "--steps", 40,
                            "--out", out, "--no-progress", "--config", FAST, "--eval-every", 20, "--eval-episodes", 1,
                            "--eval-max-steps", 5)
    assert code == 0, err
    assert "eval at step 20: success rate" in stdout and "eval at step 40" in stdout
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history if "eval/success_rate" in h] == [20, 40]
    assert 0.0 <= history[-1]["eval/success_rate"] <= 1.0 and history[-1]["eval/return"] >= 0.0
    checkpoint = json.loads((out / "checkpoint" / "config.json").read_text())
    assert checkpoint["driver"]["backend"] == "mujoco_arm" and checkpoint["driver"]["max_steps"] == 10

    video = tmp_path / "rollouts.mp4"
    code, stdout, err = run(capsys, "eval", "--policy", out, "--episodes", 2, "--max-steps", 5, "--video", video)
    assert code == 0, err
    assert "success rate" in stdout and "mean return" in stdout
    report = json.loads((out / "eval.json").read_text())
    assert report["driver"]["backend"] == "mujoco_arm" and len(report["episodes"]) == 2
    assert [e["steps"] for e in report["episodes"]] == [5, 5] and 0.0 <= report["success_rate"] <= 1.0
    import av

    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 10 and frames[0].shape == (128, 128, 3) and frames[0].std() > 5  # a real picture

    code, stdout, err = run(capsys, "train", "bc", "--dataset", arm_recording / "dataset", "--steps", 20,
                            "--out", tmp_path / "bc", "--no-progress", "--config", FAST_BC)
    assert code == 0, err
    code, stdout, err = run(capsys, "eval", "--policy", tmp_path / "bc" / "checkpoint", "--episodes", 1,
                            "--max-steps", 3, "--out", tmp_path / "bc_eval.json")
    assert code == 0, err
    assert json.loads((tmp_path / "bc_eval.json").read_text())["algorithm"] == "bc"


@pytest.mark.parametrize("argv, message", [
    (["train", "iql", "--dataset", "/nonexistent/data.hdf5", "--out", "{tmp}/x"], "no such file or folder"),
    (["train", "iql", "--dataset", "{tmp}/data.csv", "--out", "{tmp}/x"], "expected a LeRobot dataset folder"),
    (["train", "sac", "--dataset", "{h5}"], "invalid choice: 'sac'"),
    (["train", "iql", "--out", "{tmp}/x"], "the following arguments are required: --dataset"),
    (["train", "iql", "--dataset", "{h5}", "--out", "{tmp}/x", "--config", "{model: {}}"], "unknown section"),
    (["train", "iql", "--dataset", "{h5}", "--out", "{tmp}/x", "--config", "{iql: {beta: -1}}"], "IQLConfig.beta"),
    (["train", "iql", "--dataset", "{h5}", "--out", "{tmp}/x", "--eval-every", "10"], "--eval-every needs a sim"),
    (["train", "iql", "--dataset", "{h5}", "--out", "{tmp}/x", "--device", "tpu"], "TrainerConfig.device"),
    (["eval", "--policy", "{tmp}/nothing"], "no checkpoint at"),
])
def test_bad_input_is_one_clear_line(argv, message, d4rl_file, tmp_path, capsys):
    (tmp_path / "data.csv").write_text("a,b\n")
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{h5}", str(d4rl_file)) for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_refuses_an_existing_run_and_eval_needs_a_driver(d4rl_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(capsys, "train", "iql", "--dataset", d4rl_file, "--steps", 5, "--out", out, "--no-progress",
               "--config", FAST)[0] == 0
    code, _, err = run(capsys, "train", "iql", "--dataset", d4rl_file, "--steps", 5, "--out", out, "--no-progress")
    assert code == 2 and "already exists" in err and "--resume" in err
    code, _, err = run(capsys, "eval", "--policy", out, "--episodes", 1)
    assert code == 2 and "does not say which driver" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "eval", "--policy", out, "--episodes", 1, "--backend", "mock")
    assert code == 2 and "trained on" in err  # the mock arm's features are not the point mass's
