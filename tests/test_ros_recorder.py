"""The recorder node's core: pairing of the driver node's messages, per-episode bags, services, disk-full handling.

Messages are real rclpy message objects serialized as DDS would (no executor needed); the driver description is
robosuite's (a 32x32 camera) built without connecting, so images, video and annotations are all exercised.
"""
from __future__ import annotations

import errno
import json
import shutil
import subprocess
import uuid

import numpy as np
import pytest

pytest.importorskip("rclpy")
from rclpy.serialization import serialize_message
from std_msgs.msg import String

from robot_irl.collect.annotations import PERTURBATION_KIND, PERTURBED
from robot_irl.collect.recover import interrupted_bags, replay
from robot_irl.core.perturbation import Perturbation
from robot_irl.data.bag import bag_summary
from robot_irl.data.lerobot_io import EPISODES_SIDECAR, load_dataset, read_frames, read_jsonl
from robot_irl.ros import conversions as conv
from robot_irl.ros.recorder_node import PARAMETERS, CollectionRecorder, RecorderError

pytestmark = [pytest.mark.ros, pytest.mark.data]
NS = "/robot_irl"
TOPICS = {f"{NS}/action_sent": ("action_sent", ""), f"{NS}/observation": ("observation", ""),
          f"{NS}/instruction": ("instruction", ""), f"{NS}/perturbation_events": ("perturbation_events", ""),
          f"{NS}/camera/agentview/image_raw": ("image", "agentview")}
DRIVER = {"driver": "sim", "backend": "robosuite", "driver_config": json.dumps({"cameras": ["agentview"],
                                                                                "camera_size": 32})}


def make_recorder(root, **params) -> CollectionRecorder:
    return CollectionRecorder({**PARAMETERS, **DRIVER, "out": str(root), **params}, TOPICS)


def state(k: int) -> np.ndarray:
    return np.full(23, k, np.float32)


class FakeDriverNode:
    """Publishes what the driver node publishes each tick, straight into a CollectionRecorder."""

    def __init__(self, recorder: CollectionRecorder, t0: float = 1_700_000_000.0) -> None:
        self.rec, self.t0 = recorder, t0
        self.wall = t0

    def send(self, topic: str, msg) -> None:
        self.rec.on_message(f"{NS}/{topic}", msg, serialize_message(msg), self.wall)

    def tick(self, k: int, action=None, bundle=True, image=True, success=False, wall=None) -> None:
        self.wall = self.t0 + k / 20 if wall is None else wall
        if action is not False:
            self.send("action_sent", conv.action_to_msg(np.full(7, k / 100) if action is None else action, "teleop"))
        if bundle:
            self.send("observation", conv.bundle_to_msg(
                "teleop", {"observation.state": state(k), "observation.environment_state": np.zeros(28)},
                np.zeros(7), {"sim_time": k / 20, "step": k, "reward": k / 10, "success": success}))
        if image:
            self.send("camera/agentview/image_raw", conv.image_to_msg(np.full((32, 32, 3), k, np.uint8), self.wall,
                                                                      "agentview"))

    def event(self, record: Perturbation | dict) -> None:
        self.send("perturbation_events", String(data=json.dumps(record if isinstance(record, dict)
                                                                else record.to_dict())))


def test_frames_pair_the_previous_observation_with_this_tick_action_and_the_bag_replays_them(tmp_path):
    root = tmp_path / "ds"
    rec = make_recorder(root, repo_id="test/adc")
    node = FakeDriverNode(rec)
    node.send("instruction", String(data="lift the red cube"))
    node.tick(0)  # before the episode: not recorded
    assert rec.start_episode() == "recording episode 0"
    for k in range(1, 31):
        node.tick(k, success=k >= 25)
        if k == 10:
            node.event(Perturbation("push", "cube", {"velocity": [0.1, 0, 0]}).stamped(0.5, 10))
            node.event({"error": "refused", "request": "{}"})  # refused perturbations are not annotations
        if k == 20:
            node.send("instruction", String(data="lift the green cube"))
    message = rec.save_episode()
    assert "saved episode 0: 29 frames, 0 dropped, 0 late" in message
    assert rec.status()["saved_episodes"] == 1 and not rec.status()["recording"]

    cols = read_frames(root, ["observation.state", "action", "next.reward", "next.success", PERTURBED,
                              PERTURBATION_KIND, "observation.timestamp_wall"])
    # frame i: observation of bundle k=i+1, action of tick k=i+2, reward after it
    assert cols["observation.state"][:, 0].tolist() == list(range(1, 30))
    np.testing.assert_allclose(cols["action"][:, 0], np.arange(2, 31) / 100, atol=1e-6)
    np.testing.assert_allclose(cols["next.reward"].reshape(-1), np.arange(2, 31) / 10, atol=1e-6)
    assert cols["next.success"].reshape(-1).tolist() == [k >= 25 for k in range(2, 31)]
    assert np.flatnonzero(cols[PERTURBED].reshape(-1)).tolist() == [9] and cols[PERTURBATION_KIND][9] == "push"
    np.testing.assert_allclose(np.diff(cols["observation.timestamp_wall"]), 0.05, atol=1e-6)
    dataset = load_dataset(root)
    assert dataset.meta.total_episodes == 1 and dataset.meta.robot_type == "robosuite"
    item = dataset[5]  # frame 5 shows the image of tick 6 (the observation's own camera frame)
    assert abs(float(item["observation.images.agentview"].mean()) * 255 - 6) < 2.5
    assert [dataset[i]["task"] for i in (0, 18, 19, 28)] == ["lift the red cube", "lift the red cube",
                                                             "lift the green cube", "lift the green cube"]
    (record,) = read_jsonl(root / EPISODES_SIDECAR)
    meta = record["metadata"]
    assert record["success"] is True and meta["low_rate"] is False and meta["rate_fraction"] == 1.0
    assert [p["kind"] for p in meta["perturbations"]] == ["push"]

    # the bag: closed cleanly (rosbags reads it), and replays into the very same frames
    bag = rec.bag_dir / next(p.name for p in rec.bag_dir.iterdir())
    assert bag_summary(bag)["closed"] and interrupted_bags(rec.bag_dir) == []
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        assert {c.topic for c in reader.connections} >= set(TOPICS)
        assert sum(1 for _ in reader.messages()) == bag_summary(bag)["messages"]
    marker, frames, stats = replay(bag)
    assert marker["episode_index"] == 0 and marker["driver_params"]["backend"] == "robosuite"
    np.testing.assert_array_equal(np.stack([f.observation["observation.state"] for f in frames]),
                                  cols["observation.state"])
    assert [f.task for f in frames][18:20] == ["lift the red cube", "lift the green cube"]
    rec.close()


