"""The adversary console's web app (FastAPI) and a uvicorn server in a thread.

Routes (JSON unless noted):

================================ ====== ==========================================================================
route                            method what
================================ ====== ==========================================================================
``/``                            GET    the page (static/index.html; its JS and CSS under ``/static``)
``/api/config``                  GET    ``{cameras, kinds, episode_commands, instruction_presets}``
``/api/targets``                 GET    perturbation kind -> accepted targets
``/api/perturb``                 POST   a Perturbation request ``{kind, target, params}``: 200 with the logged
                                        record; 422 ``{"error"}`` naming what is malformed; 400 ``{"error"}``
                                        when the driver refuses it (unknown target, unsupported kind, outside
                                        the driver's PerturbationBounds, an unsound simulation after it)
``/api/events?after=N``          GET    ``{"events": [events with seq > N], "last": newest seq}``
``/api/status``                  GET    the backend's status snapshot
``/api/episode/{command}``       POST   start | save | discard | mark_success | mark_failure: 200
                                        ``{ok, message}``; 409 when the recorder refused, 503 when unreachable,
                                        404 for an unknown command
``/camera/{name}.jpg``           GET    the newest frame as JPEG (404 unknown camera, 503 no frame yet)
``/camera/{name}/stream``        GET    MJPEG (``multipart/x-mixed-replace``) live view; ``?frames=N`` ends it
                                        after N frames
================================ ====== ==========================================================================

:class:`ConsoleServer` runs the app with uvicorn in a daemon thread, on 127.0.0.1 by default (the console has no
user accounts: expose it beyond loopback only on a trusted network). Port 0 picks a free port.

Cross-site requests (CSRF, DNS rebinding) are refused by :class:`RequestGuard`, in front of every route:

* every request's ``Host`` must name the address the server is bound to (``app.state.host``; on loopback also
  ``localhost``/``127.0.0.1``/``[::1]``) with its port: a hostile DNS name pointing at 127.0.0.1 gets 400;
* a state-changing request (POST) must carry ``Content-Type: application/json`` (415 otherwise: a cross-site form
  or a "simple" fetch cannot send it without a CORS preflight, which is never granted), an ``Origin`` (when the
  browser sends one) equal to the page's own origin and no cross-site ``Sec-Fetch-Site`` (403), and the
  per-session token (header ``X-Console-Token``, 403 without it). The token is random per app, embedded in the
  page (``<meta name="robot-irl-console-token">``, :func:`token_from_page`) and sent by its script; a page of
  another origin cannot read it. Bodies are limited to 64 KiB (413).
"""
from __future__ import annotations

import asyncio
import io
import json
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from robot_irl.collect.language import OBJECT_PHRASES
from robot_irl.console.backend import EPISODE_COMMANDS, ConsoleBackend, episode_command
from robot_irl.core.perturbation import Perturbation, PerturbationError, PerturbationKind

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
_BOUNDARY = "frame"
TOKEN_HEADER = "X-Console-Token"
TOKEN_META = "robot-irl-console-token"
_TOKEN_SLOT = "__CONSOLE_TOKEN__"
MAX_BODY_BYTES = 64 * 1024
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def token_from_page(html: str) -> str:
    """The session token embedded in the console page (what its script sends in ``X-Console-Token``)."""
    found = re.search(rf'<meta name="{TOKEN_META}" content="([^"]+)"', html)
    if found is None:
        raise ValueError("no console token in the page")
    return found.group(1)


def api_headers(page_html: str) -> dict[str, str]:
    """The headers a script (or test) sends to change state, as the page's own script does: the session token
    read from the page, and the JSON content type."""
    return {TOKEN_HEADER: token_from_page(page_html), "Content-Type": "application/json"}


def allowed_hosts(bound_host: str, port: int | None) -> set[str] | None:
    """``Host`` header values naming a server bound to ``bound_host``:``port``; ``None`` (any) for a wildcard
    bind (0.0.0.0, ::), where the Origin check and the token still apply."""
    if bound_host in ("", "0.0.0.0", "::"):
        return None
    names = LOOPBACK_NAMES if bound_host in LOOPBACK_NAMES else (bound_host,)
    hosts = set()
    for name in names:
        name = f"[{name}]" if ":" in name else name
        hosts.add(f"{name}:{port}".lower())
        if port in (80, None):
            hosts.add(name.lower())
    return hosts


