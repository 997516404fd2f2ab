"""``robot-irl train-reward`` and ``robot-irl relabel``: a reward model from preference labels, and datasets whose
rewards are the learned ones.

``train-reward`` fits an ensemble reward model to the labels of a ``robot-irl label`` run (Bradley-Terry
cross-entropy, RL-VLM-F's recipe; :mod:`robot_irl.learn.reward`), writes it to ``OUT/reward_model`` with
``metrics.jsonl``, ``learning_curve.png`` and ``report.json``, prints a summary and, with ``--relabel``, writes a
relabelled copy of the dataset. ``relabel`` does the last step alone for any reward model and dataset
(:mod:`robot_irl.learn.relabel`). Light to import: torch is imported only when a command runs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

INPUTS = ("auto", "state", "image")  # RewardModelConfig.inputs (a test keeps them in step)
SCALINGS = ("none", "standardize", "minmax", "affine")  # RewardScaling.mode

TRAIN_EXAMPLES = """examples:
  robot-irl train-reward --labels runs/lift/labels --out runs/lift/reward
  robot-irl train-reward --labels runs/lift/labels --dataset runs/lift/dataset --inputs image \\
      --config '{ensemble: 5, image_size: 64, ties: half}' --relabel runs/lift/dataset_learned
  robot-irl train-reward --labels runs/d4rl/labels --dataset runs/d4rl/data.hdf5 --out runs/d4rl/reward \\
      --relabel runs/d4rl/data_learned.hdf5 --scaling standardize
"""
RELABEL_EXAMPLES = """examples:
  robot-irl relabel --reward-model runs/lift/reward --dataset runs/lift/dataset --out runs/lift/dataset_learned
  robot-irl relabel --reward-model runs/d4rl/reward --dataset data.hdf5 --out data_learned.hdf5 --scaling none
  robot-irl relabel --reward-model runs/lift/reward --dataset ds --out ds_learned --scaling affine --scale 2 --shift -1
"""


def _add_scaling_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reward scaling (over the whole dataset; recorded with the output)")
    g.add_argument("--scaling", default="minmax", choices=SCALINGS,
                   help="minmax: to [0, 1] (default); standardize: zero mean, unit std; affine: --scale/--shift; "
                        "none: raw model outputs")
    g.add_argument("--scale", type=float, default=None, help="affine scaling: multiply by this")
    g.add_argument("--shift", type=float, default=None, help="affine scaling: then add this")


def add_train_reward_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``train-reward`` to ``subparsers`` (from ``ArgumentParser.add_subparsers``); returns its parser."""
    p = subparsers.add_parser(
        "train-reward", help="train a reward model on preference labels (Bradley-Terry, ensemble), optionally "
                             "relabel the dataset", description=__doc__.split("\n\n")[0], epilog=TRAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", required=True, help="a `robot-irl label` run folder (or its labels.jsonl)")
    p.add_argument("--dataset", default=None, help="LeRobot dataset folder or D4RL .hdf5 (default: the one the "
                                                   "label run labelled)")
    p.add_argument("--out", required=True, help="run folder (new or empty) for the model, metrics and report")
    p.add_argument("--config", default=None, help="a RewardModelConfig as a YAML file or inline YAML/JSON; flags win")
    p.add_argument("--inputs", default=None, choices=INPUTS, help="state MLP or image CNN (default: auto, images "
                                                                  "when the labels were made on images)")
    p.add_argument("--camera", default=None, help="camera for image inputs (default: the label run's)")
    p.add_argument("--ties", default=None, choices=("drop", "half"), help="ties: drop them (default) or 0.5 targets")
    p.add_argument("--ensemble", type=int, default=None, help="ensemble members (default: 3)")
    p.add_argument("--max-epochs", type=int, default=None, help="epoch limit (default: 100)")
    p.add_argument("--seed", type=int, default=None, help="seed for the split, initialisation and minibatches")
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda[:N]")
    p.add_argument("--relabel", default=None, metavar="OUT_DATASET",
                   help="also write the dataset relabelled with the learned reward here")
    _add_scaling_args(p)
    p.add_argument("--overwrite", action="store_true", help="reuse a non-empty --out / replace --relabel")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train_reward)
    return p


