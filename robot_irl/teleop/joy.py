"""Joystick / gamepad tele-operation from ``sensor_msgs/Joy``-like axes and buttons (pure: takes lists).

The default :class:`JoyMapping` is the Xbox layout of the ROS ``joy`` driver (axes: 0 left stick left/right,
1 left stick up/down, 2 LT, 3 right stick left/right, 4 right stick up/down, 5 RT, 6 d-pad left/right, 7 d-pad
up/down; buttons: 0 A, 1 B, 2 X, 3 Y, 4 LB, 5 RB, 6 Back, 7 Start, 8 Guide). Hold LB (deadman) and move: left stick
x/y, right stick up/down z and left/right yaw, d-pad roll/pitch; A toggles the gripper; Start = save & next,
Back = re-record, Y/X = success/failure, Guide = stop. A PlayStation pad under the same driver has the same
numbering for these; any other layout is a :class:`JoyMapping` away.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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
