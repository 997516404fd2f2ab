"""Joystick / gamepad tele-operation from ``sensor_msgs/Joy``-like axes and buttons (pure: takes lists).

The default :class:`JoyMapping` is the Xbox layout of the ROS ``joy`` driver (axes: 0 left stick left/right,
1 left stick up/down, 2 LT, 3 right stick left/right, 4 right stick up/down, 5 RT, 6 d-pad left/right, 7 d-pad
up/down; buttons: 0 A, 1 B, 2 X, 3 Y, 4 LB, 5 RB, 6 Back, 7 Start, 8 Guide). Hold LB (deadman) and move: left stick
x/y, right stick up/down z and left/right yaw, d-pad roll/pitch; A toggles the gripper; Start = save & next,
Back = re-record, Y/X = success/failure, Guide = stop. A PlayStation pad under the same driver has the same
numbering for these; any other layout is a :class:`JoyMapping` away.

Where the axes and buttons come from: :class:`EvdevGamepad` reads a gamepad in this process through the Linux input
subsystem (``evdev``, ``/dev/input/event*``; the user needs read access, e.g. the ``input`` group), numbering axes
and buttons as the ROS ``joy`` driver does (axes in the order of their ABS codes, scaled to [-1, 1] and negated so
left/up are positive and released triggers read +1; buttons in the order of their key codes), so the same
:class:`JoyMapping` serves both. The alternative is ``sensor_msgs/Joy`` on ``/joy`` from a ROS joystick driver
(``ros2 run joy joy_node``), which the teleop node reads when no gamepad is found here.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_irl.teleop.mapping import EPISODE_EVENTS, GRIPPER_CLOSED, GRIPPER_OPEN, TeleopError, TeleopInput


@dataclass
class JoyMapping:
    #: per twist component [vx, vy, vz, wx, wy, wz]: (axis index, sign); index -1 = unused
    axes: tuple[tuple[int, float], ...] = ((1, 1.0), (0, 1.0), (4, 1.0), (6, 1.0), (7, 1.0), (3, 1.0))
    deadman_button: int = 4
    gripper_button: int = 0
    event_buttons: dict[str, int] = field(default_factory=lambda: {
        "save": 7, "rerecord": 6, "success": 3, "failure": 2, "stop": 8})
    deadzone: float = 0.1

    def validate(self) -> None:
        if len(self.axes) != 6:
            raise TeleopError(f"JoyMapping.axes needs 6 (axis, sign) pairs, got {len(self.axes)}")
        unknown = sorted(set(self.event_buttons) - set(EPISODE_EVENTS))
        if unknown:
            raise TeleopError(f"JoyMapping.event_buttons: unknown events {unknown}; known: {list(EPISODE_EVENTS)}")
        if not 0 <= self.deadzone < 1:
            raise TeleopError(f"JoyMapping.deadzone must be in [0, 1), got {self.deadzone}")


class JoyTeleop:
    """Feed each Joy message's ``axes``/``buttons`` to :meth:`update`; buttons act on their press edge."""

    name = "joy"

    def __init__(self, mapping: JoyMapping | None = None) -> None:
        self.mapping = mapping or JoyMapping()
        self.mapping.validate()
        self.gripper = GRIPPER_OPEN
        self._previous: list[int] = []

    def _pressed(self, buttons: Sequence[int], index: int) -> bool:
        """True on the press edge of ``index`` (a button missing from the message is released)."""
        now = index < len(buttons) and bool(buttons[index])
        before = index < len(self._previous) and bool(self._previous[index])
        return now and not before

    def update(self, axes: Sequence[float], buttons: Sequence[int]) -> TeleopInput:
        m = self.mapping
        twist = np.zeros(6)
        for i, (axis, sign) in enumerate(m.axes):
            if 0 <= axis < len(axes):
                value = float(axes[axis])
                if abs(value) > m.deadzone:  # rescale so motion starts from 0 at the deadzone edge
                    twist[i] = sign * np.sign(value) * (abs(value) - m.deadzone) / (1.0 - m.deadzone)
        events = tuple(event for event, button in m.event_buttons.items() if self._pressed(buttons, button))
        if self._pressed(buttons, m.gripper_button):
            self.gripper = GRIPPER_CLOSED if self.gripper == GRIPPER_OPEN else GRIPPER_OPEN
        deadman = m.deadman_button < len(buttons) and bool(buttons[m.deadman_button])
        self._previous = [int(b) for b in buttons]
        return TeleopInput(np.clip(twist, -1, 1), self.gripper, deadman, events)


# -- reading a gamepad in-process (evdev) --------------------------------------------------------------------------

