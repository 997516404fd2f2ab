"""The Go1 MuJoCo model: building it (flat or rough ground, default or ``sim2sim`` robot), indexing it, and writing
randomized dynamics into it.

:func:`build_model` loads ``sim/go1.xml`` through ``mujoco.MjSpec``, applies the model variant (:data:`VARIANTS`)
and, for rough ground, adds a heightfield filled by :mod:`robot_irl.legged.terrain`. :class:`Go1Layout` holds every
address the env and the driver read (joint qpos/dof addresses, sensor slices, the trunk) and the nominal values
:func:`apply_dynamics` starts from, so a randomized parameter vector (:mod:`robot_irl.legged.randomization`) can be
written into any model copy at reset in a few array writes.

The ``sim2sim`` variant is the stand-in for the real robot in the sim-to-sim check: a differently tuned Go1 built
from the same XML (other servo gains, more rotor inertia, joint damping, a heavier trunk, lower friction and a
fixed action delay). :func:`variant_differences` lists what differs, for the experiment to print.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robot_irl.legged import randomization as dr
from robot_irl.legged.observations import GO1_DEFAULT_POSE, GO1_JOINT_NAMES
from robot_irl.legged.terrain import TerrainConfig, generate_heights

MODEL_FILE = "go1.xml"
JOINT_NAMES = GO1_JOINT_NAMES
DEFAULT_POSE = np.array(GO1_DEFAULT_POSE)
LEGS = ("FR", "FL", "RR", "RL")
FEET = tuple(f"{leg}_foot" for leg in LEGS)
#: standing height of the trunk at the home keyframe (m above the ground)
HOME_HEIGHT = 0.29
PHYSICS_DT = dr.PHYSICS_DT


@dataclass(frozen=True)
class ModelVariant:
    """A tuning of the robot. Gains and damping apply to all 12 joints."""

    name: str
    kp: float = 35.0  # servo stiffness, N m / rad
    kd: float = 0.5  # servo damping (actuator kv), N m s / rad
    armature: float = 0.01  # reflected rotor inertia, kg m^2
    joint_damping: float = 0.0  # passive joint damping, N m s / rad
    trunk_mass_add: float = 0.0  # kg added to the trunk (at its centre of mass)
    friction: float = 0.8  # ground/foot sliding friction
    action_delay_ms: float = 0.0  # fixed delay between action and servo (whole physics steps)
    description: str = ""

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("name", "kp", "kd", "armature", "joint_damping", "trunk_mass_add",
                                              "friction", "action_delay_ms", "description")}


VARIANTS: dict[str, ModelVariant] = {
    "default": ModelVariant("default", description="Go1 as in sim/go1.xml (MuJoCo Playground's gains)"),
    "sim2sim": ModelVariant("sim2sim", kp=28.0, kd=0.8, armature=0.02, joint_damping=0.1, trunk_mass_add=1.0,
                            friction=0.6, action_delay_ms=20.0,
                            description="a differently tuned Go1, the stand-in for the real robot"),
}


def get_variant(name: str) -> ModelVariant:
    if name not in VARIANTS:
        raise ValueError(f"unknown model_variant {name!r}; known variants: {sorted(VARIANTS)}")
    return VARIANTS[name]


def variant_differences(name: str = "sim2sim", reference: str = "default") -> dict[str, dict[str, float]]:
    """``{parameter: {reference: value, name: value}}`` for every parameter where the two variants differ."""
    a, b = get_variant(reference).to_dict(), get_variant(name).to_dict()
    return {k: {reference: a[k], name: b[k]} for k in a if k not in ("name", "description") and a[k] != b[k]}


def import_mujoco():
    from robot_irl.drivers.mujoco_arm import import_mujoco as _import

    return _import()


def model_path() -> Path:
    from robot_irl.paths import asset

    return asset("sim", MODEL_FILE)


@dataclass
class BuiltModel:
    """A compiled model with what built it (the heightfield is ``None`` on flat ground)."""

    model: object  # mujoco.MjModel
    variant: ModelVariant
    terrain: str
    heights: np.ndarray | None = None
    terrain_config: TerrainConfig | None = None
    layout: Go1Layout = field(init=False)

    def __post_init__(self) -> None:
        self.layout = Go1Layout(self.model, self)

    def ground_height(self, x, y) -> np.ndarray:
        """Ground height (m) under world points (0 on flat ground)."""
        if self.heights is None:
            return np.zeros(np.broadcast(np.asarray(x), np.asarray(y)).shape)
        from robot_irl.legged.terrain import height_at

        return height_at(self.heights, self.terrain_config.size_m, x, y)

    def spawn_height(self, x, y) -> np.ndarray:
        """Trunk height for a home-pose spawn at ``(x, y)``: the highest ground under the robot + home height."""
        if self.heights is None:
            return np.full(np.broadcast(np.asarray(x), np.asarray(y)).shape, HOME_HEIGHT)
        from robot_irl.legged.terrain import max_height_in

        return max_height_in(self.heights, self.terrain_config.size_m, x, y, 0.3) + HOME_HEIGHT + 0.01


def build_model(terrain: str = "flat", variant: str = "default", terrain_seed: int = 0,
                terrain_config: TerrainConfig | None = None) -> BuiltModel:
    """Compile the Go1 on ``terrain`` (``flat`` | ``rough``) as model ``variant`` (see :data:`VARIANTS`)."""
    mj = import_mujoco()
    v = get_variant(variant)
    if terrain not in ("flat", "rough"):
        raise ValueError(f"unknown terrain {terrain!r}; known: ['flat', 'rough']")
    spec = mj.MjSpec.from_file(str(model_path()))
    for joint in spec.joints:
        if joint.type != mj.mjtJoint.mjJNT_FREE:
            joint.armature = v.armature
            joint.damping = [v.joint_damping, 0.0, 0.0]  # (linear, higher-order terms) in mujoco 3.9
    for act in spec.actuators:
        act.gainprm[0] = v.kp
        act.biasprm[1] = -v.kp
        act.biasprm[2] = -v.kd
    trunk = spec.body("trunk")
    trunk.mass = trunk.mass + v.trunk_mass_add
    trunk.inertia = np.asarray(trunk.inertia) * (trunk.mass / (trunk.mass - v.trunk_mass_add))
    for geom in spec.geoms:
        geom.friction = [v.friction, geom.friction[1], geom.friction[2]]
    heights = None
    tc = None
    if terrain == "rough":
        tc = terrain_config or TerrainConfig()
        heights = generate_heights(tc, terrain_seed)
        n = tc.cells
        hfield = spec.add_hfield(name="terrain", nrow=n, ncol=n,
                                 size=[tc.size_m / 2, tc.size_m / 2, tc.max_height_m, 0.05])
        hfield.userdata = (heights / tc.max_height_m).ravel().tolist()  # normalised elevation, row = y
        spec.worldbody.add_geom(name="terrain", type=mj.mjtGeom.mjGEOM_HFIELD, hfieldname="terrain",
                                contype=1, conaffinity=0, friction=[v.friction, 0.02, 0.01],
                                rgba=[0.45, 0.42, 0.38, 1.0])
    model = spec.compile()
    if heights is not None:  # the compiler rescales userdata to [0, 1]; write our own scale back
        hid = mj.mj_name2id(model, mj.mjtObj.mjOBJ_HFIELD, "terrain")
        adr = model.hfield_adr[hid]
        model.hfield_data[adr:adr + heights.size] = (heights / tc.max_height_m).astype(np.float32).ravel()
    return BuiltModel(model, v, terrain, heights, tc)


class Go1Layout:
    """Addresses into a Go1 model/data/state and the nominal values randomization starts from."""

    def __init__(self, model, built: BuiltModel | None = None) -> None:
        mj = import_mujoco()
        self.variant = built.variant if built is not None else get_variant("default")

        def jid(name: str) -> int:
            i = mj.mj_name2id(model, mj.mjtObj.mjOBJ_JOINT, name)
            if i < 0:
                raise ValueError(f"Go1 model has no joint {name!r}")
            return i

        joints = [jid(j) for j in JOINT_NAMES]
        acts = [mj.mj_name2id(model, mj.mjtObj.mjOBJ_ACTUATOR, j) for j in JOINT_NAMES]
        if acts != list(range(12)) or [int(model.actuator_trnid[a, 0]) for a in acts] != joints:
            raise ValueError("Go1 model: actuators must drive the 12 joints in JOINT_NAMES order")
        root = jid("root")
        self.root_qadr = int(model.jnt_qposadr[root])
        self.root_dadr = int(model.jnt_dofadr[root])
        self.joint_qadr = np.array([model.jnt_qposadr[j] for j in joints])
        self.joint_dadr = np.array([model.jnt_dofadr[j] for j in joints])
        self.joint_range = np.array([model.jnt_range[j] for j in joints])
        self.torque_limit = np.array([model.actuator_forcerange[a, 1] for a in acts])
        self.trunk = mj.mj_name2id(model, mj.mjtObj.mjOBJ_BODY, "trunk")
        self.nq, self.nv, self.nu = model.nq, model.nv, model.nu
        # full-physics state layout (what mujoco.rollout reads and writes): time, qpos, qvel, ...
        full = mj.mjtState.mjSTATE_FULLPHYSICS
        self.nstate = mj.mj_stateSize(model, full)
        self.state_qpos = slice(1, 1 + model.nq)
        self.state_qvel = slice(1 + model.nq, 1 + model.nq + model.nv)

        def sensor(name: str) -> slice:
            i = mj.mj_name2id(model, mj.mjtObj.mjOBJ_SENSOR, name)
            if i < 0:
                raise ValueError(f"Go1 model has no sensor {name!r}")
            a = int(model.sensor_adr[i])
            return slice(a, a + int(model.sensor_dim[i]))

        self.gyro, self.accelerometer = sensor("gyro"), sensor("accelerometer")
        self.orientation, self.local_linvel = sensor("orientation"), sensor("local_linvel")
        self.foot_contact = np.array([sensor(f"{leg}_foot_contact").start for leg in LEGS])
        self.trunk_contact = sensor("trunk_contact").start
        self.thigh_contact = np.array([sensor(f"{leg}_thigh_contact").start for leg in LEGS])
        self.calf_contact = np.array([sensor(f"{leg}_calf_contact").start for leg in LEGS])
        self.actuator_force = np.array([sensor(f"{j}_torque").start for j in JOINT_NAMES])
        # nominal values (the variant's), restored before each randomized write
        self.kp = model.actuator_gainprm[:12, 0].copy()
        self.kd = -model.actuator_biasprm[:12, 2].copy()
        self.friction = model.geom_friction[:, 0].copy()
        self.nominal_friction = float(self.variant.friction)
        self.trunk_mass = float(model.body_mass[self.trunk])
        self.trunk_ipos = model.body_ipos[self.trunk].copy()
        self.trunk_inertia = model.body_inertia[self.trunk].copy()
        self.intrinsic_delay_steps = int(dr.delay_steps(self.variant.action_delay_ms))
        self.home_qpos = np.concatenate([[0.0, 0.0, HOME_HEIGHT, 1.0, 0.0, 0.0, 0.0], DEFAULT_POSE])
        if self.joint_qadr.tolist() != list(range(7, 19)):
            raise ValueError("Go1 model: expected the free joint first, then the 12 leg joints")

    def joint_pos(self, qpos: np.ndarray) -> np.ndarray:
        return qpos[..., self.joint_qadr]

    def joint_vel(self, qvel: np.ndarray) -> np.ndarray:
        return qvel[..., self.joint_dadr]


def apply_dynamics(model, layout: Go1Layout, params) -> None:
    """Write one randomized parameter vector (raw, :data:`~robot_irl.legged.randomization.PRIVILEGED_NAMES` order)
    into ``model``: friction, trunk payload, servo gains/strength and joint offsets (delay is the stepper's)."""
    p = np.asarray(params, dtype=np.float64)
    i = dr.IDX
    model.geom_friction[:, 0] = p[i["friction"]]
    m0, dm = layout.trunk_mass, p[i["payload_mass"]]
    mass = max(m0 + dm, 0.1 * m0)
    pos = layout.trunk_ipos + np.array([p[i["payload_x"]], p[i["payload_y"]], p[i["payload_z"]]])
    model.body_mass[layout.trunk] = mass
    model.body_ipos[layout.trunk] = (m0 * layout.trunk_ipos + (mass - m0) * pos) / mass
    model.body_inertia[layout.trunk] = layout.trunk_inertia * (mass / m0)
    strength = p[i["motor_strength"]]
    kp = layout.kp * p[i["kp_scale"]] * strength
    kd = layout.kd * p[i["kd_scale"]] * strength
    offsets = p[dr.JOINT_OFFSETS]
    model.actuator_gainprm[:12, 0] = kp
    model.actuator_biasprm[:12, 0] = kp * offsets
    model.actuator_biasprm[:12, 1] = -kp
    model.actuator_biasprm[:12, 2] = -kd


def delay_steps_of(layout: Go1Layout, params) -> np.ndarray:
    """Total action delay in physics steps: the variant's own plus the randomized extra."""
    p = np.atleast_2d(np.asarray(params))
    return layout.intrinsic_delay_steps + dr.delay_steps(p[:, dr.IDX["action_delay_ms"]])


def history_length(max_delay_steps: int, substeps: int) -> int:
    """Policy steps of targets to keep so that a delay of ``max_delay_steps`` physics steps can be served."""
    return 1 + -(-int(max_delay_steps) // int(substeps))


def substep_controls(history: np.ndarray, delay: np.ndarray, substeps: int) -> np.ndarray:
    """Servo targets for each physics substep of one policy step, with per-env action delay.

    ``history`` (N, H, 12): the targets of the last H policy steps, ``history[:, -1]`` the one just issued;
    ``delay`` (N,) physics steps. Substep ``s`` applies the target issued ``delay`` physics steps before it, i.e.
    ``history[:, H - 1 + floor((s - delay) / substeps)]``. Returns (N, substeps, 12).
    """
    n, h, _ = history.shape
    s = np.arange(substeps)
    idx = h - 1 + np.floor_divide(s[None, :] - np.asarray(delay)[:, None], substeps)
    if idx.min() < 0:
        raise ValueError(f"action delay {int(np.max(delay))} physics steps needs a longer target history than {h}")
    return history[np.arange(n)[:, None], idx]
