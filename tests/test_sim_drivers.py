"""Contract tests for the simulated drivers: robosuite Panda (``robosuite``) and the small MuJoCo arm (``mujoco_arm``).

One connected robosuite driver per configuration is shared within this module (connecting costs ~2 s); every test
resets it first.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from robot_irl.core.config import ConfigError
from robot_irl.core.perturbation import Perturbation, PerturbationError, PerturbationKind
from robot_irl.core.safety import UnsafeActionError
from robot_irl.drivers import make_driver
from robot_irl.drivers.robosuite_arm import (
    PANDA_JOINT_LOWER,
    RobosuiteConfig,
    RobosuiteDriver,
    quat_to_rotvec,
    rotvec_near,
)

pytestmark = pytest.mark.sim

K = PerturbationKind


def assert_obs_matches_features(driver, obs):
    feats = driver.observation_features
    assert set(obs) == set(feats)
    for key, feat in feats.items():
        assert obs[key].shape == feat.shape, key
        assert obs[key].dtype == np.dtype(feat.dtype), key
        assert np.all(np.isfinite(obs[key])), key


def run_steps(driver, actions):
    """Send ``actions`` one per tick; return the observations after each."""
    out = []
    for a in actions:
        driver.send_action(a)
        out.append(driver.get_observation())
    return out


@pytest.fixture(scope="module")
def lift_driver():
    driver = RobosuiteDriver(RobosuiteConfig(task="lift"))
    driver.connect()
    yield driver
    driver.disconnect()


@pytest.fixture
def lift(lift_driver):
    lift_driver.reset(0)
    return lift_driver


@pytest.fixture(scope="module")
def camera_driver():
    driver = RobosuiteDriver(RobosuiteConfig(task="lift", cameras=("agentview", "wrist"), camera_size=64,
                                             distractors=1, initialization_noise=0.0))
    driver.connect()
    yield driver
    driver.disconnect()


# -- robosuite: description without connecting -----------------------------------------------------------------------
@pytest.mark.parametrize("task,env_dim", [("lift", 7 + 21), ("stack", 14 + 21), ("door", 8 + 21)])  # + 3 distractors
@pytest.mark.parametrize("control,act_dim", [("ee_target", 7), ("joint_position", 8)])
def test_robosuite_features_known_without_connecting(task, env_dim, control, act_dim):
    driver = make_driver("robosuite", {"task": task, "control": control, "cameras": ["agentview", "wrist"],
                                       "camera_size": 32})
    assert not driver.is_connected and driver.env is None
    feats = driver.observation_features
    assert feats["observation.state"].shape == (23,)
    assert feats["observation.state"].names[14:21] == ("eef.x", "eef.y", "eef.z", "eef.qw", "eef.qx", "eef.qy",
                                                       "eef.qz")
    assert feats["observation.environment_state"].shape == (env_dim,)
    assert feats["observation.images.agentview"].shape == (32, 32, 3)
    assert feats["observation.images.wrist"].dtype == "uint8"
    assert driver.action_features["action"].shape == (act_dim,)
    limits = driver.safety_limits
    assert limits.dim == act_dim and limits.lower[-1] == -1.0 and limits.upper[-1] == 1.0
    if control == "ee_target":
        assert limits.workspace_low == RobosuiteConfig().workspace_low
    else:
        assert limits.lower[:7] == PANDA_JOINT_LOWER
    assert driver.instruction  # a default instruction per task


def test_robosuite_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"cameras.*allowed.*agentview"):
        RobosuiteConfig(cameras=("topview",))
    with pytest.raises(ConfigError, match="control_freq"):
        RobosuiteConfig(control_freq=30.0)  # 500 Hz physics / 30 is not an integer
    with pytest.raises(ConfigError, match="task"):
        RobosuiteConfig.from_dict({"task": "wipe"})


def test_rotvec_near_picks_the_equivalent_form_closest_to_the_hint():
    r = np.array([0.0, 0.0, np.pi - 0.1])
    other = rotvec_near(r, [0.0, 0.0, -np.pi])
    assert np.allclose(other, [0.0, 0.0, -np.pi - 0.1])
    assert np.allclose(rotvec_near(r, None), r)
    assert np.allclose(quat_to_rotvec([np.cos(0.3), 0.0, np.sin(0.3), 0.0]), [0.0, 0.6, 0.0])


# -- robosuite: the loop ---------------------------------------------------------------------------------------------
def test_robosuite_observation_matches_features_and_hold_keeps_still(lift):
    obs = lift.get_observation()
    assert_obs_matches_features(lift, obs)
    hold = lift.hold_action()
    for _ in range(5):
        sent = lift.send_action(hold)
    assert not lift.last_clamped.any()
    assert np.allclose(sent, hold, atol=1e-6)
    moved = np.abs(lift.get_observation()["observation.state"][14:17] - obs["observation.state"][14:17]).max()
    assert moved < 2e-3
    assert lift.step_count == 5 and lift.sim_time == pytest.approx(0.25)
    assert set(lift.task_status()) == {"reward", "success"}


def test_robosuite_ee_target_tracks_absolute_targets(lift):
    target = lift.hold_action()
    target[:3] += [0.04, -0.03, 0.04]
    for _ in range(30):
        lift.send_action(target)
    eef = lift.get_observation()["observation.state"][14:17]
    assert np.abs(eef - target[:3]).max() < 0.005


def test_robosuite_nan_action_raises_and_nothing_moves(lift):
    before = lift.get_state()
    bad = lift.hold_action()
    bad[2] = np.nan
    with pytest.raises(UnsafeActionError, match="z=nan"):
        lift.send_action(bad)
    assert np.array_equal(lift.get_state(), before)
    assert lift.step_count == 0


def test_robosuite_out_of_workspace_target_is_clamped_and_applied_as_returned(lift):
    limits = lift.safety_limits
    reference = lift.hold_action()
    target = reference.copy()
    target[:3] = [5.0, -5.0, 0.0]  # far outside, below the table
    sent = lift.send_action(target)
    assert lift.last_clamped[:3].all()
    assert np.all(sent[:3] >= np.array(limits.workspace_low) - 1e-6)
    assert np.all(sent[:3] <= np.array(limits.workspace_high) + 1e-6)
    assert np.all(np.abs(sent - reference) <= np.array(limits.max_step) + 1e-5)
    controller = lift.env.robots[0].part_controllers["right"]
    assert np.allclose(controller.goal_pos, sent[:3], atol=1e-6)  # what the controller got is what was returned


def test_robosuite_equivalent_orientation_is_not_mangled_by_the_step_limit(lift):
    hold = lift.hold_action().astype(np.float64)
    r = hold[3:6]
    same_rotation = r / np.linalg.norm(r) * (np.linalg.norm(r) - 2 * np.pi)  # the other axis-angle form
    request = np.concatenate([hold[:3], same_rotation, hold[6:]])
    sent = lift.send_action(request)
    assert not lift.last_clamped.any()
    assert np.allclose(sent, request, atol=1e-5)


def test_robosuite_success_follows_the_cube(lift):
    assert not lift.is_success()
    cube = lift.get_observation()["observation.environment_state"][:3]
    lift.perturb(Perturbation(K.MOVE_OBJECT, "cube", {"position": [cube[0], cube[1], 0.95]}))
    assert lift.is_success() and lift.task_status()["success"] is True
    lift.send_action(lift.hold_action())
    assert isinstance(lift.reward(), float) and lift.last_info["success"] in (True, False)


# -- robosuite: perturbations ----------------------------------------------------------------------------------------
def check_record(record, kind, target):
    assert record.kind is kind and record.target == target
    assert record.sim_time is not None and record.step is not None
    assert Perturbation.from_json(record.to_json()) == Perturbation.from_dict(json.loads(record.to_json()))


def test_robosuite_move_object_and_push(lift):
    rec = lift.perturb(Perturbation(K.MOVE_OBJECT, "cube", {"position": [0.1, -0.1, 0.83], "yaw": 0.5}))
    check_record(rec, K.MOVE_OBJECT, "cube")
    env_state = lift.get_observation()["observation.environment_state"]
    assert np.allclose(env_state[:3], [0.1, -0.1, 0.83], atol=1e-6)
    assert np.allclose(rec.params["quat"], [np.cos(0.25), 0, 0, np.sin(0.25)])
    rec = lift.perturb(Perturbation(K.PUSH, "cube", {"velocity": [0.0, 0.4, 0.0]}))
    check_record(rec, K.PUSH, "cube")
    for _ in range(3):
        lift.send_action(lift.hold_action())
    assert lift.get_observation()["observation.environment_state"][1] > -0.1 + 0.01  # it slid along +y


def test_robosuite_model_perturbations_apply_and_reset_restores_them(lift):
    m = lift.model
    original = {f: getattr(m, f).copy() for f in ("geom_rgba", "geom_matid", "light_diffuse", "cam_pos", "cam_quat")}
    rec = lift.perturb(Perturbation(K.COLOR, "table", {"rgba": [0.1, 0.2, 0.9, 1.0]}))
    check_record(rec, K.COLOR, "table")
    assert rec.params["geoms"] >= 1 and np.allclose(m.geom_rgba[lift._color_geoms["table"]], [0.1, 0.2, 0.9, 1.0])
    rec = lift.perturb(Perturbation(K.LIGHTING, "all", {"diffuse": [1.0, 0.2, 0.2], "direction": [0, 0, -2]}))
    check_record(rec, K.LIGHTING, "all")
    assert np.allclose(m.light_diffuse, [1.0, 0.2, 0.2]) and np.allclose(rec.params["direction"], [0, 0, -1])
    cid = lift._cameras["agentview"]
    for _ in range(2):  # the same shift twice lands in the same place: offsets are from the original pose
        rec = lift.perturb(Perturbation(K.CAMERA, "agentview", {"offset": [0.0, 0.1, 0.05], "yaw": 0.2}))
    check_record(rec, K.CAMERA, "agentview")
    assert np.allclose(m.cam_pos[cid], original["cam_pos"][cid] + [0.0, 0.1, 0.05])
    assert not np.allclose(m.cam_quat[cid], original["cam_quat"][cid])
    assert [p.kind for p in lift.model_perturbations] == [K.COLOR, K.LIGHTING, K.CAMERA, K.CAMERA]
    lift.reset(1)
    for field, value in original.items():
        assert np.array_equal(getattr(m, field), value), field
    assert lift.model_perturbations == []


def test_robosuite_distractors_add_remove_and_reset(lift):
    rec = lift.perturb(Perturbation(K.DISTRACTOR_ADD, "distractor_box", {}))
    check_record(rec, K.DISTRACTOR_ADD, "distractor_box")
    x, y, z = rec.params["position"]
    assert abs(x) < 0.3 and abs(y) < 0.3 and 0.8 < z < 0.9  # on the table
    rec = lift.perturb(Perturbation(K.DISTRACTOR_ADD, "distractor_ball", {"position": [0.05, 0.15, 0.83]}))
    for _ in range(5):
        lift.send_action(lift.hold_action())
    qadr = lift._free["distractor_box"][0]
    assert 0.8 < lift.data.qpos[qadr + 2] < 0.83  # it came to rest on the table top
    rec = lift.perturb(Perturbation(K.DISTRACTOR_REMOVE, "distractor_box", {}))
    check_record(rec, K.DISTRACTOR_REMOVE, "distractor_box")
    assert rec.params["position"][1] > 2.0  # parked away from the table
    lift.reset(2)
    ball = lift._free["distractor_ball"][0]
    assert lift.data.qpos[ball + 1] > 2.0  # reset parked the ball again


def test_robosuite_unknown_target_lists_the_known_ones(lift):
    with pytest.raises(PerturbationError, match=r"unknown move_object target 'mug'.*known.*cube"):
        lift.perturb(Perturbation(K.MOVE_OBJECT, "mug", {"position": [0, 0, 1]}))
    with pytest.raises(PerturbationError, match=r"known.*table"):
        lift.perturb(Perturbation(K.COLOR, "floor_tiles", {"rgba": [1, 0, 0, 1]}))
    rec = lift.perturb(Perturbation(K.INSTRUCTION, "task", {"text": "lift the cube slowly"}))
    assert lift.instruction == "lift the cube slowly" and rec.params["previous"] == "lift the red cube"


def test_robosuite_perturbations_are_bounded_by_the_table_and_physics(lift):
    state = lift.get_state()
    low, high = lift.perturbation_bounds().workspace_low, lift.perturbation_bounds().workspace_high
    assert low[2] == pytest.approx(0.8) and high[0] == pytest.approx(0.4)  # the table top and its edge
    for request, bound in ((Perturbation(K.MOVE_OBJECT, "cube", {"position": [0.0, 0.0, 0.5]}), "workspace_low"),
                           (Perturbation(K.DISTRACTOR_ADD, "distractor_box", {"position": [2.0, 0, 0.85]}),
                            "workspace_high"),
                           (Perturbation(K.PUSH, "cube", {"velocity": [0.0, 0.0, 1e4]}), "max_push_speed"),
                           (Perturbation(K.COLOR, "table", {"rgba": [0.0, 3.0, 0.0, 1.0]}), r"\[0, 1\]"),
                           (Perturbation(K.CAMERA, "agentview", {"yaw": 2.0}), "max_camera_angle")):
        with pytest.raises(PerturbationError, match=bound):
            lift.perturb(request)
    assert np.array_equal(lift.get_state(), state) and lift.model_perturbations == []


# -- robosuite: replay -----------------------------------------------------------------------------------------------
def test_robosuite_replay_from_stored_state_is_exact(lift):
    from robot_irl.policies.scripted import ScriptedPolicy

    lift.reset(7)
    lift.perturb(Perturbation(K.DISTRACTOR_ADD, "distractor_cylinder", {"position": [0.12, 0.12, 0.83]}))
    state0 = lift.get_state()
    policy = ScriptedPolicy(task="lift", noise=0.005, seed=3)
    obs, actions, recorded = lift.get_observation(), [], []
    for _ in range(40):
        actions.append(lift.send_action(policy.act(obs)))
        obs = lift.get_observation()
        recorded.append(obs)

    fresh = RobosuiteDriver(RobosuiteConfig(task="lift"))
    with fresh:
        fresh.reset(123)  # a different episode, then overwritten by the stored state
        fresh.set_state(state0)
        replayed = run_steps(fresh, actions)
        assert fresh.is_success() == lift.is_success()
        with pytest.raises(ValueError, match="set_state"):
            fresh.set_state(state0[:-3])
    for a, b in zip(recorded, replayed):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# -- robosuite: cameras ----------------------------------------------------------------------------------------------
def test_robosuite_camera_images_match_features_and_reset_restores_the_scene(camera_driver):
    d = camera_driver
    obs = d.reset(0)
    assert_obs_matches_features(d, obs)
    front = obs["observation.images.agentview"]
    assert front.std() > 10  # not a blank frame
    # upright: agentview looks at the robot over the table, so the bright table fills the bottom half
    assert front[32:].mean() > front[:32].mean()
    d.perturb(Perturbation(K.COLOR, "table", {"rgba": [0.0, 0.0, 0.8, 1.0]}))
    d.perturb(Perturbation(K.DISTRACTOR_ADD, "distractor_box", {"position": [0.0, 0.1, 0.83]}))
    changed = d.get_observation()["observation.images.agentview"]
    assert changed[40:, :, 2].mean() > changed[40:, :, 0].mean() + 50  # the table turned blue
    d.perturb(Perturbation(K.CAMERA, "agentview", {"yaw": 0.3}))
    assert not np.array_equal(d.get_observation()["observation.images.agentview"], changed)
    restored = d.reset(0)["observation.images.agentview"]
    assert np.array_equal(restored, front)


# -- robosuite: other tasks and joint control ------------------------------------------------------------------------
def test_robosuite_door_joint_position_mode():
    driver = make_driver("robosuite", {"task": "door", "control": "joint_position", "distractors": 1})
    with driver:
        obs = driver.reset(0)
        assert_obs_matches_features(driver, obs)
        hold = driver.hold_action()
        assert np.allclose(hold[:7], obs["observation.state"][:7])
        target = hold.copy()
        target[0] += 0.25
        target[3] = -10.0  # far below joint 4's limit: clamped to the per-tick step, then tracked
        for _ in range(30):
            sent = driver.send_action(target)
        assert sent[3] >= PANDA_JOINT_LOWER[3] - 1e-6
        joints = driver.get_observation()["observation.state"][:7]
        assert abs(joints[0] - target[0]) < 0.01 and abs(joints[3] - PANDA_JOINT_LOWER[3]) < 0.02
        targets = driver.perturbation_targets()
        assert "door" in targets[K.COLOR] and targets[K.MOVE_OBJECT] == ["distractor_box"]
        assert not driver.is_success()


# -- mujoco_arm ------------------------------------------------------------------------------------------------------
@pytest.fixture
def arm():
    driver = make_driver("mujoco_arm")
    with driver:
        yield driver


def test_mujoco_arm_features_known_without_connecting():
    driver = make_driver("mujoco_arm")
    assert not driver.is_connected
    assert driver.joint_names == ("base_yaw", "shoulder", "elbow", "wrist", "gripper")
    assert driver.action_features["action"].names == driver.joint_names
    assert driver.observation_features["observation.state"].shape == (10,)
    assert driver.observation_features["observation.environment_state"].shape == (7,)
    limits = driver.safety_limits
    assert limits.lower[-1] == 0.0 and limits.upper[-1] == pytest.approx(0.04)


def test_mujoco_arm_loop_tracks_targets_and_clamps(arm):
    obs = arm.reset(3)
    assert_obs_matches_features(arm, obs)
    target = arm.hold_action()
    target[:4] += [0.3, 0.2, -0.2, 0.1]
    for _ in range(25):
        sent = arm.send_action(target)
    assert np.allclose(sent, target, atol=1e-6)
    assert np.abs(arm.get_observation()["observation.state"][:4] - target[:4]).max() < 0.01
    far = target.copy()
    far[0] = 100.0
    sent = arm.send_action(far)
    assert arm.last_clamped[0] and sent[0] <= arm.safety_limits.upper[0]
    assert np.allclose(arm.data.ctrl, sent, atol=1e-6)  # what the actuators got is what was returned


def test_mujoco_arm_nan_raises_and_nothing_moves(arm):
    before = arm.get_state()
    bad = arm.hold_action()
    bad[1] = np.inf
    with pytest.raises(UnsafeActionError, match="shoulder=inf"):
        arm.send_action(bad)
    assert np.array_equal(arm.get_state(), before)


def test_mujoco_arm_perturbations(arm):
    rec = arm.perturb(Perturbation(K.MOVE_OBJECT, "cube", {"position": [0.2, 0.1, 0.05], "yaw": 1.0}))
    check_record(rec, K.MOVE_OBJECT, "cube")
    assert np.allclose(arm.get_observation()["observation.environment_state"][:3], [0.2, 0.1, 0.05])
    arm.send_action(arm.hold_action())
    assert arm.get_observation()["observation.environment_state"][2] < 0.05  # it dropped onto the table
    rec = arm.perturb(Perturbation(K.PUSH, "cube", {"velocity": [0.0, 0.0, 1.0]}))
    check_record(rec, K.PUSH, "cube")
    arm.send_action(arm.hold_action())
    assert arm.get_observation()["observation.environment_state"][2] > 0.05  # tossed up
    with pytest.raises(PerturbationError, match="known.*cube"):
        arm.perturb(Perturbation(K.PUSH, "ball", {"velocity": [1, 0, 0]}))
    with pytest.raises(PerturbationError, match="does not support color"):
        arm.perturb(Perturbation(K.COLOR, "cube", {"rgba": [1, 0, 0, 1]}))


def test_mujoco_arm_refuses_unbounded_pushes_and_keeps_its_state(arm):
    """A push of 1e300 or 1e4 m/s used to blow MuJoCo up (cube at z = 9,995 m, success 1.0): refused, nothing moves."""
    arm.reset(3)
    before = arm.get_state()
    for velocity in ([1e300, 0.0, 0.0], [0.0, 0.0, 1e4]):
        with pytest.raises(PerturbationError, match="max_push_speed"):
            arm.perturb(Perturbation(K.PUSH, "cube", {"velocity": velocity}))
    with pytest.raises(PerturbationError, match="workspace"):
        arm.perturb(Perturbation(K.MOVE_OBJECT, "cube", {"position": [0.25, 0.0, 50.0]}))
    assert np.array_equal(arm.get_state(), before)
    for _ in range(5):
        arm.send_action(arm.hold_action())
    assert arm.task_status()["success"] is False and arm.task_status()["reward"] < 0.01


def test_mujoco_arm_restores_the_state_when_a_perturbation_destabilises_the_simulation(arm, monkeypatch):
    """The check after applying: with the bounds wide open, the blow-up is caught and the state restored."""
    from robot_irl.core.perturbation import PerturbationBounds

    monkeypatch.setattr(arm, "PERTURBATION_BOUNDS", PerturbationBounds(max_push_speed=1e308))
    arm.reset(3)
    before = arm.get_state()
    with pytest.raises(PerturbationError, match="instability warning.*restored"):
        arm.perturb(Perturbation(K.PUSH, "cube", {"velocity": [1e300, 0.0, 0.0]}))
    assert np.array_equal(arm.get_state(), before)
    record = arm.perturb(Perturbation(K.PUSH, "cube", {"velocity": [0.5, 0.0, 0.0]}))  # still applies sane ones
    assert record.params["velocity"] == [0.5, 0.0, 0.0]


def test_mujoco_arm_replay_is_exact(arm):
    arm.reset(11)
    state0 = arm.get_state()
    rng = np.random.default_rng(0)
    actions = [arm.hold_action() + rng.uniform(-0.1, 0.1, 5) * [1, 1, 1, 1, 0.1] for _ in range(30)]
    sent = [arm.send_action(a) for a in actions]
    final = arm.get_observation()
    fresh = make_driver("mujoco_arm")
    with fresh:
        fresh.set_state(state0)
        replay = run_steps(fresh, sent)[-1]
        assert fresh.step_count == arm.step_count
    for key in final:
        np.testing.assert_array_equal(final[key], replay[key])


# -- robosuite: language goals (Lift) --------------------------------------------------------------------------------
def test_robosuite_lift_success_follows_the_instruction(lift):
    names = list(lift.observation_features["observation.environment_state"].names)
    assert names[7:10] == ["distractor_box.x", "distractor_box.y", "distractor_box.z"]
    env = lift.get_observation()["observation.environment_state"]
    ball = names.index("distractor_ball.x")
    assert env[ball + 1] > 2.0  # parked, but its pose is observed
    from robosuite.environments.manipulation.lift import Lift

    cube = lift.get_observation()["observation.environment_state"][:3]
    for z in (cube[2], 0.95):  # the default instruction: robosuite's own test
        lift.perturb(Perturbation(K.MOVE_OBJECT, "cube", {"position": [cube[0], cube[1], z]}))
        assert lift.goal_object == "cube" and lift.is_success() == Lift._check_success(lift.env) == (z > 0.9)
    lift.reset(0)
    lift.perturb(Perturbation(K.DISTRACTOR_ADD, "distractor_ball", {"position": [0.0, 0.15, 0.83]}))
    lift.perturb(Perturbation(K.MOVE_OBJECT, "distractor_ball", {"position": [0.0, 0.15, 0.95]}))
    assert not lift.is_success()  # the ball is up, but the instruction asks for the cube
    lift.perturb(Perturbation(K.INSTRUCTION, "task", {"text": "pick up the yellow ball"}))
    assert lift.goal_object == "distractor_ball" and lift.is_success()
    lift.send_action(lift.hold_action())
    assert lift.reward() == pytest.approx(1.0)  # robosuite's sparse reward follows the goal too
    with pytest.raises(PerturbationError, match=r"'lift the purple elephant'.*known phrasings"):
        lift.perturb(Perturbation(K.INSTRUCTION, "task", {"text": "lift the purple elephant"}))
    lift.reset(0)
    assert lift.instruction == "lift the red cube" and lift.goal_object == "cube"  # reset restores it
    with pytest.raises(ConfigError, match="instruction"):
        RobosuiteConfig(instruction="lift the blue box", distractors=0)
