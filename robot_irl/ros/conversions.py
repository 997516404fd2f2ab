"""Conversions between ROS 2 messages and robot_irl's arrays and records.

Pure functions on message objects (no node, no executor), so they are tested with the real message classes.

State layout rule (:class:`StateLayout`): the names of a driver's ``observation.state`` feature decide what goes
into ``sensor_msgs/JointState``. A name ``<joint>.pos`` is that joint's position, ``<joint>.vel`` its velocity and
``<joint>.effort`` its effort. When some name ends in ``.pos``, the driver uses this convention and every entry
without one of the three suffixes (an end-effector pose ``eef.x``, ``gripper.left``) is not a joint. When no name
ends in ``.pos``, every entry without a ``.vel``/``.effort`` suffix is a joint position (the mock arm's
``joint_0, joint_1, ...``). Velocities (efforts) are published only when *every* joint has one, because JointState
requires those arrays to be empty or as long as ``name``. A driver with a ``joint_names`` property can pass it to
keep exactly those joints, in that order.

IMU rule (:class:`ImuLayout`): a state whose names include ``imu.qw imu.qx imu.qy imu.qz`` (orientation),
``imu.wx imu.wy imu.wz`` (angular velocity, body frame) and/or ``imu.ax imu.ay imu.az`` (linear acceleration, body
frame) also has a ``sensor_msgs/Imu``; parts it lacks get covariance ``[-1, 0, ...]`` (REP 145: "not provided").
:func:`state_from_sensors` goes back: a ``JointState`` (+ an ``Imu``) -> the state vector in a driver's name
order, so a node that only hears ``/joint_states`` and ``/imu`` (a legged policy) sees what the driver saw.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Twist
from sensor_msgs.msg import Image, Imu, JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, String

from robot_irl.core.perturbation import ECHO_LIMIT, Perturbation, clip, request_echo

_SUFFIXES = {"pos": "position", "vel": "velocity", "effort": "effort"}


class ConversionError(ValueError):
    """A message or array that does not fit what it is converted to (wrong length, encoding, missing joint)."""


# -- time ------------------------------------------------------------------------------------------------------

def stamp(seconds: float) -> Time:
    """A ``builtin_interfaces/Time`` from seconds (e.g. ``time.time()`` or a sim time)."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ConversionError(f"stamp: seconds must be finite and >= 0, got {seconds}")
    sec = int(seconds)
    return Time(sec=sec, nanosec=min(round((seconds - sec) * 1e9), 999_999_999))


def stamp_to_seconds(t: Time) -> float:
    return t.sec + t.nanosec * 1e-9


# -- joint states ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StateLayout:
    """Where each joint's position (and velocity/effort, when every joint has one) sits in a state vector."""

    joint_names: tuple[str, ...]
    position_index: tuple[int, ...]
    velocity_index: tuple[int, ...] | None = None
    effort_index: tuple[int, ...] | None = None

    @property
    def size(self) -> int:
        """Length of the state vector this layout reads."""
        used = [*self.position_index, *(self.velocity_index or ()), *(self.effort_index or ())]
        return max(used) + 1 if used else 0

    @classmethod
    def from_names(cls, names: Sequence[str], joints: Sequence[str] | None = None) -> StateLayout:
        """Build the layout from state feature names (see the module docstring for the rule).

        With ``joints``, only those joints are kept, in that order; each must have a position entry.
        """
        fields: dict[str, dict[str, int]] = {"position": {}, "velocity": {}, "effort": {}}
        order: list[str] = []
        suffixed = any(n.endswith(".pos") for n in names)
        for i, full in enumerate(names):
            joint, _, suffix = full.rpartition(".")
            field = _SUFFIXES.get(suffix) if joint else None
            if field is None:
                if suffixed:
                    continue  # not a joint: e.g. an end-effector pose entry
                joint, field = full, "position"
            if joint in fields[field]:
                raise ConversionError(f"state names: {field} of joint {joint!r} appears twice in {list(names)}")
            fields[field][joint] = i
            if joint not in order:
                order.append(joint)
        no_position = [j for j in order if j not in fields["position"]]
        if no_position:
            raise ConversionError(f"state names: joints {no_position} have a velocity/effort but no position "
                                  f"(names: {list(names)})")
        if joints is not None:
            missing = [j for j in joints if j not in fields["position"]]
            if missing:
                raise ConversionError(f"state names: joints {missing} have no position entry in {list(names)}")
            order = list(joints)

        def complete(field: str) -> tuple[int, ...] | None:
            got = fields[field]
            return tuple(got[j] for j in order) if got and all(j in got for j in order) else None

        return cls(tuple(order), tuple(fields["position"][j] for j in order), complete("velocity"),
                   complete("effort"))


