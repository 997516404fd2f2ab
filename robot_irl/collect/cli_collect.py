"""``robot-irl collect``: ADC (adversarial) or traditional data collection.

With the scripted operator and a scripted (or no) adversary everything runs in this process, as fast as the
simulator steps (:func:`robot_irl.collect.session.collect`). A human operator (keyboard, joy) or the web adversary
console needs the ``collect`` ROS 2 graph (driver node, recorder node, teleop, console), started here through
:func:`robot_irl.launcher.up`.

The run folder ``--out`` gets ``config.json`` (the resolved run config), ``dataset/`` (LeRobot v3.0) and, in
process, ``report.json``.
"""
from __future__ import annotations

import argparse
import inspect
from pathlib import Path

EXAMPLES = """examples:
  robot-irl collect --task lift --episodes 10 --mode adc --out runs/adc           # scripted operator + adversary
  robot-irl collect --task lift --episodes 10 --mode traditional --out runs/trad  # no adversary
  robot-irl collect --episodes 5 --preset held_out --cameras agentview --out runs/adc_eval
  robot-irl collect --operator keyboard --adversary console --out runs/human      # the `collect` ROS 2 graph
  robot-irl collect --out runs/adc --episodes 5 --resume                          # append 5 more episodes
"""

IN_PROCESS_ADVERSARIES = ("scripted", "none")
GRAPH_ADVERSARIES = ("console", "none")


