"""A collection session in process: an operator works, an adversary perturbs (ADC) or not (traditional), and every
frame goes to a LeRobot dataset with its annotations.

:func:`collect` runs the episodes through :func:`robot_irl.runner.run_episode` (``annotate=True``), so each frame
carries the action actually sent, the instruction in force (LeRobot's per-frame ``task``), ``next.reward``,
``next.success`` and the collection annotations of :mod:`robot_irl.collect.annotations`. A run folder ``out`` gets
``dataset/`` and ``report.json`` (a :class:`CollectionReport`).

Episode control is :class:`EpisodeControl`, a small pure state machine shared by every front end: the in-process
loop here, the keyboard operator and the web console call the same methods (start, end and keep, re-record, stop,
mark success or failure, also after saving). A mark is written into the dataset's sidecar
(``meta/robot_irl/episodes.jsonl``) by :func:`robot_irl.data.lerobot_io.set_episode_success`.
"""
from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robot_irl.core.contracts import Policy, RobotDriver, Teleoperator
from robot_irl.core.features import Feature
from robot_irl.runner import EpisodeResult, Perturber, run_episode

REPORT_FILE = "report.json"
DATASET_DIR = "dataset"
MODES = ("adc", "traditional")


# ---------------------------------------------------------------------------------------------------------------
# episode control
# ---------------------------------------------------------------------------------------------------------------
class ControlError(RuntimeError):
    """An episode-control call that does not fit the current state (e.g. saving while nothing is recorded)."""


class EpisodeControl:
    """Episode control of a collection session, as a pure state machine (thread-safe; no I/O).

    States: ``idle`` (between episodes) -> ``recording`` -> ``idle`` ... -> ``stopped``. The recording loop calls
    :meth:`start`, checks :attr:`end_requested` every tick and calls :meth:`finish` when the episode loop ends; it
    then saves or discards the episode as :meth:`finish` says and reports saves with :meth:`saved`. Front ends
    (keys in LeRobot's convention: right arrow = :meth:`request_save`, left arrow = :meth:`request_rerecord`,
    Esc = :meth:`request_stop`) call the ``request_*`` methods and :meth:`mark` at any time; the loop applies pending
    marks (:meth:`take_marks`) to the dataset.

    ``episodes``: how many episodes to save; ``first_index``: the dataset index of the first one (after a resume).
    """

    def __init__(self, episodes: int, first_index: int = 0) -> None:
        if episodes < 0:
            raise ControlError(f"EpisodeControl: episodes must be >= 0, got {episodes}")
        self.episodes = int(episodes)
        self.first_index = int(first_index)
        self.state: Literal["idle", "recording", "stopped"] = "idle"
        self.successes: dict[int, bool | None] = {}  # saved episode index -> success flag (after marks)
        self.discarded = 0
        self._request: str | None = None
        self._marks: list[tuple[int, bool | None]] = []
        self._lock = threading.Lock()

    @property
    def current_index(self) -> int:
        """Dataset index of the episode being recorded (or the next one)."""
        return self.first_index + len(self.successes)

    @property
    def done(self) -> bool:
        """Stopped, or every requested episode saved."""
        return self.state == "stopped" or len(self.successes) >= self.episodes

    def start(self) -> int:
        """Begin recording the next episode; returns its dataset index."""
        with self._lock:
            if self.state != "idle" or self.done:
                raise ControlError(f"cannot start an episode: state is {self.state!r}, "
                                   f"{len(self.successes)}/{self.episodes} saved")
            self.state, self._request = "recording", None
            return self.current_index

    def _ask(self, what: str) -> None:
        with self._lock:
            if self.state == "recording":
                self._request = what
            elif what == "stop":
                self.state = "stopped"

    def request_save(self) -> None:
        """End the episode now and keep it (the operator says it is done)."""
        self._ask("save")

    def request_rerecord(self) -> None:
        """End the episode now, discard it and record it again."""
        self._ask("rerecord")

    def request_stop(self) -> None:
        """End the session: the episode being recorded is kept, no further one starts."""
        self._ask("stop")

    @property
    def end_requested(self) -> bool:
        """A front end asked to end the episode being recorded."""
        return self._request is not None

    def finish(self) -> Literal["save", "discard"]:
        """The episode loop ended (timeout, success or request): whether to save or discard it."""
        with self._lock:
            if self.state != "recording":
                raise ControlError(f"finish() without an episode being recorded (state {self.state!r})")
            request, self._request = self._request, None
            self.state = "stopped" if request == "stop" else "idle"
            if request == "rerecord":
                self.discarded += 1
                return "discard"
            return "save"

    def saved(self, index: int, success: bool | None) -> None:
        """The loop saved episode ``index`` with this success flag."""
        with self._lock:
            if index != self.current_index:
                raise ControlError(f"saved episode {index}, expected {self.current_index}")
            self.successes[index] = success

    def mark(self, index: int, success: bool | None) -> tuple[int, bool | None]:
        """Mark saved episode ``index`` a success (True), failure (False) or unknown (None); also after saving.

        Returns the change; the loop writes it to the dataset (:meth:`take_marks`).
        """
        with self._lock:
            if index not in self.successes:
                raise ControlError(f"cannot mark episode {index}: saved episodes are {sorted(self.successes)}")
            change = (int(index), None if success is None else bool(success))
            self.successes[index] = change[1]
            self._marks.append(change)
            return change

    def take_marks(self) -> list[tuple[int, bool | None]]:
        """Marks not yet written to the dataset (and forget them)."""
        with self._lock:
            marks, self._marks = self._marks, []
            return marks


