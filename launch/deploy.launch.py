"""Deploy a trained policy (BC, IQL): the driver node over a simulator or a ros2_control robot, plus policy_node.

    ros2 launch robot_irl deploy.launch.py policy:=/path/to/runs/iql/checkpoint task:=lift          # sim
    ros2 launch robot_irl deploy.launch.py policy:=/path/to/checkpoint driver:=hardware             # real robot
    ros2 service call /robot_irl/arm std_srvs/srv/Trigger                                           # then it moves

The graph is defined once, in :func:`robot_irl.graphs.deploy` (``robot-irl up deploy --policy CKPT`` runs the same
spec); this file declares its arguments and turns each NodeSpec into a ``launch_ros`` Node with
``bringup.launch.py``'s ``to_launch_node``.
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

#: launch argument -> (default, description): bringup's, plus the policy's
ARGUMENTS = {
    **_BRINGUP.ARGUMENTS,
    "policy": ("", "checkpoint folder of the trained policy (required)"),
    "inputs": ("auto", "auto | observation (the driver's bundle) | sensors (joint_states + imu)"),
    "episode_steps": ("0", "sim only: reset the simulator every N actions (0 = never)"),
}


def _nodes(context, *args, **kwargs):
    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    return [_BRINGUP.to_launch_node(spec) for spec in build_graph("deploy", **values).nodes]


def generate_launch_description() -> LaunchDescription:
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in ARGUMENTS.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
