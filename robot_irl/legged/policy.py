"""A trained legged PPO checkpoint as a deployable policy: proprioception in, 12 joint targets out.

``LeggedPolicy("runs/go1/checkpoint")`` acts through the driver contract (:class:`~robot_irl.core.contracts.Policy`):
per step it builds the proprioceptive observation from the driver's ``observation.state`` (joint positions and
velocities, IMU orientation and gyro) + its velocity :attr:`~LeggedPolicy.command` + its own last action with the
*same* function the training env used (:func:`robot_irl.legged.observations.proprio_from_state`, with the
:class:`~robot_irl.legged.observations.ProprioSpec` stored in the checkpoint), pushes it into its own history
buffer (RMA: 50 steps, HIB: 8; restarted by :meth:`~LeggedPolicy.reset`), normalises with the statistics frozen
in the checkpoint and returns ``default pose + action_scale * action``: joint position targets, which the driver's
safety layer then clamps. Actions are deterministic (the Gaussian's mean; HIB's latent is ``mu``).

A policy trained with the gait prior (:mod:`robot_irl.legged.gait`, the ``gait`` of the env config in the
checkpoint) keeps its own gait clock: the time since :meth:`~LeggedPolicy.reset` (its step count times the
policy period), which enters the observation as the env's does, and, with the trot generator, adds
:func:`~robot_irl.legged.gait.trot_offsets` to the targets exactly as the env did in training.

Deployable kinds: ``dr``, ``rma`` (adaptation module + teacher actor) and ``hib``. An ``oracle`` needs the
privileged dynamics vector, which no real robot measures: it acts only where the observation carries it
(``observation["privileged"]``; the simulated Go1's sim-only ``observation.environment_state`` entries
``privileged.*``, found by :meth:`~LeggedPolicy.check_features`; the vec env through
:meth:`~LeggedPolicy.act_batch`), and says so otherwise.

:meth:`~LeggedPolicy.act_batch` is the batched form for the vec env: raw proprioceptive histories ``(N, H, D)``
(and the privileged vectors for an oracle) -> env actions ``(N, 12)`` (nominally in [-1, 1]).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from robot_irl.core.contracts import Policy, RobotDriver


class LeggedPolicyError(ValueError):
    """A legged checkpoint that does not fit a driver, or an observation the policy cannot act on."""


class LeggedPolicy(Policy):
    """Acts with a checkpoint written by :func:`robot_irl.legged.train.train_legged` (a folder, or a run folder)."""

    name = "legged"
    inputs = "sensors"  # acts on observation.state alone (joint states + IMU); an oracle needs the observation

    def __init__(self, checkpoint: str | Path, device: str = "cpu", command=(0.0, 0.0, 0.0),
                 num_threads: int | None = None) -> None:
        from robot_irl.learn.ppo import HistoryBuffer
        from robot_irl.legged.gait import GaitConfig
        from robot_irl.legged.observations import ProprioSpec
        from robot_irl.legged.train import load_ppo_checkpoint

        if num_threads:
            torch.set_num_threads(num_threads)
        self.ppo, self.config = load_ppo_checkpoint(checkpoint, device)
        self.checkpoint = Path(self.config["path"])
        self.device = torch.device(device)
        self.kind = self.ppo.kind
        self.spec = ProprioSpec.from_dict(self.config["proprio_spec"]) if "proprio_spec" in self.config \
            else ProprioSpec()
        if self.spec.obs_dim != self.ppo.obs_dim:
            raise LeggedPolicyError(f"{self.checkpoint}: the observation spec gives {self.spec.obs_dim} values, the "
                                    f"network takes {self.ppo.obs_dim}")
        env = self.config.get("env", {}).get("config", {})
        self.action_scale = float(self.config.get("action_scale", env.get("action_scale", 0.25)))
        self.action_clip = float(env.get("action_clip", 10.0))
        train_clip = float(self.config.get("train", {}).get("clip_actions", 0.0) or 0.0)
        if train_clip:
            self.action_clip = min(self.action_clip, train_clip)
        self.default_pose = np.asarray(self.spec.default_pose, dtype=np.float32)
        self.dt = float(self.config.get("dt", 0.02))
        self.gait = GaitConfig.from_dict(self.config.get("env", {}).get("gait", env.get("gait", {})),
                                         where=f"{self.checkpoint}: gait")
        self.steps = 0  # policy steps since reset(): the gait clock
        self.history_length = self.ppo.history_length
        self.history = HistoryBuffer(1, self.history_length, self.ppo.obs_dim, self.device)
        self.command = np.asarray(command, dtype=np.float32)
        self.last_action = np.zeros(self.ppo.act_dim, dtype=np.float32)
        self._privileged_index: np.ndarray | None = None  # oracle: where environment_state holds the vector
        if self.kind == "oracle":
            self.inputs = "observation"

    @classmethod
    def from_driver(cls, driver: RobotDriver, seed: int | None = 0, noise: float = 0.0,
                    checkpoint: str | Path | None = None, **kwargs) -> LeggedPolicy:
        """Load ``checkpoint`` and check that ``driver`` observes and acts with the features it was trained on."""
        if checkpoint is None:
            raise ValueError("LeggedPolicy.from_driver needs checkpoint=PATH")
        policy = cls(checkpoint, **kwargs)
        policy.check_features(driver)
        command = getattr(driver, "command", None)
        if command is not None:
            policy.set_command(command)
        return policy

    # -- description ---------------------------------------------------------------------------------------------
    @property
    def deployable(self) -> bool:
        return self.kind != "oracle"

    def state_names(self) -> list[str]:
        from robot_irl.legged.observations import state_names

        return list(state_names(self.spec.joint_names))

    def action_names(self) -> list[str]:
        return [f"{j}.pos" for j in self.spec.joint_names]

    def check_features(self, driver: RobotDriver) -> None:
        """Raise :class:`LeggedPolicyError` naming the first mismatch between the driver's features and the
        checkpoint's observation/action layout."""
        obs = driver.observation_features
        have = list(obs["observation.state"].names or ()) if "observation.state" in obs else None
        if have != self.state_names():
            raise LeggedPolicyError(f"{self.checkpoint}: trained on observation.state = {self.state_names()}; "
                                    f"{driver.name} has {have if have is not None else 'no observation.state'}")
        actions = list(driver.action_features["action"].names or ())
        if actions != self.action_names():
            raise LeggedPolicyError(f"{self.checkpoint}: acts on {self.action_names()}; {driver.name} takes "
                                    f"{actions}")
        if self.kind == "oracle":
            names = list(self.config.get("privileged_names", []))
            env = obs.get("observation.environment_state")
            have = list(env.names or ()) if env is not None else []
            wanted = [f"privileged.{n}" for n in names]
            if not names or any(w not in have for w in wanted):
                raise LeggedPolicyError(f"{self.checkpoint}: an oracle policy needs the privileged dynamics "
                                        f"{names}, which {driver.name} does not observe (not deployable)")
            self._privileged_index = np.array([have.index(w) for w in wanted])

    # -- acting -----------------------------------------------------------------------------------------------------
    def set_command(self, command) -> None:
        cmd = np.asarray(command, dtype=np.float32).reshape(-1)
        if cmd.shape != (3,) or not np.all(np.isfinite(cmd)):
            raise LeggedPolicyError(f"LeggedPolicy.command: expected 3 finite values (vx, vy, wz), got {command!r}")
        self.command = cmd

    def reset(self, seed: int | None = None) -> None:
        self.history.reset()
        self.last_action = np.zeros(self.ppo.act_dim, dtype=np.float32)
        self.steps = 0

    @property
    def time_s(self) -> float:
        """Seconds since :meth:`reset` (the gait clock's time of the next :meth:`act`)."""
        return self.steps * self.dt

    def gait_offsets(self) -> np.ndarray:
        """(12,) the trot generator's joint-target offsets for the next :meth:`act` (zeros without one)."""
        from robot_irl.legged.gait import trot_offsets

        return trot_offsets(self.time_s, self.command, self.gait).astype(np.float32)

    @torch.no_grad()
    def act_batch(self, proprio_history, privileged=None) -> np.ndarray:
        """Deterministic env actions ``(N, act_dim)`` for raw proprio histories ``(N, H, D)`` (``(N, D)`` for a
        policy without history) and, for an oracle, the privileged vectors ``(N, P)``."""
        hist = torch.as_tensor(np.asarray(proprio_history, dtype=np.float32), device=self.device)
        if hist.ndim == 2:
            hist = hist[:, None]
        if hist.shape[1:] != (self.history_length, self.ppo.obs_dim):
            raise LeggedPolicyError(f"LeggedPolicy.act_batch: expected histories (N, {self.history_length}, "
                                    f"{self.ppo.obs_dim}), got {tuple(hist.shape)}")
        obs = {"proprio": hist[:, -1]}
        if self.kind == "oracle":
            if privileged is None:
                raise LeggedPolicyError(f"{self.checkpoint}: an oracle policy acts on the privileged dynamics "
                                        "vector, which this observation does not carry (it is not deployable on "
                                        "a robot; evaluate it in the vec env)")
            obs["privileged"] = torch.as_tensor(np.asarray(privileged, dtype=np.float32), device=self.device)
        out = self.ppo.act(obs, hist if self.history_length > 1 else None, deterministic=True)
        action = out["action"].clamp(-self.action_clip, self.action_clip)
        return action.cpu().numpy().astype(np.float32)

    def proprio(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """The proprioceptive observation (D,) of a driver observation, as the env computes it."""
        from robot_irl.legged.observations import proprio_from_state

        if "observation.state" not in observation:
            raise LeggedPolicyError(f"LeggedPolicy.act: the observation has no 'observation.state' (keys: "
                                    f"{sorted(observation)})")
        state = np.asarray(observation["observation.state"], dtype=np.float64)
        if not np.all(np.isfinite(state)):
            raise LeggedPolicyError("LeggedPolicy.act: observation.state holds NaN or inf")
        try:
            return proprio_from_state(state, self.command, self.last_action, self.spec, self.time_s)
        except ValueError as e:
            raise LeggedPolicyError(f"LeggedPolicy.act: {e}") from None

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """12 joint position targets (rad) for one driver observation."""
        x = self.proprio(observation)
        hist = self.history.push(torch.as_tensor(x[None], device=self.device))
        privileged = observation.get("privileged")
        if privileged is None and self._privileged_index is not None:
            privileged = np.asarray(observation["observation.environment_state"])[self._privileged_index]
        action = self.act_batch(hist.cpu().numpy(), None if privileged is None else np.atleast_2d(privileged))[0]
        target = self.default_pose + self.gait_offsets() + self.action_scale * action
        self.last_action = action
        self.steps += 1
        return target.astype(np.float32)
