"""In-process collection sessions: an ADC run writes a LeRobot dataset with per-frame annotations, perturbations
and a mid-episode instruction change; traditional runs have none; episodes can be re-recorded, marked after saving
and appended to with resume; ``robot-irl collect`` runs in process."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from robot_irl.collect.adversary import AdversaryConfig, ScriptedAdversary
from robot_irl.collect.annotations import PERTURBATION_KIND, PERTURBED, PHASE, parse_perturbations
from robot_irl.collect.cli_collect import add_collect_parser, cmd_collect
from robot_irl.collect.language import goal_object
from robot_irl.collect.operators import ScriptedOperator
from robot_irl.collect.session import CollectionReport, ControlError, EpisodeControl, collect, mark_episode
from robot_irl.data.lerobot_io import (
    EPISODES_SIDECAR,
    load_dataset,
    read_frames,
    read_jsonl,
    set_episode_success,
)
from robot_irl.drivers import make_driver

pytestmark = [pytest.mark.sim, pytest.mark.data, pytest.mark.filterwarnings("ignore:Converting input from bool")]

ADC = AdversaryConfig.preset("train").replace(instruction_prob=1.0)  # every episode gets a language switch


@pytest.fixture(scope="module")
def lift():
    driver = make_driver("robosuite", {"task": "lift"})
    with driver:
        yield driver


@pytest.fixture(scope="module")
def adc_run(lift, tmp_path_factory):
    out = tmp_path_factory.mktemp("adc") / "run"
    operator = ScriptedOperator.from_driver(lift, seed=0)
    report = collect(lift, operator, ScriptedAdversary(ADC), episodes=2, max_steps=80, out=out, seed=0,
                     progress=False)
    return out, report


def test_adc_collection_writes_an_annotated_dataset(lift, adc_run):
    out, report = adc_run
    ds = load_dataset(out / "dataset")  # LeRobot itself reads it
    assert ds.meta.total_episodes == 2 and len(ds) == sum(e.length for e in report.episodes)
    frames = read_frames(out / "dataset", ["episode_index", "observation.state", "observation.environment_state",
                                           PERTURBATION_KIND, PHASE, PERTURBED, "next.success",
                                           "annotation.perturbation"])
    perturbed = np.flatnonzero(frames[PERTURBED].reshape(-1))
    assert len(perturbed) >= 1 and all(frames[PERTURBATION_KIND][i] for i in perturbed)
    assert {"approach", "descend", "grasp"} <= set(frames[PHASE])
    tasks = [ds[i]["task"] for i in range(len(ds))]
    names = list(lift.observation_features["observation.environment_state"].names)
    objects = [n[:-2] for n in names if n.endswith(".x")]
    for ep in (0, 1):  # the instruction changed mid-episode, visible in the per-frame task strings
        ep_tasks = [t for t, e in zip(tasks, frames["episode_index"]) if e == ep]
        assert ep_tasks[0] == "lift the red cube" and len(set(ep_tasks)) == 2, ep
        switch = ep_tasks.index(next(t for t in ep_tasks if t != ep_tasks[0]))
        assert 5 < switch < len(ep_tasks) - 1
    for i in perturbed:  # the 15 cm rule, checked on the recorded frames
        for p in parse_perturbations(frames["annotation.perturbation"][i]):
            assert p.step is not None and p.sim_time is not None
            if p.kind.value in ("push", "move_object"):
                k = names.index(f"{goal_object('lift', tasks[i], objects)}.x")
                eef = frames["observation.state"][i][14:17]
                assert np.linalg.norm(eef - frames["observation.environment_state"][i][k:k + 3]) <= 0.15 + 1e-6
    sidecar = read_jsonl(out / "dataset" / EPISODES_SIDECAR)
    assert [r["metadata"]["instruction_changes"] for r in sidecar] == [1, 1]
    assert all(r["metadata"]["perturbations"] and r["metadata"]["mode"] == "adc" for r in sidecar)
    saved = CollectionReport.load(out / "report.json")
    assert [e.instruction_changes for e in saved.episodes] == [1, 1]
    assert saved.episodes[0].perturbations == report.episodes[0].perturbations
    assert sum(saved.episodes[0].perturbations.values()) >= 2 and saved.episodes[0].dropped_frames == 0
    text = report.format_report()
    assert "instruction 1" in text and "success" in text and str(out / "dataset") in text


def test_traditional_collection_has_no_perturbation_and_rerecords(lift, tmp_path):
    operator = ScriptedOperator.from_driver(lift, seed=0)
    control = EpisodeControl(1)

    class Impatient:  # a front end that asks to re-record the first attempt after 5 ticks
        phase = ""
        attempts = 0

        def reset(self, seed=None):
            self.ticks = 0
            Impatient.attempts += 1
            operator.reset(seed)

        def act(self, obs):
            self.ticks += 1
            if Impatient.attempts == 1 and self.ticks == 5:
                control.request_rerecord()
            return operator.act(obs)

    with pytest.raises(ValueError, match="without an adversary"):
        collect(lift, operator, ScriptedAdversary(), 1, 10, mode="traditional", progress=False)
    report = collect(lift, Impatient(), None, episodes=1, max_steps=60, out=tmp_path / "trad", mode="traditional",
                     control=control, progress=False)
    assert Impatient.attempts == 2 and report.discarded == 1 and len(report.episodes) == 1
    frames = read_frames(tmp_path / "trad" / "dataset", [PERTURBED, PERTURBATION_KIND, "episode_index"])
    assert not frames[PERTURBED].any() and set(frames[PERTURBATION_KIND]) == {""}
    assert set(frames["episode_index"]) == {0} and len(frames[PERTURBED]) == report.episodes[0].length
    record = read_jsonl(tmp_path / "trad" / "dataset" / EPISODES_SIDECAR)[0]
    assert record["metadata"]["perturbations"] == [] and record["success"] is True
    assert report.episodes[0].success and report.episodes[0].length < 60  # stopped 10 ticks after success


def test_marking_success_after_saving_changes_the_sidecar(adc_run):
    out, _ = adc_run
    root = out / "dataset"
    before = read_jsonl(root / EPISODES_SIDECAR)
    mark_episode(out, 1, False)
    after = read_jsonl(root / EPISODES_SIDECAR)
    assert after[1]["success"] is False and after[1]["success_source"] == "operator"
    assert after[1]["success_history"][-1]["success"] == before[1]["success"]
    assert after[0] == before[0]
    assert CollectionReport.load(out / "report.json").episodes[1].success is False
    set_episode_success(root, 1, before[1]["success"])
    assert read_jsonl(root / EPISODES_SIDECAR)[1]["success"] == before[1]["success"]
    with pytest.raises(ValueError, match="no saved episode 7"):
        set_episode_success(root, 7, True)


def test_resume_appends_episodes(lift, adc_run):
    out, _ = adc_run
    operator = ScriptedOperator.from_driver(lift, seed=0)
    report = collect(lift, operator, ScriptedAdversary(ADC), episodes=1, max_steps=40, out=out, seed=0,
                     resume=True, progress=False)
    assert [e.index for e in report.episodes] == [0, 1, 2] and report.episodes[2].seed == 2
    assert load_dataset(out / "dataset").meta.total_episodes == 3
    assert [r["episode_index"] for r in read_jsonl(out / "dataset" / EPISODES_SIDECAR)] == [0, 1, 2]


def test_episode_control_state_machine():
    control = EpisodeControl(2, first_index=3)
    with pytest.raises(ControlError, match="without an episode"):
        control.finish()
    assert control.start() == 3 and control.state == "recording" and not control.end_requested
    with pytest.raises(ControlError, match="cannot start"):
        control.start()
    control.request_rerecord()
    assert control.end_requested and control.finish() == "discard" and control.discarded == 1
    assert control.start() == 3
    assert control.finish() == "save"
    control.saved(3, True)
    with pytest.raises(ControlError, match="cannot mark episode 4"):
        control.mark(4, False)
    assert control.mark(3, False) == (3, False) and control.successes == {3: False}
    assert control.take_marks() == [(3, False)] and control.take_marks() == []
    assert control.start() == 4
    control.request_stop()
    assert control.finish() == "save" and control.state == "stopped" and control.done


def test_cli_collect_in_process(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_collect_parser(parser.add_subparsers())
    out = tmp_path / "cli"
    args = parser.parse_args(["collect", "--episodes", "1", "--max-steps", "60", "--out", str(out),
                              "--mode", "traditional"])
    assert cmd_collect(args) == 0
    assert "success 1/1" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["mode"] == "traditional" and config["adversary"] == "none"
    assert config["driver_config"]["task"] == "lift"
    assert (out / "report.json").is_file() and (out / "dataset" / "meta" / "info.json").is_file()
    from robot_irl.cli import CliError

    bad = parser.parse_args(["collect", "--out", str(tmp_path / "x"), "--mode", "traditional", "--adversary",
                             "scripted"])
    with pytest.raises(CliError, match="without an adversary"):
        cmd_collect(bad)
    with pytest.raises(CliError, match="in process only"):
        cmd_collect(parser.parse_args(["collect", "--out", str(tmp_path / "y"), "--operator", "keyboard"]))


def test_cli_collect_with_a_human_operator_starts_the_collect_graph(tmp_path, monkeypatch, capsys):
    from robot_irl import launcher
    from robot_irl.cli import CliError
    from robot_irl.graphs import GRAPHS

    started = []
    monkeypatch.setattr(launcher, "run_graph", lambda spec, **kw: started.append(spec) or 0)
    parser = argparse.ArgumentParser()
    add_collect_parser(parser.add_subparsers())
    args = parser.parse_args(["collect", "--operator", "joy", "--adversary", "console", "--out", str(tmp_path / "g")])
    if "collect" not in GRAPHS:
        with pytest.raises(CliError, match="'collect' ROS 2 graph is not available"):
            cmd_collect(args)
        return
    assert cmd_collect(args) == 0
    assert "runs the `collect` ROS 2 graph" in capsys.readouterr().out
    nodes = [n.name for n in started[0].nodes]
    assert started[0].name == "collect" and "recorder_node" in nodes and "console_node" in nodes
    assert json.loads((tmp_path / "g" / "config.json").read_text())["config"]["graph"] == "collect"