def joint_state_from_state(state, layout: StateLayout, stamp_s: float | None = None,
                           frame_id: str = "") -> JointState:
    """``observation.state`` (a vector laid out as ``layout``) -> ``sensor_msgs/JointState``."""
    s = np.asarray(state, dtype=np.float64).reshape(-1)
    if s.size < layout.size:
        raise ConversionError(f"joint state: state vector has {s.size} entries, layout needs {layout.size} "
                              f"(joints {list(layout.joint_names)})")
    msg = JointState()
    if stamp_s is not None:
        msg.header.stamp = stamp(stamp_s)
    msg.header.frame_id = frame_id
    msg.name = list(layout.joint_names)
    msg.position = s[list(layout.position_index)].tolist()
    if layout.velocity_index is not None:
        msg.velocity = s[list(layout.velocity_index)].tolist()
    if layout.effort_index is not None:
        msg.effort = s[list(layout.effort_index)].tolist()
    return msg


def joint_state_from_observation(obs: dict, state_names: Sequence[str], stamp_s: float | None = None,
                                 joints: Sequence[str] | None = None) -> JointState:
    """``obs["observation.state"]`` + the state feature's names -> ``sensor_msgs/JointState``."""
    if "observation.state" not in obs:
        raise ConversionError(f"observation has no 'observation.state' (keys: {sorted(obs)})")
    return joint_state_from_state(obs["observation.state"], StateLayout.from_names(state_names, joints), stamp_s)


def joint_state_to_array(msg: JointState, joint_names: Sequence[str], field: str = "position") -> np.ndarray:
    """The ``field`` values (position/velocity/effort) of ``joint_names``, in that order.

    Joints the message carries but the list omits are ignored (a robot's /joint_states often holds more joints
    than one controller commands); a listed joint missing from the message is an error naming it.
    """
    if field not in ("position", "velocity", "effort"):
        raise ConversionError(f"joint state field must be position, velocity or effort, got {field!r}")
    values = list(getattr(msg, field))
    if len(values) != len(msg.name):
        raise ConversionError(f"JointState has {len(msg.name)} names but {len(values)} {field} values")
    index = {name: i for i, name in enumerate(msg.name)}
    missing = [j for j in joint_names if j not in index]
    if missing:
        raise ConversionError(f"JointState is missing joints {missing}; it has {list(msg.name)}")
    return np.array([values[index[j]] for j in joint_names], dtype=np.float64)


# -- IMU ----------------------------------------------------------------------------------------------------

IMU_PARTS = {"orientation": ("imu.qw", "imu.qx", "imu.qy", "imu.qz"),
             "angular_velocity": ("imu.wx", "imu.wy", "imu.wz"),
             "linear_acceleration": ("imu.ax", "imu.ay", "imu.az")}


@dataclass(frozen=True)
class ImuLayout:
    """Where each IMU part sits in a state vector (``None``: the state does not have that part)."""

    orientation: tuple[int, ...] | None = None
    angular_velocity: tuple[int, ...] | None = None
    linear_acceleration: tuple[int, ...] | None = None

    @property
    def present(self) -> bool:
        return any(getattr(self, part) is not None for part in IMU_PARTS)

    @classmethod
    def from_names(cls, names: Sequence[str]) -> ImuLayout:
        index = {n: i for i, n in enumerate(names)}
        parts = {}
        for part, wanted in IMU_PARTS.items():
            have = [w in index for w in wanted]
            if any(have) and not all(have):
                raise ConversionError(f"state names: IMU {part} needs all of {list(wanted)}, has only "
                                      f"{[w for w, h in zip(wanted, have) if h]}")
            parts[part] = tuple(index[w] for w in wanted) if all(have) else None
        return cls(**parts)


def imu_from_state(state, layout: ImuLayout, stamp_s: float | None = None, frame_id: str = "imu_link") -> Imu:
    """The IMU entries of ``observation.state`` -> ``sensor_msgs/Imu`` (missing parts marked not provided)."""
    if not layout.present:
        raise ConversionError("imu: the state has no imu.* entries")
    s = np.asarray(state, dtype=np.float64).reshape(-1)
    msg = Imu()
    if stamp_s is not None:
        msg.header.stamp = stamp(stamp_s)
    msg.header.frame_id = frame_id
    if layout.orientation is not None:
        w, x, y, z = s[list(layout.orientation)]
        msg.orientation.w, msg.orientation.x, msg.orientation.y, msg.orientation.z = float(w), float(x), float(y), \
            float(z)
    else:
        msg.orientation_covariance[0] = -1.0
    if layout.angular_velocity is not None:
        v = s[list(layout.angular_velocity)]
        msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = (float(a) for a in v)
    else:
        msg.angular_velocity_covariance[0] = -1.0
    if layout.linear_acceleration is not None:
        v = s[list(layout.linear_acceleration)]
        msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z = (float(a) for a in v)
    else:
        msg.linear_acceleration_covariance[0] = -1.0
    return msg


