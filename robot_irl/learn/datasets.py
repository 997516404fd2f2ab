"""Recorded datasets (LeRobot folders, D4RL-style HDF5 files) as arrays ready for learning.

Everything is read from the parquet files with :func:`robot_irl.data.lerobot_io.read_frames` (no video decoding,
no LeRobotDataset indexing): a few thousand frames load in milliseconds.

Three small, serialisable pieces turn frames into learning inputs and back; they are stored in every checkpoint, so
a policy encodes the live observation with exactly the code and the constants used for training:

* :class:`FeatureSpec` (a :class:`~robot_irl.core.config.Config`): which observation keys, which action
  representation, which derived features.
* :class:`ObservationEncoder`: concatenates the chosen observation vectors, adds each object's position relative to
  the end effector (what a grasping policy needs most, and what a small MLP learns slowly from absolute positions),
  optionally the *goal* object's relative position and orientation (the object the instruction names, so the
  network need not learn to pick an object's coordinates by a one-hot: a multiplicative interaction a small MLP
  learns poorly from a few demonstrations), and the instruction as a one-hot over a fixed vocabulary
  (:class:`GoalVocabulary`).
* :class:`ActionCodec`: the action representation. ``delta`` (the default) learns the end-effector target relative
  to the current end-effector pose: position offset and the rotation taking the current orientation to the target
  (as a rotation vector, from quaternions, so the axis-angle flip near the gripper-down angle of pi never shows up
  in the targets). Deltas are small, bounded by the safety layer's per-tick step and translation invariant, so one
  demonstration teaches the same motion wherever the object is; absolute targets must be relearned for every
  position. ``absolute`` keeps the recorded action as is (e.g. joint targets). ``binary_gripper`` sends the
  gripper fully open or closed by the sign of the prediction: regression averages open and closed near the grasp
  into a half-closed command that neither grasps nor lets go.

:func:`load_offline_data` returns an :class:`OfflineData`: observations, learning targets, rewards, successes,
terminals, episode indices and next-frame indices, with per-frame instruction strings.

For TD learners (IQL) every preprocessing choice is a field of :class:`TDDataConfig`, saved with the run: which
reward column, reward scaling (``d4rl_locomotion``: ``1000 / (max return - min return)``; ``antmaze``: ``r - 1``),
state and action normalisation, whether success ends the task (a *terminal*: no bootstrapping past it) and what
happens at an episode's last frame that is not terminal (a *timeout*): ``drop`` the transition (D4RL's
``qlearning_dataset`` semantics: its successor belongs to another episode) or ``bootstrap_self`` (keep it, with
the frame itself as the next state). :meth:`OfflineData.transitions` applies them; behaviour cloning keeps using
every frame. :func:`load_d4rl_offline` reads a D4RL file into the same :class:`OfflineData` (plain vector
observations; the original feature names when the file was exported from one of our recordings), and
:func:`load_any` dispatches on the path (``.hdf5``/``.h5`` file or LeRobot folder).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robot_irl.core.config import Config, check

STATE_KEY, ENV_KEY = "observation.state", "observation.environment_state"
EEF_POSE = ("eef.x", "eef.y", "eef.z", "eef.qw", "eef.qx", "eef.qy", "eef.qz")
EE_TARGET_ACTIONS = ("x", "y", "z", "ax", "ay", "az", "gripper")


class LearningDataError(ValueError):
    """A dataset or observation that cannot be turned into learning inputs (the message says which and why)."""


@dataclass
class FeatureSpec(Config):
    """What a learner sees and predicts; saved in every checkpoint."""

    observation_keys: tuple[str, ...] = ("observation.state", "observation.environment_state")
    action_key: str = "action"
    action_mode: Literal["delta", "absolute"] = "delta"
    relative_positions: bool = True  # add <object>.xyz - eef.xyz for every object with an observed position
    goal_features: bool = False  # add the goal object's xyz - eef.xyz and orientation (the object the instruction
    #                              names, by robot_irl.collect.language for language_task)
    goal: bool = True  # append the instruction as a one-hot over the vocabulary
    language_task: str = "lift"
    binary_gripper: bool = False  # delta mode: send the gripper fully open/closed by the predicted sign

    def validate(self) -> None:
        check(len(self.observation_keys) > 0, "FeatureSpec.observation_keys", "needs at least one key")
        check(len(set(self.observation_keys)) == len(self.observation_keys), "FeatureSpec.observation_keys",
              f"duplicates in {list(self.observation_keys)}")
        bad = [k for k in self.observation_keys if not k.startswith("observation.") or ".images." in k]
        check(not bad, "FeatureSpec.observation_keys", f"must be vector observation features, got {bad}")


D4RL_SUFFIXES = (".hdf5", ".h5")
REWARD_MODES = ("none", "d4rl_locomotion", "antmaze")


@dataclass
class TDDataConfig(Config):
    """How recorded frames become (s, a, r, s', done) transitions for TD learners; saved with every run."""

    reward_key: str = ""  # "": next.reward (LeRobot) / rewards (D4RL); e.g. next.reward_true, infos/rewards_true
    reward_mode: Literal["none", "d4rl_locomotion", "antmaze"] = "none"  # then r * reward_scale + reward_shift
    reward_scale: float = 1.0
    reward_shift: float = 0.0
    normalize_states: bool = True  # standardise observations with statistics of the training data
    action_normalization: Literal["minmax", "standard", "none"] = "minmax"  # minmax: [-1, 1] for a tanh actor
    terminal_on_success: bool = False  # LeRobot: the first frame whose success_key is true ends the task
    success_key: str = "next.success"
    timeouts: Literal["drop", "bootstrap_self"] = "drop"  # an episode's last frame that is not terminal

    def validate(self) -> None:
        check(self.reward_scale != 0, "TDDataConfig.reward_scale", "must not be 0")

    def reward_column(self, kind: str) -> str:
        """The reward column for a ``lerobot`` dataset or a ``d4rl`` file."""
        return self.reward_key or ("rewards" if kind == "d4rl" else "next.reward")


# ---------------------------------------------------------------------------------------------------------------
# batched rotations (quaternions are (w, x, y, z), as in MuJoCo and robot_irl.drivers.robosuite_arm)
# ---------------------------------------------------------------------------------------------------------------
def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton products of (..., 4) quaternions."""
    w1, x1, y1, z1 = np.moveaxis(a, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(b, -1, 0)
    return np.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2], axis=-1)


def quat_conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions -> (..., 3) rotation vectors with angle in [0, pi]."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    q = np.where(q[..., :1] < 0, -q, q)
    s = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., :1])
    scale = np.where(s > 1e-12, angle / np.maximum(s, 1e-12), 2.0)  # small angles: rotvec ~ 2 * xyz
    return q[..., 1:] * scale


def rotvec_to_quat(r: np.ndarray) -> np.ndarray:
    r = np.asarray(r, dtype=np.float64)
    angle = np.linalg.norm(r, axis=-1, keepdims=True)
    axis = r / np.maximum(angle, 1e-12)
    return np.concatenate([np.cos(angle / 2), axis * np.sin(angle / 2)], axis=-1)


# ---------------------------------------------------------------------------------------------------------------
# the goal vocabulary
# ---------------------------------------------------------------------------------------------------------------
class GoalVocabulary:
    """A fixed, ordered list of instructions; each instruction is encoded as a one-hot vector over it."""

    def __init__(self, instructions: Sequence[str]) -> None:
        instructions = [str(t) for t in instructions]
        if len(set(instructions)) != len(instructions):
            raise LearningDataError(f"GoalVocabulary: duplicate instructions in {instructions}")
        self.instructions = instructions
        self._index = {t: i for i, t in enumerate(instructions)}

    def __len__(self) -> int:
        return len(self.instructions)

    def index(self, task: str) -> int:
        if task not in self._index:
            raise LearningDataError(f"instruction {task!r} is not in the policy's goal vocabulary "
                                    f"{self.instructions}")
        return self._index[task]

    def encode(self, tasks: Sequence[str]) -> np.ndarray:
        """(N, V) float32 one-hot rows for N instruction strings."""
        out = np.zeros((len(tasks), len(self)), dtype=np.float32)
        if len(self):
            out[np.arange(len(tasks)), [self.index(str(t)) for t in tasks]] = 1.0
        return out


# ---------------------------------------------------------------------------------------------------------------
# observation encoding
# ---------------------------------------------------------------------------------------------------------------
def _object_prefixes(names: Sequence[str]) -> list[str]:
    """Prefixes P with P.x, P.y, P.z all in ``names`` (object positions), excluding the end effector."""
    prefixes = dict.fromkeys(n.rsplit(".", 1)[0] for n in names if "." in n)
    return [p for p in prefixes if p != "eef" and all(f"{p}.{a}" in names for a in "xyz")]


class ObservationEncoder:
    """Observation dict (+ instruction) -> one float32 vector, for a batch of frames or a single frame.

    ``names`` maps observation keys to the names of their entries (the dataset's / driver's feature names); it
    must cover ``spec.observation_keys`` and, for the derived features, the keys holding ``eef.*`` and object poses.
    Output: the observation vectors, then each object's position relative to the end effector
    (``relative_positions``), then the goal object's relative position and orientation (``goal_features``), then
    the goal one-hot (``goal``).
    """

    def __init__(self, spec: FeatureSpec, names: Mapping[str, Sequence[str]], vocabulary: Sequence[str] = ()):
        self.spec = spec
        derived = spec.relative_positions or spec.goal_features
        keys = list(spec.observation_keys) + [k for k in (STATE_KEY, ENV_KEY) if derived and k in names
                                               and k not in spec.observation_keys]
        missing = [k for k in spec.observation_keys if k not in names]
        if missing:
            raise LearningDataError(f"observation keys {missing} are not among the features {sorted(names)}")
        self.names = {k: [str(n) for n in names[k]] for k in keys}
        self.vocabulary = GoalVocabulary(vocabulary if spec.goal or spec.goal_features else ())
        self._eef = self._locate(("eef.x", "eef.y", "eef.z")) if derived else None
        if derived and self._eef is None:
            raise LearningDataError(f"relative_positions / goal_features need eef.x/y/z in one of {keys}")
        self.objects = [p for k in keys for p in _object_prefixes(self.names[k])]
        self._positions = {p: self._locate([f"{p}.{a}" for a in "xyz"]) for p in self.objects}
        self._goals = self._goal_objects() if spec.goal_features else []

    def _locate(self, wanted: Sequence[str]) -> tuple[str, np.ndarray] | None:
        for key, names in self.names.items():
            if all(w in names for w in wanted):
                return key, np.array([names.index(w) for w in wanted])
        return None

    def _goal_objects(self) -> list[str]:
        """The object each vocabulary instruction names (its pose must be observed, with its orientation)."""
        from robot_irl.collect.language import InstructionError, goal_object

        goals = []
        for text in self.vocabulary.instructions:
            try:
                obj = goal_object(self.spec.language_task, text, self.objects)
            except InstructionError as e:
                raise LearningDataError(f"FeatureSpec.goal_features: {e}") from None
            if self._locate([f"{obj}.{k}" for k in ("qw", "qx", "qy", "qz")]) is None:
                raise LearningDataError(f"FeatureSpec.goal_features: no orientation of {obj!r} in {list(self.names)}")
            goals.append(obj)
        if not goals:
            raise LearningDataError("FeatureSpec.goal_features needs a non-empty goal vocabulary")
        return goals

    @property
    def feature_names(self) -> list[str]:
        names = [f"{k}:{n}" for k in self.spec.observation_keys for n in self.names[k]]
        if self.spec.relative_positions:
            names += [f"relative:{p}.{a}" for p in self.objects for a in "xyz"]
        if self.spec.goal_features:
            names += [f"goal_object:{k}" for k in ("dx", "dy", "dz", "qw", "qx", "qy", "qz")]
        if self.spec.goal:
            names += [f"goal:{t}" for t in self.vocabulary.instructions]
        return names

    @property
    def dim(self) -> int:
        return len(self.feature_names)

    def _gather(self, arrays: Mapping[str, np.ndarray], located: tuple[str, np.ndarray]) -> np.ndarray:
        key, idx = located
        return arrays[key][:, idx]

    def _goal_part(self, arrays: Mapping[str, np.ndarray], goal_index: np.ndarray, eef: np.ndarray) -> np.ndarray:
        rows = np.arange(len(goal_index))
        goals = self._goals
        pos = np.stack([self._gather(arrays, self._positions[g]) for g in goals], axis=1)[rows, goal_index]
        quats = np.stack([self._gather(arrays, self._locate([f"{g}.{k}" for k in ("qw", "qx", "qy", "qz")]))
                          for g in goals], axis=1)[rows, goal_index]
        quats = np.where(quats[:, :1] < 0, -quats, quats)  # q and -q are the same orientation
        return np.concatenate([pos - eef, quats], axis=1)

    def encode(self, observation: Mapping[str, Any], tasks: Sequence[str] | str | None = None) -> np.ndarray:
        """(N, dim) for batched observations ((N, D) arrays and N tasks), (dim,) for a single frame."""
        arrays = {}
        for key in self.names:
            if key not in observation:
                raise LearningDataError(f"observation lacks {key!r} (has {sorted(observation)})")
            arrays[key] = np.asarray(observation[key], dtype=np.float32)
        single = arrays[self.spec.observation_keys[0]].ndim == 1
        if single:
            arrays = {k: v.reshape(1, -1) for k, v in arrays.items()}
            tasks = [tasks] if isinstance(tasks, str) or tasks is None else tasks
        n = len(next(iter(arrays.values())))
        for key, arr in arrays.items():
            if arr.shape != (n, len(self.names[key])):
                raise LearningDataError(f"{key}: expected shape {(n, len(self.names[key]))} for {n} frame(s), "
                                        f"got {arr.shape}")
        parts = [arrays[k] for k in self.spec.observation_keys]
        eef = self._gather(arrays, self._eef) if self._eef is not None else None
        if self.spec.relative_positions:
            parts += [self._gather(arrays, self._positions[p]) - eef for p in self.objects]
        if self.spec.goal or self.spec.goal_features:
            if tasks is None or any(t is None for t in tasks):
                raise LearningDataError("this encoder needs the instruction (observation['task']) of every frame")
            if len(tasks) != n:
                raise LearningDataError(f"{len(tasks)} instructions for {n} frames")
            if self.spec.goal_features:
                goal_index = np.array([self.vocabulary.index(str(t)) for t in tasks], dtype=np.int64)
                parts.append(self._goal_part(arrays, goal_index, eef))
            if self.spec.goal:
                parts.append(self.vocabulary.encode(list(tasks)))
        out = np.concatenate(parts, axis=1).astype(np.float32)
        finite = np.isfinite(out).all(axis=1)
        if not finite.all():
            where = "" if single else f" at frame {int(np.argmin(finite))}"
            raise LearningDataError(f"observation has non-finite values (NaN/inf){where}")
        return out[0] if single else out

    def to_dict(self) -> dict:
        return {"spec": self.spec.to_dict(), "names": self.names, "vocabulary": self.vocabulary.instructions}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ObservationEncoder:
        return cls(FeatureSpec.from_dict(d["spec"]), d["names"], d.get("vocabulary", ()))


# ---------------------------------------------------------------------------------------------------------------
# action representation
# ---------------------------------------------------------------------------------------------------------------
class ActionCodec:
    """Recorded actions <-> learning targets (see the module docstring for ``delta`` vs ``absolute``)."""

    def __init__(self, mode: str, action_names: Sequence[str], state_key: str = "observation.state",
                 state_names: Sequence[str] = (), binary_gripper: bool = False) -> None:
        self.mode, self.action_names = mode, [str(n) for n in action_names]
        self.binary_gripper = bool(binary_gripper)
        self.state_key, self.state_names = state_key, [str(n) for n in state_names]
        if mode not in ("delta", "absolute"):
            raise LearningDataError(f"action mode must be 'delta' or 'absolute', got {mode!r}")
        if mode == "delta":
            if tuple(self.action_names) != EE_TARGET_ACTIONS:
                raise LearningDataError(f"action_mode='delta' needs end-effector target actions "
                                        f"{list(EE_TARGET_ACTIONS)}, the data has {self.action_names}")
            missing = [n for n in EEF_POSE if n not in self.state_names]
            if missing:
                raise LearningDataError(f"action_mode='delta' needs the end-effector pose in {state_key}; "
                                        f"missing {missing}")
            self._eef = np.array([self.state_names.index(n) for n in EEF_POSE])

    @property
    def dim(self) -> int:
        return len(self.action_names)

    def _eef_pose(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pose = np.asarray(state, dtype=np.float64)[..., self._eef]
        return pose[..., :3], pose[..., 3:]

    def encode(self, actions: np.ndarray, states: np.ndarray | None = None) -> np.ndarray:
        """Learning targets for recorded ``actions`` taken in ``states`` (the frames' ``state_key`` vectors)."""
        actions = np.asarray(actions, dtype=np.float64)
        if self.mode == "absolute":
            return actions.astype(np.float32)
        pos, quat = self._eef_pose(states)
        delta_rot = quat_to_rotvec(quat_mul(rotvec_to_quat(actions[..., 3:6]), quat_conj(quat)))
        return np.concatenate([actions[..., :3] - pos, delta_rot, actions[..., 6:]], axis=-1).astype(np.float32)

    def decode(self, targets: np.ndarray, states: np.ndarray | None = None) -> np.ndarray:
        """Actions to send for predicted ``targets`` in ``states``: the inverse of :meth:`encode`."""
        targets = np.asarray(targets, dtype=np.float64)
        if self.mode == "absolute":
            return targets.astype(np.float32)
        pos, quat = self._eef_pose(states)
        rot = quat_to_rotvec(quat_mul(rotvec_to_quat(targets[..., 3:6]), quat))
        gripper = np.where(targets[..., 6:] > 0, 1.0, -1.0) if self.binary_gripper \
            else np.clip(targets[..., 6:], -1.0, 1.0)
        return np.concatenate([pos + targets[..., :3], rot, gripper], axis=-1).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mode": self.mode, "action_names": self.action_names, "state_key": self.state_key,
                "state_names": self.state_names, "binary_gripper": self.binary_gripper}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActionCodec:
        return cls(d["mode"], d["action_names"], d.get("state_key", STATE_KEY), d.get("state_names", ()),
                   bool(d.get("binary_gripper", False)))


# ---------------------------------------------------------------------------------------------------------------
# the data
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class OfflineData:
    """Frames of one or more datasets, in order, episode after episode.

    ``next_index[i]`` is the frame after ``i`` in its episode (``i`` itself for an episode's last frame, where
    ``last[i]`` is true). ``terminals[i]`` marks a frame whose transition ends the task (no bootstrapping past it);
    an episode's last frame that is not terminal ended on a time limit (or the operator): a *timeout*.
    """

    observations: np.ndarray  # (N, F) float32, encoded
    actions: np.ndarray  # (N, A) float32, learning targets
    rewards: np.ndarray  # (N,) float32 (zeros when the dataset has no next.reward)
    successes: np.ndarray  # (N,) bool (false when the dataset has no next.success)
    episode_index: np.ndarray  # (N,) int64, unique across the datasets loaded together
    tasks: np.ndarray  # (N,) object: the instruction in force at each frame
    sources: list[str] = field(default_factory=list)
    terminals: np.ndarray | None = None  # (N,) bool; None: no frame is terminal

    def __post_init__(self) -> None:
        n = len(self.observations)
        self.terminals = np.zeros(n, bool) if self.terminals is None else np.asarray(self.terminals, bool)
        for name in ("actions", "rewards", "successes", "episode_index", "tasks", "terminals"):
            if len(getattr(self, name)) != n:
                raise LearningDataError(f"OfflineData.{name} has {len(getattr(self, name))} rows for {n} frames")
        starts = np.r_[True, self.episode_index[1:] != self.episode_index[:-1]] if n else np.zeros(0, bool)
        self.last = np.r_[starts[1:], True] if n else np.zeros(0, bool)
        self.next_index = np.where(self.last, np.arange(n), np.arange(n) + 1)

    def __len__(self) -> int:
        return len(self.observations)

    @property
    def episodes(self) -> np.ndarray:
        """Episode ids in order of appearance."""
        _, first = np.unique(self.episode_index, return_index=True)
        return self.episode_index[np.sort(first)]

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    def select_episodes(self, episode_ids: Sequence[int]) -> OfflineData:
        """The frames of the given episodes (in dataset order)."""
        unknown = sorted(set(int(e) for e in episode_ids) - set(self.episodes.tolist()))
        if unknown:
            raise LearningDataError(f"episodes {unknown} are not in the data (it has {self.num_episodes})")
        mask = np.isin(self.episode_index, np.asarray(list(episode_ids), dtype=np.int64))
        return OfflineData(self.observations[mask], self.actions[mask], self.rewards[mask], self.successes[mask],
                           self.episode_index[mask], self.tasks[mask], list(self.sources), self.terminals[mask])

    def replace_rewards(self, rewards: np.ndarray) -> OfflineData:
        """The same frames with other rewards."""
        return OfflineData(self.observations, self.actions, np.asarray(rewards, np.float32), self.successes,
                           self.episode_index, self.tasks, list(self.sources), self.terminals)

    def tensors(self, device: str = "cpu") -> dict:
        """Every frame as torch tensors on ``device``: ``obs``, ``action``, ``reward``, ``next_obs``, ``last``,
        ``done`` (behaviour cloning's view)."""
        import torch

        obs = torch.as_tensor(self.observations, device=device)
        return {"obs": obs, "action": torch.as_tensor(self.actions, device=device),
                "reward": torch.as_tensor(self.rewards, device=device),
                "next_obs": obs[torch.as_tensor(self.next_index, device=device)],
                "last": torch.as_tensor(self.last, device=device, dtype=torch.float32),
                "done": torch.as_tensor(self.terminals, device=device, dtype=torch.float32)}

    def after_terminal(self) -> np.ndarray:
        """(N,) bool: frames that come after a terminal frame of their episode (the task had already ended)."""
        return _after_first(self.terminals, self.episode_index)

    def transitions(self, timeouts: str = "drop") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(frames, next_frames, done)`` of the TD transitions.

        Every frame is a transition to the next frame of its episode, except: frames after a terminal (the task had
        ended); and an episode's last frame that is not terminal (a timeout), which ``timeouts="drop"`` removes
        (its true successor was not recorded) and ``"bootstrap_self"`` keeps with itself as the next frame. A
        terminal frame has ``done`` true (its next frame is never used).
        """
        if timeouts not in ("drop", "bootstrap_self"):
            raise LearningDataError(f"timeouts must be 'drop' or 'bootstrap_self', got {timeouts!r}")
        keep = ~self.after_terminal()
        if timeouts == "drop":
            keep &= ~(self.last & ~self.terminals)
        frames = np.flatnonzero(keep)
        return frames, self.next_index[frames], self.terminals[frames]

    def transition_tensors(self, device: str = "cpu", timeouts: str = "drop") -> dict:
        """The transitions (:meth:`transitions`) as tensors: ``obs``, ``action``, ``reward``, ``next_obs``,
        ``done`` (float, 1 where terminal)."""
        import torch

        frames, nxt, done = self.transitions(timeouts)
        if not len(frames):
            raise LearningDataError(f"no transitions left in {self.sources or 'the data'} ({len(self)} frames, "
                                    f"{self.num_episodes} episodes) with timeouts={timeouts!r}")
        obs = torch.as_tensor(self.observations, device=device)
        return {"obs": obs[torch.as_tensor(frames, device=device)],
                "action": torch.as_tensor(self.actions[frames], device=device),
                "reward": torch.as_tensor(self.rewards[frames], device=device),
                "next_obs": obs[torch.as_tensor(nxt, device=device)],
                "done": torch.as_tensor(done, device=device, dtype=torch.float32)}


def _dataset_info(root: Path) -> dict:
    path = root / "meta" / "info.json"
    if not path.is_file():
        raise LearningDataError(f"{root} is not a LeRobot dataset: {path} does not exist")
    return json.loads(path.read_text(encoding="utf-8"))


def dataset_tasks(root: str | Path) -> list[str]:
    """The dataset's instructions, ordered by LeRobot task index."""
    import pyarrow.parquet as pq

    path = Path(root) / "meta" / "tasks.parquet"
    if not path.is_file():
        raise LearningDataError(f"{root}: no {path.name} (LeRobot's task table) in meta/")
    table = pq.read_table(path).to_pandas()
    return [str(t) for t in table.sort_values("task_index").index]


def feature_names(root: str | Path) -> dict[str, list[str]]:
    """Per-entry names of the dataset's vector features (from ``meta/info.json``)."""
    info = _dataset_info(Path(root))
    return {k: list(ft.get("names") or [f"{k}.{i}" for i in range(int(np.prod(ft["shape"])))])
            for k, ft in info["features"].items() if ft["dtype"] not in ("video", "image", "string")}


def read_dataset_frames(root: str | Path, spec: FeatureSpec, reward_key: str = "next.reward",
                        success_key: str = "next.success", require_reward: bool = False) -> dict[str, np.ndarray]:
    """The columns a learner needs, as (N, D) arrays, plus ``task`` strings and ``episode_index``.

    The ``reward_key`` / ``success_key`` columns come back as ``next.reward`` / ``next.success`` (zeros / false
    when the dataset lacks them, unless ``require_reward``).
    """
    from robot_irl.data.lerobot_io import read_frames

    root = Path(root)
    names = feature_names(root)
    wanted = [*spec.observation_keys, spec.action_key]
    missing = [k for k in wanted if k not in names]
    if missing:
        raise LearningDataError(f"{root}: features {missing} are not in the dataset (it has {sorted(names)})")
    if require_reward and reward_key not in names:
        raise LearningDataError(f"{root}: no reward column {reward_key!r} (features: {sorted(names)}); label "
                                "rewards first or set TDDataConfig.reward_key")
    optional = [k for k in dict.fromkeys((reward_key, success_key)) if k in names]
    derived = spec.relative_positions or spec.goal_features
    extra = [STATE_KEY] if spec.action_mode == "delta" or derived else []
    extra += [ENV_KEY] if derived and ENV_KEY in names else []
    wanted += [k for k in extra if k not in wanted]
    frames = read_frames(root, [*wanted, *optional, "episode_index", "task_index"])
    n = len(frames["episode_index"])
    out = {k: frames[k].reshape(n, -1) for k in wanted}
    tasks = np.array(dataset_tasks(root), dtype=object)
    out["task"] = tasks[frames["task_index"]]
    out["episode_index"] = frames["episode_index"].astype(np.int64)
    for key in (reward_key, success_key):
        if key in frames and np.asarray(frames[key]).reshape(n, -1).shape[1] != 1:
            raise LearningDataError(f"{root}: {key!r} must hold one value per frame, got shape "
                                    f"{np.asarray(frames[key]).shape}")
    out["next.reward"] = frames[reward_key].reshape(n).astype(np.float32) if reward_key in frames \
        else np.zeros(n, np.float32)
    out["next.success"] = frames[success_key].reshape(n).astype(bool) if success_key in frames \
        else np.zeros(n, bool)
    return out


def load_offline_data(roots: str | Path | Sequence[str | Path], spec: FeatureSpec | None = None,
                      vocabulary: Sequence[str] | None = None, reward_key: str = "next.reward",
                      success_key: str = "next.success", require_reward: bool = False,
                      ) -> tuple[OfflineData, ObservationEncoder, ActionCodec]:
    """Load one or more datasets recorded with the same features.

    ``vocabulary``: the instructions the goal one-hot ranges over (every instruction in the data must be in it);
    ``None`` uses the instructions found in the data, sorted. ``reward_key``/``success_key``: the columns read as
    rewards and successes. Returns the data and the encoder/codec to store with the checkpoint.
    """
    spec = spec or FeatureSpec()
    roots = [Path(roots)] if isinstance(roots, (str, Path)) else [Path(r) for r in roots]
    if not roots:
        raise LearningDataError("load_offline_data: no dataset given")
    names = feature_names(roots[0])
    for root in roots[1:]:
        other = feature_names(root)
        differ = [k for k in (*spec.observation_keys, spec.action_key) if other.get(k) != names.get(k)]
        if differ:
            raise LearningDataError(f"{root}: features {differ} differ from those of {roots[0]}")
    columns = [read_dataset_frames(root, spec, reward_key, success_key, require_reward) for root in roots]
    offset = 0
    for c in columns:  # unique episode ids across datasets
        c["episode_index"] = c["episode_index"] - c["episode_index"].min() + offset if len(c["episode_index"]) \
            else c["episode_index"]
        offset = int(c["episode_index"].max()) + 1 if len(c["episode_index"]) else offset
    merged = {k: np.concatenate([c[k] for c in columns]) for k in columns[0]}
    if vocabulary is None:
        vocabulary = sorted(set(merged["task"].tolist()))
    encoder = ObservationEncoder(spec, names, vocabulary)
    codec = ActionCodec(spec.action_mode, names[spec.action_key], STATE_KEY, names.get(STATE_KEY, ()),
                        spec.binary_gripper)
    lengths = np.cumsum([len(c["episode_index"]) for c in columns])
    for key in [*encoder.names, spec.action_key, "next.reward"]:
        finite = np.isfinite(np.asarray(merged[key], np.float64)).reshape(len(merged[key]), -1).all(axis=1)
        if not finite.all():
            i = int(np.argmin(finite))
            which = int(np.searchsorted(lengths, i, side="right"))
            local = i - (int(lengths[which - 1]) if which else 0)
            name = reward_key if key == "next.reward" else key
            raise LearningDataError(f"{roots[which]}: {name!r} has NaN/inf at frame {local}")
    observations = encoder.encode({k: merged[k] for k in encoder.names}, list(merged["task"]))
    states = merged.get(STATE_KEY)
    actions = codec.encode(merged[spec.action_key], states)
    data = OfflineData(observations, actions, merged["next.reward"], merged["next.success"],
                       merged["episode_index"], merged["task"], [str(r) for r in roots])
    return data, encoder, codec


# ---------------------------------------------------------------------------------------------------------------
# choosing features for a dataset, D4RL files, preprocessing for TD learners
# ---------------------------------------------------------------------------------------------------------------
def auto_feature_spec(root: str | Path, overrides: Mapping[str, Any] | None = None) -> FeatureSpec:
    """A :class:`FeatureSpec` that fits the dataset at ``root``, with ``overrides`` (FeatureSpec fields) on top.

    Fitted: ``observation_keys`` (state and environment state, those present), ``action_mode`` (``delta`` for
    end-effector target actions with the end-effector pose observed, else ``absolute``) and
    ``relative_positions`` (only when the end effector's position is observed). The result is saved with the run.
    """
    names = feature_names(root)
    overrides = dict(overrides or {})
    action_key = overrides.get("action_key", FeatureSpec.action_key)
    if action_key not in names:
        raise LearningDataError(f"{root}: no action feature {action_key!r} (features: {sorted(names)})")
    keys = [k for k in (STATE_KEY, ENV_KEY) if k in names]
    if not keys:
        raise LearningDataError(f"{root}: none of {[STATE_KEY, ENV_KEY]} among the features {sorted(names)}; "
                                "set features.observation_keys")
    state = names.get(STATE_KEY, [])
    delta = tuple(names[action_key]) == EE_TARGET_ACTIONS and all(n in state for n in EEF_POSE)
    has_eef = any(all(f"eef.{a}" in v for a in "xyz") for k, v in names.items() if k in (STATE_KEY, ENV_KEY))
    auto = {"observation_keys": keys, "action_mode": "delta" if delta else "absolute",
            "relative_positions": has_eef, "binary_gripper": False}
    return FeatureSpec.from_dict({**auto, **overrides}, where="features")


def reward_transform(config: TDDataConfig, rewards: np.ndarray, episode_index: np.ndarray) -> tuple[float, float]:
    """``(scale, shift)`` such that the learner's reward is ``r * scale + shift`` under ``config``.

    ``d4rl_locomotion`` divides by the spread of episode returns and multiplies by 1000 (the IQL paper's MuJoCo
    scaling); ``antmaze`` subtracts 1 (sparse 0/1 rewards become -1/0); ``reward_scale``/``reward_shift`` follow.
    """
    scale, shift = 1.0, 0.0
    if config.reward_mode == "d4rl_locomotion":
        _, inverse = np.unique(episode_index, return_inverse=True)
        returns = np.bincount(inverse, weights=np.asarray(rewards, np.float64))
        spread = float(returns.max() - returns.min()) if len(returns) else 0.0
        if not spread > 0:
            raise LearningDataError(f"TDDataConfig.reward_mode='d4rl_locomotion' needs episodes with different "
                                    f"returns; the {len(returns)} episode(s) all return {returns[:1].tolist()}")
        scale = 1000.0 / spread
    elif config.reward_mode == "antmaze":
        shift = -1.0
    return scale * config.reward_scale, shift * config.reward_scale + config.reward_shift


def _d4rl_names(path: Path, obs_dim: int, act_dim: int) -> tuple[tuple[str, ...], dict[str, list[str]], list[str]]:
    """Observation keys, their entry names and the action names of a D4RL file.

    A file exported from one of our recordings (:func:`robot_irl.data.d4rl.lerobot_to_d4rl`) names its source
    dataset and observation keys in its attributes: when that dataset is still there (and the sizes agree) its
    feature names are used, so a policy trained on the file runs on the driver that recorded it. Otherwise the
    observation is ``observation.state`` with entries ``obs.0..`` and the actions ``act.0..``.
    """
    from robot_irl.data.d4rl import read_d4rl_attrs

    attrs = read_d4rl_attrs(path)
    keys, action_key = attrs.get("obs_keys"), attrs.get("action_key", "action")
    root = d4rl_source(path)
    if root is not None and isinstance(keys, list) and keys:
        names = feature_names(root)
        if all(k in names and k.startswith("observation.") for k in keys) \
                and sum(len(names[k]) for k in keys) == obs_dim and len(names.get(action_key, ())) == act_dim:
            return tuple(keys), {k: names[k] for k in keys}, list(names[action_key])
    return (STATE_KEY,), {STATE_KEY: [f"obs.{i}" for i in range(obs_dim)]}, [f"act.{i}" for i in range(act_dim)]


def d4rl_source(path: str | Path) -> Path | None:
    """The LeRobot dataset a D4RL file was exported from, if its attributes name one that still exists."""
    from robot_irl.data.d4rl import read_d4rl_attrs

    path = Path(path)
    source = read_d4rl_attrs(path).get("source")
    if isinstance(source, str):
        for root in (Path(source), path.parent / source):
            if (root / "meta" / "info.json").is_file():
                return root
    return None


def load_d4rl_offline(path: str | Path, config: TDDataConfig | None = None
                      ) -> tuple[OfflineData, ObservationEncoder, ActionCodec]:
    """A D4RL HDF5 file as :class:`OfflineData` (rows in order; episodes end at ``terminals`` or ``timeouts``).

    Rewards are the ``config.reward_column("d4rl")`` array (``rewards``; a relabelled file keeps the true ones in
    ``infos/rewards_true``); terminals are the file's. With ``timeouts="drop"`` :meth:`OfflineData.transitions`
    then gives exactly :func:`robot_irl.data.d4rl.qlearning_dataset`'s transitions. Malformed files and NaN/inf
    values raise naming the key and row.
    """
    from robot_irl.data.d4rl import D4RLFormatError, load_d4rl

    config = config or TDDataConfig()
    path = Path(path)
    raw = load_d4rl(path)
    key = config.reward_column("d4rl")
    if key not in raw:
        raise LearningDataError(f"{path}: no reward array {key!r} (arrays: {sorted(raw)})")
    rewards = np.asarray(raw[key])
    rewards = rewards[:, 0] if rewards.ndim == 2 and rewards.shape[1] == 1 else rewards
    if rewards.shape != raw["rewards"].shape or rewards.dtype.kind not in "uif":
        raise D4RLFormatError(f"{path}: reward array {key!r} must be numeric with shape {raw['rewards'].shape}, "
                              f"got {rewards.dtype} {rewards.shape}")
    finite = np.isfinite(rewards)
    if not finite.all():
        raise D4RLFormatError(f"{path}: {key!r} has NaN/inf at row {int(np.argmin(finite))}")
    obs, actions = raw["observations"], raw["actions"]
    n = len(obs)
    ends = raw["terminals"] | raw["timeouts"]
    episode_index = np.r_[0, np.cumsum(ends)[:-1]].astype(np.int64)
    keys, names, action_names = _d4rl_names(path, obs.shape[1], actions.shape[1])
    spec = FeatureSpec(observation_keys=keys, action_mode="absolute", relative_positions=False, goal=False)
    encoder = ObservationEncoder(spec, names)
    codec = ActionCodec("absolute", action_names)
    data = OfflineData(obs, actions, rewards.astype(np.float32), np.zeros(n, bool), episode_index,
                       np.full(n, "", dtype=object), [str(path)], raw["terminals"])
    return data, encoder, codec


def dataset_kind(path: str | Path) -> str:
    """``"d4rl"`` for a ``.hdf5``/``.h5`` file, ``"lerobot"`` for a LeRobot dataset folder; else a clear error."""
    path = Path(path)
    if not path.exists():
        raise LearningDataError(f"no dataset at {path}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() in D4RL_SUFFIXES:
            return "d4rl"
        raise LearningDataError(f"{path}: expected a LeRobot dataset folder or a D4RL {'/'.join(D4RL_SUFFIXES)} "
                                f"file, got a {path.suffix or 'suffix-less'} file")
    _dataset_info(path)  # raises naming the missing meta/info.json
    return "lerobot"


def load_any(paths: str | Path | Sequence[str | Path], config: TDDataConfig | None = None,
             features: Mapping[str, Any] | None = None, vocabulary: Sequence[str] | None = None,
             require_reward: bool = False) -> tuple[OfflineData, ObservationEncoder, ActionCodec, dict]:
    """Load one D4RL file or one or more LeRobot datasets, with ``config``'s rewards and terminals.

    ``features``: FeatureSpec overrides for LeRobot data (the rest fitted by :func:`auto_feature_spec`).
    ``require_reward``: a LeRobot dataset without the reward column is an error (TD learners need it).
    Returns ``(data, encoder, codec, info)``; ``info`` records every resolved choice (source kind, the config with
    its reward column, the reward scale and shift applied, counts) for the run's config and checkpoint.
    """
    config = config or TDDataConfig()
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not paths:
        raise LearningDataError("no dataset given")
    kinds = [dataset_kind(p) for p in paths]
    if "d4rl" in kinds and len(paths) > 1:
        raise LearningDataError(f"one D4RL file at a time (got {[str(p) for p in paths]}); several datasets must "
                                "all be LeRobot folders")
    kind = kinds[0]
    if kind == "d4rl":
        if features:
            raise LearningDataError(f"{paths[0]}: features overrides apply to LeRobot datasets, not D4RL files")
        if config.terminal_on_success:
            raise LearningDataError(f"{paths[0]}: TDDataConfig.terminal_on_success applies to LeRobot datasets; a "
                                    "D4RL file has its own terminals")
        data, encoder, codec = load_d4rl_offline(paths[0], config)
    else:
        spec = auto_feature_spec(paths[0], features)
        data, encoder, codec = load_offline_data(paths, spec, vocabulary, config.reward_column("lerobot"),
                                                 config.success_key, require_reward)
        if config.terminal_on_success:
            first = data.successes & ~_after_first(data.successes, data.episode_index)
            data = OfflineData(data.observations, data.actions, data.rewards, data.successes, data.episode_index,
                               data.tasks, data.sources, first)
    scale, shift = reward_transform(config, data.rewards, data.episode_index)
    if (scale, shift) != (1.0, 0.0):
        data = data.replace_rewards(data.rewards * np.float32(scale) + np.float32(shift))
    resolved = config.replace(reward_key=config.reward_column(kind))
    info = {"kind": kind, "sources": [str(p) for p in paths], "data": resolved.to_dict(), "reward_scale": scale,
            "reward_shift": shift, "frames": len(data), "episodes": data.num_episodes,
            "terminals": int(data.terminals.sum())}
    return data, encoder, codec, info


def _after_first(flags: np.ndarray, episode_index: np.ndarray) -> np.ndarray:
    """(N,) bool: frames after the first flagged frame of their episode (vectorised: flags counted before each
    frame, minus those counted before its episode's first frame)."""
    n = len(flags)
    if not n:
        return np.zeros(0, bool)
    count = np.cumsum(flags.astype(np.int64))
    before = count - flags
    starts = np.r_[True, episode_index[1:] != episode_index[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    return (before - before[first]) > 0


def _relabel_source(path: Path) -> Path | None:
    """The dataset a relabelled copy was made from (its relabel record names it), or None."""
    record: Any = None
    try:
        if path.is_dir() and (path / "meta" / "robot_irl" / "reward_relabel.json").is_file():
            record = json.loads((path / "meta" / "robot_irl" / "reward_relabel.json").read_text(encoding="utf-8"))
        elif path.is_file() and path.suffix.lower() in D4RL_SUFFIXES:
            from robot_irl.data.d4rl import read_d4rl_attrs

            record = read_d4rl_attrs(path).get("reward_relabel")
            record = json.loads(record) if isinstance(record, str) else record
    except (OSError, ValueError):
        return None
    source = record.get("source") if isinstance(record, dict) else None
    return Path(source) if isinstance(source, str) and Path(source).exists() else None


def recorded_driver(path: str | Path) -> dict | None:
    """The driver that recorded a dataset, from its run folder's ``config.json`` (``robot-irl record`` /
    ``collect`` write one next to ``dataset/``): ``{"backend", "config", "max_steps", "from"}``, or None.

    A D4RL file exported from one of our recordings leads to that recording (:func:`d4rl_source`); a relabelled
    copy (:func:`robot_irl.learn.relabel.relabel_dataset`) to the dataset it was copied from.
    """
    path = Path(path)
    for _ in range(8):  # relabelled copy -> its source -> ... (bounded: a loop of records is not followed forever)
        source = _relabel_source(path)
        if source is None:
            break
        path = source
    if path.is_file():
        source = d4rl_source(path) if path.suffix.lower() in D4RL_SUFFIXES else None
        if source is None:
            return None
        path = source
    run_config = path.parent / "config.json"
    if not run_config.is_file():
        return None
    try:
        config = json.loads(run_config.read_text(encoding="utf-8")).get("config", {})
    except (json.JSONDecodeError, AttributeError):
        return None
    backend = config.get("backend") or config.get("driver")
    if not isinstance(backend, str) or backend in ("sim", "hardware"):
        return None
    max_steps = config.get("max_steps")
    return {"backend": backend, "config": dict(config.get("driver_config") or {}),
            "max_steps": int(max_steps) if isinstance(max_steps, int) else None, "from": str(run_config)}
