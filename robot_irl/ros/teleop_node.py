"""Tele-operation as a ROS 2 node (console script ``teleop_node``; or ``python -m robot_irl.ros.teleop_node``).

Reads a device (parameter ``device``: ``keyboard`` from this process's terminal, ``joy`` from ``/joy``
sensor_msgs/Joy, ``spacemouse`` through hidapi), maps it with :mod:`robot_irl.teleop.mapping` onto the driver's
action space (built, never connected, from the driver node's ``driver``/``backend``/``driver_config``), and
publishes ``commands`` at the control rate while the deadman is held; released, it publishes nothing and the
driver node's watchdog holds the robot. The current pose comes from the ``observation`` bundle (``eef.*`` entries
of ``observation.state`` for end-effector targets, the bundle's reference for joint targets).

Episode keys call the recorder node's services ``recorder/<name>`` (std_srvs/Trigger): save & next
(``save_episode`` then ``start_episode``), re-record (``discard_episode`` then ``start_episode``), success,
failure, stop.

Parameters: ``device`` (keyboard), ``driver``/``backend``/``driver_config``, ``rate`` (Hz; 0 = the driver's),
``limits`` (inline YAML/JSON mapping of :class:`~robot_irl.teleop.mapping.TeleopLimits` fields), ``joy_topic``
(``/joy``), ``hold_s`` (keyboard key hold, 0.5).
"""
from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Joy
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from robot_irl.collect.recover import build_driver
from robot_irl.ros import conversions as conv
from robot_irl.ros.driver_node import DEFAULT_NAMESPACE, run_node
from robot_irl.teleop.mapping import (
    EVENT_SERVICES,
    EETargetMapper,
    TeleopError,
    TeleopInput,
    TeleopLimits,
    make_mapper,
    pose_from_state,
)

DEVICES = ("keyboard", "joy", "spacemouse")
PARAMETERS = {"device": "keyboard", "driver": "sim", "backend": "", "driver_config": "", "rate": 0.0,
              "limits": "", "joy_topic": "/joy", "hold_s": 0.5}


def make_device(name: str, hold_s: float = 0.5):
    """The device object for ``name`` (not started)."""
    if name == "keyboard":
        from robot_irl.teleop.keyboard import KeyboardTeleop

        return KeyboardTeleop(hold_s=hold_s)
    if name == "joy":
        from robot_irl.teleop.joy import JoyTeleop

        return JoyTeleop()
    if name == "spacemouse":
        from robot_irl.teleop.spacemouse import SpaceMouseTeleop

        return SpaceMouseTeleop()
    raise TeleopError(f"unknown teleop device {name!r}; devices: {list(DEVICES)}")


