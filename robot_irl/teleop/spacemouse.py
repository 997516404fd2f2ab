"""3Dconnexion SpaceMouse tele-operation through ``hidapi`` (optional: ``pip install hidapi``; not a dependency).

Reports: id 1 = translation (x, y, z as int16; some models append the rotation to it), id 2 = rotation (rx, ry, rz),
id 3 = buttons (bit 0 left, bit 1 right). Push/twist the cap to move (the deadman is "the cap is deflected"); left
button toggles the gripper, right button saves the episode and starts the next. :func:`parse_report` is pure, so
the protocol is tested without a device.
"""
from __future__ import annotations

import struct
import threading
import time

import numpy as np

from robot_irl.teleop.mapping import GRIPPER_CLOSED, GRIPPER_OPEN, TeleopError, TeleopInput

VENDOR_IDS = (0x256F, 0x046D)  # 3Dconnexion, Logitech (older SpaceNavigator/SpaceMouse models)
FULL_SCALE = 350.0  # raw reading at full deflection
#: device axis (x, y, z, rx, ry, rz) -> robot twist component and sign: forward push = +x, left = +y, up = +z
DEFAULT_AXES = ((1, -1.0), (0, -1.0), (2, -1.0), (4, -1.0), (3, -1.0), (5, -1.0))


def parse_report(data: bytes, raw: np.ndarray) -> int | None:
    """Update ``raw`` (6 axes + buttons bitmask at index 6) from one HID report; return the report id."""
    if not data:
        return None
    report = data[0]
    if report == 1 and len(data) >= 7:
        raw[0:3] = struct.unpack_from("<hhh", data, 1)
        if len(data) >= 13:
            raw[3:6] = struct.unpack_from("<hhh", data, 7)
    elif report == 2 and len(data) >= 7:
        raw[3:6] = struct.unpack_from("<hhh", data, 1)
    elif report == 3 and len(data) >= 2:
        raw[6] = data[1]
    return report


def find_device(hid_module=None) -> dict:
    """The first SpaceMouse's hidapi info dict, or :class:`TeleopError` saying what is missing."""
    if hid_module is None:
        try:
            import hid as hid_module
        except ImportError:
            raise TeleopError("SpaceMouse support needs hidapi: pip install hidapi") from None
    for info in hid_module.enumerate():
        name = str(info.get("product_string") or "")
        if info.get("vendor_id") in VENDOR_IDS and ("Space" in name or "3Dconnexion" in str(info.get(
                "manufacturer_string") or "")):
            return info
    raise TeleopError("no SpaceMouse found (is it plugged in, and readable: udev rules for /dev/hidraw*?); "
                      "needs pip install hidapi")


class SpaceMouseTeleop:
    """``connect()`` opens the device and reads it in a thread; :meth:`get_input` gives the current state."""

    name = "spacemouse"

    def __init__(self, deadzone: float = 0.05, axes=DEFAULT_AXES, hid_module=None) -> None:
        self.deadzone = float(deadzone)
        self.axes = tuple(axes)
        self.gripper = GRIPPER_OPEN
        self._hid = hid_module
        self._raw = np.zeros(7)
        self._buttons = 0
        self._events: list[str] = []
        self._lock = threading.Lock()
        self._device = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def feed(self, data: bytes) -> None:
        """Process one HID report (what the reader thread does with each)."""
        with self._lock:
            if parse_report(bytes(data), self._raw) == 3:
                buttons = int(self._raw[6])
                pressed = buttons & ~self._buttons
                if pressed & 1:
                    self.gripper = GRIPPER_CLOSED if self.gripper == GRIPPER_OPEN else GRIPPER_OPEN
                if pressed & 2:
                    self._events.append("save")
                self._buttons = buttons

    def get_input(self) -> TeleopInput:
        with self._lock:
            twist = np.zeros(6)
            for axis, (component, sign) in enumerate(self.axes):
                value = self._raw[axis] / FULL_SCALE
                twist[component] = sign * value if abs(value) > self.deadzone else 0.0
            events, self._events = tuple(self._events), []
            twist = np.clip(twist, -1, 1)
            return TeleopInput(twist, self.gripper, bool(np.any(twist != 0)), events)

    def connect(self) -> None:
        info = find_device(self._hid)
        import hid

        device = hid.device()
        device.open_path(info["path"])
        device.set_nonblocking(True)
        self._device = device
        self._thread = threading.Thread(target=self._read_loop, name="spacemouse", daemon=True)
        self._thread.start()

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            data = self._device.read(16)
            if data:
                self.feed(bytes(data))
            else:
                time.sleep(0.002)

    def disconnect(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        if self._device is not None:
            self._device.close()
            self._device = None
