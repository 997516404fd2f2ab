"""The adversarial operator of ADC: perturbs objects, scene and instruction while the tele-operator works.

Adversaries follow the runner's :class:`robot_irl.runner.Perturber` protocol: ``reset(seed)`` at the start of an
episode, then ``step(observation, driver, phase)`` once per tick, returning perturbation *requests* that the runner
applies through ``driver.perturb`` (which stamps them) and records on the frame.

:class:`ScriptedAdversary` applies the ADC rules (arXiv 2503.11646) with a seeded generator:

* **objects**: once the gripper is within ``trigger_distance`` (15 cm) of the goal object, push it (a horizontal
  velocity) or move it (teleport a few cm, turned about z), each with a per-tick probability and at most
  ``max_pushes``/``max_moves`` times per episode, never twice within ``min_gap`` ticks;
* **language**: while the operator grasps (``phase`` in ``instruction_phases``) or, when the phase is unknown (a
  human operator), the gripper is within ``instruction_distance`` of the goal, switch the instruction to another
  object on the table (adding a distractor first when none is there);
* **scene**: colour changes (table and objects), lighting and camera shifts at random times;
* **distractors**: put on the table at the start (``initial_distractors``) and moved in and out at random times.

Only kinds and targets the driver lists in ``driver.perturbation_targets()`` are requested; a driver without an
end-effector position in ``observation.state`` gets no object perturbation. The same seed, observations and phases
give the same requests. :class:`AdversaryConfig` holds every probability, count and magnitude;
``AdversaryConfig.preset("train")`` is for collection, ``preset("held_out")`` uses other magnitudes and timings
for evaluation.

Registry :data:`ADVERSARIES`: ``scripted``, ``none``, and ``console`` (the web console of a human adversary; lazy).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_irl.collect.language import LANGUAGE_TASKS, InstructionError, goal_object, instruction_for
from robot_irl.core.config import Config, ConfigError, check
from robot_irl.core.contracts import RobotDriver
from robot_irl.core.perturbation import Perturbation, PerturbationKind
from robot_irl.core.registry import Registry

K = PerturbationKind
Range = tuple[float, float]


@dataclass
class AdversaryConfig(Config):
    """Probabilities are per tick (``*_prob``) unless said otherwise; ranges are (low, high), drawn uniformly."""

    warmup_steps: int = 5  # no perturbation before this tick
    min_gap: int = 15  # ticks between two object perturbations (push/move) or two scene perturbations
    trigger_distance: float = 0.15  # m: pushes and moves only when the gripper is this close to the goal object
    # pushes: a horizontal velocity on the goal object
    push_prob: float = 0.15
    max_pushes: int = 1
    push_speed: Range = (0.6, 1.2)  # m/s (0.6: the cube slides ~3 cm; 1.2: ~8 cm)
    # moves: teleport the goal object (not while it is lifted)
    move_prob: float = 0.1
    max_moves: int = 1
    move_distance: Range = (0.04, 0.08)  # m, horizontal
    move_yaw: float = 0.8  # rad: turn about z within +-move_yaw
    keep_away: float = 0.06  # m: a moved object lands at least this far (xy) from the gripper and other objects
    # language: switch the goal to another object on the table
    instruction_prob: float = 0.5  # per episode
    max_instruction_changes: int = 1
    instruction_phases: tuple[str, ...] = ("grasp",)
    instruction_distance: float = 0.03  # m: "near the object" when the operator reports no phase
    # scene
    color_prob: float = 0.02
    max_colors: int = 2
    color_targets: tuple[str, ...] = ("table",)  # also object names; only those the driver lists are used
    color_range: Range = (0.1, 0.9)  # each of r, g, b
    light_prob: float = 0.02
    max_lights: int = 1
    light_diffuse: Range = (0.4, 1.0)
    light_tilt: float = 0.5  # direction: straight down tilted by up to this (rad)
    camera_prob: float = 0.01
    max_camera_shifts: int = 1
    cameras: tuple[str, ...] = ("agentview",)
    camera_shift: float = 0.03  # m, per axis
    camera_yaw: float = 0.08  # rad
    # distractors
    initial_distractors: int = 1  # put on the table at the first tick
    distractor_prob: float = 0.01
    max_distractor_changes: int = 1

    def validate(self) -> None:
        w = "AdversaryConfig"
        for name in ("push_prob", "move_prob", "instruction_prob", "color_prob", "light_prob", "camera_prob",
                     "distractor_prob"):
            check(0.0 <= getattr(self, name) <= 1.0, f"{w}.{name}", f"must be in [0, 1], got {getattr(self, name)}")
        for name in ("max_pushes", "max_moves", "max_instruction_changes", "max_colors", "max_lights",
                     "max_camera_shifts", "max_distractor_changes", "initial_distractors", "warmup_steps", "min_gap"):
            check(getattr(self, name) >= 0, f"{w}.{name}", f"must be >= 0, got {getattr(self, name)}")
        for name in ("push_speed", "move_distance", "color_range", "light_diffuse"):
            lo, hi = getattr(self, name)
            check(0.0 <= lo <= hi, f"{w}.{name}", f"must be (low, high) with 0 <= low <= high, got {(lo, hi)}")
        for name in ("trigger_distance", "instruction_distance", "keep_away", "move_yaw", "light_tilt",
                     "camera_shift", "camera_yaw"):
            check(getattr(self, name) >= 0, f"{w}.{name}", f"must be >= 0, got {getattr(self, name)}")
        check(self.color_range[1] <= 1.0 and self.light_diffuse[1] <= 1.0, f"{w}.color_range",
              "colour and light values must be <= 1")

    @classmethod
    def preset(cls, name: str) -> AdversaryConfig:
        """``train`` (collection) or ``held_out`` (evaluation: other magnitudes and timings)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown adversary preset {name!r}; known presets: {sorted(PRESETS)}")
        return cls.from_dict(PRESETS[name], where=f"AdversaryConfig.preset({name!r})")


