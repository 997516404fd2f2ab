"""The command watchdog: how fast the driver node stops a robot whose tele-operator or policy died.

A trial (:func:`robot_irl.ros.probe.watchdog_trial`): a client in this process streams a far joint target to the
driver node (its own process, as in ``robot-irl up``) at 20 Hz (``--stream-hz``), so the arm moves at full speed,
then stops publishing. Latency = last command published -> first ``action_sent`` that holds, as received by the client;
moved = the largest joint displacement from the joint state in force at the last command to the held position.
Runs over the mock arm and the MuJoCo arm, at 20 Hz and at 5 Hz (a slow control rate is where a check of the
command's age at the control tick alone would hold up to one period, 200 ms, late).

    .venv/bin/python bench/bench_watchdog.py [--trials 30] [--rates 20,5] [--backends mock,mujoco_arm]
        [--stream-hz 20] [--timeout-ms N]   # the driver node's command_timeout_ms (default: the node's default)
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys

import numpy as np

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(int.from_bytes(os.urandom(1), "little") % 100 + 1))
os.environ.setdefault("MUJOCO_GL", "egl")

import rclpy
import rclpy.signals
from rclpy.context import Context

from robot_irl.drivers import make_driver
from robot_irl.graphs import GraphSpec, NodeSpec
from robot_irl.launcher import GraphProcesses
from robot_irl.ros.probe import BackgroundSpinner, RobotProbe, watchdog_trial


def run(backend: str, rate: float, trials: int, timeout_ms: int | None, stream_hz: float,
        context) -> tuple[list, float]:
    """Trials against a driver node process; returns them and the driver's largest per-tick joint step."""
    ns = f"bench_watchdog_{os.getpid()}_{backend}_{int(rate)}"
    params = {"driver": "sim", "backend": backend, "driver_config": f'{{"control_freq": {rate}}}'}
    if timeout_ms is not None:
        params["command_timeout_ms"] = timeout_ms
    limits = make_driver(backend, {"control_freq": rate}).safety_limits
    step = limits.max_step if limits.max_step is not None else np.asarray(limits.max_velocity) * limits.dt
    targets = [np.asarray(limits.upper) * 0.9, np.asarray(limits.lower) * 0.9]
    period = 1.0 / stream_hz
    log = io.StringIO()
    with GraphProcesses(GraphSpec("bench", [NodeSpec("driver_node", "driver_node", namespace=ns,
                                                     parameters=params)]), out=log):
        probe = RobotProbe(namespace=ns, context=context)
        with BackgroundSpinner(probe, context=context):
            if not probe.wait_for_driver(60.0):
                raise RuntimeError(f"driver node did not start:\n{log.getvalue()}")
            commands = max(3, int(round(0.4 / period)))  # 0.4 s of streaming: the arm is at full speed
            out = [watchdog_trial(probe, targets[i % 2], period, commands) for i in range(trials + 2)][2:]
        probe.destroy_node()
    return out, float(np.max(step))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--rates", default="20,5", help="driver control rates (Hz), comma-separated")
    parser.add_argument("--backends", default="mock,mujoco_arm")
    parser.add_argument("--stream-hz", type=float, default=20.0, help="rate of the client's commands")
    parser.add_argument("--timeout-ms", type=int, default=None, help="command_timeout_ms (default: the node's)")
    args = parser.parse_args(argv)
    context = Context()
    rclpy.init(args=[], context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    rows = []
    try:
        for backend in args.backends.split(","):
            for rate in (float(r) for r in args.rates.split(",")):
                trials, step = run(backend, rate, args.trials, args.timeout_ms, args.stream_hz, context)
                ms = [t.latency_ms for t in trials]
                moved = [t.moved for t in trials]
                rows.append(f"| {backend} | {rate:g} | {1000 / rate:.0f} | {len(trials)} | {statistics.median(ms):.1f} "
                            f"| {np.percentile(ms, 95):.1f} | {max(ms):.1f} | {statistics.median(moved):.3f} "
                            f"| {max(moved):.3f} | {step:.3f} |")
                print(rows[-1], flush=True)
    finally:
        context.shutdown()
    print(f"command: {' '.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(f"machine: {os.cpu_count()} CPUs; commands at {args.stream_hz:g} Hz; command_timeout_ms: "
          f"{args.timeout_ms or 'the driver node default'}")
    print()
    print("| backend | rate (Hz) | tick (ms) | trials | latency median (ms) | p95 (ms) | max (ms) | moved median (rad) "
          "| moved max (rad) | max step per tick (rad) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