def test_dropped_late_and_low_rate_frames_are_counted_and_flagged(tmp_path):
    rec = make_recorder(tmp_path / "ds", use_videos=False, bag=False, min_rate_fraction=0.9)
    node = FakeDriverNode(rec)
    rec.start_episode()
    for k in range(1, 21):
        if k in (5, 6):
            continue  # two bundles lost (ticks 5, 6): frames across the gap are skipped
        node.tick(k, action=False if k == 12 else None)  # tick 12's action never arrives before its bundle
    status = rec.status()
    # 17 bundle pairs, minus the one across the gap, minus the late one
    assert status["dropped"] == 2 and status["late"] == 1 and status["frames"] == 15
    rec.save_episode()
    meta = read_jsonl(tmp_path / "ds" / EPISODES_SIDECAR)[0]["metadata"]
    assert meta["dropped_ticks"] == 2 and meta["late_frames"] == 1 and meta["low_rate"] is True
    assert meta["rate_fraction"] == pytest.approx(15 / 19, abs=1e-3)  # frames over ticks spanned
    rec.close()


def test_episode_services_discard_mark_and_stop(tmp_path):
    rec = make_recorder(tmp_path / "ds", use_videos=False)
    node = FakeDriverNode(rec)
    with pytest.raises(RecorderError, match="no episode"):
        rec.save_episode()
    rec.start_episode()
    with pytest.raises(RecorderError, match="has no frames"):
        rec.save_episode()
    with pytest.raises(RecorderError, match="being recorded"):
        rec.start_episode()
    for k in range(1, 6):
        node.tick(k)
    bag = rec.bag_path
    assert rec.discard_episode().startswith("discarded") and not bag.exists()  # re-record: no bag left behind
    rec.start_episode()
    for k in range(6, 12):
        node.tick(k)
    assert rec.mark(False) == "episode 0 marked failure"
    rec.save_episode()
    assert rec.mark(True) == "saved episode 0 marked success"  # after saving: the sidecar is updated
    rec.start_episode()
    for k in range(12, 16):
        node.tick(k)
    assert "saved episode 1" in rec.stop()
    records = read_jsonl(tmp_path / "ds" / EPISODES_SIDECAR)
    assert [r["success"] for r in records] == [True, False] and records[0]["success_history"][0]["success"] is False
    with pytest.raises(RecorderError, match="stopped"):
        rec.start_episode()
    assert load_dataset(tmp_path / "ds").meta.total_episodes == 2


