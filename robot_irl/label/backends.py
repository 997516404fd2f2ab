"""The labeller interface and the ``LABELLERS`` registry.

A :class:`Labeller` answers one :class:`Query` (a pair, the goal, and the two shown images when it needs them)
with an :class:`Answer`: the label (0: Image 1 / side ``a`` is better, 1: Image 2 / side ``b``, -1: tie, unsure or
failed), the raw texts, why, and what it cost. ``label`` never raises for a bad reply; it is called from worker
threads, so it must be thread-safe.

Backends (lazy, so listing them imports nothing heavy):

* ``vlm`` — :class:`robot_irl.label.vlm.VLMLabeller`: any OpenAI-compatible chat-completions endpoint.
* ``oracle`` — :class:`robot_irl.label.oracle.OracleLabeller`: the simulator's own success/reward/state signals.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from robot_irl.core.registry import Registry
from robot_irl.label.pairs import Pair

if TYPE_CHECKING:
    from pathlib import Path

    from robot_irl.label.job import LabelConfig
    from robot_irl.label.pairs import FrameSource


@dataclass
class Query:
    """What a labeller is asked: ``images`` are (Image 1, Image 2) = (side a, side b), HxWx3 uint8, or None."""

    pair: Pair
    goal: str | None = None
    images: tuple[np.ndarray, np.ndarray] | None = None
    image_hashes: tuple[str, str] | None = None


@dataclass
class Answer:
    """A labeller's reply. ``reason``: ``ok``, ``tie``, ``unsure``, ``empty``, ``refused``, ``unparseable``,
    ``malformed`` or ``error``; ``error`` holds the failure's text (secrets redacted) when the query failed."""

    label: int
    reason: str
    raw: list[str] = field(default_factory=lambda: ["", ""])
    error: str | None = None
    latency_s: float = 0.0
    attempts: int = 0
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.label not in (0, 1, -1):
            raise ValueError(f"label must be 0, 1 or -1, got {self.label!r}")


class Labeller(ABC):
    """Answers preference queries. Subclasses set ``name`` and ``needs_images`` and build from a job config."""

    name: ClassVar[str] = ""
    needs_images: ClassVar[bool] = False
    model: str = ""
    prompt_version: str | None = None

    @classmethod
    @abstractmethod
    def from_config(cls, config: LabelConfig, source: FrameSource, out_dir: Path) -> Labeller:
        """Build from the job's config and dataset (``out_dir`` is the run folder, e.g. for a cache)."""

    @abstractmethod
    def label(self, query: Query) -> Answer:
        """Answer one query; never raises for a bad reply (returns -1 with the reason)."""

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings that must never be written or logged (API keys)."""
        return ()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "prompt_version": self.prompt_version}

    def close(self) -> None:
        """Release resources (connections, files)."""


LABELLERS: Registry[type[Labeller]] = Registry("labeller")
LABELLERS.register("vlm", "robot_irl.label.vlm:VLMLabeller")
LABELLERS.register("oracle", "robot_irl.label.oracle:OracleLabeller")

__all__ = ["LABELLERS", "Answer", "Labeller", "Query"]
