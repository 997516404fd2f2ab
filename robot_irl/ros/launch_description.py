"""What every launch file of robot_irl does, once: declare arguments, build a graph from them, make launch_ros Nodes.

A launch file (``launch/<graph>.launch.py``) is then only its argument table and one call::

    def generate_launch_description():
        return graph_launch_description("deploy", ARGUMENTS)

The graph itself comes from :func:`robot_irl.graphs.build_graph` (the same spec ``robot-irl up`` runs), evaluated
when the launch service runs the ``OpaqueFunction`` (argument values arrive as strings; ``""`` means unset).
``launch``/``launch_ros`` are imported when a description is built, never on import of this module, so the graph
tests can load launch files with stand-in modules.
"""
from __future__ import annotations

#: the driver arguments every graph takes: name -> (default, description)
BRINGUP_ARGUMENTS: dict[str, tuple[str, str]] = {
    "driver": ("sim", "sim | hardware | a backend name"),
    "backend": ("", "backend within the family (sim: robosuite, mujoco_arm, mock, go1); empty = the family default"),
    "task": ("", "simulated task, e.g. lift (ignored on hardware)"),
    "cameras": ("", "comma-separated camera names, e.g. agentview,wrist"),
    "rate": ("", "control rate in Hz; empty = the driver's default"),
    "emulate": ("false", "driver:=hardware only: also start robot_emulator, a simulated ros2_control robot"),
    "emulator_backend": ("", "the emulator's simulated robot (mujoco_arm by default, or mock)"),
    "driver_config": ("", "driver config: a YAML file or an inline YAML/JSON mapping"),
    "start_armed": ("", "true/false; empty = armed for simulators, disarmed for hardware"),
}


def to_launch_node(spec):
    """A NodeSpec as a launch_ros Node. String parameters stay strings (launch_ros would parse them as YAML)."""
    from launch_ros.actions import Node
    from launch_ros.parameter_descriptions import ParameterValue

    parameters = {k: ParameterValue(v, value_type=str) if isinstance(v, str) else v for k, v in spec.parameters.items()}
    return Node(package=spec.package, executable=spec.executable, name=spec.name, namespace=spec.namespace,
                parameters=[parameters], remappings=[tuple(r) for r in spec.remappings],
                arguments=list(spec.arguments), output="screen")


def graph_launch_description(graph: str, arguments: dict[str, tuple[str, str]]):
    """The ``LaunchDescription`` of graph ``graph`` with ``arguments`` declared (name -> (default, description))."""
    from launch import LaunchDescription  # noqa: I001 (the ROS 2 launch package, not our launch/ folder)
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration

    from robot_irl.graphs import build_graph

    def nodes(context, *args, **kwargs):
        values = {name: LaunchConfiguration(name).perform(context) for name in arguments}
        return [to_launch_node(spec) for spec in build_graph(graph, **values).nodes]

    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in arguments.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])
