"""Typed perturbation records: what the adversarial operator did, to what, with which parameters, and when.

A caller builds a request (``Perturbation(kind, target, params)``), a driver that supports perturbations applies
it and returns the record with ``sim_time``/``step`` filled and ``params`` completed with what was actually
applied (e.g. the object's resulting pose). Records are JSON round-trippable: they travel over ROS as
``std_msgs/String`` payloads and are stored per frame in datasets.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


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
            raise PerturbationError(f"unknown perturbation kind {self.kind!r}; known kinds: {known}") from None
        object.__setattr__(self, "kind", kind)
        if not isinstance(self.target, str) or not self.target:
            raise PerturbationError(f"{kind.value}: target must be a non-empty string, got {self.target!r}")
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
                    raise PerturbationError(f"{kind.value}.{key}: expected numbers, got {value!r}") from None
                if len(vec) != _VECTOR_LENGTHS[key] or not all(abs(x) < float("inf") for x in vec):
                    raise PerturbationError(
                        f"{kind.value}.{key}: expected {_VECTOR_LENGTHS[key]} finite numbers, got {value!r}")
                clean[key] = vec
            elif key in ("yaw", "pitch"):
                try:
                    clean[key] = float(value)
                except (TypeError, ValueError):
                    raise PerturbationError(f"{kind.value}.{key}: expected a number, got {value!r}") from None
                if not abs(clean[key]) < float("inf"):
                    raise PerturbationError(f"{kind.value}.{key}: must be finite")
            elif key == "text":
                if not isinstance(value, str) or not value.strip():
                    raise PerturbationError(f"{kind.value}.text must be a non-empty string, got {value!r}")
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
            raise PerturbationError(f"perturbation is missing {missing}: {d!r}")
        extra = sorted(set(d) - {"kind", "target", "params", "sim_time", "step"})
        if extra:
            raise PerturbationError(f"perturbation has unknown keys {extra}")
        return cls(d["kind"], d["target"], d.get("params") or {}, d.get("sim_time"), d.get("step"))

    @classmethod
    def from_json(cls, text: str) -> Perturbation:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise PerturbationError(f"perturbation payload is not JSON: {e}") from None
        return cls.from_dict(d)
