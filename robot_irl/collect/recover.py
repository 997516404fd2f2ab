"""Frames from the driver node's topics, and crash recovery of an interrupted episode from its MCAP bag.

Frame pairing (:class:`FrameAssembler`, shared by the recorder node and :func:`recover`). The driver node publishes,
each tick ``k``: ``action_sent`` (the action of tick ``k``), the ``observation`` bundle (the observation *after*
that action, with ``status:step`` = k, reward and success), then the camera images of that same observation. Frame
``k`` of a dataset is therefore

* observation: the bundle of tick ``k-1`` plus the latest camera images when bundle ``k`` arrives (those of tick
  ``k-1``; an image that did not advance since the previous frame counts as *late*),
* action: ``action_sent`` of tick ``k`` (what the robot received after the safety clamp),
* task: the instruction in force, timestamp: the wall time the observation arrived,
* ``next.reward`` / ``next.success``: bundle ``k``'s status, and the collection annotations with the perturbation
  events that arrived since the previous frame.

Gaps in ``status:step`` are *dropped* ticks (the reader did not drain fast enough; the frame across the gap is
skipped, never mispaired); a step that goes back means the driver was reset, and the frame across it is skipped. A
bundle whose ``action_sent`` did not arrive before it is counted *late* and skipped (the node publishes the action
first; only a reordering between topics does this, or a disarmed robot, which is sent nothing).

Recovery (:func:`recover`): the recorder writes one bag per episode (:mod:`robot_irl.data.bag`), starting with
a ``recorder/marker`` message (the driver parameters) and the instruction in force. Pairing restarts at the episode
start, live and in a replay alike (the first bundle only provides the first observation), so a bag replays into
exactly the frames the recorder made. A bag without ``metadata.yaml`` is an episode that was never saved (the
recorder was killed); :func:`recover` replays it through the same :class:`FrameAssembler` and appends the frames as
a new episode of the dataset (features checked by ``LeRobotRecorder(resume=True)``), marked ``recovered: true`` in the
sidecar.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.collect.annotations import annotation_features, frame_annotations
from robot_irl.core.features import Feature
from robot_irl.core.perturbation import Perturbation, PerturbationError

log = logging.getLogger(__name__)

MARKER_TOPIC = "recorder/marker"
RECOVERED_FILE = "recovered.json"
RECOVERING_FILE = "recovering.json"  # written before appending, removed once done
IMAGE_PREFIX = "observation.images."
#: message type of each role on the driver node's topics (and the recorder's marker)
ROLE_TYPES = {"observation": "std_msgs/msg/Float64MultiArray", "action_sent": "std_msgs/msg/Float64MultiArray",
              "instruction": "std_msgs/msg/String", "perturbation_events": "std_msgs/msg/String",
              MARKER_TOPIC: "std_msgs/msg/String", "image": "sensor_msgs/msg/Image"}


class RecoverError(RuntimeError):
    """A bag that cannot be recovered into the dataset (the message names the bag and why)."""


# -- features ------------------------------------------------------------------------------------------------------

def reward_features() -> dict[str, Feature]:
    return {"next.reward": Feature("float32", (1,)), "next.success": Feature("bool", (1,))}


def collection_features(driver) -> tuple[dict[str, Feature], dict[str, Feature], dict[str, Feature]]:
    """(observation, action, extra) features of a collection dataset for a (never connected) driver."""
    return (dict(driver.observation_features), dict(driver.action_features),
            {**reward_features(), **annotation_features()})


def build_driver(params: Mapping[str, Any]):
    """The driver the driver node runs, built from its parameters but never connected (features only)."""
    from robot_irl.drivers import make_driver
    from robot_irl.graphs import load_mapping

    return make_driver(str(params.get("driver") or "sim"), load_mapping(params.get("driver_config") or ""),
                       backend=str(params.get("backend") or "") or None)


# -- topic roles -------------------------------------------------------------------------------------------------

def topic_role(topic: str) -> tuple[str, str] | None:
    """``(role, camera)`` of a (namespaced) topic: observation, action_sent, image, ... ; None if not ours."""
    parts = topic.strip("/").split("/")
    if len(parts) >= 3 and parts[-3] == "camera" and parts[-1] == "image_raw":
        return "image", parts[-2]
    if "/".join(parts[-2:]) == MARKER_TOPIC:
        return MARKER_TOPIC, ""
    if parts[-1] in ("observation", "action_sent", "instruction", "perturbation_events"):
        return parts[-1], ""
    return None


# -- pairing -------------------------------------------------------------------------------------------------------

@dataclass
class Frame:
    """One dataset frame, ready for ``LeRobotRecorder.add_frame``."""

    observation: dict[str, np.ndarray]
    action: np.ndarray
    task: str
    timestamp: float
    extras: dict[str, Any]
    perturbations: list[Perturbation] = field(default_factory=list)
    step: int = -1


@dataclass
class PairingStats:
    frames: int = 0
    dropped: int = 0  # ticks missing from the status:step sequence
    late: int = 0  # frames whose image or action came too late (skipped or stale image)
    resets: int = 0


class FrameAssembler:
    """Turns the driver node's messages (already decoded to arrays) into :class:`Frame` objects.

    Feed every message in arrival order; :meth:`on_bundle` and :meth:`on_action` return a frame when one is
    complete. ``observation_features`` tells which vectors and camera images a frame holds.
    """

    def __init__(self, observation_features: Mapping[str, Feature], default_task: str = "") -> None:
        self.vector_keys = [k for k, f in observation_features.items() if not f.is_image]
        self.image_keys = [k for k, f in observation_features.items() if f.is_image]
        self.default_task = default_task
        self.instruction = ""
        self.stats = PairingStats()
        self._images: dict[str, tuple[float, np.ndarray]] = {}
        self._used_image_stamps: dict[str, float] = {}
        self._prev: tuple[dict, float] | None = None
        self._action: np.ndarray | None = None
        self._events: list[Perturbation] = []

    # -- inputs ---------------------------------------------------------------------------------------------
    def on_instruction(self, text: str) -> None:
        self.instruction = str(text)

    def on_event(self, event: Mapping[str, Any]) -> None:
        """A ``perturbation_events`` record; refused perturbations (``{"error": ...}``) are not annotations."""
        if "error" in event:
            return
        try:
            self._events.append(Perturbation.from_dict(dict(event)))
        except PerturbationError as e:
            log.warning("ignoring a malformed perturbation event: %s", e)

    def on_image(self, camera: str, image: np.ndarray, stamp: float) -> None:
        self._images[f"{IMAGE_PREFIX}{camera}"] = (float(stamp), image)

    def on_action(self, action: np.ndarray) -> None:
        self._action = np.asarray(action, np.float32)

    def on_bundle(self, bundle: Mapping[str, Any], wall: float) -> Frame | None:
        """Bundle of tick k (parsed with ``conversions.bundle_from_msg``) arriving at wall time ``wall``."""
        status = bundle.get("status", {})
        step = int(status.get("step", -1))
        prev, action = self._prev, self._action
        self._action = None
        self._prev = (dict(bundle), float(wall))
        if prev is None:
            return None
        prev_step = int(prev[0].get("status", {}).get("step", -1))
        if step >= 0 and prev_step >= 0:
            if step <= prev_step:
                self.stats.resets += 1
                return None  # the driver was reset between the two bundles: no frame spans a reset
            if step > prev_step + 1:
                self.stats.dropped += step - prev_step - 1
                return None  # tick k-1's bundle was lost: the observation before this action is unknown
        if action is None:
            self.stats.late += 1  # action_sent of this tick did not arrive before its bundle
            return None
        return self._make(action, prev, status, step)

    def restart(self) -> None:
        """Start pairing afresh (an episode starts): the next bundle only provides the first observation."""
        self._prev, self._action, self._events = None, None, []
        self._images, self._used_image_stamps = {}, {}  # as a replay of the episode's bag starts: no image yet
        self.stats = PairingStats()

    # -- output ---------------------------------------------------------------------------------------------
    def _make(self, action: np.ndarray, prev: tuple[dict, float], status: Mapping[str, float],
              step: int) -> Frame | None:
        bundle, wall = prev
        images = self._images
        features = bundle.get("features", {})
        missing = [k for k in self.vector_keys if k not in features]
        missing += [k for k in self.image_keys if k not in images]
        if missing:
            self.stats.late += 1
            return None
        for key in self.image_keys:
            stamp = images[key][0]
            if self._used_image_stamps.get(key) == stamp:
                self.stats.late += 1  # the camera did not advance since the previous frame
            self._used_image_stamps[key] = stamp
        observation = {k: np.asarray(features[k], np.float32) for k in self.vector_keys}
        observation.update({k: images[k][1] for k in self.image_keys})
        events, self._events = self._events, []
        extras = {"next.reward": np.array([float(status.get("reward", 0.0))], np.float32),
                  "next.success": np.array([bool(status.get("success", 0.0))]),
                  **frame_annotations(events)}
        self.stats.frames += 1
        return Frame(observation, action, self.instruction or self.default_task or "unspecified task", wall, extras,
                     events, step)


def feed(assembler: FrameAssembler, role: str, camera: str, msg: Any, wall: float) -> Frame | None:
    """Decode one message of ``role`` (an rclpy or a rosbags message: same fields) into ``assembler``."""
    from robot_irl.ros import conversions as conv  # message conversions only (no rclpy)

    if role == "observation":
        return assembler.on_bundle(conv.bundle_from_msg(msg), wall)
    if role == "action_sent":
        assembler.on_action(np.asarray(msg.data, np.float32))
    elif role == "image":
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        assembler.on_image(camera, conv.image_from_msg(msg), stamp)
    elif role == "instruction":
        assembler.on_instruction(msg.data)
    elif role == "perturbation_events":
        try:
            assembler.on_event(json.loads(msg.data))
        except json.JSONDecodeError:
            log.warning("ignoring a perturbation event that is not JSON: %r", msg.data[:80])
    return None


# -- recovery ------------------------------------------------------------------------------------------------------

def interrupted_bags(bag_dir: str | Path) -> list[Path]:
    """Bags under ``bag_dir`` that were never closed (no ``metadata.yaml``) and not recovered yet."""
    bag_dir = Path(bag_dir)
    if not bag_dir.is_dir():
        return []
    return sorted(p for p in bag_dir.iterdir() if p.is_dir() and any(p.glob("*.mcap"))
                  and not (p / "metadata.yaml").exists() and not (p / RECOVERED_FILE).exists())


def bag_folder(path: str | Path) -> Path:
    """The bag folder of ``path``: the folder itself, or the folder holding a given ``.mcap`` file."""
    path = Path(path)
    if path.is_file() and path.suffix == ".mcap":
        return path.parent
    if path.is_dir():
        return path
    if not path.exists():
        raise RecoverError(f"bag {path} does not exist")
    raise RecoverError(f"bag {path}: expected a bag folder (episode_..._<time>/) or the .mcap file in it")


def replay(bag_path: str | Path) -> tuple[dict, list[Frame], PairingStats]:
    """(start marker, frames, pairing stats) of a bag, paired exactly as the recorder pairs live messages."""
    from robot_irl.data.bag import deserialize, read_bag

    marker: dict | None = None
    assembler: FrameAssembler | None = None
    frames: list[Frame] = []
    for message in read_bag(bag_folder(bag_path)):
        role = topic_role(message.topic)
        if role is None:
            continue
        msg = deserialize(message)
        if role[0] == MARKER_TOPIC:
            event = json.loads(msg.data)
            if event.get("event") == "start_episode" and marker is None:
                marker = event
                driver = build_driver(marker.get("driver_params", {}))
                assembler = FrameAssembler(driver.observation_features)
            continue
        if assembler is None:
            continue  # nothing before the start marker belongs to the episode
        frame = feed(assembler, role[0], role[1], msg, message.log_time * 1e-9)
        if frame is not None:
            frames.append(frame)
    if marker is None or assembler is None:
        raise RecoverError(f"bag {bag_path} has no start_episode marker on */{MARKER_TOPIC}: not a recorder bag")
    return marker, frames, assembler.stats


@dataclass
class RecoverResult:
    """What :func:`recover` did: ``recovered`` (appended now), ``completed`` (an earlier run had appended the episode
    but died before recording it; its record was written now) or ``already`` (nothing to do)."""

    bag: Path
    dataset: Path
    episode_index: int
    frames: int
    status: str

    def message(self) -> str:
        what = {"recovered": f"recovered {self.frames} frames from {self.bag} into {self.dataset} as episode "
                             f"{self.episode_index}",
                "completed": f"completed an interrupted recovery: {self.bag} is episode {self.episode_index} of "
                             f"{self.dataset} ({self.frames} frames)",
                "already": f"{self.bag} was already recovered: episode {self.episode_index} of {self.dataset} "
                           f"({self.frames} frames); nothing to do"}
        return what[self.status]


def bag_id_of(record: Mapping[str, Any]) -> str:
    """The bag (folder name, unique per episode) a sidecar record came from; '' if none."""
    meta = record.get("metadata") or {}
    return str(meta.get("bag_id") or (Path(meta["bag"]).name if meta.get("bag") else ""))


def recover(bag_path: str | Path, dataset_root: str | Path, force: bool = False) -> RecoverResult:
    """Append the episode in ``bag_path`` (a bag folder or its ``.mcap`` file) to the dataset at ``dataset_root``.

    Idempotent, whichever form the path takes: the episode's identity is its bag's folder name, stored as
    ``metadata.bag_id`` in the dataset's sidecar record; a bag whose episode is in the dataset already (recovered,
    or saved by the recorder) is never appended again (``force`` appends anyway). Never half-done: before
    appending, ``recovering.json`` in the bag records the dataset's episode count and the episode's record; a run
    that dies between LeRobot's save and the sidecar record is completed by the next one (the dataset then has one
    episode more than records, of the bag's length), and ``recovered.json`` (written atomically last) marks the bag
    done for ``--list``. The dataset is opened with ``LeRobotRecorder(resume=True)``: its features, fps and robot
    type must match the bag's driver, else nothing is written.
    """
    from robot_irl.data.lerobot_io import EPISODES_SIDECAR, LeRobotRecorder, read_jsonl

    bag = bag_folder(bag_path)
    root = Path(dataset_root)
    records = read_jsonl(root / EPISODES_SIDECAR)
    mine = [r for r in records if bag_id_of(r) == bag.name]
    if mine and not force:
        record = mine[-1]
        if not (record.get("metadata") or {}).get("recovered"):
            raise RecoverError(f"bag {bag} is episode {record['episode_index']} of {root}, which the recorder saved; "
                               f"nothing to recover (--force appends it again)")
        _mark_done(bag, root, record)
        return RecoverResult(bag, root, int(record["episode_index"]), int(record["length"]), "already")
    done = _read_json(bag / RECOVERED_FILE)
    if done is not None and not force and _same_path(done.get("dataset"), root) is False:
        raise RecoverError(f"bag {bag} was already recovered into {done.get('dataset')} (episode "
                           f"{done.get('episode_index')}); --force appends it to {root} too")
    marker, frames, stats = replay(bag)
    if not frames:
        raise RecoverError(f"bag {bag} holds no complete frame to recover")
    metadata = {"recovered": True, "bag": str(bag), "bag_id": bag.name,
                "recorded_episode_index": marker.get("episode_index"), "dropped_frames_seen": stats.dropped,
                "late_frames": stats.late, "perturbations": [p for f in frames for p in f.perturbations]}
    driver = build_driver(marker.get("driver_params", {}))
    completed = _complete_interrupted(bag, root, records, frames, metadata, driver.fps) if not force else None
    if completed is not None:
        return completed
    obs_f, act_f, extra_f = collection_features(driver)
    recorder = LeRobotRecorder(root, marker.get("repo_id") or f"local/{root.name}",
                               int(driver.fps), obs_f, act_f, robot_type=driver.name,
                               use_videos=bool(marker.get("use_videos", True)), extra_features=extra_f, resume=True,
                               vcodec=str(marker.get("vcodec") or "libsvtav1"))
    try:
        _write_json(bag / RECOVERING_FILE, {"dataset": str(root.resolve()), "episodes_before": recorder.num_episodes,
                                            "records_before": len(records), "frames": len(frames)})
        recorder.start_episode()
        for f in frames:
            recorder.add_frame(f.observation, f.action, f.task, f.timestamp, f.extras)
        record = recorder.save_episode(metadata)
    finally:
        recorder.finalize()
    _mark_done(bag, root, record)
    return RecoverResult(bag, root, int(record["episode_index"]), len(frames), "recovered")


def _complete_interrupted(bag: Path, root: Path, records: list[dict], frames: list[Frame], metadata: dict,
                          fps: float) -> RecoverResult | None:
    """An earlier run that LeRobot-saved the episode but died before its sidecar record: write the record now."""
    from robot_irl.data.lerobot_io import (
        EPISODES_SIDECAR,
        append_record,
        episode_record,
        read_episodes_meta,
        task_changes_of,
    )

    progress = _read_json(bag / RECOVERING_FILE)
    if progress is None or _same_path(progress.get("dataset"), root) is False:
        return None
    episodes = read_episodes_meta(root)
    if not (len(records) == int(progress["records_before"]) == int(progress["episodes_before"])
            and len(episodes) == len(records) + 1 and int(episodes[-1]["length"]) == len(frames)):
        return None  # the earlier run did not get as far as LeRobot's save: append afresh
    success = any(bool(np.asarray(f.extras["next.success"]).any()) for f in frames)
    record = episode_record(int(episodes[-1]["episode_index"]), [f.timestamp for f in frames],
                            task_changes_of([f.task for f in frames]), success, dict(metadata), fps)
    record = json.loads(append_record(root / EPISODES_SIDECAR, record))
    _mark_done(bag, root, record)
    return RecoverResult(bag, root, int(record["episode_index"]), len(frames), "completed")


def _mark_done(bag: Path, root: Path, record: Mapping[str, Any]) -> None:
    _write_json(bag / RECOVERED_FILE, {"dataset": str(root.resolve()), "episode_index": record["episode_index"],
                                       "frames": record["length"], "wall": time.time()})
    (bag / RECOVERING_FILE).unlink(missing_ok=True)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _write_json(path: Path, data: dict) -> None:
    """Atomically: a temporary file renamed over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def _same_path(a: Any, b: Path) -> bool | None:
    """Whether ``a`` names ``b`` (None when ``a`` is missing)."""
    if not a:
        return None
    return Path(a).expanduser().resolve() == b.expanduser().resolve()


