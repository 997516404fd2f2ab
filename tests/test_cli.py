"""The robot-irl command line: a record -> info -> export round trip, and one-line errors for bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from robot_irl.cli import main

pytestmark = pytest.mark.data


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_and_list_are_instant_and_list_registries():
    out = subprocess.run([sys.executable, "-m", "robot_irl.cli", "list"], capture_output=True, text=True, check=True)
    assert "robosuite" in out.stdout and "bringup" in out.stdout and "scripted" in out.stdout
    helptext = subprocess.run([sys.executable, "-m", "robot_irl.cli", "record", "--help"], capture_output=True,
                              text=True, check=True).stdout
    assert "examples:" in helptext and "--episodes" in helptext


def test_every_subcommand_help_shows_its_own_examples_only():
    import argparse
    import re

    from robot_irl.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, p in sub.choices.items():
        epilog = p.epilog or ""
        assert epilog.startswith("examples:"), (name, epilog[:80])
        commands = re.findall(r"robot-irl ([a-z0-9-]+)", epilog)
        assert commands and set(commands) == {name}, (name, sorted(set(commands)))  # not the global list


def test_record_info_export_round_trip(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run(capsys, "record", "--backend", "mujoco_arm", "--policy", "random", "--episodes", "2",
                          "--max-steps", "12", "--out", str(out))
    assert code == 0, stdout
    assert "success rate" in stdout
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["driver"] == "mujoco_arm" and config["config"]["episodes"] == 2
    results = json.loads((out / "results.json").read_text())
    assert [e["steps"] for e in results["episodes"]] == [12, 12]

    code, stdout, _ = run(capsys, "info", str(out / "dataset"), "--json")
    summary = json.loads(stdout)
    assert code == 0 and summary["episodes"] == 2 and summary["frames"] == 24

    h5 = tmp_path / "run.hdf5"
    code, _, _ = run(capsys, "export-d4rl", str(out / "dataset"), str(h5))
    from robot_irl.data.d4rl import load_d4rl

    data = load_d4rl(h5)
    assert code == 0 and data["observations"].shape[0] == 24 and data["actions"].shape == (24, 5)
    assert data["timeouts"].sum() + data["terminals"].sum() == 2  # each episode ends once

    # the same folder again is refused, naming it; nothing recorded is touched
    code, _, err = run(capsys, "record", "--backend", "mujoco_arm", "--policy", "random", "--episodes", "1",
                       "--max-steps", "2", "--out", str(out))
    assert code == 2 and "already exists" in err and str(out) in err
    assert json.loads(run(capsys, "info", str(out / "dataset"), "--json")[1])["episodes"] == 2


@pytest.mark.parametrize("argv, message", [
    (["rollout", "--driver", "warp"], "unknown driver 'warp'"),
    (["rollout", "--backend", "mock", "--task", "lift"], "--task does not apply to the mock driver"),
    (["rollout", "--backend", "mock", "--driver-config", "{joints: three}"], "joints: expected an integer"),
    (["rollout", "--backend", "mock", "--driver-config", "[1, 2]"], "expected a mapping"),
    (["rollout", "--backend", "mock", "--policy", "telepathy"], "unknown policy 'telepathy'; known policies"),
    (["rollout", "--backend", "mujoco_arm", "--policy", "scripted"], "needs end-effector target actions"),
    (["up", "nope"], "unknown graph 'nope'; known graphs: bringup, collect, deploy, legged, sim"),
    (["info", "/nonexistent/dataset"], "no dataset at /nonexistent/dataset"),
])
def test_bad_input_is_one_clear_line(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
