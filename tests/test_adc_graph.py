"""ADC through the whole collection graph, as real processes: the adversary clicks in the console (HTTP API), the
perturbation reaches the driver over ROS, comes back as an event, and the recorder saves it as a per-frame
annotation, next to a mid-episode instruction change in the per-frame task strings."""
from __future__ import annotations

import re
import time

import pytest

pytest.importorskip("fastapi")
import httpx

from robot_irl.collect.annotations import PERTURBATION_KIND, PERTURBED, parse_perturbations
from robot_irl.console.app import api_headers
from robot_irl.data.lerobot_io import load_dataset, read_frames

pytestmark = [pytest.mark.ros, pytest.mark.data]
URL = re.compile(r"adversary console at (http://127\.0\.0\.1:\d+/)")


class Log:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text + "\n"

    def flush(self) -> None:
        pass


def _wait(predicate, what: str, log: Log, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n{log.text}")


def test_console_perturbations_are_recorded_per_frame(tmp_path):
    from robot_irl.launcher import start_graph

    out = tmp_path / "dataset"
    log = Log()
    graph = start_graph("collect", out=log, driver="sim", backend="mujoco_arm", operator="none", console=True,
                        console_port=0, dataset=str(out))
    try:
        url = _wait(lambda: (m := URL.search(log.text)) and m.group(1), "the console URL", log, timeout=60)
        with httpx.Client(base_url=url, timeout=10.0) as http:
            http.headers.update(api_headers(http.get("/").text))  # as the page's script: token + JSON
            _wait(lambda: http.post("/api/episode/start").status_code == 200, "the recorder to start", log)
            time.sleep(0.5)
            push = http.post("/api/perturb",
                             json={"kind": "push", "target": "cube", "params": {"velocity": [0, 0.3, 0]}})
            assert push.status_code == 200, push.text
            assert push.json()["kind"] == "push" and push.json()["step"] is not None
            time.sleep(0.3)
            change = http.post("/api/perturb", json={"kind": "instruction", "target": "task",
                                                     "params": {"text": "push the red cube away"}})
            assert change.status_code == 200, change.text
            time.sleep(0.5)
            events = http.get("/api/events").json()["events"]
            assert [e["kind"] for e in events if "kind" in e][-2:] == ["push", "instruction"]
            assert http.post("/api/episode/save").status_code == 200
            _wait(lambda: http.get("/api/status").json().get("recorder", {}).get("saved_episodes") == 1,
                  "the episode to be saved", log)
    finally:
        codes = graph.stop()
    assert all(c == 0 for c in codes.values()), log.text

    ds = load_dataset(out)
    assert ds.meta.total_episodes == 1
    cols = read_frames(out, [PERTURBATION_KIND, PERTURBED, "annotation.perturbation"])
    kinds = [k for k in cols[PERTURBATION_KIND].reshape(-1) if k]
    assert "push" in ",".join(kinds) and "instruction" in ",".join(kinds)
    perturbed_rows = [i for i, p in enumerate(cols[PERTURBED].reshape(-1)) if p]
    records = [r for i in perturbed_rows for r in parse_perturbations(cols["annotation.perturbation"].reshape(-1)[i])]
    assert {r.kind.value for r in records} >= {"push", "instruction"}
    tasks = [ds[i]["task"] for i in range(len(ds))]
    assert tasks[0] == "pick up the red cube" and tasks[-1] == "push the red cube away"  # changed mid-episode


def test_scripted_operator_and_adversary_nodes_run_the_whole_graph_hands_free(tmp_path):
    """`robot-irl up collect --operator scripted --adversary scripted --console`: no person anywhere; the operator
    node records its episodes, the adversary node perturbs them, then the graph ends by itself with status 0."""
    import subprocess
    import sys

    out = tmp_path / "dataset"
    cmd = [sys.executable, "-m", "robot_irl.cli", "up", "collect", "--operator", "scripted", "--adversary",
           "scripted", "--console", "--console-port", "0", "--dataset", str(out),
           "--set", "{episodes: 2, max_steps: 40, seed: 3}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"the hands-free graph did not end by itself:\n{e.stdout}") from None
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert "operator_node finished; stopped the graph" in log and "Traceback" not in log, log
    assert "adversary console at http://127.0.0.1:" in log, log  # the console ran beside them

    ds = load_dataset(out)
    assert ds.meta.total_episodes == 2, log
    cols = read_frames(out, [PERTURBATION_KIND, PERTURBED, "annotation.perturbation", "episode_index"])
    perturbed = cols[PERTURBED].reshape(-1)
    episodes = cols["episode_index"].reshape(-1)
    for ep in (0, 1):  # every episode got its adversary's perturbations as per-frame annotations
        rows = [i for i in range(len(perturbed)) if perturbed[i] and episodes[i] == ep]
        assert rows, (ep, log)
        records = [r for i in rows for r in parse_perturbations(cols["annotation.perturbation"].reshape(-1)[i])]
        assert "distractor_add" in {r.kind.value for r in records}  # ADC puts a distractor out at the first tick
