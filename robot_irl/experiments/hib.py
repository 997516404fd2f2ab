"""HIB against its baselines under dynamics shift, in simulation: ``robot-irl experiment hib``.

The comparison of the HIB paper (CoRL 2024, "Bridging the Sim-to-Real Gap from the Information Bottleneck
Perspective": a single-stage history encoder with an information bottleneck beats two-stage teacher-student / RMA
distillation under dynamics it did not train on), on the Go1 of :mod:`robot_irl.legged`:

1. **train** the four policies of :mod:`robot_irl.learn.ppo` on the same task, randomization (``train`` preset),
   network sizes, seeds and env-step budget (``train.total_steps`` per policy):

   * ``dr``: proprioception only, no history (domain randomization);
   * ``oracle``: + the privileged dynamics vector (not deployable: the upper reference);
   * ``rma``: a teacher (= an oracle) trained with ``rma_teacher_fraction`` of the budget, then RMA's adaptation
     module regresses the teacher's latent from 50 steps of history on the rest (``rma_teacher="own"``: teacher +
     adaptation cost what every other policy costs); with ``rma_teacher="oracle"`` the ``oracle`` run of the same
     seed is the teacher and RMA adds ``(1 - rma_teacher_fraction) * total_steps`` adaptation steps on top (the
     usual practice of a converged teacher; RMA then uses more env steps than the others, and the table says so);
   * ``hib``: history encoder -> stochastic latent with KL to N(0, I) and InfoNCE to the privileged vector, trained
     with the RL loss in one stage;

2. **evaluate** each with :func:`robot_irl.legged.evaluate.evaluate_legged` (deterministic, ``eval_episodes``
   episodes, the same evaluation seed for every policy) under three conditions: ``train`` (the training
   randomization), ``held_out`` (every factor outside it: friction 0.05-0.15 or 2-3, payload +3..5 kg, Kp -25..40 %,
   40 ms delay, harder pushes) and ``sim2sim`` (the differently tuned robot of :mod:`robot_irl.legged.model`, the
   stand-in for the real robot, under ``sim2sim_randomization``);

3. **report** linear-velocity tracking error, yaw-rate error, return and fall rate (mean ± std over seeds) in
   ``OUT/results.md`` (printed), ``OUT/results.json`` and grouped bar charts ``OUT/results.png``; every run folder
   (``OUT/seed<k>/<policy>``) keeps its checkpoint, metrics, TensorBoard events and curves; ``OUT/config.json`` the
   resolved config.

What a CPU budget buys is printed with the table (env steps per policy, wall time): at the ``default`` budget the
policies learn to stand, survive pushes and walk slowly, far from the 200M-step GPU runs of the literature, so the
ranking measured here is a small-budget ranking and is reported as such.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robot_irl.core.config import Config, ConfigError, check, merge_dicts
from robot_irl.learn.ppo import KINDS, ActorCriticConfig
from robot_irl.legged.train import LeggedTrainConfig

CONDITIONS = ("train", "held_out", "sim2sim")
METRICS = (("mean_lin_vel_error", "lin. vel. error (m/s)"), ("mean_ang_vel_error", "yaw rate error (rad/s)"),
           ("fall_rate", "fall rate"), ("mean_length", "episode length (steps)"), ("mean_return", "return"))
LABELS = {"dr": "DR only", "oracle": "oracle (privileged)", "rma": "RMA", "hib": "HIB",
          "train": "train range", "held_out": "held-out range", "sim2sim": "sim2sim robot"}


def _cpu_train() -> LeggedTrainConfig:
    """The CPU-friendly training setup every budget starts from (the learner, not physics, bounds CPU training:
    [128, 128] networks, 128 envs x 24 steps per iteration, a smaller initial action noise; the env and PPO of
    :mod:`robot_irl.legged.train`'s recipe: reward clip, gait clock and its reward, gamma 0.97)."""
    return LeggedTrainConfig(
        num_envs=128, steps_per_env=24, total_steps=2_000_000, checkpoint_every=0, log_every=5, progress=False,
        actor_critic=ActorCriticConfig(actor_hidden=(128, 128), critic_hidden=(128, 128), init_noise_std=0.5))


@dataclass
class HIBExperimentConfig(Config):
    task: str = "go1_flat"
    policies: tuple[str, ...] = KINDS
    seeds: tuple[int, ...] = (0, 1)
    train: LeggedTrainConfig = field(default_factory=_cpu_train)
    rma_teacher: Literal["own", "oracle"] = "own"
    eval_episodes: int = 64
    eval_seed: int = 10_000
    eval_max_steps: int = 0  # 0: the env's time limit (20 s)
    eval_commands: Literal["sampled", "fixed"] = "sampled"
    conditions: tuple[str, ...] = CONDITIONS
    sim2sim_randomization: str = "none"  # dynamics on top of the sim2sim robot ("none": the robot as tuned)
    eval_threads: int = 2
    progress: bool = True

    def validate(self) -> None:
        w = "HIBExperimentConfig"
        unknown = [p for p in self.policies if p not in KINDS]
        check(len(self.policies) > 0 and not unknown and len(set(self.policies)) == len(self.policies),
              f"{w}.policies", f"must be distinct policies among {list(KINDS)}, got {list(self.policies)}")
        check(self.rma_teacher == "own" or "oracle" in self.policies, f"{w}.rma_teacher",
              "'oracle' needs the oracle among the policies")
        bad = [c for c in self.conditions if c not in CONDITIONS]
        check(len(self.conditions) > 0 and not bad, f"{w}.conditions",
              f"must be some of {list(CONDITIONS)}, got {list(self.conditions)}")
        check(len(self.seeds) > 0 and len(set(self.seeds)) == len(self.seeds), f"{w}.seeds",
              f"needs distinct seeds, got {list(self.seeds)}")
        check(all(0 <= s < 10_000 for s in self.seeds), f"{w}.seeds", "must be in [0, 10000)")
        check(self.eval_episodes >= 1, f"{w}.eval_episodes", "must be >= 1")
        check(self.eval_max_steps >= 0, f"{w}.eval_max_steps", "must be >= 0")
        check(self.eval_threads >= 1, f"{w}.eval_threads", "must be >= 1")
        check(self.sim2sim_randomization in ("train", "held_out", "none"), f"{w}.sim2sim_randomization",
              f"must be train, held_out or none, got {self.sim2sim_randomization!r}")
        check(not self.train.teacher, f"{w}.train.teacher", "the experiment trains its own teachers")

    @classmethod
    def budget(cls, name: str, **overrides: Any) -> HIBExperimentConfig:
        """``small`` (a smoke run, a few minutes), ``default`` (< 1 hour on 2 CPU cores) or ``large``."""
        if name not in BUDGETS:
            raise ConfigError(f"unknown budget {name!r}; known budgets: {sorted(BUDGETS)}")
        base = merge_dicts(cls().to_dict(), BUDGETS[name])
        return cls.from_dict(merge_dicts(base, overrides), where=f"HIBExperimentConfig (budget {name!r})")



#: env steps per policy and seed: small 1.5k (a smoke run), default 2M (bench/bench_ppo.py: 5-7k samples/s end
#: to end on 2 cores with [128, 128] nets, HIB's learner the slowest: ~5-6 min per policy, so 4 policies x 2 seeds
#: + 24 evaluations fit in about an hour; the recipe's DR policy tracks at 0.14 m/s after 2M, see
#: robot_irl.legged.train), large 10M per policy on rsl_rl's [512, 256, 128], 3 seeds
BUDGETS: dict[str, dict[str, Any]] = {
    "small": {"seeds": [0], "eval_episodes": 4, "eval_max_steps": 100,
              "train": {"num_envs": 16, "total_steps": 16 * 24 * 4, "log_every": 1,
                        "actor_critic": {"actor_hidden": [32, 32], "critic_hidden": [32, 32], "history": 0}}},
    "default": {},
    "large": {"seeds": [0, 1, 2], "eval_episodes": 64,
              "train": {"num_envs": 512, "total_steps": 10_000_000,
                        "actor_critic": {"actor_hidden": [512, 256, 128], "critic_hidden": [512, 256, 128]}}},
}


# ---------------------------------------------------------------------------------------------------------------
# pieces
# ---------------------------------------------------------------------------------------------------------------
def condition_setup(config: HIBExperimentConfig, condition: str) -> tuple[str, str]:
    """(randomization preset, model variant) of an evaluation condition."""
    if condition == "sim2sim":
        return config.sim2sim_randomization, "sim2sim"
    return condition, "default"


def train_config(config: HIBExperimentConfig, kind: str, seed: int, teacher: str = "") -> LeggedTrainConfig:
    """The training config of one policy and seed (same budget and sizes for every policy)."""
    t = config.train
    ac = t.actor_critic.replace(kind=kind)
    changes: dict[str, Any] = {"task": config.task, "seed": seed, "actor_critic": ac.to_dict(), "teacher": teacher,
                               "progress": config.progress}
    if teacher:  # the oracle teaches: RMA adds its adaptation steps to the oracle's
        changes["total_steps"] = max(t.batch, round((1.0 - t.rma_teacher_fraction) * t.total_steps))
    return t.replace(**changes)


def evaluate_policy(checkpoint: str, config: HIBExperimentConfig, label: str) -> dict[str, dict]:
    from robot_irl.legged.evaluate import evaluate_legged
    from robot_irl.legged.policy import LeggedPolicy

    policy = LeggedPolicy(checkpoint, num_threads=config.train.num_threads)
    out = {}
    for condition in config.conditions:
        randomization, variant = condition_setup(config, condition)
        result = evaluate_legged(policy, randomization, config.eval_episodes, model_variant=variant,
                                 seed=config.eval_seed, commands=config.eval_commands,
                                 max_steps=config.eval_max_steps or None, num_threads=config.eval_threads,
                                 progress=False)
        out[condition] = result
        print(f"  {label:<20} {LABELS[condition]:<15} lin err {result['mean_lin_vel_error']:.3f} m/s, yaw err "
              f"{result['mean_ang_vel_error']:.3f}, falls {result['fall_rate']:.2f}, return "
              f"{result['mean_return']:.2f} ({result['eval_s']:.0f} s)", flush=True)
    return out


def run_seed(config: HIBExperimentConfig, seed: int, out: Path, resume: bool = False) -> dict:
    """Train and evaluate every policy for one seed. With ``resume``, a policy whose run folder holds a checkpoint
    continues from it (a finished one is only reloaded) and a saved ``evaluation.json`` is reused."""
    from robot_irl.legged.train import train_legged

    result: dict[str, Any] = {"training": {}, "evaluation": {}}
    order = sorted(config.policies, key=lambda k: (k != "oracle", KINDS.index(k)))  # the oracle may teach RMA
    for kind in order:
        teacher = ""
        if kind == "rma" and config.rma_teacher == "oracle":
            teacher = result["training"]["oracle"]["checkpoint"]
        tc = train_config(config, kind, seed, teacher)
        again = resume and (out / kind / "checkpoint" / "trainer_state.json").is_file()
        print(f"[seed {seed}] {'resuming' if again else 'training'} {LABELS[kind]}: {tc.total_steps} env steps "
              f"({tc.iterations} iterations of {tc.num_envs} envs x {tc.steps_per_env})"
              + (f", teacher {teacher}" if teacher else ""), flush=True)
        summary = train_legged(tc, out / kind, resume=again)
        final = summary["final"]
        result["training"][kind] = {
            "env_steps": summary["env_steps"] + summary["teacher_steps"], "own_env_steps": summary["env_steps"],
            "rl_steps": summary["rl_steps"], "adaptation_steps": summary["adaptation_steps"],
            "teacher_steps": summary["teacher_steps"], "train_s": summary["train_time_s"],
            "samples_per_s": summary["samples_per_s"], "checkpoint": summary["checkpoint"],
            "final": {k: v for k, v in final.items() if isinstance(v, (int, float))}}
        print(f"[seed {seed}] {LABELS[kind]}: {summary['train_time_s']:.0f} s, {summary['samples_per_s']:.0f} "
              "samples/s", flush=True)
    for kind in config.policies:
        saved = out / kind / "evaluation.json"
        if resume and saved.is_file():
            result["evaluation"][kind] = json.loads(saved.read_text())
            print(f"  {LABELS[kind]:<20} evaluation reused from {saved}", flush=True)
            continue
        result["evaluation"][kind] = evaluate_policy(result["training"][kind]["checkpoint"], config, LABELS[kind])
        tmp = saved.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result["evaluation"][kind], indent=2, default=str))
        tmp.replace(saved)
    return result