# ---------------------------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class EpisodeReport:
    index: int
    seed: int | None
    success: bool | None
    length: int
    perturbations: dict[str, int] = field(default_factory=dict)  # kind -> count
    instruction_changes: int = 0
    dropped_frames: int = 0  # control periods without a frame (real-time sessions; in process every tick is a frame)
    tasks: list[str] = field(default_factory=list)  # the instructions in force, in order
    duration_s: float = 0.0


@dataclass
class CollectionReport:
    mode: str
    operator: str = ""
    adversary: str = ""
    dataset: str | None = None
    episodes: list[EpisodeReport] = field(default_factory=list)
    discarded: int = 0

    @property
    def success_rate(self) -> float:
        flags = [e.success for e in self.episodes]
        return float(np.mean([bool(f) for f in flags])) if flags else 0.0

    def perturbation_totals(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for e in self.episodes:
            total.update(e.perturbations)
        return dict(sorted(total.items()))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["success_rate"] = self.success_rate
        d["perturbation_totals"] = self.perturbation_totals()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CollectionReport:
        episodes = [EpisodeReport(**e) for e in d.get("episodes", [])]
        return cls(d.get("mode", ""), d.get("operator", ""), d.get("adversary", ""), d.get("dataset"), episodes,
                   int(d.get("discarded", 0)))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> CollectionReport:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def format_report(self) -> str:
        """A text table: one row per episode, then totals."""
        rows = [f"collection ({self.mode}; operator {self.operator or '?'}, adversary {self.adversary or 'none'})",
                f"{'ep':>4} {'seed':>6} {'success':>7} {'length':>6} {'instr':>5} {'dropped':>7}  perturbations"]
        for e in self.episodes:
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(e.perturbations.items())) or "-"
            flag = {True: "yes", False: "no", None: "?"}[e.success]
            rows.append(f"{e.index:>4} {e.seed if e.seed is not None else '-':>6} {flag:>7} {e.length:>6} "
                        f"{e.instruction_changes:>5} {e.dropped_frames:>7}  {kinds}")
        n = len(self.episodes)
        wins = sum(bool(e.success) for e in self.episodes)
        totals = ", ".join(f"{k} {v}" for k, v in self.perturbation_totals().items()) or "none"
        frames = sum(e.length for e in self.episodes)
        rows.append(f"success {wins}/{n} ({100 * self.success_rate:.0f}%), frames {frames}, "
                    f"discarded {self.discarded}, perturbations: {totals}")
        if self.dataset:
            rows.append(f"dataset {self.dataset}")
        return "\n".join(rows)


def _episode_report(result: EpisodeResult, seed: int | None, record: dict | None, realtime: bool) -> EpisodeReport:
    """The report row of an episode. Faster than real time every control tick is recorded, so no frame is dropped
    (the sidecar's ``dropped_frames``, computed from clock gaps, then only says that some ticks were slow)."""
    kinds = Counter(p["kind"] for p in result.perturbations)
    return EpisodeReport(
        index=result.index if record is None else int(record["episode_index"]), seed=seed,
        success=result.success if record is None else record.get("success"),
        length=result.steps if record is None else int(record["length"]),
        perturbations=dict(sorted(kinds.items())), instruction_changes=int(kinds.get("instruction", 0)),
        dropped_frames=int(record.get("dropped_frames", 0)) if record is not None and realtime else 0,
        tasks=list(result.tasks),
        duration_s=round(result.duration_s, 3))


