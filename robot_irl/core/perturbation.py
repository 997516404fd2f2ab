"""Typed perturbation records: what the adversarial operator did, to what, with which parameters, and when.

A caller builds a request (``Perturbation(kind, target, params)``), a driver that supports perturbations applies
it and returns the record with ``sim_time``/``step`` filled and ``params`` completed with what was actually
applied (e.g. the object's resulting pose). Records are JSON round-trippable: they travel over ROS as
``std_msgs/String`` payloads and are stored per frame in datasets.

:class:`PerturbationBounds` declares the physical bounds of a request (push speed, positions inside the
workspace, colours, light values, camera shifts, instruction length, the parameters each kind takes). Every
driver has its bounds (:meth:`robot_irl.core.contracts.RobotDriver.perturbation_bounds`) and ``perturb`` checks a
request against them before anything is applied: a request outside them is refused with a
:class:`PerturbationError` naming the bound. Error texts quote requests through :func:`brief`, so a hostile or
mistaken megabyte-long request is never echoed back.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from robot_irl.core.config import Config, check

#: at most this many characters of a request are quoted in an error or an error event
ECHO_LIMIT = 300


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def brief(value: Any, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters."""
    return clip(repr(value), limit)


def request_echo(request: Any, limit: int = ECHO_LIMIT) -> Any:
    """What an error event quotes of a refused request (a Perturbation, a mapping or the raw text): the request
    itself when short; else its kind and target (clipped) with its params as clipped JSON text."""
    if isinstance(request, Perturbation):
        request = request.to_dict()
    if isinstance(request, str):
        if len(request) <= limit:
            return request
        try:
            request = json.loads(request)
        except ValueError:
            return clip(request, limit)
    try:
        text = json.dumps(request, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return brief(request, limit)
    if len(text) <= limit or not isinstance(request, dict):
        return request if len(text) <= limit else clip(text, limit)
    short = {k: clip(str(request[k]), 60) for k in ("kind", "target") if k in request}
    if "params" in request:
        short["params"] = clip(json.dumps(request["params"], sort_keys=True, default=str), limit)
    return short


class PerturbationError(ValueError):
    """A malformed perturbation request, or one the driver cannot apply (unknown target, missing parameter)."""


class PerturbationKind(str, Enum):
    MOVE_OBJECT = "move_object"  # params: position [x,y,z] and/or yaw (rad) or quat [w,x,y,z]
    PUSH = "push"  # params: velocity [vx,vy,vz] (m/s) applied to the object's free joint
    LIGHTING = "lighting"  # params: diffuse [r,g,b] and/or direction/position; target: light name or "all"
    COLOR = "color"  # params: rgba [r,g,b,a]; target: an object or "table"
    CAMERA = "camera"  # params: offset [dx,dy,dz] (m) and/or yaw (rad) from the camera's original pose
    DISTRACTOR_ADD = "distractor_add"  # params: position [x,y,z] (optional: random on the table)
    DISTRACTOR_REMOVE = "distractor_remove"
    INSTRUCTION = "instruction"  # params: text; target: "task"


REQUIRED_PARAMS: dict[PerturbationKind, tuple[tuple[str, ...], ...]] = {
    # each entry: alternatives, at least one of which must be present
    PerturbationKind.MOVE_OBJECT: (("position", "yaw", "quat"),),
    PerturbationKind.PUSH: (("velocity",),),
    PerturbationKind.LIGHTING: (("diffuse", "ambient", "direction", "position"),),
    PerturbationKind.COLOR: (("rgba",),),
    PerturbationKind.CAMERA: (("offset", "yaw", "pitch"),),
    PerturbationKind.DISTRACTOR_ADD: (),
    PerturbationKind.DISTRACTOR_REMOVE: (),
    PerturbationKind.INSTRUCTION: (("text",),),
}

_VECTOR_LENGTHS = {"position": 3, "velocity": 3, "quat": 4, "rgba": 4, "diffuse": 3, "ambient": 3,
                   "direction": 3, "offset": 3}


@dataclass(frozen=True)
class Perturbation:
    kind: PerturbationKind
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    sim_time: float | None = None
    step: int | None = None

    def __post_init__(self) -> None:
        try:
            kind = PerturbationKind(self.kind)
        except ValueError:
            known = [k.value for k in PerturbationKind]
            raise PerturbationError(f"unknown perturbation kind {brief(self.kind)}; known kinds: {known}") from None
        object.__setattr__(self, "kind", kind)
        if not isinstance(self.target, str) or not self.target:
            raise PerturbationError(f"{kind.value}: target must be a non-empty string, got {brief(self.target)}")
        if not isinstance(self.params, dict):
            raise PerturbationError(f"{kind.value}: params must be a mapping, got {type(self.params).__name__}")
        for alternatives in REQUIRED_PARAMS[kind]:
            if not any(k in self.params for k in alternatives):
                raise PerturbationError(f"{kind.value} on {self.target!r} needs one of params {list(alternatives)}")
        clean = {}
        for key, value in self.params.items():
            if key in _VECTOR_LENGTHS:
                try:
                    vec = [float(x) for x in value]
                except (TypeError, ValueError):
                    raise PerturbationError(f"{kind.value}.{key}: expected numbers, got {brief(value)}") from None
                if len(vec) != _VECTOR_LENGTHS[key] or not all(abs(x) < float("inf") for x in vec):
                    raise PerturbationError(
                        f"{kind.value}.{key}: expected {_VECTOR_LENGTHS[key]} finite numbers, got {brief(value)}")
                clean[key] = vec
            elif key in ("yaw", "pitch"):
                try:
                    clean[key] = float(value)
                except (TypeError, ValueError):
                    raise PerturbationError(f"{kind.value}.{key}: expected a number, got {brief(value)}") from None
                if not abs(clean[key]) < float("inf"):
                    raise PerturbationError(f"{kind.value}.{key}: must be finite")
            elif key == "text":
                if not isinstance(value, str) or not value.strip():
                    raise PerturbationError(f"{kind.value}.text must be a non-empty string, got {brief(value)}")
                clean[key] = value.strip()
            else:
                clean[key] = value
        object.__setattr__(self, "params", clean)

    def stamped(self, sim_time: float, step: int, **applied: Any) -> Perturbation:
        """The record of this request as applied at ``sim_time``/``step``, with extra applied parameters."""
        return Perturbation(self.kind, self.target, {**self.params, **applied}, float(sim_time), int(step))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "target": self.target, "params": self.params,
                "sim_time": self.sim_time, "step": self.step}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Perturbation:
        if not isinstance(d, dict):
            raise PerturbationError(f"a perturbation must be a JSON object, got {type(d).__name__}")
        missing = [k for k in ("kind", "target") if k not in d]
        if missing:
            raise PerturbationError(f"perturbation is missing {missing}: {brief(d)}")
        extra = sorted(set(d) - {"kind", "target", "params", "sim_time", "step"})
        if extra:
            raise PerturbationError(f"perturbation has unknown keys {brief(extra)}")
        return cls(d["kind"], d["target"], d.get("params") or {}, d.get("sim_time"), d.get("step"))

    @classmethod
    def from_json(cls, text: str) -> Perturbation:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise PerturbationError(f"perturbation payload is not JSON: {e}") from None
        return cls.from_dict(d)


