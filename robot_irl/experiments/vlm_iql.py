"""The experiment of "Real-World Offline RL from VLM Feedback", in simulation: ``robot-irl experiment vlm-iql``.

The paper labels unlabelled, sub-optimal offline data with a VLM's preferences, learns a reward from them and trains
IQL on the relabelled data; on random data its policy nearly matches IQL with the true reward (Open Drawer 0.91 vs
0.99) while behaviour cloning fails (0.04). This experiment asks the same question of robosuite Lift:

1. **collect** a deliberately sub-optimal dataset (:func:`collect_suboptimal`): the red cube and ``distractors``
   other objects on the table, the instruction always "lift the red cube", and per episode one of the behaviours of
   :class:`MixedBehaviour`: ``expert`` (the scripted operator lifts the cube), ``switching`` (an undecided
   operator: it heads for an object drawn at random, cube or not, and draws again every ``switch_steps`` steps until
   it starts a grasp, then commits: it lifts whatever it grasped), ``wrong_object`` (it lifts another object),
   ``noisy`` (the cube, with large pose noise) and ``random`` (random end-effector targets). Every frame keeps
   robosuite's dense reward (reach, grasp, lift the cube) and the success flag. The switching episodes are what makes
   this a test of offline RL: the same states (the arm on its way somewhere) are followed sometimes by a move toward
   the cube and sometimes by a move away, so averaging them is what BC does, and preferring the one that leads to
   reward is what a reward and IQL's advantage weights are for.
2. **label** pairs of frames (RL-VLM-F sampling, :mod:`robot_irl.label`) with the ``oracle`` (the simulator's
   success, then its dense reward) and, when an OpenAI-compatible endpoint is configured, with the ``vlm`` backend
   on the agentview camera (``vlm.enabled``: ``auto`` uses ``$OPENAI_BASE_URL`` + ``$OPENAI_MODEL`` if both are set).
3. **reward model** (:func:`robot_irl.learn.reward.train_reward_model`, Bradley-Terry ensemble) per label set, and
   **relabel** a copy of the dataset with it (:func:`robot_irl.learn.relabel.relabel_dataset`, min-max scaled).
4. **train** on the same data, seed and step budget: ``bc`` (every frame), ``iql_true`` (IQL on the simulator's
   reward), ``iql_oracle`` (IQL on the oracle-preference reward model's reward), ``iql_vlm`` (on the VLM's).
5. **evaluate** every policy on held-out episode seeds (success rate, return), and report a table
   (``OUT/results.md``, printed), ``OUT/results.json`` and a bar chart ``OUT/results.png``, mean and standard deviation
   over ``seeds`` (each seed collects, labels, trains and evaluates anew).

Everything a run made stays in its folder: ``seed<k>/data/`` (the dataset, its relabelled copies), ``seed<k>/labels/
<labeller>``, ``seed<k>/reward/<labeller>``, ``seed<k>/train/<arm>`` and the resolved config (``config.json``).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robot_irl.core.config import Config, ConfigError, check
from robot_irl.core.contracts import Policy, RobotDriver

BEHAVIOURS = ("expert", "switching", "wrong_object", "noisy", "random")
ARMS = ("bc", "filtered_bc", "iql_true", "iql_oracle", "iql_vlm")
LABELS = {
    "bc": "BC", "filtered_bc": "BC on the successful episodes only (reference)", "iql_true": "IQL, true reward",
    "iql_oracle": "IQL, oracle-preference reward model",
    "iql_vlm": "IQL, VLM-preference reward model", "data": "the dataset's own episodes (reference)",
}
SEED_STRIDE = 100_000  # episode seeds: seed * stride + {0: collection, 50_000: evaluation}


@dataclass
class VLMArmConfig(Config):
    """The VLM labeller arm: ``enabled`` ``auto`` runs it when ``$OPENAI_BASE_URL`` and ``$OPENAI_MODEL`` are set."""

    enabled: Literal["auto", "true", "false"] = "auto"
    base_url: str = ""  # "": $OPENAI_BASE_URL
    model: str = ""  # "": $OPENAI_MODEL
    pairs: int = 300
    concurrency: int = 4
    rate_limit: float = 0.0

    def resolve(self) -> tuple[bool, str, str]:
        base = self.base_url or os.environ.get("OPENAI_BASE_URL", "")
        model = self.model or os.environ.get("OPENAI_MODEL", "")
        if self.enabled == "false":
            return False, base, model
        if self.enabled == "true" and not (base and model):
            raise ConfigError("VLMArmConfig.enabled=true needs base_url and model (or $OPENAI_BASE_URL and "
                              "$OPENAI_MODEL)")
        return bool(base and model), base, model


@dataclass
class VLMIQLExperimentConfig(Config):
    episodes: int = 120
    behaviours: dict[str, float] = field(default_factory=lambda: {"expert": 0.1, "switching": 0.75, "random": 0.15})
    switch_steps: tuple[int, int] = (8, 30)  # a switching operator's time on one target (uniform, steps)
    noisy_noise: float = 0.12  # m / rad of pose noise in noisy episodes
    expert_noise: float = 0.005
    distractors: int = 1  # other objects on the table (the wrong objects)
    max_steps: int = 150
    hold_after_success: int = 10
    camera_size: int = 64  # agentview, recorded only when the VLM arm runs
    oracle_pairs: int = 2000
    vlm: VLMArmConfig = field(default_factory=VLMArmConfig)
    reward: dict[str, Any] = field(default_factory=lambda: {"ensemble": 3, "max_epochs": 60, "inputs": "state"})
    scaling: str = "minmax"
    steps: int = 10_000  # gradient steps of every learner
    batch_size: int = 256
    hidden: tuple[int, ...] = (256, 256)
    iql: dict[str, Any] = field(default_factory=dict)  # IQLConfig overrides (defaults: the published ones)
    data: dict[str, Any] = field(default_factory=dict)  # TDDataConfig overrides (reward scaling, timeouts, ...)
    bc: dict[str, Any] = field(default_factory=dict)
    terminal_on_success: bool = False  # True with a dense reward teaches avoiding success (ending the rewards)
    num_threads: int = 1  # torch threads of the learners (2 on a 2-core machine already busy is ~10x slower)
    eval_episodes: int = 20
    eval_max_steps: int = 150
    seeds: tuple[int, ...] = (0, 1)
    arms: tuple[str, ...] = ARMS
    progress: bool = True

    def validate(self) -> None:
        w = "VLMIQLExperimentConfig"
        check(self.episodes >= 2, f"{w}.episodes", "must be >= 2")
        unknown = sorted(set(self.behaviours) - set(BEHAVIOURS))
        check(not unknown, f"{w}.behaviours", f"unknown {unknown}; known: {list(BEHAVIOURS)}")
        check(all(v >= 0 for v in self.behaviours.values()) and sum(self.behaviours.values()) > 0,
              f"{w}.behaviours", "shares must be >= 0 and not all 0")
        check(0 <= self.distractors <= 3, f"{w}.distractors", "must be in [0, 3]")
        for name in ("max_steps", "eval_max_steps", "eval_episodes", "steps", "oracle_pairs", "batch_size",
                     "num_threads"):
            check(getattr(self, name) >= 1, f"{w}.{name}", "must be >= 1")
        check(self.noisy_noise >= 0 and self.expert_noise >= 0, f"{w}.noisy_noise", "noise must be >= 0")
        check(1 <= self.switch_steps[0] <= self.switch_steps[1], f"{w}.switch_steps",
              f"must be (low, high) with 1 <= low <= high, got {list(self.switch_steps)}")
        check(not (self.behaviours.get("switching", 0) or self.behaviours.get("wrong_object", 0))
              or self.distractors >= 1, f"{w}.distractors", "switching/wrong_object episodes need a distractor")
        bad = [a for a in self.arms if a not in ARMS]
        check(not bad and len(self.arms) > 0, f"{w}.arms", f"must be some of {list(ARMS)}, got {list(self.arms)}")
        check(len(self.seeds) > 0 and len(set(self.seeds)) == len(self.seeds), f"{w}.seeds", "needs distinct seeds")
        check(all(0 <= s < 10_000 for s in self.seeds), f"{w}.seeds", "must be in [0, 10000)")

    @classmethod
    def budget(cls, name: str, **overrides: Any) -> VLMIQLExperimentConfig:
        """``small`` (the demo's: ~2-3 minutes on 2 cores), ``default`` (~25 minutes) or ``large``."""
        if name not in BUDGETS:
            raise ConfigError(f"unknown budget {name!r}; known budgets: {sorted(BUDGETS)}")
        base = cls().to_dict()
        for layer in (BUDGETS[name], overrides):
            for key, value in layer.items():
                base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) \
                    else value
        return cls.from_dict(base, where=f"VLMIQLExperimentConfig (budget {name!r})")


