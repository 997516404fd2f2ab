"""Ground-truth preferences from the simulator's own signals, for experiments and for scoring a VLM.

A side's score is, for each configured signal in order, the sum of that signal over the side's frames (one frame
unless segments are labelled). Sides are compared signal by signal (lexicographically): the first signal whose
sums differ by more than ``tolerance`` decides; when none does, the pair is a tie (-1).

Default signals: LeRobot datasets ``next.success`` then ``next.reward`` (the sparse robosuite reward); D4RL files
``rewards``. Only the defaults the dataset has are used. For a dense progress signal name an entry of a state
vector, e.g. ``observation.environment_state:cube.z`` (the cube's height for Lift).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from robot_irl.core.config import Config, check
from robot_irl.label.backends import Answer, Labeller, Query
from robot_irl.label.pairs import FrameRef, FrameSource, PairError

if TYPE_CHECKING:
    from pathlib import Path

    from robot_irl.label.job import LabelConfig


@dataclass
class OracleConfig(Config):
    """``signals``: per-frame signals compared in order (empty: the dataset's defaults that exist)."""

    signals: tuple[str, ...] = ()
    tolerance: float = 1e-6

    def validate(self) -> None:
        check(self.tolerance >= 0, "OracleConfig.tolerance", f"must be >= 0, got {self.tolerance}")
        check(all(isinstance(s, str) and s for s in self.signals), "OracleConfig.signals",
              f"must be non-empty strings, got {self.signals}")


def resolve_signals(source: FrameSource, signals: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The signals to compare: those asked for (each must exist), else the source's defaults that exist."""
    if signals:
        missing = [s for s in signals if not source.has_signal(s)]
        if missing:
            raise PairError(f"{source.path}: oracle signal(s) {missing} not in the dataset; columns: "
                            f"{source.columns()}")
        return list(signals)
    found = [s for s in source.default_signals if source.has_signal(s)]
    if not found:
        raise PairError(f"{source.path}: no oracle signal: none of {list(source.default_signals)} is in the dataset; "
                        f"name one (e.g. 'observation.environment_state:cube.z'); columns: {source.columns()}")
    return found


def oracle_available(source: FrameSource, signals: tuple[str, ...] | list[str] = ()) -> bool:
    """Whether :func:`resolve_signals` would succeed."""
    try:
        resolve_signals(source, signals)
    except PairError:
        return False
    return True


class OracleLabeller(Labeller):
    """Prefers the side with more task progress according to the dataset's own signals; equal -> -1."""

    name = "oracle"
    needs_images = False

    def __init__(self, source: FrameSource, signals: tuple[str, ...] | list[str] = (), tolerance: float = 1e-6):
        self.source = source
        self.signals = resolve_signals(source, signals)
        self.tolerance = float(tolerance)
        self.model = "oracle:" + ",".join(self.signals)
        self._values = np.stack([source.signal(s) for s in self.signals], axis=1)  # (N, signals)
        self._cumsum = np.concatenate([np.zeros((1, len(self.signals))), np.cumsum(self._values, axis=0)])

    @classmethod
    def from_config(cls, config: LabelConfig, source: FrameSource, out_dir: Path) -> OracleLabeller:
        return cls(source, config.oracle.signals, config.oracle.tolerance)

    def scores(self, ref: FrameRef) -> np.ndarray:
        """Each signal summed over the side's frames."""
        return self._cumsum[ref.index + ref.length] - self._cumsum[ref.index]

    def compare(self, a: FrameRef, b: FrameRef) -> int:
        """0 if ``a`` is better, 1 if ``b``, -1 if they tie on every signal."""
        for d in self.scores(b) - self.scores(a):
            if abs(d) > self.tolerance:
                return 1 if d > 0 else 0
        return -1

    def label(self, query: Query) -> Answer:
        a, b = query.pair.a, query.pair.b
        label = self.compare(a, b)
        scores = {"signals": self.signals, "a": self.scores(a).round(9).tolist(), "b": self.scores(b).round(9).tolist()}
        return Answer(label, "ok" if label in (0, 1) else "tie", raw=[json.dumps(scores), str(label)])


__all__ = ["OracleConfig", "OracleLabeller", "oracle_available", "resolve_signals"]