#: the parameters a request of each kind may carry (a record adds what the driver applied)
REQUEST_PARAMS: dict[PerturbationKind, frozenset[str]] = {
    PerturbationKind.MOVE_OBJECT: frozenset({"position", "yaw", "quat"}),
    PerturbationKind.PUSH: frozenset({"velocity"}),
    PerturbationKind.LIGHTING: frozenset({"diffuse", "ambient", "direction", "position"}),
    PerturbationKind.COLOR: frozenset({"rgba"}),
    PerturbationKind.CAMERA: frozenset({"offset", "yaw", "pitch"}),
    PerturbationKind.DISTRACTOR_ADD: frozenset({"position"}),
    PerturbationKind.DISTRACTOR_REMOVE: frozenset(),
    PerturbationKind.INSTRUCTION: frozenset({"text"}),
}
#: kinds that change the physics state (a driver checks the simulation after applying them)
PHYSICAL_KINDS = frozenset({PerturbationKind.MOVE_OBJECT, PerturbationKind.PUSH, PerturbationKind.DISTRACTOR_ADD,
                            PerturbationKind.DISTRACTOR_REMOVE})

Vec3 = tuple[float, float, float]


@dataclass
class PerturbationBounds(Config):
    """The physical bounds of perturbation requests (SI units, world frame). Defaults suit a table-top arm;
    drivers declare their own workspace (``RobotDriver.perturbation_bounds``)."""

    max_push_speed: float = 3.0  # m/s, |push.velocity| (a hard shove; the held-out scripted adversary: 1.6)
    workspace_low: Vec3 = (-1.0, -1.0, 0.0)  # m: move_object / distractor_add positions lie in this box
    workspace_high: Vec3 = (1.0, 1.0, 1.0)
    light_position_low: Vec3 = (-5.0, -5.0, -1.0)  # m: lighting.position lies in this box
    light_position_high: Vec3 = (5.0, 5.0, 6.0)
    max_light_value: float = 1.0  # lighting.diffuse / ambient components in [0, max_light_value]
    max_camera_offset: float = 0.3  # m, each axis of camera.offset (from the camera's original pose)
    max_camera_angle: float = 0.8  # rad (46 degrees), |camera.yaw| and |camera.pitch|
    max_instruction_chars: int = 300  # instruction.text

    def validate(self) -> None:
        w = "PerturbationBounds"
        for name in ("max_push_speed", "max_light_value", "max_camera_offset", "max_camera_angle"):
            check(getattr(self, name) >= 0, f"{w}.{name}", f"must be >= 0, got {getattr(self, name)}")
        check(self.max_instruction_chars > 0, f"{w}.max_instruction_chars", "must be > 0")
        for low, high in (("workspace_low", "workspace_high"), ("light_position_low", "light_position_high")):
            check(all(lo <= hi for lo, hi in zip(getattr(self, low), getattr(self, high))), f"{w}.{low}",
                  f"must be <= {high} elementwise ({getattr(self, low)} vs {getattr(self, high)})")

    def check(self, request: Perturbation) -> None:
        """Raise :class:`PerturbationError` naming the bound when ``request`` lies outside these bounds."""
        kind, params = request.kind, request.params
        what = f"{kind.value} on {brief(request.target, 60)}"
        unknown = sorted(set(params) - REQUEST_PARAMS[kind])
        if unknown:
            raise PerturbationError(f"{what}: unknown parameters {brief(unknown)}; {kind.value} takes "
                                    f"{sorted(REQUEST_PARAMS[kind]) or 'none'}")
        if "velocity" in params:
            speed = math.hypot(*params["velocity"])
            if not speed <= self.max_push_speed:
                raise PerturbationError(f"{what}: push speed {speed:.3g} m/s exceeds max_push_speed="
                                        f"{self.max_push_speed:g} m/s")
        if "position" in params:
            if kind is PerturbationKind.LIGHTING:
                self._in_box(what, "position", params["position"], "light_position")
            else:
                self._in_box(what, "position", params["position"], "workspace")
        for key in ("diffuse", "ambient"):
            if key in params and not all(0.0 <= v <= self.max_light_value for v in params[key]):
                raise PerturbationError(f"{what}: {key} {_fmt(params[key])} outside [0, max_light_value="
                                        f"{self.max_light_value:g}]")
        if "direction" in params and math.hypot(*params["direction"]) < 1e-9:
            raise PerturbationError(f"{what}: direction {_fmt(params['direction'])} has zero length")
        if "rgba" in params and not all(0.0 <= v <= 1.0 for v in params["rgba"]):
            raise PerturbationError(f"{what}: rgba {_fmt(params['rgba'])} outside [0, 1] (colour components)")
        if "quat" in params and math.hypot(*params["quat"]) < 1e-9:
            raise PerturbationError(f"{what}: quat {_fmt(params['quat'])} has zero length")
        if kind is PerturbationKind.CAMERA:
            if "offset" in params and not all(abs(v) <= self.max_camera_offset for v in params["offset"]):
                raise PerturbationError(f"{what}: offset {_fmt(params['offset'])} m exceeds max_camera_offset="
                                        f"{self.max_camera_offset:g} m per axis")
            for key in ("yaw", "pitch"):
                if key in params and not abs(params[key]) <= self.max_camera_angle:
                    raise PerturbationError(f"{what}: {key} {params[key]:.3g} rad exceeds max_camera_angle="
                                            f"{self.max_camera_angle:g} rad")
        if "text" in params and len(params["text"]) > self.max_instruction_chars:
            raise PerturbationError(f"{what}: text of {len(params['text'])} characters exceeds "
                                    f"max_instruction_chars={self.max_instruction_chars}")

    def _in_box(self, what: str, key: str, value: list[float], box: str) -> None:
        low, high = getattr(self, f"{box}_low"), getattr(self, f"{box}_high")
        if not all(lo <= v <= hi for v, lo, hi in zip(value, low, high)):
            raise PerturbationError(f"{what}: {key} {_fmt(value)} m is outside the {box} box "
                                    f"{box}_low={_fmt(low)} .. {box}_high={_fmt(high)}")


def _fmt(values) -> str:
    return "[" + ", ".join(f"{float(v):.3g}" for v in values) + "]"