PRESETS: dict[str, dict[str, Any]] = {
    "train": {},
    "held_out": {
        "warmup_steps": 10, "min_gap": 10, "push_prob": 0.3, "max_pushes": 2, "push_speed": (1.2, 1.6),
        "move_prob": 0.2, "max_moves": 1, "move_distance": (0.08, 0.12), "move_yaw": 1.5, "instruction_prob": 1.0,
        "instruction_phases": ("descend", "lift"), "instruction_distance": 0.06, "color_prob": 0.05,
        "max_colors": 3, "color_targets": ("table", "cube"), "color_range": (0.0, 1.0), "light_prob": 0.05,
        "max_lights": 2, "light_diffuse": (0.15, 0.5), "light_tilt": 0.9, "camera_prob": 0.03,
        "max_camera_shifts": 2, "camera_shift": 0.06, "camera_yaw": 0.15, "initial_distractors": 2,
        "distractor_prob": 0.02, "max_distractor_changes": 2,
    },
}


class Adversary:
    """Base adversary: requests nothing. Subclasses override :meth:`step` (and :meth:`reset` for their state)."""

    name = "none"

    def reset(self, seed: int | None = None) -> None:
        """Start of an episode."""

    def step(self, observation: dict, driver: RobotDriver, phase: str = "") -> list[Perturbation]:
        """Perturbation requests for this tick (``observation``: what the operator just acted on)."""
        return []


def _pose_index(names: list[str], obj: str) -> np.ndarray | None:
    keys = [f"{obj}.{k}" for k in ("x", "y", "z")]
    return np.array([names.index(k) for k in keys]) if all(k in names for k in keys) else None


