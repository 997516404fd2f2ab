"""robosuite Panda (Lift, Stack, Door) behind the driver contract: fast, headless, replayable, perturbable.

Speed. A naive ``suite.make("Lift", robots="Panda")`` steps at ~25/s on 2 CPU cores: it renders a 256x256
``agentview`` frame every step through software EGL with 4x MSAA, reflections, shadows and the collision meshes
drawn over the visual ones, and a reset rebuilds the whole model (``hard_reset=True``, ~2 s). This driver renders
nothing unless cameras are requested; then it draws only visual geoms, at ``camera_size`` (84 px), without MSAA,
reflections, shadows or skybox. Resets are soft (``hard_reset=False``), robosuite's own observables (sampled every
physics substep) are switched off and the observation is read straight from the MuJoCo data.

Actions. ``control="ee_target"``: an absolute end-effector target ``[x, y, z, ax, ay, az, gripper]`` (world frame,
axis-angle orientation, gripper -1 open .. 1 closed) through robosuite's OSC_POSE controller with
``input_type="absolute"``. ``control="joint_position"``: 7 absolute joint targets + gripper (JOINT_POSITION,
absolute). Both go through the safety layer first (workspace box / Panda joint limits, per-tick step limits).

An axis-angle vector is not unique: ``r`` and ``r - 2*pi*r/|r|`` are the same rotation. The Panda's gripper-down
pose sits near an angle of pi, where the usual canonical form flips sides under tiny motions. The safety reference
therefore expresses the measured orientation in the form nearest the requested one, so the relative step limit
never turns a harmless request into a large rotation.

Replay. :meth:`get_state` returns ``[step_count, gripper command, gripper ramp, the OSC nullspace target (the
episode's noisy start pose), MuJoCo integration state]``; restoring it in a driver built with the same config
(``seed`` fixes the model, e.g. Lift's random cube size) and sending the same actions reproduces the observations.
Model-level perturbations (colours, lights, cameras) are not part of it: they are listed in
:attr:`model_perturbations` and undone on reset.

Distractors. Up to three small objects (box, ball, cylinder) are part of the model from the start, parked on the
floor out of every camera's view; ``distractor_add`` teleports one onto the table and ``distractor_remove`` parks it
again, so the model never recompiles and the state vector keeps its size. Their poses follow the task objects' in
``observation.environment_state`` (``distractor_box.x`` ...), parked or not.

Language goals (Lift). The instruction names the object to lift (:mod:`robot_irl.collect.language`): "lift the red
cube" (the default) or, with distractors, "lift the blue box", "pick up the yellow ball", ... Success (and the sparse
reward) is that object's centre more than 4 cm above the table top, robosuite's own Lift test applied to the goal
object; for the cube it is robosuite's ``_check_success``. An instruction naming no known object is refused. Every
reset restores the configured instruction.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from robot_irl.collect.language import LANGUAGE_TASKS, InstructionError, goal_object
from robot_irl.core.config import Config, check
from robot_irl.core.contracts import RobotDriver
from robot_irl.core.features import Feature, image, vector
from robot_irl.core.perturbation import Perturbation, PerturbationBounds, PerturbationError, PerturbationKind
from robot_irl.core.safety import SafetyLimits

TASKS = {"lift": "Lift", "stack": "Stack", "door": "Door"}
DEFAULT_INSTRUCTIONS = {
    "lift": "lift the red cube",
    "stack": "stack the red cube on the green cube",
    "door": "open the door",
}
#: camera names accepted in ``cameras`` -> robosuite camera
CAMERAS = {"agentview": "agentview", "wrist": "robot0_eye_in_hand"}
#: task objects with a free joint, as attribute names of the robosuite environment
TASK_OBJECTS = {"lift": ("cube",), "stack": ("cubeA", "cubeB"), "door": ()}
#: Panda joint limits (rad), as in robosuite's panda/robot.xml
PANDA_JOINT_LOWER = (-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973)
PANDA_JOINT_UPPER = (2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973)
SIM_RATE_HZ = 500.0  # robosuite's physics rate (timestep 0.002 s)
LIFT_MARGIN = 0.04  # m: robosuite's Lift succeeds when the cube's centre is this far above the table top
#: (name, robosuite object class, size, rgba); parked at (0, 2.5 + 0.25 i, half height) on the floor
DISTRACTORS = (
    ("distractor_box", "BoxObject", (0.018, 0.018, 0.018), (0.15, 0.35, 0.9, 1.0)),
    ("distractor_ball", "BallObject", (0.022,), (0.95, 0.8, 0.1, 1.0)),
    ("distractor_cylinder", "CylinderObject", (0.018, 0.025), (0.1, 0.7, 0.3, 1.0)),
)
#: where distractor_add puts a distractor: (low, high) xy offsets from the table centre (the Panda sits at x = -0.56;
#: with the gripper pointing down it cannot reach much beyond x = +0.15)
DISTRACTOR_AREA = ((-0.2, -0.2), (0.1, 0.2))
#: contact friction (sliding, torsional, rolling) of the ball, so that a pushed ball stops about where a cube would
ROLLING = {"BallObject": "1 0.005 0.02"}
_POSE_KEYS = ("x", "y", "z", "qw", "qx", "qy", "qz")


# -- rotations (pure numpy; quaternions are (w, x, y, z) as in MuJoCo) --------------------------------------------
def quat_to_rotvec(quat) -> np.ndarray:
    """Axis-angle vector of a unit quaternion, angle in [0, pi]."""
    q = np.asarray(quat, dtype=np.float64)
    q = q / np.linalg.norm(q)
    if q[0] < 0:
        q = -q
    s = np.linalg.norm(q[1:])
    if s < 1e-12:
        return np.zeros(3)
    return q[1:] / s * (2.0 * np.arctan2(s, q[0]))


def rotvec_to_quat(rotvec) -> np.ndarray:
    r = np.asarray(rotvec, dtype=np.float64)
    angle = np.linalg.norm(r)
    if angle < 1e-12:
        return np.array([1.0, 0.0, 0.0, 0.0])
    return np.concatenate([[np.cos(angle / 2)], r / angle * np.sin(angle / 2)])


def quat_mul(a, b) -> np.ndarray:
    """Hamilton product a * b (apply b, then a)."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def quat_to_mat(quat) -> np.ndarray:
    w, x, y, z = np.asarray(quat, dtype=np.float64) / np.linalg.norm(quat)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def rotvec_near(rotvec, hint) -> np.ndarray:
    """The axis-angle vector of the same rotation as ``rotvec`` closest to ``hint`` (r or r - 2*pi*r/|r|)."""
    r = np.asarray(rotvec, dtype=np.float64)
    angle = np.linalg.norm(r)
    if hint is None or angle < 1e-9:
        return r
    hint = np.asarray(hint, dtype=np.float64)
    if hint.shape != (3,) or not np.all(np.isfinite(hint)):
        return r
    other = r / angle * (angle - 2.0 * np.pi)
    return other if np.linalg.norm(other - hint) < np.linalg.norm(r - hint) else r


