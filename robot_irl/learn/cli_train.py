"""``robot-irl train ALGORITHM`` and ``robot-irl eval``: training runs and evaluation in simulation, from the shell.

Light to import (no torch, no simulator): the training and evaluation code is imported when a command runs.

``train`` has one sub-command per learner family, registered in :data:`TRAIN_COMMANDS` (filled here and only
here). Each entry is a help line and, lazily as ``"module:function"``, the function that fills the sub-command's
parser: ``function(parser)`` adds its flags and sets ``func`` (the handler, called with the parsed arguments).
``bc`` and ``iql`` learn from recorded data (:func:`add_bc_arguments`, :func:`add_iql_arguments`: ``--dataset
--steps --out --config --device --seed --resume --eval-every --eval-episodes --eval-max-steps --eval-driver
--eval-driver-config --no-progress``); ``ppo`` trains legged policies in simulation
(:func:`robot_irl.legged.cli.add_ppo_arguments`). Another family adds itself with one more ``register`` line;
its module must stay light to import (no torch, no simulator): it is imported whenever the parser is built.

``--config`` takes a YAML file or inline YAML/JSON mapping with up to four sections, each a config dataclass's
fields: the algorithm's (``bc:`` / ``iql:``, or ``algorithm:``), ``data:`` (:class:`~robot_irl.learn.datasets.
TDDataConfig`), ``features:`` (:class:`~robot_irl.learn.datasets.FeatureSpec`, LeRobot data) and ``trainer:``
(:class:`~robot_irl.learn.trainer.TrainerConfig`); flags win over the file. Everything resolved is saved in
``OUT/config.json`` and in the checkpoint.

``eval`` rolls a checkpoint out on the simulated driver that recorded its training data (the checkpoint
remembers it; ``--backend``/``--driver-config`` choose another), prints the success rate and mean return, writes
``eval.json`` and, with ``--video``, an MP4 of the rollouts (rendered only then, at ``--video-size``).
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robot_irl.core.registry import Registry

TRAIN_EXAMPLES = """examples:
  robot-irl train iql --dataset runs/lift/lift.hdf5 --steps 100000 --out runs/iql-lift
  robot-irl train iql --dataset runs/lift/dataset --steps 20000 --eval-every 5000 --eval-episodes 5 --out runs/iql
  robot-irl train iql --dataset hopper.hdf5 --config '{data: {reward_mode: d4rl_locomotion}}' --out runs/hopper
  robot-irl train iql --dataset antmaze.hdf5 --config '{iql: {expectile: 0.9, beta: 10}, data: {reward_mode: antmaze}}'
  robot-irl train bc --dataset runs/a/dataset --dataset runs/b/dataset --steps 5000 --out runs/bc
  robot-irl train iql --dataset runs/lift/dataset --steps 40000 --out runs/iql --resume   # continue a run
"""
EVAL_EXAMPLES = """examples:
  robot-irl eval --policy runs/iql --episodes 20
  robot-irl eval --policy runs/iql/checkpoint --episodes 5 --max-steps 150 --video runs/iql/rollouts.mp4
  robot-irl eval --policy runs/iql --episodes 20 --adversary held_out          # robosuite: under perturbations
  robot-irl eval --policy runs/hopper --backend mujoco_arm --driver-config '{control_freq: 20}'
