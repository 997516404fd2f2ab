"""Tele-operators of a collection session, and their registry.

:class:`ScriptedOperator` stands in for the human tele-operator of ADC in process: it reads the goal object from
the instruction in force (``observation["task"]``, which the runner fills) and re-plans every tick from the current
state, so it reacts to what the adversary does:

* the goal object was pushed or moved: while approaching it simply follows the object; while descending it goes
  back above the object; while grasping or lifting, an object that left the gripper makes it open, rise and
  approach again;
* the instruction now names another object: it puts the held object back down and lets go (when it holds one),
  then goes for the new goal; a goal that is not on the table (a parked distractor) makes it wait where it is.

It reuses :class:`robot_irl.policies.scripted.ScriptedPolicy`'s waypoint machine (targets chosen by name) and is both
a :class:`~robot_irl.core.contracts.Teleoperator` (``get_action``) and usable wherever a policy is (``act``,
``reset``, ``phase``), e.g. by :func:`robot_irl.runner.run_episode`.

Registry :data:`OPERATORS`: ``scripted`` (in process); ``keyboard`` and ``joy`` are human operators that run in the
``collect`` ROS 2 graph (lazy entries, imported only when asked for).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from robot_irl.collect.language import LANGUAGE_TASKS, goal_object
from robot_irl.core.contracts import Policy, RobotDriver, Teleoperator
from robot_irl.core.features import Feature, vector
from robot_irl.core.registry import Registry
from robot_irl.drivers.robosuite_arm import action_names, quat_to_rotvec
from robot_irl.policies.scripted import HOLDING_PHASES, OPEN, RELEASE_PHASES, ScriptedPolicy

#: in-process operators; the others need a human at a device in the ``collect`` ROS graph
IN_PROCESS = ("scripted",)


class ScriptedOperator(Teleoperator, Policy):
    """A reactive scripted tele-operator for robosuite Lift (and Stack, whose goal is fixed).

    ``ScriptedOperator(task="lift", noise=0.0, seed=0, features=None, **expert)``: ``features`` are the driver's
    observation features (default: the robosuite layout with three distractors); ``expert`` keyword arguments go to
    :class:`ScriptedPolicy` (``hover``, ``lift_height``, ``grasp_steps``). Thresholds (m): ``lost`` — the object is
    farther than this from the gripper while grasping or lifting, so it is no longer held; ``drift`` — the object
    moved this far sideways from under the descending gripper; ``reachable_z`` — objects below this height are
    parked off the table.
    """

    name = "scripted"
    lost = 0.05
    drift = 0.025
    reachable_z = 0.5

    def __init__(self, task: str = "lift", noise: float = 0.0, seed: int | None = 0,
                 features: dict[str, Feature] | None = None, **expert: Any) -> None:
        self.expert = ScriptedPolicy(task=task, noise=noise, seed=seed, features=features, **expert)
        self.task = task
        self.replans = 0  # times the operator changed its plan because of the world (pushes, drops, new goals)
        self._waiting = False
        self._goal_cache: tuple[str | None, str] = (None, self.expert.default_target)

    @classmethod
    def from_driver(cls, driver: RobotDriver, seed: int | None = 0, noise: float = 0.0,
                    **kwargs: Any) -> ScriptedOperator:
        """Build for ``driver`` (its task and observation layout; it must take ``ee_target`` actions)."""
        expert = ScriptedPolicy.from_driver(driver, seed=seed, noise=noise, **kwargs)
        return cls(task=expert.task, noise=noise, seed=seed, features=driver.observation_features, **kwargs)

    # -- Teleoperator / Policy ----------------------------------------------------------------------------------
    @property
    def action_features(self) -> dict[str, Feature]:
        return {"action": vector(action_names("ee_target"))}

    @property
    def phase(self) -> str:
        """What the operator is doing: approach, descend, grasp, lift, ..., put_down, let_go, back_off, wait."""
        return "wait" if self._waiting else self.expert.phase

    @property
    def target(self) -> str:
        """The object the operator is going for."""
        return self.expert.target

    def reset(self, seed: int | None = None) -> None:
        """Start of an episode: forget the plan, go for the task's default object."""
        self.expert.reset(seed)
        self.expert.set_target(self.expert.default_target)
        self._waiting = False
        self.replans = 0

    def get_action(self, observation: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """The next end-effector target; re-plans from ``observation`` (which may carry ``"task"``) first."""
        if observation is None:
            raise ValueError("ScriptedOperator.get_action needs the current observation")
        goal = self.goal_for(observation.get("task"))
        self._replan(observation, goal)
        if self._waiting:
            return self._hold(observation)
        return self.expert.act(observation)

    act = get_action

    # -- planning -----------------------------------------------------------------------------------------------
    def goal_for(self, instruction: Any) -> str:
        """The object ``instruction`` names (Lift); the current target when there is no instruction."""
        if instruction is None or self.task not in LANGUAGE_TASKS:
            return self.expert.target if instruction is None else self.expert.default_target
        text = str(instruction)
        if self._goal_cache[0] != text:
            self._goal_cache = (text, goal_object(self.task, text, self.expert.objects))
        return self._goal_cache[1]

    def _replan(self, observation: dict[str, np.ndarray], goal: str) -> None:
        expert = self.expert
        if goal != expert.target:
            holding = expert.phase in HOLDING_PHASES
            expert.set_target(goal)
            if holding:
                expert.release(observation, holding=expert.phase != "grasp")
            elif expert.phase not in RELEASE_PHASES:
                expert.restart("approach")
            self.replans += 1
        obj = expert.object_pose(observation)[:3]
        self._waiting = bool(obj[2] < self.reachable_z) and expert.phase not in RELEASE_PHASES
        if self._waiting:
            return
        eef = expert.eef_pose(observation)[:3]
        phase = expert.phase
        if phase == "descend" and np.linalg.norm(eef[:2] - obj[:2]) > self.drift:
            expert.restart("approach")
            self.replans += 1
        elif phase in HOLDING_PHASES and np.linalg.norm(eef - obj) > self.lost:
            expert.release(observation, holding=False)
            self.replans += 1

    def _hold(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """Stay where the gripper is, open (waiting for the goal object to appear on the table)."""
        eef = self.expert.eef_pose(observation)
        return np.concatenate([eef[:3], quat_to_rotvec(eef[3:]), [OPEN]]).astype(np.float32)


OPERATORS: Registry[Any] = Registry("operator")
OPERATORS.register("scripted", ScriptedOperator)
OPERATORS.register("keyboard", "robot_irl.teleop.keyboard:KeyboardTeleop")
OPERATORS.register("joy", "robot_irl.teleop.joy:JoyTeleop")
