"""``robot-irl``: one command line for bringing up graphs, rolling out and recording, and inspecting datasets.

Every subcommand imports its heavy dependencies only when it runs, so ``robot-irl --help`` is instant.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

EPILOG = """examples:
  robot-irl up bringup --driver sim --task lift            # the sim graph as ROS 2 processes (Ctrl-C stops)
  robot-irl up bringup --driver hardware --emulate         # the hardware graph against the MuJoCo emulator
  robot-irl record --task lift --policy scripted --episodes 5 --cameras agentview --out runs/lift
  robot-irl rollout --task lift --policy random --episodes 3
  robot-irl info runs/lift/dataset
  robot-irl export-d4rl runs/lift/dataset runs/lift/lift.hdf5
  robot-irl collect --task lift --episodes 10 --mode adc --operator scripted --adversary scripted --out runs/adc
  robot-irl up collect --driver sim --operator joy --console --dataset runs/session/dataset
  robot-irl up deploy --driver sim --task lift --policy runs/iql/checkpoint   # a trained policy drives the graph
  robot-irl up legged --driver sim --policy runs/hib/checkpoint --command 0.5,0,0   # a legged policy walks
  robot-irl recover --bag runs/session/dataset_bags/episode_000002_20261204-173858-684 --dataset runs/session/dataset
  robot-irl label --dataset runs/lift/dataset --backend oracle --pairs 1000 --out runs/lift/labels
  robot-irl train-reward --labels runs/lift/labels --out runs/lift/reward --relabel runs/lift/dataset_learned
  robot-irl relabel --reward-model runs/lift/reward --dataset runs/lift/dataset --out runs/lift/dataset_learned
  robot-irl train iql --dataset runs/lift/dataset_learned --steps 20000 --out runs/iql
  robot-irl eval --policy runs/iql --episodes 20 --video runs/iql/rollouts.mp4
  robot-irl train ppo --policy hib --task go1_flat --steps 2000000 --out runs/hib
  robot-irl eval-dynamics --policy runs/hib --range held_out
  robot-irl experiment adc --budget small
  robot-irl list
  robot-irl demo --out runs/demo
"""


#: each subcommand's own examples (its --help shows these, the top-level --help the list above)
EXAMPLES = {
    "list": "robot-irl list",
    "up": """robot-irl up bringup --driver sim --task lift --cameras agentview     # Ctrl-C stops it
  robot-irl up bringup --driver hardware --emulate --duration 10     # the hardware path, no robot needed
  robot-irl up collect --operator joy --console --dataset runs/session/dataset
  robot-irl up collect --operator scripted --adversary scripted --set '{episodes: 5}'   # hands-free ADC
  robot-irl up deploy --driver sim --task lift --policy runs/lift/iql
  robot-irl up legged --driver sim --policy runs/go1/hib --command 0.5,0,0""",
    "rollout": """robot-irl rollout --task lift --policy scripted --episodes 3
  robot-irl rollout --backend mujoco_arm --policy random --episodes 2""",
    "record": """robot-irl record --task lift --policy scripted --episodes 5 --cameras agentview --out runs/lift
  robot-irl record --task lift --policy scripted --noise 0.3 --episodes 20 --out runs/lift_noisy""",
    "info": """robot-irl info runs/lift/dataset
  robot-irl info runs/lift/dataset --json""",
    "export-d4rl": "robot-irl export-d4rl runs/lift/dataset runs/lift/lift.hdf5",
    "demo": """robot-irl demo --out runs/demo
  robot-irl demo --out runs/demo --no-offline-rl --episodes 2""",
}


def _examples(name: str) -> str:
    return "examples:\n  " + EXAMPLES[name]


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def _headless_env() -> None:
    """Defaults for a headless, offline machine; set when a command runs, never on import."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    os.environ.setdefault("PYNPUT_BACKEND", "dummy")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("SVT_LOG", "1")  # the AV1 encoder's banner: errors only
    import warnings

    # known, harmless noise from dependencies (lerobot reads videos through torchvision; bool stats)
    warnings.filterwarnings("ignore", message="The video decoding and encoding capabilities of torchvision")
    warnings.filterwarnings("ignore", message="Converting input from bool")


