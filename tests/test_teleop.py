"""Teleop devices (keyboard bytes, Joy lists, SpaceMouse HID reports) and the mapping onto actions."""
from __future__ import annotations

import os
import sys
import types

import numpy as np
import pytest

from robot_irl.drivers import make_driver
from robot_irl.drivers.robosuite_arm import rotvec_to_quat
from robot_irl.teleop.joy import JoyMapping, JoyTeleop
from robot_irl.teleop.keyboard import KeyboardTeleop, parse_keys
from robot_irl.teleop.mapping import (
    EETargetMapper,
    JointTargetMapper,
    TeleopError,
    TeleopInput,
    TeleopLimits,
    make_mapper,
    pose_from_state,
)
from robot_irl.teleop.spacemouse import FULL_SCALE, SpaceMouseTeleop, find_device, parse_report

pytestmark = pytest.mark.unit
DOWN_QUAT = (0.0, 1.0, 0.0, 0.0)  # gripper pointing down: a rotation of pi about x


# -- keyboard ---------------------------------------------------------------------------------------------------

def test_parse_keys_handles_letters_arrows_and_a_lone_escape():
    assert parse_keys(b"wS \x1b[C\x1b[D\x1bOA") == ["w", "s", " ", "right", "left", "up"]
    assert parse_keys(b"\x1b") == ["esc"] and parse_keys(b"q\x03") == ["q", "\x03"]


def test_keyboard_motion_is_held_for_hold_s_after_the_last_repeat():
    kb = KeyboardTeleop(hold_s=0.5)
    assert not kb.get_input(now=0.0).deadman
    kb.feed(b"w", now=1.0)
    kb.feed(b"u", now=1.1)
    inp = kb.get_input(now=1.2)
    assert inp.deadman and inp.twist.tolist() == [1, 0, 0, 0, 0, 1]
    kb.feed(b"w", now=1.5)  # auto-repeat keeps w alive; u expires
    inp = kb.get_input(now=1.7)
    assert inp.twist.tolist() == [1, 0, 0, 0, 0, 0]
    assert not kb.get_input(now=2.1).deadman  # released: no command, the driver's watchdog holds


def test_keyboard_gripper_toggle_and_episode_keys():
    kb = KeyboardTeleop(hold_s=0.5)
    kb.feed(b" ", now=0.0)
    inp = kb.get_input(now=0.1)
    assert inp.gripper == 1.0 and inp.deadman  # a toggle is sent even without motion
    kb.feed(b" ", now=1.0)
    assert kb.get_input(now=1.1).gripper == -1.0
    kb.feed(b"wn\x1b[Cb\x1b[Dyxq\x1b", now=2.0)
    inp = kb.get_input(now=2.0)
    assert inp.events == ("save", "save", "rerecord", "rerecord", "success", "failure", "stop", "stop")
    assert not inp.deadman  # an episode key stops motion
    assert kb.get_input(now=2.0).events == ()  # events are delivered once


def test_keyboard_refuses_a_stdin_that_is_not_a_terminal():
    read_fd, write_fd = os.pipe()
    try:
        with pytest.raises(TeleopError, match="needs a terminal"):
            KeyboardTeleop().start(read_fd)
    finally:
        os.close(read_fd)
        os.close(write_fd)


# -- joy --------------------------------------------------------------------------------------------------------

def joy(lb=0, a=0, start=0, back=0, y=0, x=0, guide=0, ly=0.0, lx=0.0, ry=0.0, rx=0.0):
    axes = [lx, ly, 1.0, rx, ry, 1.0, 0.0, 0.0]
    buttons = [a, 0, x, y, lb, 0, back, start, guide, 0, 0]
    return axes, buttons


def test_joy_default_xbox_mapping_deadman_deadzone_and_edges():
    pad = JoyTeleop()
    inp = pad.update(*joy(ly=1.0, rx=-0.05))
    assert not inp.deadman and inp.twist[0] == 1.0 and inp.twist[5] == 0.0  # within the deadzone
    inp = pad.update(*joy(lb=1, ly=0.55, lx=-1.0, a=1, start=1))
    assert inp.deadman and inp.twist[:2] == pytest.approx([0.5, -1.0]) and inp.gripper == 1.0
    assert inp.events == ("save",)
    inp = pad.update(*joy(lb=1, a=1, start=1))  # still held: no new edge
    assert inp.events == () and inp.gripper == 1.0
    inp = pad.update(*joy(back=1, y=1, x=1, guide=1))
    assert set(inp.events) == {"rerecord", "success", "failure", "stop"} and not inp.deadman
    assert pad.update([0.0], []).twist.tolist() == [0.0] * 6  # short messages are released buttons


