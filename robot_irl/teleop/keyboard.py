"""Keyboard tele-operation from a terminal, without a display (raw stdin, no X server, no pynput).

Keys (lower case):

=============  ==========================================  ==========================================
keys           does                                        note
=============  ==========================================  ==========================================
w / s          +x / -x                                     hold: the terminal's key repeat keeps it
a / d          +y / -y                                     moving; it stops ``hold_s`` after the
r / f          +z / -z                                     last repeat
i / k          roll  + / -   (about x)
j / l          pitch + / -   (about y)
u / o          yaw   + / -   (about z)
space          toggle the gripper (open/closed)
n or ->        save the episode and start the next one
b or <-        discard the episode and re-record it
y / x          mark the episode a success / a failure
q, Esc, ^C     stop the session
=============  ==========================================  ==========================================

A terminal reports key presses, not releases, so a motion key counts as held for ``hold_s`` seconds after its
last (auto-repeated) byte; the deadman is "a motion key is held, or the gripper was just toggled". Release every
key and the teleop stops commanding within ``hold_s`` (the driver node's watchdog then holds the robot).

:meth:`KeyboardTeleop.feed` takes raw bytes, so the parser is tested without a terminal; :meth:`KeyboardTeleop.start`
puts a real terminal in cbreak mode and reads it in a thread (restored by :meth:`KeyboardTeleop.stop`).
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np

from robot_irl.teleop.mapping import GRIPPER_CLOSED, GRIPPER_OPEN, TeleopError, TeleopInput

#: key -> (twist index, sign)
MOTION_KEYS = {"w": (0, 1), "s": (0, -1), "a": (1, 1), "d": (1, -1), "r": (2, 1), "f": (2, -1),
               "i": (3, 1), "k": (3, -1), "j": (4, 1), "l": (4, -1), "u": (5, 1), "o": (5, -1)}
ESC, RIGHT, LEFT, UP, DOWN, CTRL_C = "esc", "right", "left", "up", "down", "\x03"
EVENT_KEYS = {"n": "save", RIGHT: "save", "b": "rerecord", LEFT: "rerecord", "y": "success", "x": "failure",
              "q": "stop", ESC: "stop", CTRL_C: "stop"}
_ARROWS = {"A": UP, "B": DOWN, "C": RIGHT, "D": LEFT}
HELP = ("keyboard teleop: w/s a/d r/f move x/y/z, i/k j/l u/o rotate, space gripper, n/-> save & next, "
        "b/<- re-record, y/x success/failure, q/Esc stop")


def parse_keys(data: bytes) -> list[str]:
    """Raw terminal bytes -> key names (letters lower-cased; arrows ``up/down/left/right``; a lone ESC ``esc``)."""
    text = data.decode("latin-1")
    keys, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\x1b":
            if i + 2 < len(text) and text[i + 1] in "[O":
                keys.append(_ARROWS.get(text[i + 2], "unknown"))
                i += 3
                continue
            keys.append(ESC)
        else:
            keys.append(ch.lower() if ch.isalpha() else ch)
        i += 1
    return keys


class KeyboardTeleop:
    """Keyboard state: which motion keys are held, the gripper, and queued episode events."""

    name = "keyboard"

    def __init__(self, hold_s: float = 0.5, speed: float = 1.0) -> None:
        self.hold_s = float(hold_s)
        self.speed = float(speed)
        self.gripper = GRIPPER_OPEN
        self._pressed: dict[int, tuple[int, float]] = {}  # twist index -> (sign, last time)
        self._gripper_time = -np.inf
        self._events: list[str] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._fd: int | None = None
        self._saved_tty = None

    def feed(self, data: bytes, now: float | None = None) -> None:
        """Process raw bytes read from the terminal at time ``now`` (monotonic seconds)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in parse_keys(data):
                if key in MOTION_KEYS:
                    axis, sign = MOTION_KEYS[key]
                    self._pressed[axis] = (sign, now)
                elif key == " ":
                    self.gripper = GRIPPER_CLOSED if self.gripper == GRIPPER_OPEN else GRIPPER_OPEN
                    self._gripper_time = now
                elif key in EVENT_KEYS:
                    self._events.append(EVENT_KEYS[key])
                    self._pressed.clear()  # an episode key stops any motion

    def get_input(self, now: float | None = None) -> TeleopInput:
        """The current twist/gripper/deadman, and the episode events since the last call."""
        now = time.monotonic() if now is None else now
        with self._lock:
            twist = np.zeros(6)
            for axis, (sign, t) in list(self._pressed.items()):
                if now - t <= self.hold_s:
                    twist[axis] = sign * self.speed
                else:
                    del self._pressed[axis]
            events, self._events = tuple(self._events), []
            deadman = bool(self._pressed) or now - self._gripper_time <= self.hold_s
            return TeleopInput(np.clip(twist, -1, 1), self.gripper, deadman, events)

    # -- the terminal ----------------------------------------------------------------------------------------
    def start(self, fd: int | None = None) -> None:
        """Read the terminal ``fd`` (stdin) in a thread, in cbreak mode (keys arrive at once, no echo)."""
        import termios
        import tty

        fd = 0 if fd is None else fd
        if not os.isatty(fd):
            raise TeleopError("keyboard teleop needs a terminal, and stdin is not one: run teleop_node in a terminal "
                              "(python -m robot_irl.ros.teleop_node --ros-args -p device:=keyboard)")
        self._fd = fd
        self._saved_tty = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        new = termios.tcgetattr(fd)
        new[3] &= ~termios.ISIG  # Ctrl-C arrives as a key (stop), not as SIGINT
        termios.tcsetattr(fd, termios.TCSANOW, new)
        self._stop.clear()
        self._thread = threading.Thread(target=self._read_loop, name="keyboard-teleop", daemon=True)
        self._thread.start()

    def _read_loop(self) -> None:
        import select

        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.1)
            if ready:
                data = os.read(self._fd, 64)
                if not data:
                    break
                self.feed(data)

    def stop(self) -> None:
        """Stop reading and restore the terminal."""
        import termios

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
        if self._saved_tty is not None and self._fd is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved_tty)
            self._saved_tty = None
