"""The legged learner on the real Go1 vec env: tiny training runs of every policy kind, exact resume, the deployable
policy through the ``go1`` driver, evaluation under dynamics ranges, the command line and the HIB experiment."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from robot_irl.core.config import ConfigError

pytestmark = pytest.mark.sim

KINDS = ("dr", "oracle", "rma", "hib")


def tiny_config(kind: str, iterations: int = 2, **extra):
    from robot_irl.legged.train import LeggedTrainConfig

    data = {"num_envs": 8, "steps_per_env": 8, "total_steps": 64 * iterations, "progress": False,
            "checkpoint_every": 0, "ppo": {"minibatches": 2, "epochs": 1},
            "actor_critic": {"kind": kind, "actor_hidden": [16], "critic_hidden": [16]}, **extra}
    return LeggedTrainConfig.from_dict(data)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """One tiny trained run per kind (2 iterations of 8 envs x 8 steps; RMA: 1 teacher + 1 adaptation)."""
    from robot_irl.legged.train import train_legged

    root = tmp_path_factory.mktemp("legged")
    out = {}
    for kind in KINDS:
        summary = train_legged(tiny_config(kind), root / kind)
        out[kind] = (root / kind, summary)
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_trains_and_writes_its_run(checkpoints, kind):
    run, summary = checkpoints[kind]
    assert summary["env_steps"] == 128 and summary["iterations"] == 2 and summary["kind"] == kind
    for name in ("config.json", "metrics.jsonl", "curves.png", "checkpoint/config.json",
                 "checkpoint/model.safetensors", "checkpoint/normalizer.safetensors",
                 "checkpoint/optimizer.safetensors", "checkpoint/runner_state.safetensors"):
        assert (run / name).is_file(), name
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in rows] == (["rl", "adaptation"] if kind == "rma" else ["rl", "rl"])
    assert ("adaptation_mse" in rows[-1]) == (kind == "rma")
    assert ("infonce" in rows[0] and "kl_z" in rows[0]) == (kind == "hib")
    config = json.loads((run / "checkpoint/config.json").read_text())
    # the training recipe's observation: 45 proprioceptive values + the 2 Hz gait clock (sin, cos)
    assert config["kind"] == kind and config["dims"]["obs_dim"] == 47 and config["dims"]["act_dim"] == 12
    assert config["privileged_names"][0] == "friction" and config["proprio_spec"]["joint_names"][0] == "FR_hip"
    assert config["proprio_spec"]["gait_frequency"] == 2.0 and config["proprio_spec"]["names"][-1] == "clock.cos"
    assert config["train"]["ppo"]["gamma"] == 0.97 and config["env"]["gait"]["frequency"] == 2.0


@pytest.mark.unit
def test_config_overrides_merge_onto_the_training_recipe():
    from robot_irl.legged.train import LeggedTrainConfig, recipe_env

    config = LeggedTrainConfig.from_dict({"ppo": {"epochs": 1}, "env": {"gait": {"lift": 0.1}}})
    assert config.ppo.epochs == 1 and config.ppo.gamma == 0.97 and config.ppo.desired_kl == 0.02
    assert config.env["gait"] == {"frequency": 2.0, "lift": 0.1}
    assert config.env["rewards"] == recipe_env()["rewards"]  # the reward clip and gait reward kept
    assert LeggedTrainConfig.from_dict(config.to_dict()) == config  # a saved config loads as saved
    off = LeggedTrainConfig.from_dict({"env": {"gait": {"frequency": 0.0}, "rewards": {"gait_contact": 0.0}}})
    assert off.env["gait"]["frequency"] == 0.0 and off.env["rewards"]["only_positive_rewards"] is True


def test_resume_continues_exactly_on_the_go1_env(tmp_path):
    from robot_irl.legged.train import load_ppo_checkpoint, train_legged

    config = tiny_config("hib", 4, actor_critic={"kind": "hib", "actor_hidden": [16], "critic_hidden": [16],
                                                 "history": 4})
    train_legged(config, tmp_path / "whole")
    train_legged(config, tmp_path / "part", stop_at=2)
    summary = train_legged(config, tmp_path / "part", resume=True)
    assert summary["resumed"] and summary["iterations"] == 4
    a, _ = load_ppo_checkpoint(tmp_path / "whole")
    b, _ = load_ppo_checkpoint(tmp_path / "part")
    for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), name


def test_rma_from_a_teacher_checkpoint(checkpoints, tmp_path):
    from robot_irl.learn.trainer import CheckpointError
    from robot_irl.legged.train import load_ppo_checkpoint, train_legged

    oracle_run, _ = checkpoints["oracle"]
    summary = train_legged(tiny_config("rma", teacher=str(oracle_run)), tmp_path / "rma")
    assert summary["rl_steps"] == 0 and summary["adaptation_steps"] == 128 and summary["teacher_steps"] == 128
    teacher, _ = load_ppo_checkpoint(oracle_run)
    student, _ = load_ppo_checkpoint(tmp_path / "rma")
    assert torch.equal(teacher.model.actor[0].weight, student.model.actor[0].weight)  # the actor stays frozen
    assert torch.equal(teacher.normalizers["proprio"].mean, student.normalizers["proprio"].mean)
    with pytest.raises(CheckpointError, match="no privileged encoder"):
        train_legged(tiny_config("rma", teacher=str(checkpoints["hib"][0])), tmp_path / "bad")


@pytest.mark.parametrize("kind", KINDS)
def test_legged_policy_acts_through_the_go1_driver(checkpoints, kind):
    from robot_irl.drivers import make_driver
    from robot_irl.legged.policy import LeggedPolicy
    from robot_irl.runner import rollout

    driver = make_driver("go1", {"command": [0.4, 0.0, 0.2]})
    with driver:
        policy = LeggedPolicy.from_driver(driver, checkpoint=checkpoints[kind][0])
        assert policy.command.tolist() == pytest.approx([0.4, 0.0, 0.2])
        results = rollout(driver, policy, episodes=1, max_steps=15, progress=False)
        assert results[0].steps == 15
        obs = driver.reset(seed=3)
        policy.reset()
        target = policy.act(obs)
        low, high = np.asarray(driver.safety_limits.lower), np.asarray(driver.safety_limits.upper)
        assert target.shape == (12,) and np.all(np.isfinite(target))
        sent = driver.send_action(target)
        assert np.all(sent >= low - 1e-6) and np.all(sent <= high + 1e-6)
        # act() is act_batch() on the same proprio history, mapped to joint targets
        policy.reset()
        x = policy.proprio(obs)
        hist = np.repeat(x[None, None], policy.history_length, axis=1)
        priv = obs["observation.environment_state"][policy._privileged_index][None] if kind == "oracle" else None
        again = policy.act(obs)
        expected = policy.default_pose + policy.action_scale * policy.act_batch(hist, priv)[0]
        assert np.allclose(again, expected, atol=1e-6)
    assert policy.deployable == (kind != "oracle")
    assert policy.inputs == ("observation" if kind == "oracle" else "sensors")  # what the policy node feeds it


def test_legged_policy_rejects_wrong_drivers_and_observations(checkpoints):
    from robot_irl.drivers import make_driver
    from robot_irl.legged.policy import LeggedPolicy, LeggedPolicyError

    with pytest.raises(LeggedPolicyError, match="observation.state"):
        LeggedPolicy.from_driver(make_driver("mujoco_arm", {}), checkpoint=checkpoints["dr"][0])
    policy = LeggedPolicy(checkpoints["dr"][0])
    with pytest.raises(LeggedPolicyError, match="no 'observation.state'"):
        policy.act({})
    with pytest.raises(LeggedPolicyError, match="NaN"):
        policy.act({"observation.state": np.full(34, np.nan, dtype=np.float32)})
    with pytest.raises(LeggedPolicyError, match="34 entries"):
        policy.act({"observation.state": np.zeros(30, dtype=np.float32)})
    with pytest.raises(LeggedPolicyError, match="3 finite values"):
        policy.set_command([1.0, 2.0])
    oracle = LeggedPolicy(checkpoints["oracle"][0])
    with pytest.raises(LeggedPolicyError, match="not deployable"):
        oracle.act({"observation.state": np.zeros(34, dtype=np.float32)})
    from robot_irl.learn.trainer import CheckpointError

    with pytest.raises(CheckpointError, match="no checkpoint"):
        LeggedPolicy(checkpoints["dr"][0] / "nowhere")


def test_evaluate_legged_reports_tracking_return_and_falls(checkpoints):
    from robot_irl.legged.evaluate import evaluate_legged, sweep_legged
    from robot_irl.legged.policy import LeggedPolicy

    policy = LeggedPolicy(checkpoints["hib"][0])
    first = evaluate_legged(policy, "held_out", episodes=4, max_steps=40, seed=5)
    for key in ("mean_lin_vel_error", "mean_ang_vel_error", "mean_return", "fall_rate", "mean_length", "terms"):
        assert key in first, key
    assert first["episodes"] == 4 and 0.0 <= first["fall_rate"] <= 1.0 and first["mean_length"] <= 40
    again = evaluate_legged(policy, "held_out", episodes=4, max_steps=40, seed=5)
    assert again["mean_return"] == first["mean_return"]  # deterministic actions, seeded env
    fixed = evaluate_legged(checkpoints["oracle"][0], "none", episodes=3, max_steps=10, model_variant="sim2sim",
                            commands="fixed")
    assert fixed["model_variant"] == "sim2sim" and fixed["commands"] == "fixed"
    sweep = sweep_legged(policy, "friction", (0.1, 2.0), episodes=2, max_steps=10)
    assert [row["value"] for row in sweep] == [0.1, 2.0] and sweep[0]["randomization"] == "friction=0.1"
    with pytest.raises(ConfigError, match="unknown parameter"):
        sweep_legged(policy, "gravity", (1.0,))
    with pytest.raises(ValueError, match="episodes"):
        evaluate_legged(policy, "train", episodes=0)


# ---------------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    from robot_irl.legged.cli import add_eval_dynamics_parser, add_ppo_arguments

    parser = argparse.ArgumentParser(prog="robot-irl")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train").add_subparsers(dest="learner", required=True)
    add_ppo_arguments(train.add_parser("ppo"))
    add_eval_dynamics_parser(sub)
    return parser


def test_cli_parses_trains_and_evaluates(tmp_path, capsys):
    from robot_irl.learn.ppo import KINDS as LEARNER_KINDS
    from robot_irl.legged.cli import POLICY_KINDS

    assert POLICY_KINDS == LEARNER_KINDS
    parser = _parser()
    config = '{num_envs: 8, steps_per_env: 8, ppo: {minibatches: 2, epochs: 1}, actor_critic: {actor_hidden: [16], ' \
             'critic_hidden: [16], history: 4}}'
    args = parser.parse_args(["train", "ppo", "--policy", "hib", "--steps", "64", "--out", str(tmp_path / "run"),
                              "--config", config, "--seed", "3", "--device", "cpu", "--no-progress"])
    assert args.func(args) == 0
    assert "trained hib for 64 env steps" in capsys.readouterr().out
    saved = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())
    assert saved["train"]["seed"] == 3 and saved["actor_critic"]["history"] == 4
    args = parser.parse_args(["eval-dynamics", "--policy", str(tmp_path / "run"), "--range", "train",
                              "--episodes", "2", "--variant", "sim2sim", "--json", "--no-progress",
                              "--sweep", "friction=0.2,1.5"])
    assert args.func(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 2 and result["model_variant"] == "sim2sim" and len(result["sweep"]) == 2
    # the result is kept beside the policy: JSON (with the command) and a markdown table
    saved = json.loads((tmp_path / "run" / "eval_dynamics_train_sim2sim.json").read_text())
    assert saved["fall_rate"] == result["fall_rate"] and saved["command"].startswith("robot-irl eval-dynamics ")
    table = (tmp_path / "run" / "eval_dynamics_train_sim2sim.md").read_text()
    assert "| all |" in table and "| friction = 0.2 |" in table and "| friction = 1.5 |" in table
    args = parser.parse_args(["eval-dynamics", "--policy", str(tmp_path / "run"), "--range", "none", "--episodes", "1",
                              "--no-progress", "--out", str(tmp_path / "results")])
    assert args.func(args) == 0
    assert "results: " in capsys.readouterr().out
    assert (tmp_path / "results" / "eval_dynamics_none_default.md").is_file()


def test_cli_rejects_bad_input(tmp_path, capsys):
    from robot_irl.cli import CliError
    from robot_irl.legged.cli import parse_sweep

    parser = _parser()
    for argv in (["train", "ppo", "--policy", "ppo2", "--steps", "10", "--out", "x"],
                 ["train", "ppo", "--policy", "dr", "--steps", "10", "--out", "x", "--task", "go1_moon"],
                 ["train", "ppo", "--policy", "dr", "--out", "x"],
                 ["eval-dynamics", "--policy", "x", "--range", "extreme"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    capsys.readouterr()
    bad = [["--steps", "0"], ["--config", "{ppo: {clip: -1}}"], ["--config", "{no_such_field: 1}"],
           ["--config", "[1, 2"], ["--teacher", "runs/x", "--policy", "hib"]]
    for extra in bad:
        argv = ["train", "ppo", "--policy", "dr", "--steps", "64", "--out", str(tmp_path / "r"), *extra]
        args = parser.parse_args(argv[:3] + [a for a in argv[3:]])
        with pytest.raises(ConfigError):
            args.func(args)
    args = parser.parse_args(["eval-dynamics", "--policy", str(tmp_path / "missing")])
    with pytest.raises(CliError, match="no checkpoint"):
        args.func(args)
    with pytest.raises(ConfigError, match="--sweep"):
        parse_sweep("friction")


def test_cli_module_imports_no_torch_or_mujoco():
    code = ("import sys, argparse; import robot_irl.legged.cli as c; p = argparse.ArgumentParser(); "
            "c.add_ppo_arguments(p); c.add_eval_dynamics_parser(argparse.ArgumentParser().add_subparsers()); "
            "print(sorted(m for m in ('torch', 'mujoco') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


# ---------------------------------------------------------------------------------------------------------------
# the experiment
# ---------------------------------------------------------------------------------------------------------------
def test_hib_experiment_end_to_end(tmp_path, capsys):
    from robot_irl.experiments.hib import BUDGETS, HIBExperimentConfig, run_from_cli

    assert set(BUDGETS) == {"small", "default", "large"}
    overrides = {"progress": False, "eval_episodes": 2, "eval_max_steps": 10,
                 "train": {"num_envs": 8, "steps_per_env": 8, "total_steps": 128,
                           "ppo": {"minibatches": 2, "epochs": 1}}}
    results = run_from_cli("small", overrides, seed=7, out=tmp_path / "exp")
    out = tmp_path / "exp"
    for name in ("results.md", "results.json", "results.png", "config.json"):
        assert (out / name).is_file(), name
    table = results["table"]
    assert list(table) == list(KINDS)
    for kind in KINDS:
        assert set(table[kind]) >= {"train", "held_out", "sim2sim", "env_steps"}
        assert table[kind]["env_steps"] == 128  # the same budget for every policy (RMA: teacher + adaptation)
        assert (out / "seed7" / kind / "checkpoint" / "model.safetensors").is_file()
    printed = capsys.readouterr().out
    assert "| HIB |" in printed and "held-out range: lin err" in printed
    saved = json.loads((out / "results.json").read_text())
    assert saved["config"]["seeds"] == [7]
    with pytest.raises(ConfigError, match="unknown budget"):
        HIBExperimentConfig.budget("huge")
    with pytest.raises(ConfigError, match="HIBExperimentConfig.policies"):
        HIBExperimentConfig.budget("small", policies=["dr", "ppo"])
    with pytest.raises(FileExistsError):
        run_from_cli("small", overrides, seed=7, out=out)
    # resume: a lost evaluation is redone, everything finished is reused, a changed config is refused
    (out / "seed7" / "hib" / "evaluation.json").unlink()
    capsys.readouterr()
    again = run_from_cli("small", overrides, seed=7, out=out, resume=True)
    printed = capsys.readouterr().out
    assert printed.count("evaluation reused") == 3 and "resuming HIB" in printed
    assert again["table"]["dr"]["train"] == table["dr"]["train"]
    assert again["table"]["hib"]["held_out"] == table["hib"]["held_out"]  # deterministic evaluation, redone
    with pytest.raises(ConfigError, match=r"differs from the saved one in \['eval_episodes'\]"):
        run_from_cli("small", {**overrides, "eval_episodes": 3}, seed=7, out=out, resume=True)
