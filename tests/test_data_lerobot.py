"""LeRobotRecorder writes datasets that lerobot 0.4.4 itself reads back; bad input fails loudly and by name."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from robot_irl.core.features import Feature, image, vector
from robot_irl.core.perturbation import Perturbation
from robot_irl.data.lerobot_io import (
    EPISODES_SIDECAR,
    WALL_TIME_KEY,
    DatasetError,
    FrameError,
    LeRobotRecorder,
    dataset_summary,
    features_for_lerobot,
    format_summary,
    load_dataset,
    read_frames,
)
from robot_irl.data.synthetic import CAMERA_KEY, synthetic_episodes, synthetic_features

pytestmark = pytest.mark.data

FPS = 20
TASK_CHANGE_AT = 5
ANNOTATION = {"annotation": Feature("string", (1,))}


def _annotation(i: int) -> str:
    return "approach" if i < 3 else "track"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Three short episodes with a 32x32 video camera, a mid-episode task change and per-frame annotations."""
    root = tmp_path_factory.mktemp("ds") / "pm"
    obs, act, extra = synthetic_features(4, 2, image_size=32)
    episodes = list(synthetic_episodes(3, 10, image_size=32, task_change_at=TASK_CHANGE_AT, seed=3, fps=FPS))
    push = Perturbation("push", "mass", {"velocity": [0.1, 0, 0]}).stamped(0.2, 4)
    with LeRobotRecorder(root, "local/pm", FPS, obs, act, "point_mass", extra_features={**extra, **ANNOTATION}) as rec:
        for n, frames in enumerate(episodes):
            assert rec.start_episode() == n
            for i, frame in enumerate(frames):
                rec.add_frame(**{**frame, "extras": {**frame["extras"], "annotation": _annotation(i)}})
            rec.save_episode({"perturbations": [push], "operator": "test"})
        assert rec.num_episodes == 3
    return root, episodes


def test_loads_with_lerobot_shapes_and_episode_boundaries(recorded):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root, episodes = recorded
    ds = load_dataset(root)
    assert isinstance(ds, LeRobotDataset) and ds.video_backend == "pyav"
    lengths = [len(e) for e in episodes]
    assert ds.meta.total_episodes == 3 and len(ds) == sum(lengths)
    starts = np.cumsum([0, *lengths])
    for e in range(3):
        meta = ds.meta.episodes[e]
        assert (meta["episode_index"], meta["length"]) == (e, lengths[e])
        assert (meta["dataset_from_index"], meta["dataset_to_index"]) == (starts[e], starts[e + 1])
        first, last = ds[int(starts[e])], ds[int(starts[e + 1]) - 1]
        assert (first["episode_index"].item(), first["frame_index"].item()) == (e, 0)
        assert (last["episode_index"].item(), last["frame_index"].item()) == (e, lengths[e] - 1)
    item = ds[1]
    assert item["observation.state"].shape == (4,) and item["action"].shape == (2,)
    assert item[CAMERA_KEY].shape == (3, 32, 32)
    np.testing.assert_allclose(item["observation.state"].numpy(), episodes[0][1]["observation"]["observation.state"])
    np.testing.assert_allclose(item["action"].numpy(), episodes[0][1]["action_sent"])
    assert item["next.reward"].item() == pytest.approx(float(episodes[0][1]["extras"]["next.reward"][0]))


def test_decoded_video_frames_match_what_was_written(recorded):
    root, episodes = recorded
    ds = load_dataset(root)
    offset = len(episodes[0]) + len(episodes[1])
    for index, written in ((0, episodes[0][0]), (3, episodes[0][3]), (offset + 2, episodes[2][2])):
        decoded = (ds[index][CAMERA_KEY].numpy().transpose(1, 2, 0) * 255.0).round()
        original = written["observation"][CAMERA_KEY].astype(float)
        assert decoded.shape == original.shape
        assert np.abs(decoded - original).mean() < 12.0  # AV1 is lossy; a wrong frame differs far more


def test_per_frame_tasks_and_annotations(recorded):
    root, episodes = recorded
    ds = load_dataset(root)
    written = [f["task"] for ep in episodes for f in ep]
    read = [ds[i]["task"] for i in range(len(ds))]
    assert read == written
    first = episodes[0]
    assert first[0]["task"] != first[TASK_CHANGE_AT]["task"]  # the instruction changed mid-episode
    assert set(ds.meta.episodes[0]["tasks"]) == {first[0]["task"], first[TASK_CHANGE_AT]["task"]}
    assert [ds[i]["annotation"] for i in range(len(first))] == [_annotation(i) for i in range(len(first))]


