"""Every bad input the command line was probed with is one line naming the file, exit status 2 (issue 11).

A recorded dataset and a trained checkpoint are made once, then torn copies of their files: a truncated parquet,
a truncated ``meta/info.json``, a truncated or garbage ``model.safetensors`` and ``config.json``.
"""
from __future__ import annotations

import json
import shutil

import pytest

from robot_irl.cli import _cli_words, main

pytestmark = pytest.mark.data


def _truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """``{name: path}``: a good dataset and checkpoint and torn copies of them."""
    pytest.importorskip("mujoco")
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("cli_errors")
    assert main(["record", "--backend", "mujoco_arm", "--policy", "random", "--episodes", "2", "--max-steps", "8",
                 "--out", str(root / "rec")]) == 0
    dataset = root / "rec" / "dataset"
    assert main(["train", "bc", "--dataset", str(dataset), "--steps", "2", "--out", str(root / "bc"),
                 "--no-progress"]) == 0
    checkpoint = root / "bc" / "checkpoint"
    out = {"dataset": dataset, "checkpoint": checkpoint, "tmp": root}
    for name, source, part, tear in (
            ("trunc_parquet", dataset, "data/chunk-000/file-001.parquet", _truncate),
            ("trunc_info", dataset, "meta/info.json", _truncate),
            ("trunc_tensors", checkpoint, "model.safetensors", lambda p: _truncate(p, 0.3)),
            ("garbage_tensors", checkpoint, "model.safetensors", lambda p: p.write_bytes(bytes(range(256)) * 20)),
            ("trunc_config", checkpoint, "config.json", _truncate),
            ("garbage_config", checkpoint, "config.json", lambda p: p.write_bytes(b"\xab\xcd" * 100))):
        shutil.copytree(source, root / name)
        tear(root / name / part)
        out[name] = root / name
        out[f"{name}_file"] = root / name / part
    (root / "exists.hdf5").write_bytes(b"")
    return out


CASES = [  # argv with {placeholders}, what the one line must say ({placeholders} too)
    (["recover", "--bag", "/nonexistent", "--dataset", "{dataset}"], "bag /nonexistent does not exist"),
    (["export-d4rl", "/nonexistent", "{tmp}/out.hdf5"], "/nonexistent is not a LeRobot dataset"),
    (["export-d4rl", "{trunc_parquet}", "{tmp}/out.hdf5"], "{trunc_parquet_file}: not a readable parquet file"),
    (["train", "bc", "--dataset", "{trunc_parquet}", "--steps", "2", "--out", "{tmp}/bc1"],
     "{trunc_parquet_file}: not a readable parquet file"),
    (["info", "{trunc_parquet}"], "{trunc_parquet_file}: not a readable parquet file"),  # it used to exit 0
    (["info", "{trunc_info}"], "{trunc_info_file}: not valid JSON"),
    (["train", "bc", "--dataset", "{trunc_info}", "--steps", "2", "--out", "{tmp}/bc2"],
     "{trunc_info_file}: not valid"),
    (["eval", "--policy", "{trunc_tensors}", "--episodes", "1"], "{trunc_tensors_file}: not a readable safetensors"),
    (["eval", "--policy", "{garbage_tensors}", "--episodes", "1"], "{garbage_tensors_file}: not a readable"),
    (["eval", "--policy", "{trunc_config}", "--episodes", "1"], "{trunc_config_file}: not valid JSON"),
    (["eval", "--policy", "{garbage_config}", "--episodes", "1"], "{garbage_config_file}: not valid JSON"),
    (["up", "deploy", "--policy", "{trunc_tensors}", "--duration", "1"], "{trunc_tensors_file}: not a readable"),
    (["up", "deploy", "--policy", "{garbage_config}", "--duration", "1"], "{garbage_config_file}: not valid JSON"),
    (["info", "/etc"], "/etc is not a LeRobot dataset"),
    (["export-d4rl", "{dataset}", "{tmp}/exists.hdf5"], "already exists; pass --overwrite to replace it"),
    (["up", "collect", "--policy", "x"], "robot-irl up: error: --policy/--command apply to the deploy/legged"),
    (["up", "bringup", "--backend", "nope"], "backend 'nope' is not a sim backend"),
    (["collect", "--backend", "mujoco_arm", "--episodes", "1", "--out", "{tmp}/col"],
     "on mujoco_arm, collect with a human operator (--operator keyboard or joy)"),
]


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a[:2]) + f" #{i}" for i, (a, _) in enumerate(CASES)])
def test_bad_input_is_one_line_naming_the_file_exit_2(files, capsys, argv, message):
    code = main([a.format(**files) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message.format(**files) in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "None:" not in err
    assert "=True" not in err  # the flag, not the keyword argument


def test_messages_name_the_flag_not_the_keyword_argument():
    assert _cli_words("bag b was already recovered; pass force=True to append it again") == \
        "bag b was already recovered; pass --force to append it again"
    assert _cli_words("x exists; pass overwrite=True (--overwrite) to replace it or resume=True to append") == \
        "x exists; pass --overwrite to replace it or --resume to append"


def test_collect_on_mujoco_arm_runs_its_graph_with_the_backend_default_task(tmp_path, monkeypatch, capsys):
    """`--task` used to default to lift, which the MuJoCo arm has no field for: it always failed."""
    from robot_irl.graphs import build_graph

    started = {}

    def fake_up(graph, **kwargs):  # what robot-irl up would start, built but not run
        started["spec"] = build_graph(graph, **{k: v for k, v in kwargs.items() if k != "duration"})
        return 0

    monkeypatch.setattr("robot_irl.launcher.up", fake_up)
    assert main(["collect", "--backend", "mujoco_arm", "--operator", "joy", "--mode", "traditional",
                 "--out", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    driver = started["spec"].node("driver_node")
    assert driver.parameters["backend"] == "mujoco_arm" and '"task"' not in driver.parameters["driver_config"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert config["backend"] == "mujoco_arm" and config["task"] is None  # not a lift task the arm does not have


def test_up_takes_the_backend_flag(monkeypatch):
    seen = {}
    monkeypatch.setattr("robot_irl.launcher.up", lambda graph, **kwargs: seen.update(graph=graph, **kwargs) or 0)
    assert main(["up", "bringup", "--backend", "mujoco_arm", "--duration", "1"]) == 0
    assert seen["graph"] == "bringup" and seen["backend"] == "mujoco_arm"