# -- configuration ------------------------------------------------------------------------------------------------
@dataclass
class RobosuiteConfig(Config):
    task: Literal["lift", "stack", "door"] = "lift"
    control: Literal["ee_target", "joint_position"] = "ee_target"
    control_freq: float = 20.0  # Hz; must divide robosuite's 500 Hz physics
    cameras: tuple[str, ...] = ()  # "agentview" and/or "wrist"; none by default (rendering is the slow part)
    camera_size: int = 84  # square images, pixels
    workspace_low: tuple[float, float, float] = (-0.45, -0.6, 0.805)  # end-effector box (world, m): above the
    workspace_high: tuple[float, float, float] = (0.45, 0.6, 1.4)  # table top (z = 0.8), in front of the robot
    max_step_pos: float = 0.05  # m per tick for ee targets, from the measured pose
    max_step_rot: float = 0.3  # rad per tick (per axis-angle component)
    max_step_joint: float = 0.1  # rad per tick for joint targets
    kp: float = 150.0  # controller stiffness (OSC or joint position)
    distractors: int = 3  # extra objects in the model, parked until distractor_add
    initialization_noise: float = 0.02  # robot joint noise at reset (rad, gaussian std); 0: same start pose
    reward_shaping: bool = False  # robosuite's dense reward instead of the sparse success reward
    seed: int = 0  # seeds model construction (Lift's cube size) and the episodes of unseeded resets
    instruction: str = ""  # empty: a default per task
    quiet: bool = True  # silence robosuite's console logging

    def validate(self) -> None:
        w = "RobosuiteConfig"
        check(self.task in TASKS, f"{w}.task", f"{self.task!r} is not one of {sorted(TASKS)}")
        substeps = SIM_RATE_HZ / self.control_freq if self.control_freq > 0 else 0.0
        check(substeps >= 1 and abs(substeps - round(substeps)) < 1e-6, f"{w}.control_freq",
              f"must divide the {SIM_RATE_HZ:g} Hz physics rate (e.g. 10, 20, 25, 50), got {self.control_freq}")
        unknown = [c for c in self.cameras if c not in CAMERAS]
        check(not unknown, f"{w}.cameras", f"unknown camera(s) {unknown}; allowed: {sorted(CAMERAS)}")
        check(len(set(self.cameras)) == len(self.cameras), f"{w}.cameras", f"duplicates in {list(self.cameras)}")
        check(16 <= self.camera_size <= 640, f"{w}.camera_size", f"must be in [16, 640], got {self.camera_size}")
        check(all(lo < hi for lo, hi in zip(self.workspace_low, self.workspace_high)), f"{w}.workspace_low",
              f"must be < workspace_high elementwise ({self.workspace_low} vs {self.workspace_high})")
        for field in ("max_step_pos", "max_step_rot", "max_step_joint", "kp"):
            check(getattr(self, field) > 0, f"{w}.{field}", "must be > 0")
        check(0 <= self.distractors <= len(DISTRACTORS), f"{w}.distractors",
              f"must be in [0, {len(DISTRACTORS)}], got {self.distractors}")
        check(self.initialization_noise >= 0, f"{w}.initialization_noise", "must be >= 0")
        if self.instruction and self.task in LANGUAGE_TASKS:
            try:
                goal_object(self.task, self.instruction, language_objects(self.task, self.distractors))
            except InstructionError as e:
                check(False, f"{w}.instruction", str(e))


