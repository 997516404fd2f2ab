"""The legged simulation: Go1 model, observations, domain randomization, rough terrain and the vectorised env.

Pure parts (observation function, randomization presets and normalisation, terrain) are ``unit``; everything that
steps MuJoCo is ``sim``. Envs here are small (1-8 robots, short episodes) to keep the file fast.
"""
from __future__ import annotations

import numpy as np
import pytest

from robot_irl.core.config import ConfigError
from robot_irl.legged import LEGGED_TASKS
from robot_irl.legged import randomization as dr
from robot_irl.legged.observations import (
    GO1_DEFAULT_POSE,
    GO1_JOINT_NAMES,
    ProprioSpec,
    projected_gravity,
    proprio_from_state,
    proprio_observation,
)
from robot_irl.legged.randomization import DomainRandomizationConfig, DynamicsSampler, get_randomization
from robot_irl.legged.terrain import TerrainConfig, generate_heights, height_at

ZERO = np.zeros(12, dtype=np.float32)


def quat_axis_angle(axis, angle) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    return np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])


# -- observations (pure) ---------------------------------------------------------------------------------------------
@pytest.mark.unit
def test_proprio_observation_layout_scales_and_single_vs_batch():
    spec = ProprioSpec()
    assert spec.obs_dim == 45 and len(spec.names) == 45 and spec.joint_names == GO1_JOINT_NAMES
    assert GO1_JOINT_NAMES[:3] == ("FR_hip", "FR_thigh", "FR_calf") and GO1_JOINT_NAMES[-1] == "RL_calf"
    rng = np.random.default_rng(0)
    q, qd = rng.normal(size=(5, 12)), rng.normal(size=(5, 12))
    gyro, act = rng.normal(size=(5, 3)), rng.normal(size=(5, 12))
    quat = np.tile([1.0, 0, 0, 0], (5, 1))
    obs = proprio_observation(q, qd, gyro, quat, [0.5, -0.2, 0.3], act, spec)
    assert obs.shape == (5, 45) and obs.dtype == np.float32
    s = spec.slices
    np.testing.assert_allclose(obs[:, s["ang_vel"]], gyro * 0.25, rtol=1e-6)
    np.testing.assert_allclose(obs[:, s["gravity"]], np.tile([0, 0, -1.0], (5, 1)), atol=1e-7)
    np.testing.assert_allclose(obs[0, s["command"]], [1.0, -0.4, 0.075], rtol=1e-6)
    np.testing.assert_allclose(obs[:, s["joint_pos"]], q - np.array(GO1_DEFAULT_POSE), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(obs[:, s["joint_vel"]], qd * 0.05, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(obs[:, s["last_action"]], act, rtol=1e-6)
    single = proprio_observation(q[1], qd[1], gyro[1], quat[1], [0.5, -0.2, 0.3], act[1], spec)
    assert single.shape == (45,) and np.array_equal(single, obs[1])
    with pytest.raises(ValueError, match="joint_vel must have shape"):
        proprio_observation(q, qd[:, :6], gyro, quat, [0, 0, 0], act, spec)
    assert ProprioSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.unit
def test_projected_gravity_follows_the_body_tilt():
    # pitch nose-down by 0.3 rad about y: gravity leans towards the body's +x
    g = projected_gravity(quat_axis_angle([0, 1, 0], 0.3))
    np.testing.assert_allclose(g, [np.sin(0.3), 0.0, -np.cos(0.3)], atol=1e-12)
    g = projected_gravity(quat_axis_angle([1, 0, 0], np.pi))  # upside down
    np.testing.assert_allclose(g, [0, 0, 1.0], atol=1e-12)
    yawed = projected_gravity(quat_axis_angle([0, 0, 1], 1.2))  # yaw does not change it
    np.testing.assert_allclose(yawed, [0, 0, -1.0], atol=1e-12)


@pytest.mark.unit
def test_proprio_from_state_reads_the_driver_layout():
    rng = np.random.default_rng(1)
    q, qd, gyro, acc = rng.normal(size=12), rng.normal(size=12), rng.normal(size=3), rng.normal(size=3)
    quat = quat_axis_angle([1, 2, 0.5], 0.4)
    state = np.concatenate([q, qd, quat, gyro, acc])
    last = rng.uniform(-1, 1, 12)
    np.testing.assert_array_equal(proprio_from_state(state, [0.3, 0, 0], last),
                                  proprio_observation(q, qd, gyro, quat, [0.3, 0, 0], last))
    with pytest.raises(ValueError, match="34 entries"):
        proprio_from_state(state[:-1], [0, 0, 0], last)


# -- randomization (pure) --------------------------------------------------------------------------------------------
@pytest.mark.unit
def test_presets_validate_and_errors_name_the_field():
    for name in ("train", "held_out", "none"):
        cfg = get_randomization(name)
        assert cfg.name == name
        assert DomainRandomizationConfig.from_dict(cfg.to_dict()) == cfg  # logged config round-trips
    train = get_randomization("train")
    assert train.friction == ((0.2, 1.25),) and train.kp_scale == ((0.8, 1.3),) and train.pushes
    none = get_randomization("none")
    assert none.friction == () and none.obs_noise_scale == 0 and not none.pushes
    with pytest.raises(ConfigError, match=r"DomainRandomizationConfig\.action_delay_ms.*allowed \[0.0, 40.0\]"):
        DomainRandomizationConfig(action_delay_ms=((0.0, 60.0),))
    with pytest.raises(ConfigError, match=r"DomainRandomizationConfig\.friction.*lo <= hi"):
        DomainRandomizationConfig(friction=((1.0, 0.5),))
    with pytest.raises(ConfigError, match=r"DomainRandomizationConfig\.action_delay_ms.*multiple of 4 ms"):
        DomainRandomizationConfig(action_delay_ms=((1.0, 3.0),))
    with pytest.raises(ConfigError, match=r"unknown randomization 'windy'.*held_out.*none.*train"):
        get_randomization("windy")
    assert DomainRandomizationConfig(kp_scale=(0.9, 1.1)).kp_scale == ((0.9, 1.1),)  # a single pair is accepted


@pytest.mark.unit
def test_privileged_normalisation_maps_train_to_unit_box_and_held_out_outside():
    assert len(dr.PRIVILEGED_NAMES) == dr.P == 21
    np.testing.assert_allclose(dr.normalize_privileged(dr.TRAIN_LOW), -1.0, atol=1e-6)
    np.testing.assert_allclose(dr.normalize_privileged(dr.TRAIN_HIGH), 1.0, atol=1e-6)
    rng = np.random.default_rng(0)
    train = dr.normalize_privileged(DynamicsSampler(get_randomization("train"), 0.8).sample(rng, 2000))
    assert train.dtype == np.float32 and train.shape == (2000, dr.P)
    assert np.all(np.abs(train) <= 1.0 + 1e-6)
    assert np.all(train.min(axis=0) < -0.8) and np.all(train.max(axis=0) > 0.8)  # the box is covered
    held = dr.normalize_privileged(DynamicsSampler(get_randomization("held_out"), 0.8).sample(rng, 2000))
    assert np.all(np.abs(held) >= 1.0 - 1e-6), [n for n, v in zip(dr.PRIVILEGED_NAMES, np.abs(held).min(0)) if v < 1]
    friction = held[:, dr.IDX["friction"]]
    assert (friction < -1).any() and (friction > 1).any()  # both slippery and sticky ground
    nominal = DynamicsSampler(get_randomization("none"), 0.6).sample(rng, 3)
    np.testing.assert_array_equal(nominal, np.tile(DynamicsSampler(get_randomization("none"), 0.6).nominal(), (3, 1)))
    assert nominal[0, dr.IDX["friction"]] == 0.6 and nominal[0, dr.IDX["kp_scale"]] == 1.0


@pytest.mark.unit
def test_delays_are_whole_physics_steps():
    rng = np.random.default_rng(0)
    delays = DynamicsSampler(get_randomization("train"), 0.8).sample(rng, 500)[:, dr.IDX["action_delay_ms"]]
    assert set(np.unique(delays)) == {0.0, 4.0, 8.0, 12.0, 16.0, 20.0}
    held = DynamicsSampler(get_randomization("held_out"), 0.8).sample(rng, 500)[:, dr.IDX["action_delay_ms"]]
    assert set(np.unique(held)) == {24.0, 28.0, 32.0, 36.0, 40.0}
    assert dr.delay_steps([0.0, 20.0, 40.0]).tolist() == [0, 5, 10]


# -- terrain (pure) --------------------------------------------------------------------------------------------------
@pytest.mark.unit
def test_terrain_is_seeded_bounded_and_interpolated():
    cfg = TerrainConfig(size_m=4.0)
    a, b, c = generate_heights(cfg, 1), generate_heights(cfg, 1), generate_heights(cfg, 2)
    assert a.shape == (cfg.cells, cfg.cells) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= cfg.max_height_m and a.std() > 0.003
    # grid points come back exactly; outside the patch the ground is the floor (0)
    n = cfg.cells
    coords = np.linspace(-2, 2, n)
    assert height_at(a, 4.0, coords[7], coords[3]) == pytest.approx(a[3, 7])
    assert height_at(a, 4.0, 3.0, 0.0) == 0.0
    with pytest.raises(ConfigError, match="TerrainConfig.step_size_m"):
        TerrainConfig(step_size_m=(0.5, 0.2))


# -- the model (sim) -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built():
    from robot_irl.legged.model import build_model

    return build_model()


@pytest.mark.sim
def test_model_loads_from_disk_with_documented_joints_and_mass(built):
    import mujoco

    from robot_irl.paths import asset

    m = mujoco.MjModel.from_xml_path(str(asset("sim", "go1.xml")))
    assert m.nu == 12 and m.nq == 19 and m.opt.timestep == pytest.approx(0.004)
    joints = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, int(m.actuator_trnid[i, 0])) for i in range(12)]
    assert tuple(joints) == GO1_JOINT_NAMES
    assert 11.0 < m.body_subtreemass[m.body("trunk").id] < 13.0
    np.testing.assert_allclose(m.actuator_gainprm[:, 0], 35.0)
    np.testing.assert_allclose(-m.actuator_biasprm[:, 2], 0.5)  # Kd as the actuator's kv
    np.testing.assert_allclose(m.actuator_forcerange[:, 1], [23.7, 23.7, 35.55] * 4)
    np.testing.assert_allclose(m.jnt_range[m.joint("FR_calf").id], [-2.818, -0.888])
    np.testing.assert_allclose(m.key("home").ctrl, GO1_DEFAULT_POSE)
    assert built.layout.joint_qadr.tolist() == list(range(7, 19))