class ScriptedAdversary(Adversary):
    """The ADC rules with a seeded generator (see the module docstring). ``config``: an :class:`AdversaryConfig`,
    a preset name, or None (``train``)."""

    name = "scripted"

    def __init__(self, config: AdversaryConfig | str | None = None, seed: int | None = 0) -> None:
        if config is None or isinstance(config, str):
            config = AdversaryConfig.preset(config or "train")
        self.config = config
        self._seed = seed
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        seed = self._seed if seed is None else seed
        self._rng = np.random.default_rng(None if seed is None else [seed, 7])
        self._tick = 0
        self.counts: dict[str, int] = {}
        self._last: dict[str, int] = {}  # group -> tick of the last perturbation
        self._on_table: list[str] = []  # distractors this adversary put on the table
        self._start: dict[str, np.ndarray] = {}  # object -> position at its first sighting
        self._switch_episode = None  # drawn at the first tick: will the instruction change this episode?

    # -- the protocol -------------------------------------------------------------------------------------------
    def step(self, observation: dict, driver: RobotDriver, phase: str = "") -> list[Perturbation]:
        self._tick += 1
        targets = driver.perturbation_targets()
        if self._switch_episode is None:
            self._switch_episode = bool(self._rng.random() < self.config.instruction_prob)
        view = _View(observation, driver)
        for obj in view.objects_on_table(self._on_table):  # where each object started (or was put on the table)
            if (position := view.position(obj)) is not None:
                self._start.setdefault(obj, position.copy())
        if self._tick == 1:
            return self._initial_distractors(targets)
        if self._tick <= self.config.warmup_steps:
            return []
        requests = self._language(view, targets, phase)
        requests += self._objects(view, targets)
        requests += self._scene(targets)
        requests += self._distractors(view, targets)
        return requests

    # -- bookkeeping ---------------------------------------------------------------------------------------------
    def _can(self, kind: PerturbationKind, targets: dict, limit: int, group: str | None = None) -> bool:
        """Whether ``kind`` is supported, under its per-episode ``limit`` and not within ``min_gap`` of its group."""
        if kind not in targets or self.counts.get(kind.value, 0) >= limit:
            return False
        last = self._last.get(group or kind.value)
        return last is None or self._tick - last >= self.config.min_gap

    def _note(self, request: Perturbation, group: str | None = None) -> Perturbation:
        self.counts[request.kind.value] = self.counts.get(request.kind.value, 0) + 1
        self._last[group or request.kind.value] = self._tick
        return request

    def _chance(self, p: float) -> bool:
        return bool(self._rng.random() < p)

    # -- distractors ---------------------------------------------------------------------------------------------
    def _initial_distractors(self, targets: dict) -> list[Perturbation]:
        available = list(targets.get(K.DISTRACTOR_ADD, []))
        count = min(self.config.initial_distractors, len(available))
        chosen = [available[i] for i in sorted(self._rng.choice(len(available), size=count, replace=False))] \
            if count else []
        self._on_table.extend(chosen)
        return [Perturbation(K.DISTRACTOR_ADD, name, {}) for name in chosen]

    def _add_distractor(self, targets: dict) -> Perturbation | None:
        parked = [n for n in targets.get(K.DISTRACTOR_ADD, []) if n not in self._on_table]
        if not parked:
            return None
        name = parked[int(self._rng.integers(len(parked)))]
        self._on_table.append(name)
        return Perturbation(K.DISTRACTOR_ADD, name, {})

    def _distractors(self, view: _View, targets: dict) -> list[Perturbation]:
        c = self.config
        if not self._can(K.DISTRACTOR_ADD, targets, 10 ** 9, "distractor") \
                or self.counts.get("distractor_changes", 0) >= c.max_distractor_changes \
                or not self._chance(c.distractor_prob):
            return []
        goal = view.goal
        removable = [n for n in self._on_table if n != goal and K.DISTRACTOR_REMOVE in targets]
        if removable and self._chance(0.5):
            name = removable[int(self._rng.integers(len(removable)))]
            self._on_table.remove(name)
            self._start.pop(name, None)
            request = Perturbation(K.DISTRACTOR_REMOVE, name, {})
        else:
            request = self._add_distractor(targets)
            if request is None:
                return []
        self.counts["distractor_changes"] = self.counts.get("distractor_changes", 0) + 1
        return [self._note(request, "distractor")]

    # -- language ------------------------------------------------------------------------------------------------
    def _language(self, view: _View, targets: dict, phase: str) -> list[Perturbation]:
        c = self.config
        if not self._switch_episode or not self._can(K.INSTRUCTION, targets, c.max_instruction_changes) \
                or view.goal is None or view.task not in LANGUAGE_TASKS:
            return []
        if phase:
            grasping = phase in c.instruction_phases
        else:
            distance = view.gripper_distance(view.goal)
            grasping = distance is not None and distance < c.instruction_distance
        if not grasping:
            return []
        requests = []
        others = [n for n in view.objects_on_table(self._on_table) if n != view.goal]
        if not others:
            added = self._add_distractor(targets)
            if added is None:
                return []
            requests.append(self._note(added, "distractor"))
            others = [added.target]
        new_goal = others[int(self._rng.integers(len(others)))]
        requests.append(self._note(Perturbation(K.INSTRUCTION, "task",
                                                {"text": instruction_for(view.task, new_goal)})))
        return requests

    # -- objects -------------------------------------------------------------------------------------------------
    def _objects(self, view: _View, targets: dict) -> list[Perturbation]:
        c, goal = self.config, view.goal
        if goal is None:
            return []
        position = view.position(goal)
        distance = view.gripper_distance(goal)
        if position is None or distance is None or goal not in self._start:
            return []
        if distance > c.trigger_distance:
            return []
        if goal in targets.get(K.PUSH, []) and self._can(K.PUSH, targets, c.max_pushes, "object") \
                and self._chance(c.push_prob):
            return [self._note(self._push(goal, position), "object")]
        lifted = position[2] > self._start[goal][2] + 0.01
        if not lifted and goal in targets.get(K.MOVE_OBJECT, []) \
                and self._can(K.MOVE_OBJECT, targets, c.max_moves, "object") and self._chance(c.move_prob):
            return [self._note(self._move(view, goal, position), "object")]
        return []

    def _push(self, goal: str, position: np.ndarray) -> Perturbation:
        """A horizontal push; an object already away from where it started is pushed back within +-90 degrees (so
        that repeated pushes do not sweep it off the table)."""
        speed = self._rng.uniform(*self.config.push_speed)
        heading = self._rng.uniform(-np.pi, np.pi)
        away = position[:2] - self._start[goal][:2]
        if np.linalg.norm(away) > 0.03:
            heading = float(np.arctan2(-away[1], -away[0])) + heading / 2
        return Perturbation(K.PUSH, goal, {"velocity": [speed * np.cos(heading), speed * np.sin(heading), 0.0]})

    def _move(self, view: _View, goal: str, position: np.ndarray) -> Perturbation:
        """A spot ``move_distance`` away, kept near the object's start, away from the gripper and other objects."""
        c = self.config
        start = self._start[goal]
        others = [p[:2] for n in view.objects_on_table(self._on_table) if n != goal
                  and (p := view.position(n)) is not None]
        eef = view.eef[:2]
        best, best_gap = None, -1.0
        for _ in range(12):
            heading = self._rng.uniform(-np.pi, np.pi)
            xy = position[:2] + self._rng.uniform(*c.move_distance) * np.array([np.cos(heading), np.sin(heading)])
            offset = xy - start[:2]  # stay on the table: within the largest move of where the object started
            if np.linalg.norm(offset) > c.move_distance[1]:
                xy = start[:2] + offset / np.linalg.norm(offset) * c.move_distance[1]
            gap = min([np.linalg.norm(xy - eef), *(np.linalg.norm(xy - o) for o in others)])
            if gap > best_gap:
                best, best_gap = xy, gap
            if gap >= c.keep_away:
                break
        yaw = float(self._rng.uniform(-c.move_yaw, c.move_yaw)) + view.yaw(goal)
        return Perturbation(K.MOVE_OBJECT, goal, {"position": [float(best[0]), float(best[1]),
                                                               float(position[2]) + 0.002], "yaw": yaw})

    # -- scene ---------------------------------------------------------------------------------------------------
    def _scene(self, targets: dict) -> list[Perturbation]:
        c = self.config
        makers = ((K.COLOR, c.color_prob, c.max_colors, self._color),
                  (K.LIGHTING, c.light_prob, c.max_lights, self._light),
                  (K.CAMERA, c.camera_prob, c.max_camera_shifts, self._camera))
        for kind, prob, limit, make in makers:
            if self._can(kind, targets, limit, "scene") and self._chance(prob):
                request = make(targets[kind])
                if request is not None:
                    return [self._note(request, "scene")]
        return []

    def _color(self, known: list[str]) -> Perturbation | None:
        usable = [t for t in self.config.color_targets if t in known]
        if not usable:
            return None
        rgb = self._rng.uniform(*self.config.color_range, size=3)
        return Perturbation(K.COLOR, usable[int(self._rng.integers(len(usable)))], {"rgba": [*rgb, 1.0]})

    def _light(self, known: list[str]) -> Perturbation | None:
        c = self.config
        target = "all" if "all" in known else (known[0] if known else None)
        if target is None:
            return None
        tilt, heading = self._rng.uniform(0.0, c.light_tilt), self._rng.uniform(-np.pi, np.pi)
        direction = [np.sin(tilt) * np.cos(heading), np.sin(tilt) * np.sin(heading), -np.cos(tilt)]
        diffuse = float(self._rng.uniform(*c.light_diffuse))
        return Perturbation(K.LIGHTING, target, {"diffuse": [diffuse] * 3, "direction": direction})

    def _camera(self, known: list[str]) -> Perturbation | None:
        c = self.config
        usable = [t for t in c.cameras if t in known]
        if not usable:
            return None
        offset = self._rng.uniform(-c.camera_shift, c.camera_shift, size=3)
        yaw = float(self._rng.uniform(-c.camera_yaw, c.camera_yaw))
        return Perturbation(K.CAMERA, usable[int(self._rng.integers(len(usable)))],
                            {"offset": offset.tolist(), "yaw": yaw})


