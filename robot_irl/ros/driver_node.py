"""Any registered robot driver as a ROS 2 node (console script ``driver_node``).

Topics (relative to the node's namespace, ``/robot_irl`` by default, so sim and hardware look the same; in hardware
mode the robot's own stack keeps ``/joint_states``):

=============================== ==================================== =========================================
name                            type                                 what
=============================== ==================================== =========================================
``commands`` (in)               std_msgs/Float64MultiArray           action, forward-command-controller style
``perturb`` (in)                std_msgs/String                      a Perturbation request as JSON
``joint_states`` (out)          sensor_msgs/JointState               every tick
``imu`` (out)                   sensor_msgs/Imu                      every tick, if the state has ``imu.*``
``camera/<name>/image_raw``     sensor_msgs/Image (rgb8)             every tick, one per image feature
``action_sent`` (out)           std_msgs/Float64MultiArray           what was sent after the safety clamp
``observation`` (out)           std_msgs/Float64MultiArray           per-tick bundle: state vectors, reference,
                                                                     reward/success (see conversions.bundle_*)
``instruction`` (out, latched)  std_msgs/String                      the current language instruction
``perturbation_events`` (out)   std_msgs/String                      stamped record JSON, or ``{"error": ...}``
=============================== ==================================== =========================================

Services (std_srvs/Trigger): ``reset``, ``arm``, ``disarm``.

Each tick (a timer at the driver's control rate) sends the latest command if it arrived less than
``command_timeout_ms`` ago, else the driver's ``hold_action()``, then publishes. A command with the wrong length or
a NaN/inf is rejected with a logged error and the robot holds. Drivers that set ``requires_arming`` (real robots)
start disarmed: nothing is sent to them until the ``arm`` service is called. Simulators start armed (parameter
``start_armed``); disarmed, they are stepped with the hold action.

The command watchdog is a deadline, not a check at the next tick: every command re-arms a one-shot timer of
``command_timeout_ms``; when it fires (no command for that long: the tele-operator or policy died) the command is
expired and a tick runs at once with the hold action, then the control timer restarts from there. Checking the
command's age only in the control tick would hold up to one control period late (50 ms at 20 Hz, 200 ms at 5 Hz),
and the robot would keep following the dead command meanwhile (``bench/bench_watchdog.py`` measures both).

Parameters: ``driver`` (sim | hardware | a backend name), ``backend``, ``driver_config`` (inline YAML/JSON mapping
or a path to a YAML file), ``command_timeout_ms`` (100, :data:`robot_irl.core.safety.COMMAND_TIMEOUT_MS`),
``start_armed``.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Any

import numpy as np
import rclpy
import rclpy.signals
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, Imu, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from robot_irl.core.contracts import RobotDriver
from robot_irl.core.perturbation import PerturbationError
from robot_irl.core.safety import COMMAND_TIMEOUT_MS, validate_action
from robot_irl.ros import conversions as conv

DEFAULT_NAMESPACE = "robot_irl"
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
_THROTTLE_S = 2.0


def build_driver(driver: str, backend: str = "", driver_config: str = "") -> RobotDriver:
    """Build (not connect) a driver from the node's string parameters."""
    from robot_irl.drivers import make_driver
    from robot_irl.graphs import load_mapping

    return make_driver(driver, load_mapping(driver_config, "driver_config"), backend=backend or None)


