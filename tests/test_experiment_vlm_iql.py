"""``robot-irl experiment vlm-iql``: config and budgets, the sub-optimal behaviours, the report, and a tiny run end to
end with every arm, the VLM one against a local fake OpenAI-protocol server."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from fake_openai_server import FakeOpenAI

from robot_irl.core.config import ConfigError
from robot_irl.experiments.cli import EXPERIMENTS, add_experiment_parser
from robot_irl.experiments.vlm_iql import (
    BUDGETS,
    VLMIQLExperimentConfig,
    aggregate,
    plot_results,
    results_markdown,
    run_vlm_iql_experiment,
)

pytestmark = pytest.mark.sim

TINY = {"episodes": 4, "max_steps": 50, "steps": 40, "batch_size": 64, "hidden": [32, 32], "oracle_pairs": 60,
        "eval_episodes": 1, "eval_max_steps": 30, "seeds": [0], "progress": False, "camera_size": 32,
        "reward": {"max_epochs": 3, "ensemble": 2, "image_size": 32},
        "behaviours": {"expert": 0.5, "switching": 0.5}}


def test_budgets_and_bad_values_are_named():
    small = VLMIQLExperimentConfig.budget("small")
    assert small.episodes == 30 and small.steps == 3000 and small.seeds == (0,)
    assert VLMIQLExperimentConfig.budget("default").behaviours["switching"] > 0.5
    assert small.reward["inputs"] == "state" and small.reward["max_epochs"] == 30  # nested defaults survive
    assert set(EXPERIMENTS.get("vlm-iql").budgets) == set(BUDGETS)
    with pytest.raises(ConfigError, match="unknown budget"):
        VLMIQLExperimentConfig.budget("huge")
    with pytest.raises(ConfigError, match="behaviours"):
        VLMIQLExperimentConfig(behaviours={"expert": 1.0, "dancing": 1.0})
    with pytest.raises(ConfigError, match="distractors"):
        VLMIQLExperimentConfig(distractors=0)  # wrong_object episodes need another object
    with pytest.raises(ConfigError, match="arms"):
        VLMIQLExperimentConfig(arms=("bc", "ppo"))
    with pytest.raises(ConfigError, match="needs base_url and model"):
        VLMIQLExperimentConfig.from_dict({"vlm": {"enabled": "true"}}).vlm.resolve()


def test_vlm_arm_follows_the_environment(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    assert VLMIQLExperimentConfig().vlm.resolve()[0] is False
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_MODEL", "m")
    assert VLMIQLExperimentConfig().vlm.resolve() == (True, "http://127.0.0.1:9/v1", "m")
    assert VLMIQLExperimentConfig.from_dict({"vlm": {"enabled": "false"}}).vlm.resolve()[0] is False


def test_report_table_and_plot(tmp_path):
    per_seed = {s: {"evaluation": {"bc": {"success_rate": 0.1 * s, "mean_return": 1.0},
                                   "iql_true": {"success_rate": 0.8, "mean_return": 9.0},
                                   "data": {"success_rate": 0.3}},
                    "labels": {}} for s in (0, 1)}
    table = aggregate(per_seed)
    assert table["bc"]["mean"] == pytest.approx(0.05) and table["iql_true"]["std"] == 0.0
    md = results_markdown(table, VLMIQLExperimentConfig(seeds=(0, 1)))
    assert "| IQL, true reward | 0.80 ± 0.00 | 9.0 | - |" in md and "BC 0.04" in md
    assert plot_results(table, tmp_path / "r.png").stat().st_size > 5000


def test_command_line_parses():
    parser = argparse.ArgumentParser(prog="robot-irl")
    add_experiment_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["experiment", "vlm-iql", "--budget", "small", "--out", "x"])
    assert (args.experiment, args.budget) == ("vlm-iql", "small")


def _brighter(a: np.ndarray, b: np.ndarray) -> int:
    return int(b.mean() > a.mean())


def test_tiny_experiment_end_to_end_with_every_arm(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "vlm_iql"
    with FakeOpenAI(judge=_brighter) as server:
        config = VLMIQLExperimentConfig.from_dict({**TINY, "vlm": {"enabled": "true", "base_url": server.url,
                                                                   "model": "fake-vlm", "pairs": 12}})
        results = run_vlm_iql_experiment(config, out)
    for name in ("results.md", "results.json", "results.png", "config.json"):
        assert (out / name).is_file(), name
    table = json.loads((out / "results.json").read_text())["table"]
    assert {"bc", "iql_true", "iql_oracle", "iql_vlm", "data"} <= set(table) <= {*table, "filtered_bc"}
    assert all(0.0 <= row["mean"] <= 1.0 for row in table.values())
    seed = results["per_seed"][0]
    assert sum(v["episodes"] for v in seed["collection"]["behaviours"].values()) == 4
    assert seed["labels"]["oracle"]["pairs"] == 60 and seed["labels"]["vlm"]["pairs"] == 12
    assert seed["arms"]["iql_true"]["algorithm"] == "iql" and seed["arms"]["bc"]["algorithm"] == "bc"
    for labeller in ("oracle", "vlm"):  # each reward model relabelled its own copy; the original is untouched
        relabelled = out / "seed0" / "data" / f"dataset_{labeller}_reward"
        info = json.loads((relabelled / "meta" / "info.json").read_text())
        assert {"next.reward", "next.reward_true"} <= set(info["features"])
    original = json.loads((out / "seed0" / "data" / "dataset" / "meta" / "info.json").read_text())
    assert "next.reward_true" not in original["features"]
    records = [json.loads(line) for line in (out / "seed0" / "labels" / "vlm" / "labels.jsonl").open()]
    assert len(records) == 12 and all(r["model"] == "fake-vlm" for r in records)
    assert len(server.requests) >= 12  # the camera frames went to the (local) VLM
    with pytest.raises(FileExistsError):  # a finished run is never overwritten
        run_vlm_iql_experiment(config, out)


def test_run_experiment_resolves_budget_overrides_and_seeds(monkeypatch, tmp_path):
    import robot_irl.experiments.vlm_iql as module
    from robot_irl.experiments.cli import run_experiment

    seen = {}
    monkeypatch.setattr(module, "run_vlm_iql_experiment", lambda config, out: seen.update(config=config, out=out))
    run_experiment("vlm-iql", "default", {"episodes": 5}, seed=7, out=tmp_path / "x")
    assert seen["config"].episodes == 5 and seen["config"].seeds == (7, 8) and seen["out"] == tmp_path / "x"