def test_real_clock_times_are_kept_exactly(recorded):
    root, episodes = recorded
    frames = read_frames(root, [WALL_TIME_KEY, "timestamp", "frame_index"])
    written = np.array([f["timestamp"] for ep in episodes for f in ep])
    assert frames[WALL_TIME_KEY].dtype == np.float64
    np.testing.assert_array_equal(frames[WALL_TIME_KEY].reshape(-1), written)
    np.testing.assert_allclose(frames["timestamp"], frames["frame_index"] / FPS, atol=1e-6)


def test_sidecar_and_summary(recorded):
    root, episodes = recorded
    records = [json.loads(line) for line in (root / EPISODES_SIDECAR).read_text().splitlines()]
    assert [r["episode_index"] for r in records] == [0, 1, 2]
    assert [r["length"] for r in records] == [len(e) for e in episodes]
    assert records[0]["task_changes"] == [{"frame": 0, "task": episodes[0][0]["task"]},
                                          {"frame": TASK_CHANGE_AT, "task": episodes[0][TASK_CHANGE_AT]["task"]}]
    assert records[0]["metadata"]["perturbations"][0]["kind"] == "push"
    assert records[0]["dropped_frames"] == 0
    assert records[0]["duration_s"] == pytest.approx(len(episodes[0]) / FPS)
    summary = dataset_summary(root)
    assert (summary["episodes"], summary["frames"], summary["fps"]) == (3, sum(map(len, episodes)), FPS)
    assert summary["episode_lengths"] == [len(e) for e in episodes] and not summary["warnings"]
    assert set(summary["tasks"]) == {f["task"] for ep in episodes for f in ep}
    assert summary["features"][CAMERA_KEY]["dtype"] == "video"
    text = format_summary(summary)
    assert "episodes  3" in text and CAMERA_KEY in text and "point_mass" in text
    frames = sum(map(len, episodes))
    assert summary["data_s"] == pytest.approx(frames / FPS)  # the data's length: frames / fps, not wall time
    assert f"frames {frames} = {frames / FPS:.1f} s of data at {FPS} fps" in text
    assert f'LeRobotDataset("local/pm", root="{root}"' in text  # how a LeRobot user opens it


def test_info_says_which_video_backend_reads_the_dataset(recorded, monkeypatch):
    import robot_irl.data.lerobot_io as lerobot_io

    summary = dataset_summary(recorded[0])
    monkeypatch.setattr(lerobot_io, "system_ffmpeg", lambda: False)
    assert 'video_backend="pyav")  (pass it: the default backend, torchcodec, needs the system FFmpeg' \
        in format_summary(summary)
    monkeypatch.setattr(lerobot_io, "system_ffmpeg", lambda: True)
    assert "the default backend, torchcodec, finds the system FFmpeg" in format_summary(summary)


