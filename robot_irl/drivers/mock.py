"""A pure-numpy arm: joint position targets tracked by a first-order lag. No simulator, no files.

For unit tests of everything above the driver contract (safety wiring, ROS nodes, recorders) where physics does
not matter. It also exposes the full contract including state get/set, so replay logic is testable cheaply.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_irl.core.config import Config, check
from robot_irl.core.contracts import RobotDriver
from robot_irl.core.features import Feature, vector
from robot_irl.core.safety import SafetyLimits


@dataclass
class MockArmConfig(Config):
    joints: int = 3
    control_freq: float = 20.0
    tracking_gain: float = 0.5  # fraction of the remaining error closed each tick
    joint_limit: float = 2.5  # rad, symmetric
    max_velocity: float = 2.0  # rad/s
    instruction: str = "move the arm"

    def validate(self) -> None:
        check(self.joints >= 1, "MockArmConfig.joints", "must be >= 1")
        check(self.control_freq > 0, "MockArmConfig.control_freq", "must be > 0")
        check(0 < self.tracking_gain <= 1, "MockArmConfig.tracking_gain", "must be in (0, 1]")
        check(self.joint_limit > 0 and self.max_velocity > 0, "MockArmConfig", "limits must be > 0")


class MockArmDriver(RobotDriver):
    name = "mock"
    config_class = MockArmConfig
    config: MockArmConfig

    def __init__(self, config: MockArmConfig | None = None) -> None:
        super().__init__(config)
        n = self.config.joints
        self._names = tuple(f"joint_{i}" for i in range(n))
        self._q = np.zeros(n)
        self._target = np.zeros(n)

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def observation_features(self) -> dict[str, Feature]:
        return {"observation.state": vector(self._names)}

    @property
    def action_features(self) -> dict[str, Feature]:
        return {"action": vector(self._names)}

    @property
    def safety_limits(self) -> SafetyLimits:
        n, lim = self.config.joints, self.config.joint_limit
        return SafetyLimits(self._names, lower=(-lim,) * n, upper=(lim,) * n,
                            max_velocity=(self.config.max_velocity,) * n, dt=1.0 / self.config.control_freq)

    def _connect(self) -> None:
        self._reset(None)

    def _disconnect(self) -> None:
        pass

    def _get_observation(self) -> dict[str, np.ndarray]:
        return {"observation.state": self._q.astype(np.float32)}

    def _apply_action(self, action: np.ndarray) -> None:
        self._target = action.copy()
        self._q = self._q + self.config.tracking_gain * (self._target - self._q)

    def _reset(self, seed: int | None) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        self._q = rng.uniform(-0.1, 0.1, self.config.joints) if seed is not None else np.zeros(self.config.joints)
        self._target = self._q.copy()
        return self._get_observation()

    def _safety_reference(self) -> np.ndarray:
        return self._q.copy()

    def get_state(self) -> np.ndarray:
        return np.concatenate([[self._steps], self._q, self._target])

    def set_state(self, state: np.ndarray) -> None:
        n = self.config.joints
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (1 + 2 * n,):
            raise ValueError(f"mock.set_state: expected shape ({1 + 2 * n},), got {state.shape}")
        self._steps = int(state[0])
        self._q = state[1:1 + n].copy()
        self._target = state[1 + n:].copy()
