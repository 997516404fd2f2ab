"""Registries, typed configs, features, perturbation records and the driver contract (on the mock driver)."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pytest

from robot_irl.core import (
    Config,
    ConfigError,
    DriverNotConnectedError,
    Feature,
    Perturbation,
    PerturbationError,
    PerturbationKind,
    Registry,
    UnknownNameError,
    UnsafeActionError,
)
from robot_irl.drivers import DRIVERS, make_driver, resolve_backend
from robot_irl.drivers.mock import MockArmConfig, MockArmDriver

pytestmark = pytest.mark.unit


def test_importing_robot_irl_pulls_in_no_heavy_dependency():
    code = ("import sys, robot_irl, robot_irl.core, robot_irl.drivers, robot_irl.policies, robot_irl.paths;"
            "print([m for m in ('rclpy', 'mujoco', 'torch', 'robosuite', 'lerobot') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert out.stderr.strip() == "" or "Warning" not in out.stderr  # no prints on import


def test_registry_rejects_duplicates_and_lists_known_names():
    reg: Registry[int] = Registry("widget")
    reg.register("a", 1)
    reg.register("b", "json:dumps")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", 2)
    with pytest.raises(UnknownNameError, match=r"unknown widget 'c'; known widgets: a, b"):
        reg.get("c")
    assert reg.get("b") is json.dumps and reg.get("a") == 1 and "a" in reg and len(reg) == 2
    with pytest.raises(ValueError, match="module:attribute"):
        reg.register("d", "no_colon")


def test_driver_registry_and_families():
    assert {"mock", "robosuite", "mujoco_arm", "ros2_control"} <= set(DRIVERS.names())
    assert resolve_backend("sim") == "robosuite"
    assert resolve_backend("hardware") == "ros2_control"
    assert resolve_backend("sim", "mock") == "mock"
    with pytest.raises(ValueError, match="not a hardware backend"):
        resolve_backend("hardware", "mock")
    with pytest.raises(ValueError, match="unknown driver 'warp'"):
        make_driver("warp")


@dataclass
class _Cfg(Config):
    rate: float = 20.0
    mode: Literal["a", "b"] = "a"
    sizes: tuple[int, ...] = (1, 2)
    name: str | None = None

    def validate(self):
        if self.rate <= 0:
            raise ConfigError("_Cfg.rate: must be > 0")


def test_config_round_trip_and_strictness():
    cfg = _Cfg.from_dict({"rate": 10, "sizes": [3], "mode": "b"})
    assert cfg == _Cfg(10.0, "b", (3,), None)
    assert _Cfg.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['rat'\]"):
        _Cfg.from_dict({"rat": 1})
    with pytest.raises(ConfigError, match=r"_Cfg.rate: expected a number, got str"):
        _Cfg.from_dict({"rate": "fast"})
    with pytest.raises(ConfigError, match=r"'c' is not one of"):
        _Cfg.from_dict({"mode": "c"})
    with pytest.raises(ConfigError, match="must be > 0"):
        _Cfg.from_dict({"rate": -1})
    with pytest.raises(ConfigError, match=r"sizes\[1\]: expected an integer"):
        _Cfg.from_dict({"sizes": [1, 2.5]})


def test_merge_dicts_lays_overrides_over_nested_defaults():
    from robot_irl.core.config import merge_dicts

    base = {"env": {"rewards": {"clip": True, "gait": 1.0}, "gait": {"frequency": 2.0}}, "seed": 0}
    merged = merge_dicts(base, {"env": {"rewards": {"gait": 0.5}}, "seed": 3, "new": [1]})
    assert merged == {"env": {"rewards": {"clip": True, "gait": 0.5}, "gait": {"frequency": 2.0}}, "seed": 3,
                      "new": [1]}
    assert base["env"]["rewards"]["gait"] == 1.0  # the defaults are not changed
    assert merge_dicts(base, {"env": 5})["env"] == 5  # a non-dict replaces a dict


def test_malformed_driver_config_names_the_field():
    with pytest.raises(ConfigError, match="driver mock config.joints: expected an integer"):
        make_driver("mock", {"joints": "three"})
    with pytest.raises(ConfigError, match="tracking_gain"):
        make_driver("mock", {"tracking_gain": 2.0})


def test_feature_validation():
    f = Feature("float32", (3,), ("a", "b", "c"))
    assert Feature.from_dict(f.to_dict()) == f
    assert Feature("uint8", (8, 8, 3)).is_image and not f.is_image
    with pytest.raises(ValueError, match="names"):
        Feature("float32", (2,), ("a",))
    with pytest.raises(ValueError, match="dtype"):
        Feature("complex", (2,))


def test_perturbation_records_validate_and_round_trip():
    p = Perturbation("push", "cube", {"velocity": [0.1, 0, 0]})
    assert p.kind is PerturbationKind.PUSH
    rec = p.stamped(1.5, 30, position=[0, 0, 1])
    assert Perturbation.from_json(rec.to_json()) == rec
    with pytest.raises(PerturbationError, match="unknown perturbation kind 'teleport'"):
        Perturbation("teleport", "cube")
    with pytest.raises(PerturbationError, match=r"needs one of params \['velocity'\]"):
        Perturbation("push", "cube", {})
    with pytest.raises(PerturbationError, match="expected 3 finite numbers"):
        Perturbation("push", "cube", {"velocity": [1, float("nan"), 0]})
    with pytest.raises(PerturbationError, match="not JSON"):
        Perturbation.from_json("{oops")
    with pytest.raises(PerturbationError, match="unknown keys"):
        Perturbation.from_dict({"kind": "push", "target": "c", "params": {"velocity": [0, 0, 0]}, "when": 1})


@pytest.mark.parametrize("kind, params, bound", [
    ("push", {"velocity": [1e300, 0, 0]}, "max_push_speed=3 m/s"),
    ("push", {"velocity": [0, 0, 1e4]}, "max_push_speed"),
    ("move_object", {"position": [0.2, 0.0, 9995.0]}, "outside the workspace box"),
    ("move_object", {"position": [0.2, 0.0, -0.5]}, "workspace_low"),
    ("move_object", {"quat": [0, 0, 0, 0]}, "zero length"),
    ("distractor_add", {"position": [5.0, 0.0, 0.1]}, "workspace"),
    ("color", {"rgba": [2.0, 0.0, 0.0, 1.0]}, r"outside \[0, 1\]"),
    ("color", {"rgba": [0.5, -0.1, 0.0, 1.0]}, "colour components"),
    ("lighting", {"diffuse": [50.0, 1.0, 1.0]}, "max_light_value=1"),
    ("lighting", {"ambient": [-1.0, 0.0, 0.0]}, "ambient"),
    ("lighting", {"position": [0.0, 0.0, 1e6]}, "light_position box"),
    ("lighting", {"direction": [0.0, 0.0, 0.0]}, "zero length"),
    ("camera", {"offset": [0.0, 5.0, 0.0]}, "max_camera_offset=0.3 m"),
    ("camera", {"yaw": 3.0}, "max_camera_angle=0.8 rad"),
    ("camera", {"pitch": -3.0}, "pitch"),
    ("instruction", {"text": "x" * 10_000}, "10000 characters exceeds max_instruction_chars=300"),
    ("push", {"velocity": [0.1, 0, 0], "mass": 1e9}, r"unknown parameters \['mass'\]"),
])
def test_perturbation_bounds_refuse_requests_outside_them_naming_the_bound(kind, params, bound):
    from robot_irl.core.perturbation import PerturbationBounds

    request = Perturbation(kind, "cube", params)
    with pytest.raises(PerturbationError, match=bound) as refused:
        PerturbationBounds().check(request)
    assert len(str(refused.value)) < 400  # a huge request is never echoed back


def test_perturbation_bounds_accept_what_the_adversaries_send():
    from robot_irl.collect.adversary import AdversaryConfig
    from robot_irl.core.perturbation import PerturbationBounds

    bounds, held_out = PerturbationBounds(), AdversaryConfig.preset("held_out")
    for request in (Perturbation("push", "cube", {"velocity": [held_out.push_speed[1], 0, 0]}),
                    Perturbation("move_object", "cube", {"position": [0.1, -0.1, 0.8], "yaw": 7.0}),
                    Perturbation("color", "table", {"rgba": [0.0, 1.0, 0.5, 1.0]}),
                    Perturbation("lighting", "all", {"diffuse": [1.0, 1.0, 1.0], "direction": [0, 0.3, -1]}),
                    Perturbation("camera", "agentview", {"offset": [held_out.camera_shift] * 3,
                                                         "yaw": held_out.camera_yaw}),
                    Perturbation("distractor_add", "distractor_box", {}),
                    Perturbation("distractor_remove", "distractor_box", {}),
                    Perturbation("instruction", "task", {"text": "lift the red cube"})):
        bounds.check(request)
    with pytest.raises(ConfigError, match="PerturbationBounds.workspace_low"):
        PerturbationBounds.from_dict({"workspace_low": [0, 0, 2.0]})


def test_malformed_requests_and_error_events_quote_only_a_little_of_the_request():
    from robot_irl.console.backend import error_event
    from robot_irl.core.perturbation import request_echo

    huge = [0.5] * 1_000_000
    with pytest.raises(PerturbationError, match=r"\(\d+ characters\)") as refused:
        Perturbation("push", "cube", {"velocity": huge})
    assert len(str(refused.value)) < 400
    request = Perturbation("instruction", "task", {"text": "y" * 1_000_000})
    echo = request_echo(request)
    assert echo["kind"] == "instruction" and echo["target"] == "task" and len(json.dumps(echo)) < 500
    assert request_echo("z" * 100_000).endswith("(100000 characters)")
    small = {"kind": "push", "target": "cube", "params": {"velocity": [1, 0, 0]}}
    assert request_echo(small) == small
    assert len(json.dumps(error_event("e" * 100_000, request))) < 1200


def test_mock_driver_contract():
    drv = MockArmDriver(MockArmConfig(joints=2))
    assert drv.observation_features["observation.state"].shape == (2,)  # known before connecting
    with pytest.raises(DriverNotConnectedError, match="connect"):
        drv.get_observation()
    with drv:
        sent = drv.send_action([10.0, 0.01])  # far target: clamped by max velocity * dt = 0.1
        assert np.allclose(sent, [0.1, 0.01]) and drv.last_clamped.tolist() == [True, False]
        before = drv.get_observation()["observation.state"].copy()
        with pytest.raises(UnsafeActionError, match="joint_1=nan"):
            drv.send_action([0.0, float("nan")])
        assert np.array_equal(drv.get_observation()["observation.state"], before)  # nothing moved
        state = drv.get_state()
        a = drv.send_action([0.2, 0.2])
        after = drv.get_observation()["observation.state"].copy()
        drv.set_state(state)
        assert np.array_equal(drv.send_action(a), a)
        assert np.array_equal(drv.get_observation()["observation.state"], after)
        rec = drv.perturb(Perturbation("instruction", "task", {"text": "wave"}))
        assert drv.instruction == "wave" and rec.params["previous"] == "move the arm" and rec.step == 2
        with pytest.raises(PerturbationError, match="does not support push"):
            drv.perturb(Perturbation("push", "cube", {"velocity": [0, 0, 0]}))
    assert not drv.is_connected