EV_SYN, EV_KEY, EV_ABS = 0, 1, 3  # linux/input-event-codes.h
BTN_MISC, BTN_JOYSTICK, BTN_GAMEPAD, BTN_DIGI = 0x100, 0x120, 0x130, 0x140
ABS_X = 0x00


def is_gamepad(capabilities: dict) -> bool:
    """A joystick or gamepad: absolute X axis and joystick/gamepad buttons (``InputDevice.capabilities()``)."""
    abs_codes = {c[0] if isinstance(c, tuple) else c for c in capabilities.get(EV_ABS, [])}
    keys = set(capabilities.get(EV_KEY, []))
    return ABS_X in abs_codes and any(BTN_JOYSTICK <= k < BTN_DIGI for k in keys)


def find_gamepad(path: str = "", list_devices: Callable[[], Iterable[str]] | None = None,
                 open_device: Callable[[str], Any] | None = None):
    """The gamepad at ``path`` (or the first one found) as an opened ``evdev.InputDevice``.

    Raises :class:`TeleopError` naming what is missing (evdev, /dev/input access, a gamepad).
    """
    if list_devices is None or open_device is None:
        try:
            import evdev
        except ImportError:
            raise TeleopError("reading a gamepad in-process needs evdev (pip install evdev); or publish "
                              "sensor_msgs/Joy on /joy") from None
        list_devices, open_device = list_devices or evdev.list_devices, open_device or evdev.InputDevice
    paths = [path] if path else list(list_devices())
    if not paths:
        raise TeleopError("no input devices readable under /dev/input (is a gamepad plugged in, and may this user "
                          "read it: the 'input' group or a udev rule?)")
    for candidate in paths:
        try:
            device = open_device(candidate)
        except OSError as e:
            if path:
                raise TeleopError(f"cannot open {path}: {e}") from None
            continue
        if is_gamepad(device.capabilities(absinfo=True)):
            return device
        device.close()
        if path:
            raise TeleopError(f"{path} is not a joystick or gamepad (no absolute X axis and gamepad buttons)")
    raise TeleopError(f"no joystick or gamepad among the {len(paths)} readable input devices under /dev/input")


class EvdevGamepad:
    """A gamepad's axes and buttons, numbered as the ROS ``joy`` driver numbers them (see the module docstring).

    :meth:`feed` takes evdev events (anything with ``type``, ``code``, ``value``), so the mapping is tested without
    a device; :meth:`start` reads an opened ``evdev.InputDevice`` in a thread. :meth:`read` returns the current
    ``(axes, buttons)`` once something changed since the previous read, else None.
    """

    def __init__(self, device) -> None:
        caps = device.capabilities(absinfo=True)
        self.device = device
        self.name = str(getattr(device, "name", "") or "gamepad")
        self.path = str(getattr(device, "path", "") or "")
        absinfo = sorted((c for c in caps.get(EV_ABS, []) if isinstance(c, tuple)), key=lambda c: c[0])
        self._axis = {code: i for i, (code, _) in enumerate(absinfo)}
        self._range = {code: (float(info.min), float(info.max)) for code, info in absinfo}
        keys = sorted(k for k in caps.get(EV_KEY, []) if k >= BTN_MISC)
        self._button = {code: i for i, code in enumerate(keys)}
        self.axes = [0.0] * len(self._axis)
        for code, info in absinfo:
            self.axes[self._axis[code]] = self._scale(code, info.value)
        self.buttons = [0] * len(self._button)
        self.events = 0  # input events seen (not counting SYN)
        self._changed = True
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _scale(self, code: int, value: float) -> float:
        lo, hi = self._range[code]
        if hi <= lo:
            return 0.0
        return float(-(2.0 * (float(value) - lo) / (hi - lo) - 1.0))  # negated: left/up/released trigger = +1

    def feed(self, event) -> None:
        with self._lock:
            if event.type == EV_ABS and event.code in self._axis:
                self.axes[self._axis[event.code]] = self._scale(event.code, event.value)
            elif event.type == EV_KEY and event.code in self._button:
                self.buttons[self._button[event.code]] = 1 if event.value else 0  # 2 = autorepeat: still held
            else:
                return
            self.events += 1
            self._changed = True

    def read(self) -> tuple[list[float], list[int]] | None:
        with self._lock:
            if not self._changed:
                return None
            self._changed = False
            return list(self.axes), list(self.buttons)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._read_loop, name="evdev-gamepad", daemon=True)
        self._thread.start()

    def _read_loop(self) -> None:
        import select

        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.device.fd], [], [], 0.1)
                if ready:
                    for event in self.device.read():
                        self.feed(event)
            except OSError:  # unplugged
                break

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
        try:
            self.device.close()
        except OSError:
            pass
