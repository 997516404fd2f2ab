"""ADC collection benchmarks: recorder throughput, episode save time, teleop command-to-observation latency.

Everything runs through the ``collect`` graph as real processes (driver node + recorder node, operator ``none``);
this script plays the tele-operator: it publishes ``/<ns>/commands`` at the control rate (a slow sweep of the arm
around its start pose, so the camera images change every tick) and calls the recorder's services.

1. Throughput: per setup, a few episodes of ``--seconds`` each (reset, ``start_episode``, drive, ``save_episode``).
   Driver ticks are the span of the driver's own step counter (``status:step`` of the ``observation`` bundles in the
   episode's bag, i.e. while the recorder recorded); recorded frames, dropped ticks, late frames, clock gaps and the
   rate fraction come from the recorder's sidecar ``meta/robot_irl/episodes.jsonl``. A loss-free episode has one
   frame fewer than ticks (the first bundle only provides the first observation).
2. Save time: the ``save_episode`` service call (request to reply) of the episodes above, and, in this process,
   ``LeRobotRecorder.save_episode`` next to lerobot's own ``LeRobotDataset.save_episode`` on the same frames (same
   features, same 84x84 AV1 videos), alternating, median of ``--save-reps`` each; with PNGs encoded at save (the
   default, what the recorder node does) and with lerobot's streaming encoding.
3. Latency: a command labelled ``seq=N`` is published on ``/<ns>/commands`` (as a teleop node would) after a random
   wait (spreading the tick phase); latency = arrival of the first ``observation`` bundle labelled ``seq=N`` (the
   tick that applied it) minus the publish time. Measured while an episode is being recorded (the recorder busy, as
   in a session), then discarded. At 20 Hz (robosuite, cameras) and 100 Hz (small MuJoCo arm, no camera): the
   difference shows tick wait vs step/render vs transport; the driver's tick work (send_action + get_observation
   with its renders) is also timed in this process.

    MUJOCO_GL=egl .venv/bin/python bench/bench_collect.py [--episodes 3] [--seconds 10] [--samples 300]
        [--high-rate 25] [--arm-rate 100] [--only rs2cam20,arm100] [--skip-inprocess] [--keep DIR]

About 3.5 minutes on 2 cores. Setups: robosuite Lift with agentview+wrist and with agentview alone at 20 Hz, with
both cameras at ``--high-rate`` (robosuite needs a divisor of 500 Hz: 25, not 30), and the small MuJoCo arm without
camera at ``--arm-rate``. Each graph gets its own namespace; ROS_DOMAIN_ID is random unless set.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

for _key, _value in (("MUJOCO_GL", "egl"), ("PYOPENGL_PLATFORM", "egl"), ("PYNPUT_BACKEND", "dummy"),
                     ("HF_HUB_OFFLINE", "1"), ("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST"),
                     ("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 101)))):
    os.environ.setdefault(_key, _value)

import rclpy  # noqa: E402
import rclpy.signals  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.node import Node  # noqa: E402
from std_msgs.msg import Float64MultiArray, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from robot_irl.data.lerobot_io import EPISODES_SIDECAR, read_jsonl  # noqa: E402
from robot_irl.launcher import start_graph  # noqa: E402
from robot_irl.ros import conversions as conv  # noqa: E402
from robot_irl.ros.driver_node import LATCHED  # noqa: E402
from robot_irl.ros.probe import BackgroundSpinner  # noqa: E402


@dataclass
class Setup:
    """One graph configuration."""

    name: str
    backend: str
    rate: float
    cameras: tuple[str, ...] = ()
    episodes: int = 3
    latency: bool = False  # also measure command-to-observation latency on this graph

    @property
    def camera_text(self) -> str:
        return "+".join(self.cameras) if self.cameras else "none"


@dataclass
class EpisodeRun:
    save_call_s: float
    record: dict = field(default_factory=dict)
    ticks: int = 0  # driver ticks while the recorder recorded the episode (status:step span in its bag)
    tick_span_s: float = 0.0  # first to last of those ticks (arrival at the recorder)


# -- the operator's commands --------------------------------------------------------------------------------------

def sweep(names: list[str], lower: np.ndarray, upper: np.ndarray):
    """``command(base, t)``: the operator's command at ``t`` s, a slow sweep around the start pose ``base`` (ee
    position +-5..12 cm, joints +-0.3 rad, the gripper toggling every 2 s), inside the action bounds."""
    amp = {"x": 0.08, "y": 0.12, "z": 0.05, "ax": 0.0, "ay": 0.0, "az": 0.0}

    def command(base: np.ndarray, t: float) -> np.ndarray:
        out = np.array(base, dtype=np.float64)
        for i, name in enumerate(names):
            if name == "gripper":
                out[i] = upper[i] if math.sin(2 * math.pi * 0.25 * t) > 0 else lower[i]
            else:
                out[i] += amp.get(name, 0.3) * math.sin(2 * math.pi * (0.2 + 0.05 * i) * t)
        return np.clip(out, lower, upper)
    return command


def action_space(setup: Setup):
    """(names, lower, upper) of the setup's action, from a driver that is built but never connected."""
    from robot_irl.collect.recover import build_driver

    config = json.dumps(driver_config(setup))
    driver = build_driver({"driver": "sim", "backend": setup.backend, "driver_config": config})
    limits = driver.safety_limits
    names = list(driver.action_features["action"].names)
    lower = np.array(limits.lower if limits.lower else [-np.inf] * len(names))
    upper = np.array(limits.upper if limits.upper else [np.inf] * len(names))
    return names, lower, upper


