"""The gait prior of the legged policies (robot_irl.legged.gait): clock, contact schedule, trot generator and gait
reward on known numbers; the env and the deployed policy agree on the clock and the generator."""
from __future__ import annotations

import numpy as np
import pytest

from robot_irl.core.config import ConfigError
from robot_irl.legged.gait import GaitConfig, clock_features, contact_schedule, standing, trot_offsets
from robot_irl.legged.observations import GO1_DEFAULT_POSE, ProprioSpec, proprio_from_state, proprio_observation

GAIT = {"frequency": 2.0, "generator": True, "lift": 0.2}
WALK = np.array([0.5, 0.0, 0.0])
STAND = np.zeros(3)


# -- pure ------------------------------------------------------------------------------------------------------------
@pytest.mark.unit
def test_clock_and_trot_contact_schedule_on_known_times():
    # 2 Hz: a quarter period (0.125 s) is phase pi/2: FR and RL at the top of their swing, FL and RR in stance
    np.testing.assert_allclose(clock_features(0.125, 2.0), [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(clock_features([0.0, 0.25], 2.0), [[0.0, 1.0], [0.0, -1.0]], atol=1e-12)
    assert contact_schedule(0.125, 2.0, WALK, 0.05).tolist() == [False, True, True, False]
    assert contact_schedule(0.375, 2.0, WALK, 0.05).tolist() == [True, False, False, True]  # the other diagonal
    assert contact_schedule(0.125, 2.0, STAND, 0.05).tolist() == [True] * 4  # standing: four feet down
    assert contact_schedule(0.125, 2.0, [0.0, 0.0, 0.5], 0.05).tolist() == [False, True, True, False]  # turning
    batch = contact_schedule(np.array([0.125, 0.375]), 2.0, np.stack([WALK, STAND]), 0.05)
    assert batch.tolist() == [[False, True, True, False], [True] * 4]
    assert standing([[0.02, 0.0, 0.0], [0.0, 0.2, 0.0], [0.0, 0.0, -0.1]], 0.05).tolist() == [True, False, False]


@pytest.mark.unit
def test_trot_generator_lifts_swing_feet_and_rests_when_standing():
    config = GaitConfig(**GAIT)
    peak = trot_offsets(0.125, WALK, config).reshape(4, 3)
    np.testing.assert_allclose(peak[[0, 3]], [[0.0, 0.2, -0.4]] * 2, atol=1e-12)  # FR, RL: thigh +lift, calf -2 lift
    np.testing.assert_allclose(peak[[1, 2]], 0.0, atol=1e-12)  # FL, RR in stance
    np.testing.assert_allclose(trot_offsets(0.125, STAND, config), 0.0)
    np.testing.assert_allclose(trot_offsets(0.125, WALK, GaitConfig(frequency=2.0)), 0.0)  # no generator
    batch = trot_offsets(np.array([0.125, 0.375]), np.stack([WALK, WALK]), config)
    assert batch.shape == (2, 12)
    np.testing.assert_allclose(batch[1].reshape(4, 3)[[1, 2]], [[0.0, 0.2, -0.4]] * 2, atol=1e-12)
    with pytest.raises(ConfigError, match="GaitConfig.generator"):
        GaitConfig(generator=True)
    with pytest.raises(ConfigError, match="GaitConfig.lift"):
        GaitConfig(frequency=2.0, lift=1.0)


@pytest.mark.unit
def test_observation_clock_entries_and_spec_round_trip():
    spec = ProprioSpec(gait_frequency=2.0)
    assert spec.obs_dim == 47 and spec.names[-2:] == ("clock.sin", "clock.cos") and len(spec.names) == 47
    assert ProprioSpec.from_dict(spec.to_dict()) == spec and ProprioSpec().obs_dim == 45
    assert ProprioSpec.from_dict({k: v for k, v in ProprioSpec().to_dict().items() if k != "gait_frequency"}) \
        == ProprioSpec()  # checkpoints from before the clock
    rng = np.random.default_rng(0)
    q, qd, gyro, act = rng.normal(size=(3, 12)), rng.normal(size=(3, 12)), rng.normal(size=(3, 3)), \
        rng.normal(size=(3, 12))
    quat = np.tile([1.0, 0, 0, 0], (3, 1))
    t = np.array([0.0, 0.125, 0.3])
    obs = proprio_observation(q, qd, gyro, quat, WALK, act, spec, t)
    np.testing.assert_allclose(obs[:, :45], proprio_observation(q, qd, gyro, quat, WALK, act), rtol=1e-6)
    np.testing.assert_allclose(obs[:, spec.slices["clock"]], clock_features(t, 2.0), atol=1e-6)
    with pytest.raises(ValueError, match="time_s"):
        proprio_observation(q, qd, gyro, quat, WALK, act, spec)
    single = proprio_observation(q[1], qd[1], gyro[1], quat[1], WALK, act[1], spec, 0.125)
    np.testing.assert_array_equal(single, obs[1])


@pytest.mark.unit
def test_gait_reward_counts_feet_that_follow_the_schedule():
    from robot_irl.legged.env import RewardComputer, RewardConfig

    config = RewardConfig(gait_contact=0.5)
    assert config.term_names()[-1] == "gait_contact"
    rewards = RewardComputer(config, 3, 0.02)
    desired = np.array([[False, True, True, False]] * 3)
    contact = np.array([[False, True, True, False],  # all four follow the schedule
                        [True, True, True, True],  # standing through the swing: half
                        [True, False, False, True]])  # the wrong diagonal: none
    z3, z12 = np.zeros((3, 3)), np.zeros((3, 12))
    terms = rewards.compute(command=np.tile(WALK, (3, 1)), lin_vel_body=z3, ang_vel_body=z3,
                            gravity_body=np.tile([0.0, 0.0, -1.0], (3, 1)), base_height=np.full(3, 0.27),
                            torques=z12, joint_vel=z12, action=z12, foot_contact=contact, collisions=np.zeros(3),
                            fell=np.zeros(3, bool), desired_contact=desired)
    np.testing.assert_allclose(terms["gait_contact"], 0.5 * 0.02 * np.array([1.0, 0.5, 0.0]), rtol=1e-6)
    with pytest.raises(ValueError, match="desired_contact"):
        rewards.compute(command=np.tile(WALK, (3, 1)), lin_vel_body=z3, ang_vel_body=z3, gravity_body=z3,
                        base_height=np.zeros(3), torques=z12, joint_vel=z12, action=z12, foot_contact=contact,
                        collisions=np.zeros(3), fell=np.zeros(3, bool))


@pytest.mark.unit
def test_gait_reward_needs_the_clock():
    from robot_irl.legged.env import LeggedEnvConfig

    with pytest.raises(ConfigError, match="LeggedEnvConfig.rewards.gait_contact"):
        LeggedEnvConfig.from_dict({"rewards": {"gait_contact": 1.0}})


# -- the env and the deployed policy ---------------------------------------------------------------------------------
def _gait_env(**kw):
    from robot_irl.legged.env import make_legged_env

    kw.setdefault("num_envs", 3)
    return make_legged_env(randomization="none", seed=0, gait=GAIT, rewards={"gait_contact": 1.0}, **kw)


@pytest.mark.sim
def test_env_clock_and_generator_match_the_pure_functions():
    env = _gait_env()
    assert env.obs_dim == 47 and env.spec.has_clock and "gait_contact" in env.reward_names
    env.set_command(np.stack([WALK, STAND, [0.0, 0.2, 0.0]]))
    obs = env.reset()
    rng = np.random.default_rng(0)
    for k in range(7):
        np.testing.assert_allclose(obs["proprio"][:, -2:], np.tile(clock_features(k * env.dt, 2.0), (3, 1)),
                                   atol=1e-6)
        action = rng.uniform(-1, 1, (3, 12)).astype(np.float32)
        obs, _, _, info = env.step(action)
        expected = GO1_DEFAULT_POSE + trot_offsets(k * env.dt, env.commands, env.gait) + 0.25 * action
        expected = np.clip(expected, env.layout.joint_range[:, 0], env.layout.joint_range[:, 1])
        np.testing.assert_allclose(env._history[:, -1], expected, atol=1e-6)  # the target the servos got
        assert np.all(info["terms"]["gait_contact"] >= 0)
    np.testing.assert_allclose(env.desired_contact()[1], True)  # standing command: four feet wanted down
    env.close()


@pytest.mark.sim
def test_deployed_policy_keeps_the_env_clock_and_generator(tmp_path):
    from robot_irl.drivers import make_driver
    from robot_irl.legged.policy import LeggedPolicy
    from robot_irl.legged.train import LeggedTrainConfig, train_legged

    config = LeggedTrainConfig.from_dict({
        "num_envs": 4, "steps_per_env": 8, "total_steps": 32, "progress": False, "checkpoint_every": 0,
        "ppo": {"minibatches": 2, "epochs": 1}, "env": {"gait": GAIT, "rewards": {"gait_contact": 1.0}},
        "actor_critic": {"kind": "dr", "actor_hidden": [16], "critic_hidden": [16]}})
    train_legged(config, tmp_path / "run")
    policy = LeggedPolicy(tmp_path / "run", command=WALK)
    assert policy.gait.generator and policy.ppo.obs_dim == 47
    driver = make_driver("go1", {"command": WALK.tolist()})
    env = _gait_env(num_envs=1)
    env.set_command(WALK)
    with driver:
        obs = driver.reset(seed=0)
        policy.reset()
        for k in range(5):
            x = policy.proprio(obs)
            np.testing.assert_allclose(x[-2:], clock_features(k * 0.02, 2.0), atol=1e-6)
            np.testing.assert_allclose(x, proprio_from_state(obs["observation.state"], WALK, policy.last_action,
                                                             policy.spec, k * 0.02), atol=1e-6)
            target = policy.act(obs)
            residual = policy.act_batch(policy.history.data.numpy())[0]  # the history act() just used
            expected = GO1_DEFAULT_POSE + trot_offsets(k * 0.02, WALK, env.gait) + 0.25 * residual
            np.testing.assert_allclose(target, expected, atol=1e-5)
            driver.send_action(target)
            obs = driver.get_observation()
        assert policy.steps == 5
        policy.reset()
        assert policy.steps == 0 and policy.time_s == 0.0
    env.close()