def imu_values(msg: Imu) -> dict[str, float]:
    """``sensor_msgs/Imu`` -> ``{"imu.qw": ..., ...}`` for the parts it provides (covariance[0] != -1)."""
    out: dict[str, float] = {}
    if msg.orientation_covariance[0] != -1.0:
        o = msg.orientation
        out.update(zip(IMU_PARTS["orientation"], (o.w, o.x, o.y, o.z)))
    if msg.angular_velocity_covariance[0] != -1.0:
        v = msg.angular_velocity
        out.update(zip(IMU_PARTS["angular_velocity"], (v.x, v.y, v.z)))
    if msg.linear_acceleration_covariance[0] != -1.0:
        v = msg.linear_acceleration
        out.update(zip(IMU_PARTS["linear_acceleration"], (v.x, v.y, v.z)))
    return {k: float(v) for k, v in out.items()}


def state_from_sensors(names: Sequence[str], joint_state: JointState, imu: Imu | None = None) -> np.ndarray:
    """A state vector laid out as ``names`` (a driver's ``observation.state`` names) from the sensor messages.

    ``<joint>.pos`` / ``.vel`` / ``.effort`` come from ``joint_state`` (by joint name), ``imu.*`` from ``imu``;
    any other name, or a value the messages do not carry, is an error naming it (a policy must never act on a
    silently zero-filled state).
    """
    values: dict[str, float] = {}
    plain = not any(n.endswith(".pos") for n in names)  # the StateLayout rule: unsuffixed names are positions
    for field, suffix in (("position", "pos"), ("velocity", "vel"), ("effort", "effort")):
        data = list(getattr(joint_state, field))
        if data and len(data) != len(joint_state.name):
            raise ConversionError(f"JointState has {len(joint_state.name)} names but {len(data)} {field} values")
        values.update({f"{j}.{suffix}": float(v) for j, v in zip(joint_state.name, data)})
        if plain and field == "position":
            values.update({str(j): float(v) for j, v in zip(joint_state.name, data)})
    if imu is not None:
        values.update(imu_values(imu))
    missing = [n for n in names if n not in values]
    if missing:
        have = "JointState" + (" and Imu" if imu is not None else " (no Imu yet)")
        raise ConversionError(f"state entries {missing} are not in the {have} messages")
    out = np.array([values[n] for n in names], dtype=np.float64)
    if not np.all(np.isfinite(out)):
        bad = [n for n, v in zip(names, out) if not np.isfinite(v)]
        raise ConversionError(f"state entries {bad} are NaN/inf in the sensor messages")
    return out


# -- velocity commands ------------------------------------------------------------------------------------

def twist_to_command(msg) -> np.ndarray:
    """``geometry_msgs/Twist`` (or ``TwistStamped``) -> ``[vx, vy, wz]`` (base frame), NaN/inf rejected."""
    twist = msg.twist if hasattr(msg, "twist") else msg
    cmd = np.array([twist.linear.x, twist.linear.y, twist.angular.z], dtype=np.float64)
    if not np.all(np.isfinite(cmd)):
        raise ConversionError(f"cmd_vel: non-finite velocity command {cmd.tolist()}")
    return cmd


def command_to_twist(command) -> Twist:
    vx, vy, wz = (float(v) for v in np.asarray(command, dtype=np.float64).reshape(3))
    msg = Twist()
    msg.linear.x, msg.linear.y, msg.angular.z = vx, vy, wz
    return msg


# -- images ------------------------------------------------------------------------------------------------

def image_to_msg(array, stamp_s: float | None = None, frame_id: str = "") -> Image:
    """An (H, W, 3) uint8 RGB array -> ``sensor_msgs/Image`` with encoding ``rgb8``."""
    a = np.asarray(array)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ConversionError(f"image: expected an (H, W, 3) uint8 array, got {a.dtype} {a.shape}")
    msg = Image()
    if stamp_s is not None:
        msg.header.stamp = stamp(stamp_s)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(a.shape[0]), int(a.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(a).tobytes()
    return msg


def image_from_msg(msg: Image) -> np.ndarray:
    """``sensor_msgs/Image`` (rgb8 or bgr8) -> an (H, W, 3) uint8 RGB array (a copy)."""
    if msg.encoding not in ("rgb8", "bgr8"):
        raise ConversionError(f"image: encoding {msg.encoding!r} is not supported (use rgb8 or bgr8)")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if step < w * 3 or data.size != h * step:
        raise ConversionError(f"image: {data.size} bytes do not fit {h}x{w} {msg.encoding} with step {step}")
    rows = data.reshape(h, step)[:, : w * 3].reshape(h, w, 3)
    return (rows[..., ::-1] if msg.encoding == "bgr8" else rows).copy()


# -- actions -----------------------------------------------------------------------------------------------

def action_to_msg(action, label: str = "action") -> Float64MultiArray:
    """A 1-D action vector -> ``std_msgs/Float64MultiArray`` (one dimension, labelled ``label``).

    Clients that need lock-step with the driver node put a sequence number in the label (``seq=N``); the node
    echoes the label of the command each tick used on ``action_sent`` and ``observation``.
    """
    a = np.asarray(action, dtype=np.float64).reshape(-1)
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=str(label), size=int(a.size), stride=int(a.size))]
    msg.data = a.tolist()
    return msg


