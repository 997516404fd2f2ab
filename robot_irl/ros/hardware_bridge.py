"""A driver for a real robot run by ros2_control: joint states in, forward position commands out.

:class:`Ros2ControlBridgeDriver` (registry name ``ros2_control``) owns a private rclpy context, node and executor
thread, so it works inside a driver node, a script or a test alike. ``connect()`` waits for the first
``sensor_msgs/JointState`` carrying every configured joint; observations come from the latest one (plus the
latest camera images); actions are published as ``std_msgs/Float64MultiArray`` to the controller's topic, in
``joint_names`` order.

It refuses to move until explicitly armed: ``send_action`` raises :class:`NotArmedError` (and publishes nothing)
before :meth:`arm`, and :class:`StaleJointStateError` when the last joint state arrived more than
``stale_after_ms`` ago (measured with the local monotonic clock at arrival, so clock skew between machines does
not matter). A stale state while armed is a fault that LATCHES, as in ros2_control and industrial drivers: the
bridge disarms itself (:attr:`fault` says why) and sends nothing more, even once the joint states come back (the
robot or its link restarted), until :meth:`arm` is called again. A gap longer than ``stale_after_ms`` between two
joint states (or IMU messages) trips it too, even if no action was sent during the gap. The core safety layer
(position bounds and a velocity-based step limit around the measured positions) applies to every action that does
go out.

``joint_names`` may be left empty: the joints are then taken from the first JointState at connect time (handy
against the emulator; on a real robot list the controller's joints and their limits).

``state_layout`` picks what ``observation.state`` holds: ``positions`` (the joint positions, named by joint: an arm
driven by position targets) or ``proprio`` (what a legged policy needs: ``<joint>.pos`` and ``<joint>.vel`` of every
joint, then the IMU's ``imu.qw .. imu.az`` from ``sensor_msgs/Imu`` on ``imu_topic``; actions are then named
``<joint>.pos``, as in :class:`robot_irl.legged.driver.Go1Driver`, so a policy trained in simulation sees the same
features on the robot). With an IMU, a stale IMU is refused exactly like stale joint states.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from robot_irl.core.config import Config, check
from robot_irl.core.contracts import RobotDriver
from robot_irl.core.features import Feature, image, vector
from robot_irl.core.safety import SafetyLimits


class NotArmedError(RuntimeError):
    """An action was sent to a real robot that has not been armed."""


class StaleJointStateError(RuntimeError):
    """The robot's joint states stopped arriving: commanding it blind is refused."""


@dataclass
class JointLimit(Config):
    lower: float = -math.pi
    upper: float = math.pi
    max_velocity: float = 0.5  # rad/s, deliberately slow by default

    def validate(self) -> None:
        check(self.lower <= self.upper, "JointLimit", f"lower {self.lower} > upper {self.upper}")
        check(self.max_velocity > 0, "JointLimit.max_velocity", "must be > 0")


@dataclass
class Ros2ControlBridgeConfig(Config):
    joint_names: tuple[str, ...] = ()  # empty: discover from the first JointState
    joint_states_topic: str = "/joint_states"
    command_topic: str = "/forward_position_controller/commands"
    camera_topics: dict[str, str] = field(default_factory=dict)  # camera name -> sensor_msgs/Image topic
    image_height: int = 84
    image_width: int = 84
    limits: dict[str, JointLimit] = field(default_factory=dict)  # per joint; others get default_limit
    default_limit: JointLimit = field(default_factory=JointLimit)
    control_freq: float = 20.0
    connect_timeout_s: float = 10.0
    stale_after_ms: float = 250.0
    instruction: str = ""
    state_layout: Literal["positions", "proprio"] = "positions"
    imu_topic: str = ""  # sensor_msgs/Imu; required by state_layout=proprio (e.g. /imu/data)

    def validate(self) -> None:
        w = "Ros2ControlBridgeConfig"
        check(len(set(self.joint_names)) == len(self.joint_names), f"{w}.joint_names", "has duplicates")
        unknown = sorted(set(self.limits) - set(self.joint_names)) if self.joint_names else []
        check(not unknown, f"{w}.limits", f"joints {unknown} are not in joint_names {list(self.joint_names)}")
        for name in ("joint_states_topic", "command_topic"):
            check(getattr(self, name).startswith("/"), f"{w}.{name}", "must be an absolute topic name")
        check(self.control_freq > 0, f"{w}.control_freq", "must be > 0")
        check(self.connect_timeout_s > 0, f"{w}.connect_timeout_s", "must be > 0")
        check(self.stale_after_ms > 0, f"{w}.stale_after_ms", "must be > 0")
        check(self.image_height > 0 and self.image_width > 0, f"{w}.image_height/width", "must be > 0")
        check(self.state_layout != "proprio" or bool(self.imu_topic), f"{w}.imu_topic",
              "state_layout=proprio needs the robot's sensor_msgs/Imu topic (e.g. /imu/data)")
        check(not self.imu_topic or self.imu_topic.startswith("/"), f"{w}.imu_topic", "must be an absolute topic name")


