"""The append-only label file, the VLM reply cache, and the API that reads labels back.

Both files are JSON lines, one record per line, appended, flushed and fsynced one at a time, so a crash loses at
most the record being written. A torn last line (a kill mid-write) is cut off with a warning when the file is opened
for appending, and skipped with a warning when it is only read. Records are never rewritten; when a pair is
answered twice (a failed query retried on a later run), the last record wins.

A label record::

    {"pair_id": "s0-0000003", "number": 3, "a": {"episode", "frame", "index", "length"}, "b": {...},
     "image_hashes": [sha256, sha256] | null, "label": 0 | 1 | -1, "raw": [stage1, stage2], "reason": "ok" | ...,
     "detail": str | null, "prompt_version": str | null, "model": str, "latency_s": float, "error": str | null,
     "attempts": int, "cached": bool, "backend": "vlm" | "oracle", "goal": str | null, "time": unix seconds}

``label`` 0 means side ``a`` (Image 1) is preferred, 1 side ``b`` (Image 2), -1 a tie/unsure/failed query.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.label.pairs import FrameRef

log = logging.getLogger(__name__)

LABELS_FILE = "labels.jsonl"
INFORMATIVE_REASONS = frozenset({"ok", "tie", "unsure"})  # -1 answers that still say something


class LabelFileError(ValueError):
    """A label or cache file that cannot be read (the message names the file and line)."""


def _redact(text: str, secrets: Iterable[str]) -> str:
    from robot_irl.label.vlm import redact

    return redact(text, tuple(secrets))


def read_records(path: str | Path) -> list[dict]:
    """The records of a JSON-lines file; a torn last line is skipped with a warning, a bad line elsewhere fails."""
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = data and not data.endswith(b"\n")
    records = []
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            if torn and n == len(lines) - 1:
                log.warning("%s: ignoring a torn last line (%d bytes; a crash mid-write)", path, len(line))
                continue
            raise LabelFileError(f"{path}: line {n + 1} is not a JSON record") from None
    return records


class JsonlLog:
    """An append-only JSON-lines file: each :meth:`append` is one line, flushed and fsynced before returning.

    Opening repairs a torn last line by cutting it off. ``secrets`` are redacted from every line written (and a
    line that would still contain one is refused).
    """

    def __init__(self, path: str | Path, secrets: Iterable[str] = ()) -> None:
        self.path = Path(path)
        self.secrets = tuple(s for s in secrets if s)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self.records = read_records(self.path)
        self._lock = threading.Lock()
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open for the job's lifetime, closed in close()

    def _repair(self) -> None:
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        log.warning("%s: cutting off a torn last line (%d bytes; a crash mid-write)", self.path, len(data) - keep)
        with open(self.path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())

    def append(self, record: Mapping[str, Any]) -> dict:
        """Write one record durably; returns it as stored."""
        line = json.dumps(record, sort_keys=True, allow_nan=False, default=_json_default)
        if self.secrets:
            line = _redact(line, self.secrets)
            if any(s in line for s in self.secrets):
                raise LabelFileError(f"{self.path}: refusing to write a record containing a secret")
        stored = json.loads(line)
        with self._lock:
            self._file.write(line.encode("utf-8") + b"\n")
            self._file.flush()
            os.fsync(self._file.fileno())
            self.records.append(stored)
        return stored

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self) -> JsonlLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"cannot store a {type(obj).__name__} in a label record")


class LabelStore(JsonlLog):
    """``labels.jsonl``: one record per answered pair."""

    def latest(self) -> dict[str, dict]:
        """pair_id -> its last record, in the order pairs were first answered."""
        return latest_records(self.records)


def latest_records(records: Iterable[Mapping[str, Any]]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in records:
        if "pair_id" not in r:
            raise LabelFileError(f"a label record without pair_id: {str(r)[:200]}")
        out[r["pair_id"]] = dict(r)
    return out


class LabelCache(JsonlLog):
    """Replies keyed on (images, prompt, model) (:func:`robot_irl.label.vlm.cache_key`): never pay twice."""

    def __init__(self, path: str | Path, secrets: Iterable[str] = ()) -> None:
        super().__init__(path, secrets)
        self._by_key = {r["key"]: r["value"] for r in self.records if "key" in r}

    def get(self, key: str) -> dict | None:
        with self._lock:
            return self._by_key.get(key)

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        stored = self.append({"key": key, "value": dict(value)})
        with self._lock:
            self._by_key[key] = stored["value"]

    def __len__(self) -> int:
        return len(self._by_key)


# ---------------------------------------------------------------------------------------------------------------
# reading labels back (the reward model's API)
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preference:
    """One labelled pair: ``label`` 0 prefers ``a``, 1 prefers ``b``, -1 is a tie (or an unusable answer)."""

    pair_id: str
    a: FrameRef
    b: FrameRef
    label: int
    reason: str = "ok"
    backend: str = ""
    model: str = ""
    error: str | None = None

    @property
    def soft_target(self) -> float:
        """P(b preferred): 0, 1, or 0.5 for a tie (the B-Pref / Uni-RLHF convention)."""
        return {0: 0.0, 1: 1.0}.get(self.label, 0.5)

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> Preference:
        return cls(str(r["pair_id"]), FrameRef.from_dict(r["a"]), FrameRef.from_dict(r["b"]), int(r["label"]),
                   str(r.get("reason", "")), str(r.get("backend", "")), str(r.get("model", "")), r.get("error"))


def load_preferences(path: str | Path, include_ties: bool = True, include_failed: bool = False) -> list[Preference]:
    """The preferences in a label file (or a run folder holding ``labels.jsonl``), one per pair (its last record).

    ``include_ties``: keep -1 answers that are real ties or "unsure" (RL-VLM-F drops them; soft targets keep
    them). ``include_failed``: also keep -1 answers that carry no information (errors, refusals, empty or
    unparseable replies).
    """
    path = Path(path)
    if path.is_dir():
        path = path / LABELS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path}")
    prefs = [Preference.from_record(r) for r in latest_records(read_records(path)).values()]

    def keep(p: Preference) -> bool:
        if p.reason not in INFORMATIVE_REASONS:
            return include_failed
        return p.label != -1 or include_ties

    return [p for p in prefs if keep(p)]


def preference_arrays(prefs: Iterable[Preference]) -> dict[str, np.ndarray]:
    """Preferences as arrays for training: ``a_index``/``b_index`` (first dataset row of each side),
    ``a_episode``, ``a_frame``, ``b_episode``, ``b_frame``, ``length`` (frames per side), ``labels`` (int64:
    0, 1, -1) and ``targets`` (float32 P(b preferred), 0.5 for ties)."""
    prefs = list(prefs)
    lengths = {p.a.length for p in prefs} | {p.b.length for p in prefs}
    if len(lengths) > 1:
        raise LabelFileError(f"preferences mix segment lengths {sorted(lengths)}")
    cols = {"a_index": [p.a.index for p in prefs], "b_index": [p.b.index for p in prefs],
            "a_episode": [p.a.episode for p in prefs], "a_frame": [p.a.frame for p in prefs],
            "b_episode": [p.b.episode for p in prefs], "b_frame": [p.b.frame for p in prefs],
            "length": [p.a.length for p in prefs], "labels": [p.label for p in prefs]}
    out = {k: np.asarray(v, dtype=np.int64) for k, v in cols.items()}
    out["targets"] = np.asarray([p.soft_target for p in prefs], dtype=np.float32)
    return out


__all__ = ["LABELS_FILE", "JsonlLog", "LabelCache", "LabelFileError", "LabelStore", "Preference",
           "latest_records", "load_preferences", "preference_arrays", "read_records"]
