"""A fake OpenAI chat-completions server on 127.0.0.1 for the labelling tests (a helper module, not a test file).

``FakeOpenAI`` answers ``POST /v1/chat/completions`` from a script: each request takes the next behaviour from
``script`` (then ``default``):

* ``good`` — stage 1 (a request with images) answers an analysis ending in ``PREFERENCE=<k>``, where ``k`` is
  ``judge(image1, image2)`` on the decoded images (default 0); stage 2 (text only) finds ``PREFERENCE=<k>`` in the
  analysis it was given and answers ``k`` (``-1`` when absent). So a correct label proves the images arrived in
  order and that stage 2 received stage 1's text.
* ``unparseable`` (text that is not a label), ``empty`` (``""``), ``refusal`` (``content: null`` + ``refusal``),
  ``malformed`` (HTTP 200, not JSON), ``no_choices`` (JSON without ``choices``),
* ``slow`` (sleeps ``slow_s`` before a good reply: client timeouts), ``429`` (with ``Retry-After: retry_after``),
  ``500``, ``401_echo`` (401 whose body echoes the Authorization header, to test key redaction).

``delay_s`` delays every reply. Every request is kept in ``requests`` (headers, JSON body, time, behaviour);
``max_active`` is the most requests answered at once.
Also here: small datasets whose images encode task progress, and the judges that read them.
"""
from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

BEHAVIOURS = ("good", "unparseable", "empty", "refusal", "malformed", "no_choices", "slow", "429", "500", "401_echo")
_PREF = re.compile(r"PREFERENCE=(-?\d)")


def decode_data_url(url: str) -> np.ndarray:
    from PIL import Image

    assert url.startswith("data:image/png;base64,"), url[:40]
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as img:
        return np.asarray(img.convert("RGB"))


def _images(body: dict) -> list[np.ndarray]:
    content = body["messages"][-1]["content"]
    if not isinstance(content, list):
        return []
    return [decode_data_url(p["image_url"]["url"]) for p in content if p.get("type") == "image_url"]


def _text(body: dict) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "\n".join(p["text"] for p in content if p.get("type") == "text")


def _completion(content, refusal=None, finish_reason="stop") -> dict:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": "fake",
            "choices": [{"index": 0, "finish_reason": finish_reason,
                         "message": {"role": "assistant", "content": content, "refusal": refusal}}]}


