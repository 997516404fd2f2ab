"""Run a :class:`~robot_irl.graphs.GraphSpec` as processes, without the ROS 2 CLI (``robot-irl up``).

Each node runs as ``python -m robot_irl.ros.<module> --ros-args -r __node:=<name> -r __ns:=/<ns> --params-file
<tmp>/<name>.yaml -r from:=to`` with this interpreter (so it works in a venv with the ros-* wheels and no sourced
ROS installation). Output lines are prefixed with the node's name. Ctrl-C/SIGTERM stop every node (SIGINT, wait,
then SIGTERM and SIGKILL after timeouts), as does the end of ``duration`` (which is said); if one node exits on its
own, the others are stopped: a clean exit (status 0, e.g. the scripted operator after its episodes, or an operator's
stop) ends the run with 0, a failure with that node's status.
"""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from robot_irl.graphs import GraphSpec, NodeSpec, build_graph

#: executables of this package and the module each runs
MODULES = {
    "driver_node": "robot_irl.ros.driver_node",
    "robot_emulator": "robot_irl.ros.emulator",
    "recorder_node": "robot_irl.ros.recorder_node",
    "teleop_node": "robot_irl.ros.teleop_node",
    "console_node": "robot_irl.ros.console_node",
    "policy_node": "robot_irl.ros.policy_node",
    "operator_node": "robot_irl.ros.operator_node",
    "adversary_node": "robot_irl.ros.adversary_node",
}


def params_file(spec: NodeSpec, folder: Path) -> Path:
    """Write ``spec.parameters`` as a ROS 2 params YAML file for the node's full name; return its path."""
    import yaml

    path = folder / f"{spec.full_name.strip('/').replace('/', '__')}.params.yaml"
    path.write_text(yaml.safe_dump({spec.full_name: {"ros__parameters": dict(spec.parameters)}}, sort_keys=True))
    return path


