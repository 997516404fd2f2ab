"""Per-frame annotations recorded next to every frame of a collection session (the schema, in one place).

Each frame of an ADC dataset carries, besides LeRobot's per-frame ``task`` string (the instruction in force, so a
mid-episode instruction change is in the data):

``annotation.perturbation``       string  JSON list of the perturbation records applied at this frame ("" if none)
``annotation.perturbation_kind``  string  their kinds, comma-separated ("" if none)
``annotation.phase``              string  the task phase the operator reported (approach, grasp, lift, place, ...;
                                          "" when unknown, e.g. a human operator)
``annotation.perturbed``          bool    true when any perturbation was applied at this frame

Every perturbation record is also kept, per episode, in the sidecar (``meta/robot_irl/episodes.jsonl``,
``metadata["perturbations"]``), so they can be listed without reading frames.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from robot_irl.core.features import Feature
from robot_irl.core.perturbation import Perturbation

PERTURBATION = "annotation.perturbation"
PERTURBATION_KIND = "annotation.perturbation_kind"
PHASE = "annotation.phase"
PERTURBED = "annotation.perturbed"


def annotation_features() -> dict[str, Feature]:
    """The extra features a collection dataset declares (pass as ``extra_features`` to the recorder)."""
    return {
        PERTURBATION: Feature("string", (1,)),
        PERTURBATION_KIND: Feature("string", (1,)),
        PHASE: Feature("string", (1,)),
        PERTURBED: Feature("bool", (1,)),
    }


def frame_annotations(perturbations: Sequence[Perturbation] = (), phase: str = "") -> dict[str, object]:
    """The annotation values of one frame (pass in ``extras`` of ``add_frame``)."""
    records = [p.to_dict() for p in perturbations]
    return {
        PERTURBATION: json.dumps(records, sort_keys=True) if records else "",
        PERTURBATION_KIND: ",".join(p.kind.value for p in perturbations),
        PHASE: str(phase or ""),
        PERTURBED: np.array([bool(records)]),
    }


def parse_perturbations(value: str) -> list[Perturbation]:
    """Inverse of the ``annotation.perturbation`` cell: the records applied at that frame."""
    if not value:
        return []
    return [Perturbation.from_dict(d) for d in json.loads(value)]
