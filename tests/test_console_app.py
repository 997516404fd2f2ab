"""The adversary console's HTTP API against a real robosuite Lift driver stepped by a DriverLoop (no browser)."""
from __future__ import annotations

import io
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("fastapi")
with warnings.catch_warnings():  # starlette 1.x suggests httpx2 over httpx for its test client
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient
from PIL import Image

from robot_irl.console.app import api_headers, create_app
from robot_irl.console.backend import DriverBackend, DriverLoop, EventLog, episode_command, object_poses
from robot_irl.core.perturbation import PerturbationKind
from robot_irl.drivers import make_driver

pytestmark = pytest.mark.sim

CAMERA_SIZE = 64


@pytest.fixture(scope="module")
def rig():
    """A robosuite Lift driver with one small camera, stepped at 10 Hz in its own thread, behind the app."""
    driver = make_driver("robosuite", {"cameras": ["agentview"], "camera_size": CAMERA_SIZE, "distractors": 1})
    loop = DriverLoop(driver, rate=10.0).start()
    backend = DriverBackend(driver, lock=loop.lock)
    loop.observers.append(backend.feed)
    with console_client(create_app(backend)) as client:
        yield client, backend, loop
    loop.stop()
    assert loop.error is None
    assert not driver.is_connected


def console_client(app) -> TestClient:
    """A test client that talks to the app as its page does: on the bound address, with the page's token."""
    client = TestClient(app, base_url="http://127.0.0.1:8765")
    client.headers.update(api_headers(client.get("/").text))
    return client


def wait_ticks(loop: DriverLoop, n: int = 2, timeout: float = 5.0) -> None:
    """Until the loop has stepped (and fed) ``n`` more times."""
    target = loop.ticks + n
    deadline = time.monotonic() + timeout
    while loop.ticks < target:
        assert time.monotonic() < deadline, "the driver loop stopped stepping"
        time.sleep(0.01)


def post(client, body):
    return client.post("/api/perturb", json=body)


# -- page and description -------------------------------------------------------------------------------------
def test_page_and_its_assets_are_served(rig):
    client, _, _ = rig
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/console.js" in page.text and "/static/console.css" in page.text
    for asset, kind in (("console.js", "javascript"), ("console.css", "css")):
        r = client.get(f"/static/{asset}")
        assert r.status_code == 200 and kind in r.headers["content-type"] and len(r.content) > 500


def test_targets_and_config_describe_what_the_driver_accepts(rig):
    client, _, _ = rig
    targets = client.get("/api/targets").json()
    assert set(targets) == {k.value for k in PerturbationKind}
    assert targets["push"] == ["cube", "distractor_box"] and targets["instruction"] == ["task"]
    assert "all" in targets["lighting"] and "table" in targets["color"] and "agentview" in targets["camera"]
    config = client.get("/api/config").json()
    assert config["cameras"] == ["agentview"]
    assert config["episode_commands"] == ["start", "save", "discard", "mark_success", "mark_failure"]
    presets = config["instruction_presets"]
    assert presets[0] == client.get("/api/status").json()["instruction"]
    assert {"lift the red cube", "lift the blue box"} <= set(presets)


def test_status_reports_time_instruction_and_object_poses(rig):
    client, _, loop = rig
    wait_ticks(loop)
    first = client.get("/api/status").json()
    wait_ticks(loop)
    second = client.get("/api/status").json()
    assert second["step"] > first["step"] and second["sim_time"] > first["sim_time"]
    assert second["driver"] == "robosuite" and second["instruction"]
    cube = second["objects"]["cube"]
    assert len(cube["position"]) == 3 and 0.8 < cube["position"][2] < 0.9  # on the table
    assert set(second["task"]) == {"reward", "success"}


