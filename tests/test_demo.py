"""`make demo` end to end, shortened: sim graph as processes -> RemoteDriver over ROS -> LeRobot dataset -> picture."""
from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.sim, pytest.mark.ros, pytest.mark.data]


def test_demo_records_a_dataset_lerobot_loads(tmp_path, capsys):
    from robot_irl.cli import main
    from robot_irl.data.lerobot_io import load_dataset

    tiny_offline_rl = ('{episodes: 4, max_steps: 50, steps: 30, batch_size: 64, hidden: [32, 32], oracle_pairs: 40, '
                       'eval_episodes: 1, eval_max_steps: 30, reward: {max_epochs: 2}, vlm: {enabled: "false"}}')
    assert main(["demo", "--out", str(tmp_path), "--episodes", "1", "--max-steps", "60", "--adc-episodes", "1",
                 "--offline-rl-config", tiny_offline_rl]) == 0
    out = capsys.readouterr().out
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    ds = load_dataset(run_dir / "dataset")
    assert ds.meta.total_episodes == 1 and len(ds) == 60
    frame = ds[0]
    assert tuple(frame["observation.images.agentview"].shape) == (3, 84, 84)
    assert frame["observation.state"].shape[0] == 23 and frame["action"].shape[0] == 7
    results = json.loads((run_dir / "results.json").read_text())
    assert results["summary"]["episodes"] == 1
    assert results["episodes"][0]["success"], "the scripted policy should lift the cube within 60 steps (3 s)"
    assert (run_dir / "contact_sheet.png").stat().st_size > 1000
    assert "LeRobotDataset loads it: 60 frames" in out
    assert "driver_node" in (run_dir / "graph.log").read_text()
    # the ADC stage: one adversarial episode with per-frame perturbation annotations, and its picture
    adc = load_dataset(run_dir / "adc" / "dataset")
    assert adc.meta.total_episodes == 1
    assert any(bool(adc[i]["annotation.perturbed"]) for i in range(len(adc)))
    assert (run_dir / "adc_contact_sheet.png").stat().st_size > 1000
    # the offline-RL stage: oracle labels -> reward model -> BC / IQL -> evaluation table
    table = json.loads((run_dir / "vlm_iql" / "results.json").read_text())["table"]
    assert {"bc", "iql_true", "iql_oracle", "data"} <= set(table)
    assert "| IQL, oracle-preference reward model |" in out