@pytest.fixture
def small_disk(tmp_path):
    """A 12 MiB tmpfs (we are root in CI containers); skips where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=12m", f"robot_irl_{uuid.uuid4().hex[:6]}", str(mount)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder, leave_bytes: int = 0) -> None:
    """Fill the file system holding ``folder`` up to ``leave_bytes`` of free space."""
    free = shutil.disk_usage(folder).free - leave_bytes
    with open(folder / "filler.bin", "wb") as f:
        while free > 0:
            chunk = min(free, 1 << 20)
            try:
                f.write(b"\0" * chunk)
                f.flush()
            except OSError:
                break
            free -= chunk


def test_a_full_disk_stops_recording_cleanly_and_keeps_saved_episodes(small_disk):
    root = small_disk / "ds"
    rec = make_recorder(root, use_videos=False)
    node = FakeDriverNode(rec)
    rec.start_episode()
    for k in range(1, 12):
        node.tick(k)
    rec.save_episode()
    rec.start_episode()
    fill(small_disk)
    for k in range(12, 60):
        node.tick(k)
    status = rec.status()
    assert status["recording"] is False and "No space left" in status["last_error"]
    assert "robot-irl recover --bag" in status["last_error"]  # the bag written so far is recoverable
    with pytest.raises(RecorderError, match="No space left"):  # the disk is still full
        rec.start_episode()
    (small_disk / "filler.bin").unlink()  # space is back: recording goes on
    rec.start_episode()
    for k in range(60, 66):
        node.tick(k)
    rec.save_episode()
    rec.close()
    dataset = load_dataset(root)
    assert dataset.meta.total_episodes == 2 and dataset.num_frames == 15


def test_a_failing_video_encoder_stops_recording_once_and_the_recorder_goes_on(tmp_path, monkeypatch):
    """`up collect --no-bag` with a video camera on a full disk: LeRobot's streaming encoder raises RuntimeError."""
    root = tmp_path / "ds"
    errors: list[str] = []
    log = type("Log", (), {"error": lambda self, message: errors.append(message)})()
    rec = CollectionRecorder({**PARAMETERS, **DRIVER, "out": str(root), "bag": False}, TOPICS, log=log)
    assert rec.params["use_videos"] and rec.params["streaming_encoding"]
    node = FakeDriverNode(rec)
    rec.start_episode()
    for k in range(1, 9):
        node.tick(k)
    rec.save_episode()
    rec.start_episode()
    for k in range(9, 14):
        node.tick(k)

    def crashed(key, frame):
        raise RuntimeError(f"Encoder thread for {key} crashed: [Errno 28] No space left on device")

    monkeypatch.setattr(rec.recorder.dataset._streaming_encoder, "feed_frame", crashed)
    for k in range(14, 30):
        node.tick(k)
    status = rec.status()
    assert status["recording"] is False and status["failed"] is True
    assert "adding a frame: RuntimeError: Encoder thread" in status["last_error"] and len(errors) == 1, errors
    assert "saved episodes are intact" in status["last_error"]
    buffer = rec.recorder.dataset.episode_buffer
    assert len({len(v) for v in buffer.values() if isinstance(v, list)}) <= 1  # no ragged columns
    assert load_dataset(root).meta.total_episodes == 1
    with pytest.raises(RecorderError, match="no episode is being recorded"):
        rec.save_episode()
    monkeypatch.undo()  # space is back
    assert "discarded episode 1, which failed (adding a frame" in rec.discard_episode()
    assert rec.status()["last_error"] == "" and rec.status()["failed"] is False
    assert rec.start_episode() == "recording episode 1"
    for k in range(30, 40):
        node.tick(k)
    assert "saved episode 1" in rec.save_episode()
    rec.close()
    dataset = load_dataset(root)
    assert dataset.meta.total_episodes == 2 and dataset.num_frames == 7 + 9
    frames = read_frames(root, ["observation.state"])["observation.state"]
    assert frames[-1][0] == 38  # the new episode's frames, the failed one's are gone


def test_a_save_that_raises_anything_rolls_back_and_the_recorder_goes_on(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    rec = make_recorder(root, use_videos=False, bag=False)
    node = FakeDriverNode(rec)
    rec.start_episode()
    for k in range(1, 6):
        node.tick(k)

    def torn(*args, **kwargs):
        raise ValueError("Column 2 named action expected length 103 but got length 14")

    monkeypatch.setattr(rec.recorder.dataset, "save_episode", torn)
    with pytest.raises(RecorderError, match="saving episode 0: ValueError: Column 2"):
        rec.save_episode()
    monkeypatch.undo()
    assert rec.start_episode() == "recording episode 0"  # nothing was saved: the index is free again
    for k in range(6, 10):
        node.tick(k)
    rec.save_episode()
    rec.close()
    assert load_dataset(root).meta.total_episodes == 1


def test_a_save_that_fails_rolls_back_its_files(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    rec = make_recorder(root, use_videos=False)
    node = FakeDriverNode(rec)
    rec.start_episode()
    for k in range(1, 8):
        node.tick(k)
    rec.save_episode()
    before = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and "images" not in p.parts)
    rec.start_episode()
    for k in range(8, 16):
        node.tick(k)
    dataset = rec.recorder.dataset
    original = dataset.meta.save_episode

    def save_then_fail(*args, **kwargs):  # the data parquet is written, then the disk fills up
        original(*args, **kwargs)
        (root / "meta" / "info.json").write_text("{torn")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(dataset.meta, "save_episode", save_then_fail)
    with pytest.raises(RecorderError, match="No space left"):
        rec.save_episode()
    after = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and "images" not in p.parts)
    assert after == before and rec.status()["last_error"]
    assert load_dataset(root).meta.total_episodes == 1
    assert interrupted_bags(rec.bag_dir)  # the failed episode's bag is kept for robot-irl recover
