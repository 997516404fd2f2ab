"""ROS message <-> core conversions, with the real message classes."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("rclpy")
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String

from robot_irl.core.perturbation import Perturbation, PerturbationError, PerturbationKind
from robot_irl.ros import conversions as conv

pytestmark = pytest.mark.ros


def test_state_layout_plain_names_are_positions():
    layout = conv.StateLayout.from_names(["joint_0", "joint_1"])
    assert layout.joint_names == ("joint_0", "joint_1")
    assert layout.position_index == (0, 1)
    assert layout.velocity_index is None


def test_state_layout_pos_vel_suffixes():
    layout = conv.StateLayout.from_names(["a.pos", "b.pos", "a.vel", "b.vel"])
    assert layout.joint_names == ("a", "b")
    assert layout.position_index == (0, 1)
    assert layout.velocity_index == (2, 3)


def test_state_layout_skips_non_joint_entries_when_suffixes_are_used():
    names = ["j1.pos", "j2.pos", "j1.vel", "j2.vel", "eef.x", "eef.qw", "gripper.left"]  # the robosuite layout
    layout = conv.StateLayout.from_names(names)
    assert layout.joint_names == ("j1", "j2") and layout.velocity_index == (2, 3)
    assert conv.StateLayout.from_names(["a", "b.vel", "b"]).joint_names == ("a", "b")


def test_state_layout_partial_velocity_is_dropped_and_joints_filter():
    layout = conv.StateLayout.from_names(["a.pos", "b.pos", "a.vel", "eef.x"])
    assert layout.joint_names == ("a", "b")
    assert layout.velocity_index is None  # only "a" has one: JointState needs all or none
    only = conv.StateLayout.from_names(["a.pos", "b.pos", "a.vel", "eef.x"], joints=["b", "a"])
    assert only.joint_names == ("b", "a") and only.position_index == (1, 0)


def test_state_layout_errors_name_the_joint():
    with pytest.raises(conv.ConversionError, match="'a'"):
        conv.StateLayout.from_names(["a.pos", "a.pos"])
    with pytest.raises(conv.ConversionError, match="no position"):
        conv.StateLayout.from_names(["a.vel"])
    with pytest.raises(conv.ConversionError, match="zz"):
        conv.StateLayout.from_names(["a"], joints=["zz"])


def test_observation_to_joint_state_with_velocity():
    obs = {"observation.state": np.array([0.1, 0.2, 1.0, 2.0], dtype=np.float32)}
    msg = conv.joint_state_from_observation(obs, ["j0.pos", "j1.pos", "j0.vel", "j1.vel"], stamp_s=12.5)
    assert isinstance(msg, JointState)
    assert list(msg.name) == ["j0", "j1"]
    np.testing.assert_allclose(msg.position, [0.1, 0.2], rtol=1e-6)
    np.testing.assert_allclose(msg.velocity, [1.0, 2.0])
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 500_000_000)
    with pytest.raises(conv.ConversionError, match="observation.state"):
        conv.joint_state_from_observation({}, ["j0"])


def test_joint_state_to_array_reorders_and_names_missing():
    msg = JointState(name=["b", "extra", "a"], position=[2.0, 9.0, 1.0])
    np.testing.assert_array_equal(conv.joint_state_to_array(msg, ["a", "b"]), [1.0, 2.0])
    with pytest.raises(conv.ConversionError, match=r"missing joints \['c'\]"):
        conv.joint_state_to_array(msg, ["a", "c"])
    with pytest.raises(conv.ConversionError, match="velocity"):
        conv.joint_state_to_array(msg, ["a"], field="velocity")  # 3 names, 0 velocities


def test_image_round_trip_rgb8_and_bgr8():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    msg = conv.image_to_msg(frame, stamp_s=1.0, frame_id="wrist")
    assert isinstance(msg, Image)
    assert (msg.height, msg.width, msg.encoding, msg.step) == (6, 5, "rgb8", 15)
    np.testing.assert_array_equal(conv.image_from_msg(msg), frame)
    bgr = Image(height=6, width=5, encoding="bgr8", step=15, data=frame[..., ::-1].tobytes())
    np.testing.assert_array_equal(conv.image_from_msg(bgr), frame)


def test_image_errors():
    with pytest.raises(conv.ConversionError, match="uint8"):
        conv.image_to_msg(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(conv.ConversionError, match="mono8"):
        conv.image_from_msg(Image(height=1, width=1, encoding="mono8", step=1, data=b"\x00"))
    with pytest.raises(conv.ConversionError, match="bytes"):
        conv.image_from_msg(Image(height=2, width=2, encoding="rgb8", step=6, data=b"\x00" * 5))


def test_action_round_trip_and_length_check():
    msg = conv.action_to_msg(np.array([0.5, -1.0, 2.0], dtype=np.float32))
    assert isinstance(msg, Float64MultiArray)
    assert msg.layout.dim[0].size == 3
    np.testing.assert_array_equal(conv.action_from_msg(msg, 3), [0.5, -1.0, 2.0])
    with pytest.raises(conv.ConversionError, match="/robot_irl/commands: expected 4 values, got 3"):
        conv.action_from_msg(msg, 4, where="/robot_irl/commands")


def test_perturbation_round_trip_and_malformed():
    request = Perturbation(PerturbationKind.MOVE_OBJECT, "cube", {"position": [0.1, 0.0, 0.8]})
    msg = conv.perturbation_to_msg(request)
    assert isinstance(msg, String)
    assert conv.perturbation_from_msg(msg) == request
    with pytest.raises(PerturbationError, match="not JSON"):
        conv.perturbation_from_msg(String(data="{oops"))
    event = json.loads(conv.error_event_msg("bad", "{oops").data)
    assert event == {"error": "bad", "request": "{oops"}


def test_stamp_rejects_negative():
    assert conv.stamp_to_seconds(conv.stamp(3.25)) == pytest.approx(3.25)
    with pytest.raises(conv.ConversionError):
        conv.stamp(-1.0)


# -- IMU, sensor topics -> state, velocity commands ------------------------------------------------------------

LEGGED_NAMES = ["a.pos", "b.pos", "a.vel", "b.vel", "imu.qw", "imu.qx", "imu.qy", "imu.qz", "imu.wx", "imu.wy",
                "imu.wz", "imu.ax", "imu.ay", "imu.az"]


def test_imu_round_trip_through_joint_state_and_imu_messages():
    state = np.array([0.1, -0.2, 1.5, -1.5, 0.9, 0.1, 0.2, 0.3, 0.01, 0.02, 0.03, 0.0, 0.5, 9.8])
    layout = conv.ImuLayout.from_names(LEGGED_NAMES)
    imu = conv.imu_from_state(state, layout, stamp_s=3.0)
    assert (imu.orientation.w, imu.angular_velocity.z, imu.linear_acceleration.z) == pytest.approx((0.9, 0.03, 9.8))
    assert imu.orientation_covariance[0] != -1.0 and imu.header.stamp.sec == 3
    js = conv.joint_state_from_state(state, conv.StateLayout.from_names(LEGGED_NAMES), 3.0)
    assert list(js.name) == ["a", "b"]
    np.testing.assert_allclose(conv.state_from_sensors(LEGGED_NAMES, js, imu), state)
    # a robot publishes more joints, in another order: the driver's layout picks its own
    js.name, js.position, js.velocity = ["x", "b", "a"], [9.0, -0.2, 0.1], [0.0, -1.5, 1.5]
    np.testing.assert_allclose(conv.state_from_sensors(LEGGED_NAMES, js, imu), state)


def test_imu_parts_not_provided_and_missing_entries_are_named():
    names = ["j.pos", "imu.wx", "imu.wy", "imu.wz"]
    imu = conv.imu_from_state([0.0, 1.0, 2.0, 3.0], conv.ImuLayout.from_names(names))
    assert imu.orientation_covariance[0] == -1.0 and imu.linear_acceleration_covariance[0] == -1.0  # REP 145
    assert set(conv.imu_values(imu)) == {"imu.wx", "imu.wy", "imu.wz"}
    with pytest.raises(conv.ConversionError, match="imu.qx"):
        conv.ImuLayout.from_names(["imu.qw", "imu.qy", "imu.qz"])
    js = conv.joint_state_from_state([0.5], conv.StateLayout.from_names(["j.pos"]))
    with pytest.raises(conv.ConversionError, match=r"imu.wx.*no Imu yet"):
        conv.state_from_sensors(names, js, None)
    with pytest.raises(conv.ConversionError, match="j.vel"):
        conv.state_from_sensors(["j.pos", "j.vel"], js)
    js.position = [float("nan")]
    with pytest.raises(conv.ConversionError, match="NaN"):
        conv.state_from_sensors(["j.pos"], js)
    plain = conv.joint_state_from_state([0.5, 0.7], conv.StateLayout.from_names(["j0", "j1"]))
    np.testing.assert_allclose(conv.state_from_sensors(["j1", "j0"], plain), [0.7, 0.5])  # unsuffixed: positions


def test_twist_commands():
    twist = conv.command_to_twist([0.5, -0.1, 0.3])
    np.testing.assert_allclose(conv.twist_to_command(twist), [0.5, -0.1, 0.3])
    twist.linear.x = float("inf")
    with pytest.raises(conv.ConversionError, match="non-finite"):
        conv.twist_to_command(twist)