@pytest.mark.sim
def test_home_pose_stands(built):
    import mujoco

    m = built.model
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, m.key("home").id)
    heights = []
    for _ in range(500):  # 2 s holding the home targets
        mujoco.mj_step(m, d, nstep=5)
        heights.append(d.qpos[2])
    assert min(heights[50:]) > 0.2 and abs(d.qpos[0]) < 0.1
    assert projected_gravity(d.qpos[3:7])[2] < -0.99  # upright
    assert d.sensordata[built.layout.trunk_contact] == 0 and d.sensordata[built.layout.foot_contact].min() == 1


@pytest.mark.sim
def test_sim2sim_variant_is_built_from_the_same_xml_with_other_tuning():
    from robot_irl.legged.model import build_model, variant_differences

    v = build_model(variant="sim2sim")
    np.testing.assert_allclose(v.model.actuator_gainprm[:12, 0], 28.0)
    np.testing.assert_allclose(-v.model.actuator_biasprm[:12, 2], 0.8)
    np.testing.assert_allclose(v.model.dof_armature[6:], 0.02)
    assert v.layout.intrinsic_delay_steps == 5 and v.layout.nominal_friction == 0.6
    diff = variant_differences("sim2sim")
    assert {"kp", "kd", "armature", "joint_damping", "trunk_mass_add", "friction", "action_delay_ms"} <= set(diff)
    assert diff["kp"] == {"default": 35.0, "sim2sim": 28.0}
    with pytest.raises(ValueError, match="unknown model_variant 'real'.*sim2sim"):
        build_model(variant="real")