def driver_config(setup: Setup) -> dict:
    config: dict = {"control_freq": setup.rate}
    if setup.cameras:
        config["cameras"] = list(setup.cameras)
    return config


# -- the client node ----------------------------------------------------------------------------------------------

class Operator(Node):
    """Publishes commands, records observation bundles (label, step, reference) and the recorder's status."""

    SERVICES = ("recorder/start_episode", "recorder/save_episode", "recorder/discard_episode", "recorder/stop",
                "reset")

    def __init__(self, namespace: str, context) -> None:
        super().__init__("bench_operator", namespace=namespace, context=context, start_parameter_services=False)
        self._cond = threading.Condition()
        self.status: dict = {}
        self.bundles = 0
        self.reference: np.ndarray | None = None
        self.first_seen: dict[str, float] = {}
        self.command_pub = self.create_publisher(Float64MultiArray, "commands", 10)
        self.create_subscription(Float64MultiArray, "observation", self._on_bundle, 50)
        self.create_subscription(String, "recorder/status", self._on_status, LATCHED)
        self.clients_ = {name: self.create_client(Trigger, name) for name in self.SERVICES}

    def _on_bundle(self, msg: Float64MultiArray) -> None:
        now = time.monotonic()
        bundle = conv.bundle_from_msg(msg)
        with self._cond:
            self.bundles += 1
            self.reference = bundle["reference"]
            self.first_seen.setdefault(bundle["label"], now)
            self._cond.notify_all()

    def _on_status(self, msg: String) -> None:
        with self._cond:
            self.status = json.loads(msg.data)
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
            return True

    def count(self) -> int:
        with self._cond:
            return self.bundles

    def send(self, action, label: str) -> float:
        msg = conv.action_to_msg(action, label)
        t = time.monotonic()
        self.command_pub.publish(msg)
        return t

    def call(self, name: str, timeout: float = 60.0) -> tuple[str, float]:
        """Call a Trigger service; returns (message, seconds from request to reply). A refusal raises."""
        client = self.clients_[name]
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {self.get_namespace()}/{name} not available in {timeout} s")
        done = threading.Event()
        started = time.perf_counter()
        future = client.call_async(Trigger.Request())
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout):
            raise TimeoutError(f"service {name} did not answer in {timeout} s")
        elapsed = time.perf_counter() - started
        result = future.result()
        if not result.success:
            raise RuntimeError(f"{name} refused: {result.message}")
        return result.message, elapsed


def bag_ticks(bag: str, topic: str) -> tuple[int, float]:
    """(driver ticks, seconds) spanned by the observation bundles in an episode's bag: the driver's own step counter
    while the recorder recorded, whether or not every bundle reached the recorder. A step that goes back is a reset
    (a bundle from before the reset that the recorder took in after start_episode): each run is counted apart."""
    from robot_irl.data.bag import deserialize, read_bag

    if not bag or not Path(bag).is_dir():
        return 0, 0.0
    seen = [(int(conv.bundle_from_msg(deserialize(m))["status"]["step"]), m.log_time * 1e-9)
            for m in read_bag(bag, {topic})]
    runs: list[list[float]] = []
    for step, t in seen:
        if not runs or step <= runs[-1][2]:
            runs.append([step, t, step, t])  # first step, its time, last step, its time
        else:
            runs[-1][2:] = [step, t]
    ticks = sum(last - first + 1 for first, _, last, _ in runs)
    return ticks, sum(t1 - t0 for _, t0, _, t1 in runs)


