"""Tele-operation as a ROS 2 node (console script ``teleop_node``; or ``python -m robot_irl.ros.teleop_node``).

Reads a device (parameter ``device``: ``keyboard`` from this process's terminal; ``joy``, a gamepad read in this
process through evdev, or ``sensor_msgs/Joy`` on ``/joy`` from a ROS joystick driver when none is found here
(``joy_source``); ``spacemouse`` through hidapi), maps it with :mod:`robot_irl.teleop.mapping` onto the driver's
action space (built, never connected, from the driver node's ``driver``/``backend``/``driver_config``), and
publishes ``commands`` at the control rate while the deadman is held; released, it publishes nothing and the
driver node's watchdog holds the robot. The current pose comes from the ``observation`` bundle (``eef.*`` entries
of ``observation.state`` for end-effector targets, the bundle's reference for joint targets). No input at all for
``input_timeout_s`` gets one warning saying where the node listens.

Episode keys call the recorder node's services ``recorder/<name>`` (std_srvs/Trigger): save & next
(``save_episode`` then ``start_episode``; the first press, when nothing is being recorded, only starts recording),
re-record (``discard_episode`` then ``start_episode``), success, failure, stop (``recorder/stop`` when a recorder
runs, then this node exits).

Parameters: ``device`` (keyboard), ``driver``/``backend``/``driver_config``, ``rate`` (Hz; 0 = the driver's),
``limits`` (inline YAML/JSON mapping of :class:`~robot_irl.teleop.mapping.TeleopLimits` fields), ``joy_source``
(``auto``: a gamepad found under /dev/input, else ``/joy``; ``evdev``; ``topic``), ``joy_device`` (an
``/dev/input/event*`` path; empty: the first gamepad), ``joy_topic`` (``/joy``), ``hold_s`` (keyboard key hold,
0.5), ``input_timeout_s`` (5).
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
from sensor_msgs.msg import Joy
from std_msgs.msg import Float64MultiArray, String
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
JOY_SOURCES = ("auto", "evdev", "topic")
PARAMETERS = {"device": "keyboard", "driver": "sim", "backend": "", "driver_config": "", "rate": 0.0,
              "limits": "", "joy_source": "auto", "joy_device": "", "joy_topic": "/joy", "hold_s": 0.5,
              "input_timeout_s": 5.0}
#: how the operator gives "save & next" on each device (the first press starts recording)
SAVE_CONTROL = {"keyboard": "n or the right arrow", "joy": "Start", "spacemouse": "the right button"}


def prefixed(name: str, message: str) -> str:
    """``name: message``, unless the message already starts with its service's name."""
    return message if message.startswith(f"{name}:") else f"{name}: {message}"


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
                 context=None, parameter_overrides: dict[str, Any] | None = None,
                 stop_event: threading.Event | None = None, gamepad=None) -> None:
        """``device``: an already built device object (tests); else built from the ``device`` parameter.

        ``gamepad``: an :class:`~robot_irl.teleop.joy.EvdevGamepad` to read (tests); else found per ``joy_source``.
        ``stop_event`` is set when the operator stops the session (``run_node`` then shuts the node down).
        """
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
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self._lock = threading.Lock()
        self._bundle: dict | None = None
        self._recording: bool | None = None  # from recorder/status; None until the recorder reports
        self.published = 0
        self.inputs = 0  # device readings that carried input (joy messages, gamepad changes, key presses)
        self._started = time.monotonic()
        self._input_timeout_s = float(p["input_timeout_s"])
        self._warned_no_input = False
        self.command_pub = self.create_publisher(Float64MultiArray, "commands", 10)
        self.create_subscription(Float64MultiArray, "observation", self._on_bundle, 10)
        self.create_subscription(String, "recorder/status", self._on_status, 10)
        self.clients_ = {name: self.create_client(Trigger, f"recorder/{name}")
                         for names in EVENT_SERVICES.values() for name in names}
        self._joy_input: TeleopInput | None = None
        self._last_joy: TeleopInput | None = None
        self.gamepad = gamepad
        self.joy_source = ""
        if self.device_name == "joy":
            self.joy_source = self._open_joy(str(p["joy_source"]), str(p["joy_device"]), str(p["joy_topic"]))
        if self.device_name == "keyboard" and device is None:
            from robot_irl.teleop.keyboard import HELP

            self.device.start()
            print(HELP, flush=True)
        elif self.device_name == "spacemouse" and device is None:
            self.device.connect()
        rate = float(p["rate"]) or self.driver.fps
        self.timer = self.create_timer(1.0 / rate, self.tick)
        self.get_logger().info(f"{self.device_name} teleop for {self.driver.name} at {rate:g} Hz"
                               + (f", input from {self.joy_source}" if self.joy_source else ""))
        save = SAVE_CONTROL.get(self.device_name)
        if save:
            self.get_logger().info(f"nothing is recorded until you press {save} (save & next): the first press "
                                   f"starts recording episode 0, each later one saves it and starts the next")

    def _open_joy(self, source: str, path: str, topic: str) -> str:
        """Read the gamepad in-process (evdev) or subscribe to ``topic``; returns where input comes from."""
        from robot_irl.teleop.joy import EvdevGamepad, find_gamepad

        if source not in JOY_SOURCES:
            raise TeleopError(f"joy_source: expected one of {list(JOY_SOURCES)}, got {source!r}")
        if source == "topic":
            self.gamepad = None
        elif self.gamepad is None:
            try:
                self.gamepad = EvdevGamepad(find_gamepad(path))
                self.gamepad.start()
            except TeleopError as e:
                if source == "evdev":
                    raise
                self.get_logger().info(f"no gamepad read in-process ({e}); listening on {topic} "
                                       f"(sensor_msgs/Joy, e.g. from `ros2 run joy joy_node`)")
        if self.gamepad is not None:
            return f"{self.gamepad.name} {self.gamepad.path}".strip()
        self.create_subscription(Joy, topic, self._on_joy, 10)
        return f"{topic} (sensor_msgs/Joy)"

    def _on_status(self, msg) -> None:
        try:
            recording = bool(json.loads(msg.data).get("recording"))
        except (json.JSONDecodeError, AttributeError):
            return
        with self._lock:
            self._recording = recording

    def _on_bundle(self, msg) -> None:
        bundle = conv.bundle_from_msg(msg)
        with self._lock:
            self._bundle = bundle

    def _on_joy(self, msg: Joy) -> None:
        self._joy_update(list(msg.axes), list(msg.buttons))

    def _joy_update(self, axes: list[float], buttons: list[int]) -> None:
        inp = self.device.update(axes, buttons)
        with self._lock:  # several Joy messages may arrive per tick: keep the latest state and every event
            events = (self._joy_input.events if self._joy_input is not None else ()) + inp.events
            self._joy_input = TeleopInput(inp.twist, inp.gripper, inp.deadman, events)
            self.inputs += 1

    def _read_device(self) -> TeleopInput | None:
        if self.device_name != "joy":
            inp = self.device.get_input()
            if inp is not None and (inp.deadman or inp.events):
                self.inputs += 1
            return inp
        if self.gamepad is not None:
            state = self.gamepad.read()
            if state is not None:
                self._joy_update(*state)
        with self._lock:
            inp, self._joy_input = self._joy_input, None
        if inp is not None:
            self._last_joy = TeleopInput(inp.twist, inp.gripper, inp.deadman, ())
            return inp
        return self._last_joy  # no new Joy message this tick: keep the last motion (events are sent once)

    def _check_input(self) -> None:
        """One warning when the device gave nothing for ``input_timeout_s``: the operator learns where we listen."""
        if self._warned_no_input or self.inputs or time.monotonic() - self._started < self._input_timeout_s:
            return
        self._warned_no_input = True
        where = {"joy": f"from {self.joy_source}" + (" (is a joystick driver publishing it?)"
                                                      if self.gamepad is None else ""),
                 "keyboard": "from this terminal", "spacemouse": "from the SpaceMouse"}.get(self.device_name, "")
        self.get_logger().warning(f"no {self.device_name} input {where} in {self._input_timeout_s:g} s; nothing "
                                  f"moves and nothing is recorded until there is (press "
                                  f"{SAVE_CONTROL.get(self.device_name, 'save')} to start recording)")

    def tick(self) -> None:
        inp = self._read_device()
        self._check_input()
        if inp is None:
            return
        for event in inp.events:
            self.get_logger().info(f"episode key: {event}")
            self._on_event(event)
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

    def _on_event(self, event: str) -> None:
        names = list(EVENT_SERVICES[event])
        with self._lock:
            recording = self._recording
        if event == "save" and recording is False:
            names.remove("save_episode")  # nothing is being recorded yet: this press starts recording
        if event == "stop":
            if not self.clients_["stop"].service_is_ready():
                self.get_logger().info("stop: no recorder is running; stopping the teleop node")
                self.stop_event.set()
                return
            self._call_chain(names, then=self.stop_event.set)
            return
        self._call_chain(names)

    def _call_chain(self, names: list[str], then=None) -> None:
        """Call the recorder services in order (each after the previous one answered), then ``then()``."""
        if not names:
            if then is not None:
                then()
            return
        name, rest = names[0], names[1:]
        client = self.clients_[name]
        if not client.service_is_ready():
            self.get_logger().error(f"recorder/{name} is not available (is recorder_node running?)")
            if then is not None:
                then()
            return
        future = client.call_async(Trigger.Request())

        def done(f, name=name) -> None:
            result = f.result()
            if result.success:
                self.get_logger().info(f"recorder/{prefixed(name, result.message)}")
            else:  # rclpy refuses two severities from one call site
                self.get_logger().warning(f"recorder/{prefixed(name, result.message)}")
            self._call_chain(rest, then)
        future.add_done_callback(done)

    def close(self) -> None:
        try:
            self.timer.cancel()
            if self.gamepad is not None:
                self.gamepad.stop()
            stop = getattr(self.device, "stop", None) or getattr(self.device, "disconnect", None)
            if stop is not None:
                stop()
        finally:
            self.destroy_node()


def main(argv: list[str] | None = None) -> int:
    """Console script: ``teleop_node --ros-args -p device:=keyboard -p driver:=sim -p backend:=robosuite``."""
    stop = threading.Event()  # set by the operator's stop key (q, Esc, Guide), as by SIGINT
    return run_node(lambda: TeleopNode(stop_event=stop), "teleop_node", argv, stop=stop)


if __name__ == "__main__":
    sys.exit(main())
