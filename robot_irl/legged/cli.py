"""``robot-irl train ppo`` and ``robot-irl eval-dynamics``: the legged learner's command line, light to import.

Nothing heavy is imported here (no torch, no MuJoCo): :func:`add_ppo_arguments` fills the ``ppo`` sub-parser of
``robot-irl train`` and :func:`add_eval_dynamics_parser` adds ``eval-dynamics``; the work is imported when a
command runs. Bad input (an unknown policy kind or task, a malformed ``--config``, a missing checkpoint) is one
line naming what and where, exit status 2.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from robot_irl.core.config import merge_dicts

#: the policy kinds of :class:`robot_irl.learn.ppo.ActorCriticConfig` (kept here so parsing imports no torch)
POLICY_KINDS = ("dr", "oracle", "rma", "hib")
RANGES = ("train", "held_out", "none")
VARIANTS = ("default", "sim2sim")

PPO_EXAMPLES = """examples:
  robot-irl train ppo --policy dr --task go1_flat --steps 2000000 --out runs/go1-dr
  robot-irl train ppo --policy hib --steps 2000000 --out runs/go1-hib --config '{actor_critic: {history: 10}}'
  robot-irl train ppo --policy rma --steps 500000 --teacher runs/go1-oracle --out runs/go1-rma   # adaptation only
  robot-irl train ppo --policy dr --steps 4000000 --out runs/go1-dr --resume                      # continue a run
"""
EVAL_EXAMPLES = """examples:
  robot-irl eval-dynamics --policy runs/go1-hib --range held_out --episodes 64   # + runs/go1-hib/eval_dynamics_*
  robot-irl eval-dynamics --policy runs/go1-hib --range train --variant sim2sim --json
"""


def _tasks() -> list[str]:
    from robot_irl.legged import LEGGED_TASKS

    return LEGGED_TASKS.names()


def add_ppo_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The flags of ``robot-irl train ppo`` on ``parser`` (and its handler as ``func``); returns ``parser``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = PPO_EXAMPLES
    parser.add_argument("--policy", required=True, choices=POLICY_KINDS,
                        help="dr: proprioception only; oracle: + privileged dynamics; rma: teacher + adaptation "
                             "module; hib: history information bottleneck")
    parser.add_argument("--task", default="go1_flat", choices=_tasks(), help="legged task (default: go1_flat)")
    parser.add_argument("--steps", type=int, required=True, help="env steps in total (RMA: teacher + adaptation)")
    parser.add_argument("--out", required=True, help="run folder (new or empty; with --resume: the run to continue)")
    parser.add_argument("--num-envs", type=int, default=None, help="parallel envs (default: 64)")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: 0)")
    parser.add_argument("--device", default=None, help="auto (default), cpu or cuda[:N]")
    parser.add_argument("--config", default=None, help="overrides of LeggedTrainConfig (ppo, actor_critic, env, "
                                                       "...), inline YAML/JSON or a file; flags win")
    parser.add_argument("--teacher", default=None, help="rma: a trained oracle/rma checkpoint; the whole budget then "
                                                        "trains the adaptation module")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_train_ppo)
    return parser



def train_config_from_args(args: argparse.Namespace):
    """The :class:`~robot_irl.legged.train.LeggedTrainConfig` of ``robot-irl train ppo``'s flags."""
    from robot_irl.core.config import ConfigError
    from robot_irl.experiments.cli import load_overrides
    from robot_irl.legged.train import LeggedTrainConfig

    data = merge_dicts({}, load_overrides(args.config))
    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps: must be >= 1, got {args.steps}")
    flags = {"task": args.task, "total_steps": args.steps, "num_envs": args.num_envs, "seed": args.seed,
             "device": args.device, "teacher": args.teacher}
    data.update({k: v for k, v in flags.items() if v is not None})
    data["actor_critic"] = {**data.get("actor_critic", {}), "kind": args.policy}
    if args.no_progress:
        data["progress"] = False
    return LeggedTrainConfig.from_dict(data, where="robot-irl train ppo")


def cmd_train_ppo(args: argparse.Namespace) -> int:
    from robot_irl.cli import CliError, _headless_env

    _headless_env()
    config = train_config_from_args(args)
    from robot_irl.learn.trainer import CheckpointError
    from robot_irl.legged.train import train_legged

    try:
        summary = train_legged(config, Path(args.out), resume=args.resume)
    except CheckpointError as e:
        raise CliError(str(e)) from None
    final = summary.get("final", {})
    shown = {k: final[k] for k in ("episode_return", "episode_fall_rate", "episode_lin_vel_error",
                                   "adaptation_mse") if k in final}
    print(f"trained {summary['kind']} for {summary['env_steps']} env steps ({summary['iterations']} iterations, "
          f"{summary['train_time_s']:.0f} s, {summary['samples_per_s']:.0f} samples/s on {summary['device']}); "
          f"last: {json.dumps({k: round(v, 4) for k, v in shown.items()})}; checkpoint {summary['checkpoint']}")
    return 0