def state_names() -> list[str]:
    """Names of ``observation.state``: joint pos 7, joint vel 7, eef pos 3, eef quat (w,x,y,z) 4, fingers 2."""
    return ([f"joint{i}.pos" for i in range(1, 8)] + [f"joint{i}.vel" for i in range(1, 8)]
            + [f"eef.{k}" for k in _POSE_KEYS] + ["gripper.left", "gripper.right"])


def distractor_names(count: int) -> list[str]:
    """The first ``count`` distractors' names (the ones a driver with ``distractors=count`` has)."""
    return [name for name, *_ in DISTRACTORS[:count]]


def language_objects(task: str, distractors: int = 0) -> list[str]:
    """The objects an instruction may name: the task's own, then the distractors."""
    return [*TASK_OBJECTS[task], *distractor_names(distractors)]


def environment_state_names(task: str, distractors: int = 0) -> list[str]:
    """Names of ``observation.environment_state``: the task's object poses (the door's joints), then the poses of
    the ``distractors`` distractors."""
    if task == "door":
        names = ["door.x", "door.y", "door.z", "handle.x", "handle.y", "handle.z", "door.hinge", "door.latch"]
    else:
        names = [f"{obj}.{k}" for obj in TASK_OBJECTS[task] for k in _POSE_KEYS]
    return names + [f"{obj}.{k}" for obj in distractor_names(distractors) for k in _POSE_KEYS]


def action_names(control: str) -> list[str]:
    if control == "ee_target":
        return ["x", "y", "z", "ax", "ay", "az", "gripper"]
    return [f"joint{i}" for i in range(1, 8)] + ["gripper"]


# -- robosuite plumbing (imported lazily) -------------------------------------------------------------------------
_ENV_CLASSES: dict[tuple[str, int], type] = {}


def _import_robosuite(quiet: bool):
    logger = logging.getLogger("robosuite_logs")
    if quiet:
        logger.disabled = True  # the import itself warns about macros, robosuite_models, mink
    try:
        import robosuite
    finally:
        logger.disabled = False
    if quiet:
        logger.setLevel(logging.ERROR)
    return robosuite


def _make_distractors(count: int) -> list:
    from robosuite.models import objects

    made = []
    for i, (name, cls_name, size, rgba) in enumerate(DISTRACTORS[:count]):
        obj = getattr(objects, cls_name)(name=name, size=list(size), rgba=list(rgba), density=500)
        half_height = size[-1]  # box: z half-size; ball: radius; cylinder: half-length
        obj.get_obj().set("pos", f"0 {2.5 + 0.25 * i} {half_height}")
        if cls_name in ROLLING:  # MuJoCo's default contacts have no rolling friction: a ball would roll off the table
            for geom in obj.get_obj().iter("geom"):
                if geom.get("group") == "0":  # collision geoms
                    geom.set("condim", "6")
                    geom.set("friction", ROLLING[cls_name])
        made.append(obj)
    return made


def _env_class(task: str, distractors: int) -> type:
    """The robosuite task class, subclassed to merge ``distractors`` parked objects into its model."""
    key = (task, distractors)
    if key not in _ENV_CLASSES:
        from robosuite.environments.base import REGISTERED_ENVS

        base = REGISTERED_ENVS[TASKS[task]]
        if distractors == 0:
            _ENV_CLASSES[key] = base
        else:
            def _load_model(self) -> None:
                base._load_model(self)
                self.distractor_objects = _make_distractors(distractors)
                self.model.merge_objects(self.distractor_objects)
                self.model.mujoco_objects.extend(self.distractor_objects)

            methods = {"_load_model": _load_model, "__module__": __name__}
            if task in LANGUAGE_TASKS:
                methods["_check_success"] = _goal_check_success(base)
            name = f"RobotIrl{base.__name__}{distractors}Distractors"
            _ENV_CLASSES[key] = type(name, (base,), methods)
    return _ENV_CLASSES[key]


