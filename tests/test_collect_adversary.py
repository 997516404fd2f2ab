"""Language goals and the scripted ADC adversary, against a stand-in driver (no simulator): the parser, the 15 cm
rule, supported kinds only, determinism per seed, mid-grasp instruction switches and the two presets."""
from __future__ import annotations

import numpy as np
import pytest

from robot_irl.collect.adversary import ADVERSARIES, Adversary, AdversaryConfig, ScriptedAdversary
from robot_irl.collect.language import InstructionError, goal_object, instruction_for
from robot_irl.core.config import ConfigError
from robot_irl.core.features import vector
from robot_irl.core.perturbation import PerturbationKind
from robot_irl.drivers.robosuite_arm import RobosuiteConfig, environment_state_names, language_objects, state_names

pytestmark = pytest.mark.unit

K = PerturbationKind
OBJECTS = language_objects("lift", 3)


# -- language --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("instruction,goal", [
    ("lift the red cube", "cube"), ("lift the cube slowly", "cube"), ("lift the blue box", "distractor_box"),
    ("pick up the yellow ball", "distractor_ball"), ("  Lift   the GREEN cylinder, please", "distractor_cylinder"),
    ("lift the blue cube", "distractor_box"),  # the longest phrasing wins over "cube"
])
def test_goal_object_maps_phrasings_to_objects(instruction, goal):
    assert goal_object("lift", instruction, OBJECTS) == goal


def test_goal_object_errors_name_the_instruction_and_the_phrasings():
    with pytest.raises(InstructionError, match=r"'lift the purple elephant' names no known object.*'blue box'"):
        goal_object("lift", "lift the purple elephant", OBJECTS)
    with pytest.raises(InstructionError, match=r"several objects \['cube', 'distractor_box'\]"):
        goal_object("lift", "lift the red cube onto the blue box", OBJECTS)
    with pytest.raises(InstructionError, match="names no known object"):  # no box in a scene without distractors
        goal_object("lift", "lift the blue box", ["cube"])
    with pytest.raises(InstructionError, match="not language-conditioned"):
        goal_object("door", "open the door", ["door"])


def test_instruction_for_round_trips_through_the_parser():
    for obj in OBJECTS:
        text = instruction_for("lift", obj)
        assert text.startswith("lift the ") and goal_object("lift", text, OBJECTS) == obj
    with pytest.raises(InstructionError, match="no phrasing"):
        instruction_for("lift", "mug")


# -- a stand-in for the robosuite Lift driver ------------------------------------------------------------------------
class FakeLift:
    """What the adversary reads of a driver: features, targets, instruction, task; observations are built here."""

    def __init__(self, kinds: tuple[PerturbationKind, ...] | None = None) -> None:
        self.config = RobosuiteConfig(task="lift")
        self.instruction = "lift the red cube"
        self.observation_features = {"observation.state": vector(state_names()),
                                     "observation.environment_state": vector(environment_state_names("lift", 3))}
        every = {K.INSTRUCTION: ["task"], K.PUSH: OBJECTS, K.MOVE_OBJECT: OBJECTS, K.COLOR: ["table", *OBJECTS],
                 K.LIGHTING: ["light0", "all"], K.CAMERA: ["agentview", "frontview"],
                 K.DISTRACTOR_ADD: OBJECTS[1:], K.DISTRACTOR_REMOVE: OBJECTS[1:]}
        self.targets = {k: v for k, v in every.items() if kinds is None or k in kinds}

    def perturbation_targets(self):
        return self.targets

    @staticmethod
    def observation(eef_to_cube: float, height: float = 0.0) -> dict:
        """Gripper ``eef_to_cube`` m from the cube along x; the cube ``height`` m above where it rests."""
        state = np.zeros(23, dtype=np.float32)
        cube = np.array([0.0, 0.0, 0.82 + height])
        state[14:17] = cube + [eef_to_cube, 0.0, 0.0]
        state[17] = 1.0
        env = np.zeros(28, dtype=np.float32)
        env[:3], env[3] = cube, 1.0
        for i in range(3):  # distractors parked on the floor
            env[7 + 7 * i:10 + 7 * i], env[10 + 7 * i] = [0.0, 2.5 + 0.25 * i, 0.02], 1.0
        return {"observation.state": state, "observation.environment_state": env}


def run(adversary, driver, distances, phases=None, seed=0):
    adversary.reset(seed)
    out = []
    for t, d in enumerate(distances):
        phase = phases[t] if phases else ""
        out.append(adversary.step(driver.observation(d), driver, phase))
    return out


def flat(steps):
    return [(t, r.kind, r.target, r.to_json()) for t, rs in enumerate(steps) for r in rs]


APPROACH = list(np.linspace(0.4, 0.0, 60)) + [0.0] * 60


def test_adversary_is_deterministic_per_seed():
    drv = FakeLift()
    a = flat(run(ScriptedAdversary("train"), drv, APPROACH, seed=3))
    b = flat(run(ScriptedAdversary("train"), drv, APPROACH, seed=3))
    assert a == b and a
    assert flat(run(ScriptedAdversary("train"), drv, APPROACH, seed=4)) != a


def test_pushes_and_moves_only_within_15_cm_of_the_goal():
    config = AdversaryConfig(push_prob=1.0, move_prob=1.0, max_pushes=100, max_moves=100, min_gap=0,
                             warmup_steps=0, instruction_prob=0.0)
    drv = FakeLift()
    far = run(ScriptedAdversary(config), drv, [0.151, 0.2, 0.5] * 30)
    assert not [r for rs in far for r in rs if r.kind in (K.PUSH, K.MOVE_OBJECT)]
    near = run(ScriptedAdversary(config), drv, [0.149, 0.1, 0.0] * 30)
    kinds = [r.kind for rs in near for r in rs]
    assert K.PUSH in kinds and all(r.target == "cube" for rs in near for r in rs if r.kind is K.PUSH)
    counted = ScriptedAdversary(AdversaryConfig(push_prob=1.0, max_pushes=2, min_gap=0, warmup_steps=0))
    assert sum(r.kind is K.PUSH for rs in run(counted, drv, [0.0] * 50) for r in rs) == 2  # at most N per episode
    push = next(r for rs in near for r in rs if r.kind is K.PUSH)
    assert push.params["velocity"][2] == 0.0 and 0.6 <= np.linalg.norm(push.params["velocity"]) <= 1.2