# -- one graph ----------------------------------------------------------------------------------------------------

class GraphBench:
    """The collect graph for one setup, and the operator that drives it."""

    def __init__(self, setup: Setup, root: Path, context, seconds: float, samples: int) -> None:
        self.setup, self.context, self.seconds, self.samples = setup, context, seconds, samples
        self.namespace = f"bench_collect_{os.getpid()}_{setup.name}"
        self.dataset = root / setup.name / "dataset"
        self.dataset.parent.mkdir(parents=True, exist_ok=True)
        self.command = sweep(*action_space(setup))
        self.log = io.StringIO()

    def run(self) -> tuple[list[EpisodeRun], list[float], float]:
        """(episodes, latency samples in ms, graph start seconds). The graph is always stopped."""
        started = time.monotonic()
        graph = start_graph("collect", out=self.log, driver="sim", backend=self.setup.backend, rate=self.setup.rate,
                            cameras=",".join(self.setup.cameras), operator="none", dataset=str(self.dataset),
                            namespace=self.namespace)
        op = spinner = None
        try:
            op = Operator(self.namespace, self.context)
            spinner = BackgroundSpinner(op, context=self.context)
            self._wait_ready(op, graph)
            start_s = time.monotonic() - started
            episodes = [self._episode(op) for _ in range(self.setup.episodes)]
            latency = self._latency(op) if self.setup.latency else []
            op.call("recorder/stop")
        except Exception as e:
            raise RuntimeError(f"{self.setup.name}: {type(e).__name__}: {e}\n--- graph output ---\n"
                               f"{self.log.getvalue()[-4000:]}") from None
        finally:
            if spinner is not None:
                spinner.stop()
            if op is not None:
                op.destroy_node()
            codes = graph.stop()
            (self.dataset.parent / "graph.log").write_text(self.log.getvalue())
        if any(codes.values()):
            print(f"warning: {self.setup.name}: node exit codes {codes}", file=sys.stderr)
        records = {r["episode_index"]: r for r in read_jsonl(self.dataset / EPISODES_SIDECAR)}
        for index, ep in enumerate(episodes):
            ep.record = records.get(index, {})
            bag = ep.record.get("metadata", {}).get("bag", "")
            ep.ticks, ep.tick_span_s = bag_ticks(bag, f"/{self.namespace}/observation")
        return episodes, latency, start_s

    def _wait_ready(self, op: Operator, graph) -> None:
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline:
            if graph.exited():
                raise RuntimeError(f"a node exited: {graph.exited()}")
            if op.wait_for(lambda: op.bundles > 0 and op.status.get("recording") is False, 0.5):
                break
        else:
            raise TimeoutError("the graph did not come up in 120 s")
        for name in op.SERVICES:
            if not op.clients_[name].wait_for_service(timeout_sec=30.0):
                raise TimeoutError(f"service {name} not available")

    def _reset(self, op: Operator) -> np.ndarray:
        """Reset the scene; the start pose's reference (from the first bundle after the reset)."""
        op.call("reset")
        count = op.count()
        if not op.wait_for(lambda: op.bundles > count + 1, 10.0):
            raise TimeoutError("no observation after reset")
        return np.array(op.reference)

    def _episode(self, op: Operator) -> EpisodeRun:
        base = self._reset(op)
        op.call("recorder/start_episode")
        period = 1.0 / self.setup.rate
        begin = time.monotonic()
        next_t = begin
        while (now := time.monotonic()) - begin < self.seconds:
            op.send(self.command(base, now - begin), "teleop")
            next_t += period
            time.sleep(max(0.0, next_t - time.monotonic()))
        _, save_s = op.call("recorder/save_episode")
        return EpisodeRun(save_call_s=save_s)

    def _latency(self, op: Operator) -> list[float]:
        """Command-to-observation latencies (ms), while an episode is recorded (then discarded)."""
        base = self._reset(op)
        op.call("recorder/start_episode")
        rng = np.random.default_rng(0)
        period = 1.0 / self.setup.rate
        out = []
        begin = time.monotonic()
        try:
            for n in range(self.samples + 10):  # the first 10 warm up
                time.sleep(rng.uniform(0.0, period))
                label = f"seq={n}"
                sent = op.send(self.command(base, time.monotonic() - begin), label)
                if not op.wait_for(lambda lb=label: lb in op.first_seen, 5.0):
                    raise TimeoutError(f"no observation bundle labelled {label}")
                if n >= 10:
                    out.append((op.first_seen[label] - sent) * 1000.0)
        finally:
            op.call("recorder/discard_episode")
        return out