@pytest.mark.sim
def test_rough_task_has_a_non_flat_heightfield():
    from robot_irl.legged.model import build_model

    rough = build_model("rough", terrain_seed=3)
    m = rough.model
    assert m.nhfield == 1 and m.hfield_data.std() > 0.01
    assert rough.heights.max() > 0.02
    x = np.linspace(-2, 2, 50)
    assert np.ptp(rough.ground_height(x, 0.3 * x)) > 0.01
    assert LEGGED_TASKS.get("go1_rough").terrain == "rough" and LEGGED_TASKS.get("go1_flat").terrain == "flat"


# -- the env (sim) ---------------------------------------------------------------------------------------------------
def make(**kw):
    from robot_irl.legged.env import make_legged_env

    kw.setdefault("num_envs", 4)
    return make_legged_env(**kw)


@pytest.mark.sim
def test_env_shapes_and_dtypes_follow_the_interface():
    env = make(task="go1_flat", randomization="train", seed=0, num_threads=2)
    obs = env.reset()
    assert env.num_envs == 4 and env.act_dim == 12 and env.dt == pytest.approx(0.02)
    assert env.max_episode_steps == 1000 and env.obs_dim == 45 and env.priv_dim == len(env.privileged_names) == 21
    assert env.critic_dim == env.obs_dim + env.priv_dim + 3 == len(env.critic_names)
    assert set(obs) == {"proprio", "privileged", "critic"}
    for key, dim in (("proprio", env.obs_dim), ("privileged", env.priv_dim), ("critic", env.critic_dim)):
        assert obs[key].shape == (4, dim) and obs[key].dtype == np.float32, key
    obs, reward, done, info = env.step(np.zeros((4, 12), np.float32))
    assert reward.shape == (4,) and reward.dtype == np.float32 and done.shape == (4,) and done.dtype == bool
    assert info["time_out"].shape == (4,) and info["time_out"].dtype == bool and info["episodes"] == []
    assert set(info["terms"]) == set(env.reward_names)
    assert all(v.shape == (4,) and v.dtype == np.float32 for v in info["terms"].values())
    d = env.describe()
    assert d["config"]["randomization"]["friction"] == [[0.2, 1.25]]  # the resolved ranges are logged
    with pytest.raises(ValueError, match=r"action must have shape \(4, 12\)"):
        env.step(np.zeros((4, 11), np.float32))
    env.close()
    with pytest.raises(ConfigError, match="LeggedEnvConfig.task.*known tasks.*go1_flat"):
        make(task="go1_stairs")