# ---------------------------------------------------------------------------------------------------------------
# recording
# ---------------------------------------------------------------------------------------------------------------
def collection_features() -> dict[str, Feature]:
    """Extra per-frame features of a collection dataset: reward, success and the annotations."""
    from robot_irl.collect.annotations import annotation_features

    return {"next.reward": Feature("float32", (1,)), "next.success": Feature("bool", (1,)), **annotation_features()}


class _SessionSink:
    """The recorder as the runner sees it, except that saving is deferred to the session's episode control and
    camera streams that are not recorded are dropped from each observation."""

    def __init__(self, recorder, observation_keys: list[str]) -> None:
        self.recorder = recorder
        self._keys = observation_keys
        self.metadata: dict | None = None

    def start_episode(self) -> None:
        self.recorder.start_episode()
        self.metadata = None

    def add_frame(self, observation: dict, action_sent: np.ndarray, task: str, timestamp: float,
                  extras: dict | None = None) -> None:
        self.recorder.add_frame({k: observation[k] for k in self._keys}, action_sent, task, timestamp, extras)

    def save_episode(self, metadata: dict | None = None) -> None:
        self.metadata = dict(metadata or {})

    def commit(self, extra: dict) -> dict:
        return self.recorder.save_episode({**(self.metadata or {}), **extra})

    def discard(self) -> None:
        self.recorder.discard_episode()


class _TeleopPolicy(Policy):
    """A teleoperator without ``act`` seen as a policy (``get_action`` each tick)."""

    def __init__(self, operator: Teleoperator) -> None:
        self.operator = operator

    @property
    def phase(self) -> str:
        return str(getattr(self.operator, "phase", "") or "")

    def reset(self, seed: int | None = None) -> None:
        if hasattr(self.operator, "reset"):
            self.operator.reset(seed)

    def act(self, observation: dict) -> np.ndarray:
        return self.operator.get_action(observation)


def _recorded_observation(driver: RobotDriver, cameras: Sequence[str] | None) -> dict[str, Feature]:
    feats = driver.observation_features
    have = [k.removeprefix("observation.images.") for k, f in feats.items() if f.is_image]
    if cameras is None:
        return dict(feats)
    missing = [c for c in cameras if c not in have]
    if missing:
        raise ValueError(f"collect: cameras {missing} are not cameras of driver {driver.name} (it has {have}); "
                         f"configure them on the driver")
    keep = {f"observation.images.{c}" for c in cameras}
    return {k: f for k, f in feats.items() if not f.is_image or k in keep}


def _name(obj: Any) -> str:
    return str(getattr(obj, "name", type(obj).__name__)) if obj is not None else "none"


