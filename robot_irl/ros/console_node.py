"""The adversary console as a ROS 2 node (console script ``console_node``): a web page for the adversary.

The node is a :class:`~robot_irl.console.backend.ConsoleBackend` over ROS and serves
:func:`robot_irl.console.app.create_app` with uvicorn in a thread. Topics and services are relative to its
namespace (``/robot_irl``), as ``driver_node``'s:

=============================== ===================== ==========================================================
name                            type                  use
=============================== ===================== ==========================================================
``perturb`` (out)               std_msgs/String       a Perturbation request as JSON (the page's buttons)
``perturbation_events`` (in)    std_msgs/String       the driver's stamped records / ``{"error"}``: the event log
``camera/<name>/image_raw``     sensor_msgs/Image     the live view (cameras: the driver's image features)
``instruction`` (in, latched)   std_msgs/String       the current instruction
``observation`` (in)            Float64MultiArray     sim time, step, reward/success and object poses
``recorder/status`` (in)        std_msgs/String       the recorder's JSON status, shown on the status line
``recorder/<command>``          std_srvs/Trigger      start_episode, save_episode, discard_episode, mark_success,
                                                      mark_failure (episode buttons)
=============================== ===================== ==========================================================

A perturbation request waits up to ``perturb_timeout`` for the next event on ``perturbation_events`` and answers
with it (requests are serialised, so the next event is the answer).

Parameters: ``host`` (127.0.0.1; the page has no user accounts, only its own page may change state: see
:mod:`robot_irl.console.app`), ``port`` (8765; 0 picks a free port, logged),
``driver``/``backend``/``driver_config`` (as driver_node's: the driver is built to learn its cameras, object names
and perturbation targets; a simulator whose targets need a connection, e.g. robosuite, is connected once and
disconnected; a real robot never is), ``targets`` (JSON ``{kind: [targets]}``, overrides the driver's),
``cameras`` (comma-separated, overrides the driver's), ``instruction_presets`` (``|``-separated),
``perturb_timeout`` (2.0 s), ``service_timeout`` (2.0 s).
"""
from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from robot_irl.console.backend import (
    EPISODE_COMMANDS,
    EventLog,
    answers,
    camera_names,
    episode_command,
    error_event,
    jsonable,
    object_poses,
)
from robot_irl.core.contracts import RobotDriver
from robot_irl.core.perturbation import Perturbation, PerturbationKind
from robot_irl.ros import conversions as conv
from robot_irl.ros.driver_node import DEFAULT_NAMESPACE, LATCHED, build_driver, run_node

PARAMETERS: dict[str, Any] = {"host": "127.0.0.1", "port": 8765, "driver": "sim", "backend": "", "driver_config": "",
                              "targets": "", "cameras": "", "instruction_presets": "", "perturb_timeout": 2.0,
                              "service_timeout": 2.0}
_FRESH_S = 2.0  # the driver counts as seen while its observations are younger than this


def driver_targets(driver: RobotDriver) -> dict[str, list[str]]:
    """Perturbation targets of a driver that is not connected here.

    Drivers list some targets only once connected (robosuite reads them from its model): a simulator whose
    unconnected list holds nothing but ``instruction`` is connected for the look-up and disconnected again.
    Drivers that need arming (real robots) are never connected.
    """
    targets = driver.perturbation_targets()
    if len(targets) <= 1 and not getattr(driver, "requires_arming", False):
        driver.connect()
        try:
            targets = driver.perturbation_targets()
        finally:
            driver.disconnect()
    return {kind.value: list(names) for kind, names in targets.items()}


