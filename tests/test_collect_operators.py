"""The scripted ADC operator on robosuite Lift: it solves the task, recovers from a push or a move mid-grasp, and
follows an instruction change to a distractor (success judged by the new goal)."""
from __future__ import annotations

import numpy as np
import pytest

from robot_irl.collect.operators import OPERATORS, ScriptedOperator
from robot_irl.core.contracts import Policy, Teleoperator
from robot_irl.core.perturbation import Perturbation, PerturbationKind
from robot_irl.drivers import make_driver
from robot_irl.policies import POLICIES
from robot_irl.runner import run_episode

pytestmark = pytest.mark.sim

K = PerturbationKind


@pytest.fixture(scope="module")
def lift():
    driver = make_driver("robosuite", {"task": "lift"})
    with driver:
        yield driver


@pytest.fixture
def operator(lift):
    return ScriptedOperator.from_driver(lift, seed=0)


class OnPhase:
    """A stand-in adversary: requests ``make(driver)`` once, the first tick the operator is in ``phase``."""

    def __init__(self, operator: ScriptedOperator, phase: str, make) -> None:
        self.operator, self.phase, self.make = operator, phase, make
        self.fired_at: int | None = None

    def reset(self, seed=None) -> None:
        self.fired_at = None

    def step(self, observation, driver, phase=""):
        if self.fired_at is None and phase == self.phase:
            self.fired_at = driver.step_count
            return self.make(driver)
        return []


def pose(driver, obj: str) -> np.ndarray:
    names = list(driver.observation_features["observation.environment_state"].names)
    i = names.index(f"{obj}.x")
    return driver.get_observation()["observation.environment_state"][i:i + 3]


def test_operator_solves_lift_unperturbed(lift, operator):
    results = [run_episode(lift, operator, 80, seed=seed, stop_on_success=True) for seed in range(3)]
    assert all(r.success for r in results), [r.steps for r in results]
    assert max(r.steps for r in results) < 50 and operator.replans == 0


def test_operator_recovers_from_a_move_mid_grasp(lift, operator):
    def move(driver):
        cube = pose(driver, "cube")
        return [Perturbation(K.MOVE_OBJECT, "cube", {"position": [cube[0] + 0.07, cube[1] - 0.05, cube[2] + 0.002],
                                                     "yaw": 0.7})]

    adversary = OnPhase(operator, "grasp", move)
    result = run_episode(lift, operator, 200, seed=1, adversary=adversary, stop_on_success=True)
    assert adversary.fired_at is not None and [p["kind"] for p in result.perturbations] == ["move_object"]
    assert result.success and operator.replans >= 1
    assert result.steps > adversary.fired_at + 20  # it let go, rose and approached again


@pytest.mark.parametrize("phase,speed,seed", [("descend", 1.5, 2), ("grasp", 2.5, 2)])
def test_operator_recovers_from_a_push(lift, operator, phase, speed, seed):
    push = OnPhase(operator, phase, lambda d: [Perturbation(K.PUSH, "cube", {"velocity": [0.0, speed, 0.0]})])
    result = run_episode(lift, operator, 200, seed=seed, adversary=push, stop_on_success=True)
    assert push.fired_at is not None and result.success and operator.replans >= 1


def test_operator_follows_an_instruction_change_to_a_distractor(lift, operator):
    def switch(driver):
        return [Perturbation(K.DISTRACTOR_ADD, "distractor_ball", {}),
                Perturbation(K.INSTRUCTION, "task", {"text": "pick up the yellow ball"})]

    adversary = OnPhase(operator, "grasp", switch)
    phases: list[str] = []
    result = run_episode(lift, operator, 250, seed=0, adversary=adversary, stop_on_success=True,
                         on_step=lambda *_: phases.append(operator.phase))
    assert result.tasks == ["lift the red cube", "pick up the yellow ball"]
    assert result.success and lift.goal_object == "distractor_ball" and operator.target == "distractor_ball"
    assert pose(lift, "distractor_ball")[2] > 0.84 and pose(lift, "cube")[2] < 0.84  # the ball is up, not the cube
    after = phases[adversary.fired_at:]
    assert after.index("let_go") < after.index("approach") < after.index("lift")  # released, then went for it


def test_operator_waits_while_its_goal_is_off_the_table(lift, operator):
    obs = lift.reset(0)
    operator.reset(0)
    lift.perturb(Perturbation(K.INSTRUCTION, "task", {"text": "lift the green cylinder"}))  # still parked
    action = operator.get_action({**lift.get_observation(), "task": lift.instruction})
    assert operator.phase == "wait" and action[-1] == -1.0
    assert np.allclose(action[:3], obs["observation.state"][14:17], atol=1e-4)


def test_operator_is_a_teleoperator_and_a_policy_and_registered(lift):
    op = OPERATORS.get("scripted").from_driver(lift, seed=0)
    assert isinstance(op, Teleoperator) and isinstance(op, Policy)
    assert ScriptedOperator.act is ScriptedOperator.get_action
    assert POLICIES.get("scripted_operator") is ScriptedOperator
    assert op.action_features["action"].names == ("x", "y", "z", "ax", "ay", "az", "gripper")
    assert OPERATORS.names() == ["joy", "keyboard", "scripted"]
    with pytest.raises(ValueError, match="ee_target"):
        ScriptedOperator.from_driver(make_driver("robosuite", {"control": "joint_position"}))
