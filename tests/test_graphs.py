"""Graph definitions, the launch file built from them (with fake launch modules) and the launcher's commands."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from robot_irl.core.registry import UnknownNameError
from robot_irl.graphs import GRAPHS, GraphError, GraphSpec, NodeSpec, build_graph
from robot_irl.launcher import MODULES, node_command

pytestmark = pytest.mark.unit
LAUNCH_FILE = Path(__file__).resolve().parent.parent / "launch" / "bringup.launch.py"


def config_of(node: NodeSpec) -> dict:
    return json.loads(node.parameters["driver_config"])


def test_sim_graph_is_one_driver_node_in_the_robot_irl_namespace():
    spec = build_graph("bringup", driver="sim", backend="mock", rate=50, task="lift")
    assert [n.name for n in spec.nodes] == ["driver_node"]
    node = spec.nodes[0]
    assert (node.executable, node.package, node.namespace, node.full_name) == (
        "driver_node", "robot_irl", "robot_irl", "/robot_irl/driver_node")
    assert node.parameters["driver"] == "sim" and node.parameters["backend"] == "mock"
    assert config_of(node) == {"control_freq": 50.0}
    assert any("task='lift'" in note for note in spec.notes)  # the mock arm has no task: reported, not sent
    assert build_graph("sim", backend="mock").name == "sim"


def test_hardware_graph_uses_the_ros2_control_bridge_and_optionally_the_emulator():
    spec = build_graph("bringup", driver="hardware", cameras="wrist", rate="50", task="")
    assert [n.name for n in spec.nodes] == ["driver_node"]
    node = spec.nodes[0]
    assert node.parameters["backend"] == "ros2_control"
    assert config_of(node) == {"control_freq": 50.0, "camera_topics": {"wrist": "/camera/wrist/image_raw"}}
    assert "start_armed" not in node.parameters  # the node's default: disarmed on hardware

    emulated = build_graph("bringup", driver="hardware", emulate="true", emulator_backend="mock")
    assert [n.name for n in emulated.nodes] == ["driver_node", "robot_emulator"]
    emulator = emulated.node("robot_emulator")
    assert (emulator.executable, emulator.namespace, emulator.parameters["backend"]) == ("robot_emulator", "", "mock")
    assert "robot_emulator" in emulated.description


def test_explicit_driver_config_wins_over_convenience_arguments():
    spec = build_graph("bringup", driver="sim", backend="mock", rate=30, driver_config={"control_freq": 10.0})
    assert config_of(spec.nodes[0]) == {"control_freq": 10.0}
    assert any("overridden" in note for note in spec.notes)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"driver": "sim", "emulate": True}, GraphError, "emulate"),
    ({"driver": "sim", "backend": "ros2_control"}, GraphError, "not a sim backend"),
    ({"driver": "robotron"}, GraphError, "unknown driver 'robotron'"),
    ({"driver": "sim", "backend": "mock", "rate": "fast"}, GraphError, "rate"),
    ({"driver": "sim", "backend": "mock", "emulate": "maybe"}, GraphError, "emulate"),
    ({"driver": "sim", "backend": "mock", "driver_config": {"joints": 0}}, ValueError, "joints"),
    ({"driver": "sim", "backend": "mock", "driver_config": "missing.yaml"}, FileNotFoundError, "missing.yaml"),
])
def test_bad_graph_arguments_fail_clearly(kwargs, error, match):
    with pytest.raises(error, match=match):
        build_graph("bringup", **kwargs)


def test_unknown_graph_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="known graphs: bringup, collect, deploy, legged, sim"):
        build_graph("nope")
    assert {"bringup", "sim"} <= set(GRAPHS.names())
    with pytest.raises(GraphError, match="graph 'sim' always runs driver=sim"):
        build_graph("sim", driver="hardware")


def test_node_command_runs_the_module_with_ros_args(tmp_path):
    node = NodeSpec("driver_node", "driver_node", namespace="robot_irl", parameters={"driver": "sim", "x": 1},
                    remappings=[("commands", "/teleop/commands")], arguments=["--verbose"])
    cmd = node_command(node, tmp_path)
    assert cmd[:3] == [sys.executable, "-m", "robot_irl.ros.driver_node"]
    tail = cmd[3:]
    assert tail[:2] == ["--verbose", "--ros-args"]
    assert "__node:=driver_node" in tail and "__ns:=/robot_irl" in tail and "commands:=/teleop/commands" in tail
    params = yaml.safe_load(Path(tail[tail.index("--params-file") + 1]).read_text())
    assert params == {"/robot_irl/driver_node": {"ros__parameters": {"driver": "sim", "x": 1}}}
    with pytest.raises(FileNotFoundError, match="no_such_exe"):
        node_command(NodeSpec("n", "no_such_exe", package="other"), tmp_path)


def test_graphs_and_launcher_do_not_import_rclpy():
    code = ("import sys, robot_irl.graphs, robot_irl.launcher; "
            "robot_irl.graphs.build_graph('bringup', driver='hardware', emulate=True, emulator_backend='mock'); "
            "assert 'rclpy' not in sys.modules, 'rclpy imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- the launch file, loaded with fake `launch` / `launch_ros` modules -------------------------------------------

class _Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context.launch_configurations[self.name]


class _ParameterValue:
    def __init__(self, value, value_type=None):
        self.value, self.value_type = value, value_type


def _fake_launch_modules(monkeypatch):
    modules = {
        "launch": {"LaunchDescription": type("LaunchDescription", (_Recorded,), {})},
        "launch.actions": {"DeclareLaunchArgument": type("DeclareLaunchArgument", (_Recorded,), {}),
                           "OpaqueFunction": type("OpaqueFunction", (_Recorded,), {})},
        "launch.substitutions": {"LaunchConfiguration": _LaunchConfiguration},
        "launch_ros": {},
        "launch_ros.actions": {"Node": type("Node", (_Recorded,), {})},
        "launch_ros.parameter_descriptions": {"ParameterValue": _ParameterValue},
    }
    for name, attrs in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, module)


def _launch(monkeypatch, **arguments):
    """Load the launch file, evaluate it with ``arguments`` over the declared defaults; return the Nodes' kwargs."""
    _fake_launch_modules(monkeypatch)
    spec = importlib.util.spec_from_file_location("bringup_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    entities = module.generate_launch_description().args[0]
    declared = {e.args[0]: e.kwargs["default_value"] for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    unknown = set(arguments) - set(declared)
    assert not unknown, f"launch file does not declare {unknown}"
    (opaque,) = [e for e in entities if type(e).__name__ == "OpaqueFunction"]
    context = types.SimpleNamespace(launch_configurations={**declared, **arguments})
    return declared, [n.kwargs for n in opaque.kwargs["function"](context)]


def _as_spec_dict(node: NodeSpec) -> dict:
    return {"package": node.package, "executable": node.executable, "name": node.name, "namespace": node.namespace,
            "parameters": node.parameters, "remappings": node.remappings, "arguments": node.arguments}


def _unwrap(kwargs: dict) -> dict:
    (params,) = kwargs["parameters"]
    for key, value in params.items():
        if isinstance(value, _ParameterValue):
            assert value.value_type is str, f"{key}: strings must stay strings (launch_ros parses YAML otherwise)"
    plain = {k: v.value if isinstance(v, _ParameterValue) else v for k, v in params.items()}
    return {**{k: kwargs[k] for k in ("package", "executable", "name", "namespace", "remappings", "arguments")},
            "parameters": plain}


@pytest.mark.parametrize("arguments", [
    {"driver": "sim", "backend": "mock", "rate": "30"},
    {"driver": "hardware", "emulate": "true", "emulator_backend": "mock", "cameras": "wrist,top"},
])
def test_launch_file_produces_the_graph_spec(monkeypatch, arguments):
    declared, nodes = _launch(monkeypatch, **arguments)
    assert {"driver", "task", "cameras", "rate", "emulate"} <= set(declared)
    expected: GraphSpec = build_graph("bringup", **{**declared, **arguments})
    assert [_unwrap(n) for n in nodes] == [_as_spec_dict(n) for n in expected.nodes]
    assert all(n["output"] == "screen" for n in nodes)


def test_shipped_config_files_are_valid():
    from robot_irl.drivers import make_driver
    from robot_irl.graphs import load_mapping

    bridge = make_driver("hardware", load_mapping("config/ros2_control_bridge.yaml"))  # found via the share dir
    assert bridge.joint_names == ("joint_0", "joint_1", "joint_2")
    assert bridge.safety_limits.max_velocity == (0.5, 0.5, 0.5)
    params = load_mapping("config/driver_node.yaml")["/robot_irl/driver_node"]["ros__parameters"]
    driver = make_driver(params["driver"], load_mapping(params["driver_config"]), backend=params["backend"])
    assert driver.fps == 20.0


# -- the collection graph ---------------------------------------------------------------------------------------

def test_collect_graph_adds_recorder_teleop_and_console_with_the_driver_parameters(tmp_path):
    spec = build_graph("collect", driver="sim", backend="mock", rate="50", dataset=str(tmp_path / "ds"), operator="joy",
                       console="true", console_port="9000", bag="false")
    assert [n.name for n in spec.nodes] == ["driver_node", "recorder_node", "teleop_node", "console_node"]
    driver, recorder, teleop, console = spec.nodes
    assert all(n.namespace == "robot_irl" for n in spec.nodes)
    for node in (recorder, teleop, console):  # same driver description: features, actions, targets, no connecting
        assert {k: node.parameters[k] for k in ("driver", "backend", "driver_config")} == {
            k: driver.parameters[k] for k in ("driver", "backend", "driver_config")}
    assert recorder.parameters["out"] == str((tmp_path / "ds").resolve()) and recorder.parameters["bag"] is False
    assert teleop.parameters["device"] == "joy"
    assert (console.parameters["host"], console.parameters["port"]) == ("127.0.0.1", 9000)

    keyboard = build_graph("collect", driver="sim", backend="mock", dataset=str(tmp_path / "ds"))  # default operator
    assert [n.name for n in keyboard.nodes] == ["driver_node", "recorder_node"]
    assert any("teleop_node" in note and "device:=keyboard" in note for note in keyboard.notes)
    hardware = build_graph("collect", driver="hardware", emulate=True, emulator_backend="mock", dataset=str(tmp_path),
                           operator="none")
    assert [n.name for n in hardware.nodes] == ["driver_node", "robot_emulator", "recorder_node"]
    with pytest.raises(GraphError, match="operator"):
        build_graph("collect", backend="mock", dataset=str(tmp_path), operator="telepathy")
    with pytest.raises(GraphError, match="dataset"):
        build_graph("collect", backend="mock", dataset="", operator="none")


@pytest.mark.parametrize("arguments", [
    {"driver": "sim", "backend": "mock", "rate": "30", "operator": "joy", "console": "true", "dataset": "/tmp/ds"},
    {"driver": "hardware", "emulate": "true", "emulator_backend": "mock", "operator": "none", "bag": "false"},
])
def test_collect_launch_file_produces_the_graph_spec(monkeypatch, arguments):
    monkeypatch.setitem(globals(), "LAUNCH_FILE", LAUNCH_FILE.with_name("collect.launch.py"))
    declared, nodes = _launch(monkeypatch, **arguments)
    assert {"driver", "cameras", "dataset", "operator", "console", "bag", "resume"} <= set(declared)
    expected: GraphSpec = build_graph("collect", **{**declared, **arguments})
    assert [_unwrap(n) for n in nodes] == [_as_spec_dict(n) for n in expected.nodes]


@pytest.mark.parametrize("arguments", [
    {"driver": "sim", "backend": "mock", "rate": "30", "episode_steps": "100"},
    {"driver": "hardware", "emulate": "true", "emulator_backend": "mock", "inputs": "observation"},
])
def test_deploy_launch_file_produces_the_graph_spec(monkeypatch, arguments, tmp_path):
    monkeypatch.setitem(globals(), "LAUNCH_FILE", LAUNCH_FILE.with_name("deploy.launch.py"))
    arguments = {**arguments, "policy": str(tmp_path)}
    declared, nodes = _launch(monkeypatch, **arguments)
    assert {"driver", "task", "policy", "inputs", "episode_steps"} <= set(declared)
    expected: GraphSpec = build_graph("deploy", **{**declared, **arguments})
    assert [_unwrap(n) for n in nodes] == [_as_spec_dict(n) for n in expected.nodes]
    assert nodes[-1]["executable"] == "policy_node"


def test_legged_graph_defaults_and_hardware_config(tmp_path):
    sim = build_graph("legged", driver="sim", policy=str(tmp_path), command="0.5,0,0.2")
    driver, policy = sim.nodes
    assert driver.parameters["backend"] == "go1" and driver.parameters["command_timeout_ms"] == 100
    assert policy.parameters["inputs"] == "sensors" and policy.parameters["command"] == [0.5, 0.0, 0.2]
    hw = build_graph("legged", driver="hardware", emulate=True, policy=str(tmp_path),
                     driver_config='{"stale_after_ms": 500}')
    assert [n.name for n in hw.nodes] == ["driver_node", "robot_emulator", "policy_node"]
    config = json.loads(hw.node("driver_node").parameters["driver_config"])
    assert config["state_layout"] == "proprio" and config["imu_topic"] == "/imu/data"  # hardware/go1_ros2_control
    assert config["stale_after_ms"] == 500 and len(config["joint_names"]) == 12  # driver_config entries win
    assert hw.node("robot_emulator").parameters["backend"] == "go1"
    assert hw.node("policy_node").parameters["driver_config"] == hw.node("driver_node").parameters["driver_config"]
    with pytest.raises(GraphError, match="command"):
        build_graph("legged", policy=str(tmp_path), command="0.5,0")
    with pytest.raises(GraphError, match="backend 'robosuite' is not a hardware backend"):
        build_graph("legged", driver="hardware", backend="robosuite", policy=str(tmp_path))


@pytest.mark.parametrize("arguments", [
    {"driver": "sim", "task": "go1_rough", "command": "0.4,0,0"},
    {"driver": "hardware", "emulate": "true", "rate": "50"},
])
def test_legged_launch_file_produces_the_graph_spec(monkeypatch, arguments, tmp_path):
    monkeypatch.setitem(globals(), "LAUNCH_FILE", LAUNCH_FILE.with_name("legged.launch.py"))
    arguments = {**arguments, "policy": str(tmp_path)}
    declared, nodes = _launch(monkeypatch, **arguments)
    assert {"driver", "task", "policy", "command", "command_timeout_ms"} <= set(declared)
    expected: GraphSpec = build_graph("legged", **{**declared, **arguments})
    assert [_unwrap(n) for n in nodes] == [_as_spec_dict(n) for n in expected.nodes]


def test_collect_graph_runs_the_scripted_operator_and_adversary_as_nodes(tmp_path):
    spec = build_graph("collect", driver="sim", task="lift", dataset=str(tmp_path / "ds"), operator="scripted",
                       adversary="scripted", episodes="3", max_steps="80", seed="5", preset="held_out")
    assert [n.name for n in spec.nodes] == ["driver_node", "recorder_node", "operator_node", "adversary_node"]
    driver, _, operator, adversary = spec.nodes
    for node in (operator, adversary):
        assert node.namespace == driver.namespace and node.executable in MODULES
        assert node.parameters["driver_config"] == driver.parameters["driver_config"]
    assert operator.parameters["episodes"] == 3 and operator.parameters["max_steps"] == 80
    assert adversary.parameters["preset"] == "held_out" and adversary.parameters["seed"] == 5
    assert "(operator scripted, adversary scripted)" in spec.description
    with pytest.raises(GraphError, match="adversary: expected one of"):
        build_graph("collect", dataset=str(tmp_path / "ds"), adversary="console")
    with pytest.raises(GraphError, match="episodes: must be >= 0"):
        build_graph("collect", dataset=str(tmp_path / "ds"), operator="scripted", episodes=-1)


def test_a_policy_for_another_robot_is_refused_before_any_node_starts(tmp_path):
    from robot_irl.graphs import check_policy_fits

    ckpt = tmp_path / "iql" / "checkpoint"
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text(json.dumps({"algorithm": "iql", "act_dim": 7}))  # a Lift policy (7 dims)
    spec = build_graph("deploy", driver="hardware", emulate=True, emulator_backend="mock", policy=str(tmp_path / "iql"))
    with pytest.raises(GraphError, match=r"expects 7 action dims; the ros2_control driver takes 3 "
                                         r"\(joint_0, joint_1, joint_2\)"):
        check_policy_fits(spec)
    # the command line says the same in one line, exit status 2, and starts nothing
    done = subprocess.run([sys.executable, "-m", "robot_irl.cli", "up", "deploy", "--driver", "hardware", "--emulate",
                           "--policy", str(tmp_path / "iql"), "--set", "{emulator_backend: mock}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "", done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"robot-irl up: error: policy {ckpt.parent} expects 7 action dims; the ros2_control driver takes 3 "
        f"(joint_0, joint_1, joint_2): this policy was trained for another robot"], done.stderr


def test_hardware_graphs_know_the_robot_joints_before_connecting(tmp_path):
    """The emulator's joints name the ros2_control robot's, so recorder/teleop/console/policy nodes know its features;
    a real robot without joint_names cannot be collected from (refused with what to do)."""
    spec = build_graph("collect", driver="hardware", emulate=True, emulator_backend="mock", dataset=str(tmp_path),
                       operator="joy", console=True)
    for node in spec.nodes:
        if node.name != "robot_emulator":
            assert json.loads(node.parameters["driver_config"])["joint_names"] == ["joint_0", "joint_1", "joint_2"]
    named = build_graph("collect", driver="hardware", dataset=str(tmp_path), operator="none",
                        driver_config={"joint_names": ["a", "b"]})
    assert json.loads(named.node("recorder_node").parameters["driver_config"])["joint_names"] == ["a", "b"]
    with pytest.raises(GraphError, match=r"joint_names: \[\.\.\.\]\), or emulate:=true"):
        build_graph("collect", driver="hardware", dataset=str(tmp_path), operator="joy")