def action_from_msg(msg: Float64MultiArray, expected_dim: int | None = None, where: str = "command") -> np.ndarray:
    """``std_msgs/Float64MultiArray`` -> a float64 vector; with ``expected_dim``, a wrong length is an error."""
    a = np.asarray(msg.data, dtype=np.float64).reshape(-1)
    if expected_dim is not None and a.size != expected_dim:
        raise ConversionError(f"{where}: expected {expected_dim} values, got {a.size}")
    return a


def label_of(msg: Float64MultiArray) -> str:
    """The label of a Float64MultiArray's first dimension (``""`` when it has none)."""
    return msg.layout.dim[0].label if msg.layout.dim else ""


# -- the per-tick observation bundle -----------------------------------------------------------------------
# One std_msgs/Float64MultiArray per tick carries every non-image observation vector, the driver's reference
# (its measured value in action space, for the client-side safety layer), and reward/success/time: a client
# gets one consistent snapshot instead of racing several topics. Dimension labels name the parts; the first
# dimension (size 0) carries the label of the command the tick used.

def bundle_to_msg(label: str, features: dict[str, np.ndarray], reference,
                  status: dict[str, float]) -> Float64MultiArray:
    parts: list[tuple[str, np.ndarray]] = [
        (f"obs:{k}", np.asarray(v, np.float64).reshape(-1)) for k, v in features.items()]
    parts.append(("ref", np.asarray(reference, np.float64).reshape(-1)))
    parts += [(f"status:{k}", np.array([float(v)])) for k, v in status.items()]
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=f"label:{label}", size=0, stride=0)] + [
        MultiArrayDimension(label=name, size=int(v.size), stride=int(v.size)) for name, v in parts]
    msg.data = np.concatenate([v for _, v in parts]).tolist() if parts else []
    return msg


def bundle_from_msg(msg: Float64MultiArray) -> dict:
    """-> ``{"label": str, "features": {key: array}, "reference": array, "status": {key: float}}``."""
    dims = list(msg.layout.dim)
    if not dims or not dims[0].label.startswith("label:"):
        raise ConversionError("observation bundle: first dimension must be the 'label:' marker")
    data = np.asarray(msg.data, dtype=np.float64)
    total = sum(int(d.size) for d in dims[1:])
    if total != data.size:
        raise ConversionError(f"observation bundle: dimensions add up to {total} values, message has {data.size}")
    out: dict = {"label": dims[0].label[len("label:"):], "features": {}, "reference": np.zeros(0), "status": {}}
    offset = 0
    for d in dims[1:]:
        chunk = data[offset:offset + int(d.size)]
        offset += int(d.size)
        if d.label.startswith("obs:"):
            out["features"][d.label[4:]] = chunk
        elif d.label == "ref":
            out["reference"] = chunk
        elif d.label.startswith("status:"):
            out["status"][d.label[7:]] = float(chunk[0])
        else:
            raise ConversionError(f"observation bundle: unknown part {d.label!r}")
    return out


# -- perturbations and text --------------------------------------------------------------------------------

def string_msg(text: str) -> String:
    return String(data=str(text))


def perturbation_to_msg(p: Perturbation) -> String:
    """A perturbation request or record -> ``std_msgs/String`` holding its JSON."""
    return String(data=p.to_json())


def perturbation_from_msg(msg: String) -> Perturbation:
    """``std_msgs/String`` JSON -> :class:`Perturbation`; malformed payloads raise ``PerturbationError``."""
    return Perturbation.from_json(msg.data)


def error_event_msg(error: BaseException | str, payload: str | None = None) -> String:
    """An event JSON ``{"error": ..., "request": ...}`` for a perturbation that could not be applied; a long
    request payload is quoted clipped (:func:`robot_irl.core.perturbation.request_echo`)."""
    event = {"error": clip(str(error), 2 * ECHO_LIMIT)}
    if payload is not None:
        event["request"] = request_echo(payload)
    return String(data=json.dumps(event, sort_keys=True))