class Ros2ControlBridgeDriver(RobotDriver):
    """A ros2_control robot over topics. Disarmed until :meth:`arm`; see the module docstring."""

    name = "ros2_control"
    config_class = Ros2ControlBridgeConfig
    config: Ros2ControlBridgeConfig
    requires_arming = True

    def __init__(self, config: Ros2ControlBridgeConfig | None = None) -> None:
        super().__init__(config)
        self._joints: tuple[str, ...] = tuple(self.config.joint_names)
        self._lock = threading.Condition()
        self._positions: np.ndarray | None = None
        self._velocities: np.ndarray | None = None
        self._imu: np.ndarray | None = None
        self._state_time = 0.0
        self._imu_time = 0.0
        self._images: dict[str, np.ndarray] = {}
        self._armed = False
        self._fault: str | None = None
        self._t0 = time.monotonic()
        self._context = self._node = self._executor = self._thread = None
        self._stop = threading.Event()

    # -- description ----------------------------------------------------------------------------------
    @property
    def joint_names(self) -> tuple[str, ...]:
        if not self._joints:
            raise RuntimeError(f"{self.name}: joint_names are not configured; they are discovered from "
                               f"{self.config.joint_states_topic} at connect()")
        return self._joints

    @property
    def proprio(self) -> bool:
        return self.config.state_layout == "proprio"

    @property
    def state_names(self) -> list[str]:
        if not self.proprio:
            return list(self.joint_names)
        from robot_irl.ros.conversions import IMU_PARTS  # the names only; imports no rclpy

        return ([f"{j}.pos" for j in self.joint_names] + [f"{j}.vel" for j in self.joint_names]
                + [n for part in IMU_PARTS.values() for n in part])

    @property
    def observation_features(self) -> dict[str, Feature]:
        features = {"observation.state": vector(self.state_names)}
        for cam in self.config.camera_topics:
            features[f"observation.images.{cam}"] = image(self.config.image_height, self.config.image_width)
        return features

    @property
    def action_features(self) -> dict[str, Feature]:
        return {"action": vector([f"{j}.pos" for j in self.joint_names] if self.proprio else self.joint_names)}

    @property
    def safety_limits(self) -> SafetyLimits:
        lims = [self.config.limits.get(j, self.config.default_limit) for j in self.joint_names]
        return SafetyLimits(self.joint_names, lower=[lim.lower for lim in lims], upper=[lim.upper for lim in lims],
                            max_velocity=[lim.max_velocity for lim in lims], dt=1.0 / self.config.control_freq)

    # -- arming -------------------------------------------------------------------------------------------
    @property
    def is_armed(self) -> bool:
        return self._armed

    @property
    def fault(self) -> str | None:
        """Why the bridge disarmed itself (latched until :meth:`arm`), or ``None``."""
        return self._fault

    def arm(self) -> None:
        """Allow motion (and clear a latched fault). Needs a connection and fresh joint states."""
        self._require_connected("arm")
        self._check_fresh("arm")
        with self._lock:
            self._fault = None
            self._armed = True

    def disarm(self) -> None:
        """Stop sending commands (the robot's controller holds its last target)."""
        self._armed = False

    def _trip(self, reason: str) -> None:
        """A fault while armed: disarm and latch ``reason`` until :meth:`arm`. Call with the lock held."""
        if self._armed:
            self._armed = False
            self._fault = reason

    def _check_fresh(self, what: str) -> None:
        now = time.monotonic()
        sources = [(self._state_time, f"joint state on {self.config.joint_states_topic}")]
        if self.config.imu_topic:
            sources.append((self._imu_time, f"IMU message on {self.config.imu_topic}"))
        for when, source in sources:
            age_ms = (now - when) * 1000.0
            if age_ms > self.config.stale_after_ms:
                raise StaleJointStateError(
                    f"{self.name}.{what}: last {source} is {age_ms:.0f} ms old "
                    f"(> stale_after_ms={self.config.stale_after_ms:g}); refusing to move")

    def send_action(self, action) -> np.ndarray:
        self._require_connected("send_action")
        if not self._armed:
            why = f"disarmed by a fault ({self._fault})" if self._fault else "not armed"
            raise NotArmedError(f"{self.name}.send_action: the robot is {why}; call arm() first "
                                f"(nothing was sent to {self.config.command_topic})")
        try:
            self._check_fresh("send_action")
        except StaleJointStateError as e:
            with self._lock:
                self._trip(str(e))
            raise StaleJointStateError(f"{e}; disarmed until arm() is called") from None
        return super().send_action(action)

    # -- ROS plumbing ---------------------------------------------------------------------------------------
    def _connect(self) -> None:
        self._start_node()
        deadline = time.monotonic() + self.config.connect_timeout_s
        with self._lock:
            while not self._ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(min(left, 0.1))
            ready = self._positions is not None
            missing_imu = bool(self.config.imu_topic) and self._imu is None
            missing_cams = [c for c in self.config.camera_topics if c not in self._images]
        if not self._ready():
            self._stop_node()
            if not ready:
                what = (f"no sensor_msgs/JointState with joints {list(self._joints) or '(any)'}"
                        f"{' and their velocities' if self.proprio else ''} on {self.config.joint_states_topic}")
            elif missing_imu:
                what = f"no sensor_msgs/Imu on {self.config.imu_topic}"
            else:
                what = f"no image from cameras {missing_cams} on {[self.config.camera_topics[c] for c in missing_cams]}"
            raise TimeoutError(f"{self.name}.connect: {what} within {self.config.connect_timeout_s:g} s; "
                               f"is the robot (or robot_emulator) running in ROS_DOMAIN_ID and reachable?")
        self._t0 = time.monotonic()

    def _ready(self) -> bool:
        return (self._positions is not None and (not self.config.imu_topic or self._imu is not None)
                and all(c in self._images for c in self.config.camera_topics))

    def _start_node(self) -> None:
        import rclpy
        import rclpy.signals
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image, Imu, JointState
        from std_msgs.msg import Float64MultiArray

        self._context = Context()
        # args=[]: the host process's --ros-args (e.g. ``-r __node:=driver_node``) are not meant for this node
        rclpy.init(args=[], context=self._context, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
        self._node = rclpy.create_node("ros2_control_bridge", context=self._context, use_global_arguments=False,
                                       start_parameter_services=False)
        self._node.create_subscription(JointState, self.config.joint_states_topic, self._on_joint_state,
                                       qos_profile_sensor_data)
        for cam, topic in self.config.camera_topics.items():
            self._node.create_subscription(Image, topic, lambda msg, cam=cam: self._on_image(cam, msg),
                                           qos_profile_sensor_data)
        if self.config.imu_topic:
            self._node.create_subscription(Imu, self.config.imu_topic, self._on_imu, qos_profile_sensor_data)
        self._command_pub = self._node.create_publisher(Float64MultiArray, self.config.command_topic, 10)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._stop.clear()
        self._thread = threading.Thread(target=self._spin, name="ros2_control_bridge", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set() and self._context.ok():
            try:
                self._executor.spin_once(timeout_sec=0.05)
            except Exception:
                if self._stop.is_set() or not self._context.ok():
                    return
                raise

    def _stop_node(self) -> None:
        self._armed = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        if self._executor is not None:
            self._executor.shutdown(timeout_sec=1.0)
        if self._node is not None:
            self._node.destroy_node()
        if self._context is not None and self._context.ok():
            self._context.shutdown()
        self._context = self._node = self._executor = self._thread = None

    def _on_joint_state(self, msg) -> None:
        from robot_irl.ros.conversions import ConversionError, joint_state_to_array

        joints = self._joints or tuple(msg.name)
        try:
            positions = joint_state_to_array(msg, joints)
            velocities = joint_state_to_array(msg, joints, "velocity") if self.proprio else None
        except ConversionError:
            return  # another publisher's joints (a robot can have several); ours are not in this message
        if not np.all(np.isfinite(positions)) or (velocities is not None and not np.all(np.isfinite(velocities))):
            return  # a NaN reading is never a fresh state: staleness stops the robot if they keep coming
        with self._lock:
            now = time.monotonic()
            self._trip_on_gap(now - self._state_time, f"joint states on {self.config.joint_states_topic}")
            self._joints = joints
            self._positions = positions
            self._velocities = velocities
            self._state_time = now
            self._lock.notify_all()

    def _trip_on_gap(self, gap_s: float, what: str) -> None:
        """A message arrived ``gap_s`` after the previous one: longer than ``stale_after_ms`` is a comms fault."""
        if gap_s * 1000.0 > self.config.stale_after_ms:
            self._trip(f"{what} stopped for {gap_s * 1000.0:.0f} ms (> stale_after_ms="
                       f"{self.config.stale_after_ms:g})")

    def _on_imu(self, msg) -> None:
        from robot_irl.ros.conversions import IMU_PARTS, imu_values

        values = imu_values(msg)
        names = [n for part in IMU_PARTS.values() for n in part]
        if any(n not in values for n in names):
            return  # an IMU without orientation, gyro or accelerometer cannot feed a legged policy
        reading = np.array([values[n] for n in names])
        if not np.all(np.isfinite(reading)):
            return
        with self._lock:
            now = time.monotonic()
            self._trip_on_gap(now - self._imu_time, f"IMU messages on {self.config.imu_topic}")
            self._imu = reading
            self._imu_time = now
            self._lock.notify_all()

    def _on_image(self, camera: str, msg) -> None:
        from robot_irl.ros.conversions import ConversionError, image_from_msg

        try:
            frame = image_from_msg(msg)
        except ConversionError:
            return
        with self._lock:
            self._images[camera] = frame
            self._lock.notify_all()

    # -- the driver hooks ---------------------------------------------------------------------------------
    def _disconnect(self) -> None:
        self._stop_node()

    def _get_observation(self) -> dict[str, np.ndarray]:
        with self._lock:
            state = np.concatenate([self._positions, self._velocities, self._imu]) if self.proprio \
                else self._positions
            obs = {"observation.state": state.astype(np.float32)}
            images = dict(self._images)
        for cam in self.config.camera_topics:
            key = f"observation.images.{cam}"
            obs[key] = self.observation_features[key].check(f"{self.name} camera {cam}", images[cam])
        return obs

    def _apply_action(self, action: np.ndarray) -> None:
        from robot_irl.ros.conversions import action_to_msg

        if not self._armed:  # send_action checks first; this guards direct calls
            raise NotArmedError(f"{self.name}: not armed")
        self._command_pub.publish(action_to_msg(action))

    def _reset(self, seed: int | None) -> dict[str, np.ndarray]:
        """A real robot cannot be reset by software: this restarts the clock and counters, nothing moves."""
        self._t0 = time.monotonic()
        return self._get_observation()

    def _safety_reference(self) -> np.ndarray:
        with self._lock:
            return self._positions.copy()

    @property
    def sim_time(self) -> float:
        return time.monotonic() - self._t0

    def status(self) -> dict[str, Any]:
        """Connection, arming and joint-state age, for diagnostics."""
        age = (time.monotonic() - self._state_time) * 1000.0 if self._positions is not None else None
        return {"connected": self.is_connected, "armed": self._armed, "fault": self._fault,
                "joint_state_age_ms": age, "joints": list(self._joints)}