# -- command line ----------------------------------------------------------------------------------------------

def add_recover_parser(subparsers) -> Any:
    """``robot-irl recover --bag PATH --dataset DIR``."""
    p = subparsers.add_parser(
        "recover", help="append an episode interrupted by a crash back into its dataset, from the recorder's bag",
        description="Rebuild the frames of an episode that was being recorded when the recorder died, from its "
                    "MCAP bag, and append them as a new episode (marked recovered) to the dataset.",
        epilog="examples:\n  robot-irl recover --list runs/session/dataset_bags      # the interrupted bags\n"
               "  robot-irl recover --bag runs/session/dataset_bags/episode_000002_20261204-173858-684 "
               "--dataset runs/session/dataset\n\nRecovering is idempotent: a bag whose episode is in the dataset "
               "already is reported, never appended twice.",
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--bag", type=Path, help="the episode's bag folder, episode_<index>_<time>/ (or its .mcap file)")
    p.add_argument("--dataset", type=Path, help="the LeRobot dataset root to append to")
    p.add_argument("--list", type=Path, metavar="BAG_DIR", help="list the interrupted bags under BAG_DIR and exit")
    p.add_argument("--force", action="store_true", help="append even if the bag was recovered before")
    p.set_defaults(func=cmd_recover)
    return p


def cmd_recover(args) -> int:
    import sys

    if args.list is not None:
        for path in interrupted_bags(args.list):
            print(path)
        return 0
    if args.bag is None or args.dataset is None:
        print("robot-irl recover: --bag and --dataset are required (or --list BAG_DIR)", file=sys.stderr)
        return 2
    try:
        result = recover(args.bag, args.dataset, force=args.force)
    except (RecoverError, OSError, ValueError) as e:
        print(f"robot-irl recover: {e}", file=sys.stderr)
        return 2
    print(result.message())
    return 0