@pytest.mark.sim
def test_time_out_versus_fall_and_auto_reset():
    env = make(randomization="none", seed=1, episode_s=0.2)  # 10 steps
    env.reset()
    for _ in range(9):
        _, _, done, info = env.step(np.zeros((4, 12), np.float32))
        assert not done.any()
    obs, _, done, info = env.step(np.zeros((4, 12), np.float32))
    assert done.all() and info["time_out"].all() and not info["fell"].any()
    assert [e["length"] for e in info["episodes"]] == [10] * 4 and not any(e["fell"] for e in info["episodes"])
    assert (env.episode_step == 0).all()  # auto-reset: obs is the first of the new episodes
    np.testing.assert_allclose(obs["proprio"][:, 36:48], 0.0)  # last action of a fresh episode
    # a robot lying on its side has fallen: done, not a time-out, with the termination penalty
    lay = env.layout
    env.state[0, lay.state_qpos.start + 3:lay.state_qpos.start + 7] = quat_axis_angle([1, 0, 0], np.pi / 2)
    _, reward, done, info = env.step(np.zeros((4, 12), np.float32))
    assert done[0] and info["fell"][0] and not info["time_out"][0] and not done[1:].any()
    assert info["terms"]["termination"][0] == pytest.approx(env.config.rewards.termination)
    ep = info["episodes"][0]
    assert ep["fell"] and ep["env"] == 0 and ep["length"] == 1 and ep["return"] == pytest.approx(float(reward[0]))
    assert set(ep) >= {"return", "length", "fell", "lin_vel_error", "ang_vel_error", "terms", "env"}