class DriverNode(Node):
    """The node around one driver. Pass a driver instance (tests), or none to build it from parameters."""

    def __init__(self, driver: RobotDriver | None = None, *, node_name: str = "driver_node",
                 namespace: str = DEFAULT_NAMESPACE, context=None,
                 parameter_overrides: dict[str, Any] | None = None) -> None:
        overrides = [Parameter(k, value=v) for k, v in (parameter_overrides or {}).items()]
        super().__init__(node_name, namespace=namespace, context=context, parameter_overrides=overrides)
        params = {name: self.declare_parameter(name, default).value for name, default in (
            ("driver", "sim"), ("backend", ""), ("driver_config", ""), ("command_timeout_ms", COMMAND_TIMEOUT_MS))}
        self.command_timeout_s = float(params["command_timeout_ms"]) / 1000.0
        self.driver = driver
        try:
            if not self.command_timeout_s > 0:
                raise ValueError(f"command_timeout_ms must be > 0, got {params['command_timeout_ms']}")
            if self.driver is None:
                self.driver = build_driver(params["driver"], params["backend"], params["driver_config"])
            self.requires_arming = bool(getattr(self.driver, "requires_arming", False))
            start_armed = self.declare_parameter("start_armed", not self.requires_arming).value
            if not self.driver.is_connected:
                self.driver.connect()
            self._setup(start_armed)
        except Exception:
            if self.driver is not None:
                self.driver.disconnect()
            self.destroy_node()
            raise

    def _setup(self, start_armed: bool) -> None:
        self._setup_layout()
        self._lock = threading.Lock()
        self._command: np.ndarray | None = None
        self._command_time = 0.0
        self._command_expired = False  # set by the watchdog deadline; a new command clears it
        self._command_label = "hold"
        self.last_source: str | None = None
        self.last_label = "hold"
        self._sim_armed = False
        self._published_instruction: str | None = None
        self.rejected_commands = 0
        self.ticks = 0
        self._setup_interfaces()
        self.watchdog = self.create_timer(self.command_timeout_s, self._on_watchdog)
        self.watchdog.cancel()  # started by each command
        if start_armed:
            self._arm()
        self.timer = self.create_timer(1.0 / self.driver.fps, self.tick)
        if self.command_timeout_s < 1.0 / self.driver.fps:
            self.get_logger().warning(
                f"command_timeout_ms {self.command_timeout_s * 1000:g} is shorter than one control period "
                f"({1000 / self.driver.fps:g} ms): commands must come faster than the control rate or they expire")
        self.get_logger().info(
            f"driver {self.driver.name} at {self.driver.fps:g} Hz, {self.driver.action_dim} action dims, "
            f"{'armed' if self.armed else 'DISARMED (call the arm service)'}")

    # -- setup ------------------------------------------------------------------------------------------
    def _setup_layout(self) -> None:
        features = self.driver.observation_features
        state = features.get("observation.state")
        if state is None or state.names is None:
            raise ValueError(f"driver {self.driver.name}: observation.state needs named entries to publish "
                             f"joint_states (features: {sorted(features)})")
        self.layout = conv.StateLayout.from_names(state.names, getattr(self.driver, "joint_names", None))
        self.imu_layout = conv.ImuLayout.from_names(state.names)
        self.cameras = [k.removeprefix("observation.images.") for k, f in features.items()
                        if k.startswith("observation.images.") and f.is_image]

    def _setup_interfaces(self) -> None:
        self.joint_state_pub = self.create_publisher(JointState, "joint_states", 10)
        self.imu_pub = self.create_publisher(Imu, "imu", 10) if self.imu_layout.present else None
        self.image_pubs = {c: self.create_publisher(Image, f"camera/{c}/image_raw", 5) for c in self.cameras}
        self.action_sent_pub = self.create_publisher(Float64MultiArray, "action_sent", 10)
        self.observation_pub = self.create_publisher(Float64MultiArray, "observation", 10)
        self.instruction_pub = self.create_publisher(String, "instruction", LATCHED)
        self.events_pub = self.create_publisher(String, "perturbation_events", 10)
        self.create_subscription(Float64MultiArray, "commands", self._on_command, 10)
        self.create_subscription(String, "perturb", self._on_perturb, 10)
        self.create_service(Trigger, "reset", self._on_reset)
        self.create_service(Trigger, "arm", self._on_arm)
        self.create_service(Trigger, "disarm", self._on_disarm)
        self._publish_instruction()

    # -- arming -------------------------------------------------------------------------------------------
    @property
    def armed(self) -> bool:
        return bool(self.driver.is_armed) if self.requires_arming else self._sim_armed

    def _arm(self) -> None:
        if self.requires_arming:
            self.driver.arm()
        self._sim_armed = True
        self._clear_command()  # only commands that arrive after arming move the robot

    def _disarm(self) -> None:
        if self.requires_arming:
            self.driver.disarm()
        self._sim_armed = False
        self._clear_command()

    def _clear_command(self) -> None:
        with self._lock:
            self._command = None
        self.watchdog.cancel()

    # -- callbacks ----------------------------------------------------------------------------------------
    def _on_command(self, msg: Float64MultiArray) -> None:
        where = f"{self.get_namespace().rstrip('/')}/commands"
        try:
            action = conv.action_from_msg(msg, self.driver.action_dim, where)
            validate_action(action, self.driver.safety_limits, where)
        except ValueError as e:
            self.rejected_commands += 1
            self._clear_command()
            self.get_logger().error(f"rejected command, holding: {e}", throttle_duration_sec=_THROTTLE_S)
            return
        with self._lock:
            self._command, self._command_time = action, time.monotonic()
            self._command_expired = False
            self._command_label = conv.label_of(msg) or "action"
        self.watchdog.reset()  # the deadline: command_timeout_ms from now

    def _on_watchdog(self) -> None:
        """No command for ``command_timeout_ms``: expire it and hold now, not at the next control tick."""
        self.watchdog.cancel()
        with self._lock:
            if self._command is None or self._command_expired:
                return
            self._command_expired = True
        if self.last_source == "command":  # the robot was following the dead command: stop it at once
            self.tick()
            self.timer.reset()  # the next control tick one period after this hold

    def _on_perturb(self, msg: String) -> None:
        try:
            record = self.driver.perturb(conv.perturbation_from_msg(msg))
        except PerturbationError as e:
            self._publish(self.events_pub, conv.error_event_msg(e, msg.data))
            self.get_logger().error(f"perturbation refused: {e}")
            return
        except Exception as e:  # a driver failure must not take the node down
            self._publish(self.events_pub, conv.error_event_msg(f"{type(e).__name__}: {e}", msg.data))
            self.get_logger().error(f"perturbation failed: {type(e).__name__}: {e}")
            return
        self._publish(self.events_pub, conv.perturbation_to_msg(record))
        self._publish_instruction()

    def _trigger(self, response, action, done: str):
        try:
            action()
        except Exception as e:
            response.success, response.message = False, f"{type(e).__name__}: {e}"
            self.get_logger().error(f"{done} failed: {response.message}")
        else:
            response.success, response.message = True, done
            self.get_logger().info(done)
        return response

    def _on_reset(self, request, response):
        def reset() -> None:
            self._clear_command()
            self.driver.reset()
            self._publish_instruction()
        return self._trigger(response, reset, "reset")

    def _on_arm(self, request, response):
        return self._trigger(response, self._arm, "armed")

    def _on_disarm(self, request, response):
        return self._trigger(response, self._disarm, "disarmed")

    # -- the control tick ---------------------------------------------------------------------------------
    def _choose_action(self) -> np.ndarray | None:
        """The fresh command, else the hold action; ``None`` when nothing may be sent (disarmed robot).

        Sets :attr:`last_source`: ``command``, ``timeout`` (a command went stale: the watchdog holds), ``hold``
        (no command yet) or ``disarmed``.
        """
        if not self.armed:
            if self._sim_armed and self.requires_arming:  # nobody called disarm: the driver tripped on a fault
                self._sim_armed = False
                self._clear_command()
                self.get_logger().error(f"{self.driver.name} disarmed itself (a latched fault, e.g. stale joint "
                                        f"states); nothing is sent until the arm service is called")
            self.last_source = "disarmed"
            return None if self.requires_arming else self.driver.hold_action()
        with self._lock:
            command, age = self._command, time.monotonic() - self._command_time
            label, expired = self._command_label, self._command_expired
        if command is not None and not expired and age <= self.command_timeout_s:
            self.last_source = "command"
            self.last_label = label
            return command
        if command is not None and self.last_source != "timeout":
            self.get_logger().warning(f"no command for {age * 1000:.0f} ms (> command_timeout_ms): holding")
        self.last_source = "timeout" if command is not None else "hold"
        return self.driver.hold_action()

    def tick(self) -> None:
        """One control step: send, then publish what was sent and the new observation. Never raises."""
        self.ticks += 1
        self.last_label = "hold"
        try:
            action = self._choose_action()
            sent = self.driver.send_action(action) if action is not None else None
        except Exception as e:
            sent = None
            self._clear_command()
            self.get_logger().error(f"send_action failed, holding: {type(e).__name__}: {e}",
                                    throttle_duration_sec=_THROTTLE_S)
        try:
            self._publish_tick(sent)
        except Exception as e:
            self.get_logger().error(f"publishing failed: {type(e).__name__}: {e}", throttle_duration_sec=_THROTTLE_S)

    def _publish_tick(self, sent: np.ndarray | None) -> None:
        now = self.get_clock().now().nanoseconds * 1e-9
        obs = self.driver.get_observation()
        if sent is not None:
            self._publish(self.action_sent_pub, conv.action_to_msg(sent, self.last_label))
        vectors = {k: v for k, v in obs.items() if not k.startswith("observation.images.")}
        status = {"sim_time": self.driver.sim_time, "step": self.driver.step_count, **self.driver.task_status()}
        self._publish(self.observation_pub, conv.bundle_to_msg(
            self.last_label, vectors, self.driver.hold_action(), status))
        self._publish(self.joint_state_pub, conv.joint_state_from_state(obs["observation.state"], self.layout, now))
        if self.imu_pub is not None:
            self._publish(self.imu_pub, conv.imu_from_state(obs["observation.state"], self.imu_layout, now))
        for camera, pub in self.image_pubs.items():
            self._publish(pub, conv.image_to_msg(obs[f"observation.images.{camera}"], now, camera))
        if self.driver.instruction != self._published_instruction:
            self._publish_instruction()

    def _publish_instruction(self) -> None:
        self._published_instruction = self.driver.instruction
        self._publish(self.instruction_pub, conv.string_msg(self._published_instruction))

    def _publish(self, publisher, msg) -> None:
        """Publish; a reader that does not drain fast enough can make rclpy raise, which must not stop the loop."""
        try:
            publisher.publish(msg)
        except Exception as e:  # rclpy's RCLError: cannot publish data
            self.get_logger().warning(f"publish on {publisher.topic_name} failed: {e}",
                                      throttle_duration_sec=_THROTTLE_S)

    def close(self) -> None:
        """Disconnect the driver and destroy the node."""
        try:
            self.timer.cancel()
            self.watchdog.cancel()
            self.driver.disconnect()
        finally:
            self.destroy_node()