def request_problem(method: str, headers: dict[str, str], bound_host: str, port: int | None,
                    token: str) -> tuple[int, str] | None:
    """Why a request must be refused (status, message), else ``None``; see the module docstring."""
    host = headers.get("host", "").lower()
    allowed = allowed_hosts(bound_host, port)
    if allowed is not None and host not in allowed:
        return 400, f"Host {host[:100]!r} does not name this console (bound to {bound_host}:{port})"
    if method in _SAFE_METHODS:
        return None
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return 403, f"cross-site request refused (Sec-Fetch-Site: {site[:40]})"
    origin = headers.get("origin")
    if origin is not None and origin.lower() != f"http://{host}":
        return 403, f"request from origin {origin[:100]!r} refused: only the console's own page may change state"
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        return 415, f"Content-Type must be application/json, got {media[:60]!r}"
    if not secrets.compare_digest(headers.get(TOKEN_HEADER.lower(), ""), token):
        return 403, f"missing or wrong {TOKEN_HEADER} (the console page sends it; reload the page)"
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        return 400, "bad Content-Length"
    if length > MAX_BODY_BYTES:
        return 413, f"request body of {length} bytes exceeds {MAX_BODY_BYTES}"
    return None


class RequestGuard:
    """ASGI middleware that refuses cross-site and malformed requests before any route runs (see the module
    docstring). A pure ASGI wrapper, so live MJPEG streams pass through untouched."""

    def __init__(self, app, state) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        server = scope.get("server") or (None, None)
        problem = request_problem(scope["method"], headers, self.state.host, server[1], self.state.token)
        if problem is None:
            await self.app(scope, receive, send)
            return
        response = _error(*problem)
        await response(scope, receive, send)


def encode_jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    """An (H, W, 3) uint8 RGB frame as JPEG bytes."""
    from PIL import Image

    a = np.asarray(frame)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"camera frame: expected an (H, W, 3) uint8 array, got {a.dtype} {a.shape}")
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def default_presets(targets: dict[str, list[str]], current: str = "") -> list[str]:
    """Instructions to offer with one click: the current one, then one goal per movable object of the scene
    (named as :mod:`robot_irl.collect.language` understands it), then two for the first object."""
    objects = targets.get(PerturbationKind.MOVE_OBJECT.value) or []
    phrases = [OBJECT_PHRASES.get(obj, (obj.replace("_", " "),))[0] for obj in objects]
    presets = [current] if current else []
    presets += [f"lift the {phrase}" for phrase in phrases]
    if phrases:
        presets += [f"push the {phrases[0]} to the left", f"put the {phrases[0]} down"]
    return list(dict.fromkeys(presets))


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def parse_perturbation(body: bytes) -> Perturbation:
    """The request body of ``POST /api/perturb`` -> a Perturbation; PerturbationError names what is wrong."""
    try:
        data = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PerturbationError(f"perturbation request body is not JSON: {e}") from None
    if isinstance(data, dict) and ("sim_time" in data or "step" in data):
        raise PerturbationError("a perturbation request must not carry sim_time/step: the driver stamps them")
    return Perturbation.from_dict(data)


