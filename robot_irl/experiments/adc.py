"""The experiment that shows what ADC data is worth, in simulation: ``robot-irl experiment adc``.

Mirrors the data-efficiency comparison of the ADC paper (arXiv 2503.11646: a policy trained on 20% of the data
collected adversarially beats one trained on 100% of traditionally collected data, 0.65 vs 0.24):

1. **collect** with the scripted tele-operator (:class:`robot_irl.collect.operators.ScriptedOperator`) on robosuite
   Lift with distractors, through :func:`robot_irl.collect.session.collect`:

   * ``traditional``: ``traditional_episodes`` episodes, nothing perturbed;
   * ``adc``: ``adc_fraction`` times as many episodes, with the ``train`` preset of
     :class:`~robot_irl.collect.adversary.ScriptedAdversary` (pushes and moves near the gripper, instruction
     changes while grasping, distractors, scene changes); the operator recovers from each;

2. **train** the same behaviour-cloning policy (:mod:`robot_irl.learn.bc`: same network, steps and seed; inputs:
   proprioception + object poses + the instruction as a goal one-hot, no cameras) on ``traditional`` (100%), on
   ``adc``, and on ``traditional_matched``: the first traditional episodes holding as many frames as the ADC
   dataset, so data size alone is compared too. Only episodes the operator completed are used (a human would
   re-record the others);

3. **evaluate** each policy (and the scripted operator, as a reference) with :func:`robot_irl.runner.rollout` on
   held-out episode seeds under each condition: ``clean`` (no perturbation), ``train`` (the collection preset
   again, on new episodes: did the policy learn the recoveries it was shown?), ``held_out`` (the adversary's
   ``held_out`` preset: stronger pushes, farther moves, instruction changes while descending or lifting, more
   distractors: never seen in training) and ``language`` (only an instruction change, when the gripper reaches the
   goal object, i.e. mid-grasp);

4. **report** success rates (mean and standard deviation over ``seeds``: each seed collects, trains and evaluates
   anew) in ``OUT/results.md`` (printed), ``OUT/results.json`` and a grouped bar chart ``OUT/results.png``.

Every run folder holds its datasets (``seed<k>/data/<name>``), training runs (``seed<k>/train/<arm>`` with
checkpoint, metrics and learning curve) and the resolved config (``config.json``).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_irl.core.config import Config, ConfigError, check
from robot_irl.learn.bc import BCConfig
from robot_irl.learn.datasets import FeatureSpec
from robot_irl.learn.trainer import TrainerConfig

ARMS = ("traditional", "traditional_matched", "adc")
CONDITIONS = ("clean", "train", "held_out", "language")
OPERATOR = "operator"
LABELS = {
    "traditional": "traditional (100%)",
    "traditional_matched": "traditional (ADC-sized)",
    "adc": "ADC",
    OPERATOR: "scripted operator (reference)",
    "clean": "no perturbation",
    "train": "training-like perturbations",
    "held_out": "held-out perturbations",
    "language": "language change mid-grasp",
}
#: the ``language`` evaluation condition: an instruction change when the gripper reaches the goal, nothing else
LANGUAGE_ONLY = {
    "push_prob": 0.0, "move_prob": 0.0, "instruction_prob": 1.0, "instruction_distance": 0.03,
    "color_prob": 0.0, "light_prob": 0.0, "camera_prob": 0.0, "initial_distractors": 1, "distractor_prob": 0.0,
}
SEED_STRIDE = 100_000  # episode seeds: seed * stride + {0: traditional, 20_000: adc, 50_000: evaluation}


@dataclass
class ADCExperimentConfig(Config):
    traditional_episodes: int = 50
    adc_fraction: float = 0.2  # ADC episodes = round(fraction * traditional_episodes), at least 1
    matched_subset: bool = True  # also train on traditional episodes with as many frames as the ADC data
    collect_max_steps: int = 200
    hold_after_success: int = 10  # collection: steps recorded after the first success
    operator_noise: float = 0.0
    adversary_preset: str = "train"  # collection
    eval_episodes: int = 20
    eval_max_steps: int = 150
    conditions: tuple[str, ...] = CONDITIONS
    evaluate_operator: bool = True  # the scripted operator's success under each condition (first seed only)
    seeds: tuple[int, ...] = (0, 1, 2)
    distractors: int = 3  # robosuite driver distractors (they are the other language goals)
    features: FeatureSpec = field(default_factory=lambda: FeatureSpec(goal_features=True, binary_gripper=True))
    bc: BCConfig = field(default_factory=BCConfig)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(steps=4000, progress=False))
    progress: bool = True

    def validate(self) -> None:
        w = "ADCExperimentConfig"
        check(self.traditional_episodes >= 1, f"{w}.traditional_episodes", "must be >= 1")
        check(0.0 < self.adc_fraction <= 1.0, f"{w}.adc_fraction", f"must be in (0, 1], got {self.adc_fraction}")
        for name in ("collect_max_steps", "eval_max_steps", "eval_episodes"):
            check(getattr(self, name) >= 1, f"{w}.{name}", "must be >= 1")
        check(self.hold_after_success >= 0, f"{w}.hold_after_success", "must be >= 0")
        check(self.operator_noise >= 0, f"{w}.operator_noise", "must be >= 0")
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        check(not unknown and len(self.conditions) > 0, f"{w}.conditions",
              f"must be some of {list(CONDITIONS)}, got {list(self.conditions)}")
        check(len(self.seeds) > 0 and len(set(self.seeds)) == len(self.seeds), f"{w}.seeds",
              f"needs distinct seeds, got {list(self.seeds)}")
        check(all(0 <= s < 10_000 for s in self.seeds), f"{w}.seeds", "must be in [0, 10000)")
        check(1 <= self.distractors <= 3, f"{w}.distractors", "must be in [1, 3] (language goals need one)")

    @property
    def adc_episodes(self) -> int:
        return max(1, int(round(self.adc_fraction * self.traditional_episodes)))

    @classmethod
    def budget(cls, name: str, **overrides: Any) -> ADCExperimentConfig:
        """``small`` (a smoke run, ~1 minute on 2 cores), ``default`` (~15-20 minutes) or ``large``."""
        if name not in BUDGETS:
            raise ConfigError(f"unknown budget {name!r}; known budgets: {sorted(BUDGETS)}")
        base = cls().to_dict()
        for key, value in BUDGETS[name].items():
            base[key] = {**base[key], **value} if isinstance(value, dict) else value
        for key, value in overrides.items():
            base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) \
                else value
        return cls.from_dict(base, where=f"ADCExperimentConfig (budget {name!r})")


BUDGETS: dict[str, dict[str, Any]] = {
    "small": {"traditional_episodes": 10, "eval_episodes": 3, "eval_max_steps": 100, "seeds": [0],
              "trainer": {"steps": 600, "log_every": 50}},
    "default": {},
    "large": {"traditional_episodes": 100, "eval_episodes": 50, "seeds": [0, 1, 2, 3, 4],
              "trainer": {"steps": 10000}},
}


# ---------------------------------------------------------------------------------------------------------------
# pieces
# ---------------------------------------------------------------------------------------------------------------
def _driver(config: ADCExperimentConfig):
    from robot_irl.drivers import make_driver

    return make_driver("robosuite", {"task": "lift", "distractors": config.distractors})


def goal_vocabulary(distractors: int) -> list[str]:
    """Every instruction the policies may be given: lift each object of the scene (the one-hot's range)."""
    from robot_irl.collect.language import instruction_for
    from robot_irl.drivers.robosuite_arm import language_objects

    return [instruction_for("lift", obj) for obj in language_objects("lift", distractors)]


def _adversary(condition: str, seed: int):
    """The perturber of an evaluation ``condition`` (None for ``clean``)."""
    from robot_irl.collect.adversary import AdversaryConfig, ScriptedAdversary

    if condition == "clean":
        return None
    if condition in ("train", "held_out"):
        return ScriptedAdversary(AdversaryConfig.preset(condition), seed=seed)
    return ScriptedAdversary(AdversaryConfig.from_dict(LANGUAGE_ONLY, where="language condition"), seed=seed)


def collect_dataset(driver, config: ADCExperimentConfig, mode: str, episodes: int, seed: int, out: Path) -> dict:
    """Record ``episodes`` operator episodes (``mode`` ``traditional`` or ``adc``; seeds ``seed, seed+1, ...``) into
    the run folder ``out`` (LeRobot dataset in ``out/dataset``, ``out/report.json``)."""
    from robot_irl.collect.adversary import AdversaryConfig, ScriptedAdversary
    from robot_irl.collect.operators import ScriptedOperator
    from robot_irl.collect.session import collect

    operator = ScriptedOperator.from_driver(driver, seed=seed, noise=config.operator_noise)
    adversary = ScriptedAdversary(AdversaryConfig.preset(config.adversary_preset), seed=seed) \
        if mode == "adc" else None
    started = time.time()
    report = collect(driver, operator, adversary, episodes, config.collect_max_steps, out=out, mode=mode, seed=seed,
                     progress=config.progress, stop_on_success=True, hold_after_success=config.hold_after_success)
    return {"mode": mode, "episodes": episodes, "seed": seed, "path": report.dataset,
            "collect_s": round(time.time() - started, 2), "operator_success_rate": report.success_rate,
            "frames": sum(e.length for e in report.episodes), "perturbations": report.perturbation_totals()}


def successful_episodes(root: Path) -> list[int]:
    """Episode indices whose sidecar record says the operator succeeded."""
    from robot_irl.data.lerobot_io import EPISODES_SIDECAR, read_jsonl

    return [int(r["episode_index"]) for r in read_jsonl(Path(root) / EPISODES_SIDECAR) if r.get("success")]


def _training_sets(roots: dict[str, Path], config: ADCExperimentConfig) -> dict[str, Any]:
    """OfflineData of each arm (successful episodes only), with the shared encoder and codec."""
    from robot_irl.learn.datasets import LearningDataError, load_offline_data

    vocabulary = goal_vocabulary(config.distractors)
    sets: dict[str, Any] = {}
    for name, root in roots.items():
        data, encoder, codec = load_offline_data(root, config.features, vocabulary)
        keep = successful_episodes(root)
        if not keep:
            raise LearningDataError(f"{root}: the operator completed none of the {data.num_episodes} episodes")
        sets[name] = (data.select_episodes(keep), encoder, codec)
    if config.matched_subset:
        data, encoder, codec = sets["traditional"]
        target = len(sets["adc"][0])
        lengths = [int(np.sum(data.episode_index == e)) for e in data.episodes]
        count = int(np.searchsorted(np.cumsum(lengths), target) + 1)
        sets["traditional_matched"] = (data.select_episodes(data.episodes[:count]), encoder, codec)
    return {arm: sets[arm] for arm in ARMS if arm in sets}


def evaluate(driver, policy, config: ADCExperimentConfig, seed: int, label: str) -> dict[str, dict]:
    """Success of ``policy`` under each condition over ``eval_episodes`` held-out episode seeds."""
    from robot_irl.runner import rollout, summarize

    out = {}
    first = seed * SEED_STRIDE + 50_000
    for condition in config.conditions:
        started = time.time()
        results = rollout(driver, policy, config.eval_episodes, config.eval_max_steps, seed=first,
                          progress=config.progress, stop_on_success=True, adversary=_adversary(condition, first))
        summary = summarize(results)
        summary["successes"] = [bool(r.success) for r in results]
        summary["eval_s"] = round(time.time() - started, 2)
        out[condition] = summary
        print(f"  {label:<34} {LABELS[condition]:<28} success {summary['success_rate']:.2f} "
              f"({sum(summary['successes'])}/{len(results)}, {summary['eval_s']:.0f} s)", flush=True)
    return out


def run_seed(config: ADCExperimentConfig, seed: int, out: Path, driver) -> dict:
    """Collect, train and evaluate for one seed; returns the per-arm data sizes, training and evaluation."""
    from robot_irl.learn.policy import LearnedPolicy
    from robot_irl.learn.trainer import train_policy

    base = seed * SEED_STRIDE
    print(f"[seed {seed}] collecting {config.traditional_episodes} traditional and {config.adc_episodes} ADC "
          "episodes", flush=True)
    collection = {
        "traditional": collect_dataset(driver, config, "traditional", config.traditional_episodes, base,
                                       out / "data" / "traditional"),
        "adc": collect_dataset(driver, config, "adc", config.adc_episodes, base + 20_000, out / "data" / "adc"),
    }
    sets = _training_sets({k: Path(v["path"]) for k, v in collection.items()}, config)
    result: dict[str, Any] = {"collection": collection, "arms": {}, "evaluation": {}}
    for arm, (data, encoder, codec) in sets.items():
        trainer = config.trainer.replace(seed=seed)
        print(f"[seed {seed}] training BC on {arm}: {data.num_episodes} episodes, {len(data)} frames", flush=True)
        summary = train_policy(data, encoder, codec, out / "train" / arm, "bc", config.bc, trainer,
                               meta={"arm": arm, "seed": seed})
        result["arms"][arm] = {"episodes": data.num_episodes, "frames": len(data),
                               "train_s": summary["train_time_s"], "final_loss": summary["final"].get("loss"),
                               "checkpoint": summary["checkpoint"]}
    print(f"[seed {seed}] evaluating on {config.eval_episodes} held-out episodes per condition", flush=True)
    for arm in sets:
        policy = LearnedPolicy(result["arms"][arm]["checkpoint"])
        policy.check_features(driver)
        result["evaluation"][arm] = evaluate(driver, policy, config, seed, LABELS[arm])
    if config.evaluate_operator and seed == config.seeds[0]:
        from robot_irl.collect.operators import ScriptedOperator

        operator = ScriptedOperator.from_driver(driver, seed=base, noise=config.operator_noise)
        result["evaluation"][OPERATOR] = evaluate(driver, operator, config, seed, LABELS[OPERATOR])
    return result


# ---------------------------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------------------------
def aggregate(per_seed: dict[int, dict], conditions: tuple[str, ...]) -> dict[str, dict]:
    """arm -> condition -> {mean, std, seeds, rates}; plus data sizes (mean episodes and frames)."""
    arms = [a for a in (*ARMS, OPERATOR) if any(a in r["evaluation"] for r in per_seed.values())]
    table: dict[str, dict] = {}
    for arm in arms:
        row: dict[str, Any] = {}
        for condition in conditions:
            rates = [r["evaluation"][arm][condition]["success_rate"] for r in per_seed.values()
                     if arm in r["evaluation"]]
            episodes = sum(len(r["evaluation"][arm][condition]["successes"]) for r in per_seed.values()
                           if arm in r["evaluation"])
            row[condition] = {"mean": float(np.mean(rates)), "std": float(np.std(rates)), "seeds": len(rates),
                              "rates": rates, "episodes": episodes}
        sizes = [r["arms"][arm] for r in per_seed.values() if arm in r.get("arms", {})]
        if sizes:
            row["episodes"] = float(np.mean([s["episodes"] for s in sizes]))
            row["frames"] = float(np.mean([s["frames"] for s in sizes]))
        table[arm] = row
    return table


def _cell(stats: dict) -> str:
    return f"{stats['mean']:.2f} ± {stats['std']:.2f}" if stats["seeds"] > 1 else f"{stats['mean']:.2f}"


def results_markdown(table: dict[str, dict], config: ADCExperimentConfig) -> str:
    conditions = config.conditions
    header = ["policy", "training episodes", "training frames", *(LABELS[c] for c in conditions)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm, row in table.items():
        size = [f"{row['episodes']:.0f}", f"{row['frames']:.0f}"] if "episodes" in row else ["-", "-"]
        lines.append("| " + " | ".join([LABELS[arm], *size, *(_cell(row[c]) for c in conditions)]) + " |")
    note = (f"Success rates on robosuite Lift (Panda, {config.distractors} distractors, proprioception + object "
            f"poses + goal one-hot, BC {'x'.join(map(str, config.bc.hidden))} MLP, {config.trainer.steps} steps), "
            f"{config.eval_episodes} evaluation episodes per condition and seed, max {config.eval_max_steps} steps; "
            f"mean ± std over seeds {list(config.seeds)}. ADC = {config.adc_episodes} adversarial episodes "
            f"({config.adc_fraction:.0%} of the {config.traditional_episodes} traditional ones); only completed "
            "operator episodes are trained on. The operator row is the scripted expert itself (first seed).")
    return "\n".join(lines) + "\n\n" + note + "\n"


def plot_results(table: dict[str, dict], conditions: tuple[str, ...], path: Path) -> Path:
    """Grouped bars: one group per condition, one bar per policy, error bars over seeds."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    arms = list(table)
    fig = Figure(figsize=(2.2 + 2.4 * len(conditions), 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(arms))
    x = np.arange(len(conditions))
    for i, arm in enumerate(arms):
        means = [table[arm][c]["mean"] for c in conditions]
        stds = [table[arm][c]["std"] for c in conditions]
        bars = ax.bar(x + (i - (len(arms) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=LABELS[arm],
                      alpha=0.6 if arm == OPERATOR else 1.0, hatch="//" if arm == OPERATOR else None)
        ax.bar_label(bars, labels=[f"{m:.2f}" for m in means], fontsize=7, padding=2)
    ax.set_xticks(x, [LABELS[c] for c in conditions])
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("success rate")
    ax.set_title("BC on traditional vs ADC data (robosuite Lift)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(str(path), dpi=110)
    return path


# ---------------------------------------------------------------------------------------------------------------
# the experiment
# ---------------------------------------------------------------------------------------------------------------
def run_adc_experiment(config: ADCExperimentConfig, out: str | Path) -> dict:
    """Run the whole experiment into the (new or empty) folder ``out``; returns what ``results.json`` holds."""
    from robot_irl.runs import prepare_run_dir, save_run_config

    out = prepare_run_dir(out)
    save_run_config(out, {"experiment": "adc", **config.to_dict()})
    started = time.time()
    driver = _driver(config)
    per_seed: dict[int, dict] = {}
    with driver:
        for seed in config.seeds:
            seed_started = time.time()
            per_seed[seed] = run_seed(config, seed, out / f"seed{seed}", driver)
            per_seed[seed]["seed_s"] = round(time.time() - seed_started, 1)
    table = aggregate(per_seed, config.conditions)
    markdown = results_markdown(table, config)
    results = {"experiment": "adc", "config": config.to_dict(), "table": table, "per_seed": per_seed,
               "wall_s": round(time.time() - started, 1), "out": str(out)}
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "results.md").write_text(markdown)
    plot_results(table, config.conditions, out / "results.png")
    print("\n" + markdown)
    print(f"results: {out / 'results.md'}, {out / 'results.json'}, {out / 'results.png'} "
          f"({results['wall_s']:.0f} s)")
    return results
