"""The scripted adversary as a ROS 2 node (console script ``adversary_node``): ADC's perturbations, hands-free.

The ``collect`` graph with ``adversary=scripted`` runs this node beside the driver and recorder nodes. It plays
:class:`robot_irl.collect.adversary.ScriptedAdversary` (the one ``robot-irl collect`` runs in process) on the
driver node's topics: while the recorder records (``recorder/status``), every observation bundle is one adversary
tick, and its requests go out on ``perturb`` (std_msgs/String JSON, as the web console sends them); the driver
node applies them and publishes the stamped records on ``perturbation_events``, which the recorder writes into the
episode's annotations. A new episode (the status's ``episode`` changes) resets the adversary with ``seed + episode``.
The operator's phase comes from ``operator/phase`` when a scripted operator publishes it; without it (a human
operator) the adversary's "during the grasp" rules use the gripper's distance to the object.

Parameters: ``driver``/``backend``/``driver_config`` (the driver node's; a simulator whose perturbation targets
need a connection, e.g. robosuite, is connected once to read them, as the console does), ``preset`` (train |
held_out), ``seed`` (0).
"""
from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Float64MultiArray, String

from robot_irl.collect.recover import build_driver
from robot_irl.core.perturbation import PerturbationKind
from robot_irl.ros import conversions as conv
from robot_irl.ros.driver_node import DEFAULT_NAMESPACE, LATCHED, run_node
from robot_irl.ros.operator_node import PHASE_TOPIC

PARAMETERS = {"driver": "sim", "backend": "", "driver_config": "", "preset": "train", "seed": 0}


class SceneView:
    """What :class:`ScriptedAdversary` reads of a driver, for one that runs in another process: its features and
    config (from the unconnected driver), its perturbation targets (read once) and the instruction in force."""

    def __init__(self, driver, targets: dict[str, list[str]]) -> None:
        self.observation_features = driver.observation_features
        self.config = driver.config
        self.instruction = driver.instruction
        self._targets = {PerturbationKind(kind): list(names) for kind, names in targets.items()}

    def perturbation_targets(self) -> dict[PerturbationKind, list[str]]:
        return {kind: list(names) for kind, names in self._targets.items()}


class ScriptedAdversaryNode(Node):
    def __init__(self, *, node_name: str = "adversary_node", namespace: str = DEFAULT_NAMESPACE, context=None,
                 parameter_overrides: dict[str, Any] | None = None,
                 targets: dict[str, list[str]] | None = None) -> None:
        """``targets``: the driver's perturbation targets (tests); else read from the driver (see the module)."""
        from robot_irl.collect.adversary import ScriptedAdversary
        from robot_irl.ros.console_node import driver_targets

        overrides = [Parameter(k, value=v) for k, v in (parameter_overrides or {}).items()]
        super().__init__(node_name, namespace=namespace, context=context, parameter_overrides=overrides)
        p = {name: self.declare_parameter(name, default).value for name, default in PARAMETERS.items()}
        driver = build_driver(p)
        self.scene = SceneView(driver, targets if targets is not None else driver_targets(driver))
        self.vector_keys = [k for k, f in driver.observation_features.items() if not f.is_image]
        self.seed = int(p["seed"])
        self.adversary = ScriptedAdversary(str(p["preset"]), seed=self.seed)
        self.recording = False
        self.episode: int | None = None
        self.phase = ""
        self.requests = 0
        self.perturb_pub = self.create_publisher(String, "perturb", 10)
        self.create_subscription(Float64MultiArray, "observation", self._on_bundle, 10)
        self.create_subscription(String, "instruction", self._on_instruction, LATCHED)
        self.create_subscription(String, "recorder/status", self._on_status, 10)
        self.create_subscription(String, PHASE_TOPIC, self._on_phase, 10)
        kinds = sorted(k.value for k in self.scene.perturbation_targets())
        self.get_logger().info(f"scripted adversary ({p['preset']} preset) for {driver.name}: {', '.join(kinds)}")

    def _on_instruction(self, msg: String) -> None:
        self.scene.instruction = msg.data

    def _on_phase(self, msg: String) -> None:
        self.phase = msg.data

    def _on_status(self, msg: String) -> None:
        try:
            status = json.loads(msg.data)
        except json.JSONDecodeError:
            return
        self.recording = bool(status.get("recording"))
        episode = status.get("episode")
        if self.recording and episode != self.episode:
            self.episode = episode
            self.adversary.reset(self.seed + int(episode or 0))
            self.phase = ""

    def _on_bundle(self, msg: Float64MultiArray) -> None:
        if not self.recording:
            return
        features = conv.bundle_from_msg(msg)["features"]
        observation = {k: np.asarray(features[k], np.float64) for k in self.vector_keys if k in features}
        for request in self.adversary.step(observation, self.scene, self.phase):
            self.perturb_pub.publish(conv.perturbation_to_msg(request))
            self.requests += 1
            self.get_logger().info(f"episode {self.episode}: {request.kind.value} {request.target}")

    def close(self) -> None:
        self.destroy_node()


def main(argv: list[str] | None = None) -> int:
    """Console script: ``adversary_node --ros-args -p driver:=sim -p backend:=robosuite -p preset:=train``."""
    return run_node(ScriptedAdversaryNode, "adversary_node", argv)


if __name__ == "__main__":
    sys.exit(main())
