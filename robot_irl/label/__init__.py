"""Preference labels for offline data: RL-VLM-F pairs answered by a VLM or by the simulator's own signals.

* :mod:`robot_irl.label.pairs` — deterministic pair sampling and dataset access (LeRobot, D4RL, arrays).
* :mod:`robot_irl.label.prompts` — versioned two-stage prompts and the label parser.
* :mod:`robot_irl.label.backends` — the :class:`Labeller` interface and the ``LABELLERS`` registry
  (``vlm``: :mod:`robot_irl.label.vlm`; ``oracle``: :mod:`robot_irl.label.oracle`).
* :mod:`robot_irl.label.store` — the append-only label file, the reply cache, and :func:`load_preferences` /
  :func:`preference_arrays` for reward learning.
* :mod:`robot_irl.label.job` — the resumable job (:func:`run_label_job`) and its report;
  :mod:`robot_irl.label.cli_label` — ``robot-irl label``.

Importing this package imports numpy only (no lerobot, torch or HTTP).
"""
from robot_irl.label.backends import LABELLERS, Answer, Labeller, Query
from robot_irl.label.pairs import FrameRef, Pair, PairSampler
from robot_irl.label.store import Preference, load_preferences, preference_arrays

__all__ = ["LABELLERS", "Answer", "FrameRef", "Labeller", "Pair", "PairSampler", "Preference", "Query",
           "load_preferences", "preference_arrays"]
