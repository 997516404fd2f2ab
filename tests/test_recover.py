"""Crash recovery: kill -9 the recorder node mid-episode, then rebuild that episode from its MCAP bag.

The driver node (mock arm, 50 Hz) and the recorder node run as real processes (the ``collect`` graph); a client
drives commands and calls the recorder's services over DDS.
"""
from __future__ import annotations

import io
import json
import os
import signal
import threading
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
import rclpy
import rclpy.signals
from rclpy.context import Context
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from robot_irl.collect.recover import RecoverError, cmd_recover, interrupted_bags, recover, replay
from robot_irl.data.bag import bag_summary
from robot_irl.data.lerobot_io import EPISODES_SIDECAR, load_dataset, read_frames, read_jsonl
from robot_irl.graphs import build_graph
from robot_irl.launcher import GraphProcesses
from robot_irl.ros import conversions as conv
from robot_irl.ros.probe import BackgroundSpinner

pytestmark = [pytest.mark.ros, pytest.mark.data]
SERVICES = ("start_episode", "save_episode", "discard_episode", "mark_success", "mark_failure", "stop")


class CollectClient(Node):
    """Publishes commands at the control rate, counts observation bundles, calls the recorder's services."""

    def __init__(self, context, namespace: str = "robot_irl") -> None:
        super().__init__("collect_test_client", namespace=namespace, context=context,
                         start_parameter_services=False)
        self.lock = threading.Lock()
        self.steps: list[int] = []
        self.status: dict = {}
        self.commands = self.create_publisher(Float64MultiArray, "commands", 10)
        self.create_subscription(Float64MultiArray, "observation", self._on_bundle, 50)
        self.create_subscription(String, "recorder/status", self._on_status, 10)
        self.clients_ = {name: self.create_client(Trigger, f"recorder/{name}") for name in SERVICES}
        self._t0 = time.monotonic()
        self.timer = self.create_timer(0.02, self._send)

    def _send(self) -> None:
        t = time.monotonic() - self._t0
        self.commands.publish(conv.action_to_msg(0.5 * np.sin([t, 0.7 * t, 1.3 * t])))

    def _on_bundle(self, msg) -> None:
        with self.lock:
            self.steps.append(int(conv.bundle_from_msg(msg)["status"]["step"]))

    def _on_status(self, msg) -> None:
        with self.lock:
            self.status = json.loads(msg.data)

    def bundles(self) -> int:
        with self.lock:
            return len(self.steps)

    def call(self, name: str, timeout: float = 30.0) -> Trigger.Response:
        client = self.clients_[name]
        assert client.wait_for_service(timeout_sec=timeout), f"recorder/{name} not available"
        future = client.call_async(Trigger.Request())
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        assert done.wait(timeout), f"recorder/{name} did not answer"
        return future.result()

    def wait_status(self, predicate, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.status and predicate(self.status):
                    return dict(self.status)
            time.sleep(0.05)
        raise AssertionError(f"recorder status never matched; last: {self.status}")


@pytest.fixture(scope="module")
def context():
    ctx = Context()
    rclpy.init(args=[], context=ctx, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    yield ctx
    ctx.shutdown()


def test_kill_9_mid_episode_keeps_saved_episodes_and_the_bag_recovers_the_rest(context, tmp_path):
    out = tmp_path / "dataset"
    spec = build_graph("collect", driver="sim", backend="mock", rate=50, dataset=str(out), operator="none")
    log = io.StringIO()
    graph = GraphProcesses(spec, out=log).start()
    client = CollectClient(context)
    spinner = BackgroundSpinner(client, context=context)
    try:
        client.wait_status(lambda s: s["saved_episodes"] == 0, timeout=60)
        assert client.call("start_episode").success
        time.sleep(1.0)
        assert client.call("mark_success").success
        saved = client.call("save_episode")
        assert saved.success, saved.message
        assert client.call("start_episode").success
        first = client.bundles()
        client.wait_status(lambda s: s["frames"] >= 40)
        time.sleep(0.3)
        os.kill(graph.procs["recorder_node"].pid, signal.SIGKILL)
        published = client.bundles() - first
        graph.procs["recorder_node"].wait(timeout=10)
    finally:
        spinner.stop()
        client.destroy_node()
        graph.stop()
    assert graph.procs["recorder_node"].returncode == -signal.SIGKILL, log.getvalue()

    # the saved episode is intact and loads with LeRobot
    dataset = load_dataset(out)
    assert dataset.meta.total_episodes == 1 and dataset.num_frames >= 40
    (record,) = read_jsonl(out / EPISODES_SIDECAR)
    assert record["success"] is True and record["metadata"]["operator_marked"] is True
    assert record["metadata"]["low_rate"] is False, record

    # the interrupted episode's bag: torn (no metadata.yaml) but readable
    (bag,) = interrupted_bags(tmp_path / "dataset_bags")
    summary = bag_summary(bag)
    assert not summary["closed"] and summary["topics"]["/robot_irl/observation"] >= 40
    marker, frames, stats = replay(bag)
    assert marker["episode_index"] == 1 and stats.dropped == 0
    assert abs(len(frames) - published) <= 8, (len(frames), published)

    assert cmd_recover(type("Args", (), {"list": None, "bag": bag, "dataset": out, "force": False})()) == 0
    dataset = load_dataset(out)
    assert dataset.meta.total_episodes == 2 and dataset.num_frames == record["length"] + len(frames)
    recovered = read_jsonl(out / EPISODES_SIDECAR)[1]
    assert recovered["metadata"]["recovered"] is True and recovered["length"] == len(frames)
    # pairing: the mock arm closes half the gap to the action each tick, so state[i+1] = state[i] + (a[i]-state[i])/2
    cols = read_frames(out, ["action", "observation.state", "episode_index"])
    for ep in (0, 1):
        mask = cols["episode_index"] == ep
        state, action = cols["observation.state"][mask], cols["action"][mask]
        assert np.abs(action - state).max() > 1e-3  # the arm was moving
        np.testing.assert_allclose(state[1:], state[:-1] + 0.5 * (action[:-1] - state[:-1]), atol=1e-5)
    again = recover(bag, out)  # idempotent: reported, not appended
    assert again.status == "already" and again.episode_index == 1
    assert load_dataset(out).meta.total_episodes == 2
    assert interrupted_bags(tmp_path / "dataset_bags") == []


# -- idempotence: whichever path form, whatever point a crash interrupted an earlier run ---------------------------

def _interrupted_session(tmp_path):
    """A dataset with one saved episode and the bag of a second one the recorder died recording (os._exit)."""
    import subprocess
    import sys

    script = f"""
import os, sys
sys.path.insert(0, {str(os.path.dirname(__file__))!r})
from std_msgs.msg import String
from test_ros_recorder import FakeDriverNode, make_recorder
rec = make_recorder({str(tmp_path / "ds")!r}, repo_id="test/adc", streaming_encoding=True)
node = FakeDriverNode(rec)
node.send("instruction", String(data="lift the red cube"))
rec.start_episode()
for k in range(1, 21):
    node.tick(k)
rec.save_episode()
rec.start_episode()
for k in range(21, 50):
    node.tick(k)
os._exit(0)  # dies mid-episode: LeRobot's video temp folder and the torn bag stay behind
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    (bag,) = interrupted_bags(tmp_path / "ds_bags")
    return tmp_path / "ds", bag


def _run_cli(*argv):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "robot_irl.cli", *map(str, argv)], capture_output=True, text=True,
                          timeout=240)


def test_recover_is_idempotent_given_the_mcap_file_or_the_folder_and_cleans_encoder_leftovers(tmp_path):
    out, bag = _interrupted_session(tmp_path)
    assert list(out.glob("tmp*")), "expected LeRobot's temporary video folder left by the crash"
    (mcap,) = bag.glob("*.mcap")
    first = _run_cli("recover", "--bag", mcap, "--dataset", out)
    assert first.returncode == 0, first.stderr
    assert "as episode 1" in first.stdout
    assert len((first.stdout + first.stderr).strip().splitlines()) <= 3, first.stdout + first.stderr  # no chatter
    assert not list(out.glob("tmp*"))  # the interrupted recording's temporary video folder is gone
    for form in (mcap, bag):  # again, in either form: nothing appended, exit 0
        again = _run_cli("recover", "--bag", form, "--dataset", out)
        assert again.returncode == 0 and "already recovered" in again.stdout, again.stdout + again.stderr
    dataset = load_dataset(out)
    assert dataset.meta.total_episodes == 2
    records = read_jsonl(out / EPISODES_SIDECAR)
    assert [r["metadata"].get("bag_id") for r in records] == [None, bag.name]
    assert interrupted_bags(tmp_path / "ds_bags") == []
    assert not (bag / "recovering.json").exists() and (bag / "recovered.json").is_file()


def test_recover_refuses_an_episode_the_recorder_saved(tmp_path):
    out, _ = _interrupted_session(tmp_path)
    saved = read_jsonl(out / EPISODES_SIDECAR)[0]["metadata"]["bag"]
    (mcap,) = (tmp_path / "ds_bags" / saved.rsplit("/", 1)[-1]).glob("*.mcap")
    with pytest.raises(RecoverError, match="which the recorder saved"):
        recover(mcap, out)


def test_a_crash_between_lerobot_save_and_the_sidecar_record_is_completed_not_appended_twice(tmp_path, monkeypatch):
    import robot_irl.data.lerobot_io as lerobot_io

    out, bag = _interrupted_session(tmp_path)
    real_append = lerobot_io.append_record

    def die(path, record):
        raise KeyboardInterrupt  # the process dies after LeRobot wrote the episode, before our record

    monkeypatch.setattr(lerobot_io, "append_record", die)
    with pytest.raises(KeyboardInterrupt):
        recover(bag, out)
    monkeypatch.setattr(lerobot_io, "append_record", real_append)
    assert (bag / "recovering.json").is_file() and not (bag / "recovered.json").exists()
    result = recover(bag, out)
    assert result.status == "completed" and result.episode_index == 1
    assert load_dataset(out).meta.total_episodes == 2
    records = read_jsonl(out / EPISODES_SIDECAR)
    assert len(records) == 2 and records[1]["metadata"]["bag_id"] == bag.name
    assert records[1]["length"] == result.frames and records[1]["metadata"]["recovered"] is True
    assert recover(bag, out).status == "already"


def test_a_crash_between_the_sidecar_record_and_the_bag_marker_is_not_appended_twice(tmp_path, monkeypatch):
    import robot_irl.collect.recover as rec

    out, bag = _interrupted_session(tmp_path)

    def die(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(rec, "_mark_done", die)
    with pytest.raises(KeyboardInterrupt):
        recover(bag, out)
    monkeypatch.undo()
    assert interrupted_bags(tmp_path / "ds_bags") == [bag]  # not marked yet
    assert recover(bag, out).status == "already"
    assert load_dataset(out).meta.total_episodes == 2
    assert interrupted_bags(tmp_path / "ds_bags") == []
