"""The scripted tele-operator as a ROS 2 node (console script ``operator_node``), for hands-free collection.

The ``collect`` graph with ``operator=scripted`` runs this node in place of a human at a teleop device: it plays
:class:`robot_irl.collect.operators.ScriptedOperator` (the one ``robot-irl collect`` runs in process) on the driver
node's topics and drives the recorder's episodes through its services, so the whole ADC graph (driver, recorder,
adversary node or web console) runs without a person, e.g. in sim-only CI.

Each episode: ``reset`` (the driver node's service), ``recorder/start_episode``, then one command per observation
bundle (``commands``: the operator's end-effector target from the bundle's vectors and the instruction in force,
so it reacts to pushes and instruction changes) until success has been held ``hold_after_success`` ticks or
``max_steps`` ticks have passed, then ``recorder/save_episode``. After ``episodes`` episodes (0: until stopped) it
calls ``recorder/stop`` and exits, which ends the graph. The operator's phase (approach, descend, grasp, ...) goes
out on ``operator/phase`` (std_msgs/String) for a scripted adversary's "during the grasp" rules.

Parameters: ``driver``/``backend``/``driver_config`` (the driver node's: the operator needs the robosuite
``ee_target`` action space), ``episodes`` (0), ``max_steps`` (250), ``hold_after_success`` (10), ``seed`` (0:
episode i uses seed + i for the operator's noise), ``noise`` (0.0, m/rad), ``service_timeout`` (30 s).
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from robot_irl.collect.recover import build_driver
from robot_irl.ros import conversions as conv
from robot_irl.ros.driver_node import DEFAULT_NAMESPACE, LATCHED, run_node

PARAMETERS = {"driver": "sim", "backend": "", "driver_config": "", "episodes": 0, "max_steps": 250,
              "hold_after_success": 10, "seed": 0, "noise": 0.0, "service_timeout": 30.0}
PHASE_TOPIC = "operator/phase"
SERVICES = {"reset": "reset", "start": "recorder/start_episode", "save": "recorder/save_episode",
            "stop": "recorder/stop"}


class ScriptedOperatorNode(Node):
    """A state machine on the observation bundles: waiting -> resetting -> starting -> running -> saving -> ..."""

    def __init__(self, *, node_name: str = "operator_node", namespace: str = DEFAULT_NAMESPACE, context=None,
                 parameter_overrides: dict[str, Any] | None = None, stop_event: threading.Event | None = None) -> None:
        from robot_irl.collect.operators import ScriptedOperator

        overrides = [Parameter(k, value=v) for k, v in (parameter_overrides or {}).items()]
        super().__init__(node_name, namespace=namespace, context=context, parameter_overrides=overrides)
        p = {name: self.declare_parameter(name, default).value for name, default in PARAMETERS.items()}
        self.driver = build_driver(p)
        try:
            self.operator = ScriptedOperator.from_driver(self.driver, seed=int(p["seed"]), noise=float(p["noise"]))
        except ValueError as e:
            raise ValueError(f"operator_node: the scripted operator cannot drive {self.driver.name}: {e}") from None
        self.vector_keys = [k for k, f in self.driver.observation_features.items() if not f.is_image]
        self.episodes, self.max_steps = int(p["episodes"]), int(p["max_steps"])
        self.hold_after_success, self.seed = int(p["hold_after_success"]), int(p["seed"])
        self.service_timeout = float(p["service_timeout"])
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self.state = "waiting"
        self.saved = 0
        self.index = 0  # episodes started by this node
        self.instruction = self.driver.instruction
        self._steps = 0
        self._success_step: int | None = None
        self._since = time.monotonic()
        self.command_pub = self.create_publisher(Float64MultiArray, "commands", 10)
        self.phase_pub = self.create_publisher(String, PHASE_TOPIC, 10)
        self.create_subscription(Float64MultiArray, "observation", self._on_bundle, 10)
        self.create_subscription(String, "instruction", self._on_instruction, LATCHED)
        self.clients_ = {key: self.create_client(Trigger, name) for key, name in SERVICES.items()}
        self.get_logger().info(f"scripted operator for {self.driver.name} ({self.driver.instruction!r}): "
                               f"{self.episodes or 'unlimited'} episodes of at most {self.max_steps} steps")

    # -- inputs -----------------------------------------------------------------------------------------------
    def _on_instruction(self, msg: String) -> None:
        self.instruction = msg.data

    def _on_bundle(self, msg: Float64MultiArray) -> None:
        if self.state == "waiting":
            self._try_begin()
        elif self.state == "running":
            self._act(conv.bundle_from_msg(msg))

    # -- episodes -----------------------------------------------------------------------------------------------
    def _try_begin(self) -> None:
        if all(c.service_is_ready() for c in self.clients_.values()):
            self._call("reset", self._on_reset)
        elif time.monotonic() - self._since > self.service_timeout:
            missing = [SERVICES[k] for k, c in self.clients_.items() if not c.service_is_ready()]
            self.get_logger().warning(f"waiting for {missing} (are driver_node and recorder_node running?)",
                                      throttle_duration_sec=10.0)

    def _call(self, key: str, then) -> None:
        self.state = {"reset": "resetting", "start": "starting", "save": "saving", "stop": "stopping"}[key]
        future = self.clients_[key].call_async(Trigger.Request())
        future.add_done_callback(lambda f: then(f.result()))

    def _on_reset(self, result) -> None:
        if not result.success:
            return self._fail(f"reset: {result.message}")
        self.operator.reset(self.seed + self.index)
        self._call("start", self._on_start)

    def _on_start(self, result) -> None:
        if not result.success:
            return self._fail(f"recorder/start_episode: {result.message}")
        self._steps, self._success_step = 0, None
        self.index += 1
        self.state = "running"

    def _act(self, bundle: dict) -> None:
        features = bundle["features"]
        observation = {k: np.asarray(features[k], np.float32) for k in self.vector_keys if k in features}
        self._steps += 1
        if bool(bundle["status"].get("success", 0.0)) and self._success_step is None:
            self._success_step = self._steps
        done = self._steps >= self.max_steps or (
            self._success_step is not None and self._steps - self._success_step >= self.hold_after_success)
        if done:
            self._call("save", self._on_save)
            return
        action = self.operator.act({**observation, "task": self.instruction})
        self.command_pub.publish(conv.action_to_msg(action, label="operator"))
        self.phase_pub.publish(String(data=self.operator.phase))

    def _on_save(self, result) -> None:
        if not result.success:
            return self._fail(f"recorder/save_episode: {result.message}")
        self.saved += 1
        self.get_logger().info(f"{self.saved}/{self.episodes or '-'} saved ({result.message})")
        if self.episodes and self.saved >= self.episodes:
            self._call("stop", self._on_stop)
        else:
            self._call("reset", self._on_reset)

    def _on_stop(self, result) -> None:
        self.state = "done"
        self.get_logger().info(f"done: {self.saved} episodes saved ({result.message}); stopping")
        self.stop_event.set()

    def _fail(self, message: str) -> None:
        self.state = "failed"
        self.get_logger().error(f"{message}; the scripted operator stops")
        self.stop_event.set()

    def close(self) -> None:
        self.destroy_node()


def main(argv: list[str] | None = None) -> int:
    """Console script: ``operator_node --ros-args -p driver:=sim -p backend:=robosuite -p episodes:=5``."""
    stop = threading.Event()
    nodes: list[ScriptedOperatorNode] = []

    def make() -> ScriptedOperatorNode:
        nodes.append(ScriptedOperatorNode(stop_event=stop))
        return nodes[-1]

    code = run_node(make, "operator_node", argv, stop=stop)
    return 1 if code == 0 and nodes and nodes[0].state == "failed" else code


if __name__ == "__main__":
    sys.exit(main())
