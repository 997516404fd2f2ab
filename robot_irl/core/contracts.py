"""The contracts every driver, teleoperator and policy follows.

Modelled on LeRobot's ``Robot``/``Teleoperator`` (connect/disconnect, features known without connecting,
``send_action`` returning what was actually sent) with one difference that matters on a real robot: the safety
layer is not each driver's business. :meth:`RobotDriver.send_action` is a template method: it validates and
clamps with :func:`robot_irl.core.safety.clamp_action` and only then hands the safe action to the driver's
``_apply_action``. A driver cannot forget the safety layer, and the returned (clamped) action is what gets
recorded.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from robot_irl.core.config import Config
from robot_irl.core.features import Feature
from robot_irl.core.perturbation import (
    PHYSICAL_KINDS,
    Perturbation,
    PerturbationBounds,
    PerturbationError,
    PerturbationKind,
    brief,
)
from robot_irl.core.safety import SafetyLimits, clamp_action


class DriverNotConnectedError(RuntimeError):
    """An operation that needs a connected driver was called before ``connect()``."""


class RobotDriver(ABC):
    """A robot, simulated or real.

    Subclasses implement the ``_``-prefixed hooks; callers use the public methods. Observations are dicts of
    arrays keyed like LeRobot features (``observation.state``, ``observation.images.<camera>``); actions are one
    float vector described by ``action_features["action"]``.
    """

    name: ClassVar[str] = "driver"
    config_class: ClassVar[type[Config]] = Config

    def __init__(self, config: Config | None = None) -> None:
        self.config = config if config is not None else self.config_class()
        self._connected = False
        self._steps = 0  # control steps since the last reset (counted here, for every driver)
        self._instruction = str(getattr(self.config, "instruction", "") or "")
        self.last_clamped = np.zeros(0, dtype=bool)

    # -- description, known without connecting ------------------------------------------------------------
    @property
    @abstractmethod
    def observation_features(self) -> dict[str, Feature]: ...

    @property
    @abstractmethod
    def action_features(self) -> dict[str, Feature]: ...

    @property
    @abstractmethod
    def safety_limits(self) -> SafetyLimits: ...

    @property
    def action_dim(self) -> int:
        return self.action_features["action"].shape[0]

    @property
    def fps(self) -> float:
        return float(getattr(self.config, "control_freq", 20.0))

    # -- lifecycle ----------------------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        if self._connected:
            raise RuntimeError(f"{self.name}: already connected")
        self._connect()
        self._connected = True

    def disconnect(self) -> None:
        if not self._connected:
            return
        try:
            self._disconnect()
        finally:
            self._connected = False

    def __enter__(self) -> RobotDriver:
        self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.disconnect()

    def _require_connected(self, what: str) -> None:
        if not self._connected:
            raise DriverNotConnectedError(f"{self.name}.{what}: driver is not connected; call connect() first")

    # -- the loop -------------------------------------------------------------------------------------------
    def get_observation(self) -> dict[str, np.ndarray]:
        self._require_connected("get_observation")
        return self._get_observation()

    def send_action(self, action) -> np.ndarray:
        """Clamp ``action`` through the safety layer, send it, and return what was actually sent."""
        self._require_connected("send_action")
        safe, mask = clamp_action(action, self.safety_limits, self._safety_reference(), f"{self.name}.send_action")
        self._apply_action(safe)
        self._steps += 1
        self.last_clamped = mask
        return safe.astype(np.float32)

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        self._require_connected("reset")
        self._steps = 0
        return self._reset(seed)

    def hold_action(self) -> np.ndarray:
        """The action that keeps the robot where it is (used by watchdogs and when disarmed)."""
        self._require_connected("hold_action")
        return np.asarray(self._safety_reference(), dtype=np.float32)

    # -- language instruction and perturbations -----------------------------------------------------------
    @property
    def instruction(self) -> str:
        return self._instruction

    @instruction.setter
    def instruction(self, text: str) -> None:
        self._instruction = str(text)

    def perturbation_targets(self) -> dict[PerturbationKind, list[str]]:
        """What :meth:`perturb` accepts: kind -> valid targets. Every driver supports instruction changes."""
        return {PerturbationKind.INSTRUCTION: ["task"]}

    def perturbation_bounds(self) -> PerturbationBounds:
        """The physical bounds :meth:`perturb` checks requests against (drivers declare their workspace)."""
        return PerturbationBounds()

    def perturb(self, request: Perturbation) -> Perturbation:
        """Apply a perturbation; return the stamped record of what was applied.

        Refused with :class:`PerturbationError` (nothing applied): an unsupported kind or unknown target, a
        request outside :meth:`perturbation_bounds`; and, for kinds that change the physics, a simulation that
        is not sound afterwards (:meth:`_simulation_problem`): the state from before is then restored.
        """
        self._require_connected("perturb")
        targets = self.perturbation_targets()
        if request.kind not in targets:
            raise PerturbationError(
                f"{self.name} does not support {request.kind.value}; supported: {[k.value for k in targets]}")
        if targets[request.kind] and request.target not in targets[request.kind]:
            raise PerturbationError(
                f"{self.name}: unknown {request.kind.value} target {brief(request.target)}; "
                f"known: {targets[request.kind]}")
        try:
            self.perturbation_bounds().check(request)
        except PerturbationError as e:
            raise PerturbationError(f"{self.name}: {e}") from None
        if request.kind is PerturbationKind.INSTRUCTION:
            previous = self._instruction
            self._instruction = request.params["text"]
            return request.stamped(self.sim_time, self.step_count, previous=previous)
        if request.kind not in PHYSICAL_KINDS:
            return request.stamped(self.sim_time, self.step_count, **(self._perturb(request) or {}))
        before = self.get_state()
        try:
            applied = self._perturb(request) or {}
            problem = self._simulation_problem()
        except BaseException:
            self.set_state(before)
            raise
        if problem is not None:
            self.set_state(before)
            raise PerturbationError(f"{self.name}: {request.kind.value} on {brief(request.target, 60)} refused: "
                                    f"{problem}; the state from before it was restored")
        return request.stamped(self.sim_time, self.step_count, **applied)

    @property
    def sim_time(self) -> float:
        """Seconds since the last reset: control steps / control rate (a real robot's driver may use its clock)."""
        return self._steps / self.fps

    @property
    def step_count(self) -> int:
        """Control steps since the last reset (``set_state`` of a simulator restores it)."""
        return self._steps

    def task_status(self) -> dict[str, float | bool]:
        """Reward and success after the last step, where the driver can compute them (simulators); else ``{}``.

        Keys: ``reward`` (float) and ``success`` (bool). Real robots usually return ``{}``.
        """
        return {}

    # -- full state, for exact replay (simulators) ---------------------------------------------------------
    def get_state(self) -> np.ndarray:
        raise NotImplementedError(f"{self.name} has no restorable state")

    def set_state(self, state: np.ndarray) -> None:
        raise NotImplementedError(f"{self.name} has no restorable state")

    # -- hooks for subclasses -------------------------------------------------------------------------------
    @abstractmethod
    def _connect(self) -> None: ...

    @abstractmethod
    def _disconnect(self) -> None: ...

    @abstractmethod
    def _get_observation(self) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def _apply_action(self, action: np.ndarray) -> None: ...

    @abstractmethod
    def _reset(self, seed: int | None) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def _safety_reference(self) -> np.ndarray:
        """The current measured value in action space (for the relative step limit and holding still)."""

    def _perturb(self, request: Perturbation) -> dict[str, Any] | None:
        raise PerturbationError(f"{self.name} does not implement {request.kind.value}")

    def _simulation_problem(self) -> str | None:
        """After a physical perturbation: why the simulation is not sound (a non-finite state, an instability
        warning), else ``None``. Drivers that support physical perturbations implement it, and ``get_state``/
        ``set_state`` (the state is restored when this finds a problem)."""
        raise NotImplementedError(f"{self.name} applies physical perturbations without checking the simulation")


class Teleoperator(ABC):
    """An input device (keyboard, joystick, SpaceMouse, leader arm, scripted operator) producing actions."""

    name: ClassVar[str] = "teleop"

    def connect(self) -> None:
        """Open the device. Default: nothing to open."""

    def disconnect(self) -> None:
        """Close the device."""

    @property
    @abstractmethod
    def action_features(self) -> dict[str, Feature]: ...

    @abstractmethod
    def get_action(self, observation: dict[str, np.ndarray] | None = None) -> np.ndarray: ...


class Policy(ABC):
    """Maps observations to actions. Stateful policies clear their state in ``reset``."""

    name: ClassVar[str] = "policy"

    def reset(self, seed: int | None = None) -> None:
        """Start of an episode."""

    @abstractmethod
    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray: ...