BUDGETS: dict[str, dict[str, Any]] = {
    "small": {"episodes": 30, "steps": 3000, "oracle_pairs": 800, "eval_episodes": 5, "seeds": [0],
              "reward": {"max_epochs": 30}, "vlm": {"pairs": 100}},
    "default": {},
    "large": {"episodes": 300, "steps": 50_000, "oracle_pairs": 5000, "eval_episodes": 50,
              "seeds": [0, 1, 2, 3, 4]},
}


# ---------------------------------------------------------------------------------------------------------------
# the sub-optimal data
# ---------------------------------------------------------------------------------------------------------------
class MixedBehaviour(Policy):
    """Per episode, one behaviour drawn with the configured shares (see the module docstring).

    ``current`` is the behaviour of the running episode (saved in each episode's sidecar record as ``behaviour``).
    """

    name = "mixed_behaviour"

    def __init__(self, driver: RobotDriver, config: VLMIQLExperimentConfig, seed: int = 0) -> None:
        from robot_irl.drivers.robosuite_arm import distractor_names
        from robot_irl.policies.scripted import RandomPolicy, ScriptedPolicy

        self.config = config
        names = [b for b in BEHAVIOURS if config.behaviours.get(b, 0) > 0]
        shares = np.array([config.behaviours[b] for b in names], dtype=np.float64)
        self._names, self._p = names, shares / shares.sum()
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self.scripted = ScriptedPolicy.from_driver(driver, seed=seed, noise=config.expert_noise)
        self.random = RandomPolicy.from_driver(driver, seed=seed)
        self.wrong = distractor_names(config.distractors)
        self.current = names[0]
        self.switches = 0
        self._left = 0

    def reset(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(self._seed if seed is None else seed)
        rng = self._rng
        self.current = str(rng.choice(self._names, p=self._p))
        self.scripted.reset(seed)
        self.random.reset(seed)
        self.scripted.noise = self.config.noisy_noise if self.current == "noisy" else self.config.expert_noise
        target = self.wrong[int(rng.integers(len(self.wrong)))] if self.current == "wrong_object" \
            else self.scripted.default_target
        self.switches = 0
        if self.current == "switching":
            target = self._draw_target()
        self.scripted.set_target(target)

    def _draw_target(self) -> str:
        """A switching operator's next target: any object of the scene, the cube included; for how long."""
        objects = [self.scripted.default_target, *self.wrong]
        self._left = int(self._rng.integers(self.config.switch_steps[0], self.config.switch_steps[1] + 1))
        return objects[int(self._rng.integers(len(objects)))]

    @property
    def phase(self) -> str:
        return self.scripted.phase if self.current != "random" else ""

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        if self.current == "random":
            return self.random.act(observation)
        if self.current == "switching" and self.scripted.phase in ("approach", "descend"):
            self._left -= 1
            if self._left <= 0:  # undecided: head for another (or the same) object, from wherever the arm is
                target = self._draw_target()
                if target != self.scripted.target:
                    self.scripted.set_target(target)
                    self.scripted.restart("approach")
                    self.switches += 1
        return self.scripted.act(observation)


def _scene(config: VLMIQLExperimentConfig, seed: int):
    """The perturber that puts every distractor on the table at the first tick (nothing else)."""
    from robot_irl.collect.adversary import AdversaryConfig, ScriptedAdversary

    quiet = {"push_prob": 0.0, "move_prob": 0.0, "instruction_prob": 0.0, "color_prob": 0.0, "light_prob": 0.0,
             "camera_prob": 0.0, "distractor_prob": 0.0, "initial_distractors": config.distractors}
    return ScriptedAdversary(AdversaryConfig.from_dict(quiet, where="vlm-iql scene"), seed=seed)


def _driver_config(config: VLMIQLExperimentConfig, cameras: bool) -> dict:
    out: dict[str, Any] = {"task": "lift", "distractors": max(config.distractors, 1), "reward_shaping": True}
    if cameras:
        out.update(cameras=["agentview"], camera_size=config.camera_size)
    return out


def collect_suboptimal(config: VLMIQLExperimentConfig, out: Path, seed: int, cameras: bool) -> dict:
    """Record ``config.episodes`` episodes of :class:`MixedBehaviour` into the run folder ``out`` (the dataset in
    ``out/dataset``, with ``config.json`` naming the driver, so ``robot-irl eval`` and the trainer find it)."""
    from tqdm.auto import tqdm

    from robot_irl.data.lerobot_io import LeRobotRecorder
    from robot_irl.drivers import make_driver
    from robot_irl.runner import run_episode
    from robot_irl.runs import prepare_run_dir, save_run_config

    out = prepare_run_dir(out)
    driver_config = _driver_config(config, cameras)
    save_run_config(out, {"command": "experiment vlm-iql collect", "backend": "robosuite",
                          "driver_config": driver_config, "max_steps": config.eval_max_steps, "seed": seed,
                          "behaviours": config.behaviours})
    driver = make_driver("robosuite", driver_config)
    recorder = LeRobotRecorder(out / "dataset", repo_id=f"robot_irl/vlm_iql_seed{seed}", fps=driver.fps,
                               observation_features=driver.observation_features,
                               action_features=driver.action_features, robot_type="panda", use_videos=cameras,
                               extra_features=_status_features())
    started, counts, successes = time.time(), {b: 0 for b in BEHAVIOURS}, {b: 0 for b in BEHAVIOURS}
    try:
        with driver:
            behaviour = MixedBehaviour(driver, config, seed)
            scene = _scene(config, seed)
            sink = _BehaviourSink(recorder, behaviour)
            for ep in tqdm(range(config.episodes), disable=not config.progress, desc="collect", unit="episode"):
                result = run_episode(driver, behaviour, config.max_steps, index=ep, seed=seed + ep, sink=sink,
                                     stop_on_success=True, hold_after_success=config.hold_after_success,
                                     adversary=scene)
                counts[behaviour.current] += 1
                successes[behaviour.current] += int(result.success)
    finally:
        recorder.finalize()
    frames = recorder.total_frames if hasattr(recorder, "total_frames") else None
    return {"path": str(out / "dataset"), "episodes": config.episodes, "frames": frames,
            "behaviours": {b: {"episodes": counts[b], "successes": successes[b]} for b in BEHAVIOURS if counts[b]},
            "success_rate": sum(successes.values()) / config.episodes, "collect_s": round(time.time() - started, 1),
            "cameras": cameras}


class _BehaviourSink:
    """The recorder, adding the episode's behaviour to its sidecar record."""

    def __init__(self, recorder, behaviour: MixedBehaviour) -> None:
        self.recorder, self.behaviour = recorder, behaviour

    def start_episode(self) -> None:
        self.recorder.start_episode()

    def add_frame(self, observation, action_sent, task, timestamp, extras=None) -> None:
        self.recorder.add_frame(observation, action_sent, task, timestamp, extras)

    def save_episode(self, metadata=None):
        return self.recorder.save_episode({**(metadata or {}), "behaviour": self.behaviour.current,
                                           "switches": self.behaviour.switches,
                                           "final_target": self.behaviour.scripted.target})


def _status_features() -> dict:
    from robot_irl.core.features import Feature

    return {"next.reward": Feature("float32", (1,)), "next.success": Feature("bool", (1,))}


# ---------------------------------------------------------------------------------------------------------------
# labels, reward models, learners
# ---------------------------------------------------------------------------------------------------------------
def label(dataset: Path, out: Path, backend: str, pairs: int, seed: int, config: VLMIQLExperimentConfig,
          vlm: tuple[str, str] | None = None) -> dict:
    from robot_irl.label.job import LabelConfig, run_label_job

    fields: dict[str, Any] = {"dataset": str(dataset), "backend": backend, "pairs": pairs, "seed": seed}
    if backend == "vlm":
        base_url, model = vlm
        fields.update(camera="agentview", vlm={"base_url": base_url, "model": model,
                                               "concurrency": config.vlm.concurrency,
                                               "rate_limit": config.vlm.rate_limit})
    report = run_label_job(LabelConfig.from_dict(fields, where=f"{backend} labels"), out, progress=config.progress)
    return {"pairs": report["pairs"], "labels": report["labels"], "tie_rate": report["tie_rate"],
            "agreement": (report.get("agreement") or {}).get("accuracy"), "path": str(out)}


def reward_model(labels: Path, dataset: Path, out: Path, relabelled: Path, seed: int,
                 config: VLMIQLExperimentConfig, inputs: str) -> dict:
    from robot_irl.learn.relabel import relabel_dataset
    from robot_irl.learn.reward import RewardModelConfig, train_reward_model

    rm_config = RewardModelConfig.from_dict({**config.reward, "inputs": inputs, "seed": seed},
                                            where="VLMIQLExperimentConfig.reward")
    report = train_reward_model(labels, dataset, out, rm_config, progress=config.progress)
    relabel = relabel_dataset(out / "reward_model", dataset, relabelled, scaling=config.scaling,
                              progress=config.progress)
    return {"report": _small(report), "relabel": _small(relabel), "dataset": str(relabelled)}


def _small(d: Any) -> Any:
    """A JSON-able summary of a nested report (big arrays left out)."""
    if isinstance(d, dict):
        return {k: _small(v) for k, v in d.items() if not (isinstance(v, list) and len(v) > 50)}
    return d


def train_arm(arm: str, dataset: Path, out: Path, seed: int, config: VLMIQLExperimentConfig) -> dict:
    """BC or IQL on ``dataset`` with the experiment's shared budget; returns the trainer summary."""
    from robot_irl.experiments.adc import goal_vocabulary
    from robot_irl.learn.datasets import TDDataConfig, load_any
    from robot_irl.learn.trainer import TrainerConfig, train_policy

    algorithm = "bc" if arm in ("bc", "filtered_bc") else "iql"
    data_config = TDDataConfig.from_dict({"terminal_on_success": config.terminal_on_success, **config.data},
                                         where="VLMIQLExperimentConfig.data")
    features = {"goal_features": True, "binary_gripper": True}
    data, encoder, codec, info = load_any(dataset, data_config, features=features,
                                          vocabulary=goal_vocabulary(max(config.distractors, 1)),
                                          require_reward=algorithm == "iql")
    if arm == "filtered_bc":  # the upper reference: the simulator's success flag picks the episodes to imitate
        from robot_irl.experiments.adc import successful_episodes

        keep = successful_episodes(dataset)
        if not keep:
            raise ConfigError(f"{dataset}: no successful episode to imitate (filtered_bc)")
        data = data.select_episodes(keep)
    algo = {"hidden": list(config.hidden), **(config.bc if algorithm == "bc" else config.iql)}
    trainer = TrainerConfig(steps=config.steps, batch_size=config.batch_size, seed=seed, progress=config.progress,
                            log_every=max(1, config.steps // 50), num_threads=config.num_threads)
    summary = train_policy(data, encoder, codec, out, algorithm, algo, trainer,
                           meta={"arm": arm, "seed": seed, "dataset_info": info},
                           data_config=data_config if algorithm == "iql" else None)
    return {"algorithm": algorithm, "checkpoint": summary["checkpoint"], "train_s": summary["train_time_s"],
            "updates_per_s": summary.get("updates_per_s"), "frames": summary["frames"],
            "transitions": summary.get("transitions")}


def evaluate(checkpoint: str, config: VLMIQLExperimentConfig, seed: int, label_: str) -> dict:
    from robot_irl.drivers import make_driver
    from robot_irl.learn.policy import LearnedPolicy
    from robot_irl.runner import rollout, summarize

    started = time.time()
    driver = make_driver("robosuite", _driver_config(config, cameras=False))
    first = seed * SEED_STRIDE + 50_000
    with driver:
        policy = LearnedPolicy(checkpoint)
        policy.check_features(driver)
        results = rollout(driver, policy, config.eval_episodes, config.eval_max_steps, seed=first,
                          progress=config.progress, stop_on_success=True, adversary=_scene(config, first))
    summary = summarize(results)
    summary["successes"] = [bool(r.success) for r in results]
    summary["eval_s"] = round(time.time() - started, 1)
    print(f"  {label_:<40} success {summary['success_rate']:.2f} ({sum(summary['successes'])}/{len(results)}), "
          f"return {summary['mean_return']:.1f}", flush=True)
    return summary


def run_seed(config: VLMIQLExperimentConfig, seed: int, out: Path) -> dict:
    use_vlm, base_url, model = config.vlm.resolve()
    arms = [a for a in config.arms if a != "iql_vlm" or use_vlm]
    base = seed * SEED_STRIDE
    print(f"[seed {seed}] collecting {config.episodes} sub-optimal episodes "
          f"({', '.join(f'{k} {v:.0%}' for k, v in config.behaviours.items())})", flush=True)
    collection = collect_suboptimal(config, out / "data", base, cameras=use_vlm)
    dataset = Path(collection["path"])
    print(f"[seed {seed}] behaviour successes: " + ", ".join(
        f"{b} {v['successes']}/{v['episodes']}" for b, v in collection["behaviours"].items()), flush=True)
    result: dict[str, Any] = {"collection": collection, "labels": {}, "reward": {}, "arms": {}, "evaluation": {}}
    datasets = {"bc": dataset, "filtered_bc": dataset, "iql_true": dataset}
    for labeller, arm in (("oracle", "iql_oracle"), ("vlm", "iql_vlm")):
        if arm not in arms:
            continue
        pairs = config.oracle_pairs if labeller == "oracle" else config.vlm.pairs
        print(f"[seed {seed}] labelling {pairs} pairs with the {labeller}", flush=True)
        result["labels"][labeller] = label(dataset, out / "labels" / labeller, labeller, pairs, seed, config,
                                           (base_url, model) if labeller == "vlm" else None)
        print(f"[seed {seed}] reward model from the {labeller}'s preferences", flush=True)
        result["reward"][labeller] = reward_model(out / "labels" / labeller, dataset, out / "reward" / labeller,
                                                  out / "data" / f"dataset_{labeller}_reward", seed, config,
                                                  "image" if labeller == "vlm" else "state")
        datasets[arm] = Path(result["reward"][labeller]["dataset"])
    if "filtered_bc" in arms and collection["success_rate"] == 0:
        print(f"[seed {seed}] no episode succeeded: the filtered-BC reference is skipped", flush=True)
        arms.remove("filtered_bc")
    for arm in arms:
        print(f"[seed {seed}] training {LABELS[arm]}", flush=True)
        result["arms"][arm] = train_arm(arm, datasets[arm], out / "train" / arm, seed, config)
    print(f"[seed {seed}] evaluating on {config.eval_episodes} held-out episodes", flush=True)
    for arm in arms:
        result["evaluation"][arm] = evaluate(result["arms"][arm]["checkpoint"], config, seed, LABELS[arm])
    result["evaluation"]["data"] = {"success_rate": collection["success_rate"]}
    return result


# ---------------------------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------------------------
def aggregate(per_seed: dict[int, dict]) -> dict[str, dict]:
    table: dict[str, dict] = {}
    for arm in (*ARMS, "data"):
        rates = [r["evaluation"][arm]["success_rate"] for r in per_seed.values() if arm in r["evaluation"]]
        if not rates:
            continue
        returns = [r["evaluation"][arm].get("mean_return") for r in per_seed.values() if arm in r["evaluation"]]
        returns = [x for x in returns if x is not None]
        table[arm] = {"mean": float(np.mean(rates)), "std": float(np.std(rates)), "seeds": len(rates),
                      "rates": rates, "return": float(np.mean(returns)) if returns else None}
        agreement = [r["labels"].get(arm.removeprefix("iql_"), {}).get("agreement") for r in per_seed.values()]
        agreement = [a for a in agreement if a is not None]
        if agreement:
            table[arm]["label_agreement"] = float(np.mean(agreement))
    return table


def results_markdown(table: dict[str, dict], config: VLMIQLExperimentConfig) -> str:
    lines = ["| policy | success rate | mean return | labels agree with the oracle |", "|---|---|---|---|"]
    for arm, row in table.items():
        cell = f"{row['mean']:.2f} ± {row['std']:.2f}" if row["seeds"] > 1 else f"{row['mean']:.2f}"
        ret = f"{row['return']:.1f}" if row.get("return") is not None else "-"
        agree = f"{row['label_agreement']:.2f}" if "label_agreement" in row else "-"
        lines.append(f"| {LABELS[arm]} | {cell} | {ret} | {agree} |")
    mix = ", ".join(f"{k} {v:.0%}" for k, v in config.behaviours.items())
    note = (f"robosuite Lift (Panda) with {config.distractors} distractor(s) on the table, instruction \"lift the red "
            f"cube\"; {config.episodes} sub-optimal episodes per seed ({mix}); {config.steps} gradient steps per "
            f"learner ({'x'.join(map(str, config.hidden))} MLPs, batch {config.batch_size}); "
            f"{config.eval_episodes} evaluation episodes, max {config.eval_max_steps} steps; mean ± std over seeds "
            f"{list(config.seeds)}. The paper (Open Drawer, random data): VLM-reward IQL 0.91, IQL + true reward "
            "0.99, BC 0.04.")
    return "\n".join(lines) + "\n\n" + note + "\n"


def plot_results(table: dict[str, dict], path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    arms = list(table)
    fig = Figure(figsize=(1.8 + 1.6 * len(arms), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    means = [table[a]["mean"] for a in arms]
    bars = ax.bar(range(len(arms)), means, yerr=[table[a]["std"] for a in arms], capsize=4,
                  color=["#999999" if a == "data" else f"C{i}" for i, a in enumerate(arms)])
    ax.bar_label(bars, labels=[f"{m:.2f}" for m in means], padding=2, fontsize=8)
    ax.set_xticks(range(len(arms)), [LABELS[a].replace(", ", ",\n") for a in arms], fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("success rate")
    ax.set_title("Offline RL from preference rewards on sub-optimal data (robosuite Lift)")
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(str(path), dpi=110)
    return path


def run_vlm_iql_experiment(config: VLMIQLExperimentConfig, out: str | Path) -> dict:
    """Run the whole experiment into the (new or empty) folder ``out``; returns what ``results.json`` holds."""
    from robot_irl.runs import prepare_run_dir, save_run_config

    out = prepare_run_dir(out)
    use_vlm, base_url, model = config.vlm.resolve()
    save_run_config(out, {"experiment": "vlm-iql", **config.to_dict(),
                          "vlm_resolved": {"enabled": use_vlm, "base_url": base_url, "model": model}})
    if not use_vlm and "iql_vlm" in config.arms:
        print("[vlm-iql] no VLM endpoint configured (set OPENAI_BASE_URL and OPENAI_MODEL, or vlm.base_url/model): "
              "the VLM arm is skipped", flush=True)
    started = time.time()
    per_seed: dict[int, dict] = {}
    for seed in config.seeds:
        seed_started = time.time()
        per_seed[seed] = run_seed(config, seed, out / f"seed{seed}")
        per_seed[seed]["seed_s"] = round(time.time() - seed_started, 1)
    table = aggregate(per_seed)
    markdown = results_markdown(table, config)
    results = {"experiment": "vlm-iql", "config": config.to_dict(), "table": table, "per_seed": per_seed,
               "wall_s": round(time.time() - started, 1), "out": str(out)}
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "results.md").write_text(markdown)
    plot_results(table, out / "results.png")
    print("\n" + markdown)
    print(f"results: {out / 'results.md'}, {out / 'results.json'}, {out / 'results.png'} ({results['wall_s']:.0f} s)")
    return results