def add_eval_dynamics_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``eval-dynamics`` to ``subparsers`` (from ``ArgumentParser.add_subparsers``); returns its parser."""
    p = subparsers.add_parser(
        "eval-dynamics", help="evaluate a legged policy under a dynamics randomization range (tracking, falls)",
        description="Deterministic episodes of a trained legged policy in the vec env under the train or held-out "
                    "dynamics range (or none), on the default robot or the sim2sim variant.",
        epilog=EVAL_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", required=True, help="checkpoint folder (or the run folder holding checkpoint/)")
    p.add_argument("--range", default="held_out", choices=RANGES, help="dynamics randomization (default: held_out)")
    p.add_argument("--episodes", type=int, default=32, help="episodes, one per env (default: 32)")
    p.add_argument("--variant", default="default", choices=VARIANTS, help="robot model variant (default: default)")
    p.add_argument("--commands", default="sampled", choices=("sampled", "fixed"), help="velocity commands")
    p.add_argument("--seed", type=int, default=10_000, help="evaluation seed (default: 10000)")
    p.add_argument("--sweep", default=None, help="also sweep one factor with the rest nominal, e.g. "
                                                 "friction=0.05,0.5,1,3")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--out", default=None, help="folder for the result files eval_dynamics_<range>_<variant>.json "
                                               "and .md (default: the --policy folder)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval_dynamics)
    return p


def parse_sweep(text: str | None) -> tuple[str, list[float]] | None:
    """``"friction=0.05,0.5,3"`` -> ``("friction", [0.05, 0.5, 3.0])``."""
    from robot_irl.core.config import ConfigError

    if not text:
        return None
    name, sep, values = text.partition("=")
    try:
        numbers = [float(v) for v in values.split(",") if v.strip()]
    except ValueError:
        numbers = []
    if not sep or not name.strip() or not numbers:
        raise ConfigError(f"--sweep: expected NAME=V1,V2,... (e.g. friction=0.05,0.5,3), got {text!r}")
    return name.strip(), numbers


def cmd_eval_dynamics(args: argparse.Namespace) -> int:
    from robot_irl.cli import CliError, _headless_env
    from robot_irl.core.config import ConfigError

    _headless_env()
    if args.episodes < 1:
        raise ConfigError(f"--episodes: must be >= 1, got {args.episodes}")
    sweep = parse_sweep(args.sweep)
    from robot_irl.learn.trainer import CheckpointError
    from robot_irl.legged.evaluate import evaluate_legged, sweep_legged
    from robot_irl.legged.policy import LeggedPolicy, LeggedPolicyError

    try:
        policy = LeggedPolicy(args.policy)
        result = evaluate_legged(policy, args.range, args.episodes, model_variant=args.variant, seed=args.seed,
                                 commands=args.commands, progress=not args.no_progress)
        if sweep is not None:
            result["sweep"] = sweep_legged(policy, sweep[0], sweep[1], episodes=args.episodes,
                                           model_variant=args.variant, seed=args.seed, commands=args.commands)
    except (CheckpointError, LeggedPolicyError) as e:
        raise CliError(str(e)) from None
    files = write_eval_result(result, args)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['kind']} policy {result['checkpoint']}: {result['episodes']} episodes, range {args.range}, "
          f"variant {args.variant}")
    print(f"  linear velocity error {result['mean_lin_vel_error']:.3f} m/s, yaw rate error "
          f"{result['mean_ang_vel_error']:.3f} rad/s, return {result['mean_return']:.2f}, fall rate "
          f"{result['fall_rate']:.2f}, mean length {result['mean_length']:.0f} steps")
    for row in result.get("sweep", []):
        print(f"  {row['parameter']} = {row['value']:g}: lin err {row['mean_lin_vel_error']:.3f}, fall rate "
              f"{row['fall_rate']:.2f}, return {row['mean_return']:.2f}")
    print(f"results: {files[0]} and {files[1].name}")
    return 0


def write_eval_result(result: dict, args: argparse.Namespace) -> tuple[Path, Path]:
    """``eval_dynamics_<range>_<variant>.json`` (the result and the command) and ``.md`` (a table) into ``--out``,
    default the ``--policy`` folder; returns their paths."""
    import shlex

    out = Path(args.out) if args.out else Path(args.policy)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"eval_dynamics_{args.range}_{args.variant}"
    command = shlex.join(["robot-irl", "eval-dynamics", "--policy", str(args.policy), "--range", args.range,
                          "--variant", args.variant, "--episodes", str(args.episodes), "--commands", args.commands,
                          "--seed", str(args.seed), *(["--sweep", args.sweep] if args.sweep else [])])
    stem.with_suffix(".json").write_text(json.dumps({"command": command, "range": args.range, "variant": args.variant,
                                                     **result}, indent=2))
    rows = [("all", result)] + [(f"{r['parameter']} = {r['value']:g}", r) for r in result.get("sweep", [])]
    lines = [f"# {result['kind']} policy under the {args.range} dynamics range ({args.variant} robot)", "",
             f"`{command}`", "", f"{result['episodes']} episodes of {result['checkpoint']}.", "",
             "| dynamics | lin. vel. error (m/s) | yaw rate error (rad/s) | return | fall rate |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {r['mean_lin_vel_error']:.3f} | {r.get('mean_ang_vel_error', float('nan')):.3f} | "
              f"{r['mean_return']:.2f} | {r['fall_rate']:.2f} |" for name, r in rows]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return stem.with_suffix(".json"), stem.with_suffix(".md")