def test_joy_mapping_is_validated():
    with pytest.raises(TeleopError, match="unknown events"):
        JoyTeleop(JoyMapping(event_buttons={"explode": 1}))
    with pytest.raises(TeleopError, match="6"):
        JoyTeleop(JoyMapping(axes=((0, 1.0),)))


# -- joy read in-process through evdev (fake device events) -----------------------------------------------------

class FakeEvdevPad:
    """What ``evdev.InputDevice`` shows of an Xbox pad under the kernel's xpad driver (no /dev/input needed)."""

    name, path, fd = "Fake Xbox Pad", "/dev/input/event7", None
    STICK = types.SimpleNamespace(value=0, min=-32768, max=32767)
    TRIGGER = types.SimpleNamespace(value=0, min=0, max=255)
    HAT = types.SimpleNamespace(value=0, min=-1, max=1)

    def __init__(self, gamepad=True) -> None:
        self.gamepad, self.closed = gamepad, False

    def capabilities(self, absinfo=True):
        if not self.gamepad:  # a keyboard
            return {1: [30, 31, 32], 0: [0]}
        s, t, h = self.STICK, self.TRIGGER, self.HAT
        return {0: [0], 3: [(0, s), (1, s), (2, t), (3, s), (4, s), (5, t), (16, h), (17, h)],
                1: [304, 305, 307, 308, 310, 311, 314, 315, 316, 317, 318]}

    def close(self):
        self.closed = True


def ev(type_, code, value):
    return types.SimpleNamespace(type=type_, code=code, value=value)


def test_evdev_gamepad_numbers_axes_and_buttons_as_the_ros_joy_driver_and_drives_the_joy_mapping():
    from robot_irl.teleop.joy import EV_ABS, EV_KEY, EvdevGamepad

    pad = EvdevGamepad(FakeEvdevPad())
    axes, buttons = pad.read()
    assert len(axes) == 8 and len(buttons) == 11
    assert axes[2] == pytest.approx(1.0) and axes[5] == pytest.approx(1.0)  # released triggers read +1, as joy's
    assert pad.read() is None  # nothing changed since
    for event in (ev(EV_KEY, 310, 1), ev(EV_ABS, 1, -32768), ev(EV_ABS, 0, 32767), ev(EV_KEY, 315, 1),
                  ev(EV_ABS, 17, -1), ev(0, 0, 0)):
        pad.feed(event)
    axes, buttons = pad.read()
    assert buttons[4] == 1 and buttons[7] == 1  # LB, Start
    assert axes[1] == pytest.approx(1.0) and axes[0] == pytest.approx(-1.0, abs=1e-4)  # stick up = +1, right = -1
    assert axes[7] == pytest.approx(1.0)  # d-pad up
    inp = JoyTeleop().update(axes, buttons)
    assert inp.deadman and inp.events == ("save",)
    assert inp.twist[0] == pytest.approx(1.0) and inp.twist[1] == pytest.approx(-1.0, abs=1e-3)
    assert pad.events == 5


def test_find_gamepad_skips_other_devices_and_says_what_is_missing(monkeypatch):
    from robot_irl.teleop.joy import find_gamepad

    keyboard, pad = FakeEvdevPad(gamepad=False), FakeEvdevPad()
    devices = {"/dev/input/event0": keyboard, "/dev/input/event7": pad}
    assert find_gamepad(list_devices=lambda: list(devices), open_device=devices.__getitem__) is pad
    assert keyboard.closed
    with pytest.raises(TeleopError, match="no input devices readable"):
        find_gamepad(list_devices=lambda: [], open_device=devices.__getitem__)
    with pytest.raises(TeleopError, match="not a joystick"):
        find_gamepad("/dev/input/event0", list_devices=lambda: [], open_device=lambda p: FakeEvdevPad(False))
    monkeypatch.setitem(sys.modules, "evdev", None)
    with pytest.raises(TeleopError, match="pip install evdev"):
        find_gamepad()


# -- spacemouse -------------------------------------------------------------------------------------------------

def test_spacemouse_reports_and_buttons():
    raw = np.zeros(7)
    assert parse_report(bytes([1]) + np.array([10, -20, 30], "<i2").tobytes(), raw) == 1
    assert parse_report(bytes([2]) + np.array([1, 2, 3], "<i2").tobytes(), raw) == 2
    assert raw[:6].tolist() == [10, -20, 30, 1, 2, 3]
    sm = SpaceMouseTeleop(deadzone=0.05)
    sm.feed(bytes([1]) + np.array([0, -int(FULL_SCALE), 0], "<i2").tobytes())  # pushed forward (device -y)
    inp = sm.get_input()
    assert inp.deadman and inp.twist[0] == pytest.approx(1.0) and np.count_nonzero(inp.twist) == 1
    sm.feed(bytes([3, 1]))
    sm.feed(bytes([3, 3]))
    inp = sm.get_input()
    assert inp.gripper == 1.0 and inp.events == ("save",)