def collect(driver: RobotDriver, operator: Teleoperator | Policy, adversary: Perturber | None, episodes: int,
            max_steps: int, out: str | Path | None = None, mode: str = "adc", seed: int = 0,
            cameras: Sequence[str] | None = None, resume: bool = False, progress: bool = True,
            stop_on_success: bool = True, hold_after_success: int = 10, overwrite: bool = False,
            realtime: bool = False, control: EpisodeControl | None = None,
            repo_id: str | None = None) -> CollectionReport:
    """Collect ``episodes`` episodes of at most ``max_steps`` ticks; record them under ``out`` (a run folder).

    ``mode="adc"``: ``adversary`` perturbs every episode; ``mode="traditional"``: no adversary (it must be None).
    Episode ``i`` of the dataset uses seed ``seed + i`` (a resumed run continues the seeds). ``cameras``: the
    driver's cameras to record (None: all of them). With ``stop_on_success`` an episode ends
    ``hold_after_success`` ticks after success. ``resume`` appends to ``out/dataset`` and its report; ``overwrite``
    replaces them. ``control`` lets a front end drive the episodes (default: save every episode). The driver is
    connected (and disconnected at the end) when it is not connected yet.
    """
    from tqdm.auto import tqdm

    if mode not in MODES:
        raise ValueError(f"collect: mode must be one of {list(MODES)}, got {mode!r}")
    if mode == "traditional" and adversary is not None:
        raise ValueError("collect: mode='traditional' runs without an adversary; pass adversary=None")
    if mode == "adc" and adversary is None:
        raise ValueError("collect: mode='adc' needs an adversary (ADVERSARIES: scripted, none, console)")
    if episodes < 1 or max_steps < 1:
        raise ValueError(f"collect: episodes and max_steps must be >= 1, got {episodes} and {max_steps}")
    policy = operator if hasattr(operator, "act") else _TeleopPolicy(operator)
    connected_here = not driver.is_connected
    if connected_here:
        driver.connect()
    run_dir = Path(out) if out is not None else None
    report = CollectionReport(mode, _name(operator), _name(adversary))
    recorder, sink = None, None
    try:
        if run_dir is not None:
            recorder, report = _open_recording(driver, run_dir, report, cameras, resume, overwrite, repo_id)
            sink = _SessionSink(recorder, list(recorder.observation_features))
        control = control or EpisodeControl(episodes, recorder.num_episodes if recorder else 0)
        with tqdm(total=episodes * max_steps, disable=not progress, unit="step", dynamic_ncols=True,
                  mininterval=0.5) as bar:
            while not control.done:
                index = control.start()
                result = run_episode(driver, policy, max_steps, index=index, seed=seed + index, sink=sink,
                                     stop_on_success=stop_on_success, realtime=realtime,
                                     on_step=lambda *_: bar.update(1), adversary=adversary, annotate=True,
                                     hold_after_success=hold_after_success,
                                     should_stop=lambda: control.end_requested)
                bar.update(max_steps - result.steps)
                _finish_episode(control, result, seed + index, sink, report, mode, realtime)
                _apply_marks(control, report, run_dir)
                bar.set_postfix(success=f"{sum(bool(e.success) for e in report.episodes)}/{len(report.episodes)}")
                if run_dir is not None:
                    report.save(run_dir / REPORT_FILE)
    finally:
        if recorder is not None:
            recorder.finalize()
        if connected_here:
            driver.disconnect()
    return report


def _open_recording(driver: RobotDriver, run_dir: Path, report: CollectionReport, cameras, resume: bool,
                    overwrite: bool, repo_id: str | None):
    from robot_irl.data.lerobot_io import LeRobotRecorder

    run_dir.mkdir(parents=True, exist_ok=True)
    recorder = LeRobotRecorder(run_dir / DATASET_DIR, repo_id=repo_id or f"robot_irl/{run_dir.name}",
                               fps=driver.fps, observation_features=_recorded_observation(driver, cameras),
                               action_features=driver.action_features, robot_type=driver.name, use_videos=True,
                               extra_features=collection_features(), overwrite=overwrite, resume=resume)
    previous = run_dir / REPORT_FILE
    if resume and previous.is_file():
        old = CollectionReport.load(previous)
        report.episodes = [e for e in old.episodes if e.index < recorder.num_episodes]
        report.discarded = old.discarded
    report.dataset = str(run_dir / DATASET_DIR)
    return recorder, report


def _finish_episode(control: EpisodeControl, result: EpisodeResult, seed: int, sink: _SessionSink | None,
                    report: CollectionReport, mode: str, realtime: bool) -> None:
    if control.finish() == "discard":
        if sink is not None:
            sink.discard()
        report.discarded += 1
        return
    record = None
    if sink is not None:
        kinds = Counter(p["kind"] for p in result.perturbations)
        record = sink.commit({"mode": mode, "operator": report.operator, "adversary": report.adversary,
                              "instruction_changes": int(kinds.get("instruction", 0)), "tasks": result.tasks})
    episode = _episode_report(result, seed, record, realtime)
    control.saved(episode.index, episode.success)
    report.episodes.append(episode)


def _apply_marks(control: EpisodeControl, report: CollectionReport, run_dir: Path | None) -> None:
    for index, success in control.take_marks():
        mark_episode(run_dir, index, success, report)


def mark_episode(run_dir: str | Path | None, index: int, success: bool | None,
                 report: CollectionReport | None = None) -> None:
    """Mark saved episode ``index`` of a run a success or failure: in the dataset sidecar and in ``report.json``."""
    from robot_irl.data.lerobot_io import set_episode_success

    if run_dir is not None:
        set_episode_success(Path(run_dir) / DATASET_DIR, index, success)
        path = Path(run_dir) / REPORT_FILE
        if report is None and path.is_file():
            report = CollectionReport.load(path)
    if report is not None:
        for e in report.episodes:
            if e.index == index:
                e.success = success
        if run_dir is not None:
            report.save(Path(run_dir) / REPORT_FILE)
