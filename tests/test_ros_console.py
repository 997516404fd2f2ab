"""console_node and driver_node as processes over real DDS: the page's HTTP API perturbs the driver over
/robot_irl/perturb and the event comes back through /robot_irl/perturbation_events to /api/events."""
from __future__ import annotations

import json
import re
import sys
import threading
import time

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("fastapi")
pytest.importorskip("httpx")
import httpx
import rclpy
import rclpy.signals
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger

from robot_irl.console.app import api_headers
from robot_irl.graphs import GraphSpec, NodeSpec
from robot_irl.launcher import GraphProcesses
from robot_irl.ros.driver_node import LATCHED

pytestmark = pytest.mark.ros

NAMESPACE = "robot_irl"
URL_LINE = re.compile(r"adversary console at (http://127\.0\.0\.1:\d+/)")


class Lines:
    """A text sink for GraphProcesses that lets the test wait for a line."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()

    def write(self, text: str) -> None:
        with self._cond:
            self.lines.extend(line for line in text.splitlines() if line)
            self._cond.notify_all()

    def flush(self) -> None:
        pass

    def wait_for(self, pattern: re.Pattern, timeout: float) -> re.Match | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if m := pattern.search(line):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def __str__(self) -> str:
        with self._cond:
            return "\n".join(self.lines[-60:])


def console_graph() -> GraphSpec:
    driver = NodeSpec("driver_node", "driver_node", namespace=NAMESPACE,
                      parameters={"driver": "sim", "backend": "mujoco_arm"})
    console = NodeSpec("console_node", sys.executable, namespace=NAMESPACE,
                       arguments=["-m", "robot_irl.ros.console_node"],
                       parameters={"driver": "sim", "backend": "mujoco_arm", "port": 0, "service_timeout": 0.5})
    return GraphSpec("console_test", [driver, console])


@pytest.fixture(scope="module")
def context():
    ctx = Context()
    rclpy.init(args=[], context=ctx, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    yield ctx
    ctx.shutdown()


@pytest.fixture(scope="module")
def console():
    """(httpx client on the console's URL, the output lines); both nodes must exit cleanly on Ctrl-C."""
    out = Lines()
    graph = GraphProcesses(console_graph(), out=out).start()
    try:
        found = out.wait_for(URL_LINE, 40.0)
        assert found, f"console_node did not report its URL:\n{out}"
        with httpx.Client(base_url=found.group(1), timeout=10.0) as client:
            client.headers.update(api_headers(client.get("/").text))  # as the page's script: token + JSON
            deadline = time.monotonic() + 20.0
            while not client.get("/api/status").json()["driver_seen"]:
                assert time.monotonic() < deadline, f"the console never heard the driver:\n{out}"
                time.sleep(0.1)
            yield client, out
    finally:
        codes = graph.stop(timeout=10.0)
    assert codes == {"driver_node": 0, "console_node": 0}, f"{codes}\n{out}"


def test_targets_and_status_come_from_the_driver(console):
    client, _ = console
    targets = client.get("/api/targets").json()
    assert targets["push"] == ["cube"] and targets["move_object"] == ["cube"] and targets["instruction"] == ["task"]
    status = client.get("/api/status").json()
    assert status["source"] == "ros" and status["driver"] == "mujoco_arm" and status["step"] > 0
    assert set(status["objects"]) == {"cube"} and status["instruction"] == "pick up the red cube"


def test_a_perturbation_posted_to_the_page_comes_back_as_an_event(console):
    client, _ = console
    last = client.get("/api/events").json()["last"]
    r = client.post("/api/perturb", json={"kind": "push", "target": "cube", "params": {"velocity": [0.0, 0.0, 0.4]}})
    assert r.status_code == 200, r.text
    record = r.json()
    assert record["kind"] == "push" and record["target"] == "cube" and isinstance(record["step"], int)
    assert record["params"]["velocity"] == [0.0, 0.0, 0.4]
    events = client.get(f"/api/events?after={last}").json()["events"]
    assert events == [record]


def test_driver_refusals_come_back_as_4xx_and_error_events(console):
    client, _ = console
    r = client.post("/api/perturb", json={"kind": "lighting", "target": "all", "params": {"diffuse": [1, 1, 1]}})
    assert r.status_code == 400 and "does not support lighting" in r.json()["error"]
    assert r.json()["request"]["kind"] == "lighting"
    r = client.post("/api/perturb", json={"kind": "push", "target": "cube", "params": {"velocity": "fast"}})
    assert r.status_code == 422 and "push.velocity: expected numbers" in r.json()["error"]
    r = client.post("/api/perturb", json={"kind": "push", "target": "cube", "params": {"velocity": [0, 0, 1e4]}})
    assert r.status_code == 400 and "max_push_speed" in r.json()["error"]  # the driver node's bounds, over ROS
    r = client.post("/api/perturb", headers={"Origin": "http://evil.example", "Content-Type": "text/plain"},
                    content=b'{"kind": "instruction", "target": "task", "params": {"text": "wave"}}')
    assert r.status_code == 403  # the console node serves the same guarded app


def test_an_instruction_change_reaches_the_status(console):
    client, _ = console
    r = client.post("/api/perturb", json={"kind": "instruction", "target": "task", "params": {"text": "lift it"}})
    assert r.status_code == 200 and r.json()["params"]["previous"] == "pick up the red cube"
    deadline = time.monotonic() + 5.0
    while client.get("/api/status").json()["instruction"] != "lift it":
        assert time.monotonic() < deadline, "the new instruction never reached the console"
        time.sleep(0.05)


def test_episode_buttons_call_the_recorder_services(console, context):
    client, _ = console
    missing = client.post("/api/episode/save")
    assert missing.status_code == 503 and "/robot_irl/recorder/save_episode" in missing.json()["message"]

    recorder = Node("fake_recorder", namespace=NAMESPACE, context=context)
    calls = []

    def serve(request, response):
        calls.append("start")
        response.success, response.message = True, "episode 0 started"
        return response

    recorder.create_service(Trigger, "recorder/start_episode", serve)
    status_pub = recorder.create_publisher(String, "recorder/status", LATCHED)
    status_pub.publish(String(data=json.dumps({"recording": True, "episode": 0, "frames": 3})))
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(recorder)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        r = client.post("/api/episode/start")
        assert r.status_code == 200 and r.json() == {"ok": True, "message": "episode 0 started"}
        assert calls == ["start"]
        deadline = time.monotonic() + 5.0
        while (client.get("/api/status").json()["recorder"] or {}).get("frames") != 3:
            assert time.monotonic() < deadline, "the recorder status never reached the console"
            time.sleep(0.05)
    finally:
        stop.set()
        spinner.join(5.0)
        executor.shutdown()
        recorder.destroy_node()


def test_targets_parameter_and_event_parsing():
    from robot_irl.ros.console_node import event_from_msg, parse_targets

    assert parse_targets('{"push": ["cube"], "instruction": ["task"]}') == {"push": ["cube"], "instruction": ["task"]}
    with pytest.raises(ValueError, match="unknown kinds \\['shove'\\]"):
        parse_targets('{"shove": ["cube"]}')
    with pytest.raises(ValueError, match="not JSON"):
        parse_targets("{push: cube}")
    refused = event_from_msg(String(data=json.dumps({"error": "no", "request": '{"kind": "push", "target": "x"}'})))
    assert refused == {"error": "no", "request": {"kind": "push", "target": "x"}}
    assert "unreadable" in event_from_msg(String(data="[1, 2")).get("error")
