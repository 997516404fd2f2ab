"""The ROS 2 graphs robot_irl brings up, each defined once, as plain data.

A graph is a list of :class:`NodeSpec` (which executable, its name, namespace, parameters, remappings). The same
:class:`GraphSpec` is turned into ``launch_ros`` Nodes by ``launch/bringup.launch.py`` (``ros2 launch robot_irl
bringup.launch.py driver:=hardware``) and into plain processes by :mod:`robot_irl.launcher` (``robot-irl up
bringup --driver hardware``), so the two cannot drift apart. Nothing here imports rclpy.

Graphs (registry :data:`GRAPHS`):

- ``bringup``: the driver node in ``/robot_irl``; ``driver="sim"`` runs a simulator (backend robosuite, mujoco_arm
  or mock), ``driver="hardware"`` runs the ros2_control bridge against the robot's ``/joint_states`` and
  ``/forward_position_controller/commands``. ``emulate=True`` (hardware only) also starts ``robot_emulator``, a
  simulated robot playing the ros2_control side, so the hardware path runs without a robot.
- ``sim``: ``bringup`` with ``driver="sim"``.

The convenience arguments map onto the driver's config: ``task`` -> ``task``, ``cameras`` -> ``cameras`` (sim) or
``camera_topics`` (hardware: ``/camera/<name>/image_raw``), ``rate`` -> ``control_freq``. One that the chosen
backend's config does not have is left out and reported in :attr:`GraphSpec.notes` (``robot-irl up`` prints
them), because the command line passes defaults such as ``task=lift`` to every graph. Every argument may also be
a launch-argument string (``"true"``, ``"20"``, ``"agentview,wrist"``, ``""`` for unset).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robot_irl.core.config import ConfigError
from robot_irl.core.registry import Registry
from robot_irl.core.safety import COMMAND_TIMEOUT_MS

DEFAULT_NAMESPACE = "robot_irl"
DEFAULT_EMULATOR_BACKEND = "mujoco_arm"


class GraphError(ConfigError):
    """Graph arguments that do not make a valid graph (unknown driver, emulate with a simulator, ...)."""


@dataclass
class NodeSpec:
    """One node of a graph, as ``launch_ros.actions.Node`` would take it."""

    name: str
    executable: str
    package: str = "robot_irl"
    namespace: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: list[tuple[str, str]] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        """The node's fully qualified name, e.g. ``/robot_irl/driver_node``."""
        ns = self.namespace.strip("/")
        return f"/{ns}/{self.name}" if ns else f"/{self.name}"


@dataclass
class GraphSpec:
    name: str
    nodes: list[NodeSpec]
    description: str = ""
    notes: list[str] = field(default_factory=list)

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"graph {self.name!r} has no node {name!r}; nodes: {[n.name for n in self.nodes]}")


# -- argument parsing (launch arguments arrive as strings) ----------------------------------------------------

def _opt_str(value: Any) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _as_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise GraphError(f"{what}: expected true/false, got {value!r}")


def _as_port(value: Any) -> int | None:
    """A TCP port: 0 picks a free one (the console node logs its URL)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise GraphError(f"console_port: expected an integer, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise GraphError(f"console_port: must be in [0, 65535], got {value!r}")
    return port


def _as_float(value: Any, what: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise GraphError(f"{what}: expected a number, got {value!r}") from None
    if not out > 0:
        raise GraphError(f"{what}: must be > 0, got {value!r}")
    return out


def _as_count(value: Any, what: str) -> int:
    """A whole number >= 0 (launch arguments arrive as strings)."""
    try:
        out = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise GraphError(f"{what}: expected a whole number, got {value!r}") from None
    if out < 0:
        raise GraphError(f"{what}: must be >= 0, got {value!r}")
    return out


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    items = value.replace(",", " ").split() if isinstance(value, str) else [str(v) for v in value]
    return items or None


def load_mapping(value: Any, what: str = "driver_config") -> dict[str, Any]:
    """A mapping given inline (dict, YAML/JSON text) or as a path to a YAML/JSON file; empty -> ``{}``."""
    import yaml

    if value is None or isinstance(value, dict):
        return dict(value or {})
    text = str(value).strip()
    if not text:
        return {}
    is_path = text.endswith((".yaml", ".yml", ".json")) and "\n" not in text and "{" not in text
    try:
        data = yaml.safe_load(_find_file(text, what).read_text() if is_path else text)
    except yaml.YAMLError as e:
        raise GraphError(f"{what}: not valid YAML/JSON ({e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GraphError(f"{what}: expected a mapping, got {type(data).__name__}: {text[:80]!r}")
    return data


def _find_file(text: str, what: str) -> Path:
    """A path as given, else relative to the package's data folder (``config/x.yaml`` works from anywhere)."""
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if not path.is_absolute():
        from robot_irl.paths import share_dir

        try:
            candidate = share_dir() / path
        except FileNotFoundError:
            candidate = None
        if candidate is not None and candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{what}: file {text} does not exist")


