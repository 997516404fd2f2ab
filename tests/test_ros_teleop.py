"""The teleop node: a gamepad read in-process (fake evdev events), the no-input warning, the first "save & next",
and the keyboard's q / Esc stopping the node (in-process, and as a real process in a terminal)."""
from __future__ import annotations

import itertools
import os
import select
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
import rclpy
import rclpy.signals
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray
from test_teleop import FakeEvdevPad, ev

from robot_irl.ros import conversions as conv
from robot_irl.ros.teleop_node import TeleopNode, prefixed
from robot_irl.teleop.joy import EV_ABS, EV_KEY, EvdevGamepad
from robot_irl.teleop.keyboard import KeyboardTeleop

pytestmark = pytest.mark.ros
_ids = itertools.count()
MOCK = {"driver": "sim", "backend": "mock", "driver_config": '{"joints": 3, "control_freq": 50}'}


@pytest.fixture(scope="module")
def context():
    ctx = Context()
    rclpy.init(args=[], context=ctx, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    yield ctx
    ctx.shutdown()


def _namespace() -> str:
    return f"teleop_test_{os.getpid()}_{next(_ids)}"


def spin(executor, seconds: float, until=None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until and until()):
        executor.spin_once(timeout_sec=0.02)


class FakeDriver(Node):
    """Publishes the mock arm's observation bundle and collects the commands the teleop node sends."""

    def __init__(self, context, namespace: str) -> None:
        super().__init__("fake_driver", namespace=namespace, context=context, start_parameter_services=False)
        self.commands: list[np.ndarray] = []
        self.pub = self.create_publisher(Float64MultiArray, "observation", 10)
        self.create_subscription(Float64MultiArray, "commands", lambda m: self.commands.append(np.array(m.data)), 10)
        self.create_timer(0.02, lambda: self.pub.publish(conv.bundle_to_msg(
            "teleop", {"observation.state": np.zeros(3)}, np.zeros(3), {"step": 0.0})))


def test_a_gamepad_read_in_process_drives_the_robot(context):
    ns = _namespace()
    pad = EvdevGamepad(FakeEvdevPad())
    node = TeleopNode(context=context, namespace=ns, gamepad=pad, parameter_overrides={**MOCK, "device": "joy"})
    driver = FakeDriver(context, ns)
    executor = SingleThreadedExecutor(context=context)
    for n in (node, driver):
        executor.add_node(n)
    try:
        assert node.joy_source == "Fake Xbox Pad /dev/input/event7"
        spin(executor, 0.3)
        assert node.published == 0  # deadman released: nothing commanded
        for event in (ev(EV_KEY, 310, 1), ev(EV_ABS, 1, -32768)):  # hold LB, left stick fully up
            pad.feed(event)
        spin(executor, 3.0, until=lambda: len(driver.commands) >= 10)
    finally:
        executor.shutdown()
        node.close()
        driver.destroy_node()
    assert len(driver.commands) >= 10 and node.inputs >= 1
    assert driver.commands[-1][0] > 0 and np.allclose(driver.commands[-1][1:], 0)  # joint 0 moves, nothing else


def test_no_joystick_input_is_warned_once_with_where_the_node_listens(context):
    ns = _namespace()
    node = TeleopNode(context=context, namespace=ns, parameter_overrides={
        **MOCK, "device": "joy", "joy_source": "topic", "input_timeout_s": 0.3})
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        assert node.joy_source == "/joy (sensor_msgs/Joy)"
        assert not node._warned_no_input
        spin(executor, 3.0, until=lambda: node._warned_no_input)
    finally:
        executor.shutdown()
        node.close()
    assert node._warned_no_input


def test_keyboard_q_stops_the_node_without_a_recorder(context):
    ns = _namespace()
    keys = KeyboardTeleop()
    stop = threading.Event()
    node = TeleopNode(keys, context=context, namespace=ns, stop_event=stop, parameter_overrides=MOCK)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        spin(executor, 0.2)
        assert not stop.is_set()
        keys.feed(b"q")
        spin(executor, 2.0, until=stop.is_set)
    finally:
        executor.shutdown()
        node.close()
    assert stop.is_set()


def test_recorder_messages_are_not_prefixed_twice():
    assert prefixed("save_episode", "save_episode: no episode") == "save_episode: no episode"
    assert prefixed("stop", "stopped: 2 episodes saved") == "stop: stopped: 2 episodes saved"


def test_keyboard_teleop_process_in_a_terminal_exits_on_q():
    """As the README runs it: `python -m robot_irl.ros.teleop_node ... -p device:=keyboard` in a terminal."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "robot_irl.ros.teleop_node", "--ros-args", "-r", f"__ns:=/{_namespace()}",
         "-p", "device:=keyboard", "-p", "driver:=sim", "-p", "backend:=mock"],
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True, close_fds=True)
    os.close(slave)
    output = b""

    def read_for(seconds: float, until: bytes | None = None) -> None:
        nonlocal output
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until in output):
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    output += os.read(master, 4096)
                except OSError:
                    return

    try:
        read_for(60, until=b"keyboard teleop for")
        assert b"keyboard teleop for" in output, output.decode(errors="replace")
        os.write(master, b"q")
        proc.wait(timeout=20)
        read_for(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "stopping the teleop node" in text and "Traceback" not in text, text