# -- building drivers and policies from command-line flags --------------------------------------------------

def _load_mapping(text: str | None, what: str) -> dict[str, Any]:
    if not text:
        return {}
    import yaml

    path = Path(text)
    try:
        data = yaml.safe_load(path.read_text()) if path.is_file() else yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CliError(f"{what}: not valid YAML/JSON ({e})") from None
    if not isinstance(data, dict):
        raise CliError(f"{what}: expected a mapping, got {type(data).__name__}")
    return data


def driver_config_from_args(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """Resolve ``--driver/--backend`` and merge ``--driver-config`` with the convenience flags it accepts."""
    from robot_irl.drivers import DRIVERS, resolve_backend

    try:
        backend = resolve_backend(args.driver, args.backend)
    except ValueError as e:
        raise CliError(str(e)) from None
    cls = DRIVERS.get(backend)
    fields = {f.name for f in dataclasses.fields(cls.config_class)}
    config = _load_mapping(args.driver_config, "--driver-config")
    flags = {"task": args.task, "cameras": args.cameras, "camera_size": args.camera_size, "control_freq": args.rate}
    for key, value in flags.items():
        if value is None:
            continue
        if key not in fields:
            raise CliError(f"--{key.replace('_', '-')} does not apply to the {backend} driver "
                           f"(its config fields: {sorted(fields)})")
        config[key] = list(value) if isinstance(value, (list, tuple)) else value
    return backend, config


def make_policy(name: str, driver, seed: int, noise: float):
    from robot_irl.policies import POLICIES

    cls = POLICIES.get(name)
    try:
        return cls.from_driver(driver, seed=seed, noise=noise)
    except ValueError as e:
        raise CliError(f"policy {name!r}: {e}") from None


def _add_driver_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("driver")
    g.add_argument("--driver", default="sim", help="sim | hardware | a backend name (default: sim)")
    g.add_argument("--backend", default=None, help="backend within the family (sim: robosuite, mujoco_arm, mock)")
    g.add_argument("--task", default=None, help="task for sim drivers, e.g. lift, stack, door")
    g.add_argument("--cameras", nargs="*", default=None, help="cameras to render, e.g. agentview wrist")
    g.add_argument("--camera-size", type=int, default=None, help="camera height/width in pixels")
    g.add_argument("--rate", type=float, default=None, help="control rate in Hz")
    g.add_argument("--driver-config", default=None, help="driver config: a YAML file or an inline YAML/JSON mapping")


def _add_policy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", default="scripted", help="policy name (see `robot-irl list`)")
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--max-steps", type=int, default=150, help="control steps per episode")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", type=float, default=0.0, help="action noise for scripted policies")


# -- subcommands ------------------------------------------------------------------------------------------

def cmd_list(args: argparse.Namespace) -> int:
    from robot_irl.drivers import DRIVERS, FAMILIES
    from robot_irl.graphs import GRAPHS
    from robot_irl.policies import POLICIES

    print("drivers:  " + ", ".join(DRIVERS.names()))
    for fam, names in FAMILIES.items():
        print(f"  --driver {fam}: {', '.join(names)}")
    print("policies: " + ", ".join(POLICIES.names()))
    print("graphs:   " + ", ".join(GRAPHS.names()))
    return 0


def _open_driver(args: argparse.Namespace):
    from robot_irl.core.config import ConfigError
    from robot_irl.drivers import DRIVERS

    backend, config = driver_config_from_args(args)
    cls = DRIVERS.get(backend)
    try:
        cfg = cls.config_class.from_dict(config, where=f"{backend} driver config")
    except ConfigError as e:
        raise CliError(str(e)) from None
    return cls(cfg), backend, cfg


