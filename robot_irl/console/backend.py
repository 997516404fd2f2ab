"""What the adversary console talks to: the :class:`ConsoleBackend` protocol and an in-process implementation.

The web app (:mod:`robot_irl.console.app`) never touches a driver or ROS itself; it calls a backend:

- :class:`DriverBackend` wraps a connected :class:`~robot_irl.core.contracts.RobotDriver` in this process (tests,
  an in-process collection session). Calls into the driver hold ``lock``, the lock the control loop holds while it
  steps, so a perturbation never lands in the middle of a step.
- :class:`DriverLoop` owns a driver in one thread (connect, step with a hold or given action, disconnect) and
  hands each observation to its observers, e.g. :meth:`DriverBackend.feed`.

Threads and cameras: an offscreen GL context (MuJoCo's EGL renderer) is current in the thread that created it, so
only the thread that connected a driver may render its cameras. The web server answers from other threads, so
:class:`DriverBackend` never calls ``get_observation`` on a driver with cameras: frames (and object poses) come
from the observations the control loop feeds it.
- ``robot_irl.ros.console_node.ConsoleNode`` talks to ``driver_node`` and the recorder over ROS 2.

Events are dicts, newest last, each with a ``seq`` number (1, 2, ...) and the wall-clock ``time`` it was logged:
a perturbation record (:meth:`Perturbation.to_dict`: ``kind``, ``target``, ``params``, ``sim_time``, ``step``) or
``{"error": message, "request": ...}`` for a perturbation that was refused.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from robot_irl.core.contracts import RobotDriver
from robot_irl.core.perturbation import ECHO_LIMIT, Perturbation, PerturbationError, clip, request_echo

#: episode commands of the console -> the recorder's std_srvs/Trigger service of the same meaning
EPISODE_COMMANDS: dict[str, str] = {
    "start": "start_episode",
    "save": "save_episode",
    "discard": "discard_episode",
    "mark_success": "mark_success",
    "mark_failure": "mark_failure",
}
_POSE_KEYS = ("x", "y", "z", "qw", "qx", "qy", "qz")


@runtime_checkable
class ConsoleBackend(Protocol):
    """Everything the console page needs; implementations must be safe to call from several threads."""

    def targets(self) -> dict[str, list[str]]:
        """Perturbation kind (its string value) -> the targets the driver accepts for it."""

    def perturb(self, request: Perturbation) -> dict[str, Any]:
        """Apply ``request``; return its logged event: the stamped record, or one with an ``error``."""

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        """Logged events with ``seq > after``, oldest first."""

    def latest_frame(self, camera: str) -> np.ndarray | None:
        """The newest (H, W, 3) uint8 frame of ``camera``, or ``None`` if none has arrived yet."""

    def cameras(self) -> list[str]:
        """Camera names (as in ``observation.images.<name>``)."""

    def instruction(self) -> str:
        """The current language instruction."""

    def episode(self, command: str) -> dict[str, Any]:
        """Run an episode command (a key of :data:`EPISODE_COMMANDS`); return ``{"ok": bool, "message": str}``."""

    def status(self) -> dict[str, Any]:
        """A JSON-able snapshot for the status line (instruction, sim time, step, objects, episode, ...)."""


def episode_command(name: str) -> str:
    """Normalise an episode command (``save`` or its service name ``save_episode``) to its key; else ValueError."""
    if name in EPISODE_COMMANDS:
        return name
    for key, service in EPISODE_COMMANDS.items():
        if name == service:
            return key
    raise ValueError(f"unknown episode command {name!r}; known: {list(EPISODE_COMMANDS)}")


class EventLog:
    """A bounded, thread-safe log of events with increasing ``seq`` numbers (the page polls ``after=seq``)."""

    def __init__(self, keep: int = 500) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=keep)
        self._seq = 0
        self._cond = threading.Condition()

    @property
    def last_seq(self) -> int:
        with self._cond:
            return self._seq

    def add(self, event: dict[str, Any]) -> dict[str, Any]:
        """Log ``event`` (a copy gets ``seq`` and ``time``) and return the logged copy."""
        with self._cond:
            self._seq += 1
            logged = {**event, "seq": self._seq, "time": time.time()}
            self._events.append(logged)
            self._cond.notify_all()
            return logged

    def since(self, after: int = 0) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self._events if e["seq"] > after]

    def wait_after(self, after: int, timeout: float,
                   match: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any] | None:
        """The first event with ``seq > after`` (and ``match(event)``), waiting up to ``timeout`` s (else None)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [e for e in self._events if e["seq"] > after and (match is None or match(e))]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)


