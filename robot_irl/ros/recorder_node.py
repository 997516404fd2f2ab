"""Records a collection session from the driver node's topics (console script ``recorder_node``).

Subscribes (relative to its namespace, ``/robot_irl``): ``observation`` (the per-tick bundle), ``action_sent``,
``camera/<name>/image_raw`` (one per camera of the driver), ``instruction`` and ``perturbation_events``; pairs them
into frames (:class:`robot_irl.collect.recover.FrameAssembler`) and writes a LeRobot v3.0 dataset with
:class:`~robot_irl.data.lerobot_io.LeRobotRecorder` (extra features ``next.reward``, ``next.success`` and the
collection annotations). With ``bag:=true`` every episode is also a rosbag2 MCAP of those topics
(:mod:`robot_irl.data.bag`), flushed every tick, from which ``robot-irl recover`` rebuilds an episode the recorder
did not live to save.

Services (std_srvs/Trigger) ``recorder/start_episode``, ``save_episode``, ``discard_episode``, ``mark_success``,
``mark_failure``, ``stop`` (save the current episode if it has frames, close the dataset); topic ``recorder/status``
(std_msgs/String JSON: recording, episode, frames, dropped, late, saved, last_error, ...), published twice a second
and after every change.

Parameters: ``driver``, ``backend``, ``driver_config`` (the driver node's: the features are built from them, the
driver is never connected), ``out`` (dataset root), ``repo_id``, ``resume``, ``overwrite``, ``bag`` (true),
``bag_dir`` (default ``<out>_bags``), ``use_videos`` (true), ``vcodec`` (libsvtav1), ``min_rate_fraction`` (0.9: an
episode with fewer frames than that fraction of ``duration x fps`` is flagged ``low_rate`` in the sidecar).

Disk full or unwritable output, or any other failure while adding or saving a frame (LeRobot's streaming video
encoder raises ``RuntimeError``, not ``OSError``): the error goes to ``status`` and the log (one line), recording
stops, the episode in progress is dropped from the dataset (its bag is kept for ``robot-irl recover``), files a
failed save left behind are removed and the dataset's meta files restored; saved episodes are never touched. Once
the cause is gone (space freed), ``discard_episode`` or ``start_episode`` reload the dataset from disk and
recording goes on; while it persists they answer with the error.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from robot_irl.collect.recover import MARKER_TOPIC, ROLE_TYPES, FrameAssembler, build_driver, collection_features, feed
from robot_irl.ros.driver_node import DEFAULT_NAMESPACE, LATCHED, run_node

MSG_CLASSES = {"observation": Float64MultiArray, "action_sent": Float64MultiArray, "instruction": String,
               "perturbation_events": String, "image": Image}
PARAMETERS = {"driver": "sim", "backend": "", "driver_config": "", "out": "", "repo_id": "", "resume": False,
              "overwrite": False, "bag": True, "bag_dir": "", "use_videos": True, "vcodec": "libsvtav1",
              # encode videos while recording: saving a 200-frame two-camera episode takes ~0.3 s instead of ~1.4 s
              # (bench/bench_collect.py), at ~1.7 ms more per frame, well inside a 50 ms tick
              "streaming_encoding": True,
              "min_rate_fraction": 0.9}
_META_BACKUP_MAX = 4 << 20  # meta files up to this size are restored after a failed save


class RecorderError(RuntimeError):
    """A request the recorder cannot honour now (no episode, recording stopped after an error, ...)."""


class CollectionRecorder:
    """The recorder without ROS: dataset, per-episode bag and pairing. :class:`RecorderNode` feeds it messages.

    ``topics`` maps each full topic name to ``(role, camera)``; :meth:`on_message` takes the deserialized message
    and, when bagging, its CDR bytes.
    """

    def __init__(self, params: dict[str, Any], topics: dict[str, tuple[str, str]], log=None) -> None:
        from robot_irl.data.lerobot_io import LeRobotRecorder

        self.params = dict(params)
        self.topics = dict(topics)
        self.log = log
        self.driver = build_driver(params)
        obs_f, act_f, extra_f = collection_features(self.driver)
        self.out = Path(params["out"]).expanduser()
        self.repo_id = params["repo_id"] or f"local/{self.out.name}"
        self.fps = self.driver.fps
        self.recorder = LeRobotRecorder(self.out, self.repo_id, int(self.fps), obs_f, act_f,
                                        robot_type=self.driver.name, use_videos=bool(params["use_videos"]),
                                        extra_features=extra_f,
                                        overwrite=bool(params["overwrite"]), resume=bool(params["resume"]),
                                        vcodec=str(params["vcodec"]),
                                        streaming_encoding=bool(params["streaming_encoding"]))
        self.bag_dir = Path(params["bag_dir"]).expanduser() if params["bag_dir"] else \
            self.out.with_name(self.out.name + "_bags")
        self.assembler = FrameAssembler(obs_f, default_task=self.driver.instruction)
        self.recording = False
        self.stopped = False
        self.broken = False
        self.last_error = ""
        self.success: bool | None = None
        self.saved = 0
        self.bag = None
        self.bag_path: Path | None = None
        self.episode_index: int | None = None
        self.last_saved_index: int | None = None
        self._frame_times: list[float] = []
        self.last_save_s: float | None = None
        self._last_raw: dict[str, tuple[bytes, int]] = {}
        self._perturbations: list = []

    # -- messages ---------------------------------------------------------------------------------------------
    def on_message(self, topic: str, msg: Any, raw: bytes | None, wall: float) -> None:
        role, camera = self.topics[topic]
        if raw is not None and role == "instruction":
            self._last_raw[topic] = (raw, int(wall * 1e9))
        if self.recording and self.bag is not None and raw is not None:
            self._guard(lambda: self.bag.write(topic, raw, int(wall * 1e9)), "writing the bag")
        if not self.recording:
            if role == "instruction":
                self.assembler.on_instruction(msg.data)
            return
        frame = feed(self.assembler, role, camera, msg, wall)
        if frame is not None:
            self._perturbations += frame.perturbations
            self._frame_times.append(frame.timestamp)
            self._guard(lambda: self.recorder.add_frame(frame.observation, frame.action, frame.task, frame.timestamp,
                                                        frame.extras), "adding a frame")
        if role == "observation" and self.recording and self.bag is not None:
            self._guard(self.bag.flush, "flushing the bag")

    def _guard(self, action, what: str) -> None:
        try:
            action()
        except Exception as e:  # a full disk is an OSError here, a RuntimeError from the video encoder, ...
            self._fail(f"{what}: {type(e).__name__}: {e}")

    def _fail(self, message: str) -> None:
        """Stop recording after a write failure: drop the episode in progress (its bag is kept), keep saved
        episodes; :meth:`discard_episode` or :meth:`start_episode` go on once the cause is gone."""
        hint = f"; recover this episode later: robot-irl recover --bag {self.bag_path}" if self.bag else ""
        self.last_error = (f"{message}; recording stopped (saved episodes are intact{hint}); free the disk, then "
                           f"discard or start a new episode")
        self.recording = False
        self.broken = True  # the dataset is reloaded from disk before the next episode
        if self.log is not None:
            self.log.error(self.last_error)
        with contextlib.suppress(Exception):  # best effort: the disk may still be full
            self.recorder.discard_episode()
        self._close_bag(abort=True)

    def _recover(self, what: str) -> str:
        """After a failure: reload the dataset from disk (:meth:`LeRobotRecorder.reopen`); returns the error that
        was cleared. Raises :class:`RecorderError` while the cause persists."""
        try:
            self.recorder.reopen()
        except Exception as e:
            raise RecorderError(f"{what}: cannot go on yet after the error ({self.last_error.split(';')[0]}): "
                                f"{type(e).__name__}: {e}") from None
        cleared, self.broken, self.last_error = self.last_error, False, ""
        return cleared

    # -- episodes ---------------------------------------------------------------------------------------------
    def _require_usable(self, what: str) -> None:
        if self.stopped:
            raise RecorderError(f"{what}: the recorder was stopped")

    def start_episode(self) -> str:
        self._require_usable("start_episode")
        if self.recording:
            raise RecorderError(f"start_episode: episode {self.episode_index} is being recorded; save or discard it "
                                f"first")
        if self.broken:
            self._recover("start_episode")
        index = self.episode_index = self.recorder.start_episode()
        self.assembler.restart()
        self.success, self._perturbations, self._frame_times = None, [], []
        if self.params["bag"]:
            self._open_bag(index)
            if self.broken:
                raise RecorderError(self.last_error)
        self.recording = True
        return f"recording episode {index}"

    def _open_bag(self, index: int) -> None:
        from robot_irl.data.bag import BagWriter

        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() // 1_000_000 % 1000:03d}"
        self.bag_path = self.bag_dir / f"episode_{index:06d}_{stamp}"
        types = {topic: ROLE_TYPES[role] for topic, (role, _) in self.topics.items()}
        marker_topic = self._marker_topic()
        types[marker_topic] = ROLE_TYPES[MARKER_TOPIC]
        try:
            self.bag_dir.mkdir(parents=True, exist_ok=True)
            self.bag = BagWriter(self.bag_path, types)
            self.bag.write(marker_topic, _string_cdr(json.dumps(self._marker("start_episode", index))))
            for topic, (raw, _) in self._last_raw.items():
                self.bag.write(topic, raw)
            self.bag.flush(fsync=True)
        except OSError as e:
            self._fail(f"opening the bag {self.bag_path}: {e}")

    def _marker_topic(self) -> str:
        ns = next((t.rsplit("/", 1)[0] for t, (r, _) in self.topics.items() if r == "observation"), "")
        return f"{ns}/{MARKER_TOPIC}"

    def _marker(self, event: str, index: int) -> dict:
        return {"event": event, "episode_index": index, "wall": time.time(), "repo_id": self.repo_id,
                "dataset": str(self.out), "use_videos": bool(self.params["use_videos"]),
                "vcodec": str(self.params["vcodec"]),
                "driver_params": {k: self.params[k] for k in ("driver", "backend", "driver_config")}}

    def _close_bag(self, abort: bool = False, delete: bool = False) -> None:
        bag, self.bag = self.bag, None
        if bag is None:
            return
        try:
            bag.abort() if abort or delete else bag.close()
        except OSError as e:
            self.last_error = self.last_error or f"closing the bag {bag.path}: {e}"
        if delete:
            shutil.rmtree(bag.path, ignore_errors=True)

    def _require_episode(self, what: str) -> None:
        if not self.recording:
            raise RecorderError(f"{what}: no episode is being recorded (call start_episode)")

    def save_episode(self) -> str:
        self._require_usable("save_episode")
        self._require_episode("save_episode")
        frames = self.recorder.episode_length
        if frames == 0:
            raise RecorderError("save_episode: the episode has no frames yet (is the driver node publishing?)")
        self.recording = False
        stats = self.assembler.stats
        metadata = {"dropped_ticks": stats.dropped, "late_frames": stats.late, "bag": str(self.bag_path or ""),
                    "perturbations": self._perturbations, "operator_marked": self.success is not None}
        metadata.update(self._rate(frames))
        if self.success is not None:
            metadata["success"] = self.success
        if self.bag is not None:
            self._guard(lambda: self.bag.write(self._marker_topic(), _string_cdr(json.dumps(
                self._marker("save_episode", self.episode_index)))), "writing the bag")
        snapshot = _snapshot(self.out)
        started = time.perf_counter()
        try:
            record = self.recorder.save_episode(metadata)
        except Exception as e:  # OSError on a full disk, RuntimeError from the video encoder, pyarrow errors...
            _rollback(self.out, snapshot)
            self._fail(f"saving episode {self.episode_index}: {type(e).__name__}: {e}")
            raise RecorderError(self.last_error) from None
        self.last_save_s = time.perf_counter() - started
        self._close_bag()
        self.saved += 1
        self.last_saved_index = record["episode_index"]
        flag = " (LOW RATE: flagged)" if metadata["low_rate"] else ""
        return (f"saved episode {record['episode_index']}: {record['length']} frames, {stats.dropped} dropped, "
                f"{stats.late} late, {self.last_save_s:.2f} s to save{flag}")

    def _rate(self, frames: int) -> dict:
        times = self._frame_times
        expected = (times[-1] - times[0]) * self.fps + 1 if len(times) > 1 else 1
        fraction = min(1.0, frames / expected)
        return {"rate_fraction": round(fraction, 4), "low_rate": fraction < float(self.params["min_rate_fraction"])}

    def discard_episode(self) -> str:
        self._require_usable("discard_episode")
        if self.broken and not self.recording:  # the episode that failed: already dropped; go on from the disk
            cleared = self._recover("discard_episode")
            return f"discarded episode {self.episode_index}, which failed ({cleared.split(';')[0]}); ready to record"
        self._require_episode("discard_episode")
        self.recording = False
        self.recorder.discard_episode()
        self._close_bag(delete=True)
        return "discarded the episode (re-record)"

    def mark(self, success: bool) -> str:
        """Mark the episode being recorded, or else the last one saved this session, a success or a failure."""
        what = "mark_success" if success else "mark_failure"
        self._require_usable(what)
        label = "success" if success else "failure"
        if self.recording:
            self.success = success
            return f"episode {self.episode_index} marked {label}"
        if self.last_saved_index is None:
            raise RecorderError(f"{what}: no episode is being recorded or was saved this session")
        from robot_irl.data.lerobot_io import set_episode_success

        set_episode_success(self.out, self.last_saved_index, success, source="operator")
        return f"saved episode {self.last_saved_index} marked {label}"

    def stop(self) -> str:
        """Save the episode in progress (if it has frames) and close the dataset."""
        if self.stopped:
            return "already stopped"
        message = ""
        if self.recording and not self.broken:
            message = self.save_episode() + "; " if self.recorder.episode_length else self.discard_episode() + "; "
        self.close()
        return message + f"stopped: {self.saved} episodes saved this session"

    def close(self) -> None:
        """Close the dataset (an unsaved episode is dropped from it but its bag stays recoverable)."""
        if self.stopped:
            return
        self.stopped = True
        self.recording = False
        self._close_bag(abort=True)
        try:
            self.recorder.finalize()
        except Exception as e:  # after a failure the old writers may be broken: saved episodes are on disk already
            self.last_error = self.last_error or f"finalizing the dataset: {type(e).__name__}: {e}"

    def status(self) -> dict:
        stats = self.assembler.stats
        return {"recording": self.recording, "episode": self.episode_index,
                "frames": self.recorder.episode_length if self.recording else 0, "dropped": stats.dropped,
                "late": stats.late, "saved_episodes": self.saved, "total_episodes": self.recorder.num_episodes,
                "marked": self.success, "stopped": self.stopped, "failed": self.broken, "last_error": self.last_error,
                "last_save_s": self.last_save_s, "dataset": str(self.out),
                "bag": str(self.bag_path) if self.bag is not None else None}


def _string_cdr(text: str) -> bytes:
    from rclpy.serialization import serialize_message

    return serialize_message(String(data=text))


def _snapshot(root: Path) -> dict[Path, bytes | None]:
    """Every file of the dataset (except temporary images), with the bytes of small meta files."""
    out: dict[Path, bytes | None] = {}
    for path in root.rglob("*"):
        if path.is_file() and "images" not in path.relative_to(root).parts[:1]:
            small = path.parts[-2] == "meta" and path.stat().st_size <= _META_BACKUP_MAX
            out[path] = path.read_bytes() if small else None
    return out


def _rollback(root: Path, snapshot: dict[Path, bytes | None]) -> None:
    """Remove files a failed save created and restore the meta files it rewrote (best effort)."""
    for path in root.rglob("*"):
        if path.is_file() and path not in snapshot and "images" not in path.relative_to(root).parts[:1]:
            path.unlink(missing_ok=True)
    for path, data in snapshot.items():
        try:
            if data is not None and (not path.exists() or path.read_bytes() != data):
                path.write_bytes(data)
        except OSError:
            pass


class RecorderNode(Node):
    """The ROS 2 shell around :class:`CollectionRecorder`."""

    def __init__(self, *, node_name: str = "recorder_node", namespace: str = DEFAULT_NAMESPACE, context=None,
                 parameter_overrides: dict[str, Any] | None = None) -> None:
        overrides = [Parameter(k, value=v) for k, v in (parameter_overrides or {}).items()]
        super().__init__(node_name, namespace=namespace, context=context, parameter_overrides=overrides)
        params = {name: self.declare_parameter(name, default).value for name, default in PARAMETERS.items()}
        if not params["out"]:
            raise ValueError("recorder_node: parameter 'out' (the dataset root) is required")
        ns = self.get_namespace().rstrip("/")
        driver = build_driver(params)
        cameras = [k.removeprefix("observation.images.") for k, f in driver.observation_features.items()
                   if f.is_image]
        topics = {f"{ns}/{role}": (role, "") for role in ("action_sent", "observation", "instruction",
                                                           "perturbation_events")}
        topics.update({f"{ns}/camera/{c}/image_raw": ("image", c) for c in cameras})
        self.core = CollectionRecorder(params, topics, log=self.get_logger())
        self._bagging = bool(params["bag"])
        for topic, (role, _) in topics.items():  # action_sent before observation: the executor serves in order
            qos = LATCHED if role == "instruction" else 50
            self.create_subscription(MSG_CLASSES[role], topic, lambda raw, t=topic, r=role: self._on_raw(t, r, raw),
                                     qos, raw=True)
        self.status_pub = self.create_publisher(String, "recorder/status", LATCHED)
        actions = {"start_episode": self.core.start_episode, "save_episode": self.core.save_episode,
                   "discard_episode": self.core.discard_episode, "mark_success": lambda: self.core.mark(True),
                   "mark_failure": lambda: self.core.mark(False), "stop": self.core.stop}
        for name, action in actions.items():
            self.create_service(Trigger, f"recorder/{name}", lambda req, res, a=action, n=name: self._serve(n, a, res))
        self.timer = self.create_timer(0.5, self.publish_status)
        self.publish_status()
        self.get_logger().info(f"recording {driver.name} at {driver.fps:g} Hz into {self.core.out} "
                               f"({self.core.recorder.num_episodes} episodes there); bags: "
                               f"{self.core.bag_dir if self._bagging else 'off'}")

    def _on_raw(self, topic: str, role: str, raw: bytes) -> None:
        wall = time.time()
        try:
            msg = deserialize_message(raw, MSG_CLASSES[role])
            self.core.on_message(topic, msg, raw if self._bagging else None, wall)
        except Exception as e:  # a malformed message must not stop the recorder
            self.get_logger().error(f"{topic}: {type(e).__name__}: {e}", throttle_duration_sec=2.0)

    def _serve(self, name: str, action, response):
        try:
            response.message, response.success = action(), True
            self.get_logger().info(response.message)
        except (RecorderError, ValueError) as e:
            response.message, response.success = str(e), False
            self.get_logger().warning(str(e) if str(e).startswith(f"{name}:") else f"{name}: {e}")
        except OSError as e:
            self.core._fail(f"{name}: {e}")
            response.message, response.success = self.core.last_error, False
        except Exception as e:  # never take the recorder down from a service call
            response.message, response.success = f"{name} failed: {type(e).__name__}: {e}", False
            self.get_logger().error(response.message)
        self.publish_status()
        return response

    def publish_status(self) -> None:
        self.status_pub.publish(String(data=json.dumps(self.core.status(), sort_keys=True)))

    def close(self) -> None:
        try:
            self.timer.cancel()
            if self.core.recording:
                self.get_logger().warning(f"shutting down mid-episode: the episode is not saved; its bag "
                                          f"{self.core.bag_path} can be recovered with robot-irl recover")
            self.core.close()
        finally:
            self.destroy_node()


def main(argv: list[str] | None = None) -> int:
    """Console script: ``recorder_node --ros-args -p out:=runs/adc/dataset -p driver:=sim -p backend:=mock``."""
    return run_node(RecorderNode, "recorder_node", argv)


if __name__ == "__main__":
    sys.exit(main())
