"""A small client of a driver node, for tests, benchmarks and scripts.

:class:`RobotProbe` publishes ``commands``/``perturb``, records ``joint_states``, ``action_sent``,
``perturbation_events`` and ``instruction`` with their arrival times, and calls the Trigger services.
:class:`BackgroundSpinner` spins nodes in a daemon thread so the caller can block on :meth:`RobotProbe.wait_for`.
:func:`watchdog_trial` measures how fast the driver node's watchdog stops a robot whose commands stop.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
import rclpy.signals
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from robot_irl.ros import conversions as conv
from robot_irl.ros.driver_node import DEFAULT_NAMESPACE, LATCHED


class BackgroundSpinner:
    """Spin some nodes in a daemon thread until :meth:`stop` (also a context manager)."""

    def __init__(self, *nodes: Node, context=None) -> None:
        self.executor = SingleThreadedExecutor(context=context)
        for node in nodes:
            self.executor.add_node(node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ros-spinner", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and self.executor.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # the context was shut down under us
                if self._stop.is_set() or not self.executor.context.ok():
                    return
                raise

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.executor.shutdown(timeout_sec=1.0)

    def __enter__(self) -> BackgroundSpinner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RobotProbe(Node):
    """Talks to the driver node in ``namespace``; messages are kept as ``(arrival monotonic time, msg)``."""

    def __init__(self, namespace: str = DEFAULT_NAMESPACE, node_name: str = "robot_irl_probe", context=None,
                 keep: int = 10_000) -> None:
        super().__init__(node_name, namespace=namespace, context=context, start_parameter_services=False)
        self._cond = threading.Condition()
        self._keep = keep
        self.received: dict[str, list[tuple[float, Any]]] = {
            "joint_states": [], "action_sent": [], "perturbation_events": [], "instruction": []}
        self.create_subscription(JointState, "joint_states", self._recorder("joint_states"), 10)
        self.create_subscription(Float64MultiArray, "action_sent", self._recorder("action_sent"), 10)
        self.create_subscription(String, "perturbation_events", self._recorder("perturbation_events"), 10)
        self.create_subscription(String, "instruction", self._recorder("instruction"), LATCHED)
        self.command_pub = self.create_publisher(Float64MultiArray, "commands", 10)
        self.perturb_pub = self.create_publisher(String, "perturb", 10)
        self.trigger_clients = {name: self.create_client(Trigger, name) for name in ("reset", "arm", "disarm")}

    def _recorder(self, topic: str) -> Callable[[Any], None]:
        def record(msg: Any) -> None:
            with self._cond:
                history = self.received[topic]
                history.append((time.monotonic(), msg))
                if len(history) > self._keep:
                    del history[: len(history) - self._keep]
                self._cond.notify_all()
        return record

    # -- reading ------------------------------------------------------------------------------------------
    def latest(self, topic: str) -> Any | None:
        with self._cond:
            history = self.received[topic]
            return history[-1][1] if history else None

    def history(self, topic: str) -> list[tuple[float, Any]]:
        """A copy of what arrived on ``topic``: ``(arrival monotonic time, msg)`` pairs."""
        with self._cond:
            return list(self.received[topic])

    def count(self, topic: str) -> int:
        with self._cond:
            return len(self.received[topic])

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until ``predicate()`` (evaluated under the lock at each arrival) holds, or ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
            return True

    def wait_for_message(self, topic: str, after: int = 0, timeout: float = 5.0) -> Any | None:
        """The first message on ``topic`` beyond the first ``after`` ones (None on timeout)."""
        ok = self.wait_for(lambda: len(self.received[topic]) > after, timeout)
        return self.received[topic][after][1] if ok else None

    def wait_for_driver(self, timeout: float = 10.0) -> bool:
        """Until the driver node is discovered: a joint state arrives and the services answer."""
        if not self.wait_for(lambda: bool(self.received["joint_states"]), timeout):
            return False
        return all(c.wait_for_service(timeout_sec=timeout) for c in self.trigger_clients.values())

    # -- writing ------------------------------------------------------------------------------------------
    def send_command(self, values) -> None:
        self.command_pub.publish(conv.action_to_msg(values))

    def send_perturbation(self, payload) -> None:
        """Publish a Perturbation (or a raw JSON string, to test malformed payloads)."""
        msg = String(data=payload) if isinstance(payload, str) else conv.perturbation_to_msg(payload)
        self.perturb_pub.publish(msg)

    def call(self, service: str, timeout: float = 5.0) -> Trigger.Response:
        """Call ``reset``/``arm``/``disarm`` (an executor must be spinning this node, e.g. BackgroundSpinner)."""
        client = self.trigger_clients[service]
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {self.get_namespace().rstrip('/')}/{service} not available in {timeout}s")
        future = client.call_async(Trigger.Request())
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout):
            raise TimeoutError(f"service {service} did not answer in {timeout}s")
        return future.result()


@dataclass(frozen=True)
class WatchdogTrial:
    """One dead-operator trial: ``latency_ms`` from the last command's publication to the arrival of the first
    ``action_sent`` that holds; ``moved`` = the largest joint displacement between the joint state in force when
    the last command went out and the held position (the hold action is the measured position)."""

    latency_ms: float
    moved: float


def watchdog_trial(probe: RobotProbe, target, period_s: float, commands: int = 8,
                   timeout: float = 5.0) -> WatchdogTrial:
    """Stream ``target`` (far from the robot, so it keeps moving) every ``period_s``, then stop as a dead
    tele-operator would, and measure the stop. The driver node must be armed and spinning."""
    for _ in range(commands):
        probe.send_command(target)
        time.sleep(period_s)
    before = np.asarray(probe.history("joint_states")[-1][1].position, dtype=np.float64)
    start = probe.count("action_sent")
    probe.send_command(target)
    t_last = time.monotonic()

    def first_hold() -> tuple[float, Any] | None:
        return next(((t, m) for t, m in probe.received["action_sent"][start:] if conv.label_of(m) == "hold"), None)

    if not probe.wait_for(lambda: first_hold() is not None, timeout):
        raise TimeoutError(f"no hold on action_sent within {timeout} s of the last command")
    t_hold, msg = first_hold()
    held = np.asarray(msg.data, dtype=np.float64)
    return WatchdogTrial((t_hold - t_last) * 1000.0, float(np.max(np.abs(held - before))))


def ensure_init(context=None) -> None:
    """Initialise rclpy (without taking over signals) unless it already is."""
    if context is None and rclpy.ok():
        return
    if context is not None and context.ok():
        return
    rclpy.init(context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