def error_event(message: str, request: Any = None) -> dict[str, Any]:
    """An event for a refused perturbation; ``request`` may be a dict, a Perturbation or a JSON string (a long
    one is quoted clipped: :func:`~robot_irl.core.perturbation.request_echo`)."""
    event: dict[str, Any] = {"error": clip(str(message), 2 * ECHO_LIMIT)}
    if request is not None:
        event["request"] = request_echo(request)
    return event


def answers(event: dict[str, Any], request: Perturbation) -> bool:
    """Whether ``event`` (a record or an error event) is about ``request``'s kind and target."""
    about = event.get("request") if "error" in event else event
    if not isinstance(about, dict):  # an error whose request could not be read: it may be ours
        return True
    return about.get("kind") == request.kind.value and about.get("target") == request.target


def yaw_of(quat: Sequence[float]) -> float:
    """Rotation about the world z axis of a (w, x, y, z) quaternion, in radians."""
    w, x, y, z = (float(v) for v in quat)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def object_poses(names: Sequence[str], values: Sequence[float]) -> dict[str, dict[str, Any]]:
    """Objects in an environment-state vector named ``<obj>.x .. <obj>.qz``: ``{obj: {position, yaw}}``."""
    index = {n: i for i, n in enumerate(names)}
    poses = {}
    for name in names:
        obj, _, key = name.rpartition(".")
        if key != "x" or obj in poses or not all(f"{obj}.{k}" in index for k in _POSE_KEYS):
            continue
        pose = [float(values[index[f"{obj}.{k}"]]) for k in _POSE_KEYS]
        poses[obj] = {"position": pose[:3], "yaw": yaw_of(pose[3:])}
    return poses


def jsonable(value: Any) -> Any:
    """Numpy scalars/arrays and nested containers -> plain JSON types; non-finite floats -> None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def camera_names(driver: RobotDriver) -> list[str]:
    """The driver's cameras: its ``observation.images.<name>`` features (no connection needed)."""
    prefix = "observation.images."
    return [k[len(prefix):] for k, f in driver.observation_features.items() if k.startswith(prefix) and f.is_image]


EpisodeCallback = Callable[[str], "dict[str, Any] | bool | None"]


class DriverBackend:
    """A :class:`ConsoleBackend` around a connected driver in this process.

    ``lock`` is held around every call into the driver; pass the lock your control loop holds while it steps.
    The loop hands each observation to :meth:`feed`: camera frames and object poses come from there (a driver
    without cameras is also read directly while nothing was fed; one with cameras is not: see the module doc).

    Episode commands go to ``on_episode(command)`` when given (it returns ``{"ok", "message"}``, a bool or
    ``None`` for success, or raises); every command and its outcome is appended to :attr:`episode_log`.
    """

    def __init__(self, driver: RobotDriver, lock: threading.Lock | threading.RLock | None = None,
                 on_episode: EpisodeCallback | None = None, keep_events: int = 500) -> None:
        if not driver.is_connected:
            raise ValueError(f"DriverBackend needs a connected driver; call {driver.name}.connect() first")
        self.driver = driver
        self.lock = lock if lock is not None else threading.RLock()
        self.on_episode = on_episode
        self.log = EventLog(keep_events)
        self.episode_log: list[dict[str, Any]] = []
        self._cameras = camera_names(driver)
        self._fed: dict[str, np.ndarray] | None = None
        env = driver.observation_features.get("observation.environment_state")
        self._env_names = list(env.names) if env is not None and env.names else []

    # -- perturbations --------------------------------------------------------------------------------------
    def targets(self) -> dict[str, list[str]]:
        with self.lock:
            targets = self.driver.perturbation_targets()
        return {kind.value: list(names) for kind, names in targets.items()}

    def perturb(self, request: Perturbation) -> dict[str, Any]:
        try:
            with self.lock:
                record = self.driver.perturb(request)
        except PerturbationError as e:
            return self.log.add(error_event(e, request))
        except Exception as e:  # a driver failure is reported on the page, not raised into the web server
            return self.log.add(error_event(f"{type(e).__name__}: {e}", request))
        return self.log.add(jsonable(record.to_dict()))

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        return self.log.since(after)

    # -- cameras --------------------------------------------------------------------------------------------
    def feed(self, observation: dict[str, np.ndarray]) -> None:
        """Hand the latest observation of the control loop to the camera view."""
        self._fed = dict(observation)

    def cameras(self) -> list[str]:
        return list(self._cameras)

    def latest_frame(self, camera: str) -> np.ndarray | None:
        return self._observation().get(f"observation.images.{camera}") if camera in self._cameras else None

    def _observation(self) -> dict[str, np.ndarray]:
        """The last fed observation; without one, a fresh one only if reading it renders nothing."""
        if self._fed is not None:
            return self._fed
        if self._cameras:
            return {}
        with self.lock:
            return self.driver.get_observation()

    # -- episode and status ---------------------------------------------------------------------------------
    def instruction(self) -> str:
        return self.driver.instruction

    def episode(self, command: str) -> dict[str, Any]:
        command = episode_command(command)
        if self.on_episode is None:
            result: dict[str, Any] = {"ok": True, "message": f"{command}: noted (no recorder attached)"}
        else:
            try:
                answer = self.on_episode(command)
            except Exception as e:
                answer = {"ok": False, "message": f"{command} failed: {type(e).__name__}: {e}"}
            if isinstance(answer, dict):
                result = {"ok": bool(answer.get("ok", True)), "message": str(answer.get("message", command))}
            else:
                result = {"ok": answer is None or bool(answer), "message": command}
        self.episode_log.append({"command": command, **result, "time": time.time()})
        return result

    def status(self) -> dict[str, Any]:
        d = self.driver
        env = self._observation().get("observation.environment_state") if self._env_names else None
        with self.lock:
            status = {"source": "driver", "driver": d.name, "instruction": d.instruction, "sim_time": d.sim_time,
                      "step": d.step_count, "task": d.task_status(), "cameras": self._cameras,
                      "objects": object_poses(self._env_names, env) if env is not None else {},
                      "episode": self.episode_log[-1] if self.episode_log else None,
                      "events": self.log.last_seq}
        return jsonable(status)