@pytest.mark.sim
def test_reward_terms_sum_to_the_reward_and_episode_terms_to_the_return():
    env = make(randomization="train", seed=2, episode_s=0.4)
    env.reset()
    rng = np.random.default_rng(0)
    returns, ep = np.zeros(4), None
    for _ in range(20):
        _, reward, _, info = env.step(rng.uniform(-1, 1, (4, 12)).astype(np.float32))
        total = np.sum(np.stack(list(info["terms"].values())), axis=0)
        np.testing.assert_allclose(total, reward, rtol=1e-5, atol=1e-7)
        returns += reward
        if info["episodes"]:
            ep = info["episodes"][0]
            assert ep["return"] == pytest.approx(sum(ep["terms"].values()), rel=1e-5, abs=1e-6)
            assert ep["return"] == pytest.approx(returns[ep["env"]], rel=1e-4, abs=1e-5)
            break
    assert ep is not None
    assert ep["terms"]["tracking_lin_vel"] > 0 and ep["terms"]["torques"] < 0


@pytest.mark.sim
def test_observation_function_equals_the_env_without_noise_and_noise_is_bounded():
    from robot_irl.legged.env import quat_to_matrix

    env = make(randomization="none", seed=3)
    env.reset()
    rng = np.random.default_rng(1)
    for _ in range(5):
        action = rng.uniform(-1, 1, (4, 12)).astype(np.float32)
        obs, *_ = env.step(action)
    lay = env.layout
    qpos, qvel = env.state[:, lay.state_qpos], env.state[:, lay.state_qvel]
    expected = proprio_observation(qpos[:, 7:], qvel[:, 6:], qvel[:, 3:6], qpos[:, 3:7], env.commands, action)
    np.testing.assert_array_equal(obs["proprio"], expected)
    np.testing.assert_array_equal(obs["critic"][:, :45], expected)
    rot = quat_to_matrix(qpos[:, 3:7] / np.linalg.norm(qpos[:, 3:7], axis=1, keepdims=True))
    np.testing.assert_allclose(obs["critic"][:, -3:], np.einsum("nji,nj->ni", rot, qvel[:, :3]) * 2.0, rtol=1e-5,
                               atol=1e-6)
    noisy = make(randomization="train", seed=3)
    obs = noisy.reset()
    diff = obs["proprio"] - obs["critic"][:, :45]
    s = noisy.spec.slices
    assert np.abs(diff[:, s["joint_vel"]]).max() > 0.01
    assert np.abs(diff[:, s["joint_vel"]]).max() <= 1.5 * 0.05 + 1e-6  # +-1.5 rad/s, scaled
    assert np.abs(diff[:, s["command"]]).max() == 0 and np.abs(diff[:, s["last_action"]]).max() == 0


@pytest.mark.sim
def test_same_seed_same_rollout_and_state_round_trip():
    def run(env, steps=15):
        rng = np.random.default_rng(7)
        out = []
        for _ in range(steps):
            obs, reward, done, _ = env.step(rng.uniform(-1, 1, (env.num_envs, 12)).astype(np.float32))
            out.append((obs["proprio"], reward, done))
        return out

    a, b, c = make(seed=5, num_threads=2), make(seed=5), make(seed=6)
    ra, rb, rc = run(a), run(b), run(c)
    for x, y in zip(ra, rb):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)
    assert not np.array_equal(ra[-1][0], rc[-1][0])
    # get_state/set_state: a differently seeded env continues exactly like the original
    c.set_state(a.get_state())
    for x, y in zip(run(a, 10), run(c, 10)):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)


@pytest.mark.sim
def test_pushes_kick_the_base_velocity():
    pushy = DomainRandomizationConfig(name="pushy", **{k: () for k in (
        "friction", "payload_mass", "payload_x", "payload_y", "payload_z", "motor_strength", "kp_scale", "kd_scale",
        "joint_offset", "action_delay_ms")}, obs_noise_scale=0.0, push_velocity=((1.0, 1.0),),
        push_interval_s=(0.1, 0.1))
    env = make(randomization=pushy, seed=4)
    env.reset()
    lay = env.layout
    pushed_at = []
    for _ in range(5):
        before = env.state[:, lay.state_qvel][:, :2].copy()
        _, _, _, info = env.step(np.zeros((4, 12), np.float32))
        pushed_at.append(bool(info["pushed"].all()))
    assert pushed_at == [False] * 4 + [True]  # every 0.1 s = 5 policy steps
    kick = env.state[:, lay.state_qvel][:, :2] - before
    assert np.all(np.linalg.norm(kick, axis=1) > 0.7)