# -- driver configs -------------------------------------------------------------------------------------------

def _config_fields(backend: str) -> set[str] | None:
    """The backend's config field names, or None when its module cannot be imported here."""
    from robot_irl.drivers import DRIVERS

    try:
        cls = DRIVERS.get(backend)
    except ImportError:
        return None
    return {f.name for f in dataclasses.fields(cls.config_class)}


def _driver_config(backend: str, base: dict[str, Any], extras: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """``base`` plus the convenience ``extras`` the backend's config accepts (others go to ``notes``)."""
    fields = _config_fields(backend)
    config = dict(base)
    for key, value in extras.items():
        if value is None:
            continue
        if fields is not None and key not in fields:
            notes.append(f"{key}={value!r} does not apply to the {backend} driver and was left out")
            continue
        if key in config and config[key] != value:  # an explicit driver_config entry wins
            notes.append(f"{key}={value!r} was overridden by driver_config ({config[key]!r})")
        config.setdefault(key, value)
    if fields is not None:
        from robot_irl.drivers import DRIVERS

        DRIVERS.get(backend).config_class.from_dict(config, where=f"{backend} driver config")  # fail early
    return config


# -- graphs -------------------------------------------------------------------------------------------------

def bringup(driver: str = "sim", backend: str | None = None, task: str | None = None,
            cameras: Any = None, rate: Any = None, emulate: Any = False,
            emulator_backend: str | None = None, driver_config: Any = None,
            namespace: str = DEFAULT_NAMESPACE, start_armed: Any = None,
            command_timeout_ms: Any = COMMAND_TIMEOUT_MS) -> GraphSpec:
    """The driver node over a simulator or a ros2_control robot (plus the emulator with ``emulate``)."""
    from robot_irl.drivers import FAMILIES, resolve_backend

    driver = _opt_str(driver) or "sim"
    try:
        backend = resolve_backend(driver, _opt_str(backend))
    except ValueError as e:
        raise GraphError(str(e)) from None
    hardware = backend in FAMILIES["hardware"]
    emulate = _as_bool(emulate, "emulate")
    if emulate and not hardware:
        raise GraphError(f"emulate=true starts a robot emulator for driver=hardware; driver={driver!r} is a simulator")
    cams, freq, notes = _as_list(cameras), _as_float(rate, "rate"), []
    extras: dict[str, Any] = {"control_freq": freq}
    if hardware:
        extras["camera_topics"] = {c: f"/camera/{c}/image_raw" for c in cams} if cams else None
        if _opt_str(task):
            notes.append(f"task={task!r} is ignored on hardware (a real robot has no simulated task)")
    else:
        extras.update(task=_opt_str(task), cameras=cams)
    config = _driver_config(backend, load_mapping(driver_config), extras, notes)
    emu_backend = _opt_str(emulator_backend) or DEFAULT_EMULATOR_BACKEND
    emu_config = _driver_config(emu_backend, {}, {"cameras": cams, "control_freq": freq}, notes) if emulate else {}
    if emulate and "joint_names" in (_config_fields(backend) or ()) and not config.get("joint_names"):
        # the emulator is the robot: name its joints, so every node knows the robot's features before connecting
        config["joint_names"] = emulated_joints(emu_backend, emu_config)
    timeout_ms = int(_as_float(command_timeout_ms, "command_timeout_ms") or COMMAND_TIMEOUT_MS)
    params: dict[str, Any] = {"driver": driver, "backend": backend, "driver_config": json.dumps(config, sort_keys=True),
                              "command_timeout_ms": timeout_ms}
    if _opt_str(start_armed) is not None:
        params["start_armed"] = _as_bool(start_armed, "start_armed")
    ns = (_opt_str(namespace) or "").strip("/")
    nodes = [NodeSpec("driver_node", "driver_node", namespace=ns, parameters=params)]
    if emulate:
        nodes.append(NodeSpec("robot_emulator", "robot_emulator", parameters={
            "backend": emu_backend, "driver_config": json.dumps(emu_config, sort_keys=True)}))
    what = f"{driver}/{backend}" + (f" + robot_emulator ({nodes[-1].parameters['backend']})" if emulate else "")
    return GraphSpec("bringup", nodes, f"driver_node ({what}) in /{ns}", notes)


def emulated_joints(backend: str, config: dict[str, Any]) -> list[str]:
    """The joints the robot emulator publishes: its (never connected) driver's position actions."""
    from robot_irl.drivers import DRIVERS

    cls = DRIVERS.get(backend)
    driver = cls(cls.config_class.from_dict(config, where=f"{backend} emulator config"))
    return [n.removesuffix(".pos") for n in driver.action_features["action"].names or ()]


def sim(**kwargs: Any) -> GraphSpec:
    """``bringup`` with a simulator (``driver`` may be omitted or ``"sim"``)."""
    driver = _opt_str(kwargs.pop("driver", None)) or "sim"
    if driver != "sim":
        raise GraphError(f"graph 'sim' always runs driver=sim (got driver={driver!r}); use graph 'bringup'")
    spec = bringup(driver="sim", **kwargs)
    spec.name = "sim"
    return spec


GRAPHS: Registry[Callable[..., GraphSpec]] = Registry("graph")
GRAPHS.register("bringup", bringup)
GRAPHS.register("sim", sim)


def build_graph(name: str = "bringup", **kwargs: Any) -> GraphSpec:
    """Build a registered graph; an unknown name raises ``UnknownNameError`` listing the known graphs."""
    return GRAPHS.get(name)(**kwargs)


# -- the collection graph (ADC) -----------------------------------------------------------------------------------

#: operators that run as ``teleop_node`` inside the graph (the keyboard needs a terminal: it runs on its own)
GRAPH_TELEOP_DEVICES = ("joy", "spacemouse")
OPERATORS = ("keyboard", "joy", "spacemouse", "scripted", "none")
#: adversaries that run as a node of the graph (the web console is ``console=true``, a human's)
GRAPH_ADVERSARIES = ("none", "scripted")


def collect(driver: str = "sim", backend: str | None = None, task: str | None = None, cameras: Any = None,
            rate: Any = None, emulate: Any = False, emulator_backend: str | None = None, driver_config: Any = None,
            namespace: str = DEFAULT_NAMESPACE, start_armed: Any = None,
            command_timeout_ms: Any = COMMAND_TIMEOUT_MS,
            dataset: Any = "runs/collect/dataset", repo_id: Any = "", resume: Any = False, overwrite: Any = False,
            bag: Any = True, operator: Any = "keyboard", console: Any = False, console_host: Any = "127.0.0.1",
            console_port: Any = 8080, adversary: Any = "none", episodes: Any = 0, max_steps: Any = 250,
            seed: Any = 0, preset: Any = "train") -> GraphSpec:
    """``bringup`` plus the recorder node, an operator, and optionally an adversary node and the web console.

    The recorder, teleop/operator and adversary nodes get the driver node's ``driver``/``backend``/``driver_config``
    so they know the features and action space without connecting. ``operator=keyboard`` reads a terminal, which a
    launched process does not have: the graph leaves it out and its notes say how to run it; ``joy``/``spacemouse``
    start ``teleop_node``; ``scripted`` starts ``operator_node`` (the scripted tele-operator: ``episodes`` episodes,
    0 = until stopped, of at most ``max_steps`` steps, then it stops the recorder and the graph ends); ``none``
    starts no operator. ``adversary=scripted`` starts ``adversary_node`` (the scripted ADC adversary, ``preset``
    train or held_out, seeded with ``seed``), so with ``operator=scripted`` the graph runs hands-free.
    ``dataset`` is the recorder's ``out`` (the LeRobot dataset root; bags go to ``<dataset>_bags``).
    """
    base = bringup(driver=driver, backend=backend, task=task, cameras=cameras, rate=rate, emulate=emulate,
                   emulator_backend=emulator_backend, driver_config=driver_config, namespace=namespace,
                   start_armed=start_armed, command_timeout_ms=command_timeout_ms)
    driver_node = base.node("driver_node")
    shared = {k: driver_node.parameters[k] for k in ("driver", "backend", "driver_config")}
    ns = driver_node.namespace
    if "joint_names" in (_config_fields(shared["backend"]) or ()) and \
            not load_mapping(shared["driver_config"]).get("joint_names"):
        raise GraphError(f"collect on {shared['backend']}: the recorder and teleop nodes need the robot's joints "
                         f"before connecting: name them in driver_config (joint_names: [...]), or emulate:=true")
    out_dir = _opt_str(dataset)
    if out_dir is None:
        raise GraphError("dataset: the dataset root is required")
    recorder = NodeSpec("recorder_node", "recorder_node", namespace=ns, parameters={
        **shared, "out": str(Path(out_dir).expanduser().resolve()), "repo_id": _opt_str(repo_id) or "",
        "resume": _as_bool(resume, "resume"), "overwrite": _as_bool(overwrite, "overwrite"),
        "bag": _as_bool(bag, "bag")})
    nodes, notes = [*base.nodes, recorder], list(base.notes)
    op = (_opt_str(operator) or "none").lower()
    if op not in OPERATORS:
        raise GraphError(f"operator: expected one of {list(OPERATORS)}, got {operator!r}")
    if op in GRAPH_TELEOP_DEVICES:
        nodes.append(NodeSpec("teleop_node", "teleop_node", namespace=ns, parameters={**shared, "device": op}))
    elif op == "keyboard":
        notes.append(f"operator=keyboard reads a terminal: run it in its own one: python -m robot_irl.ros.teleop_node "
                     f"--ros-args -r __ns:=/{ns} -p device:=keyboard -p driver:={shared['driver']} "
                     f"-p backend:={shared['backend']} -p driver_config:='{shared['driver_config']}'")
    elif op == "scripted":
        nodes.append(NodeSpec("operator_node", "operator_node", namespace=ns, parameters={
            **shared, "episodes": _as_count(episodes, "episodes"), "max_steps": _as_count(max_steps, "max_steps"),
            "seed": _as_count(seed, "seed")}))
    adv = (_opt_str(adversary) or "none").lower()
    if adv not in GRAPH_ADVERSARIES:
        raise GraphError(f"adversary: expected one of {list(GRAPH_ADVERSARIES)} (the web console is console=true), "
                         f"got {adversary!r}")
    if adv == "scripted":
        nodes.append(NodeSpec("adversary_node", "adversary_node", namespace=ns, parameters={
            **shared, "preset": _opt_str(preset) or "train", "seed": _as_count(seed, "seed")}))
    if _as_bool(console, "console"):
        port = _as_port(console_port)
        nodes.append(NodeSpec("console_node", "console_node", namespace=ns, parameters={
            **shared, "host": _opt_str(console_host) or "127.0.0.1", "port": 8080 if port is None else int(port)}))
    names = ", ".join(n.name for n in nodes[1:])
    return GraphSpec("collect", nodes, f"{base.description} + {names} (operator {op}, adversary "
                                       f"{'console' if _as_bool(console, 'console') and adv == 'none' else adv})",
                     notes)


GRAPHS.register("collect", collect)


# -- deploying a trained policy -------------------------------------------------------------------------------------

def _policy_path(policy: Any) -> str:
    path = _opt_str(policy)
    if path is None:
        raise GraphError("policy: a checkpoint folder is required (e.g. runs/iql/checkpoint)")
    resolved = Path(path).expanduser().resolve()
    if not resolved.exists():
        raise GraphError(f"policy: no checkpoint at {path}")
    return str(resolved)


def _policy_node(base: GraphSpec, policy: Any, inputs: Any = "auto", episode_steps: Any = 0,
                 command: Any = None, extra: dict[str, Any] | None = None) -> NodeSpec:
    """``policy_node`` beside ``base``'s driver node, with the driver node's driver parameters."""
    driver_node = base.node("driver_node")
    params: dict[str, Any] = {k: driver_node.parameters[k] for k in ("driver", "backend", "driver_config")}
    params.update(policy=_policy_path(policy), inputs=_opt_str(inputs) or "auto")
    try:
        params["episode_steps"] = int(_opt_str(episode_steps) or 0)
    except ValueError:
        raise GraphError(f"episode_steps: expected an integer, got {episode_steps!r}") from None
    if params["episode_steps"] < 0:
        raise GraphError(f"episode_steps: must be >= 0, got {episode_steps!r}")
    if command is not None and _opt_str(command) is not None:
        values = _as_list(command) or []
        try:
            params["command"] = [float(v) for v in values]
        except ValueError:
            raise GraphError(f"command: expected three numbers vx,vy,wz, got {command!r}") from None
        if len(params["command"]) != 3:
            raise GraphError(f"command: expected three numbers vx,vy,wz, got {command!r}")
    params.update(extra or {})
    return NodeSpec("policy_node", "policy_node", namespace=driver_node.namespace, parameters=params)


def check_policy_fits(spec: GraphSpec) -> None:
    """Before any node starts: does the policy node's checkpoint fit the driver it will drive?

    Builds (never connects) the policy node's driver and loads the checkpoint against it, so a policy trained on
    another robot fails here with one :class:`GraphError` naming the mismatch (action dimensions first, then the
    checkpoint's own feature check), instead of later inside a node. A ros2_control robot without ``joint_names``
    (the emulator's are filled in by :func:`bringup`) is checked by the policy node once it has the joints.
    Imports the checkpoint's learner (torch): ``robot-irl up`` calls it, launch files do not.
    """
    from robot_irl.collect.recover import build_driver
    from robot_irl.policies.checkpoint import checkpoint_config, load_policy

    params = dict(spec.node("policy_node").parameters)
    if params["backend"] == "ros2_control" and not load_mapping(params["driver_config"]).get("joint_names"):
        return  # discovered at connect: the policy node checks then
    robot = build_driver(params)
    path, actions = params["policy"], list(robot.action_features["action"].names or ())
    act_dim = checkpoint_config(path).get("act_dim")
    if act_dim is not None and int(act_dim) != len(actions):
        raise GraphError(f"policy {path} expects {act_dim} action dims; the {robot.name} driver takes {len(actions)} "
                         f"({', '.join(actions)}): this policy was trained for another robot")
    try:
        load_policy(path, robot)
    except (ValueError, RuntimeError) as e:
        raise GraphError(f"policy {path} does not fit the {robot.name} driver: {e}") from None


def deploy(policy: Any = None, driver: str = "sim", backend: str | None = None, task: str | None = None,
           cameras: Any = None, rate: Any = None, emulate: Any = False, emulator_backend: str | None = None,
           driver_config: Any = None, namespace: str = DEFAULT_NAMESPACE, start_armed: Any = None,
           command_timeout_ms: Any = COMMAND_TIMEOUT_MS, inputs: Any = "auto", episode_steps: Any = 0) -> GraphSpec:
    """``bringup`` plus ``policy_node`` acting with a trained checkpoint (BC, IQL, ...) through the driver node.

    The policy node gets the driver node's ``driver``/``backend``/``driver_config``: it checks the robot's features
    against the checkpoint's before it acts. On hardware the driver node starts disarmed, so the policy's commands
    move nothing until ``/robot_irl/arm`` is called.
    """
    base = bringup(driver=driver, backend=backend, task=task, cameras=cameras, rate=rate, emulate=emulate,
                   emulator_backend=emulator_backend, driver_config=driver_config, namespace=namespace,
                   start_armed=start_armed, command_timeout_ms=command_timeout_ms)
    node = _policy_node(base, policy, inputs, episode_steps)
    return GraphSpec("deploy", [*base.nodes, node], f"{base.description} + policy_node ({node.parameters['policy']})",
                     list(base.notes))


GRAPHS.register("deploy", deploy)


#: the legged graph's hardware driver_config (Unitree Go1 behind ros2_control); driver_config entries override it
GO1_HARDWARE_CONFIG = "hardware/go1_ros2_control.yaml"
LEGGED_SIM_BACKEND = "go1"


def legged(policy: Any = None, driver: str = "sim", backend: str | None = None, task: str | None = None,
           cameras: Any = None, rate: Any = None, emulate: Any = False, emulator_backend: str | None = None,
           driver_config: Any = None, namespace: str = DEFAULT_NAMESPACE, start_armed: Any = None,
           command_timeout_ms: Any = COMMAND_TIMEOUT_MS, command: Any = None, inputs: Any = "sensors",
           episode_steps: Any = 0) -> GraphSpec:
    """A legged robot walking with a trained policy (DR, oracle, RMA, HIB; ``robot-irl train ppo``).

    ``driver=sim`` runs the simulated Go1 (backend ``go1``; ``task`` go1_flat or go1_rough). ``driver=hardware`` runs
    the ros2_control bridge with :data:`GO1_HARDWARE_CONFIG` (``/joint_states`` with velocities, ``/imu/data``, the
    forward position controller; ``driver_config`` entries override it), disarmed until ``/robot_irl/arm``;
    ``emulate=true`` adds a simulated Go1 playing the robot's side. The policy node acts from ``joint_states`` +
    ``imu`` only (proprioception, as on the robot) with its own history buffer, and walks at the velocity on
    ``/robot_irl/cmd_vel`` (geometry_msgs/Twist), ``command`` (vx,vy,wz) until one arrives, zero when it goes stale.
    The command watchdog is short (``command_timeout_ms`` 100): a walking robot whose policy stops gets its last
    target held, not a half-second-old one.
    """
    from robot_irl.drivers import FAMILIES, resolve_backend

    fam = _opt_str(driver) or "sim"
    try:
        resolved = resolve_backend(fam, _opt_str(backend) or (LEGGED_SIM_BACKEND if fam == "sim" else None))
    except ValueError as e:
        raise GraphError(str(e)) from None
    hardware = resolved in FAMILIES["hardware"]
    config = load_mapping(driver_config)
    if hardware:
        config = {**load_mapping(GO1_HARDWARE_CONFIG, "legged hardware config"), **config}
        if _opt_str(rate) is not None:
            config["control_freq"] = _as_float(rate, "rate")
    base = bringup(driver=fam, backend=resolved, task=None if hardware else task, cameras=cameras,
                   rate=None if hardware else rate, emulate=emulate,
                   emulator_backend=_opt_str(emulator_backend) or (LEGGED_SIM_BACKEND if hardware else None),
                   driver_config=config, namespace=namespace, start_armed=start_armed,
                   command_timeout_ms=command_timeout_ms)
    node = _policy_node(base, policy, inputs, episode_steps, command=command)
    return GraphSpec("legged", [*base.nodes, node],
                     f"{base.description} + policy_node ({node.parameters['policy']})", list(base.notes))


GRAPHS.register("legged", legged)