class DriverLoop:
    """A driver owned by one thread: connected there, stepped at its control rate, disconnected there.

    Each tick sends ``act(observation)`` (default: the driver's hold action) while holding :attr:`lock`, reads the
    new observation and passes it to every callable in :attr:`observers`. The driver is connected by the thread
    itself unless it already is (then it must render nothing, or have been connected in no other thread that
    rendered). ``rate`` defaults to the driver's ``fps``.
    """

    def __init__(self, driver: RobotDriver, act: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None,
                 rate: float | None = None, lock: threading.RLock | None = None) -> None:
        self.driver = driver
        self.act = act
        self.rate = float(rate or driver.fps)
        if self.rate <= 0:
            raise ValueError(f"DriverLoop.rate must be > 0, got {self.rate}")
        self.lock = lock if lock is not None else threading.RLock()
        self.observers: list[Callable[[dict[str, np.ndarray]], None]] = []
        self.ticks = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 120.0) -> DriverLoop:
        """Start the thread; return once the driver is connected (raises what connecting raised)."""
        self._thread = threading.Thread(target=self._run, name=f"driver-loop-{self.driver.name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise TimeoutError(f"{self.driver.name} did not connect within {timeout:g} s")
        if self.error is not None:
            raise RuntimeError(f"{self.driver.name} failed to start: {self.error}") from self.error
        return self

    def _run(self) -> None:
        owns = not self.driver.is_connected
        try:
            if owns:
                self.driver.connect()
        except BaseException as e:
            self.error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop()
        except BaseException as e:  # reported through .error; the web page keeps answering
            self.error = e
        finally:
            if owns:
                with self.lock:
                    self.driver.disconnect()

    def _loop(self) -> None:
        period = 1.0 / self.rate
        with self.lock:
            obs = self.driver.get_observation()
        self._notify(obs)
        next_tick = time.monotonic()
        while not self._stop.is_set():
            with self.lock:
                action = self.act(obs) if self.act is not None else self.driver.hold_action()
                self.driver.send_action(action)
                obs = self.driver.get_observation()
            self.ticks += 1
            self._notify(obs)
            next_tick += period
            self._stop.wait(max(0.0, next_tick - time.monotonic()))

    def _notify(self, obs: dict[str, np.ndarray]) -> None:
        for observer in list(self.observers):
            observer(obs)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop stepping, disconnect (if this loop connected the driver) and join the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> DriverLoop:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
