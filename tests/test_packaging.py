"""The repository is a ROS 2 ament_python package: colcon builds it and installs what `ros2 run/launch` need,
and the installed executables find the installed models (the ament index), not only the checkout."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.unit
def test_package_xml_is_format_3_ament_python():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "robot_irl"
    assert root.find("export/build_type").text == "ament_python"
    assert (ROOT / "resource" / "robot_irl").is_file()
    for data_dir in ("sim", "hardware", "datasets", "config", "launch"):
        assert not (ROOT / data_dir / "__init__.py").exists(), f"{data_dir}/ must not be a Python package"


def _fake_install(root: Path) -> Path:
    """A prefix laid out as colcon installs robot_irl: the ament index marker and share/robot_irl."""
    share = root / "share" / "robot_irl"
    (share / "sim").mkdir(parents=True)
    (share / "package.xml").write_text("<package/>")
    marker = root / "share/ament_index/resource_index/packages/robot_irl"
    marker.parent.mkdir(parents=True)
    marker.touch()
    return share


@pytest.mark.unit
def test_share_dir_is_found_through_the_ament_index(tmp_path, monkeypatch):
    """Outside a checkout, the data is found as ROS 2 finds a package's share folder: AMENT_PREFIX_PATH."""
    from robot_irl import paths

    other, prefix = tmp_path / "other_ws", tmp_path / "install" / "robot_irl"
    (other / "share").mkdir(parents=True)  # a prefix of another package: skipped
    share = _fake_install(prefix)
    monkeypatch.setattr(paths, "_SOURCE_ROOT", tmp_path / "site-packages")  # not a checkout
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join([str(other), str(prefix)]))
    assert paths.ament_prefix() == prefix
    assert paths.share_dir() == share
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError:
        pass
    else:  # the same answer as ROS 2's own lookup
        assert Path(get_package_share_directory("robot_irl")) == share
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(other))  # not sourced, no pip install: a clear error
    monkeypatch.setattr(paths.sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.setattr(paths.sys, "path", [])
    with pytest.raises(FileNotFoundError, match="source install/setup.bash"):
        paths.asset("sim", "small_arm.xml")


@pytest.mark.unit
def test_share_dir_prefers_the_checkout():
    from robot_irl import paths

    assert paths.share_dir() == ROOT and paths.asset("sim", "small_arm.xml").is_file()


@pytest.mark.ros
@pytest.mark.sim
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
    _run_installed_emulator(prefix, cwd=tmp_path)


def _run_installed_emulator(prefix: Path, cwd: Path) -> None:
    """``ros2 run robot_irl robot_emulator`` from the install: it loads the MuJoCo arm from share/robot_irl.

    The environment is what ``source install/setup.bash`` gives (AMENT_PREFIX_PATH, PYTHONPATH on the installed
    site-packages), the working directory is outside the checkout, and the topics are private to this test.
    """
    pytest.importorskip("rclpy")
    pytest.importorskip("mujoco")
    site = next((prefix / "lib").glob("python3*/site-packages"))
    env = {**os.environ, "AMENT_PREFIX_PATH": str(prefix), "PYTHONPATH": str(site), "MUJOCO_GL": "egl"}
    topic = f"/packaging_test_{os.getpid()}"
    proc = subprocess.Popen(
        [str(prefix / "lib/robot_irl/robot_emulator"), "--ros-args", "-p", "backend:=mujoco_arm",
         "-p", f"joint_states_topic:={topic}/joint_states", "-p", f"command_topic:={topic}/commands"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "emulating mujoco_arm" in line:
                break
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    output = "".join(lines)
    assert "emulating mujoco_arm" in output, output
    # and it was the installed package that found the installed data, not this checkout
    where = subprocess.run([sys.executable, "-c", "from robot_irl import paths; print(paths.__file__); "
                            "print(paths.share_dir())"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    module, share = where.stdout.split()
    assert module.startswith(str(site)) and Path(share) == prefix / "share" / "robot_irl", where.stdout + where.stderr
