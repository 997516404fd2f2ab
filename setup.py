"""robot_irl: a ROS 2 ament_python package and a pip-installable project.

Dependency *ranges* live here so the package also installs on a robot's ROS 2 Python (Jazzy ships 3.12, where
rclpy comes from the distribution, not PyPI). The exact, conflict-resolved pins for this machine live in
requirements/lock.txt (see the comment at its top and the Makefile's `setup` target).
"""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "robot_irl"


data_files = [
    ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
    (f"share/{PACKAGE}", ["package.xml"]),
    (f"share/{PACKAGE}/launch", sorted(glob("launch/*.launch.py"))),
    (f"share/{PACKAGE}/config", sorted(glob("config/*.yaml"))),
    (f"share/{PACKAGE}/sim", sorted(glob("sim/*.xml"))),
    (f"share/{PACKAGE}/hardware", sorted(glob("hardware/*.yaml") + glob("hardware/*.md"))),
    (f"share/{PACKAGE}/datasets", sorted(glob("datasets/*.yaml") + glob("datasets/*.md"))),
]

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Robot learning from demonstrations and offline data, as ROS 2 nodes over sim or real drivers.",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={f"{PACKAGE}.console": ["static/*"]},
    data_files=data_files,
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "pyyaml>=6",
        "tqdm>=4.60",
    ],
    extras_require={
        # rclpy and the message packages come from the ROS 2 distribution on a robot; on a plain Python they come
        # from the ros-* wheels (see requirements/lock.txt).
        "sim": ["mujoco>=3.1,<=3.9.0", "robosuite>=1.5,<1.6"],
        "data": ["lerobot>=0.4,<0.5", "h5py>=3.8", "rosbags>=0.10", "pillow>=9"],
        "learn": ["torch>=2.2", "safetensors>=0.4", "matplotlib>=3.7", "tensorboard>=2.14"],
        "test": ["pytest>=8", "hypothesis>=6.100", "pytest-timeout>=2"],
    },
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "robot-irl = robot_irl.cli:main",
            "driver_node = robot_irl.ros.driver_node:main",
            "robot_emulator = robot_irl.ros.emulator:main",
            "teleop_node = robot_irl.ros.teleop_node:main",
            "recorder_node = robot_irl.ros.recorder_node:main",
            "console_node = robot_irl.ros.console_node:main",
            "policy_node = robot_irl.ros.policy_node:main",
            "operator_node = robot_irl.ros.operator_node:main",
            "adversary_node = robot_irl.ros.adversary_node:main",
        ],
    },
)
