"""Deploy a trained policy (BC, IQL): the driver node over a simulator or a ros2_control robot, plus policy_node.

    ros2 launch robot_irl deploy.launch.py policy:=/path/to/runs/iql/checkpoint task:=lift          # sim
    ros2 launch robot_irl deploy.launch.py policy:=/path/to/checkpoint driver:=hardware             # real robot
    ros2 service call /robot_irl/arm std_srvs/srv/Trigger                                           # then it moves

The graph is defined once, in :func:`robot_irl.graphs.deploy` (``robot-irl up deploy --policy CKPT`` runs the same
spec).
"""
from robot_irl.ros.launch_description import BRINGUP_ARGUMENTS, graph_launch_description

#: launch argument -> (default, description): bringup's, plus the policy's
ARGUMENTS = {
    **BRINGUP_ARGUMENTS,
    "policy": ("", "checkpoint folder of the trained policy (required)"),
    "inputs": ("auto", "auto | observation (the driver's bundle) | sensors (joint_states + imu)"),
    "episode_steps": ("0", "sim only: reset the simulator every N actions (0 = never)"),
}


def generate_launch_description():
    return graph_launch_description("deploy", ARGUMENTS)
