"""The resumable labelling job: sample pairs, ask a labeller, append every answer, report.

``run_label_job(config, out_dir)`` writes to the run folder:

* ``labels.jsonl`` — one record per answered pair (:mod:`robot_irl.label.store`), appended and fsynced as each
  answer arrives. Rerunning with the same folder skips the pairs already answered (and, with ``retry_errors``,
  asks again those whose query failed), so a killed job loses at most the queries in flight; a larger ``pairs``
  extends the set.
* ``vlm_cache.jsonl`` — replies keyed on (images, prompt, model), unless ``vlm.cache_path`` points elsewhere
  (share one cache between runs to never pay twice).
* ``config.json`` — the resolved :class:`LabelConfig` with provenance (no API key: it is read from the environment
  and redacted from everything written); a rerun must match its identity fields (dataset, backend, seed, segment
  length, camera, goal, model, prompt version).
* ``report.json`` — label counts, tie rate, failure reasons, mean latency and, when the dataset has the signals,
  agreement with oracle labels computed on the same pairs.
"""
from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robot_irl.core.config import Config, check
from robot_irl.label.backends import LABELLERS, Answer, Labeller, Query
from robot_irl.label.oracle import OracleConfig, OracleLabeller, oracle_available
from robot_irl.label.pairs import FrameSource, Pair, PairError, PairSampler, image_hash, open_source
from robot_irl.label.store import LABELS_FILE, LabelStore
from robot_irl.label.vlm import VLMConfig, redact

log = logging.getLogger(__name__)

REPORT_FILE = "report.json"
CONFIG_FILE = "config.json"
# fields that decide which pairs are asked and how: a rerun in the same folder must not change them
IDENTITY_FIELDS = ("dataset", "backend", "seed", "segment_length", "camera", "goal", "drop_identical")


@dataclass
class LabelConfig(Config):
    """Everything the job does, saved with the run.

    ``camera``: None lets the ``vlm`` backend use the dataset's only camera and the oracle use no images; a name
    picks one (the oracle then also drops identical-image pairs, so it labels the same pairs as the VLM would).
    ``goal``: the task text in the prompt; empty: the dataset's language instruction at side ``a``'s frame.
    ``max_candidates_factor``: give up after ``pairs * factor`` candidates (a dataset of identical images).
    """

    dataset: str = ""
    backend: str = "vlm"
    pairs: int = 100
    seed: int = 0
    segment_length: int = 1
    camera: str | None = None
    goal: str = ""
    drop_identical: bool = True
    retry_errors: bool = True
    agreement: bool = True
    max_candidates_factor: int = 20
    vlm: VLMConfig = field(default_factory=VLMConfig)
    oracle: OracleConfig = field(default_factory=OracleConfig)

    def validate(self) -> None:
        w = "LabelConfig"
        check(bool(self.dataset), f"{w}.dataset", "is required (a LeRobot dataset folder or a D4RL .hdf5 file)")
        check(self.backend in LABELLERS, f"{w}.backend",
              f"unknown labeller {self.backend!r}; known: {', '.join(LABELLERS.names())}")
        check(self.pairs >= 1, f"{w}.pairs", f"must be >= 1, got {self.pairs}")
        check(self.segment_length >= 1, f"{w}.segment_length", f"must be >= 1, got {self.segment_length}")
        check(self.max_candidates_factor >= 1, f"{w}.max_candidates_factor", "must be >= 1")
        check(self.backend != "vlm" or bool(self.vlm.model), f"{w}.vlm.model",
              "the vlm backend needs a model name (--model)")

    def identity(self) -> dict[str, Any]:
        """What a rerun in the same folder must keep (changing it would change the pairs or their meaning)."""
        out = {k: getattr(self, k) for k in IDENTITY_FIELDS}
        out["dataset"] = str(Path(self.dataset).resolve())
        if self.backend == "vlm":
            out.update(model=self.vlm.model, prompt_version=self.vlm.prompt_version,
                       stage2_images=self.vlm.stage2_images)
        else:
            out.update(oracle_signals=list(self.oracle.signals))
        return out

    @property
    def concurrency(self) -> int:
        return self.vlm.concurrency if self.backend == "vlm" else 1