def add_relabel_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``relabel`` to ``subparsers``; returns its parser."""
    p = subparsers.add_parser(
        "relabel", help="write a copy of a dataset whose rewards come from a learned reward model",
        description="Score every frame with a reward model (ensemble mean), rescale and write a new dataset: "
                    "LeRobot next.reward (the original in next.reward_true) or D4RL rewards (the original in "
                    "infos/rewards_true). The input is never modified.",
        epilog=RELABEL_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reward-model", required=True, help="a train-reward run folder or its reward_model folder")
    p.add_argument("--dataset", required=True, help="LeRobot dataset folder or D4RL .hdf5 file")
    p.add_argument("--out", required=True, help="the new dataset (a folder, or an .hdf5 file for D4RL)")
    _add_scaling_args(p)
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda[:N]")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_relabel)
    return p


# ---------------------------------------------------------------------------------------------------------------
# flags -> configs
# ---------------------------------------------------------------------------------------------------------------
def reward_config_from_args(args: argparse.Namespace):
    """The :class:`~robot_irl.learn.reward.RewardModelConfig` for the parsed flags (``--config``, flags over it)."""
    from robot_irl.cli import _load_mapping
    from robot_irl.learn.reward import RewardModelConfig

    data = _load_mapping(args.config, "--config")
    flags = {"inputs": args.inputs, "camera": args.camera, "ties": args.ties, "ensemble": args.ensemble,
             "max_epochs": args.max_epochs, "seed": args.seed, "device": args.device}
    data.update({k: v for k, v in flags.items() if v is not None})
    return RewardModelConfig.from_dict(data)


def scaling_from_args(args: argparse.Namespace):
    from robot_irl.cli import CliError
    from robot_irl.learn.relabel import RewardScaling

    if args.scaling != "affine" and (args.scale is not None or args.shift is not None):
        raise CliError(f"--scale/--shift need --scaling affine (got --scaling {args.scaling})")
    values: dict[str, Any] = {"mode": args.scaling}
    if args.scale is not None:
        values["scale"] = args.scale
    if args.shift is not None:
        values["shift"] = args.shift
    return RewardScaling.from_dict(values)


# ---------------------------------------------------------------------------------------------------------------
# summaries
# ---------------------------------------------------------------------------------------------------------------
def _num(x: Any, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def format_train_summary(report: dict) -> str:
    """The reward model run as a small table."""
    pairs = report["pairs"]
    val = report.get("val") or {}
    true = report.get("true_reward") or {}
    rows = [
        ("labels", f"{report['label_run']}"),
        ("dataset", f"{report['dataset']} ({report['dataset_check']})"),
        ("pairs", f"{pairs['used']} used of {pairs['records']} records: {pairs['train']} train, {pairs['val']} "
                  f"held out; {pairs['ties']} ties ({pairs['ties_handling']}), {pairs['failed']} failed"),
        ("inputs", f"{report['inputs']} {report['input'].get('camera') or report['input'].get('state_keys')}, "
                   f"{report['ensemble']} members, segments of {report['segment_length']}, {report['device']}"),
        ("training", f"{report['epochs']} epochs, stopped on {report['stop_reason']}"
                     + (f" (weights of epoch {report['restored_epoch']})" if report.get("restored_epoch") else "")),
        ("accuracy", f"train {_num(report['train']['accuracy'])}, held-out {_num(val.get('accuracy'))}"),
        ("loss", f"train {_num(report['train']['loss'])}, held-out {_num(val.get('loss'))}"),
    ]
    if true:
        rows.append(("vs true", f"{true['signal']} on {true['on']}: Spearman {_num(true.get('spearman'))}, Kendall "
                                f"{_num(true.get('kendall'))}, pair accuracy {_num(true.get('pair_accuracy'))}"))
    rows += [("model", report["model_dir"]), ("report", str(Path(report["out"]) / "report.json"))]
    return "\n".join(f"{k:<10} {v}" for k, v in rows)


def format_relabel_summary(record: dict) -> str:
    s, raw, scaled = record["scaling"], record["learned"], record["scaled"]
    true = record.get("true_reward") or {}
    rows = [("relabelled", f"{record['out']} ({record['kind']}, {record['frames']} frames, {record['reward_key']}"
                           + (f"; original in {record['true_key']}" if record.get("true_key") else "") + ")"),
            ("scaling", f"{s['mode']}: scaled = {s['scale']:.6g} * learned + {s['shift']:.6g}"),
            ("learned", f"min {raw['min']:.4g}, max {raw['max']:.4g}, mean {raw['mean']:.4g}, std {raw['std']:.4g}"),
            ("scaled", f"min {scaled['min']:.4g}, max {scaled['max']:.4g}, mean {scaled['mean']:.4g}, "
                       f"std {scaled['std']:.4g}")]
    if true:
        rows.append(("vs true", f"{true['signal']}: Spearman {_num(true.get('spearman'))}, Kendall "
                                f"{_num(true.get('kendall'))}"))
    return "\n".join(f"{k:<10} {v}" for k, v in rows)


# ---------------------------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------------------------
def cmd_train_reward(args: argparse.Namespace) -> int:
    """Run ``robot-irl train-reward``; user errors are ``robot_irl.cli.CliError`` (one line, exit status 2)."""
    from robot_irl.cli import CliError, _headless_env
    from robot_irl.core.config import ConfigError

    _headless_env()
    try:
        config = reward_config_from_args(args)
        scaling = scaling_from_args(args) if args.relabel else None
        target = Path(args.relabel) if args.relabel else None
        if target is not None and not args.overwrite and target.exists() and (
                target.is_file() or any(target.iterdir())):  # fail before training, not after
            raise FileExistsError(f"--relabel {target} already exists; pass --overwrite or pick another path")
        from robot_irl.learn.reward import train_reward_model

        report = train_reward_model(args.labels, args.dataset, args.out, config, overwrite=args.overwrite,
                                    progress=not args.no_progress)
        print(format_train_summary(report))
        if args.relabel:
            from robot_irl.learn.relabel import relabel_dataset

            record = relabel_dataset(report["model_dir"], report["dataset"], args.relabel, scaling,
                                     overwrite=args.overwrite, progress=not args.no_progress, device=config.device)
            print(format_relabel_summary(record))
    except (ConfigError, CliError, FileExistsError, FileNotFoundError):
        raise
    except (ValueError, KeyError) as e:  # labels, dataset and model errors name what and where
        raise CliError(str(e).strip("'\"")) from None
    return 0


def cmd_relabel(args: argparse.Namespace) -> int:
    """Run ``robot-irl relabel``."""
    from robot_irl.cli import CliError, _headless_env
    from robot_irl.core.config import ConfigError

    _headless_env()
    try:
        from robot_irl.learn.relabel import relabel_dataset

        record = relabel_dataset(args.reward_model, args.dataset, args.out, scaling_from_args(args),
                                 overwrite=args.overwrite, progress=not args.no_progress, device=args.device)
    except (ConfigError, CliError, FileExistsError, FileNotFoundError):
        raise
    except (ValueError, KeyError) as e:
        raise CliError(str(e).strip("'\"")) from None
    print(format_relabel_summary(record))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m robot_irl.learn.cli_reward train-reward|relabel ...``."""
    from robot_irl.cli import CliError
    from robot_irl.core.config import ConfigError

    parser = argparse.ArgumentParser(prog="robot-irl")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_reward_parser(sub)
    add_relabel_parser(sub)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CliError, ConfigError, FileExistsError, FileNotFoundError) as e:
        print(f"robot-irl {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