class _View:
    """What the adversary reads from one observation: gripper position, object poses, the goal object."""

    def __init__(self, observation: dict, driver: RobotDriver) -> None:
        feats = driver.observation_features
        self._state_names = list(feats["observation.state"].names or ()) if "observation.state" in feats else []
        self._env_names = list(feats["observation.environment_state"].names or ()) \
            if "observation.environment_state" in feats else []
        self._state = np.asarray(observation.get("observation.state", ()), dtype=np.float64)
        self._env = np.asarray(observation.get("observation.environment_state", ()), dtype=np.float64)
        eef = _pose_index(self._state_names, "eef")
        self.eef = self._state[eef] if eef is not None and self._state.size else None
        self.task = str(getattr(getattr(driver, "config", None), "task", "") or "")
        self.objects = [n[:-2] for n in self._env_names if n.endswith(".x") and _pose_index(self._env_names, n[:-2])
                        is not None]
        self.goal = self._goal(driver)

    def _goal(self, driver: RobotDriver) -> str | None:
        """The object the instruction names (Lift), else the first movable object with a pose."""
        if self.task in LANGUAGE_TASKS:
            try:
                return goal_object(self.task, driver.instruction, self.objects)
            except InstructionError:
                return None
        movable = driver.perturbation_targets().get(K.PUSH, [])
        return next((o for o in movable if o in self.objects), None)

    def position(self, obj: str) -> np.ndarray | None:
        index = _pose_index(self._env_names, obj)
        return self._env[index] if index is not None and self._env.size else None

    def yaw(self, obj: str) -> float:
        """Heading of ``obj`` about z (0 when its orientation is not observed)."""
        keys = [f"{obj}.{k}" for k in ("qw", "qx", "qy", "qz")]
        if not all(k in self._env_names for k in keys):
            return 0.0
        w, x, y, z = (self._env[self._env_names.index(k)] for k in keys)
        return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))

    def gripper_distance(self, obj: str) -> float | None:
        position = self.position(obj)
        if self.eef is None or position is None:
            return None
        return float(np.linalg.norm(self.eef - position))

    def objects_on_table(self, distractors_on_table: list[str]) -> list[str]:
        """Task objects plus the distractors known to be on the table."""
        return [o for o in self.objects if not o.startswith("distractor_") or o in distractors_on_table]


ADVERSARIES: Registry[Any] = Registry("adversary")
ADVERSARIES.register("scripted", ScriptedAdversary)
ADVERSARIES.register("none", Adversary)
ADVERSARIES.register("console", "robot_irl.console.adversary:ConsoleAdversary")