# ---------------------------------------------------------------------------------------------------------------
# run folder
# ---------------------------------------------------------------------------------------------------------------
def _prepare(config: LabelConfig, out: Path, labeller: Labeller, source: FrameSource) -> None:
    """Check a rerun's config against the saved one, then save this run's (API key redacted)."""
    from robot_irl.runs import save_run_config

    saved_path = out / CONFIG_FILE
    if saved_path.is_file():
        saved = json.loads(saved_path.read_text(encoding="utf-8")).get("config", {}).get("identity")
        if saved is None:
            raise PairError(f"{out}: {CONFIG_FILE} was not written by `robot-irl label`; pick another --out")
        now = json.loads(json.dumps(config.identity()))
        changed = {k: (saved.get(k), now.get(k)) for k in set(saved) | set(now) if saved.get(k) != now.get(k)}
        if changed:
            details = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in ((k, *v) for k, v in sorted(changed.items())))
            raise PairError(f"{out} holds labels made with other settings ({details}); use another --out")
        name = "config.resume.json"
    elif (out / LABELS_FILE).exists():
        raise PairError(f"{out}: {LABELS_FILE} exists without {CONFIG_FILE}; use another --out")
    else:
        name = CONFIG_FILE
    out.mkdir(parents=True, exist_ok=True)
    payload = {"label": config.to_dict(), "identity": config.identity(), "labeller": labeller.describe(),
               "source": source.describe()}
    path = save_run_config(out, payload, name=name)
    if labeller.secrets:
        path.write_text(redact(path.read_text(encoding="utf-8"), labeller.secrets), encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------------
# the job
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class _Progress:
    chosen: list[str] = field(default_factory=list)
    dropped_identical: int = 0
    asked: int = 0
    skipped: int = 0
    candidates: int = 0


class LabelJob:
    """One run of the labelling job over a dataset (use :func:`run_label_job`)."""

    def __init__(self, config: LabelConfig, out_dir: str | Path, source: FrameSource | None = None,
                 labeller: Labeller | None = None) -> None:
        self.config = config
        self.out = Path(out_dir)
        cls = LABELLERS.get(config.backend)
        camera = config.camera if config.camera is not None else ("" if cls.needs_images else None)
        self.source = source if source is not None else open_source(config.dataset, camera)
        if cls.needs_images and not self.source.has_images:
            raise PairError(f"{self.source.path}: the {config.backend} labeller needs camera frames; name a camera "
                            f"(--camera)")
        self.use_images = self.source.has_images and (cls.needs_images or config.camera is not None)
        if cls.needs_images and not (config.goal or self.source.task(0)):
            raise PairError(f"{self.source.path}: no language instruction in the dataset; pass the goal (--goal)")
        self.labeller = labeller if labeller is not None else cls.from_config(config, self.source, self.out)
        self.sampler = PairSampler(self.source.episode_lengths, config.seed, config.segment_length)

    # -- queries --------------------------------------------------------------------------------------------
    def query(self, pair: Pair) -> Query | None:
        """The query for a pair (decoding its two images when used); None when its images are identical."""
        goal = self.config.goal or self.source.task(pair.a.last_index)
        if not self.use_images:
            return Query(pair, goal)
        images = (self.source.image(pair.a.last_index), self.source.image(pair.b.last_index))
        hashes = (image_hash(images[0]), image_hash(images[1]))
        if self.config.drop_identical and hashes[0] == hashes[1]:
            return None
        return Query(pair, goal, images, hashes)

    def record(self, query: Query, answer: Answer) -> dict[str, Any]:
        pair = query.pair
        return {"pair_id": pair.pair_id, "number": pair.number, "a": pair.a.to_dict(), "b": pair.b.to_dict(),
                "image_hashes": list(query.image_hashes) if query.image_hashes else None, "label": answer.label,
                "raw": list(answer.raw), "reason": answer.reason, "detail": answer.extra.get("detail"),
                "prompt_version": self.labeller.prompt_version, "model": self.labeller.model,
                "latency_s": answer.latency_s, "error": answer.error, "attempts": answer.attempts,
                "cached": answer.cached, "backend": self.labeller.name, "goal": query.goal, "time": time.time()}

    def _safe_label(self, query: Query) -> Answer:
        started = time.perf_counter()
        try:
            answer = self.labeller.label(query)
        except Exception as e:  # noqa: BLE001 - one failed query is a -1 record, not the end of the job
            answer = Answer(-1, "error", error=redact(f"{type(e).__name__}: {e}", self.labeller.secrets))
        if not answer.latency_s:
            answer.latency_s = round(time.perf_counter() - started, 4)
        return answer

    # -- running --------------------------------------------------------------------------------------------
    def run(self, progress: bool = True) -> dict[str, Any]:
        """Label until ``pairs`` pairs are answered; returns the report (also written to ``report.json``)."""
        _prepare(self.config, self.out, self.labeller, self.source)
        store = LabelStore(self.out / LABELS_FILE, secrets=self.labeller.secrets)
        started = time.perf_counter()
        try:
            state = self._label_all(store, progress)
        finally:
            store.close()
            self.labeller.close()
        latest = store.latest()
        records = [latest[pid] for pid in state.chosen if pid in latest]
        report = build_report(records, self._oracle_labels(records))
        report["run"] = {"asked": state.asked, "already_answered": state.skipped, "candidates": state.candidates,
                         "dropped_identical": state.dropped_identical,
                         "wall_s": round(time.perf_counter() - started, 3),
                         "backend": self.labeller.name, "model": self.labeller.model,
                         "prompt_version": self.labeller.prompt_version, "labels_file": str(store.path)}
        if len(records) < self.config.pairs:
            report["run"]["warning"] = (f"only {len(records)} of {self.config.pairs} pairs answered "
                                        f"({state.dropped_identical} candidates had identical images)")
        path = self.out / REPORT_FILE
        path.write_text(json.dumps(report, indent=2, sort_keys=True), encoding="utf-8")
        return report

    def _label_all(self, store: LabelStore, progress: bool) -> _Progress:
        from tqdm.auto import tqdm

        c = self.config
        answered = store.latest()
        state = _Progress()
        inflight: dict[Future, Query] = {}
        limit = c.pairs * c.max_candidates_factor
        with ThreadPoolExecutor(max_workers=c.concurrency, thread_name_prefix="label") as pool, \
                tqdm(total=c.pairs, disable=not progress, unit="pair", dynamic_ncols=True, desc="label") as bar:
            try:
                for pair in self.sampler.candidates():
                    if len(state.chosen) >= c.pairs:
                        break
                    if state.candidates >= limit:
                        log.warning("gave up after %d candidate pairs (%d with identical images)", state.candidates,
                                    state.dropped_identical)
                        break
                    state.candidates += 1
                    done = answered.get(pair.pair_id)
                    if done is not None and not (c.retry_errors and done.get("error")):
                        state.chosen.append(pair.pair_id)
                        state.skipped += 1
                        bar.update(1)
                        continue
                    query = self.query(pair)
                    if query is None:
                        state.dropped_identical += 1
                        continue
                    state.chosen.append(pair.pair_id)
                    while len(inflight) >= c.concurrency:
                        self._collect(inflight, store, bar, wait(inflight, return_when=FIRST_COMPLETED).done)
                    inflight[pool.submit(self._safe_label, query)] = query
                    state.asked += 1
                while inflight:
                    self._collect(inflight, store, bar, wait(inflight, return_when=FIRST_COMPLETED).done)
            finally:
                for future in inflight:
                    future.cancel()
        return state

    def _collect(self, inflight: dict[Future, Query], store: LabelStore, bar, done: Iterable[Future]) -> None:
        for future in done:
            query = inflight.pop(future)
            store.append(self.record(query, future.result()))
            bar.update(1)

    def _oracle_labels(self, records: list[Mapping[str, Any]]) -> list[int] | None:
        """Oracle labels for the same pairs, when this is not the oracle and the dataset has its signals."""
        c = self.config
        if c.backend == "oracle" or not c.agreement or not oracle_available(self.source, c.oracle.signals):
            return None
        from robot_irl.label.pairs import FrameRef

        oracle = OracleLabeller(self.source, c.oracle.signals, c.oracle.tolerance)
        return [oracle.compare(FrameRef.from_dict(r["a"]), FrameRef.from_dict(r["b"])) for r in records]


def run_label_job(config: LabelConfig, out_dir: str | Path, progress: bool = True,
                  source: FrameSource | None = None) -> dict[str, Any]:
    """Run (or resume) the labelling job into ``out_dir``; returns the report.

    Bad input raises a ``ValueError`` naming what and where (:class:`~robot_irl.core.config.ConfigError`,
    :class:`~robot_irl.label.pairs.PairError`, the dataset readers' errors).
    """
    return LabelJob(config, out_dir, source).run(progress)


# ---------------------------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------------------------
def build_report(records: list[Mapping[str, Any]], oracle_labels: list[int] | None = None) -> dict[str, Any]:
    """Counts of 0/1/-1, tie rate, reasons, errors, latency and (given oracle labels) agreement."""
    n = len(records)
    labels = [int(r["label"]) for r in records]
    counts = {str(k): labels.count(k) for k in (0, 1, -1)}
    live = [float(r.get("latency_s") or 0.0) for r in records if not r.get("cached")]
    errors = Counter(str(r["error"])[:120] for r in records if r.get("error"))
    report: dict[str, Any] = {
        "pairs": n, "labels": counts, "tie_rate": round(counts["-1"] / n, 4) if n else None,
        "reasons": dict(Counter(str(r.get("reason")) for r in records)),
        "failed": sum(1 for r in records if r.get("error")), "errors": dict(errors.most_common(10)),
        "cached": sum(1 for r in records if r.get("cached")),
        "mean_latency_s": round(sum(live) / len(live), 4) if live else None,
        "models": sorted({str(r.get("model")) for r in records}),
        "prompt_versions": sorted({str(r.get("prompt_version")) for r in records}),
    }
    if oracle_labels is not None:
        report["agreement"] = agreement(labels, oracle_labels)
    return report


def agreement(labels: list[int], oracle: list[int]) -> dict[str, Any]:
    """How a labeller's labels compare with oracle labels on the same pairs."""
    if len(labels) != len(oracle):
        raise ValueError(f"{len(labels)} labels but {len(oracle)} oracle labels")
    decisive = [(x, o) for x, o in zip(labels, oracle) if x in (0, 1) and o in (0, 1)]
    agree = sum(1 for x, o in decisive if x == o)
    oracle_ties = [x for x, o in zip(labels, oracle) if o == -1]
    return {
        "pairs": len(labels), "both_decisive": len(decisive), "agree": agree,
        "accuracy": round(agree / len(decisive), 4) if decisive else None,
        "exact_match": round(sum(1 for x, o in zip(labels, oracle) if x == o) / len(labels), 4) if labels else None,
        "oracle_labels": {str(k): oracle.count(k) for k in (0, 1, -1)},
        "decisive_on_oracle_ties": sum(1 for x in oracle_ties if x != -1),
        "confusion": dict(sorted(Counter(f"{x}/{o}" for x, o in zip(labels, oracle)).items())),
    }


def format_report(report: Mapping[str, Any]) -> str:
    """A readable table of :func:`build_report`'s output."""
    n = report["pairs"]
    counts = report["labels"]
    lines = [f"pairs        {n}" + (f" (asked now {report['run']['asked']}, already answered "
                                     f"{report['run']['already_answered']}, dropped identical "
                                     f"{report['run']['dropped_identical']})" if "run" in report else "")]
    for key, name in (("0", "0 (a/Image 1)"), ("1", "1 (b/Image 2)"), ("-1", "-1 (tie/unsure)")):
        share = f"{100 * counts[key] / n:5.1f}%" if n else "  -"
        lines.append(f"  {name:<16} {counts[key]:>6}  {share}")
    lines.append(f"tie rate     {report['tie_rate']}")
    lines.append("reasons      " + ", ".join(f"{k} {v}" for k, v in sorted(report["reasons"].items())))
    if report["failed"]:
        lines.append(f"failed       {report['failed']}")
        lines.extend(f"  {count:>4} x {text}" for text, count in report["errors"].items())
    lines.append(f"latency      mean {report['mean_latency_s']} s; cached {report['cached']}")
    if "agreement" in report:
        a = report["agreement"]
        lines.append(f"vs oracle    accuracy {a['accuracy']} on {a['both_decisive']} pairs where both decided; "
                     f"exact match {a['exact_match']}; oracle ties {a['oracle_labels']['-1']}")
        lines.append("  confusion (label/oracle): " + ", ".join(f"{k} {v}" for k, v in a["confusion"].items()))
    if "run" in report and report["run"].get("warning"):
        lines.append(f"warning      {report['run']['warning']}")
    return "\n".join(lines)


__all__ = ["LabelConfig", "LabelJob", "agreement", "build_report", "format_report", "run_label_job"]