# -- perturbations --------------------------------------------------------------------------------------------
def test_move_object_is_applied_recorded_and_seen_in_the_status(rig):
    client, backend, loop = rig
    wait_ticks(loop)
    before = client.get("/api/status").json()["objects"]["cube"]["position"]
    target = [before[0] + 0.05, before[1] - 0.03, before[2]]
    r = post(client, {"kind": "move_object", "target": "cube", "params": {"position": target, "yaw": 0.5}})
    assert r.status_code == 200, r.text
    record = r.json()
    assert record["kind"] == "move_object" and record["target"] == "cube" and isinstance(record["step"], int)
    assert np.allclose(record["params"]["position"], target)
    assert backend.events(record["seq"] - 1)[0] == record
    wait_ticks(loop)
    after = client.get("/api/status").json()["objects"]["cube"]
    assert np.allclose(after["position"][:2], target[:2], atol=0.005)
    assert after["yaw"] == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("request_body, check", [
    ({"kind": "push", "target": "cube", "params": {"velocity": [0.0, 0.2, 0.0]}},
     lambda d: np.allclose(d["params"]["velocity"], [0.0, 0.2, 0.0])),
    ({"kind": "lighting", "target": "all", "params": {"diffuse": [1.0, 0.7, 0.4]}},
     lambda d: np.allclose(d["params"]["diffuse"], [1.0, 0.7, 0.4])),
    ({"kind": "color", "target": "cube", "params": {"rgba": [0.1, 0.2, 0.9, 1.0]}},
     lambda d: d["params"]["geoms"] >= 1),
    ({"kind": "camera", "target": "agentview", "params": {"offset": [0.0, 0.05, 0.0], "yaw": 0.1}},
     lambda d: len(d["params"]["camera_pos"]) == 3),
    ({"kind": "distractor_add", "target": "distractor_box", "params": {}},
     lambda d: 0.8 < d["params"]["position"][2] < 0.9),
    ({"kind": "distractor_remove", "target": "distractor_box", "params": {}},
     lambda d: d["params"]["position"][2] < 0.1),
    ({"kind": "instruction", "target": "task", "params": {"text": "push the cube to the left"}},
     lambda d: d["params"]["previous"] != "push the cube to the left"),
])
def test_every_perturbation_kind_goes_through(rig, request_body, check):
    client, _, _ = rig
    r = post(client, request_body)
    assert r.status_code == 200, r.text
    record = r.json()
    assert record["kind"] == request_body["kind"] and record["sim_time"] is not None and check(record)


def test_the_camera_shift_shows_in_the_frames(rig):
    client, _, loop = rig
    assert post(client, {"kind": "camera", "target": "agentview", "params": {"offset": [0, 0, 0]}}).status_code == 200
    wait_ticks(loop)
    before = np.asarray(Image.open(io.BytesIO(client.get("/camera/agentview.jpg").content)), dtype=float)
    assert post(client, {"kind": "camera", "target": "agentview", "params": {"yaw": 0.6}}).status_code == 200
    wait_ticks(loop)
    after = np.asarray(Image.open(io.BytesIO(client.get("/camera/agentview.jpg").content)), dtype=float)
    assert np.abs(after - before).mean() > 5.0
    post(client, {"kind": "camera", "target": "agentview", "params": {"offset": [0, 0, 0]}})


def test_instruction_change_shows_in_status(rig):
    client, _, _ = rig
    r = post(client, {"kind": "instruction", "target": "task", "params": {"text": "  put the cube down "}})
    assert r.is_success
    assert client.get("/api/status").json()["instruction"] == "put the cube down"


