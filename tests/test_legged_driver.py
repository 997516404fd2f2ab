"""The Go1 simulation behind the driver contract (``go1``): features, safety, replay, perturbations, the runner, and
agreement with the training env's observation."""
from __future__ import annotations

import numpy as np
import pytest

from robot_irl.core.config import ConfigError
from robot_irl.core.perturbation import Perturbation, PerturbationError, PerturbationKind
from robot_irl.core.safety import UnsafeActionError
from robot_irl.drivers import DRIVERS, FAMILIES, make_driver, resolve_backend
from robot_irl.legged.observations import GO1_DEFAULT_POSE, GO1_JOINT_NAMES, proprio_from_state

pytestmark = pytest.mark.sim

K = PerturbationKind


@pytest.fixture
def go1():
    driver = make_driver("go1")
    with driver:
        yield driver


def test_registered_and_features_known_without_connecting():
    assert "go1" in DRIVERS.names() and "go1" in FAMILIES["sim"]
    assert resolve_backend("go1") == "go1" and resolve_backend("sim", "go1") == "go1"
    driver = make_driver("go1", {"model_variant": "sim2sim", "randomization": "held_out"})
    assert not driver.is_connected and driver.data is None
    state = driver.observation_features["observation.state"]
    assert state.dtype == "float32" and state.shape == (34,)
    assert state.names[:3] == ("FR_hip.pos", "FR_thigh.pos", "FR_calf.pos")
    assert state.names[12] == "FR_hip.vel" and state.names[24:] == (
        "imu.qw", "imu.qx", "imu.qy", "imu.qz", "imu.wx", "imu.wy", "imu.wz", "imu.ax", "imu.ay", "imu.az")
    env_names = driver.observation_features["observation.environment_state"].names
    assert env_names[:3] == ("base.x", "base.y", "base.z") and "base.vx" in env_names
    assert "privileged.friction" in env_names
    action = driver.action_features["action"]
    assert action.names == tuple(f"{j}.pos" for j in GO1_JOINT_NAMES) and driver.action_dim == 12
    limits = driver.safety_limits
    assert limits.lower[2] == pytest.approx(-2.818) and limits.upper[1] == pytest.approx(4.501)
    assert limits.max_step == (1.0,) * 12 and driver.fps == 50.0 and driver.joint_names == GO1_JOINT_NAMES
    with pytest.raises(ConfigError, match="Go1Config.control_freq"):
        make_driver("go1", {"control_freq": 30.0})
    with pytest.raises(ConfigError, match="Go1Config.randomization.*known presets"):
        make_driver("go1", {"randomization": "wild"})


def test_standing_observation_and_status(go1):
    obs = go1.reset(0)
    assert obs["observation.state"].dtype == np.float32 and obs["observation.state"].shape == (34,)
    np.testing.assert_allclose(obs["observation.state"][:12], GO1_DEFAULT_POSE, atol=1e-6)
    np.testing.assert_allclose(obs["observation.state"][24:28], [1, 0, 0, 0], atol=1e-6)
    for _ in range(50):
        sent = go1.send_action(np.array(GO1_DEFAULT_POSE, np.float32))
    assert not go1.last_clamped.any() and np.allclose(sent, GO1_DEFAULT_POSE)
    obs = go1.get_observation()
    env = obs["observation.environment_state"]
    assert 0.2 < env[2] < 0.3 and env[9] == pytest.approx(env[2], abs=1e-6)  # height above the flat floor
    assert abs(obs["observation.state"][-1] - 9.81) < 0.5  # the accelerometer feels gravity (standing still)
    status = go1.task_status()
    assert set(status) == {"reward", "success"} and status["success"] is True
    assert go1.step_count == 50 and go1.sim_time == pytest.approx(1.0)


def test_hold_action_is_the_last_target_and_keeps_the_robot_standing(go1):
    np.testing.assert_allclose(go1.hold_action(), GO1_DEFAULT_POSE, atol=1e-6)
    for _ in range(100):  # 2 s of watchdog ticks
        go1.send_action(go1.hold_action())
    assert go1.get_observation()["observation.environment_state"][2] > 0.2 and go1.task_status()["success"]
    target = go1.hold_action()
    target[1] += 0.2
    sent = go1.send_action(target)
    np.testing.assert_array_equal(go1.hold_action(), sent)


def test_nan_action_rejected_and_nothing_moves(go1):
    before = go1.get_state()
    bad = go1.hold_action()
    bad[4] = np.nan
    with pytest.raises(UnsafeActionError, match=r"FL_thigh.pos=nan.*nothing was sent"):
        go1.send_action(bad)
    assert np.array_equal(go1.get_state(), before) and go1.step_count == 0