def _goal_check_success(base: type):
    """Lift's ``_check_success`` for the goal object named by ``env.robot_irl_goal`` (set by the driver).

    robosuite's reward calls it too, so the sparse reward follows the instruction. For the cube (or no goal) it is
    robosuite's own test; a distractor passes the same test: its centre above the table top by ``LIFT_MARGIN``.
    """
    def _check_success(self) -> bool:
        goal = getattr(self, "robot_irl_goal", None)
        if goal is None or goal == "cube":
            return base._check_success(self)
        obj = next(o for o in self.distractor_objects if o.name == goal)
        z = self.sim.data.body_xpos[self.sim.model.body_name2id(obj.root_body)][2]
        return bool(z > self.model.mujoco_arena.table_offset[2] + LIFT_MARGIN)

    return _check_success


def _controller_config(control: str, kp: float) -> dict:
    """A robosuite 1.5 BASIC composite config with one absolute-input arm controller and the Panda gripper."""
    common = {"kp": kp, "damping_ratio": 1, "impedance_mode": "fixed", "kp_limits": [0, 300],
              "damping_ratio_limits": [0, 10], "interpolation": None, "ramp_ratio": 0.2, "input_type": "absolute",
              "gripper": {"type": "GRIP"}}
    if control == "ee_target":
        arm = {"type": "OSC_POSE", "input_max": 1, "input_min": -1, "output_max": [0.05] * 3 + [0.5] * 3,
               "output_min": [-0.05] * 3 + [-0.5] * 3, "position_limits": None, "orientation_limits": None,
               "uncouple_pos_ori": True, "input_ref_frame": "world", **common}
    else:
        arm = {"type": "JOINT_POSITION", "input_max": 1, "input_min": -1, "output_max": 0.05, "output_min": -0.05,
               "qpos_limits": None, **common}
    return {"type": "BASIC", "body_parts": {"right": arm}}


