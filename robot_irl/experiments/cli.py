"""``robot-irl experiment NAME``: the experiments' command line, light to import (no torch, no simulator).

Every experiment is registered in :data:`EXPERIMENTS` with its help text and budget names; its module (imported
only when it runs) provides ``BUDGETS``, a config class with ``budget(name, **overrides)`` and a ``seeds`` field, and
a runner ``run(config, out) -> results``. All
experiments share the same flags: ``--budget`` (a named size; ``small`` is a smoke run), ``--seed`` (the first
seed), ``--out`` (a new or empty run folder), ``--config`` (overrides of the experiment's config dataclass, inline
YAML/JSON or a file) and ``--no-progress``; experiments registered ``resumable`` also take ``--resume`` (continue an
interrupted run in ``--out``).
"""
from __future__ import annotations

import argparse
import importlib
import time
from dataclasses import dataclass
from pathlib import Path

from robot_irl.core.config import ConfigError
from robot_irl.core.registry import Registry


@dataclass(frozen=True)
class ExperimentEntry:
    module: str  # provides BUDGETS, the config class and the runner
    help: str
    budgets: tuple[str, ...]
    budget_help: str
    config: str  # the config class's name in ``module``
    runner: str  # ``runner(config, out) -> results`` in ``module``
    default_budget: str = "default"
    resumable: bool = False  # the runner takes ``resume=True``: continue an interrupted run in ``out``


EXPERIMENTS: Registry[ExperimentEntry] = Registry("experiment")
EXPERIMENTS.register("adc", ExperimentEntry(
    "robot_irl.experiments.adc",
    "BC on traditional vs ADC data, evaluated with and without held-out perturbations (the ADC paper's "
    "data-efficiency table)",
    ("default", "large", "small"),
    "small: ~4 min smoke run (measured); default: ~15-20 min, 3 seeds; large: 5 seeds, more data",
    "ADCExperimentConfig", "run_adc_experiment"))
EXPERIMENTS.register("vlm-iql", ExperimentEntry(
    "robot_irl.experiments.vlm_iql",
    "BC vs IQL with the true reward vs IQL with oracle- and VLM-preference reward models, on sub-optimal data "
    "(Real-World Offline RL from VLM Feedback)",
    ("default", "large", "small"),
    "small: ~3-4 min, the demo's (measured); default: ~25 min, 2 seeds; large: 5 seeds, more data and steps",
    "VLMIQLExperimentConfig", "run_vlm_iql_experiment"))
EXPERIMENTS.register("hib", ExperimentEntry(
    "robot_irl.experiments.hib",
    "DR-only, oracle, RMA and HIB legged policies on the same budget and seeds, evaluated on train/held-out "
    "dynamics and a sim2sim robot (the HIB paper's comparison)",
    ("default", "large", "small"),
    "small: ~10 s smoke run (measured); default: under an hour on 2 CPU cores; large: more steps, bigger nets, "
    "3 seeds",
    "HIBExperimentConfig", "run_hib_experiment", resumable=True))


def add_experiment_parser(subparsers) -> argparse.ArgumentParser:
    """``robot-irl experiment NAME [--budget B] [--seed N] [--out DIR] [--config YAML] [--no-progress]``."""
    parser = subparsers.add_parser(
        "experiment", help="run a paper's experiment end to end (collect, train, evaluate, report)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  robot-irl experiment adc --budget small --out runs/adc-small\n"
               "  robot-irl experiment adc --seed 3 --config '{eval_episodes: 50}'\n"
               "  robot-irl experiment vlm-iql --budget small\n"
               "  robot-irl experiment hib --budget small --out runs/hib-small\n"
               "  OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_MODEL=Qwen/Qwen2.5-VL-7B-Instruct "
               "robot-irl experiment vlm-iql")
    experiments = parser.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    for name in EXPERIMENTS.names():
        entry = EXPERIMENTS.get(name)
        p = experiments.add_parser(name, help=entry.help, description=entry.help)
        p.add_argument("--budget", default=entry.default_budget, choices=sorted(entry.budgets),
                       help=entry.budget_help)
        p.add_argument("--seed", type=int, default=None, help="first seed (the budget's number of seeds follows)")
        p.add_argument("--out", default=None, help=f"run folder (new or empty); default runs/experiments/{name}-<time>")
        p.add_argument("--config", default=None, help="overrides of the experiment's config, inline YAML/JSON or a "
                                                      "file")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
        if entry.resumable:
            p.add_argument("--resume", action="store_true",
                           help="continue the interrupted run in --out (same budget and config): finished parts are "
                                "reused, an unfinished training continues from its checkpoint")
    parser.set_defaults(func=cmd_experiment)
    return parser


def load_overrides(text: str | None) -> dict:
    """``--config``: a mapping of config fields, inline YAML/JSON or a YAML/JSON file."""
    from robot_irl.cli import CliError, _load_mapping

    try:
        return _load_mapping(text, "--config")
    except CliError as e:
        raise ConfigError(str(e)) from None


def run_experiment(name: str, budget: str, overrides: dict | None = None, seed: int | None = None,
                   out: str | Path | None = None, resume: bool = False) -> dict:
    """Run experiment ``name`` at ``budget`` with config ``overrides``; ``seed`` shifts the budget's seeds to
    ``seed, seed + 1, ...``; ``out`` defaults to ``runs/experiments/<name>-<time>``; ``resume`` continues an
    interrupted run in ``out`` (experiments registered ``resumable``)."""
    entry = EXPERIMENTS.get(name)
    if resume and not entry.resumable:
        resumable = [n for n in EXPERIMENTS.names() if EXPERIMENTS.get(n).resumable]
        raise ConfigError(f"experiment {name!r} cannot resume; resumable experiments: {resumable}")
    if resume and not out:
        raise ConfigError("--resume needs the --out folder of the run to continue")
    module = importlib.import_module(entry.module)
    config = getattr(module, entry.config).budget(budget, **(overrides or {}))
    if seed is not None:
        config = config.replace(seeds=[seed + i for i in range(len(config.seeds))])
    out = Path(out) if out else Path("runs/experiments") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    runner = getattr(module, entry.runner)
    return runner(config, out, resume=True) if resume else runner(config, out)


def cmd_experiment(args: argparse.Namespace) -> int:
    from robot_irl.cli import _headless_env

    _headless_env()
    overrides = load_overrides(args.config)
    if args.no_progress:
        overrides["progress"] = False
    run_experiment(args.experiment, args.budget, overrides, args.seed, args.out, getattr(args, "resume", False))
    return 0