def cmd_rollout(args: argparse.Namespace, record: bool = False) -> int:
    from robot_irl.runner import rollout, summarize

    _headless_env()
    driver, backend, cfg = _open_driver(args)
    sink = None
    run_dir = None
    if record:
        from robot_irl.data.lerobot_io import LeRobotRecorder
        from robot_irl.runs import prepare_run_dir, save_run_config

        try:
            run_dir = prepare_run_dir(args.out, overwrite=args.overwrite)
        except FileExistsError as e:
            raise CliError(str(e)) from None
        save_run_config(run_dir, {"command": "record", "driver": backend, "driver_config": cfg.to_dict(),
                                  "policy": args.policy, "episodes": args.episodes, "max_steps": args.max_steps,
                                  "seed": args.seed, "noise": args.noise})
        sink = LeRobotRecorder(run_dir / "dataset", repo_id=f"robot_irl/{run_dir.name}", fps=driver.fps,
                               observation_features=driver.observation_features,
                               action_features=driver.action_features, robot_type=backend,
                               use_videos=True, extra_features=_status_features())
    with driver:
        policy = make_policy(args.policy, driver, args.seed, args.noise)
        results = rollout(driver, policy, args.episodes, args.max_steps, seed=args.seed, sink=sink,
                          stop_on_success=getattr(args, "stop_on_success", False))
    if sink is not None:
        sink.finalize()
    summary = summarize(results)
    _print_results(results, summary)
    if run_dir is not None:
        (run_dir / "results.json").write_text(json.dumps(
            {"summary": summary, "episodes": [r.to_dict() for r in results]}, indent=2))
        print(f"dataset: {run_dir / 'dataset'}")
    return 0


def _status_features() -> dict:
    from robot_irl.core.features import Feature

    return {"next.reward": Feature("float32", (1,)), "next.success": Feature("bool", (1,))}


def _print_results(results, summary) -> None:
    print(f"{'episode':>7} {'steps':>6} {'success':>8} {'return':>8} {'clamped':>8} {'time s':>7}")
    for r in results:
        print(f"{r.index:>7} {r.steps:>6} {str(r.success):>8} {r.episode_return:>8.2f} {r.clamped_steps:>8} "
              f"{r.duration_s:>7.1f}")
    print(f"success rate {summary['success_rate']:.2f} over {summary['episodes']} episodes, "
          f"{summary['steps_per_s']:.0f} steps/s")


def cmd_info(args: argparse.Namespace) -> int:
    from robot_irl.data.lerobot_io import dataset_summary, format_summary

    path = Path(args.dataset)
    if not path.exists():
        raise CliError(f"no dataset at {path}")
    summary = dataset_summary(path)
    print(json.dumps(summary, indent=2, default=str) if args.json else format_summary(summary))
    return 0


