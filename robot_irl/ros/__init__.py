"""The ROS 2 edge of robot_irl: the only package that imports rclpy.

- :mod:`robot_irl.ros.conversions`: ROS messages <-> core arrays and records;
- :mod:`robot_irl.ros.driver_node`: any registered driver as a ROS 2 node (console script ``driver_node``);
- :mod:`robot_irl.ros.hardware_bridge`: a driver that talks to a ros2_control robot over topics;
- :mod:`robot_irl.ros.emulator`: a MuJoCo robot playing the ros2_control side (console script ``robot_emulator``);
- :mod:`robot_irl.ros.probe`: a small client node for tests, benchmarks and scripts.

Importing this package imports nothing heavy; each submodule imports rclpy itself.
"""
