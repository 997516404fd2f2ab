"""robot_irl: robot learning from demonstrations and offline data.

Importing this package has no side effects and pulls in no heavy dependency (rclpy, MuJoCo, torch): those are
imported by the adapters that need them (``robot_irl.drivers.*``, ``robot_irl.ros``, ``robot_irl.data``).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
