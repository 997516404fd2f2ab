"""Where the package's non-Python files live: the source checkout, or ``share/robot_irl`` once installed.

``sim/`` (MJCF models), ``config/``, ``launch/``, ``hardware/`` and ``datasets/`` sit at the repository root (they
are data, not packages). They are found, in this order:

1. the source checkout (an editable install, ``colcon build --symlink-install``, or ``PYTHONPATH`` on the tree);
2. the ROS 2 way, after ``colcon build`` and ``source install/setup.bash``: the ament resource index. Every prefix
   on ``AMENT_PREFIX_PATH`` that holds ``share/ament_index/resource_index/packages/robot_irl`` has installed the
   package, and its data is in ``<prefix>/share/robot_irl`` (the lookup of ``ament_index_python``'s
   ``get_package_share_directory``, done here so a pip install needs no ROS package);
3. a pip install: ``<sys.prefix>/share/robot_irl`` (setup.py's ``data_files``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "robot_irl"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent
AMENT_MARKER = Path("share", "ament_index", "resource_index", "packages", PACKAGE)


def ament_prefix(environ: dict[str, str] | None = None) -> Path | None:
    """The first prefix on ``AMENT_PREFIX_PATH`` whose ament index lists robot_irl, else ``None``."""
    value = (os.environ if environ is None else environ).get("AMENT_PREFIX_PATH", "")
    for entry in value.split(os.pathsep):
        if entry and (Path(entry) / AMENT_MARKER).is_file():
            return Path(entry)
    return None


def _candidates() -> list[tuple[str, Path]]:
    found = [("source checkout", _SOURCE_ROOT)]
    prefix = ament_prefix()
    if prefix is not None:
        found.append(("AMENT_PREFIX_PATH", prefix / "share" / PACKAGE))
    site_prefixes = [Path(p).parents[2] for p in sys.path  # <prefix>/lib/pythonX.Y/site-packages
                     if p.endswith("site-packages") and len(Path(p).parents) > 2]
    for root in (Path(sys.prefix), *site_prefixes):
        found.append(("python prefix", root / "share" / PACKAGE))
    return found


def share_dir() -> Path:
    """The folder holding ``sim/``, ``config/``, ``launch/``: the checkout, else the installed share folder."""
    candidates = _candidates()
    for _, candidate in candidates:
        if (candidate / "package.xml").is_file() and (candidate / "sim").is_dir():
            return candidate
    looked = "; ".join(dict.fromkeys(f"{path} ({where})" for where, path in candidates))
    raise FileNotFoundError(
        f"cannot find robot_irl's data folders (sim/, config/, launch/); looked in {looked}. After colcon build, "
        f"source install/setup.bash (sets AMENT_PREFIX_PATH); after pip, reinstall the package")


def asset(*parts: str) -> Path:
    """Path of a data file, e.g. ``asset('sim', 'small_arm.xml')``; raises naming the path if missing."""
    path = share_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"robot_irl asset not found: {path}")
    return path
