"""Run folders: every job writes its resolved config, the environment it ran in and its outputs in one place."""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from robot_irl import __version__


def prepare_run_dir(path: str | Path, overwrite: bool = False) -> Path:
    """Create ``path`` for a new run; an existing non-empty folder is refused unless ``overwrite``."""
    path = Path(path)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(
            f"run folder {path} already exists and is not empty; pass --overwrite or pick another --out")
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_run_config(run_dir: str | Path, config: dict[str, Any], name: str = "config.json") -> Path:
    """Write the run's resolved config plus provenance (versions, command line, time) as JSON."""
    out = Path(run_dir) / name
    payload = {
        "config": config,
        "robot_irl_version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "argv": sys.argv,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    tmp.replace(out)
    return out