# ---------------------------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------------------------
def aggregate(per_seed: dict[int, dict], config: HIBExperimentConfig) -> dict[str, dict]:
    """policy -> condition -> metric -> {mean, std, values}; plus the training cost per policy."""
    table: dict[str, dict] = {}
    for kind in config.policies:
        row: dict[str, Any] = {}
        for condition in config.conditions:
            row[condition] = {}
            for metric in [m for m, _ in METRICS] + ["mean_command_speed"]:
                values = [r["evaluation"][kind][condition].get(metric, float("nan")) for r in per_seed.values()]
                row[condition][metric] = {"mean": float(np.mean(values)), "std": float(np.std(values)),
                                          "values": values}
        training = [r["training"][kind] for r in per_seed.values()]
        row["env_steps"] = float(np.mean([t["env_steps"] for t in training]))
        row["train_s"] = float(np.mean([t["train_s"] for t in training]))
        table[kind] = row
    return table


def _cell(stats: dict, seeds: int, digits: int = 3) -> str:
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}" if seeds > 1 else f"{stats['mean']:.{digits}f}"


def _limit(config: HIBExperimentConfig) -> int:
    episode_s = float(config.train.env.get("episode_s", 20.0))
    return config.eval_max_steps or int(round(episode_s / 0.02))