def test_lerobot_users_default_video_backend_reads_our_dataset(recorded):
    """`LeRobotDataset(repo_id, root=...)` as LeRobot's docs write it (torchcodec), on the FFmpeg setup installs."""
    from robot_irl.data.lerobot_io import system_ffmpeg

    if not system_ffmpeg():
        pytest.skip("no system FFmpeg libraries (make setup installs Debian's libavdevice); LeRobot's default "
                    "backend needs them, video_backend='pyav' does not")
    root, episodes = recorded
    code = textwrap.dedent(f"""
        import numpy as np
        from lerobot.datasets.lerobot_dataset import LeRobotDataset
        ds = LeRobotDataset("local/pm", root={str(root)!r})
        assert ds.video_backend == "torchcodec", ds.video_backend
        frame = ds[3][{CAMERA_KEY!r}].numpy()
        print(frame.shape, float(frame.mean()))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    shape, mean = done.stdout.strip().split(") ")
    assert shape == "(3, 32, 32"
    written = episodes[0][3]["observation"][CAMERA_KEY]
    assert abs(float(mean) * 255 - written.mean()) < 12.0


def test_contact_sheet_from_dataset(recorded, tmp_path):
    from PIL import Image

    from robot_irl.data.contact_sheet import contact_sheet_from_dataset

    root, _ = recorded
    out = contact_sheet_from_dataset(root, tmp_path / "sheet.png", per_episode=4)
    with Image.open(out) as img:
        assert img.width >= 4 * 32 and img.height >= 3 * 32


# -- small datasets without video: fast ------------------------------------------------------------------------
def _state_features():
    return {"observation.state": vector(["a", "b", "c"])}, {"action": vector(["u", "v"])}


def _frame(i: int, state=None):
    return {"observation": {"observation.state": np.full(3, i, np.float32) if state is None else state},
            "action_sent": np.zeros(2, np.float32), "task": "hold still", "timestamp": 100.0 + i / FPS}


def _recorder(root, **kwargs):
    obs, act = _state_features()
    return LeRobotRecorder(root, "local/small", FPS, obs, act, "mock", **kwargs)


def test_bad_frames_are_rejected_by_name(tmp_path):
    with _recorder(tmp_path / "ds") as rec:
        for i in range(3):
            rec.add_frame(**_frame(i))
        with pytest.raises(FrameError, match=r"episode 0 frame 3: observation.state has non-finite.*\[1\]"):
            rec.add_frame(**_frame(3, np.array([0, np.nan, 0], np.float32)))
        with pytest.raises(FrameError, match=r"frame 3: observation.state has shape \(4,\), expected \(3,\)"):
            rec.add_frame(**_frame(3, np.zeros(4, np.float32)))
        with pytest.raises(FrameError, match=r"missing \['observation.state'\].*unexpected \['observation.stat'\]"):
            rec.add_frame({"observation.stat": np.zeros(3)}, np.zeros(2), "t", 101.0)
        with pytest.raises(FrameError, match="action has non-finite"):
            rec.add_frame(_frame(3)["observation"], np.array([np.inf, 0.0]), "t", 101.0)
        with pytest.raises(FrameError, match="earlier than the previous frame"):
            rec.add_frame(**{**_frame(3), "timestamp": 50.0})
        with pytest.raises(FrameError, match="task must be a non-empty string"):
            rec.add_frame(**{**_frame(3), "task": ""})
        with pytest.raises(FrameError, match="unexpected \\['next.reward'\\]"):
            rec.add_frame(**_frame(3), extras={"next.reward": 1.0})
        rec.add_frame(**_frame(3))  # the rejected frames left no trace
        assert rec.episode_length == 4
        rec.save_episode()
    assert len(load_dataset(tmp_path / "ds")) == 4


def test_camera_frames_must_be_uint8(tmp_path):
    obs = {"observation.state": vector(["a"]), "observation.images.cam": image(8, 8)}
    rec = LeRobotRecorder(tmp_path / "ds", "local/x", FPS, obs, {"action": vector(["u"])}, "mock", use_videos=False)
    with rec, pytest.raises(FrameError, match="observation.images.cam must be uint8"):
        rec.add_frame({"observation.state": [0.0], "observation.images.cam": np.zeros((8, 8, 3))}, [0.0], "t", 1.0)


def test_existing_root_is_refused_unless_asked(tmp_path):
    root = tmp_path / "ds"
    with _recorder(root) as rec:
        rec.add_frame(**_frame(0))
        rec.save_episode()
    with pytest.raises(DatasetError, match="already exists and is not empty"):
        _recorder(root)
    with _recorder(root, overwrite=True) as rec:
        assert rec.num_episodes == 0
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="does not look like a LeRobot dataset"):
        _recorder(other, overwrite=True)
    assert (other / "todo.txt").exists()


def test_resume_appends_and_checks_features(tmp_path):
    root = tmp_path / "ds"
    with _recorder(root) as rec:
        for i in range(4):
            rec.add_frame(**_frame(i))
        rec.save_episode()
    with _recorder(root, resume=True) as rec:
        assert rec.num_episodes == 1
        for i in range(3):
            rec.add_frame(**_frame(10 + i))
        assert rec.save_episode()["episode_index"] == 1
    ds = load_dataset(root)
    assert ds.meta.total_episodes == 2 and len(ds) == 7
    assert (ds[4]["episode_index"].item(), ds[4]["frame_index"].item(), ds[4]["index"].item()) == (1, 0, 4)
    assert ds[4]["observation.state"][0].item() == 10
    with pytest.raises(DatasetError, match=r"(?s)not in the dataset: \['next.reward'\].*"
                                           r"observation.state: shape is \(3,\) in the dataset, \(4,\)"):
        LeRobotRecorder(root, "local/small", FPS, {"observation.state": vector("abcd")},
                        {"action": vector(["u", "v"])}, "mock", resume=True,
                        extra_features={"next.reward": Feature("float32", (1,))})


def test_saved_episodes_survive_a_crash_before_finalize(tmp_path):
    root = tmp_path / "ds"
    script = textwrap.dedent(f"""
        import os, numpy as np
        from robot_irl.core.features import vector
        from robot_irl.data.lerobot_io import LeRobotRecorder
        rec = LeRobotRecorder({str(root)!r}, "local/crash", {FPS}, {{"observation.state": vector("abc")}},
                              {{"action": vector("uv")}}, "mock")
        for ep in range(2):
            for i in range(5):
                rec.add_frame({{"observation.state": np.full(3, ep, np.float32)}}, np.zeros(2), "t", 1.0 + i)
            rec.save_episode()
        rec.add_frame({{"observation.state": np.zeros(3, np.float32)}}, np.zeros(2), "t", 9.0)
        os._exit(3)  # dies without finalize(), mid-episode
    """)
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr[-2000:]
    ds = load_dataset(root)
    assert ds.meta.total_episodes == 2 and len(ds) == 10
    assert ds[7]["episode_index"].item() == 1 and ds[7]["observation.state"][0].item() == 1
    assert len(dataset_summary(root)["robot_irl"]["records"]) == 2


def test_resume_after_an_abandoned_episode_ignores_its_frames(tmp_path):
    root = tmp_path / "ds"
    obs = {"observation.state": vector(["a"]), "observation.images.cam": image(32, 32)}
    rec = LeRobotRecorder(root, "local/x", FPS, obs, {"action": vector(["u"])}, "mock")
    cam = {"observation.state": [0.0], "observation.images.cam": np.zeros((32, 32, 3), np.uint8)}
    for i in range(3):
        rec.add_frame(cam, [0.0], "t", 1.0 + i)
    rec.save_episode()
    for i in range(6):  # never saved: the process "dies" here, its PNGs stay on disk
        rec.add_frame(cam, [0.0], "t", 5.0 + i)
    del rec
    with LeRobotRecorder(root, "local/x", FPS, obs, {"action": vector(["u"])}, "mock", resume=True) as rec:
        for i in range(2):
            rec.add_frame(cam, [1.0], "t", 20.0 + i)
        rec.save_episode()
    ds = load_dataset(root)
    ep = ds.meta.episodes[1]
    assert ep["length"] == 2 and len(ds) == 5
    video_s = ep["videos/observation.images.cam/to_timestamp"] - ep["videos/observation.images.cam/from_timestamp"]
    assert video_s == pytest.approx(2 / FPS, abs=0.5 / FPS)


def test_dropped_frames_are_counted_from_clock_gaps(tmp_path):
    with _recorder(tmp_path / "ds") as rec:
        for t in (0.0, 0.05, 0.10, 0.25, 0.30):  # 0.10 -> 0.25 skips two 20 Hz frames
            rec.add_frame(**{**_frame(0), "timestamp": 100.0 + t})
        record = rec.save_episode({"success": True})
    assert record["dropped_frames"] == 2 and record["success"] is True
    assert record["duration_s"] == pytest.approx(0.30 + 1 / FPS)


def test_discard_episode_leaves_nothing(tmp_path):
    root = tmp_path / "ds"
    obs = {"observation.state": vector(["a"]), "observation.images.cam": image(32, 32)}
    with LeRobotRecorder(root, "local/x", FPS, obs, {"action": vector(["u"])}, "mock") as rec:
        cam = {"observation.state": [0.0], "observation.images.cam": np.zeros((32, 32, 3), np.uint8)}
        for i in range(3):
            rec.add_frame(cam, [0.0], "discard me", 1.0 + i)
        rec.discard_episode()
        assert rec.episode_length == 0 and rec.num_episodes == 0
        with pytest.raises(DatasetError, match="no frames"):
            rec.save_episode()
        for i in range(2):
            rec.add_frame(cam, [1.0], "keep me", 5.0 + i)
        rec.save_episode()
    ds = load_dataset(root)
    assert len(ds) == 2 and ds[0]["task"] == "keep me" and ds[0]["action"].item() == 1.0
    assert not (root / "images").exists()


def test_a_frame_the_video_encoder_fails_on_leaves_the_episode_buffer_consistent(tmp_path, monkeypatch):
    """LeRobot appends a frame column by column; its streaming encoder raising RuntimeError half-way (a full disk)
    left columns of different lengths, and saving then failed ("Column 2 named action expected length ...")."""
    root = tmp_path / "ds"
    obs = {"observation.state": vector(["a"]), "observation.images.cam": image(32, 32)}
    with LeRobotRecorder(root, "local/x", FPS, obs, {"action": vector(["u"])}, "mock",
                         streaming_encoding=True) as rec:
        cam = {"observation.state": [0.0], "observation.images.cam": np.zeros((32, 32, 3), np.uint8)}
        for i in range(3):
            rec.add_frame(cam, [float(i)], "push", 1.0 + i / FPS)
        encoder = rec.dataset._streaming_encoder

        def crashed(key, frame):
            raise RuntimeError(f"Encoder thread for {key} crashed: [Errno 28] No space left on device")

        monkeypatch.setattr(encoder, "feed_frame", crashed)
        with pytest.raises(RuntimeError, match="No space left"):
            rec.add_frame(cam, [9.0], "push", 1.0 + 3 / FPS)
        buffer = rec.dataset.episode_buffer
        lengths = {k: len(v) for k, v in buffer.items() if isinstance(v, list) and v}  # (index columns: at save)
        assert set(lengths.values()) == {3} and buffer["size"] == 3 == rec.episode_length, lengths
        assert lengths.keys() >= {"task", "timestamp", "frame_index", "observation.images.cam", "action"}
        monkeypatch.undo()  # space is back: the same episode goes on and saves
        rec.add_frame(cam, [3.0], "push", 1.0 + 4 / FPS)
        rec.save_episode()
    ds = load_dataset(root)
    assert len(ds) == 4 and [ds[i]["action"].item() for i in range(4)] == [0.0, 1.0, 2.0, 3.0]


def test_reopen_reloads_the_saved_episodes_and_recording_goes_on(tmp_path):
    root = tmp_path / "ds"
    with _recorder(root) as rec:
        rec.reopen()  # nothing saved yet: a fresh dataset
        for i in range(3):
            rec.add_frame(**_frame(i))
        rec.save_episode()
        rec.add_frame(**_frame(10))  # an episode in progress is dropped
        rec.reopen()
        assert rec.num_episodes == 1 and rec.episode_length == 0
        for i in range(20, 22):
            rec.add_frame(**_frame(i))
        rec.save_episode()
    ds = load_dataset(root)
    assert ds.meta.total_episodes == 2 and len(ds) == 5


def test_features_for_lerobot_mapping():
    obs = {"observation.state": vector(["a", "b"]), "observation.images.wrist": image(4, 6)}
    extra = {"next.success": Feature("bool", (1,)), "note": Feature("string", (1,))}
    feats = features_for_lerobot(obs, {"action": vector(["u"])}, use_videos=False, extra=extra)
    assert feats["observation.images.wrist"] == {"dtype": "image", "shape": (4, 6, 3),
                                                 "names": ["height", "width", "channels"]}
    assert feats["observation.state"] == {"dtype": "float32", "shape": (2,), "names": ["a", "b"]}
    assert feats[WALL_TIME_KEY]["dtype"] == "float64" and feats["note"]["dtype"] == "string"
    assert features_for_lerobot(obs, {"action": vector(["u"])})["observation.images.wrist"]["dtype"] == "video"
    with pytest.raises(DatasetError, match="reserved"):
        features_for_lerobot(obs, {"action": vector(["u"])}, extra={"task": Feature("string", (1,))})
    with pytest.raises(DatasetError, match="contains '/'"):
        features_for_lerobot({"observation.a/b": vector(["a"])}, {"action": vector(["u"])})
    with pytest.raises(DatasetError, match="must start with 'observation.'"):
        features_for_lerobot({"state": vector(["a"])}, {"action": vector(["u"])})


def test_narrow_video_is_refused_before_it_crashes_the_encoder(tmp_path):
    obs = {"observation.state": vector(["a"]), "observation.images.cam": image(64, 16)}
    with pytest.raises(DatasetError, match="narrower than 25 px"):
        LeRobotRecorder(tmp_path / "ds", "local/x", FPS, obs, {"action": vector(["u"])}, "mock")
    assert not (tmp_path / "ds").exists()


def test_fps_must_be_whole(tmp_path):
    obs, act = _state_features()
    with pytest.raises(DatasetError, match="fps must be a positive whole number"):
        LeRobotRecorder(tmp_path / "ds", "local/x", 12.5, obs, act, "mock")
