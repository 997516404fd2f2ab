"""Adversarial data collection: the driver node, the recorder, a teleop device and the adversary console.

    ros2 launch robot_irl collect.launch.py dataset:=runs/adc/dataset                   # sim (robosuite)
    ros2 launch robot_irl collect.launch.py cameras:=agentview operator:=joy console:=true
    ros2 launch robot_irl collect.launch.py driver:=hardware dataset:=/data/adc resume:=true
    ros2 launch robot_irl collect.launch.py operator:=scripted adversary:=scripted episodes:=5   # hands-free

The graph is defined once, in :func:`robot_irl.graphs.collect` (``robot-irl up collect`` runs the same spec).
``operator:=keyboard`` (the default) needs a terminal: run ``teleop_node`` in one.
"""
from robot_irl.ros.launch_description import BRINGUP_ARGUMENTS, graph_launch_description

#: launch argument -> (default, description): bringup's, plus the collection's
ARGUMENTS = {
    **BRINGUP_ARGUMENTS,
    "dataset": ("runs/collect/dataset", "the LeRobot dataset root the recorder writes (bags: <dataset>_bags)"),
    "repo_id": ("", "dataset repo id; empty = local/<folder name>"),
    "resume": ("false", "append to an existing dataset (features must match)"),
    "overwrite": ("false", "replace an existing dataset"),
    "bag": ("true", "also write an MCAP bag per episode (crash recovery: robot-irl recover)"),
    "operator": ("keyboard", "keyboard | joy | spacemouse | scripted | none (keyboard runs in its own terminal)"),
    "adversary": ("none", "none | scripted (the scripted ADC adversary node; a human uses console:=true)"),
    "episodes": ("0", "operator:=scripted: episodes to record, then the graph ends (0: until stopped)"),
    "max_steps": ("250", "operator:=scripted: control steps per episode at most"),
    "seed": ("0", "operator/adversary:=scripted: episode i uses seed + i"),
    "preset": ("train", "adversary:=scripted: train | held_out"),
    "console": ("false", "start the web adversary console"),
    "console_host": ("127.0.0.1", "console address"),
    "console_port": ("8080", "console port"),
}


def generate_launch_description():
    return graph_launch_description("collect", ARGUMENTS)
