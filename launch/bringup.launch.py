"""Bring up robot_irl's driver node over a simulator or a ros2_control robot.

    ros2 launch robot_irl bringup.launch.py                                  # sim (robosuite)
    ros2 launch robot_irl bringup.launch.py driver:=sim backend:=mock
    ros2 launch robot_irl bringup.launch.py driver:=hardware                 # the real robot's ros2_control
    ros2 launch robot_irl bringup.launch.py driver:=hardware emulate:=true   # ... against the MuJoCo emulator

The graph itself is defined once, in :func:`robot_irl.graphs.build_graph`; this file only turns each NodeSpec into
a ``launch_ros`` Node (``robot-irl up`` runs the same GraphSpec without the ROS 2 CLI).
"""
# `launch` is the ROS 2 launch package, not this repository's launch/ folder (ruff's isort mistakes it for ours)
from launch import LaunchDescription  # noqa: I001
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from robot_irl.graphs import build_graph

#: launch argument -> (default, description); every value reaches build_graph as a string ("" = unset)
ARGUMENTS = {
    "driver": ("sim", "sim | hardware | a backend name"),
    "backend": ("", "backend within the family (sim: robosuite, mujoco_arm, mock); empty = the family default"),
    "task": ("", "simulated task, e.g. lift (ignored on hardware)"),
    "cameras": ("", "comma-separated camera names, e.g. agentview,wrist"),
    "rate": ("", "control rate in Hz; empty = the driver's default"),
    "emulate": ("false", "driver:=hardware only: also start robot_emulator, a simulated ros2_control robot"),
    "emulator_backend": ("", "the emulator's simulated robot (mujoco_arm by default, or mock)"),
    "driver_config": ("", "driver config: a YAML file or an inline YAML/JSON mapping"),
    "start_armed": ("", "true/false; empty = armed for simulators, disarmed for hardware"),
}


def to_launch_node(spec) -> Node:
    """A NodeSpec as a launch_ros Node. String parameters stay strings (launch_ros would parse them as YAML)."""
    parameters = {k: ParameterValue(v, value_type=str) if isinstance(v, str) else v for k, v in spec.parameters.items()}
    return Node(package=spec.package, executable=spec.executable, name=spec.name, namespace=spec.namespace,
                parameters=[parameters], remappings=[tuple(r) for r in spec.remappings],
                arguments=list(spec.arguments), output="screen")


def _nodes(context, *args, **kwargs):
    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    return [to_launch_node(spec) for spec in build_graph("bringup", **values).nodes]


def generate_launch_description() -> LaunchDescription:
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in ARGUMENTS.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
