"""Labelling a LeRobot v3.0 dataset recorded by robot_irl: frames decoded from its video, tasks as goals, oracle
signals from its parquet columns."""
from __future__ import annotations

import numpy as np
import pytest
from fake_openai_server import FakeOpenAI, decode_data_url, point_mass_judge

from robot_irl.data.lerobot_io import LeRobotRecorder, read_frames
from robot_irl.data.synthetic import CAMERA_KEY, synthetic_episodes, synthetic_features
from robot_irl.label import load_preferences, preference_arrays
from robot_irl.label.job import LabelConfig, run_label_job
from robot_irl.label.pairs import LeRobotSource, PairError, open_source
from robot_irl.label.store import read_records

pytestmark = pytest.mark.data

SIZE = 32


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Four point-mass episodes of 12 frames with a 32x32 AV1 camera."""
    root = tmp_path_factory.mktemp("label_lerobot") / "pm"
    obs, act, extra = synthetic_features(4, 2, image_size=SIZE)
    episodes = list(synthetic_episodes(4, 12, image_size=SIZE, seed=7))
    with LeRobotRecorder(root, "local/pm", 20, obs, act, "point_mass", extra_features=extra) as rec:
        for frames in episodes:
            for frame in frames:
                rec.add_frame(**frame)
            rec.save_episode()
    return root, episodes


def test_source_reads_episodes_tasks_signals_and_decoded_frames(dataset):
    root, episodes = dataset
    src = open_source(root, camera="")
    assert isinstance(src, LeRobotSource) and src.camera == CAMERA_KEY
    assert src.episode_lengths == [len(e) for e in episodes]
    flat = [f for e in episodes for f in e]
    assert src.task(0) == flat[0]["task"] and src.task(len(flat) - 1) == flat[-1]["task"]
    np.testing.assert_allclose(src.signal("next.reward"), [f["extras"]["next.reward"][0] for f in flat], rtol=1e-6)
    np.testing.assert_allclose(src.signal("observation.state:pos_y"),
                               [f["observation"]["observation.state"][1] for f in flat], rtol=1e-6)
    for index in (0, 13, len(flat) - 1):
        frame = src.image(index)
        assert frame.shape == (SIZE, SIZE, 3) and frame.dtype == np.uint8
        assert np.abs(frame.astype(float) - flat[index]["observation"][CAMERA_KEY]).mean() < 12  # AV1 is lossy
    assert open_source(root, camera="top").camera == CAMERA_KEY
    with pytest.raises(PairError, match=r"no camera 'wrist'; cameras: \['observation.images.top'\]"):
        open_source(root, camera="wrist")


def test_vlm_on_video_frames_with_the_dataset_instruction_as_goal(dataset, tmp_path):
    root, episodes = dataset
    with FakeOpenAI(judge=point_mass_judge) as server:
        cfg = LabelConfig.from_dict({"dataset": str(root), "backend": "vlm", "pairs": 16,
                                     "vlm": {"base_url": server.url, "model": "fake", "concurrency": 2}})
        report = run_label_job(cfg, tmp_path / "run", progress=False)
        sent = [decode_data_url(p["image_url"]["url"]) for q in server.requests if q["stage"] == 1
                for p in q["body"]["messages"][0]["content"] if p["type"] == "image_url"]
    records = read_records(tmp_path / "run" / "labels.jsonl")
    assert len(records) == 16 and all(r["error"] is None for r in records)
    tasks = {f["task"] for e in episodes for f in e}
    assert all(r["goal"] in tasks for r in records)
    assert all(img.shape == (SIZE, SIZE, 3) for img in sent)
    # The fake VLM judges the red mass's distance to the green goal in the decoded frames; the oracle compares
    # success, then reward (the distance after the frame's action): they agree on most pairs.
    assert report["agreement"]["accuracy"] >= 0.75, report["agreement"]
    arrays = preference_arrays(load_preferences(tmp_path / "run"))
    assert len(arrays["labels"]) == sum(1 for r in records if r["reason"] in ("ok", "unsure", "tie"))


def test_oracle_with_a_dense_state_signal(dataset, tmp_path):
    root, _ = dataset
    cfg = LabelConfig.from_dict({"dataset": str(root), "backend": "oracle", "pairs": 30, "segment_length": 3,
                                 "oracle": {"signals": ["observation.state:pos_x"]}})
    report = run_label_job(cfg, tmp_path / "run", progress=False)
    assert report["pairs"] == 30 and "agreement" not in report
    x = read_frames(root, ["observation.state"])["observation.state"][:, 0].astype(np.float64)
    for p in load_preferences(tmp_path / "run"):
        assert p.a.length == p.b.length == 3
        sa, sb = x[p.a.index:p.a.index + 3].sum(), x[p.b.index:p.b.index + 3].sum()
        assert p.label == (1 if sb > sa else 0)
