"""``robot-irl up`` in a child process, for the graph tests (a helper module, not a test file)."""
from __future__ import annotations

import signal
import subprocess
import sys

import pytest


class UpProcess:
    """``robot_irl.launcher.up(...)`` in a child process, as ``robot-irl up`` runs it."""

    def __init__(self, **kwargs) -> None:
        code = f"import sys; from robot_irl.launcher import up; sys.exit(up(**{kwargs!r}))"
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)

    def interrupt(self, timeout: float = 30.0) -> tuple[int, str]:
        """Ctrl-C, as a terminal would send it; returns (exit code, output)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            pytest.fail(f"up did not stop on SIGINT within {timeout}s:\n{out}")
        return self.proc.returncode, out