def create_app(backend: ConsoleBackend, *, instruction_presets: tuple[str, ...] | list[str] | None = None,
               stream_fps: float = 10.0, jpeg_quality: int = 85) -> FastAPI:
    """The console app around ``backend``. ``app.state.closing`` (a threading.Event) ends live streams.

    ``instruction_presets``: the one-click instructions of the page; default :func:`default_presets`.
    """
    app = FastAPI(title="robot_irl adversary console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.backend = backend
    app.state.closing = threading.Event()
    app.state.host = DEFAULT_HOST  # the bound address: ConsoleServer sets it
    app.state.token = secrets.token_urlsafe(32)
    app.add_middleware(RequestGuard, state=app.state)
    presets = list(instruction_presets) if instruction_presets is not None else None
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    page = (STATIC / "index.html").read_text().replace(_TOKEN_SLOT, app.state.token)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @app.get("/api/config")
    def config() -> dict[str, Any]:
        offered = presets if presets is not None else default_presets(backend.targets(), backend.instruction())
        return {"cameras": backend.cameras(), "kinds": [k.value for k in PerturbationKind],
                "episode_commands": list(EPISODE_COMMANDS), "instruction_presets": offered}

    @app.get("/api/targets")
    def targets() -> dict[str, list[str]]:
        return backend.targets()

    @app.post("/api/perturb")
    async def perturb(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"request body of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
        try:
            perturbation = parse_perturbation(body)
        except PerturbationError as e:
            return _error(422, str(e))
        event = await run_in_threadpool(backend.perturb, perturbation)
        return JSONResponse(event, status_code=400 if "error" in event else 200)

    @app.get("/api/events")
    def events(after: int = 0) -> dict[str, Any]:
        found = backend.events(after)
        return {"events": found, "last": found[-1]["seq"] if found else after}

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        return backend.status()

    @app.post("/api/episode/{command}")
    def episode(command: str) -> JSONResponse:
        try:
            command = episode_command(command)
        except ValueError as e:
            return _error(404, str(e))
        result = backend.episode(command)
        code = 200 if result.get("ok") else 503 if result.get("unavailable") else 409
        return JSONResponse(result, status_code=code)

    def frame_or_error(name: str) -> np.ndarray | JSONResponse:
        if name not in backend.cameras():
            return _error(404, f"unknown camera {name!r}; cameras: {backend.cameras()}")
        frame = backend.latest_frame(name)
        return _error(503, f"no frame from camera {name!r} yet") if frame is None else frame

    @app.get("/camera/{name}.jpg")
    def camera_jpeg(name: str) -> Response:
        frame = frame_or_error(name)
        if isinstance(frame, JSONResponse):
            return frame
        return Response(encode_jpeg(frame, jpeg_quality), media_type="image/jpeg",
                        headers={"Cache-Control": "no-store"})

    @app.get("/camera/{name}/stream")
    def camera_stream(name: str, frames: int = 0) -> Response:
        if name not in backend.cameras():
            return _error(404, f"unknown camera {name!r}; cameras: {backend.cameras()}")
        parts = _mjpeg(backend, name, app.state.closing, stream_fps, jpeg_quality, frames)
        return StreamingResponse(parts,
                                 media_type=f"multipart/x-mixed-replace; boundary={_BOUNDARY}",
                                 headers={"Cache-Control": "no-store"})

    return app


async def _mjpeg(backend: ConsoleBackend, camera: str, closing: threading.Event, fps: float, quality: int,
                 frames: int = 0):
    """Multipart JPEG parts of ``camera`` at up to ``fps`` until ``closing`` is set, the client leaves or
    ``frames`` parts were sent (0: no limit)."""
    period = 1.0 / max(fps, 0.1)
    last = None
    sent = 0
    while not closing.is_set() and not (frames and sent >= frames):
        started = time.monotonic()
        frame = await run_in_threadpool(backend.latest_frame, camera)
        if frame is not None and frame is not last:
            last = frame
            jpeg = await run_in_threadpool(encode_jpeg, frame, quality)
            yield (f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                   .encode() + jpeg + b"\r\n")
            sent += 1
        await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))


class ConsoleServer:
    """uvicorn serving ``app`` in a daemon thread (also a context manager).

    ``port=0`` picks a free port; :attr:`port` and :attr:`url` tell which once :meth:`start` returned.
    """

    def __init__(self, app: FastAPI, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 log_level: str = "warning") -> None:
        import uvicorn

        self.app = app
        self.host = host
        app.state.host = host  # the Host check of RequestGuard names this address
        config = uvicorn.Config(app, host=host, port=int(port), log_level=log_level, http="h11", ws="none",
                                loop="asyncio", lifespan="off", timeout_graceful_shutdown=2, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self, timeout: float = 10.0) -> ConsoleServer:
        """Start serving; returns once the socket listens. Raises RuntimeError if it cannot (port in use...)."""
        self._thread = threading.Thread(target=self._run, name="console-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                failure = self._failure
                why = (f"{type(failure).__name__}: {failure}" if failure and not isinstance(failure, SystemExit)
                       else "uvicorn could not bind or start; is the port in use? port 0 picks a free one")
                raise RuntimeError(f"console: cannot serve on {self.host}:{self._server.config.port} ({why})")
            time.sleep(0.02)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def _run(self) -> None:
        try:
            self._server.run()
        except BaseException as e:  # uvicorn exits with SystemExit when it cannot bind
            self._failure = e

    def stop(self, timeout: float = 5.0) -> None:
        """End live streams, stop the server and join its thread."""
        self.app.state.closing.set()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