class TeleopNode(Node):
    def __init__(self, device=None, *, node_name: str = "teleop_node", namespace: str = DEFAULT_NAMESPACE,
                 context=None, parameter_overrides: dict[str, Any] | None = None) -> None:
        """``device``: an already built device object (tests); else built from the ``device`` parameter."""
        from robot_irl.graphs import load_mapping

        overrides = [Parameter(k, value=v) for k, v in (parameter_overrides or {}).items()]
        super().__init__(node_name, namespace=namespace, context=context, parameter_overrides=overrides)
        p = {name: self.declare_parameter(name, default).value for name, default in PARAMETERS.items()}
        self.driver = build_driver(p)
        self.mapper = make_mapper(self.driver, TeleopLimits.from_dict(load_mapping(p["limits"], "limits"),
                                                                      where="teleop limits"))
        self.state_names = list(self.driver.observation_features["observation.state"].names or ())
        self.device_name = str(p["device"]) if device is None else getattr(device, "name", "custom")
        self.device = device if device is not None else make_device(self.device_name, float(p["hold_s"]))
        self._lock = threading.Lock()
        self._bundle: dict | None = None
        self.published = 0
        self.command_pub = self.create_publisher(Float64MultiArray, "commands", 10)
        self.create_subscription(Float64MultiArray, "observation", self._on_bundle, 10)
        if self.device_name == "joy":
            self.create_subscription(Joy, str(p["joy_topic"]), self._on_joy, 10)
        self.clients_ = {name: self.create_client(Trigger, f"recorder/{name}")
                         for names in EVENT_SERVICES.values() for name in names}
        self._joy_input: TeleopInput | None = None
        self._last_joy: TeleopInput | None = None
        if self.device_name == "keyboard" and device is None:
            from robot_irl.teleop.keyboard import HELP

            self.device.start()
            print(HELP, flush=True)
        elif self.device_name == "spacemouse" and device is None:
            self.device.connect()
        rate = float(p["rate"]) or self.driver.fps
        self.timer = self.create_timer(1.0 / rate, self.tick)
        self.get_logger().info(f"{self.device_name} teleop for {self.driver.name} at {rate:g} Hz")

    def _on_bundle(self, msg) -> None:
        bundle = conv.bundle_from_msg(msg)
        with self._lock:
            self._bundle = bundle

    def _on_joy(self, msg: Joy) -> None:
        inp = self.device.update(list(msg.axes), list(msg.buttons))
        with self._lock:  # several Joy messages may arrive per tick: keep the latest state and every event
            events = (self._joy_input.events if self._joy_input is not None else ()) + inp.events
            self._joy_input = TeleopInput(inp.twist, inp.gripper, inp.deadman, events)

    def _read_device(self) -> TeleopInput | None:
        if self.device_name != "joy":
            return self.device.get_input()
        with self._lock:
            inp, self._joy_input = self._joy_input, None
        if inp is not None:
            self._last_joy = TeleopInput(inp.twist, inp.gripper, inp.deadman, ())
            return inp
        return self._last_joy  # no new Joy message this tick: keep the last motion (events are sent once)

    def tick(self) -> None:
        inp = self._read_device()
        if inp is None:
            return
        for event in inp.events:
            self.get_logger().info(f"episode key: {event}")
            self._call_chain(list(EVENT_SERVICES[event]))
        with self._lock:
            bundle = self._bundle
        if bundle is None:
            return
        try:
            if isinstance(self.mapper, EETargetMapper):
                current = pose_from_state(bundle["features"]["observation.state"], self.state_names)
            else:
                current = bundle["reference"]
            action = self.mapper.step(inp, current)
        except (TeleopError, KeyError) as e:
            self.get_logger().error(f"cannot map the device input: {e}", throttle_duration_sec=2.0)
            return
        if action is not None and np.all(np.isfinite(action)):
            self.command_pub.publish(conv.action_to_msg(action, label="teleop"))
            self.published += 1

    def _call_chain(self, names: list[str]) -> None:
        """Call the recorder services in order (each after the previous one answered)."""
        if not names:
            return
        name, rest = names[0], names[1:]
        client = self.clients_[name]
        if not client.service_is_ready():
            self.get_logger().error(f"recorder/{name} is not available (is recorder_node running?)")
            return
        future = client.call_async(Trigger.Request())

        def done(f, name=name) -> None:
            result = f.result()
            if result.success:
                self.get_logger().info(f"recorder/{name}: {result.message}")
            else:  # rclpy refuses two severities from one call site
                self.get_logger().warning(f"recorder/{name}: {result.message}")
            self._call_chain(rest)
        future.add_done_callback(done)

    def close(self) -> None:
        try:
            self.timer.cancel()
            stop = getattr(self.device, "stop", None) or getattr(self.device, "disconnect", None)
            if stop is not None:
                stop()
        finally:
            self.destroy_node()


def main(argv: list[str] | None = None) -> int:
    """Console script: ``teleop_node --ros-args -p device:=keyboard -p driver:=sim -p backend:=robosuite``."""
    return run_node(TeleopNode, "teleop_node", argv)


if __name__ == "__main__":
    sys.exit(main())
