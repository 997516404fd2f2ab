"""The scripted expert solves robosuite Lift (and Stack); random policies stay inside the safety bounds."""
from __future__ import annotations

import numpy as np
import pytest

from robot_irl.drivers import make_driver
from robot_irl.policies import POLICIES
from robot_irl.policies.scripted import RandomPolicy, ScriptedPolicy

pytestmark = pytest.mark.sim


def run_episode(driver, policy, seed: int, steps: int) -> bool:
    obs = driver.reset(seed)
    policy.reset(seed)
    success = False
    for _ in range(steps):
        driver.send_action(policy.act(obs))
        obs = driver.get_observation()
        success = success or driver.is_success()
    return success


def within_bounds(sent: np.ndarray, reference: np.ndarray, limits) -> bool:
    eps = 1e-5
    ok = np.all(sent >= np.array(limits.lower) - eps) and np.all(sent <= np.array(limits.upper) + eps)
    if limits.workspace_low is not None:
        xyz = sent[list(limits.workspace_dims)]
        ok &= np.all(xyz >= np.array(limits.workspace_low) - eps)
        ok &= np.all(xyz <= np.array(limits.workspace_high) + eps)
    return bool(ok and np.all(np.abs(sent - reference) <= limits.step_bound() + eps))


@pytest.fixture(scope="module")
def lift():
    driver = make_driver("robosuite", {"task": "lift"})
    with driver:
        yield driver


def test_scripted_lift_succeeds(lift):
    policy = POLICIES.get("scripted").from_driver(lift, seed=0, noise=0.0)
    assert isinstance(policy, ScriptedPolicy) and policy.task == "lift"
    wins = sum(run_episode(lift, policy, seed, steps=100) for seed in range(3))
    assert wins >= 2, f"scripted Lift succeeded in {wins}/3 episodes"


def test_scripted_lift_with_noise_is_seeded_and_still_succeeds(lift):
    obs = lift.reset(5)
    a = ScriptedPolicy(task="lift", noise=0.01, seed=1)
    b = ScriptedPolicy(task="lift", noise=0.01, seed=1)
    assert np.array_equal(a.act(obs), b.act(obs))
    assert not np.array_equal(a.act(obs), ScriptedPolicy(task="lift", noise=0.0).act(obs))
    assert run_episode(lift, ScriptedPolicy(task="lift", noise=0.01, seed=4), seed=4, steps=100)


def test_scripted_stack_succeeds():
    driver = make_driver("robosuite", {"task": "stack", "distractors": 0})
    with driver:
        policy = ScriptedPolicy.from_driver(driver, seed=0)
        assert policy.task == "stack"
        wins = sum(run_episode(driver, policy, seed, steps=130) for seed in range(2))
    assert wins >= 1, f"scripted Stack succeeded in {wins}/2 episodes"


def test_scripted_policy_rejects_what_it_cannot_drive():
    with pytest.raises(ValueError, match="solves"):
        ScriptedPolicy(task="door")
    with pytest.raises(ValueError, match="ee_target"):
        ScriptedPolicy.from_driver(make_driver("mujoco_arm"))
    with pytest.raises(ValueError, match="ee_target"):
        ScriptedPolicy.from_driver(make_driver("robosuite", {"control": "joint_position"}))


def test_random_policy_never_violates_safety_bounds_robosuite(lift):
    lift.reset(0)
    limits = lift.safety_limits
    policy = POLICIES.get("random").from_driver(lift, seed=3, noise=1.0)
    for _ in range(40):
        reference = lift.hold_action()
        raw = policy.act(lift.get_observation())
        assert within_bounds(raw, reference, limits)  # delta mode: already inside every bound
        sent = lift.send_action(raw)
        assert within_bounds(sent, reference, limits)


def test_random_policy_never_violates_safety_bounds_mujoco_arm():
    driver = make_driver("mujoco_arm")
    limits = driver.safety_limits
    uniform = RandomPolicy(limits, mode="uniform", seed=0)
    with driver:
        driver.reset(1)
        obs = driver.get_observation()
        for _ in range(200):
            raw = uniform.act(obs)
            assert np.all(raw >= np.array(limits.lower)) and np.all(raw <= np.array(limits.upper))
            reference = driver.hold_action()
            sent = driver.send_action(raw)
            assert within_bounds(sent, reference, limits)
            obs = driver.get_observation()
    assert np.array_equal(RandomPolicy(limits, seed=7).act(obs), RandomPolicy(limits, seed=7).act(obs))
    with pytest.raises(ValueError, match="hold"):
        RandomPolicy(limits, mode="delta")