@pytest.mark.sim
def test_randomized_dynamics_change_the_physics():
    def hold(kp_scale: float, delay_ms: float = 0.0):
        cfg = get_randomization("none").replace(name="custom", kp_scale=[[kp_scale, kp_scale]],
                                                action_delay_ms=[[delay_ms, delay_ms]])
        env = make(randomization=cfg, num_envs=1, seed=0, reset_joint_noise=0.0, reset_velocity_noise=0.0)
        env.reset()
        return env

    soft, stiff = hold(0.6), hold(1.3)
    assert soft.params[0, dr.IDX["kp_scale"]] == 0.6
    np.testing.assert_allclose(soft.models[0].actuator_gainprm[:12, 0], 35 * 0.6)
    for _ in range(50):  # 1 s holding the default pose
        soft.step(ZERO[None])
        stiff.step(ZERO[None])
    assert soft.state[0, 3] < stiff.state[0, 3] - 0.01  # a softer servo sags more under the same hold
    # action delay: after one policy step, a 40 ms delay has not started tracking a new target yet
    fast, slow = hold(1.0, 0.0), hold(1.0, 40.0)
    assert slow.delay[0] == 10
    step = np.zeros((1, 12), np.float32)
    step[0, 1] = 2.0  # FR thigh +0.5 rad
    q0 = fast.state[0, 1 + 7 + 1]
    fast.step(step)
    slow.step(step)
    assert fast.state[0, 1 + 7 + 1] - q0 > 0.05 and abs(slow.state[0, 1 + 7 + 1] - q0) < 0.02


@pytest.mark.sim
def test_bad_actions_and_diverging_physics_reset_the_env_without_crashing():
    env = make(randomization="none", seed=8)
    env.reset()
    action = np.zeros((4, 12), np.float32)
    action[1, 3] = np.nan
    obs, reward, done, info = env.step(action)
    assert info["bad_actions"] == 1 and np.all(np.isfinite(obs["proprio"])) and not done.any()
    lay = env.layout
    env.state[2, lay.state_qvel.start + 6] = 1e12  # MuJoCo rejects this velocity and resets its data
    obs, reward, done, info = env.step(np.zeros((4, 12), np.float32))
    assert done[2] and not info["time_out"][2] and not info["fell"][2] and info["unstable"] == 1
    assert info["episodes"][0]["unstable"] and env.unstable_resets == 1
    assert np.all(np.isfinite(obs["critic"])) and np.all(np.isfinite(reward))
    env.step(np.zeros((4, 12), np.float32))  # and it goes on


@pytest.mark.sim
def test_commands_sampled_fixed_and_rough_env_steps():
    env = make(task="go1_rough", num_envs=8, randomization="train", seed=9)
    obs = env.reset()
    cmd = env.commands
    assert np.all((cmd[:, 0] >= -0.5) & (cmd[:, 0] <= 1.0)) and np.all(np.abs(cmd[:, 1]) <= 0.3)
    assert np.all(np.abs(cmd[:, 2]) <= 1)
    np.testing.assert_allclose(obs["critic"][:, 6:9], cmd * [2.0, 2.0, 0.25], rtol=1e-6)
    xy = env.state[:, 1:3]
    assert np.ptp(xy[:, 0]) > 0.5  # spawned at different places on the heightfield
    env.set_command([0.4, 0.0, 0.2])
    assert not env.resample_commands
    for _ in range(5):
        obs, reward, _, _ = env.step(np.zeros((8, 12), np.float32))
    assert np.all(np.isfinite(reward))
    np.testing.assert_allclose(obs["proprio"][:, 6:9], np.tile([0.8, 0.0, 0.05], (8, 1)), rtol=1e-6)
    env.reset()
    np.testing.assert_allclose(env.commands, np.tile([0.4, 0.0, 0.2], (8, 1)))  # fixed across resets
    with pytest.raises(ValueError, match="set_command"):
        env.set_command([0.1, 0.2])
