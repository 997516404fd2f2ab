"""Command-to-joint-state latency of the driver node over rclpy, across two processes and in one process.

A sample: publish a command on /<ns>/commands (a value not sent before) and wait for the first ``joint_states``
published by the tick that sent it (its ``action_sent`` carries the value too); latency = that joint state's
arrival minus the publish time. The node ticks on a timer at the driver's control rate, so latency includes waiting for
the next tick (about half a period on average): runs at several rates separate the tick wait from the transport.
The mock arm is used (no physics cost), with its velocity limit raised so the safety clamp never alters a command.

    .venv/bin/python bench/bench_ros_latency.py [--samples 300] [--rates 20,500]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(int.from_bytes(os.urandom(1), "little") % 100 + 1))

import rclpy
import rclpy.signals
from rclpy.context import Context

from robot_irl.drivers.mock import MockArmConfig, MockArmDriver
from robot_irl.graphs import GraphSpec, NodeSpec
from robot_irl.launcher import GraphProcesses
from robot_irl.ros.driver_node import DriverNode
from robot_irl.ros.probe import BackgroundSpinner, RobotProbe


def mock_config(rate: float) -> dict:
    return {"control_freq": rate, "max_velocity": 1000.0, "tracking_gain": 1.0}


def measure(probe: RobotProbe, samples: int, period_s: float, timeout: float = 2.0) -> list[float]:
    """Latencies in ms. Each command value is new, and the mock arm (tracking gain 1) reaches it in the tick that
    sends it, so the first joint state holding that value is the one published by that tick. A random wait
    before each command spreads commands uniformly over the tick phase."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(samples + 5):  # the first few warm up
        value = 0.001 * (i % 97) + 1e-5 * (i // 97)
        time.sleep(rng.uniform(0.0, period_s))
        start = probe.count("joint_states")
        t0 = time.monotonic()
        probe.send_command([value, 0.0, 0.0])

        def arrival(start: int = start, value: float = value) -> float | None:
            for t, msg in probe.received["joint_states"][start:]:
                if abs(msg.position[0] - value) < 1e-6:
                    return t
            return None

        if not probe.wait_for(lambda: arrival() is not None, timeout):
            raise TimeoutError(f"command {value} never showed up on joint_states")
        if not probe.wait_for(lambda v=value: abs(probe.received["action_sent"][-1][1].data[0] - v) < 1e-6, timeout):
            raise RuntimeError(f"action_sent does not reflect command {value}")
        if i >= 5:
            out.append((arrival() - t0) * 1000.0)
    return out


def two_processes(rate: float, samples: int, context) -> list[float]:
    ns = f"bench_{os.getpid()}"
    spec = GraphSpec("bench", [NodeSpec("driver_node", "driver_node", namespace=ns, parameters={
        "driver": "sim", "backend": "mock", "driver_config": json.dumps(mock_config(rate))})])
    log = io.StringIO()
    with GraphProcesses(spec, out=log):
        probe = RobotProbe(namespace=ns, context=context)
        with BackgroundSpinner(probe, context=context):
            if not probe.wait_for_driver(30.0):
                raise RuntimeError(f"driver node did not start:\n{log.getvalue()}")
            result = measure(probe, samples, 1.0 / rate)
        probe.destroy_node()
    return result


def one_process(rate: float, samples: int, context) -> list[float]:
    ns = f"bench_inproc_{os.getpid()}"
    node = DriverNode(MockArmDriver(MockArmConfig(**mock_config(rate))), namespace=ns, context=context)
    probe = RobotProbe(namespace=ns, context=context)
    with BackgroundSpinner(node, context=context), BackgroundSpinner(probe, context=context):
        if not probe.wait_for_driver(10.0):
            raise RuntimeError("in-process driver node not discovered")
        result = measure(probe, samples, 1.0 / rate)
    node.close()
    probe.destroy_node()
    return result


def row(setup: str, rate: float, ms: list[float]) -> str:
    p95 = float(np.percentile(ms, 95))
    return (f"| {setup} | {rate:g} | {len(ms)} | {statistics.median(ms):.2f} | {p95:.2f} | {max(ms):.2f} "
            f"| {1000.0 / rate:.1f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--rates", default="20,500", help="driver control rates (Hz), comma-separated")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    context = Context()
    rclpy.init(args=[], context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    rows = []
    try:
        for rate in rates:
            rows.append(row("two processes", rate, two_processes(rate, args.samples, context)))
            rows.append(row("one process", rate, one_process(rate, args.samples, context)))
    finally:
        context.shutdown()
    print(f"command: {' '.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(f"machine: {os.cpu_count()} CPUs, rclpy over {os.environ.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')}, "
          f"ROS_AUTOMATIC_DISCOVERY_RANGE={os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE']}")
    print()
    print("| setup | rate (Hz) | samples | median (ms) | p95 (ms) | max (ms) | tick period (ms) |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