def test_targets_are_clamped_to_joint_limits_and_the_step_limit(go1):
    target = np.array(GO1_DEFAULT_POSE, np.float32)
    target[2] = 5.0  # FR calf far beyond its upper limit (-0.888)
    target[0] = -0.3  # within one step of the measured position: unchanged
    sent = go1.send_action(target)
    assert go1.last_clamped[2] and not go1.last_clamped[0]
    assert sent[2] <= -0.888 + 1e-6 and sent[0] == pytest.approx(-0.3)
    np.testing.assert_allclose(go1.data.ctrl, sent, atol=1e-6)  # no delay: the servos got what was returned
    measured = go1.get_observation()["observation.state"][:12].astype(np.float64)
    far = measured.copy()
    far[4] += 3.0  # FL thigh: inside its range, but 3 rad from where it is
    sent = go1.send_action(far)
    assert go1.last_clamped[4] and sent[4] == pytest.approx(measured[4] + 1.0, abs=1e-5)  # max_joint_step


def test_state_round_trip_replays_exactly_with_randomized_dynamics():
    from robot_irl.legged.driver import TrotPolicy

    config = {"randomization": "train", "seed": 3}
    a = make_driver("go1", config)
    with a:
        a.reset(5)
        policy = TrotPolicy()
        for _ in range(20):
            a.send_action(policy.act({}))
        state = a.get_state()
        actions = [policy.act({}) for _ in range(30)]
        sent = [a.send_action(x) for x in actions]
        final = a.get_observation()
        status = a.task_status()
        b = make_driver("go1", config)
        with b:
            b.reset(99)  # other dynamics, then overwritten by the stored state
            b.set_state(state)
            assert np.array_equal(b.params, a.params)  # the sampled dynamics came with the state
            np.testing.assert_array_equal(b.model.actuator_gainprm, a.model.actuator_gainprm)
            for x in sent:
                b.send_action(x)
            replay = b.get_observation()
            assert b.step_count == a.step_count and b.task_status() == status
            with pytest.raises(ValueError, match="set_state"):
                b.set_state(state[:10])
    for key in final:
        np.testing.assert_array_equal(final[key], replay[key], err_msg=key)


def test_push_perturbation_changes_the_base_velocity(go1):
    go1.send_action(go1.hold_action())
    v0 = go1.get_observation()["observation.environment_state"][3:6].copy()
    rec = go1.perturb(Perturbation(K.PUSH, "trunk", {"velocity": [0.0, 1.0, 0.0]}))
    assert rec.kind is K.PUSH and rec.step == 1 and rec.params["base_velocity"][1] == pytest.approx(v0[1] + 1.0)
    v1 = go1.get_observation()["observation.environment_state"][3:6]
    assert v1[1] - v0[1] == pytest.approx(1.0, abs=1e-5)
    for _ in range(5):
        go1.send_action(go1.hold_action())
    assert go1.get_observation()["observation.environment_state"][1] > 0.02  # it moved sideways
    with pytest.raises(PerturbationError, match=r"unknown push target 'leg'.*trunk"):
        go1.perturb(Perturbation(K.PUSH, "leg", {"velocity": [1, 0, 0]}))
    rec = go1.perturb(Perturbation(K.MOVE_OBJECT, "trunk", {"position": [0.0, 0.0, 0.6]}))
    assert go1.get_observation()["observation.environment_state"][2] == pytest.approx(0.6)


def test_falling_ends_success():
    driver = make_driver("go1")
    with driver:
        driver.reset(0)
        driver.perturb(Perturbation(K.MOVE_OBJECT, "trunk", {"position": [0, 0, 0.4], "quat": [0.707, 0.707, 0, 0]}))
        for _ in range(40):
            driver.send_action(driver.hold_action())
        assert driver.fallen and driver.task_status()["success"] is False
        driver.reset(0)
        assert driver.task_status()["success"] is True


def test_runner_rollout_with_a_trot_walks_forward():
    from robot_irl.legged.driver import TrotPolicy
    from robot_irl.runner import run_episode

    driver = make_driver("go1", {"command": [0.3, 0.0, 0.0]})
    with driver:
        result = run_episode(driver, TrotPolicy(), max_steps=150, seed=0)
        env_state = driver.get_observation()["observation.environment_state"]
    assert result.steps == 150 and result.success and np.isfinite(result.episode_return)
    assert result.episode_return > 0 and env_state[0] > 0.4  # ~0.25 m/s for 3 s


def test_driver_observation_gives_the_env_observation():
    """Training (the vec env) and deployment (the driver + proprio_from_state) see the same numbers."""
    from robot_irl.legged.env import make_legged_env

    env = make_legged_env("go1_flat", num_envs=1, randomization="none", seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(10):
        action = rng.uniform(-1, 1, (1, 12)).astype(np.float32)
        obs, *_ = env.step(action)
    lay = env.layout
    driver = make_driver("go1")
    with driver:
        d = driver.data
        d.qpos[:] = env.state[0, lay.state_qpos]
        d.qvel[:] = env.state[0, lay.state_qvel]
        state = driver.get_observation()["observation.state"]
    deployed = proprio_from_state(state, env.commands[0], action[0])
    np.testing.assert_allclose(deployed, obs["proprio"][0], rtol=1e-5, atol=1e-6)
