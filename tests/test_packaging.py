"""The repository is a ROS 2 ament_python package: colcon builds it and installs what `ros2 run/launch` need."""
from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parent.parent


def test_package_xml_is_format_3_ament_python():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "robot_irl"
    assert root.find("export/build_type").text == "ament_python"
    assert (ROOT / "resource" / "robot_irl").is_file()
    for data_dir in ("sim", "hardware", "datasets", "config", "launch"):
        assert not (ROOT / data_dir / "__init__.py").exists(), f"{data_dir}/ must not be a Python package"


def test_colcon_build_installs_package_where_ros2_finds_it(tmp_path):
    colcon = Path(sys.executable).parent / "colcon"
    if not colcon.exists():
        pytest.skip("colcon is not installed in this environment")
    src = tmp_path / "src" / "robot_irl"
    ignore = shutil.ignore_patterns(".venv", ".git", "runs", "build", "install", "log", "__pycache__", "*.egg-info")
    shutil.copytree(ROOT, src, ignore=ignore)
    out = subprocess.run([str(colcon), "build", "--base-paths", "src"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    prefix = tmp_path / "install" / "robot_irl"
    assert (prefix / "share/ament_index/resource_index/packages/robot_irl").is_file()
    assert (prefix / "share/robot_irl/package.xml").is_file()
    assert (prefix / "share/robot_irl/launch/bringup.launch.py").is_file()
    for exe in ("robot-irl", "driver_node", "robot_emulator"):
        assert (prefix / "lib/robot_irl" / exe).is_file(), f"{exe} not where `ros2 run robot_irl {exe}` looks"