def cmd_export_d4rl(args: argparse.Namespace) -> int:
    from robot_irl.data.d4rl import lerobot_to_d4rl

    out = lerobot_to_d4rl(args.dataset, args.out, overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0


POLICY_GRAPHS = ("deploy", "legged")


def cmd_up(args: argparse.Namespace) -> int:
    from robot_irl.launcher import up

    _headless_env()
    extra = _load_mapping(args.set, "--set")
    if args.graph == "collect":
        extra = {"dataset": args.dataset, "operator": args.operator, "adversary": args.adversary,
                 "console": args.console,
                 "console_port": args.console_port, "resume": args.resume, "overwrite": args.overwrite,
                 "bag": not args.no_bag, "repo_id": args.repo_id, **extra}
    elif any([args.console, args.resume, args.overwrite, args.no_bag]):
        raise CliError(f"--console/--resume/--overwrite/--no-bag apply to the collect graph, not {args.graph!r}")
    if args.graph in POLICY_GRAPHS:
        extra = {"policy": args.policy, "inputs": args.inputs, "episode_steps": args.episode_steps, **extra}
        if args.graph == "legged":
            extra.setdefault("command", args.velocity_command)
    elif args.policy is not None or args.velocity_command is not None:
        raise CliError(f"--policy/--command apply to the {'/'.join(POLICY_GRAPHS)} graphs, not {args.graph!r}")
    if args.backend is not None:
        extra.setdefault("backend", args.backend)
    if args.graph in POLICY_GRAPHS:  # a policy for another robot fails here, before any node starts
        from robot_irl.graphs import build_graph, check_policy_fits

        check_policy_fits(build_graph(args.graph, driver=args.driver, task=args.task, cameras=args.cameras,
                                      rate=args.rate, emulate=args.emulate, **extra))
    return up(args.graph, driver=args.driver, task=args.task, cameras=args.cameras, rate=args.rate,
              emulate=args.emulate, duration=args.duration, **extra)


def cmd_demo(args: argparse.Namespace) -> int:
    from robot_irl.demo import run_demo

    _headless_env()
    overrides = _load_mapping(args.offline_rl_config, "--offline-rl-config")
    return run_demo(Path(args.out), episodes=args.episodes, max_steps=args.max_steps, in_process=args.in_process,
                    adc_episodes=args.adc_episodes, offline_rl="" if args.no_offline_rl else args.offline_rl,
                    offline_rl_overrides=overrides)


# -- parser -----------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robot-irl", description="Robot learning from demonstrations and offline data, on sim or real robots.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list registered drivers, policies and graphs", epilog=_examples("list"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("up", help="start a ROS 2 graph as processes (no ROS 2 CLI needed); Ctrl-C stops it",
                       epilog=_examples("up"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("graph", help="graph name (see `robot-irl list`)")
    p.add_argument("--driver", default="sim", choices=["sim", "hardware"])
    p.add_argument("--backend", default=None,
                   help="backend within the driver family, as in `robot-irl list` (sim: robosuite, mujoco_arm, mock, "
                        "go1; default: the family's)")
    p.add_argument("--task", default=None, help="sim task (default: the driver's: lift, go1_flat for legged)")
    p.add_argument("--cameras", nargs="*", default=[])
    p.add_argument("--rate", type=float, default=None, help="control rate in Hz (default: the driver's)")
    p.add_argument("--emulate", action="store_true", help="hardware: also start the MuJoCo robot emulator")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--set", default=None, help="extra graph arguments as an inline YAML/JSON mapping")
    g = p.add_argument_group("collect graph")
    g.add_argument("--dataset", default="runs/collect/dataset", help="LeRobot dataset root the recorder writes")
    g.add_argument("--repo-id", default="", help="dataset repo id (default: from the folder name)")
    g.add_argument("--operator", default="keyboard", choices=["keyboard", "joy", "spacemouse", "scripted", "none"])
    g.add_argument("--adversary", default="none", choices=["none", "scripted"],
                   help="scripted: the scripted ADC adversary node (with --operator scripted: hands-free)")
    g.add_argument("--console", action="store_true", help="serve the adversary console (loopback)")
    g.add_argument("--console-port", type=int, default=8080)
    g.add_argument("--resume", action="store_true", help="append to an existing dataset (features must match)")
    g.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    g.add_argument("--no-bag", action="store_true", help="do not write the MCAP bag of the session topics")
    g = p.add_argument_group("deploy and legged graphs")
    g.add_argument("--policy", default=None, help="checkpoint folder of the trained policy")
    g.add_argument("--inputs", default="auto", choices=["auto", "observation", "sensors"],
                   help="what the policy node acts on (auto: what the checkpoint needs)")
    g.add_argument("--episode-steps", type=int, default=0, help="sim: reset every N policy actions (0: never)")
    g.add_argument("--command", dest="velocity_command", default=None,  # not `command`: that is the subcommand
                   help="legged: velocity command vx,vy,wz until /cmd_vel arrives")
    p.set_defaults(func=cmd_up)

    for name, helptext, rec in (("rollout", "run a policy on a driver and report success", False),
                                ("record", "run a policy and record a LeRobot v3.0 dataset", True)):
        p = sub.add_parser(name, help=helptext, epilog=_examples(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_driver_args(p)
        _add_policy_args(p)
        p.add_argument("--stop-on-success", action="store_true", help="end an episode at its first success")
        if rec:
            p.add_argument("--out", required=True, help="run folder; the dataset goes to OUT/dataset")
            p.add_argument("--overwrite", action="store_true", help="reuse a non-empty run folder")
        p.set_defaults(func=lambda a, rec=rec: cmd_rollout(a, record=rec))

    p = sub.add_parser("info", help="summarise a LeRobot dataset recorded by robot_irl", epilog=_examples("info"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("export-d4rl", help="convert a recorded dataset to a D4RL-style HDF5 file",
                       epilog=_examples("export-d4rl"), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset")
    p.add_argument("out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT file")
    p.set_defaults(func=cmd_export_d4rl)

    from robot_irl.collect.cli_collect import add_collect_parser
    from robot_irl.collect.recover import add_recover_parser

    add_collect_parser(sub)
    add_recover_parser(sub)

    from robot_irl.experiments.cli import add_experiment_parser
    from robot_irl.label.cli_label import add_label_parser
    from robot_irl.learn.cli_reward import add_relabel_parser, add_train_reward_parser
    from robot_irl.learn.cli_train import add_eval_parser, add_train_parser
    from robot_irl.legged.cli import add_eval_dynamics_parser

    add_label_parser(sub)
    add_train_reward_parser(sub)
    add_relabel_parser(sub)
    add_train_parser(sub)
    add_eval_parser(sub)
    add_eval_dynamics_parser(sub)
    add_experiment_parser(sub)

    p = sub.add_parser("demo", help="the main job: bring up the sim graph, record scripted episodes, summarise",
                       epilog=_examples("demo"), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="parent folder; each demo run gets a timestamped subfolder")
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--max-steps", type=int, default=120)
    p.add_argument("--in-process", action="store_true", help="drive the simulator in this process, not over ROS")
    p.add_argument("--adc-episodes", type=int, default=3, help="adversarial episodes to collect (0: skip)")
    p.add_argument("--offline-rl", default="small", choices=["small", "default", "large"],
                   help="budget of the offline-RL stage (robot-irl experiment vlm-iql)")
    p.add_argument("--offline-rl-config", default=None, help="overrides of that experiment's config (YAML/JSON)")
    p.add_argument("--no-offline-rl", action="store_true", help="skip the offline-RL stage")
    p.set_defaults(func=cmd_demo)
    return parser


# -- errors: one line, exit status 2 ----------------------------------------------------------------------------

#: command -> the argument naming the LeRobot dataset(s) / checkpoint it reads: their files are checked before the
#: command runs (robot_irl.data.integrity), so a torn file is one line naming it, not a traceback from pyarrow
DATASET_ARGS = {"export-d4rl": "dataset", "train": "dataset", "label": "dataset", "relabel": "dataset",
                "train-reward": "dataset"}
CHECKPOINT_ARGS = {"eval": "policy", "eval-dynamics": "policy", "up": "policy"}


def _check_inputs(args: argparse.Namespace) -> None:
    from robot_irl.data.integrity import check_checkpoint_files, check_dataset_files

    for table, check in ((DATASET_ARGS, check_dataset_files), (CHECKPOINT_ARGS, check_checkpoint_files)):
        value = getattr(args, table.get(args.command, ""), None)
        for path in value if isinstance(value, list) else [value]:
            if isinstance(path, (str, Path)) and Path(path).is_dir():
                check(path)


def _user_error(e: BaseException) -> bool:
    """Known errors: robot_irl's own (they name what and where) and the operating system's (they name the path)."""
    return isinstance(e, (CliError, OSError)) or type(e).__module__.split(".")[0] == "robot_irl"


def _cli_words(message: str) -> str:
    """Library messages name keyword arguments (``pass overwrite=True``); on the command line it is the flag."""
    import re

    return re.sub(r"\b(overwrite|force|resume)=True(?: \(--[\w-]+\))?", r"--\1", message)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check_inputs(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - known error types get one clear line, not a traceback
        if not _user_error(e):
            raise
        text = " ".join(str(e).split()) or type(e).__name__
        print(f"robot-irl {args.command}: error: {_cli_words(text)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # python -m robot_irl.cli: run the module's own copy, so CliError is one class
    from robot_irl.cli import main as _main

    sys.exit(_main())