def test_a_lifted_object_is_pushed_but_never_teleported():
    config = AdversaryConfig(push_prob=0.0, move_prob=1.0, max_moves=100, min_gap=0, warmup_steps=0)
    drv, adversary = FakeLift(), ScriptedAdversary(config)
    adversary.reset(0)
    adversary.step(drv.observation(0.0), drv)  # first sighting: where the cube rests
    lifted = [adversary.step(drv.observation(0.0, height=0.05), drv) for _ in range(20)]
    assert not [r for rs in lifted for r in rs if r.kind is K.MOVE_OBJECT]


def test_only_kinds_and_targets_the_driver_supports():
    config = AdversaryConfig(push_prob=1.0, move_prob=1.0, color_prob=1.0, light_prob=1.0, camera_prob=1.0,
                             distractor_prob=1.0, instruction_prob=1.0, min_gap=0, warmup_steps=0)
    for kinds in [(K.INSTRUCTION, K.PUSH), (K.COLOR, K.CAMERA), (K.DISTRACTOR_ADD, K.LIGHTING, K.INSTRUCTION)]:
        drv = FakeLift(kinds)
        for rs in run(ScriptedAdversary(config), drv, APPROACH, phases=["grasp"] * len(APPROACH)):
            for r in rs:
                assert r.kind in kinds, (kinds, r)
                assert r.target in drv.targets[r.kind]


def test_instruction_switches_mid_grasp_to_an_object_on_the_table():
    config = AdversaryConfig(instruction_prob=1.0, initial_distractors=0, push_prob=0.0, move_prob=0.0,
                             color_prob=0.0, light_prob=0.0, camera_prob=0.0, distractor_prob=0.0)
    drv = FakeLift()
    phases = ["approach"] * 30 + ["descend"] * 10 + ["grasp"] * 10
    steps = run(ScriptedAdversary(config), drv, [0.0] * len(phases), phases)
    requests = [(t, r) for t, rs in enumerate(steps) for r in rs]
    (t_add, add), (t_switch, switch) = requests  # no distractor on the table: one is added first, same tick
    assert t_add == t_switch == 40 and add.kind is K.DISTRACTOR_ADD and switch.kind is K.INSTRUCTION
    assert goal_object("lift", switch.params["text"], OBJECTS) == add.target
    human = run(ScriptedAdversary(config), drv, [0.2] * 20 + [0.02] * 5)  # no phase: the gripper at the object
    switched = [t for t, rs in enumerate(human) for r in rs if r.kind is K.INSTRUCTION]
    assert switched == [20]
    never = run(ScriptedAdversary(config.replace(instruction_prob=0.0)), drv, [0.0] * 50, ["grasp"] * 50)
    assert not any(never)


def test_initial_distractors_and_scene_changes():
    drv = FakeLift()
    steps = run(ScriptedAdversary(AdversaryConfig(initial_distractors=2)), drv, [0.5] * 3)
    assert [r.kind for r in steps[0]] == [K.DISTRACTOR_ADD] * 2 and steps[1] == steps[2] == []
    scene = AdversaryConfig(color_prob=1.0, light_prob=1.0, camera_prob=1.0, max_colors=1, max_lights=1,
                            max_camera_shifts=1, min_gap=0, initial_distractors=0, distractor_prob=0.0)
    kinds = {r.kind: r for rs in run(ScriptedAdversary(scene), drv, [0.5] * 40) for r in rs}
    assert set(kinds) == {K.COLOR, K.LIGHTING, K.CAMERA}
    assert kinds[K.COLOR].target == "table" and kinds[K.CAMERA].target == "agentview"
    assert abs(kinds[K.CAMERA].params["yaw"]) <= scene.camera_yaw


def test_presets_differ_and_configs_are_validated():
    train, held_out = AdversaryConfig.preset("train"), AdversaryConfig.preset("held_out")
    assert train.trigger_distance == held_out.trigger_distance == 0.15
    assert train.push_speed[1] <= held_out.push_speed[0] and train.move_distance[1] <= held_out.move_distance[0]
    assert train.instruction_phases != held_out.instruction_phases
    drv = FakeLift()
    phases = (["approach"] * 40 + ["descend"] * 20 + ["grasp"] * 20 + ["lift"] * 40)
    assert flat(run(ScriptedAdversary(train), drv, APPROACH, phases)) != flat(
        run(ScriptedAdversary(held_out), drv, APPROACH, phases))
    with pytest.raises(ConfigError, match="unknown adversary preset 'eval'.*held_out"):
        AdversaryConfig.preset("eval")
    with pytest.raises(ConfigError, match="push_prob"):
        AdversaryConfig(push_prob=1.5)
    with pytest.raises(ConfigError, match="push_speed"):
        AdversaryConfig.from_dict({"push_speed": [1.0, 0.5]})


def test_adversary_registry():
    assert ADVERSARIES.names() == ["console", "none", "scripted"]
    assert ADVERSARIES.get("scripted") is ScriptedAdversary
    assert ADVERSARIES.get("none")().step(FakeLift.observation(0.0), FakeLift()) == []
    assert issubclass(ScriptedAdversary, Adversary)