"""
CONFIG_SECTIONS = ("algorithm", "data", "features", "trainer")


@dataclass(frozen=True)
class TrainCommand:
    help: str
    add_arguments: str  # "module:function"; function(parser) adds the sub-command's flags and sets func


TRAIN_COMMANDS: Registry[TrainCommand] = Registry("train command")
TRAIN_COMMANDS.register("bc", TrainCommand(
    "behaviour cloning: regress the recorded action (the baseline)", "robot_irl.learn.cli_train:add_bc_arguments"))
TRAIN_COMMANDS.register("iql", TrainCommand(
    "implicit Q-learning: offline RL from rewarded transitions (Kostrikov et al. 2022)",
    "robot_irl.learn.cli_train:add_iql_arguments"))
TRAIN_COMMANDS.register("ppo", TrainCommand(
    "PPO for legged robots in simulation (domain randomization, oracle, RMA, HIB)",
    "robot_irl.legged.cli:add_ppo_arguments"))
#: default gradient steps of the offline learners (IQL: the paper's 1M)
DEFAULT_STEPS = {"bc": 5000, "iql": 1_000_000}


def _cli_error(message: str) -> Exception:
    from robot_irl.cli import CliError

    return CliError(message)


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (``robot-irl train iql: error: ...``), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    parser.error = lambda message: parser.exit(2, f"{parser.prog}: error: {message} (see --help)\n")


def _resolve(target: str):
    module, attr = target.split(":", 1)
    return getattr(importlib.import_module(module), attr)


# ---------------------------------------------------------------------------------------------------------------
# parsers
# ---------------------------------------------------------------------------------------------------------------
def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``train`` (with one sub-command per :data:`TRAIN_COMMANDS` entry) to ``subparsers``."""
    parser = subparsers.add_parser(
        "train", help="train a policy (behaviour cloning, IQL, legged PPO) and write a checkpoint folder",
        description="Train a policy; every resolved config is saved with the run and its checkpoint.",
        epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _one_line_errors(parser)
    commands = parser.add_subparsers(dest="algorithm", required=True, metavar="ALGORITHM",
                                     parser_class=_OneLineParser)
    for name in TRAIN_COMMANDS.names():
        entry = TRAIN_COMMANDS.get(name)
        p = commands.add_parser(name, help=entry.help, description=entry.help, epilog=TRAIN_EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        _resolve(entry.add_arguments)(p)
    return parser


def add_bc_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``robot-irl train bc``."""
    return _add_offline_arguments(p, "bc")


def add_iql_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``robot-irl train iql``."""
    return _add_offline_arguments(p, "iql")


def _add_offline_arguments(p: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """Flags of the learners trained on recorded data."""
    p.add_argument("--dataset", action="append", required=True, metavar="PATH",
                   help="LeRobot dataset folder or D4RL .hdf5/.h5 file; repeat for several LeRobot datasets")
    p.add_argument("--steps", type=int, default=None, help=f"gradient steps (default: {DEFAULT_STEPS[name]:,})")
    p.add_argument("--out", default=None, help=f"run folder (default: runs/train/{name}-<time>)")
    p.add_argument("--config", default=None, help="YAML file or inline YAML/JSON with sections "
                                                  f"{name}/algorithm, data, features, trainer")
    p.add_argument("--device", default=None, help="auto (cuda if available, default) | cpu | cuda[:N]")
    p.add_argument("--seed", type=int, default=None, help="seed (default: 0)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--eval-every", type=int, default=None, help="evaluate in simulation every N steps (default: "
                                                                "never)")
    p.add_argument("--eval-episodes", type=int, default=None, help="episodes per evaluation (default: 5)")
    p.add_argument("--eval-max-steps", type=int, default=None, help="steps per evaluation episode (default: the "
                                                                    "recording's)")
    p.add_argument("--eval-driver", default=None, metavar="BACKEND",
                   help="sim backend for --eval-every (default: the one that recorded the dataset)")
    p.add_argument("--eval-driver-config", default=None, metavar="YAML",
                   help="its config, YAML file or inline mapping (default: the recording's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train_offline)
    return p


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``eval`` to ``subparsers``."""
    p = subparsers.add_parser(
        "eval", help="roll a trained checkpoint out in simulation: success rate, return, optional MP4",
        description="Evaluate a checkpoint on a simulated driver (by default the one that recorded its data).",
        epilog=EVAL_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _one_line_errors(p)
    p.add_argument("--policy", required=True, metavar="CKPT", help="checkpoint folder, or a run folder holding one")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--max-steps", type=int, default=None, help="steps per episode (default: the recording's, or "
                                                               "200)")
    p.add_argument("--seed", type=int, default=100_000, help="first episode seed (default: 100000, away from the "
                                                             "recording's seeds)")
    p.add_argument("--backend", default=None, help="sim backend (default: the one that recorded the training data)")
    p.add_argument("--driver-config", default=None, help="driver config, YAML file or inline mapping")
    p.add_argument("--adversary", default="none", choices=["none", "train", "held_out"],
                   help="scripted adversary preset perturbing the episodes (robosuite)")
    p.add_argument("--stop-on-success", action="store_true", help="end an episode at its first success")
    p.add_argument("--video", default=None, metavar="OUT.mp4", help="write an MP4 of the rollouts")
    p.add_argument("--video-size", type=int, default=128, help="video frame size in pixels (default: 128)")
    p.add_argument("--out", default=None, metavar="EVAL.json", help="results file (default: eval.json in the run "
                                                                    "folder)")
    p.set_defaults(func=cmd_eval)
    return p


# ---------------------------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------------------------
def load_sections(text: str | None, algorithm: str) -> dict[str, dict]:
    """``--config`` -> ``{"algorithm", "data", "features", "trainer"}`` mappings (unknown sections are errors)."""
    from robot_irl.core.config import ConfigError
    from robot_irl.experiments.cli import load_overrides

    raw = load_overrides(text)
    known = {algorithm: "algorithm", **{s: s for s in CONFIG_SECTIONS}}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"--config: unknown section(s) {unknown}; known sections: {sorted(known)}")
    if algorithm in raw and "algorithm" in raw:
        raise ConfigError(f"--config: give the algorithm's fields under {algorithm!r} or 'algorithm', not both")
    out: dict[str, dict] = {s: {} for s in CONFIG_SECTIONS}
    for key, value in raw.items():
        if not isinstance(value, dict):
            raise ConfigError(f"--config: section {key!r} must be a mapping of fields, got {type(value).__name__}")
        out[known[key]] = dict(value)
    return out


def _mapping(text: str | None, what: str) -> dict:
    from robot_irl.cli import _load_mapping

    return _load_mapping(text, what)


def _eval_driver(args: argparse.Namespace, datasets: list[Path]) -> dict | None:
    from robot_irl.learn.datasets import recorded_driver

    recorded = recorded_driver(datasets[0])
    if args.eval_driver is None and args.eval_driver_config is None:
        return recorded
    backend = args.eval_driver or (recorded or {}).get("backend")
    if backend is None:
        raise _cli_error("--eval-driver-config needs --eval-driver BACKEND (no recorded driver for "
                         f"{datasets[0]})")
    config = _mapping(args.eval_driver_config, "--eval-driver-config") if args.eval_driver_config is not None \
        else (recorded or {}).get("config", {}) if recorded and recorded.get("backend") == backend else {}
    return {"backend": backend, "config": config, "max_steps": (recorded or {}).get("max_steps"),
            "from": "command line"}


def cmd_train_offline(args: argparse.Namespace) -> int:
    from robot_irl.cli import _headless_env

    _headless_env()
    from robot_irl.data.d4rl import D4RLFormatError
    from robot_irl.learn.datasets import LearningDataError
    from robot_irl.learn.trainer import CheckpointError

    try:
        return _train_offline(args)
    except (LearningDataError, D4RLFormatError, CheckpointError, FloatingPointError) as e:
        raise _cli_error(str(e)) from None


def _train_offline(args: argparse.Namespace) -> int:
    from robot_irl.learn import ALGORITHMS
    from robot_irl.learn.datasets import TDDataConfig, dataset_kind, load_any
    from robot_irl.learn.trainer import RolloutEvaluator, TrainerConfig
    from robot_irl.runs import save_run_config

    name = args.algorithm
    sections = load_sections(args.config, name)
    datasets = [Path(d) for d in args.dataset]
    for path in datasets:
        dataset_kind(path)  # missing paths and wrong file types fail before anything else
    cls = ALGORITHMS.get(name)
    algo_config = cls.config_class.from_dict(sections["algorithm"], where=f"--config {name}")
    data_config = TDDataConfig.from_dict(sections["data"], where="--config data")
    flags = {"steps": args.steps, "device": args.device, "seed": args.seed, "eval_every": args.eval_every,
             "eval_episodes": args.eval_episodes, "eval_max_steps": args.eval_max_steps}
    trainer_fields = {"steps": DEFAULT_STEPS[name], **sections["trainer"],
                      **{k: v for k, v in flags.items() if v is not None}}
    if args.no_progress:
        trainer_fields["progress"] = False
    trainer = TrainerConfig.from_dict(trainer_fields, where="--config trainer")
    out = Path(args.out) if args.out else Path("runs/train") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and any(out.iterdir()) and not args.resume:
        raise _cli_error(f"run folder {out} already exists and is not empty; pass --resume to continue it or pick "
                         "another --out")
    transitions = bool(getattr(cls, "transitions", False))
    data, encoder, codec, info = load_any(datasets, data_config, sections["features"] or None,
                                          require_reward=transitions)
    driver = _eval_driver(args, datasets)
    evaluator = None
    if trainer.eval_every:
        if driver is None:
            raise _cli_error(f"--eval-every needs a sim driver: {datasets[0]} has no recorded driver config "
                             "(config.json of the run that recorded it); pass --eval-driver BACKEND "
                             "[--eval-driver-config YAML]")
        max_steps = trainer.eval_max_steps or driver.get("max_steps") or 200
        evaluator = RolloutEvaluator(driver["backend"], driver["config"], trainer.eval_episodes, max_steps,
                                     trainer.eval_seed)
    out.mkdir(parents=True, exist_ok=True)
    run_config = {"command": f"train {name}", "datasets": [str(d) for d in datasets], "algorithm": name,
                  "algorithm_config": cls.resolve_config(algo_config, trainer.steps).to_dict()
                  if hasattr(cls, "resolve_config") else algo_config.to_dict(),
                  "data": info, "features": encoder.spec.to_dict(), "trainer": trainer.to_dict(), "driver": driver}
    save_run_config(out, run_config, name="config.resume.json" if args.resume and (out / "config.json").is_file()
                    else "config.json")
    print(f"robot-irl train {name}: {info['frames']} frames, {info['episodes']} episodes "
          f"({info['kind']}), {encoder.dim}-d observations, {codec.dim}-d actions -> {out}", flush=True)
    summary = _train(data, encoder, codec, out, name, algo_config, trainer, args.resume, driver, info,
                     data_config if transitions else None, evaluator)
    _print_summary(name, summary)
    return 0


def _train(data, encoder, codec, out, name, algo_config, trainer, resume, driver, info, data_config, evaluator):
    from robot_irl.learn.trainer import train_policy

    meta = {"driver": driver, "dataset": info}
    return train_policy(data, encoder, codec, out, name, algo_config, trainer, resume=resume, meta=meta,
                        data_config=data_config, evaluator=evaluator)


def _print_summary(name: str, summary: dict) -> None:
    final = {k: v for k, v in summary["final"].items() if k not in ("step", "time_s")}
    shown = ", ".join(f"{k} {v:.4g}" for k, v in final.items())
    what = f"{summary['transitions']} transitions" if "transitions" in summary else f"{summary['frames']} frames"
    print(f"trained {name} for {summary['steps']} steps on {what} ({summary['device']}, "
          f"{summary['updates_per_s']:.0f} updates/s{', resumed' if summary['resumed'] else ''})")
    print(f"final: {shown}")
    for e in summary.get("evaluations", []):
        print(f"  eval at step {e['step']}: success rate {e.get('eval/success_rate', float('nan')):.2f}, "
              f"return {e.get('eval/return', float('nan')):.3f}")
    print(f"checkpoint: {summary['checkpoint']}")


# ---------------------------------------------------------------------------------------------------------------
# eval
# ---------------------------------------------------------------------------------------------------------------
class VideoWriter:
    """Frames of a MuJoCo-based driver rendered from a small camera into an MP4 (H.264 if PyAV's FFmpeg has it,
    else MPEG-4 Part 2)."""

    CAMERAS = ("agentview", "frontview")

    def __init__(self, driver, path: str | Path, size: int = 128, fps: float = 20.0) -> None:
        import av

        from robot_irl.drivers.mujoco_arm import import_mujoco

        if getattr(driver, "model", None) is None or getattr(driver, "data", None) is None:
            raise _cli_error(f"--video: driver {driver.name} is not MuJoCo-based; it cannot be rendered")
        if size < 16 or size % 2:
            raise _cli_error(f"--video-size must be an even number >= 16, got {size}")
        mj = import_mujoco()
        self._mj, self.driver, self.size = mj, driver, size
        model = driver.model
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, size)
        model.vis.global_.offheight = max(model.vis.global_.offheight, size)
        self.renderer = mj.Renderer(model, size, size)
        self.option = mj.MjvOption()
        if (model.geom_group == 1).any():
            self.option.geomgroup[0] = 0  # robosuite: visual geoms only
        names = [mj.mj_id2name(model, mj.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
        named = [c for c in self.CAMERAS if c in names]
        if named:
            self.camera: Any = named[0]
        else:
            self.camera = mj.MjvCamera()
            mj.mjv_defaultFreeCamera(model, self.camera)
            self.camera.distance *= 0.6
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(self.path), mode="w")
        self.stream, self.codec = None, None
        for codec in ("libx264", "mpeg4"):
            if codec not in av.codecs_available:
                continue
            try:
                self.stream = self.container.add_stream(codec, rate=max(1, round(fps)))
                self.codec = codec
                break
            except Exception:  # noqa: BLE001 - listed but unusable in this FFmpeg build: try the next
                continue
        if self.stream is None:
            self.container.close()
            raise _cli_error("--video: PyAV's FFmpeg has neither libx264 nor mpeg4")
        self.stream.width = self.stream.height = size
        self.stream.pix_fmt = "yuv420p"
        self.frames = 0

    def capture(self, *_: Any) -> None:
        import av

        self.renderer.update_scene(self.driver.data, camera=self.camera, scene_option=self.option)
        frame = av.VideoFrame.from_ndarray(self.renderer.render(), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        self.renderer.close()


def cmd_eval(args: argparse.Namespace) -> int:
    from robot_irl.cli import _headless_env

    _headless_env()
    from robot_irl.learn.datasets import LearningDataError
    from robot_irl.learn.trainer import CheckpointError

    try:
        return _eval(args)
    except (LearningDataError, CheckpointError) as e:
        raise _cli_error(str(e)) from None


def _eval(args: argparse.Namespace) -> int:
    from robot_irl.learn.policy import LearnedPolicy
    from robot_irl.learn.trainer import RolloutEvaluator, read_checkpoint_config

    if args.episodes < 1:
        raise _cli_error(f"--episodes must be >= 1, got {args.episodes}")
    config = read_checkpoint_config(args.policy)
    recorded = config.get("driver") or {}
    backend = args.backend or recorded.get("backend")
    if backend is None:
        raise _cli_error(f"{config['path']}: the checkpoint does not say which driver recorded its data; pass "
                         "--backend NAME [--driver-config YAML]")
    if args.driver_config is not None:
        driver_config = _mapping(args.driver_config, "--driver-config")
    else:
        driver_config = recorded.get("config", {}) if backend == recorded.get("backend") else {}
    max_steps = args.max_steps or recorded.get("max_steps") or 200
    evaluator = RolloutEvaluator(backend, driver_config, args.episodes, max_steps, args.seed,
                                 args.stop_on_success, args.adversary)
    video = None
    try:
        driver = evaluator.open()
        policy = LearnedPolicy(config["path"])
        policy.check_features(driver)
        if args.video:
            video = VideoWriter(driver, args.video, args.video_size, driver.fps)
        print(f"robot-irl eval: {config['algorithm']} checkpoint at step {config.get('step', '?')} on {backend}, "
              f"{args.episodes} episode(s) x {max_steps} steps", flush=True)
        result = evaluator(config["path"], policy=policy, on_step=video.capture if video else None, progress=True)
    finally:
        if video is not None:
            video.close()
        evaluator.close()
    run_folder = Path(config["path"]).parent
    out = Path(args.out) if args.out else run_folder / "eval.json"
    report = {"checkpoint": config["path"], "algorithm": config["algorithm"], "step": config.get("step"),
              "driver": {"backend": backend, "config": driver_config}, "max_steps": max_steps, "seed": args.seed,
              "adversary": args.adversary, "stop_on_success": args.stop_on_success, **result,
              "episodes": [r.to_dict() for r in evaluator.results],
              "video": str(video.path) if video else None, "video_codec": video.codec if video else None}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"success rate {result['success_rate']:.2f} over {args.episodes} episodes, mean return "
          f"{result['return']:.3f}")
    print(f"results: {out}" + (f", video: {video.path} ({video.frames} frames, {video.codec})" if video else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m robot_irl.learn.cli_train train|eval ...``: the two commands alone, with ``robot-irl``'s error
    handling (a user error is one line, exit status 2)."""
    from robot_irl.cli import CliError
    from robot_irl.core import ConfigError, UnknownNameError

    parser = argparse.ArgumentParser(prog="robot-irl")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub)
    add_eval_parser(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, ConfigError, UnknownNameError, FileExistsError, FileNotFoundError) as e:
        print(f"robot-irl {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