# -- in-process save: ours vs lerobot's ---------------------------------------------------------------------------

@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2 (the SVT-AV1 encoder's banner is printed by C code) and Python warnings."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def make_frames(frames: int, cameras: tuple[str, ...]):
    """(driver features, frames as (observation, action) pairs) from the robosuite Lift driver, in process."""
    from robot_irl.drivers import make_driver

    setup = Setup("inproc", "robosuite", 20.0, cameras)
    driver = make_driver("sim", driver_config(setup), backend="robosuite")
    command = sweep(*action_space(setup))
    driver.connect()
    try:
        base = driver.hold_action()
        obs = driver.get_observation()
        out = []
        for k in range(frames):
            sent = driver.send_action(command(base, k / setup.rate))
            out.append((obs, sent))
            obs = driver.get_observation()
        return driver, out
    finally:
        driver.disconnect()


def tick_compute_ms(setup: Setup, ticks: int = 100) -> float:
    """Median ms of one driver tick's work (send_action + get_observation with its renders), in this process."""
    from robot_irl.drivers import make_driver

    driver = make_driver("sim", driver_config(setup), backend=setup.backend)
    command = sweep(*action_space(setup))
    driver.connect()
    try:
        base, out = driver.hold_action(), []
        for k in range(ticks + 5):
            started = time.perf_counter()
            driver.send_action(command(base, k / setup.rate))
            driver.get_observation()
            out.append((time.perf_counter() - started) * 1000.0)
        return statistics.median(out[5:])
    finally:
        driver.disconnect()


@dataclass
class SaveTimes:
    """Seconds spent in ``add_frame`` (whole episode) and in ``save_episode``, one entry per episode."""

    add: list[float] = field(default_factory=list)
    save: list[float] = field(default_factory=list)


class _Writers:
    """Our recorder and a bare LeRobotDataset, fed the same frames; ``add(writer, ...)`` and ``save(writer)``."""

    def __init__(self, root: Path, driver, streaming: bool) -> None:
        from robot_irl.collect.annotations import frame_annotations
        from robot_irl.collect.recover import collection_features
        from robot_irl.data.lerobot_io import LeRobotRecorder, _lerobot

        self.obs_f, self.act_f, self.extra_f = collection_features(driver)
        self.extras = {"next.reward": np.zeros(1, np.float32), "next.success": np.zeros(1, bool),
                       **frame_annotations([])}
        self.task = driver.instruction or "lift the red cube"
        tag = "stream" if streaming else "png"
        self.ours = LeRobotRecorder(root / f"ours_{tag}", "local/ours", 20, self.obs_f, self.act_f,
                                    robot_type=driver.name, extra_features=self.extra_f, streaming_encoding=streaming)
        self.ref = _lerobot().LeRobotDataset.create(
            "local/ref", fps=20, features=self.ours.lerobot_features, root=root / f"ref_{tag}",
            robot_type=driver.name, use_videos=True, video_backend="pyav", vcodec="libsvtav1",
            streaming_encoding=streaming)

    def add(self, writer: str, obs, action, wall: float) -> None:
        from robot_irl.data.lerobot_io import WALL_TIME_KEY, check_frame

        if writer == "ours":
            self.ours.add_frame(obs, action, self.task, wall, self.extras)
            return
        frame = check_frame(obs, self.obs_f, "ref", "observation")  # the frame our recorder hands to lerobot
        frame.update(check_frame({"action": action}, self.act_f, "ref", "action"))
        frame.update(check_frame(self.extras, self.extra_f, "ref", "extras"))
        frame[WALL_TIME_KEY] = np.array([wall])
        frame["task"] = self.task
        self.ref.add_frame(frame)

    def save(self, writer: str) -> None:
        from lerobot.utils.utils import SuppressProgressBars

        if writer == "ours":
            self.ours.save_episode({})
            return
        with SuppressProgressBars():  # as LeRobotRecorder does
            self.ref.save_episode()

    def close(self) -> None:
        self.ours.finalize()
        self.ref.finalize()


def save_inprocess(frames: int, reps: int, root: Path) -> dict[tuple[str, bool], SaveTimes]:
    """LeRobotRecorder vs a bare LeRobotDataset on the same frames and features, with PNGs encoded at save (the
    default, what the recorder node does) and with streaming encoding; keyed by (writer, streaming)."""
    driver, pairs = make_frames(frames, ("agentview", "wrist"))
    times: dict[tuple[str, bool], SaveTimes] = {}
    for streaming in (False, True):
        writers = _Writers(root, driver, streaming)
        t_wall = time.time()
        try:
            for _ in range(reps):  # alternating, so both see the same machine load
                for writer in ("ours", "lerobot"):
                    out = times.setdefault((writer, streaming), SaveTimes())
                    started = time.perf_counter()
                    for k, (obs, action) in enumerate(pairs):
                        writers.add(writer, obs, action, t_wall + k / 20.0)
                    out.add.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    writers.save(writer)
                    out.save.append(time.perf_counter() - started)
                t_wall += 60.0
        finally:
            writers.close()
    return times


# -- report ---------------------------------------------------------------------------------------------------------

def throughput_row(setup: Setup, eps: list[EpisodeRun]) -> str:
    recs = [e.record for e in eps]
    frames = sum(r.get("length", 0) for r in recs)
    meta = [r.get("metadata", {}) for r in recs]
    ticks = sum(e.ticks for e in eps)
    span = sum(r.get("duration_s", 0.0) for r in recs)  # LeRobot's duration: first to last frame, plus one period
    fps = frames / span if span else 0.0
    tick_span = sum(e.tick_span_s for e in eps)
    tick_rate = (ticks - len(eps)) / tick_span if tick_span else 0.0  # intervals over time (one run each)
    return (f"| {setup.backend} | {setup.camera_text} | {setup.rate:g} | {len(eps)} | {ticks} | {frames} "
            f"| {sum(m.get('dropped_ticks', 0) for m in meta)} | {sum(m.get('late_frames', 0) for m in meta)} "
            f"| {sum(r.get('dropped_frames', 0) for r in recs)} | {tick_rate:.2f} | {fps:.2f} "
            f"| {min(m.get('rate_fraction', 0.0) for m in meta):.3f} |")


def save_row(setup: Setup, eps: list[EpisodeRun]) -> str:
    calls = [e.save_call_s for e in eps]
    inner = [e.record.get("save_s", float("nan")) for e in eps]
    length = statistics.median(e.record.get("length", 0) for e in eps)
    return (f"| service call, {setup.backend} {setup.camera_text} | {length:.0f} | {statistics.median(calls):.3f} "
            f"| {max(calls):.3f} | {statistics.median(inner):.3f} |")


def latency_row(setup: Setup, ms: list[float], compute_ms: float) -> str:
    period = 1000.0 / setup.rate
    med = statistics.median(ms)
    return (f"| {setup.backend}, {setup.camera_text} | {setup.rate:g} | {len(ms)} | {med:.2f} "
            f"| {np.percentile(ms, 95):.2f} | {max(ms):.2f} | {period:.1f} | {med - period / 2:.2f} "
            f"| {compute_ms:.2f} |")


def parse_setups(args) -> list[Setup]:
    both = ("agentview", "wrist")
    setups = [Setup("rs2cam20", "robosuite", 20.0, both, args.episodes, latency=True),
              Setup("rs1cam20", "robosuite", 20.0, ("agentview",), args.episodes)]
    if args.high_rate:
        setups.append(Setup(f"rs2cam{args.high_rate:g}", "robosuite", args.high_rate, both, args.high_episodes))
    setups.append(Setup(f"arm{args.arm_rate:g}", "mujoco_arm", args.arm_rate, (), args.high_episodes, latency=True))
    return [s for s in setups if not args.only or s.name in args.only.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=3, help="episodes per 20 Hz setup")
    parser.add_argument("--high-episodes", type=int, default=2, help="episodes per higher-rate setup")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each episode")
    parser.add_argument("--samples", type=int, default=300, help="latency samples per rate")
    parser.add_argument("--high-rate", type=float, default=25.0, help="robosuite two-camera rate (0: skip)")
    parser.add_argument("--arm-rate", type=float, default=100.0, help="small MuJoCo arm rate (no camera)")
    parser.add_argument("--save-frames", type=int, default=200, help="frames per in-process save episode")
    parser.add_argument("--save-reps", type=int, default=3, help="in-process saves of each kind")
    parser.add_argument("--only", default="", help="comma-separated setup names (default: all)")
    parser.add_argument("--skip-inprocess", action="store_true")
    parser.add_argument("--keep", default="", help="keep the datasets, bags and graph logs under this folder")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    t_start = time.monotonic()
    context = Context()
    rclpy.init(args=[], context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    results = []
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="bench_collect_")
    root = Path(args.keep or tmp.name)
    try:
        for setup in parse_setups(args):
            print(f"[bench] {setup.name}: {setup.backend} {setup.camera_text} at {setup.rate:g} Hz ...",
                  file=sys.stderr, flush=True)
            results.append((setup, *GraphBench(setup, root, context, args.seconds, args.samples).run()))
        compute = {s.name: tick_compute_ms(s) for s, _, ms, _ in results if ms}
        saves = None
        if not args.skip_inprocess:
            print("[bench] in-process save_episode ...", file=sys.stderr, flush=True)
            with quiet_stderr():
                saves = save_inprocess(args.save_frames, args.save_reps, root / "inproc")
    finally:
        context.shutdown()
        if tmp is not None:
            tmp.cleanup()
    report(args, results, saves, compute, load, time.monotonic() - t_start)
    return 0


def report(args, results, saves, compute: dict[str, float], load: float, total_s: float) -> None:
    print(f"command: MUJOCO_GL=egl {os.path.relpath(sys.executable)} {' '.join(sys.argv)}")
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} at start; rclpy over "
          f"{os.environ.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')}; total {total_s:.0f} s; graph start "
          + ", ".join(f"{s.name} {start:.1f} s" for s, _, _, start in results))
    print()
    print("### Recorder throughput (collect graph: driver node + recorder node as processes, bags on)")
    print()
    print("| driver | cameras (84x84) | rate (Hz) | episodes | driver ticks | recorded frames | dropped ticks "
          "| late frames | clock gaps | driver ticks/s | recorded frames/s | min rate fraction |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for setup, eps, _, _ in results:
        print(throughput_row(setup, eps))
    print()
    print("### Time to save an episode (LeRobot's target: under 1 s)")
    print()
    print("| what | frames | median (s) | max (s) | recorder's own save_s, median |")
    print("|---|---:|---:|---:|---:|")
    for setup, eps, _, _ in results:
        print(save_row(setup, eps))
    if saves:
        print()
        print(f"In process, {args.save_frames}-frame episodes with two 84x84 AV1 videos, the same frames and features "
              f"for both writers, {args.save_reps} episodes each (alternating); medians:")
        print()
        print("| writer | video encoding | add_frame x N (s) | save_episode (s) | save max (s) | save vs lerobot |")
        print("|---|---|---:|---:|---:|---:|")
        for streaming in (False, True):
            ref = statistics.median(saves[("lerobot", streaming)].save)
            for writer, name in (("lerobot", "lerobot LeRobotDataset (reference)"),
                                 ("ours", "robot_irl LeRobotRecorder")):
                t = saves[(writer, streaming)]
                save = statistics.median(t.save)
                print(f"| {name} | {'streaming' if streaming else 'PNGs, encoded at save'} "
                      f"| {statistics.median(t.add):.3f} | {save:.3f} | {max(t.save):.3f} | {save / ref:.2f}x |")
    print()
    print("### Teleop command-to-observation latency through the graph (label seq=N, while recording)")
    print()
    print("| driver | rate (Hz) | samples | median (ms) | p95 (ms) | max (ms) | tick period (ms) "
          "| median - period/2 (ms) | tick compute, in process (ms) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for setup, _, ms, _ in results:
        if ms:
            print(latency_row(setup, ms, compute[setup.name]))


if __name__ == "__main__":
    sys.exit(main())