def spin_until(executor, stop: threading.Event, period_s: float = 0.1) -> None:
    """Spin ``executor`` until ``stop`` is set or the context shuts down."""
    try:
        while not stop.is_set() and executor.context.ok():
            executor.spin_once(timeout_sec=period_s)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


def install_stop_handlers(stop: threading.Event) -> None:
    """SIGINT and SIGTERM ask for a clean shutdown (the loop notices within one spin period)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def run_node(make_node, prog: str, argv: list[str] | None = None, stop: threading.Event | None = None) -> int:
    """Run a node built by ``make_node()`` until SIGINT/SIGTERM (or ``stop`` is set, e.g. by the node itself),
    then close it cleanly. Returns the exit code."""
    argv = sys.argv if argv is None else argv
    rclpy.init(args=argv, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    stop = stop if stop is not None else threading.Event()
    install_stop_handlers(stop)
    node = None
    try:
        node = make_node()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spin_until(executor, stop)
        return 0
    except Exception as e:
        print(f"{prog}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        if node is not None:
            node.close()
        if rclpy.ok():
            rclpy.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Console script: ``driver_node --ros-args -p driver:=sim -p backend:=mock ...``."""
    return run_node(DriverNode, "driver_node", argv)


if __name__ == "__main__":
    sys.exit(main())
