"""The adversary console: a small web page to perturb a running episode and drive episode controls.

- :mod:`robot_irl.console.backend`: the :class:`~robot_irl.console.backend.ConsoleBackend` protocol the web app
  talks to, and :class:`~robot_irl.console.backend.DriverBackend` around an in-process driver.
- :mod:`robot_irl.console.app`: ``create_app(backend)`` (FastAPI) and :class:`~robot_irl.console.app.ConsoleServer`
  (uvicorn in a thread, loopback by default).
- :mod:`robot_irl.ros.console_node`: the same page served by a ROS 2 node that talks to ``driver_node`` and the
  recorder over topics and services.

Importing this package imports neither FastAPI nor rclpy.
"""