# -- the driver ---------------------------------------------------------------------------------------------------
class RobosuiteDriver(RobotDriver):
    """Panda on a robosuite task; see the module docstring for actions, speed, replay and perturbations."""

    name = "robosuite"
    config_class = RobosuiteConfig
    config: RobosuiteConfig

    def __init__(self, config: RobosuiteConfig | None = None) -> None:
        super().__init__(config)
        if not self.config.instruction:
            self._instruction = DEFAULT_INSTRUCTIONS[self.config.task]
        self.env = None
        self._rng = np.random.default_rng([self.config.seed, 1])  # random distractor spots
        self._renderer = None
        self._gripper_cmd = -1.0
        self._last_command: np.ndarray | None = None
        self._request: np.ndarray | None = None
        self._last_reward = 0.0
        self.last_info: dict[str, Any] = {}
        self._model_perturbations: list[Perturbation] = []
        self._goal_cache: tuple[str | None, str | None] = (None, None)

    # -- description (no connection needed) ---------------------------------------------------------------------
    @property
    def observation_features(self) -> dict[str, Feature]:
        feats = {"observation.state": vector(state_names()),
                 "observation.environment_state": vector(environment_state_names(self.config.task,
                                                                                  self.config.distractors))}
        for cam in self.config.cameras:
            feats[f"observation.images.{cam}"] = image(self.config.camera_size, self.config.camera_size)
        return feats

    @property
    def action_features(self) -> dict[str, Feature]:
        return {"action": vector(action_names(self.config.control))}

    @property
    def safety_limits(self) -> SafetyLimits:
        c = self.config
        names = tuple(action_names(c.control))
        if c.control == "ee_target":
            two_pi = 2 * np.pi
            return SafetyLimits(
                names, lower=(*c.workspace_low, -two_pi, -two_pi, -two_pi, -1.0),
                upper=(*c.workspace_high, two_pi, two_pi, two_pi, 1.0),
                max_step=(c.max_step_pos,) * 3 + (c.max_step_rot,) * 3 + (2.0,), dt=1.0 / c.control_freq,
                workspace_low=c.workspace_low, workspace_high=c.workspace_high)
        return SafetyLimits(names, lower=(*PANDA_JOINT_LOWER, -1.0), upper=(*PANDA_JOINT_UPPER, 1.0),
                            max_step=(c.max_step_joint,) * 7 + (2.0,), dt=1.0 / c.control_freq)

    @property
    def model_perturbations(self) -> list[Perturbation]:
        """Model-level perturbations (colour, lighting, camera) applied since the last reset, in order."""
        return list(self._model_perturbations)

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def _connect(self) -> None:
        os.environ.setdefault("MUJOCO_GL", "egl")
        from robot_irl.drivers.mujoco_arm import import_mujoco

        self._mj = import_mujoco()
        _import_robosuite(self.config.quiet)
        c = self.config
        env_cls = _env_class(c.task, c.distractors)
        self.env = env_cls(
            robots="Panda", controller_configs=_controller_config(c.control, c.kp), has_renderer=False,
            has_offscreen_renderer=False, use_camera_obs=False, use_object_obs=True, control_freq=c.control_freq,
            hard_reset=False, ignore_done=True, reward_shaping=c.reward_shaping, seed=c.seed,
            initialization_noise={"magnitude": c.initialization_noise, "type": "gaussian"})
        for observable in self.env._observables.values():  # sampled every physics substep; we read MjData directly
            observable.set_enabled(False)
        self.model, self.data = self.env.sim.model._model, self.env.sim.data._data
        self._index_model()
        self._snapshot_model()
        if c.cameras:
            self._make_renderer()
        self._reset(None)

    def _disconnect(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        if self.env is not None:
            self.env.close()
        self.env = None

    def _index_model(self) -> None:
        """Addresses of everything read or written per step, looked up once."""
        mj, m, env = self._mj, self.model, self.env
        robot = env.robots[0]
        jid = [mj.mj_name2id(m, mj.mjtObj.mjOBJ_JOINT, n) for n in robot.robot_joints]
        gid = [mj.mj_name2id(m, mj.mjtObj.mjOBJ_JOINT, n) for n in robot.gripper_joints["right"]]
        self._arm_q = np.array([m.jnt_qposadr[j] for j in jid])
        self._arm_v = np.array([m.jnt_dofadr[j] for j in jid])
        self._finger_q = np.array([m.jnt_qposadr[j] for j in gid])
        controller = robot.part_controllers["right"]
        self._eef_site = mj.mj_name2id(m, mj.mjtObj.mjOBJ_SITE, controller.ref_name)
        self._gripper_model = robot.gripper["right"]
        self._objects = {name: getattr(env, name) for name in TASK_OBJECTS[self.config.task]}
        self._distractors = {obj.name: obj for obj in getattr(env, "distractor_objects", [])}
        self._free = {}  # name -> (qpos adr, dof adr) for every free object
        for name, obj in {**self._objects, **self._distractors}.items():
            self._free[name] = self._joint_addresses(obj.joints[0])
        self._parking = {name: np.array(m.qpos0[q:q + 3]) for name, (q, _) in self._free.items()
                         if name in self._distractors}
        self._color_geoms = {name: self._visual_geoms(obj.root_body) for name, obj in
                             {**self._objects, **self._distractors}.items()}
        self._color_geoms["table"] = self._visual_geoms("table")
        if self.config.task == "door":
            self._color_geoms["door"] = self._visual_geoms(env.door.root_body)
            self._door_body = env.object_body_ids["door"]
            self._handle_site = mj.mj_name2id(m, mj.mjtObj.mjOBJ_SITE, env.door.important_sites["handle"])
        self._lights = {mj.mj_id2name(m, mj.mjtObj.mjOBJ_LIGHT, i) or f"light{i}": i for i in range(m.nlight)}
        self._cameras = {mj.mj_id2name(m, mj.mjtObj.mjOBJ_CAMERA, i): i for i in range(m.ncam)}
        self._cameras.update({alias: self._cameras[name] for alias, name in CAMERAS.items()})
        offset = np.asarray(getattr(env, "table_offset", (0.0, 0.0, 0.8)), dtype=np.float64)
        self._table_top = offset

    @property
    def _arm_controller(self):
        """robosuite rebuilds its controllers at every reset: always look the current one up."""
        return self.env.robots[0].part_controllers["right"]

    def _joint_addresses(self, joint_name: str) -> tuple[int, int]:
        from robot_irl.drivers.mujoco_arm import free_joint_addresses

        return free_joint_addresses(self.model, joint_name)

    def _visual_geoms(self, root_body: str) -> np.ndarray:
        """Geoms in the subtree of ``root_body`` that are drawn (robosuite puts visuals in group 1)."""
        mj, m = self._mj, self.model
        root = mj.mj_name2id(m, mj.mjtObj.mjOBJ_BODY, root_body)
        if root < 0:
            raise ValueError(f"{self.name}: no body {root_body!r} in the model")
        in_tree = []
        for g in range(m.ngeom):
            b = int(m.geom_bodyid[g])
            while b not in (root, 0):
                b = int(m.body_parentid[b])
            if b == root:
                in_tree.append(g)
        visual = [g for g in in_tree if m.geom_group[g] == 1]
        return np.array(visual or in_tree, dtype=int)

    _MODEL_FIELDS = ("geom_rgba", "geom_matid", "light_diffuse", "light_ambient", "light_dir", "light_pos",
                     "cam_pos", "cam_quat")

    def _snapshot_model(self) -> None:
        self._model_original = {f: getattr(self.model, f).copy() for f in self._MODEL_FIELDS}

    def _restore_model(self) -> None:
        for field, value in self._model_original.items():
            getattr(self.model, field)[:] = value
        self._model_perturbations.clear()

    def _make_renderer(self) -> None:
        mj, m = self._mj, self.model
        m.vis.quality.offsamples = 0  # no MSAA: 2x faster in software GL at this size
        size = self.config.camera_size
        m.vis.global_.offwidth = max(m.vis.global_.offwidth, size)
        m.vis.global_.offheight = max(m.vis.global_.offheight, size)
        try:
            self._renderer = mj.Renderer(m, size, size)
        except Exception as e:  # GL setup fails with many exception types
            raise RuntimeError(
                f"{self.name}: cannot create an offscreen renderer for cameras {list(self.config.cameras)} ({e}). "
                "Headless machines need MUJOCO_GL=egl set before anything imports mujoco.") from e
        for flag in (mj.mjtRndFlag.mjRND_REFLECTION, mj.mjtRndFlag.mjRND_SHADOW, mj.mjtRndFlag.mjRND_SKYBOX):
            self._renderer.scene.flags[flag] = 0
        self._scene_option = mj.MjvOption()
        self._scene_option.geomgroup[0] = 0  # collision geoms: robosuite draws only group 1 (visual)

    def _reset(self, seed: int | None) -> dict[str, np.ndarray]:
        self._instruction = self.config.instruction or DEFAULT_INSTRUCTIONS[self.config.task]
        if seed is not None:
            # reseed in place: robosuite's placement sampler and robot init noise hold references to env.rng
            self.env.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
            self._rng = np.random.default_rng([seed, 1])
        self._restore_model()
        self.env.reset()
        self._refresh_controllers()
        self._gripper_cmd = -1.0
        self._last_command = None
        self._last_reward = 0.0
        self.last_info = {}
        return self._get_observation()

    # -- the loop -------------------------------------------------------------------------------------------------
    def send_action(self, action) -> np.ndarray:
        """As the base class; also remembers the request so the orientation reference can match its form."""
        self._request = action
        try:
            return super().send_action(action)
        finally:
            self._request = None

    def _apply_action(self, action: np.ndarray) -> None:
        # apply exactly the float32 values send_action returns (and recorders store): replays are then bit-exact
        action = action.astype(np.float32).astype(np.float64)
        self.env.robot_irl_goal = self.goal_object  # robosuite's reward checks success inside step()
        _, reward, _, info = self.env.step(action)
        self._gripper_cmd = float(action[-1])
        self._last_command = action.copy()
        self._last_reward = float(reward)
        self.last_info = {**info, "reward": self._last_reward, "success": self.is_success()}

    def _get_observation(self) -> dict[str, np.ndarray]:
        d = self.data
        quat = np.empty(4)
        self._mj.mju_mat2Quat(quat, d.site_xmat[self._eef_site])
        state = np.concatenate([d.qpos[self._arm_q], d.qvel[self._arm_v], d.site_xpos[self._eef_site], quat,
                                d.qpos[self._finger_q]])
        obs = {"observation.state": state.astype(np.float32),
               "observation.environment_state": self._environment_state().astype(np.float32)}
        for cam in self.config.cameras:
            obs[f"observation.images.{cam}"] = self._render(CAMERAS[cam])
        return obs

    def _environment_state(self) -> np.ndarray:
        d = self.data
        poses = [d.qpos[q:q + 7] for q, _ in self._free.values()]  # task objects, then distractors
        if self.config.task == "door":
            env = self.env
            joints = [d.qpos[env.hinge_qpos_addr], d.qpos[env.handle_qpos_addr]]
            return np.concatenate([d.xpos[self._door_body], d.site_xpos[self._handle_site], joints, *poses])
        return np.concatenate(poses)

    def _render(self, camera: str) -> np.ndarray:
        """One camera frame, (H, W, 3) uint8, top row first (mujoco.Renderer already flips OpenGL's rows)."""
        self._renderer.update_scene(self.data, camera=camera, scene_option=self._scene_option)
        return self._renderer.render()

    def _safety_reference(self) -> np.ndarray:
        d = self.data
        if self.config.control == "joint_position":
            return np.concatenate([d.qpos[self._arm_q], [self._gripper_cmd]])
        quat = np.empty(4)
        self._mj.mju_mat2Quat(quat, d.site_xmat[self._eef_site])
        rotvec = rotvec_near(quat_to_rotvec(quat), self._orientation_hint())
        return np.concatenate([d.site_xpos[self._eef_site], rotvec, [self._gripper_cmd]])

    def _orientation_hint(self) -> np.ndarray | None:
        """The orientation part of the action being sent, else of the last one sent (None at episode start)."""
        for source in (self._request, self._last_command):
            if source is None:
                continue
            try:
                a = np.asarray(source, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                continue
            if a.shape == (7,) and np.all(np.isfinite(a[3:6])):
                return a[3:6]
        return None

    # -- task outcome ---------------------------------------------------------------------------------------------
    @property
    def goal_object(self) -> str | None:
        """The object the current instruction asks to lift (Lift only; None for other tasks)."""
        if self.config.task not in LANGUAGE_TASKS:
            return None
        text = self._instruction
        if self._goal_cache[0] != text:
            self._goal_cache = (text, goal_object(self.config.task, text,
                                                  language_objects(self.config.task, self.config.distractors)))
        return self._goal_cache[1]

    def is_success(self) -> bool:
        """robosuite's success test; for Lift, applied to the object the instruction names."""
        self._require_connected("is_success")
        self.env.robot_irl_goal = self.goal_object
        return bool(self.env._check_success())

    def reward(self) -> float:
        """robosuite's reward for the last step (0 right after reset)."""
        return self._last_reward

    def task_status(self) -> dict[str, float | bool]:
        if self.env is None:
            return {}
        return {"reward": self._last_reward, "success": self.is_success()}

    # -- full state -----------------------------------------------------------------------------------------------
    def get_state(self) -> np.ndarray:
        """``[step_count, gripper command, gripper ramp (2), nullspace target (7), MuJoCo integration state]``."""
        self._require_connected("get_state")
        from robot_irl.drivers.mujoco_arm import physics_state

        # PandaGripper keeps a ramped command per finger (1 value after reset, 2 once stepped): store 2 always
        ramp = np.broadcast_to(self._gripper_model.current_action, (len(self._finger_q),))
        # the arm controller's nullspace target: the (noisy) start pose of this episode
        nullspace = self._arm_controller.initial_joint
        return np.concatenate([[float(self._steps), self._gripper_cmd], ramp, nullspace,
                               physics_state(self.model, self.data)])

    def set_state(self, state: np.ndarray) -> None:
        self._require_connected("set_state")
        from robot_irl.drivers.mujoco_arm import restore_physics_state

        state = np.asarray(state, dtype=np.float64)
        fingers, joints = len(self._finger_q), len(self._arm_q)
        head = 2 + fingers + joints
        if state.ndim != 1 or state.size <= head:
            raise ValueError(f"{self.name}.set_state: expected a 1-D state vector longer than {head}, "
                             f"got shape {state.shape}")
        restore_physics_state(self.model, self.data, state[head:], f"{self.name}.set_state")
        self._steps = int(state[0])
        self._gripper_cmd = float(state[1])
        self._gripper_model.current_action = state[2:2 + fingers].copy()
        self._arm_controller.initial_joint = state[2 + fingers:head].copy()
        self._last_command = None
        self._refresh_controllers()

    def _refresh_controllers(self) -> None:
        """Make robosuite's controllers re-read the robot state now.

        They cache joint positions, Jacobians and the mass matrix between updates; after the state is overwritten
        the first control substep would otherwise use the cached values of the previous state.
        """
        for controller in self.env.robots[0].part_controllers.values():
            controller.update(force=True)

    # -- perturbations --------------------------------------------------------------------------------------------
    def perturbation_targets(self) -> dict[PerturbationKind, list[str]]:
        targets = super().perturbation_targets()
        if self.env is None:
            return targets
        movable = list(self._free)
        K = PerturbationKind
        targets.update({K.MOVE_OBJECT: movable, K.PUSH: movable, K.COLOR: list(self._color_geoms),
                        K.LIGHTING: [*self._lights, "all"], K.CAMERA: list(self._cameras)})
        if self._distractors:
            targets[K.DISTRACTOR_ADD] = list(self._distractors)
            targets[K.DISTRACTOR_REMOVE] = list(self._distractors)
        return targets

    def perturbation_bounds(self) -> PerturbationBounds:
        """Objects go on the table (its top, 0.5 m up); cameras and lights keep the defaults."""
        half = np.asarray(getattr(self.env, "table_full_size", (0.8, 0.8, 0.05)), dtype=np.float64)[:2] / 2 \
            if self.env is not None else np.array([0.4, 0.4])
        top = self._table_top if self.env is not None else np.array([0.0, 0.0, 0.8])
        low = (top[0] - half[0], top[1] - half[1], top[2])
        high = (top[0] + half[0], top[1] + half[1], top[2] + 0.5)
        return PerturbationBounds(workspace_low=tuple(map(float, low)), workspace_high=tuple(map(float, high)))

    def _simulation_problem(self) -> str | None:
        from robot_irl.drivers.mujoco_arm import simulation_problem

        return simulation_problem(self.model, self.data, round(SIM_RATE_HZ / self.config.control_freq))

    def perturb(self, request: Perturbation) -> Perturbation:
        """As the base class; a Lift instruction must name an object of the scene (else PerturbationError)."""
        if request.kind is PerturbationKind.INSTRUCTION and self.config.task in LANGUAGE_TASKS:
            try:
                goal_object(self.config.task, request.params.get("text", ""),
                            language_objects(self.config.task, self.config.distractors))
            except InstructionError as e:
                raise PerturbationError(f"{self.name}: {e}") from None
        return super().perturb(request)

    @property
    def instruction(self) -> str:
        return self._instruction

    @instruction.setter
    def instruction(self, text: str) -> None:
        """Set the instruction; for Lift it must name an object of the scene (else InstructionError)."""
        text = str(text)
        if self.config.task in LANGUAGE_TASKS:
            goal_object(self.config.task, text, language_objects(self.config.task, self.config.distractors))
        self._instruction = text

    def _perturb(self, request: Perturbation) -> dict[str, Any]:
        handlers = {
            PerturbationKind.MOVE_OBJECT: self._move_object,
            PerturbationKind.PUSH: self._push,
            PerturbationKind.COLOR: self._color,
            PerturbationKind.LIGHTING: self._lighting,
            PerturbationKind.CAMERA: self._camera,
            PerturbationKind.DISTRACTOR_ADD: self._distractor_add,
            PerturbationKind.DISTRACTOR_REMOVE: self._distractor_remove,
        }
        if request.kind not in handlers:
            raise PerturbationError(f"{self.name} does not implement {request.kind.value}")
        applied = handlers[request.kind](request.target, request.params)
        if request.kind in (PerturbationKind.COLOR, PerturbationKind.LIGHTING, PerturbationKind.CAMERA):
            self._model_perturbations.append(request)
        self._mj.mj_forward(self.model, self.data)
        return applied

    def _move_object(self, target: str, params: dict) -> dict:
        from robot_irl.drivers.mujoco_arm import set_free_joint_pose

        qadr, dadr = self._free[target]
        return set_free_joint_pose(self.data.qpos, self.data.qvel, qadr, dadr, params)

    def _push(self, target: str, params: dict) -> dict:
        from robot_irl.drivers.mujoco_arm import set_free_joint_velocity

        return set_free_joint_velocity(self.data.qvel, self._free[target][1], params["velocity"])

    def _color(self, target: str, params: dict) -> dict:
        geoms = self._color_geoms[target]
        self.model.geom_rgba[geoms] = params["rgba"]
        self.model.geom_matid[geoms] = -1  # a material (texture) would otherwise tint or hide the new colour
        return {"geoms": len(geoms)}

    def _lighting(self, target: str, params: dict) -> dict:
        m = self.model
        ids = list(self._lights.values()) if target == "all" else [self._lights[target]]
        if "direction" in params:
            direction = np.asarray(params["direction"], dtype=np.float64)
            norm = np.linalg.norm(direction)
            if norm < 1e-9:
                raise PerturbationError(f"lighting.direction {params['direction']} has zero length")
            m.light_dir[ids] = direction / norm
        for key, field in (("diffuse", "light_diffuse"), ("ambient", "light_ambient"), ("position", "light_pos")):
            if key in params:
                getattr(m, field)[ids] = params[key]
        first = ids[0]
        return {"lights": [n for n, i in self._lights.items() if i in ids],
                "diffuse": m.light_diffuse[first].tolist(), "ambient": m.light_ambient[first].tolist(),
                "direction": m.light_dir[first].tolist()}

    def _camera(self, target: str, params: dict) -> dict:
        """Place the camera at its original pose plus ``offset``, turned by ``yaw`` (about the parent's z axis)
        and ``pitch`` (about its own x axis). Each request starts from the original pose: shifts don't add up."""
        cid = self._cameras[target]
        pos = self._model_original["cam_pos"][cid] + np.asarray(params.get("offset", (0.0, 0.0, 0.0)))
        quat = self._model_original["cam_quat"][cid].astype(np.float64)
        if "yaw" in params:
            quat = quat_mul(rotvec_to_quat([0.0, 0.0, params["yaw"]]), quat)
        if "pitch" in params:
            quat = quat_mul(quat, rotvec_to_quat([params["pitch"], 0.0, 0.0]))
        self.model.cam_pos[cid] = pos
        self.model.cam_quat[cid] = quat / np.linalg.norm(quat)
        return {"camera_pos": self.model.cam_pos[cid].tolist(), "camera_quat": self.model.cam_quat[cid].tolist()}

    def _distractor_add(self, target: str, params: dict) -> dict:
        position = params.get("position")
        if position is None:
            position = self._free_table_spot()
        return self._move_object(target, {"position": position, "yaw": float(self._rng.uniform(-np.pi, np.pi))})

    def _distractor_remove(self, target: str, params: dict) -> dict:
        return self._move_object(target, {"position": self._parking[target], "quat": [1.0, 0.0, 0.0, 0.0]})

    def _free_table_spot(self) -> list[float]:
        """A random spot on the table within the gripper's reach (``DISTRACTOR_AREA``), at least 8 cm from every
        object on it (best of 20 tries)."""
        d = self.data
        on_table = [n for n, (q, _) in self._free.items()
                    if n in self._objects or d.qpos[q + 2] > self._table_top[2] - 0.1]
        taken = [d.qpos[self._free[n][0]:self._free[n][0] + 2] for n in on_table]
        if self.config.task == "door":
            taken.append(d.site_xpos[self._handle_site][:2])
        best, best_gap = None, -1.0
        for _ in range(20):
            xy = self._table_top[:2] + self._rng.uniform(*DISTRACTOR_AREA)
            gap = min((np.linalg.norm(xy - t) for t in taken), default=np.inf)
            if gap > best_gap:
                best, best_gap = xy, gap
            if gap >= 0.08:
                break
        return [float(best[0]), float(best[1]), float(self._table_top[2] + 0.03)]