@pytest.mark.parametrize("body, status, words", [
    (b"{not json", 422, "not JSON"),
    ({"kind": "teleport", "target": "cube", "params": {}}, 422, "unknown perturbation kind 'teleport'"),
    ({"kind": "push", "target": "cube", "params": {}}, 422, "needs one of params ['velocity']"),
    ({"kind": "push", "target": "cube", "params": {"velocity": [1, 2]}}, 422, "push.velocity: expected 3"),
    ({"kind": "push", "params": {"velocity": [1, 0, 0]}}, 422, "missing ['target']"),
    ({"kind": "push", "target": "cube", "params": {"velocity": [1, 0, 0]}, "step": 3}, 422, "sim_time/step"),
    ({"kind": "push", "target": "nope", "params": {"velocity": [1, 0, 0]}}, 400, "unknown push target 'nope'"),
    ({"kind": "instruction", "target": "task", "params": {"text": "   "}}, 422, "text must be a non-empty"),
])
def test_malformed_or_refused_perturbations_get_a_4xx_naming_the_problem(rig, body, status, words):
    client, _, _ = rig
    r = client.post("/api/perturb", content=body) if isinstance(body, bytes) else post(client, body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_refusals_are_logged_as_error_events(rig):
    client, _, _ = rig
    last = client.get("/api/events").json()["last"]
    post(client, {"kind": "lighting", "target": "sun", "params": {"diffuse": [1, 1, 1]}})
    events = client.get(f"/api/events?after={last}").json()["events"]
    assert len(events) == 1 and "unknown lighting target 'sun'" in events[0]["error"]
    assert events[0]["request"]["target"] == "sun"


def test_events_after_returns_only_newer_events(rig):
    client, _, _ = rig
    start = client.get("/api/events").json()["last"]
    texts = ["lift the blue box", "lift the red cube"]
    for text in texts:
        post(client, {"kind": "instruction", "target": "task", "params": {"text": text}})
    page = client.get(f"/api/events?after={start}").json()
    assert [e["params"]["text"] for e in page["events"]] == texts and page["last"] == start + 2
    assert client.get(f"/api/events?after={page['last']}").json() == {"events": [], "last": page["last"]}


def test_out_of_bounds_perturbations_are_refused_with_400_and_a_short_answer(rig):
    client, backend, _ = rig
    before = client.get("/api/status").json()["objects"]["cube"]["position"]
    for velocity in ([1e300, 0, 0], [0, 0, 1e4]):
        r = post(client, {"kind": "push", "target": "cube", "params": {"velocity": velocity}})
        assert r.status_code == 400 and "max_push_speed" in r.json()["error"], r.text
    r = post(client, {"kind": "instruction", "target": "task", "params": {"text": "lift the red cube " * 3000}})
    assert r.status_code == 400 and "max_instruction_chars" in r.json()["error"] and len(r.content) < 1500
    assert np.allclose(client.get("/api/status").json()["objects"]["cube"]["position"], before, atol=0.01)


# -- cross-site requests ----------------------------------------------------------------------------------------
EVIL = "http://evil.example"
INSTRUCTION = b'{"kind": "instruction", "target": "task", "params": {"text": "lift the blue box"}}'


@pytest.mark.parametrize("drop, headers, status, words", [
    # the curl: another origin, text/plain (a "simple" request no preflight guards), no token
    ("X-Console-Token", {"Origin": EVIL, "Content-Type": "text/plain"}, 403, "origin 'http://evil.example'"),
    ("X-Console-Token", {}, 403, "X-Console-Token"),
    (None, {"X-Console-Token": "guessed"}, 403, "X-Console-Token"),
    (None, {"Content-Type": "text/plain"}, 415, "application/json"),
    (None, {"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"),
    (None, {"Origin": EVIL}, 403, "origin"),
    (None, {"Origin": "null"}, 403, "origin"),
    (None, {"Sec-Fetch-Site": "cross-site"}, 403, "cross-site"),
    (None, {"Host": "evil.example:8765"}, 400, "does not name this console"),  # DNS rebinding
    (None, {"Host": "127.0.0.1:9999"}, 400, "Host"),
])
def test_cross_site_requests_cannot_change_state(rig, drop, headers, status, words):
    client, backend, _ = rig
    instruction, episodes = backend.instruction(), len(backend.episode_log)
    sent = {**{k: v for k, v in client.headers.items() if k != (drop or "").lower()}, **headers}
    client_headers = dict(client.headers)
    try:
        client.headers.clear()
        r = client.post("/api/perturb", content=INSTRUCTION, headers=sent)
        assert r.status_code == status and words in r.json()["error"], r.text
        r = client.post("/api/episode/start", content=b"{}", headers=sent)
        assert r.status_code == status, r.text
    finally:
        client.headers.update(client_headers)
    assert backend.instruction() == instruction and len(backend.episode_log) == episodes


def test_the_page_itself_may_change_state_and_carries_the_token(rig):
    client, backend, _ = rig
    page = client.get("/")
    assert page.status_code == 200 and client.headers["X-Console-Token"] in page.text
    same_origin = {"Origin": "http://127.0.0.1:8765", "Sec-Fetch-Site": "same-origin"}
    r = client.post("/api/perturb", content=INSTRUCTION.replace(b"blue box", b"red cube"), headers=same_origin)
    assert r.status_code == 200, r.text
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400  # a rebound name reads nothing
    huge = client.post("/api/perturb", content=b" " * (70 * 1024))
    assert huge.status_code == 413


def test_allowed_hosts_follow_the_bound_address():
    from robot_irl.console.app import allowed_hosts, request_problem

    assert allowed_hosts("127.0.0.1", 8080) == {"127.0.0.1:8080", "localhost:8080", "[::1]:8080"}
    assert allowed_hosts("192.168.1.5", 80) == {"192.168.1.5:80", "192.168.1.5"}
    assert allowed_hosts("0.0.0.0", 8080) is None  # any name, but Origin and the token still apply
    ok = {"host": "robot.lan:8080", "content-type": "application/json", "x-console-token": "t"}
    assert request_problem("POST", ok, "0.0.0.0", 8080, "t") is None
    assert request_problem("POST", {**ok, "origin": "http://other.lan:8080"}, "0.0.0.0", 8080, "t")[0] == 403


# -- cameras --------------------------------------------------------------------------------------------------
def test_camera_jpeg_is_a_decodable_frame_and_unknown_cameras_are_404(rig):
    client, _, _ = rig
    r = client.get("/camera/agentview.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(r.content))
    assert image.size == (CAMERA_SIZE, CAMERA_SIZE) and image.mode == "RGB"
    assert np.asarray(image).std() > 5  # a scene, not a blank frame
    missing = client.get("/camera/ceiling.jpg")
    assert missing.status_code == 404 and "agentview" in missing.json()["error"]
    assert client.get("/camera/ceiling/stream").status_code == 404


def test_mjpeg_stream_sends_multipart_jpeg_frames(rig):
    client, _, _ = rig
    r = client.get("/camera/agentview/stream?frames=2")
    assert r.status_code == 200
    assert r.headers["content-type"] == "multipart/x-mixed-replace; boundary=frame"
    parts = [p for p in r.content.split(b"--frame\r\n") if p]
    assert len(parts) == 2
    header, jpeg = parts[0].split(b"\r\n\r\n", 1)
    assert b"Content-Type: image/jpeg" in header
    assert Image.open(io.BytesIO(jpeg.removesuffix(b"\r\n"))).size == (CAMERA_SIZE, CAMERA_SIZE)


# -- episode controls -----------------------------------------------------------------------------------------
def test_episode_commands_reach_the_callback(rig):
    _, backend, _ = rig
    calls = []

    def recorder(command):
        calls.append(command)
        if command == "save":
            raise OSError("disk full")
        return {"ok": command != "discard", "message": f"did {command}"}

    app = create_app(DriverBackend(backend.driver, lock=backend.lock, on_episode=recorder))
    with console_client(app) as client:
        assert client.post("/api/episode/start").json() == {"ok": True, "message": "did start"}
        assert client.post("/api/episode/mark_success").status_code == 200
        refused = client.post("/api/episode/discard")
        assert refused.status_code == 409 and refused.json()["message"] == "did discard"
        failed = client.post("/api/episode/save_episode")  # the recorder's service name works too
        assert failed.status_code == 409 and "disk full" in failed.json()["message"]
        unknown = client.post("/api/episode/rewind")
        assert unknown.status_code == 404 and "mark_failure" in unknown.json()["error"]
        assert client.get("/api/status").json()["episode"]["command"] == "save"
    assert calls == ["start", "mark_success", "discard", "save"]


def test_episode_commands_without_a_recorder_are_noted(rig):
    client, backend, _ = rig
    r = client.post("/api/episode/start")
    assert r.status_code == 200 and "no recorder" in r.json()["message"]
    assert backend.episode_log[-1]["command"] == "start"


# -- pieces ---------------------------------------------------------------------------------------------------
def test_backend_needs_a_connected_driver():
    with pytest.raises(ValueError, match="connected driver"):
        DriverBackend(make_driver("mock"))


def test_episode_command_names_and_object_poses():
    assert episode_command("discard_episode") == "discard" and episode_command("mark_failure") == "mark_failure"
    with pytest.raises(ValueError, match="known"):
        episode_command("stop")
    names = ["cube.x", "cube.y", "cube.z", "cube.qw", "cube.qx", "cube.qy", "cube.qz", "door.hinge"]
    half = np.sqrt(0.5)
    poses = object_poses(names, [0.1, 0.2, 0.8, half, 0, 0, half, 1.0])
    assert list(poses) == ["cube"] and poses["cube"]["yaw"] == pytest.approx(np.pi / 2)


def test_event_log_is_bounded_and_waits_for_matches():
    log = EventLog(keep=3)
    for i in range(5):
        log.add({"n": i})
    assert [e["seq"] for e in log.since(0)] == [3, 4, 5] and log.last_seq == 5
    assert log.wait_after(5, 0.05) is None
    assert log.wait_after(2, 0.05, lambda e: e["n"] == 4)["seq"] == 5
