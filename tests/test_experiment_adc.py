"""``robot-irl experiment adc``: config and budgets, the report, the command line, and a tiny run end to end."""
from __future__ import annotations

import argparse
import json

import pytest

from robot_irl.core.config import ConfigError
from robot_irl.experiments.adc import (
    BUDGETS,
    ADCExperimentConfig,
    aggregate,
    goal_vocabulary,
    plot_results,
    results_markdown,
    run_adc_experiment,
)
from robot_irl.experiments.cli import EXPERIMENTS, add_experiment_parser

pytestmark = pytest.mark.sim

#: the smallest run that still exercises every stage (collection with and without the adversary, three training
#: sets, every evaluation condition, the report); ~30 s on 2 cores
TINY = {"traditional_episodes": 3, "adc_fraction": 0.34, "eval_episodes": 1, "eval_max_steps": 40,
        "collect_max_steps": 200, "seeds": [0], "progress": False,
        "trainer": {"steps": 60, "log_every": 20, "batch_size": 64}, "bc": {"hidden": [64, 64]}}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robot-irl")
    add_experiment_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_budgets_resolve_and_bad_values_are_named():
    small = ADCExperimentConfig.budget("small")
    assert small.traditional_episodes == 10 and small.adc_episodes == 2 and small.trainer.steps == 600
    default = ADCExperimentConfig.budget("default")
    assert default.adc_episodes == 10 and len(default.seeds) == 3
    assert default.features.goal_features and default.features.binary_gripper  # nested defaults survive merging
    assert ADCExperimentConfig.budget("small", trainer={"steps": 7}).trainer.batch_size == 256
    assert set(BUDGETS) == {"small", "default", "large"}
    with pytest.raises(ConfigError, match="unknown budget 'huge'"):
        ADCExperimentConfig.budget("huge")
    with pytest.raises(ConfigError, match="ADCExperimentConfig.conditions"):
        ADCExperimentConfig(conditions=("clean", "rain"))
    with pytest.raises(ConfigError, match="ADCExperimentConfig.adc_fraction"):
        ADCExperimentConfig(adc_fraction=0.0)
    with pytest.raises(ConfigError, match="unknown key"):
        ADCExperimentConfig.budget("small", episodes=3)


def test_vocabulary_names_every_object():
    assert goal_vocabulary(3) == ["lift the red cube", "lift the blue box", "lift the yellow ball",
                                  "lift the green cylinder"]


def test_report_table_and_plot(tmp_path):
    def evaluation(rates):
        return {c: {"success_rate": r, "successes": [True] * int(r * 4) + [False] * (4 - int(r * 4))}
                for c, r in zip(("clean", "held_out"), rates)}

    per_seed = {
        0: {"arms": {"traditional": {"episodes": 10, "frames": 400}, "adc": {"episodes": 2, "frames": 190}},
            "evaluation": {"traditional": evaluation([1.0, 0.0]), "adc": evaluation([0.5, 0.25]),
                           "operator": evaluation([1.0, 0.75])}},
        1: {"arms": {"traditional": {"episodes": 10, "frames": 420}, "adc": {"episodes": 2, "frames": 210}},
            "evaluation": {"traditional": evaluation([0.75, 0.0]), "adc": evaluation([0.75, 0.25])}},
    }
    config = ADCExperimentConfig(conditions=("clean", "held_out"), seeds=(0, 1))
    table = aggregate(per_seed, config.conditions)
    assert table["traditional"]["clean"]["mean"] == pytest.approx(0.875)
    assert table["traditional"]["clean"]["std"] == pytest.approx(0.125)
    assert table["adc"]["frames"] == 200 and table["operator"]["clean"]["seeds"] == 1
    md = results_markdown(table, config)
    assert "| traditional (100%) | 10 | 410 | 0.88 ± 0.12 | 0.00 ± 0.00 |" in md
    assert "| scripted operator (reference) | - | - | 1.00 | 0.75 |" in md
    assert plot_results(table, config.conditions, tmp_path / "r.png").stat().st_size > 5000


def test_command_line_parses_and_rejects():
    args = _parser().parse_args(["experiment", "adc", "--budget", "small", "--seed", "4", "--out", "x"])
    assert (args.experiment, args.budget, args.seed, args.out) == ("adc", "small", 4, "x")
    assert callable(args.func)
    with pytest.raises(SystemExit):
        _parser().parse_args(["experiment", "adc", "--budget", "tiny"])
    assert set(EXPERIMENTS.get("adc").budgets) == set(BUDGETS)  # the light parser knows the real budgets
    # --resume only where the runner can continue a run (hib), and only with the folder to continue
    with pytest.raises(SystemExit):
        _parser().parse_args(["experiment", "adc", "--resume"])
    assert _parser().parse_args(["experiment", "hib", "--resume", "--out", "x"]).resume
    from robot_irl.experiments.cli import run_experiment

    with pytest.raises(ConfigError, match=r"'adc' cannot resume; resumable experiments: \['hib'\]"):
        run_experiment("adc", "small", resume=True, out="x")
    with pytest.raises(ConfigError, match="--resume needs the --out"):
        run_experiment("hib", "small", resume=True)


def test_tiny_experiment_end_to_end(tmp_path):
    out = tmp_path / "adc"
    results = run_adc_experiment(ADCExperimentConfig.from_dict(TINY), out)
    for name in ("results.md", "results.json", "results.png", "config.json"):
        assert (out / name).is_file(), name
    table = json.loads((out / "results.json").read_text())["table"]
    assert set(table) == {"traditional", "traditional_matched", "adc", "operator"}
    for arm, row in table.items():
        assert set(row) >= {"clean", "train", "held_out", "language"}, arm
        assert all(0.0 <= row[c]["mean"] <= 1.0 and row[c]["episodes"] == 1 for c in ("clean", "held_out"))
    seed = results["per_seed"][0]
    assert seed["arms"]["traditional"]["episodes"] <= 3 and seed["arms"]["adc"]["episodes"] <= 1
    assert seed["collection"]["adc"]["perturbations"], "the ADC dataset must hold perturbations"
    assert not seed["collection"]["traditional"]["perturbations"]
    for arm in ("traditional", "traditional_matched", "adc"):
        run = out / "seed0" / "train" / arm
        assert (run / "checkpoint" / "model.safetensors").is_file() and (run / "learning_curve.png").is_file()
    assert "| ADC |" in (out / "results.md").read_text()
    with pytest.raises(FileExistsError):  # never overwrites a finished run
        run_adc_experiment(ADCExperimentConfig.from_dict(TINY), out)


@pytest.mark.slow
def test_small_budget_end_to_end(tmp_path):
    args = _parser().parse_args(["experiment", "adc", "--budget", "small", "--out", str(tmp_path / "small"),
                                 "--no-progress"])
    assert args.func(args) == 0
    table = json.loads((tmp_path / "small" / "results.json").read_text())["table"]
    assert table["traditional"]["clean"]["episodes"] == BUDGETS["small"]["eval_episodes"]
