"""The ROS 2 edge of robot_irl: the only package that imports rclpy.

- :mod:`robot_irl.ros.conversions`: ROS messages <-> core arrays and records;
- :mod:`robot_irl.ros.driver_node`: any registered driver as a ROS 2 node (console script ``driver_node``);
- :mod:`robot_irl.ros.hardware_bridge`: a driver that talks to a ros2_control robot over topics;
- :mod:`robot_irl.ros.emulator`: a MuJoCo robot playing the ros2_control side (console script ``robot_emulator``);
- :mod:`robot_irl.ros.policy_node`: a trained checkpoint driving the graph (console script ``policy_node``);
- :mod:`robot_irl.ros.recorder_node`, :mod:`~robot_irl.ros.teleop_node`, :mod:`~robot_irl.ros.console_node`: ADC;
- :mod:`robot_irl.ros.remote`: the driver contract over ROS (``RemoteDriver``);
- :mod:`robot_irl.ros.launch_description`: what every ``launch/*.launch.py`` does (imports ``launch`` lazily);
- :mod:`robot_irl.ros.probe`: a small client node for tests, benchmarks and scripts.

Importing this package imports nothing heavy; each submodule imports rclpy itself.
"""