def parse_targets(text: str) -> dict[str, list[str]]:
    """The ``targets`` parameter: JSON ``{kind: [target, ...]}`` with known kinds."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"console_node parameter targets is not JSON: {e}") from None
    known = [k.value for k in PerturbationKind]
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ValueError(f"console_node parameter targets must map kinds to lists of targets, got {text!r}")
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"console_node parameter targets: unknown kinds {unknown}; known: {known}")
    return {kind: [str(t) for t in names] for kind, names in data.items()}


def event_from_msg(msg: String) -> dict[str, Any]:
    """A ``perturbation_events`` message -> an event dict (record, or ``{"error", "request"}``)."""
    try:
        data = json.loads(msg.data)
    except json.JSONDecodeError:
        return error_event(f"unreadable perturbation event: {msg.data[:200]!r}")
    if not isinstance(data, dict):
        return error_event(f"unreadable perturbation event: {msg.data[:200]!r}")
    if "error" in data:
        request = data.get("request")
        if isinstance(request, str):
            try:
                request = json.loads(request)
            except json.JSONDecodeError:
                pass
        return error_event(data["error"], request)
    return data


class ConsoleNode(Node):
    """The console's ROS side; it also starts (and :meth:`close` stops) the web server."""

    def __init__(self, *, node_name: str = "console_node", namespace: str = DEFAULT_NAMESPACE, context=None,
                 parameter_overrides: dict[str, Any] | None = None, serve: bool = True) -> None:
        overrides = [Parameter(k, value=v) for k, v in (parameter_overrides or {}).items()]
        super().__init__(node_name, namespace=namespace, context=context, parameter_overrides=overrides)
        self.params = {name: self.declare_parameter(name, default).value for name, default in PARAMETERS.items()}
        self.server = None
        try:
            self._describe_driver()
            self._setup_state()
            self._setup_interfaces()
            if serve:
                self._serve()
        except Exception:
            self.close()
            raise

    # -- setup ----------------------------------------------------------------------------------------------
    def _describe_driver(self) -> None:
        p = self.params
        driver = build_driver(p["driver"], p["backend"], p["driver_config"])
        self.driver_name = driver.name
        env = driver.observation_features.get("observation.environment_state")
        self.env_names = list(env.names) if env is not None and env.names else []
        self._cameras = [c.strip() for c in p["cameras"].split(",") if c.strip()] or camera_names(driver)
        self._targets = parse_targets(p["targets"]) if p["targets"].strip() else driver_targets(driver)
        self.presets = [t.strip() for t in p["instruction_presets"].split("|") if t.strip()] or None

    def _setup_state(self) -> None:
        self.log = EventLog()
        self._lock = threading.Lock()
        self._perturb_lock = threading.Lock()
        self._instruction = ""
        self._frames: dict[str, Image] = {}
        self._decoded: dict[str, tuple[Image, np.ndarray]] = {}
        self._observation: dict[str, Any] | None = None
        self._observation_time = 0.0
        self._recorder_status: dict[str, Any] | None = None

    def _setup_interfaces(self) -> None:
        self.perturb_pub = self.create_publisher(String, "perturb", 10)
        self.create_subscription(String, "perturbation_events", lambda m: self.log.add(event_from_msg(m)), 50)
        self.create_subscription(String, "instruction", self._on_instruction, LATCHED)
        self.create_subscription(Float64MultiArray, "observation", self._on_observation, 5)
        self.create_subscription(String, "recorder/status", self._on_recorder_status, LATCHED)
        for camera in self._cameras:
            self.create_subscription(Image, f"camera/{camera}/image_raw",
                                     lambda m, c=camera: self._frames.__setitem__(c, m), 2)
        self.episode_clients = {key: self.create_client(Trigger, f"recorder/{service}")
                                for key, service in EPISODE_COMMANDS.items()}

    def _serve(self) -> None:
        from robot_irl.console.app import ConsoleServer, create_app

        host, port = self.params["host"], int(self.params["port"])
        self.server = ConsoleServer(create_app(self, instruction_presets=self.presets), host, port).start()
        if host not in ("127.0.0.1", "localhost", "::1"):
            self.get_logger().warning(f"the console listens on {host}: anyone who can reach it can perturb the "
                                      "robot and save or discard episodes (it has no authentication)")
        self.get_logger().info(f"adversary console at {self.server.url}")

    # -- callbacks ------------------------------------------------------------------------------------------
    def _on_instruction(self, msg: String) -> None:
        self._instruction = msg.data

    def _on_observation(self, msg: Float64MultiArray) -> None:
        try:
            bundle = conv.bundle_from_msg(msg)
        except conv.ConversionError as e:
            self.get_logger().warning(f"unreadable observation bundle: {e}", throttle_duration_sec=5.0)
            return
        with self._lock:
            self._observation, self._observation_time = bundle, time.monotonic()

    def _on_recorder_status(self, msg: String) -> None:
        try:
            status = json.loads(msg.data)
        except json.JSONDecodeError:
            status = {"last_error": f"unreadable recorder status: {msg.data[:200]!r}"}
        self._recorder_status = status if isinstance(status, dict) else {"status": status}

    # -- ConsoleBackend -------------------------------------------------------------------------------------
    def targets(self) -> dict[str, list[str]]:
        return {kind: list(names) for kind, names in self._targets.items()}

    def perturb(self, request: Perturbation) -> dict[str, Any]:
        topic = f"{self.get_namespace().rstrip('/')}/perturb"
        with self._perturb_lock:
            if self.perturb_pub.get_subscription_count() == 0:
                return self.log.add(error_event(f"no driver listens on {topic} (is driver_node running?)", request))
            after = self.log.last_seq
            self.perturb_pub.publish(conv.perturbation_to_msg(request))
            timeout = float(self.params["perturb_timeout"])
            event = self.log.wait_after(after, timeout, lambda e: answers(e, request))
        if event is None:
            return self.log.add(error_event(f"no perturbation event from the driver within {timeout:g} s", request))
        return event

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        return self.log.since(after)

    def cameras(self) -> list[str]:
        return list(self._cameras)

    def latest_frame(self, camera: str) -> np.ndarray | None:
        msg = self._frames.get(camera)
        if msg is None:
            return None
        cached = self._decoded.get(camera)
        if cached is not None and cached[0] is msg:
            return cached[1]
        frame = conv.image_from_msg(msg)
        self._decoded[camera] = (msg, frame)
        return frame

    def instruction(self) -> str:
        return self._instruction

    def episode(self, command: str) -> dict[str, Any]:
        command = episode_command(command)
        client = self.episode_clients[command]
        timeout = float(self.params["service_timeout"])
        name = f"{self.get_namespace().rstrip('/')}/{client.srv_name}"
        if not client.wait_for_service(timeout_sec=timeout):
            return {"ok": False, "unavailable": True, "message": f"{name} is not available (is recorder_node running?)"}
        future = client.call_async(Trigger.Request())
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout):
            client.remove_pending_request(future)
            return {"ok": False, "unavailable": True, "message": f"{name} did not answer in {timeout:g} s"}
        response = future.result()
        return {"ok": bool(response.success), "message": response.message or command}

    def status(self) -> dict[str, Any]:
        with self._lock:
            bundle, age = self._observation, time.monotonic() - self._observation_time
        status: dict[str, Any] = {"source": "ros", "driver": self.driver_name, "namespace": self.get_namespace(),
                                  "driver_seen": bundle is not None and age < _FRESH_S,
                                  "instruction": self._instruction, "cameras": self._cameras,
                                  "recorder": self._recorder_status, "events": self.log.last_seq, "objects": {}}
        if bundle is not None:
            s = bundle["status"]
            status.update(sim_time=s.get("sim_time"), step=int(s["step"]) if "step" in s else None,
                          task={k: (bool(v) if k == "success" else v) for k, v in s.items()
                                if k not in ("sim_time", "step")})
            env = bundle["features"].get("observation.environment_state")
            if env is not None and len(env) == len(self.env_names):
                status["objects"] = object_poses(self.env_names, env)
        return jsonable(status)

    # -- shutdown -------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the web server and destroy the node."""
        try:
            if self.server is not None:
                self.server.stop()
        finally:
            self.destroy_node()


def main(argv: list[str] | None = None) -> int:
    """Console script: ``console_node --ros-args -p driver:=sim -p backend:=mujoco_arm -p port:=8765``."""
    return run_node(ConsoleNode, "console_node", argv)


if __name__ == "__main__":
    sys.exit(main())
