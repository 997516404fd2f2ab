"""Bring up robot_irl's driver node over a simulator or a ros2_control robot.

    ros2 launch robot_irl bringup.launch.py                                  # sim (robosuite)
    ros2 launch robot_irl bringup.launch.py driver:=sim backend:=mock
    ros2 launch robot_irl bringup.launch.py driver:=hardware                 # the real robot's ros2_control
    ros2 launch robot_irl bringup.launch.py driver:=hardware emulate:=true   # ... against the MuJoCo emulator

The graph itself is defined once, in :func:`robot_irl.graphs.bringup` (``robot-irl up bringup`` runs the same
GraphSpec without the ROS 2 CLI); :func:`robot_irl.ros.launch_description.graph_launch_description` turns it into
launch_ros Nodes.
"""
from robot_irl.ros.launch_description import BRINGUP_ARGUMENTS, graph_launch_description

#: launch argument -> (default, description); every value reaches build_graph as a string ("" = unset)
ARGUMENTS = dict(BRINGUP_ARGUMENTS)


def generate_launch_description():
    return graph_launch_description("bringup", ARGUMENTS)