def add_collect_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``collect`` to ``subparsers`` (from ``ArgumentParser.add_subparsers``); returns its parser."""
    p = subparsers.add_parser(
        "collect", help="collect demonstrations: ADC (operator + adversary) or traditional",
        description=__doc__.split("\n\n")[0], epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default=None, help="simulated task (default: the backend's; robosuite: lift)")
    p.add_argument("--episodes", type=int, default=10, help="episodes to save")
    p.add_argument("--mode", default="adc", choices=["adc", "traditional"],
                   help="adc: an adversary perturbs every episode; traditional: none")
    p.add_argument("--operator", default="scripted", choices=["scripted", "keyboard", "joy"])
    p.add_argument("--adversary", default=None, choices=["scripted", "console", "none"],
                   help="default: scripted for --mode adc, none for traditional")
    p.add_argument("--preset", default="train", choices=["train", "held_out"], help="scripted adversary preset")
    p.add_argument("--out", required=True, help="run folder (dataset in OUT/dataset)")
    p.add_argument("--cameras", nargs="*", default=None, help="cameras to render and record, e.g. agentview wrist")
    p.add_argument("--camera-size", type=int, default=None, help="camera height/width in pixels")
    p.add_argument("--seed", type=int, default=0, help="episode i uses seed SEED + i")
    p.add_argument("--max-steps", type=int, default=250, help="control steps per episode at most")
    p.add_argument("--hold-after-success", type=int, default=10, help="steps recorded after success")
    p.add_argument("--no-stop-on-success", dest="stop_on_success", action="store_false",
                   help="always run --max-steps steps")
    p.add_argument("--noise", type=float, default=0.0, help="scripted operator: pose noise (m, rad)")
    p.add_argument("--resume", action="store_true", help="append to the dataset in OUT")
    p.add_argument("--overwrite", action="store_true", help="replace what is in OUT")
    p.add_argument("--driver", default="sim", choices=["sim", "hardware"])
    p.add_argument("--backend", default=None, help="backend within the driver family (default: robosuite for sim)")
    p.add_argument("--rate", type=float, default=None, help="control rate in Hz")
    p.add_argument("--driver-config", default=None, help="driver config: a YAML file or an inline YAML/JSON mapping")
    p.set_defaults(func=cmd_collect)
    return p


def cmd_collect(args: argparse.Namespace) -> int:
    """Run ``robot-irl collect``; errors are ``robot_irl.cli.CliError`` (one line, exit status 2)."""
    from robot_irl.cli import CliError, _headless_env

    _headless_env()
    adversary = args.adversary or ("scripted" if args.mode == "adc" else "none")
    if args.mode == "traditional" and adversary != "none":
        raise CliError(f"--mode traditional runs without an adversary; got --adversary {adversary}")
    if args.resume and args.overwrite:
        raise CliError("--resume and --overwrite contradict each other")
    if args.episodes < 1 or args.max_steps < 1:
        raise CliError("--episodes and --max-steps must be >= 1")
    if args.operator == "scripted" and adversary in IN_PROCESS_ADVERSARIES:
        return _collect_in_process(args, adversary)
    return _collect_graph(args, adversary)


def _driver_args(args: argparse.Namespace) -> argparse.Namespace:
    backend = args.backend or ("robosuite" if args.driver == "sim" else None)
    return argparse.Namespace(driver=args.driver, backend=backend, task=args.task if args.driver == "sim" else None,
                              cameras=args.cameras, camera_size=args.camera_size, rate=args.rate,
                              driver_config=args.driver_config)


def _run_dir(args: argparse.Namespace) -> Path:
    from robot_irl.cli import CliError
    from robot_irl.runs import prepare_run_dir

    if args.resume:
        path = Path(args.out)
        if not (path / "dataset" / "meta" / "info.json").is_file():
            raise CliError(f"--resume: no dataset to append to at {path / 'dataset'}")
        return path
    try:
        return prepare_run_dir(args.out, overwrite=args.overwrite)
    except FileExistsError as e:
        raise CliError(str(e)) from None


def _run_config(args: argparse.Namespace, adversary: str, extra: dict) -> dict:
    keys = ("task", "episodes", "mode", "operator", "preset", "cameras", "camera_size", "seed", "max_steps",
            "hold_after_success", "stop_on_success", "noise", "resume", "driver", "backend", "rate")
    return {"command": "collect", **{k: getattr(args, k) for k in keys}, "adversary": adversary, **extra}


def _collect_in_process(args: argparse.Namespace, adversary_name: str) -> int:
    from robot_irl.cli import CliError, _open_driver
    from robot_irl.collect.adversary import ADVERSARIES, AdversaryConfig
    from robot_irl.collect.operators import OPERATORS
    from robot_irl.collect.session import collect
    from robot_irl.runs import save_run_config

    driver, backend, cfg = _open_driver(_driver_args(args))
    adversary_config = AdversaryConfig.preset(args.preset) if adversary_name == "scripted" else None
    run_dir = _run_dir(args)
    save_run_config(run_dir, _run_config(args, adversary_name, {
        "backend": backend, "driver_config": cfg.to_dict(),
        "adversary_config": adversary_config.to_dict() if adversary_config else None}),
        name="config.json" if not args.resume else "config.resume.json")
    with driver:
        try:
            operator = OPERATORS.get(args.operator).from_driver(driver, seed=args.seed, noise=args.noise)
        except ValueError as e:
            raise CliError(f"operator {args.operator!r}: {e}; on {backend}, collect with a human operator "
                           f"(--operator keyboard or joy)") from None
        adversary = None
        if args.mode == "adc":
            adversary = ADVERSARIES.get(adversary_name)(adversary_config, seed=args.seed) \
                if adversary_config is not None else ADVERSARIES.get(adversary_name)()
        report = collect(driver, operator, adversary, args.episodes, args.max_steps, out=run_dir, mode=args.mode,
                         seed=args.seed, resume=args.resume, overwrite=args.overwrite,
                         stop_on_success=args.stop_on_success, hold_after_success=args.hold_after_success)
    print(report.format_report())
    print(f"report: {run_dir / 'report.json'}")
    return 0


def _collect_graph(args: argparse.Namespace, adversary: str) -> int:
    from robot_irl.cli import CliError
    from robot_irl.graphs import GRAPHS
    from robot_irl.launcher import up
    from robot_irl.runs import save_run_config

    if adversary not in GRAPH_ADVERSARIES:
        raise CliError(f"--adversary {adversary} runs in process only, with --operator scripted; with a human "
                       f"operator ({args.operator}) the adversary is {' or '.join(GRAPH_ADVERSARIES)}")
    if "collect" not in GRAPHS:
        raise CliError(f"the 'collect' ROS 2 graph is not available (graphs: {', '.join(GRAPHS.names())})")
    run_dir = _run_dir(args)
    save_run_config(run_dir, _run_config(args, adversary, {"graph": "collect"}),
                    name="config.json" if not args.resume else "config.resume.json")
    who = f"operator {args.operator}" + (" with the web adversary console" if adversary == "console" else "")
    print(f"robot-irl collect: {who} runs the `collect` ROS 2 graph (driver, recorder, teleop"
          f"{', console' if adversary == 'console' else ''} nodes); Ctrl-C stops it", flush=True)
    backend = args.backend or ("robosuite" if args.driver == "sim" else None)
    accepted = inspect.signature(GRAPHS.get("collect")).parameters
    dataset_arg = "dataset" if "dataset" in accepted else "out"  # the recorder's dataset root
    return up("collect", driver=args.driver, backend=backend, task=args.task if args.driver == "sim" else None,
              cameras=args.cameras, rate=args.rate, driver_config=args.driver_config,
              resume=args.resume, overwrite=args.overwrite, operator=args.operator, console=adversary == "console",
              **({"episodes": args.episodes, "max_steps": args.max_steps, "seed": args.seed}
                 if args.operator == "scripted" else {}),
              **{dataset_arg: str(run_dir / "dataset")})
