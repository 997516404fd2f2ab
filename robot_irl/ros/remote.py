"""A driver node reached over ROS 2, behind the same :class:`RobotDriver` contract.

``RemoteDriver`` lets every client of the contract (the rollout runner, recorders, policies) drive a running
``driver_node``, in simulation or on hardware, exactly as it would drive a driver in its own process. It knows its
features without connecting (it builds, but never connects, the node's driver class from the same config).

Lock-step: each command carries a sequence number in its layout label (``seq=N``); the node echoes the label of the
command a tick used on ``action_sent`` and on the tick's ``observation`` bundle, so ``send_action`` returns exactly
the action the robot received for *this* command, and the next observation is the one after it.
The node's safety layer clamps; this side clamps too (the same limits), so a NaN never leaves the process.
"""
from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from robot_irl.core.contracts import RobotDriver
from robot_irl.core.features import Feature
from robot_irl.core.perturbation import Perturbation, PerturbationError
from robot_irl.core.safety import SafetyLimits
from robot_irl.ros import conversions as conv
from robot_irl.ros.driver_node import LATCHED


class RemoteDriverError(RuntimeError):
    """The driver node did not answer in time, or answered with something unexpected."""


class RemoteDriver(RobotDriver):
    """``RemoteDriver(driver="sim", backend="robosuite", config={...}, namespace="/robot_irl")``."""

    name = "remote"

    def __init__(self, driver: str = "sim", backend: str | None = None, config: dict[str, Any] | None = None,
                 namespace: str = "/robot_irl", timeout_s: float = 5.0) -> None:
        from robot_irl.drivers import make_driver

        self._local = make_driver(driver, config or {}, backend=backend)  # features only: never connected
        super().__init__(self._local.config)
        self.name = f"remote:{self._local.name}"
        self.namespace = "/" + namespace.strip("/")
        self.timeout_s = float(timeout_s)
        self._cv = threading.Condition()
        self._bundle: dict[str, Any] | None = None
        self._sent: dict[str, np.ndarray] = {}
        self._images: dict[str, np.ndarray] = {}
        self._events: list[dict] = []
        self._seq = 0
        self._status: dict[str, float | bool] = {}
        self._node: Node | None = None
        self._executor: SingleThreadedExecutor | None = None
        self._thread: threading.Thread | None = None
        self._owns_context = False

    # -- description: the node's driver's, known without connecting -----------------------------------------
    @property
    def observation_features(self) -> dict[str, Feature]:
        return self._local.observation_features

    @property
    def action_features(self) -> dict[str, Feature]:
        return self._local.action_features

    @property
    def safety_limits(self) -> SafetyLimits:
        return self._local.safety_limits

    @property
    def fps(self) -> float:
        return self._local.fps

    # -- lifecycle ------------------------------------------------------------------------------------------
    def _connect(self) -> None:
        if not rclpy.ok():
            rclpy.init()
            self._owns_context = True
        node = Node(f"remote_driver_{id(self) & 0xFFFF:x}")
        ns = self.namespace
        self._cmd_pub = node.create_publisher(Float64MultiArray, f"{ns}/commands", 10)
        self._perturb_pub = node.create_publisher(String, f"{ns}/perturb", 10)
        node.create_subscription(Float64MultiArray, f"{ns}/observation", self._on_bundle, 10)
        node.create_subscription(Float64MultiArray, f"{ns}/action_sent", self._on_sent, 10)
        node.create_subscription(String, f"{ns}/instruction", self._on_instruction, LATCHED)
        node.create_subscription(String, f"{ns}/perturbation_events", self._on_event, 10)
        for key, feat in self.observation_features.items():
            if feat.is_image:
                cam = key.removeprefix("observation.images.")
                node.create_subscription(Image, f"{ns}/camera/{cam}/image_raw",
                                         lambda m, k=key: self._on_image(k, m), 5)
        self._reset_client = node.create_client(Trigger, f"{ns}/reset")
        self._node = node
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(node)
        self._thread = threading.Thread(target=self._spin, name="remote-driver-spin", daemon=True)
        self._thread.start()
        try:
            self._wait(lambda: self._bundle is not None and self._has_images(), "the first observation")
        except RemoteDriverError:
            self._disconnect()
            raise

    def _spin(self) -> None:
        while self._executor is not None and rclpy.ok():
            self._executor.spin_once(timeout_sec=0.05)

    def _disconnect(self) -> None:
        executor, self._executor = self._executor, None
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if executor is not None:
            executor.shutdown()
        if self._node is not None:
            self._node.destroy_node()
            self._node = None
        if self._owns_context and rclpy.ok():
            rclpy.shutdown()

    # -- callbacks (executor thread) ------------------------------------------------------------------------
    def _on_bundle(self, msg: Float64MultiArray) -> None:
        bundle = conv.bundle_from_msg(msg)
        with self._cv:
            self._bundle = bundle
            self._cv.notify_all()

    def _on_sent(self, msg: Float64MultiArray) -> None:
        label = msg.layout.dim[0].label if msg.layout.dim else ""
        with self._cv:
            self._sent[label] = np.asarray(msg.data, dtype=np.float32)
            self._cv.notify_all()

    def _on_image(self, key: str, msg: Image) -> None:
        with self._cv:
            self._images[key] = conv.image_from_msg(msg)

    def _on_instruction(self, msg: String) -> None:
        self._instruction = msg.data

    def _on_event(self, msg: String) -> None:
        import json

        with self._cv:
            self._events.append(json.loads(msg.data))
            self._cv.notify_all()

    def _has_images(self) -> bool:
        return all(k in self._images for k, f in self.observation_features.items() if f.is_image)

    def _wait(self, predicate, what: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        with self._cv:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RemoteDriverError(
                        f"{self.name}: no {what} from {self.namespace} within {self.timeout_s:g} s; "
                        f"is the driver node running (robot-irl up bringup)?")
                self._cv.wait(left)

    # -- the loop ---------------------------------------------------------------------------------------------
    def _get_observation(self) -> dict[str, np.ndarray]:
        with self._cv:
            obs = {k: v.astype(np.float32) for k, v in self._bundle["features"].items()}
            obs.update(self._images)
        return obs

    def _apply_action(self, action: np.ndarray) -> None:
        self._seq += 1
        label = f"seq={self._seq}"
        self._cmd_pub.publish(conv.action_to_msg(action, label=label))
        self._wait(lambda: label in self._sent and self._bundle.get("label") == label, f"tick for command {label}")
        with self._cv:
            self.last_sent = self._sent.pop(label)
            self._sent.clear()
            self._status = dict(self._bundle["status"])

    def send_action(self, action) -> np.ndarray:
        super().send_action(action)
        return self.last_sent  # what the robot received after the node's own safety layer

    def _reset(self, seed: int | None) -> dict[str, np.ndarray]:
        if not self._reset_client.wait_for_service(timeout_sec=self.timeout_s):
            raise RemoteDriverError(f"{self.namespace}/reset service not available")
        with self._cv:
            self._bundle = None
        future = self._reset_client.call_async(Trigger.Request())
        self._wait(lambda: future.done(), "reply from the reset service")
        if not future.result().success:
            raise RemoteDriverError(f"{self.namespace}/reset failed: {future.result().message}")
        self._wait(lambda: self._bundle is not None, "observation after reset")
        self._status = {}
        return self._get_observation()

    def _safety_reference(self) -> np.ndarray:
        with self._cv:
            return self._bundle["reference"].astype(np.float64)

    def task_status(self) -> dict[str, float | bool]:
        return dict(self._status)

    def perturb(self, request: Perturbation) -> Perturbation:
        self._require_connected("perturb")
        with self._cv:
            seen = len(self._events)
        self._perturb_pub.publish(conv.perturbation_to_msg(request))
        self._wait(lambda: len(self._events) > seen, "perturbation event")
        with self._cv:
            event = self._events[seen]
        if "error" in event:
            raise PerturbationError(event["error"])
        return Perturbation.from_dict(event)

    @property
    def sim_time(self) -> float:
        return float(self._bundle["status"].get("sim_time", 0.0)) if self._bundle else 0.0

    @property
    def step_count(self) -> int:
        return int(self._bundle["status"].get("step", 0)) if self._bundle else 0