def _steps(n: float) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def results_markdown(table: dict[str, dict], config: HIBExperimentConfig, wall_s: float) -> str:
    seeds = len(config.seeds)
    header = ["policy", "env steps", "train s"]
    for c in config.conditions:
        header += [f"{LABELS[c]}: lin err", "falls", "steps", "return"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for kind, row in table.items():
        cells = [LABELS[kind], _steps(row["env_steps"]), f"{row['train_s']:.0f}"]
        for c in config.conditions:
            cells += [_cell(row[c]["mean_lin_vel_error"], seeds), _cell(row[c]["fall_rate"], seeds, 2),
                      _cell(row[c]["mean_length"], seeds, 0), _cell(row[c]["mean_return"], seeds, 2)]
        lines.append("| " + " | ".join(cells) + " |")
    t = config.train
    randomization, variant = condition_setup(config, "sim2sim")
    rma = ("RMA's teacher is its own, trained on "
           f"{t.rma_teacher_fraction:.0%} of the budget (teacher + adaptation = the same env steps as the others)"
           if config.rma_teacher == "own" else
           "RMA's teacher is the oracle run; its env steps count the teacher's and the adaptation's")
    clipped = ", clipped at 0 per step" if t.env.get("rewards", {}).get("only_positive_rewards") else ""
    standing = ", ".join(f"{LABELS[c]} {np.mean([row[c]['mean_command_speed']['mean'] for row in table.values()]):.3f}"
                         for c in config.conditions)
    note = (f"Go1 `{config.task}`, velocity tracking; PPO ({t.num_envs} envs x {t.steps_per_env} steps per "
            f"iteration, actor/critic {list(t.actor_critic.actor_hidden)}), `{t.randomization}` randomization in "
            f"training; {config.eval_episodes} deterministic evaluation episodes per condition and seed "
            f"(seed {config.eval_seed}, {config.eval_commands} commands); mean ± std over seeds "
            f"{list(config.seeds)}. Lin err: mean |v_xy - cmd_xy| (m/s) over each episode (standing still would "
            f"score the mean commanded speed: {standing}); falls: fraction of "
            f"episodes ending in a fall; steps: mean episode length (the limit is {_limit(config)} steps); "
            f"return: the training reward (legged_gym terms{clipped}). sim2sim: the "
            f"`{variant}` robot under `{randomization}` randomization. {rma}. Wall time {wall_s / 60:.1f} min.")
    return "\n".join(lines) + "\n\n" + note + "\n"


def plot_results(table: dict[str, dict], config: HIBExperimentConfig, path: Path) -> Path:
    """One panel per metric; groups = evaluation conditions, bars = policies, error bars over seeds."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kinds, conditions = list(table), list(config.conditions)
    fig = Figure(figsize=(4.2 * len(METRICS), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    width = 0.8 / max(1, len(kinds))
    x = np.arange(len(conditions))
    for j, (metric, label) in enumerate(METRICS):
        ax = fig.add_subplot(1, len(METRICS), j + 1)
        for i, kind in enumerate(kinds):
            means = [table[kind][c][metric]["mean"] for c in conditions]
            stds = [table[kind][c][metric]["std"] for c in conditions]
            ax.bar(x + (i - (len(kinds) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=LABELS[kind],
                   hatch="//" if kind == "oracle" else None, alpha=0.7 if kind == "oracle" else 1.0)
        ax.set_xticks(x, [LABELS[c] for c in conditions], fontsize="small")
        ax.set_title(label)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(kinds), fontsize="small")
    fig.suptitle(f"HIB vs baselines on Go1 ({_steps(config.train.total_steps)} env steps per policy, "
                 f"{len(config.seeds)} seed{'s' if len(config.seeds) > 1 else ''})")
    fig.savefig(str(path), dpi=100)
    return path


# ---------------------------------------------------------------------------------------------------------------
# the experiment
# ---------------------------------------------------------------------------------------------------------------
def run_hib_experiment(config: HIBExperimentConfig, out: str | Path, resume: bool = False) -> dict:
    """Run the whole experiment into the (new or empty) folder ``out``; returns what ``results.json`` holds.

    ``resume``: continue an interrupted run in ``out`` (its ``config.json`` must hold this config): finished
    policies and evaluations are reused, an unfinished training continues from its last checkpoint."""
    from robot_irl.legged.model import variant_differences
    from robot_irl.runs import prepare_run_dir, save_run_config

    out = Path(out)
    if resume:
        saved = out / "config.json"
        if not saved.is_file():
            raise FileNotFoundError(f"cannot resume: {saved} does not exist (not a hib experiment folder)")
        before = json.loads(saved.read_text())["config"]
        now = json.loads(json.dumps({"experiment": "hib", **config.to_dict()}, default=str))
        changed = sorted(k for k in set(before) | set(now) if k != "progress" and before.get(k) != now.get(k))
        if changed:
            raise ConfigError(f"cannot resume {out}: the config differs from the saved one in {changed}")
    else:
        out = prepare_run_dir(out)
        save_run_config(out, {"experiment": "hib", **config.to_dict()})
    print(f"sim2sim robot differs from the training robot in: {json.dumps(variant_differences('sim2sim'))}")
    started = time.time()
    per_seed: dict[int, dict] = {}
    for seed in config.seeds:
        seed_started = time.time()
        per_seed[seed] = run_seed(config, seed, out / f"seed{seed}", resume)
        per_seed[seed]["seed_s"] = round(time.time() - seed_started, 1)
    table = aggregate(per_seed, config)
    wall = time.time() - started
    markdown = results_markdown(table, config, wall)
    results = {"experiment": "hib", "config": config.to_dict(), "table": table, "per_seed": per_seed,
               "sim2sim_differences": variant_differences("sim2sim"), "wall_s": round(wall, 1), "out": str(out)}
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "results.md").write_text(markdown)
    plot_results(table, config, out / "results.png")
    print("\n" + markdown)
    print(f"results: {out / 'results.md'}, {out / 'results.json'}, {out / 'results.png'} ({wall:.0f} s)")
    return results


# ---------------------------------------------------------------------------------------------------------------
# command line (``robot-irl experiment hib``, parsed by robot_irl.experiments.cli)
# ---------------------------------------------------------------------------------------------------------------
def run_from_cli(budget: str, overrides: dict, seed: int | None, out: Path, resume: bool = False) -> dict:
    """``robot-irl experiment hib``: the budget's config with ``overrides``, seeds starting at ``seed``."""
    config = HIBExperimentConfig.budget(budget, **overrides)
    if seed is not None:
        config = config.replace(seeds=[seed + i for i in range(len(config.seeds))])
    return run_hib_experiment(config, out, resume)