def node_command(spec: NodeSpec, folder: Path) -> list[str]:
    """The command line that runs ``spec`` (its params file is written into ``folder``)."""
    if spec.package == "robot_irl" and spec.executable in MODULES:
        cmd = [sys.executable, "-m", MODULES[spec.executable]]
    else:
        exe = shutil.which(spec.executable) or shutil.which(spec.executable, path=str(Path(sys.executable).parent))
        if exe is None:
            raise FileNotFoundError(f"node {spec.name}: executable {spec.executable!r} of package {spec.package!r} "
                                    f"not found (robot_irl runs: {sorted(MODULES)})")
        cmd = [exe]
    cmd += [*spec.arguments, "--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace.strip("/"):
        cmd += ["-r", f"__ns:=/{spec.namespace.strip('/')}"]
    if spec.parameters:
        cmd += ["--params-file", str(params_file(spec, folder))]
    for src, dst in spec.remappings:
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


class GraphProcesses:
    """The processes of one graph: start them, watch them, stop them (also a context manager)."""

    def __init__(self, spec: GraphSpec, out: TextIO | None = None, env: dict[str, str] | None = None) -> None:
        self.spec = spec
        self.out = out if out is not None else sys.stdout
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.procs: dict[str, subprocess.Popen] = {}
        self._readers: list[threading.Thread] = []
        self._out_lock = threading.Lock()
        self._tmp = tempfile.TemporaryDirectory(prefix=f"robot_irl_{spec.name}_")
        self.commands = {n.name: node_command(n, Path(self._tmp.name)) for n in spec.nodes}

    def start(self) -> GraphProcesses:
        for name, cmd in self.commands.items():
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=self.env, text=True, bufsize=1, start_new_session=True)
            self.procs[name] = proc
            reader = threading.Thread(target=self._pump, args=(name, proc), daemon=True, name=f"out-{name}")
            reader.start()
            self._readers.append(reader)
        return self

    def _pump(self, name: str, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.write(f"[{name}] {line.rstrip()}")

    def write(self, line: str) -> None:
        with self._out_lock:
            print(line, file=self.out, flush=True)

    def exited(self) -> dict[str, int]:
        """Nodes that have exited, with their exit codes."""
        return {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}

    def stop(self, timeout: float = 5.0) -> dict[str, int]:
        """SIGINT every running node, wait ``timeout``; then SIGTERM, then SIGKILL. Returns the exit codes."""
        for sig, wait_s in ((signal.SIGINT, timeout), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            alive = [p for p in self.procs.values() if p.poll() is None]
            if not alive:
                break
            if sig != signal.SIGINT:
                self.write(f"[launcher] {len(alive)} node(s) still running: sending {sig.name}")
            for p in alive:
                _signal_group(p, sig)
            _wait_all(alive, wait_s)
        for reader in self._readers:
            reader.join(timeout=1.0)
        self._tmp.cleanup()
        return {name: p.returncode for name, p in self.procs.items()}

    def __enter__(self) -> GraphProcesses:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_all(procs: list[subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass


class _StopRequest:
    """SIGINT/SIGTERM/SIGHUP set an event while installed (main thread only); the old handlers come back after."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> threading.Event:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self._previous[sig] = signal.signal(sig, lambda *_: self.event.set())
        return self.event

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run_graph(spec: GraphSpec, duration: float | None = None, out: TextIO | None = None,
              stop_timeout: float = 5.0, env: dict[str, str] | None = None) -> int:
    """Run every node of ``spec`` until Ctrl-C/SIGTERM, ``duration`` seconds, or a node exits.

    Returns 0 when the graph was stopped on request and every node exited cleanly, else non-zero (the exit code
    of the node that died first, or 1).
    """
    graph = GraphProcesses(spec, out, env)
    for name, cmd in graph.commands.items():
        graph.write(f"[launcher] {name}: {shlex.join(cmd)}")
    deadline = None if duration is None else time.monotonic() + duration
    with _StopRequest() as stop_requested:
        graph.start()
        died: tuple[str, int] | None = None
        try:
            while not stop_requested.is_set() and (deadline is None or time.monotonic() < deadline):
                exited = graph.exited()
                if exited:
                    died = next(iter(exited.items()))
                    break
                stop_requested.wait(0.1)
            if died is None and not stop_requested.is_set():
                graph.write(f"[launcher] --duration {duration:g} s is up: stopping the graph")
        finally:
            codes = graph.stop(stop_timeout)
    if died is not None and died[1] == 0:  # a node that ends its session (an operator's stop) ends the graph
        graph.write(f"[launcher] {died[0]} finished; stopped the graph")
        return _unclean(graph, {n: c for n, c in codes.items() if n != died[0]})
    if died is not None:
        graph.write(f"[launcher] {died[0]} exited with code {died[1]}; stopped the graph")
        return died[1] or 1
    return _unclean(graph, codes)


def _unclean(graph: GraphProcesses, codes: dict[str, int]) -> int:
    """0 when every node exited cleanly, else 1 (and which did not)."""
    unclean = {n: c for n, c in codes.items() if c != 0}
    if unclean:
        graph.write(f"[launcher] nodes did not stop cleanly: {unclean}")
        return 1
    graph.write("[launcher] graph stopped")
    return 0


def up(graph_name: str = "bringup", driver: str = "sim", duration: float | None = None,
       out: TextIO | None = None, **args: Any) -> int:
    """``robot-irl up``: build the graph (see :func:`robot_irl.graphs.build_graph`) and run it."""
    spec = build_graph(graph_name, driver=driver, **args)
    stream = out if out is not None else sys.stdout
    print(f"[launcher] graph {spec.name}: {spec.description}", file=stream, flush=True)
    for note in spec.notes:
        print(f"[launcher] note: {note}", file=stream, flush=True)
    return run_graph(spec, duration=duration, out=out)


def start_graph(graph_name: str = "bringup", out: TextIO | None = None, **args: Any) -> GraphProcesses:
    """Start a graph in the background and return its processes (call ``.stop()``); for demos and tests."""
    spec = build_graph(graph_name, **args)
    return GraphProcesses(spec, out=out).start()
