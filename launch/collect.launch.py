"""Adversarial data collection: the driver node, the recorder, a teleop device and the adversary console.

    ros2 launch robot_irl collect.launch.py dataset:=runs/adc/dataset                   # sim (robosuite)
    ros2 launch robot_irl collect.launch.py cameras:=agentview operator:=joy console:=true
    ros2 launch robot_irl collect.launch.py driver:=hardware dataset:=/data/adc resume:=true

The graph is defined once, in :func:`robot_irl.graphs.collect` (``robot-irl up collect`` runs the same spec);
this file declares its arguments and turns each NodeSpec into a ``launch_ros`` Node with ``bringup.launch.py``'s
``to_launch_node``. ``operator:=keyboard`` (the default) needs a terminal: run ``teleop_node`` in one.
"""
# `launch` is the ROS 2 launch package, not this repository's launch/ folder (ruff's isort mistakes it for ours)
import importlib.util  # noqa: I001
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from robot_irl.graphs import build_graph


def _bringup_launch():
    """``bringup.launch.py`` beside this file (its arguments and ``to_launch_node``)."""
    spec = importlib.util.spec_from_file_location("robot_irl_bringup_launch",
                                                  Path(__file__).with_name("bringup.launch.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_BRINGUP = _bringup_launch()

#: launch argument -> (default, description): bringup's, plus the collection's
ARGUMENTS = {
    **_BRINGUP.ARGUMENTS,
    "dataset": ("runs/collect/dataset", "the LeRobot dataset root the recorder writes (bags: <dataset>_bags)"),
    "repo_id": ("", "dataset repo id; empty = local/<folder name>"),
    "resume": ("false", "append to an existing dataset (features must match)"),
    "overwrite": ("false", "replace an existing dataset"),
    "bag": ("true", "also write an MCAP bag per episode (crash recovery: robot-irl recover)"),
    "operator": ("keyboard", "keyboard | joy | spacemouse | scripted | none (keyboard runs in its own terminal)"),
    "console": ("false", "start the web adversary console"),
    "console_host": ("127.0.0.1", "console address"),
    "console_port": ("8080", "console port"),
}


def _nodes(context, *args, **kwargs):
    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    return [_BRINGUP.to_launch_node(spec) for spec in build_graph("collect", **values).nodes]


def generate_launch_description() -> LaunchDescription:
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in ARGUMENTS.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