class FakeOpenAI:
    """A scripted OpenAI-compatible server; use as a context manager."""

    def __init__(self, script=(), default: str = "good", judge=None, slow_s: float = 2.0, delay_s: float = 0.0,
                 retry_after: str = "0.2") -> None:
        for b in [*script, default]:
            assert b in BEHAVIOURS, b
        self.script = list(script)
        self.default = default
        self.judge = judge or (lambda a, b: 0)
        self.slow_s = slow_s
        self.delay_s = delay_s
        self.retry_after = retry_after
        self.requests: list[dict] = []
        self.active = 0  # requests being answered now, and the most at once
        self.max_active = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def __enter__(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                fake._handle(self)

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                pass  # clients that time out close the socket before a slow reply: expected

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def set_script(self, script, default: str | None = None) -> None:
        with self._lock:
            self.script = list(script)
            if default is not None:
                self.default = default

    @property
    def stage_counts(self) -> dict[int, int]:
        with self._lock:
            stages = [r["stage"] for r in self.requests]
        return {1: stages.count(1), 2: stages.count(2)}

    # -- replies ------------------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self._reply(h)
        finally:
            with self._lock:
                self.active -= 1

    def _reply(self, h: BaseHTTPRequestHandler) -> None:
        raw = h.rfile.read(int(h.headers.get("Content-Length", 0)))
        body = json.loads(raw)
        images = _images(body)
        with self._lock:
            behaviour = self.script.pop(0) if self.script else self.default
            self.requests.append({"path": h.path, "headers": dict(h.headers), "body": body, "time": time.monotonic(),
                                  "behaviour": behaviour, "stage": 1 if images else 2})
        if self.delay_s:
            time.sleep(self.delay_s)
        if behaviour == "slow":
            time.sleep(self.slow_s)
            behaviour = "good"
        if behaviour == "good":
            if images:
                k = int(self.judge(images[0], images[1]))
                content = f"Image 1 shows a scene. Image 2 shows another scene. PREFERENCE={k}"
            else:
                match = _PREF.search(_text(body))
                content = match.group(1) if match else "-1"
            self._send(h, 200, _completion(content))
        elif behaviour == "unparseable":
            self._send(h, 200, _completion("Image 2 seems a bit better, I think."))
        elif behaviour == "empty":
            self._send(h, 200, _completion(""))
        elif behaviour == "refusal":
            self._send(h, 200, _completion(None, refusal="I can't help with that."))
        elif behaviour == "malformed":
            self._send(h, 200, b"<html>upstream proxy error</html>")
        elif behaviour == "no_choices":
            self._send(h, 200, {"object": "chat.completion", "choices": []})
        elif behaviour == "429":
            self._send(h, 429, {"error": {"message": "rate limited", "type": "rate_limit"}},
                       {"Retry-After": self.retry_after})
        elif behaviour == "500":
            self._send(h, 500, {"error": {"message": "internal error"}})
        elif behaviour == "401_echo":
            self._send(h, 401, {"error": {"message": f"bad key in header {h.headers.get('Authorization')}"}})

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, payload, headers: dict | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except OSError:
            pass  # the client gave up (timeout)


# ---------------------------------------------------------------------------------------------------------------
# datasets whose images show progress, and judges that read them
# ---------------------------------------------------------------------------------------------------------------
def progress_arrays(n_episodes: int = 6, length: int = 12, levels: int = 12, size: int = 8, seed: int = 0) -> dict:
    """D4RL arrays whose per-frame progress (0..levels-1, never decreasing) is the reward and the image's
    brightness; equal progress gives identical images."""
    rng = np.random.default_rng(seed)
    progress = np.concatenate([np.minimum(np.cumsum(rng.integers(0, 3, length)), levels - 1)
                               for _ in range(n_episodes)])
    n = len(progress)
    images = np.repeat((20 + 18 * progress).astype(np.uint8)[:, None, None, None], size, 1)
    images = np.repeat(np.repeat(images, size, 2), 3, 3)
    timeouts = np.zeros(n, bool)
    timeouts[length - 1::length] = True
    return {"observations": progress[:, None].astype(np.float32), "actions": np.zeros((n, 1), np.float32),
            "rewards": progress.astype(np.float32), "terminals": np.zeros(n, bool), "timeouts": timeouts,
            "images/top": images}


def write_progress_hdf5(path: str | Path, **kwargs) -> Path:
    from robot_irl.data.d4rl import export_d4rl

    return export_d4rl(path, progress_arrays(**kwargs), attrs={"task": "make the square bright"})


def brightness_judge(a: np.ndarray, b: np.ndarray) -> int:
    """Prefers the brighter image (more progress in :func:`progress_arrays`); equal -> -1."""
    da, db = float(a.mean()), float(b.mean())
    return -1 if da == db else int(db > da)


def point_mass_judge(a: np.ndarray, b: np.ndarray) -> int:
    """For :mod:`robot_irl.data.synthetic` renders: prefers the image where the red mass is nearer the green goal."""

    def distance(img: np.ndarray) -> float:
        img = img.astype(int)
        red = (img[..., 0] > 150) & (img[..., 1] < 110) & (img[..., 2] < 110)
        green = (img[..., 1] > 130) & (img[..., 0] < 110)
        if not red.any() or not green.any():
            return 0.0
        return float(np.linalg.norm(np.argwhere(red).mean(0) - np.argwhere(green).mean(0)))

    da, db = distance(a), distance(b)
    return -1 if abs(da - db) < 1e-9 else int(db < da)
