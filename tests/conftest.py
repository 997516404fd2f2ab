"""Shared test setup: headless, offline, and a private ROS domain per test session."""
from __future__ import annotations

import os
import random

# Tests may set the environment (importing robot_irl must not). A random domain keeps concurrent runs on one
# machine (two developers, CI) from hearing each other's DDS traffic.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("PYNPUT_BACKEND", "dummy")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 101)))
