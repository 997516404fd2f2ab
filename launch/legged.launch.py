"""A legged robot walking with a trained policy: the driver node (simulated Go1 or the ros2_control bridge) and
policy_node acting from ``/robot_irl/joint_states`` + ``/robot_irl/imu`` at the velocity on ``/robot_irl/cmd_vel``.

    ros2 launch robot_irl legged.launch.py policy:=/path/to/runs/hib/checkpoint                      # sim (Go1)
    ros2 launch robot_irl legged.launch.py policy:=/path/to/checkpoint task:=go1_rough command:=0.5,0,0
    ros2 launch robot_irl legged.launch.py policy:=/path/to/checkpoint driver:=hardware              # real Go1
    ros2 service call /robot_irl/arm std_srvs/srv/Trigger                                            # then it moves
    ros2 topic pub /robot_irl/cmd_vel geometry_msgs/msg/Twist "{linear: {x: 0.5}}"

The graph is defined once, in :func:`robot_irl.graphs.legged` (``robot-irl up legged --policy CKPT`` runs the same
spec); on hardware its driver config is ``hardware/go1_ros2_control.yaml`` unless ``driver_config`` overrides
entries of it.
"""
from robot_irl.ros.launch_description import BRINGUP_ARGUMENTS, graph_launch_description

#: launch argument -> (default, description): bringup's (minus cameras), plus the policy's
ARGUMENTS = {
    **{k: v for k, v in BRINGUP_ARGUMENTS.items() if k != "cameras"},
    "task": ("", "simulated task: go1_flat (default) or go1_rough; ignored on hardware"),
    "policy": ("", "checkpoint folder of the trained legged policy (required)"),
    "command": ("", "velocity command vx,vy,wz until /robot_irl/cmd_vel arrives (default 0,0,0: stand)"),
    "command_timeout_ms": ("100", "driver watchdog: hold the last target when no command came for this long"),
}


def generate_launch_description():
    return graph_launch_description("legged", ARGUMENTS)
