"""The adversary console page in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

uvicorn serves the app on a free loopback port around a robosuite Lift driver (one 64x64 camera) stepped at 10 Hz
by a DriverLoop. The test clicks perturbation buttons and checks the event shows in the page's log, the driver
really applied it (the cube moved), and an instruction preset changes the instruction: every click is a POST that
carries the page's session token. A page of another origin, in the same browser, can neither read the console nor
change its state. A screenshot is kept in the test's tmp folder and copied to /tmp/console_screenshot.png.
"""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("playwright.sync_api")
from playwright.sync_api import sync_playwright

from robot_irl.console.app import ConsoleServer, create_app
from robot_irl.console.backend import DriverBackend, DriverLoop
from robot_irl.drivers import make_driver

pytestmark = pytest.mark.sim

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOT_COPY = Path("/tmp/console_screenshot.png")
if not CHROMIUM.exists():
    pytest.skip("/usr/bin/chromium is missing (Debian package 'chromium'; `make setup` installs it)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def console():
    driver = make_driver("robosuite", {"cameras": ["agentview"], "camera_size": 64, "distractors": 1})
    loop = DriverLoop(driver, rate=10.0).start()
    backend = DriverBackend(driver, lock=loop.lock)
    loop.observers.append(backend.feed)
    with ConsoleServer(create_app(backend), port=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        yield server, backend, loop
    loop.stop()
    assert loop.error is None


@pytest.fixture(scope="module")
def page(console):
    server, _, _ = console
    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="console_chromium_") as profile:
        context = pw.chromium.launch_persistent_context(profile, executable_path=str(CHROMIUM), headless=True,
                                                        args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.goto(server.url)
        page.wait_for_selector("body[data-ready=true]", timeout=15_000)
        yield page
        context.close()


def cube_position(loop: DriverLoop) -> np.ndarray:
    """The cube's position, read from the simulator itself."""
    with loop.lock:
        return np.array(loop.driver.data.joint("cube_joint0").qpos[:3])


def new_event(page, kind: str, count_before: int, timeout: float = 5_000):
    """Wait until the page's log holds more than ``count_before`` events of ``kind``; return the newest's text."""
    selector = f"#events li.event.perturbation[data-kind={kind}]"
    page.wait_for_function(f"document.querySelectorAll('{selector}').length > {count_before}", timeout=timeout)
    return page.locator(selector).first.inner_text()


def count(page, kind: str) -> int:
    return page.locator(f"#events li.event.perturbation[data-kind={kind}]").count()


def test_the_camera_view_shows_frames(page):
    page.wait_for_function("document.querySelector('img.camera[data-camera=agentview]').naturalWidth > 0",
                           timeout=10_000)
    assert page.evaluate("document.querySelector('img.camera').naturalWidth") == 64
    assert page.locator("select#push-target option").all_inner_texts() == ["cube", "distractor_box"]
    assert "robosuite" in page.inner_text("#status")


def test_clicking_move_moves_the_cube_and_logs_the_event(page, console):
    _, backend, loop = console
    before = cube_position(loop)
    page.fill("#move-dx", "6")
    page.fill("#move-dy", "-2")
    n = count(page, "move_object")
    page.click("#move-apply")
    text = new_event(page, "move_object", n)
    assert "move_object → cube" in text and "step" in text
    record = [e for e in backend.events() if e.get("kind") == "move_object"][-1]
    assert record["target"] == "cube" and record["step"] >= 0
    moved = cube_position(loop) - before
    assert moved[0] == pytest.approx(0.06, abs=0.01) and moved[1] == pytest.approx(-0.02, abs=0.01)


def test_clicking_push_and_the_arrow_key_push_the_cube(page, console):
    _, backend, loop = console
    before = cube_position(loop)
    page.fill("#push-speed", "0.5")
    n = count(page, "push")
    page.click("#push-xp")
    assert "velocity [0.5, 0, 0]" in new_event(page, "push", n)
    deadline = time.monotonic() + 5.0
    while cube_position(loop)[0] - before[0] < 0.01:  # the loop steps the physics: the cube slides
        assert time.monotonic() < deadline, f"the cube did not slide: {before} -> {cube_position(loop)}"
        time.sleep(0.05)
    page.locator("body").click(position={"x": 5, "y": 790})  # focus off the inputs, then a keyboard shortcut
    page.keyboard.press("ArrowLeft")
    assert "velocity [0, 0.5, 0]" in new_event(page, "push", n + 1)
    assert [e["params"]["velocity"] for e in backend.events() if e.get("kind") == "push"][-2:] == \
        [[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]


def test_scene_perturbation_buttons_reach_the_driver(page, console):
    _, backend, loop = console
    for button, kind in (("#light-dark", "lighting"), ("#distractor-add", "distractor_add")):
        n = count(page, kind)
        page.click(button)
        new_event(page, kind, n)
    n = count(page, "color")
    page.click(".swatch[aria-label=green]")
    new_event(page, "color", n)
    with loop.lock:
        assert np.allclose(loop.driver.model.light_diffuse[0], 0.12)
    assert [e["kind"] for e in backend.events()[-3:]] == ["lighting", "distractor_add", "color"]


def test_an_instruction_preset_changes_the_instruction(page, console):
    _, backend, _ = console
    preset = page.locator("#presets button", has_text="lift the blue box")
    n = count(page, "instruction")
    preset.click()
    assert "lift the blue box" in new_event(page, "instruction", n)
    page.wait_for_function("document.querySelector('#instruction').textContent === 'lift the blue box'")
    assert backend.instruction() == "lift the blue box"


def test_refusals_and_episode_buttons_show_in_the_log(page, console, tmp_path):
    _, backend, _ = console
    page.fill("#instruction-text", "dance")  # names no object of the scene: the driver refuses it
    page.click("#instruction-send")
    page.wait_for_selector("#events li.event.error", timeout=5_000)
    assert "dance" in page.locator("#events li.event.error").first.inner_text()
    page.click("#ep-start")
    page.wait_for_selector("#events li.event.episode")
    assert backend.episode_log[-1]["command"] == "start"
    assert page.errors == []
    shot = tmp_path / "console.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    shutil.copyfile(shot, SCREENSHOT_COPY)


class _OtherSite(BaseHTTPRequestHandler):
    """A page of another origin (another port) open in the operator's browser."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = b"<!doctype html><title>elsewhere</title><p>an unrelated page</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


CROSS_SITE = """async (url) => {
  const text = (t) => JSON.stringify({kind: "instruction", target: "task", params: {text: t}});
  const out = {};
  // a "simple" request (no preflight): the browser sends it, the console must refuse it
  try { await fetch(url + "api/perturb", {method: "POST", mode: "no-cors",
          headers: {"Content-Type": "text/plain"}, body: text(TEXT)}); out.simple = "sent"; }
  catch (e) { out.simple = "blocked"; }
  try { await fetch(url + "api/episode/start", {method: "POST", mode: "no-cors"}); out.episode = "sent"; }
  catch (e) { out.episode = "blocked"; }
  // reading the page (to steal its token) and a JSON POST (needs a CORS preflight) are blocked by the browser
  try { out.read = (await (await fetch(url)).text()).length; } catch (e) { out.read = "blocked"; }
  try { await fetch(url + "api/perturb", {method: "POST", headers: {"Content-Type": "application/json",
          "X-Console-Token": "guessed"}, body: text(TEXT)}); out.json = "sent"; }
  catch (e) { out.json = "blocked"; }
  return out;
}"""


def test_a_page_of_another_origin_cannot_drive_the_console(page, console):
    server, backend, _ = console
    instruction, episodes = backend.instruction(), len(backend.episode_log)
    other_text = "lift the red cube" if instruction != "lift the red cube" else "lift the blue box"
    site = ThreadingHTTPServer(("127.0.0.1", 0), _OtherSite)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    other = page.context.new_page()
    try:
        other.goto(f"http://127.0.0.1:{site.server_address[1]}/")
        result = other.evaluate(CROSS_SITE.replace("TEXT", repr(other_text)), server.url)
    finally:
        other.close()
        site.shutdown()
    assert result["read"] == "blocked" and result["json"] == "blocked", result
    time.sleep(0.3)
    assert backend.instruction() == instruction and len(backend.episode_log) == episodes
    assert page.evaluate("document.querySelector('meta[name=robot-irl-console-token]').content") != "__CONSOLE_TOKEN__"