def test_spacemouse_errors_say_what_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "hid", None)
    with pytest.raises(TeleopError, match="pip install hidapi"):
        find_device()
    fake = types.SimpleNamespace(enumerate=lambda: [{"vendor_id": 0x1234, "product_string": "Keyboard"}])
    with pytest.raises(TeleopError, match="no SpaceMouse found"):
        find_device(fake)
    found = {"vendor_id": 0x256F, "product_string": "SpaceMouse Compact", "path": b"/dev/hidraw3"}
    assert find_device(types.SimpleNamespace(enumerate=lambda: [found])) is found


# -- mapping ----------------------------------------------------------------------------------------------------

def pose(x=0.0, y=0.0, z=1.0, quat=DOWN_QUAT):
    return np.array([x, y, z, *quat])


def test_ee_mapper_integrates_a_twist_from_the_measured_pose():
    lim = TeleopLimits(max_linear=0.2, max_step_pos=0.5, max_lead_pos=0.05)
    m = EETargetMapper(lim, dt=0.05)
    assert m.step(TeleopInput(np.array([1.0, 0, 0, 0, 0, 0]), None, False), pose()) is None  # deadman released
    a = m.step(TeleopInput(np.array([1.0, -0.5, 0, 0, 0, 0]), 1.0, True), pose())
    assert a.shape == (7,) and a[:3] == pytest.approx([0.01, -0.005, 1.0]) and a[6] == 1.0
    assert np.linalg.norm(a[3:6]) == pytest.approx(np.pi, abs=1e-6)  # the measured orientation, unchanged
    for _ in range(20):  # the arm does not follow: the target stops max_lead_pos ahead of it
        a = m.step(TeleopInput(np.array([1.0, 0, 0, 0, 0, 0]), None, True), pose())
    assert a[0] == pytest.approx(0.05) and a[6] == 1.0  # the gripper command is kept


def test_ee_mapper_caps_the_step_and_rotates_in_the_world_frame():
    m = EETargetMapper(TeleopLimits(max_linear=10.0, max_step_pos=0.02, max_angular=1.0, max_step_rot=0.5), dt=0.1)
    a = m.step(TeleopInput(np.array([0, 0, -1.0, 0, 0, 1.0]), None, True), pose())
    assert a[2] == pytest.approx(0.98)
    got = rotvec_to_quat(a[3:6])  # 0.1 rad about world z on top of gripper-down: (0, cos .05, sin .05, 0)
    assert abs(abs(np.dot(got, [0, np.cos(0.05), np.sin(0.05), 0])) - 1) < 1e-6, got
    with pytest.raises(TeleopError, match="6 finite"):
        m.step(TeleopInput(np.array([np.nan] * 6), None, True), pose())


def test_pose_from_state_and_mapper_choice():
    names = ["joint1.pos", "eef.x", "eef.y", "eef.z", "eef.qw", "eef.qx", "eef.qy", "eef.qz"]
    assert pose_from_state([9, 1, 2, 3, 1, 0, 0, 0], names).tolist() == [1, 2, 3, 1, 0, 0, 0]
    with pytest.raises(TeleopError, match="eef"):
        pose_from_state([0, 1], ["a", "b"])
    assert isinstance(make_mapper(make_driver("sim", backend="robosuite")), EETargetMapper)
    mapper = make_mapper(make_driver("mock", {"joints": 3, "control_freq": 20}))
    assert isinstance(mapper, JointTargetMapper)
    a = mapper.step(TeleopInput(np.array([1.0, -1.0, 0, 0, 0, 0]), None, True), [0.0, 0.5, 0.0])
    assert a == pytest.approx([0.05, 0.45, 0.0])  # 1 rad/s x 0.05 s


def test_joint_mapper_drives_a_gripper_joint_from_the_gripper_command():
    m = JointTargetMapper(["j1", "gripper"], [-1.0, 0.0], [1.0, 0.04], dt=0.1)
    assert m.step(TeleopInput(np.zeros(6), 1.0, True), [0.2, 0.0]) == pytest.approx([0.2, 0.04])
    assert m.step(TeleopInput(np.zeros(6), -1.0, True), [0.2, 0.04]) == pytest.approx([0.2, 0.0])
