"""Where the package's non-Python files live: the source checkout, or ``share/robot_irl`` once installed.

``sim/`` (MJCF models), ``config/``, ``launch/``, ``hardware/`` and ``datasets/`` sit at the repository root (they
are data, not packages). In an editable/pip install we find them next to the ``robot_irl`` package; after
``colcon build`` they are installed under ``<prefix>/share/robot_irl``.
"""
from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = "robot_irl"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def share_dir() -> Path:
    """The folder holding ``sim/``, ``config/``, ``launch/``: the checkout, else the installed share folder."""
    if (_SOURCE_ROOT / "package.xml").is_file() and (_SOURCE_ROOT / "sim").is_dir():
        return _SOURCE_ROOT
    for prefix in (Path(sys.prefix), *(Path(p).parent.parent for p in sys.path if p.endswith("site-packages"))):
        candidate = prefix / "share" / PACKAGE
        if (candidate / "package.xml").is_file():
            return candidate
    raise FileNotFoundError(
        f"cannot find robot_irl's data folders (sim/, config/, launch/): looked in {_SOURCE_ROOT} and "
        f"{sys.prefix}/share/{PACKAGE}; reinstall the package")


def asset(*parts: str) -> Path:
    """Path of a data file, e.g. ``asset('sim', 'small_arm.xml')``; raises naming the path if missing."""
    path = share_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"robot_irl asset not found: {path}")
    return path
