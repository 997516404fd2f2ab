"""``robot-irl label``: preference labels for pairs of frames of an offline dataset, from a VLM or an oracle.

The run folder ``--out`` gets ``labels.jsonl`` (one record per answered pair, appended as answers arrive),
``vlm_cache.jsonl``, ``config.json`` and ``report.json``. Rerunning the same command resumes: answered pairs are
skipped, failed queries are asked again, a larger ``--pairs`` adds pairs.

The API key is never a flag: it is read from the environment variable named by ``--api-key-env``
(default ``OPENAI_API_KEY``; none set means no ``Authorization`` header, as local servers need). ``--base-url``
and ``--model`` default to ``$OPENAI_BASE_URL`` and ``$OPENAI_MODEL``.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

EXAMPLES = """examples:
  robot-irl label --dataset runs/lift/dataset --backend oracle --pairs 1000 --out runs/lift/labels_oracle
  robot-irl label --dataset runs/lift/dataset --backend vlm --pairs 500 --out runs/lift/labels_qwen \\
      --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-VL-7B-Instruct --concurrency 8   # vLLM
  robot-irl label --dataset runs/lift/dataset --backend vlm --pairs 200 --out runs/lift/labels_ollama \\
      --base-url http://127.0.0.1:11434/v1 --model qwen2.5vl:7b --concurrency 1                 # Ollama
  OPENAI_API_KEY=... robot-irl label --dataset runs/lift/dataset --backend vlm --pairs 200 \\
      --base-url https://api.openai.com/v1 --model gpt-4o-mini --rate-limit 2/s --out runs/lift/labels_gpt
  robot-irl label --dataset runs/lift/dataset --backend oracle --oracle-signal next.success \\
      --oracle-signal observation.environment_state:cube.z --out runs/lift/labels_dense
"""

_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$")
_PER = {None: 1.0, "s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0,
        "hour": 3600.0}


def parse_rate(text: str) -> float:
    """``"2"``, ``"2/s"``, ``"30/min"``, ``"1000/h"`` -> requests per second (0: unlimited)."""
    match = _RATE.match(str(text))
    if not match:
        raise argparse.ArgumentTypeError(f"rate limit {text!r}: expected R, R/s, R/min or R/h")
    return float(match.group(1)) / _PER[match.group(2)]


def add_label_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``label`` to ``subparsers`` (from ``ArgumentParser.add_subparsers``); returns its parser."""
    from robot_irl.label.backends import LABELLERS

    p = subparsers.add_parser(
        "label", help="preference-label pairs of dataset frames with a VLM (OpenAI-compatible) or an oracle",
        description=__doc__.split("\n\n")[0], epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="LeRobot dataset folder or D4RL .hdf5 file")
    p.add_argument("--backend", default="vlm", choices=LABELLERS.names(), help="labeller (default: vlm)")
    p.add_argument("--pairs", type=int, default=None, help="pairs to answer in total (default: 100)")
    p.add_argument("--out", required=True, help="run folder (rerun with the same folder to resume)")
    p.add_argument("--config", default=None, help="a LabelConfig as a YAML file or inline YAML/JSON; flags win")
    p.add_argument("--seed", type=int, default=None, help="pair sampling seed (default: 0)")
    p.add_argument("--segment-length", type=int, default=None, help="frames per side (default: 1, single frames)")
    p.add_argument("--camera", default=None, help="camera key (LeRobot: e.g. agentview; HDF5: the image array)")
    p.add_argument("--goal", default=None, help="goal text for the prompt (default: the dataset's instruction)")
    g = p.add_argument_group("vlm backend")
    g.add_argument("--base-url", default=None, help="OpenAI-compatible base URL (default: $OPENAI_BASE_URL or "
                                                   "http://127.0.0.1:8000/v1)")
    g.add_argument("--model", default=None, help="model name (default: $OPENAI_MODEL)")
    g.add_argument("--api-key-env", default=None, help="NAME of the environment variable holding the API key "
                                                       "(default: OPENAI_API_KEY)")
    g.add_argument("--concurrency", type=int, default=None, help="queries in flight (default: 4)")
    g.add_argument("--rate-limit", type=parse_rate, default=None, help="requests per second, e.g. 2/s or 30/min")
    g.add_argument("--timeout", type=float, default=None, help="per-request timeout in seconds (default: 60)")
    g.add_argument("--max-retries", type=int, default=None, help="retries per request (default: 5)")
    g.add_argument("--prompt-version", default=None, help="prompt template version")
    g.add_argument("--cache", default=None, help="reply cache file (default: OUT/vlm_cache.jsonl)")
    g.add_argument("--no-cache", action="store_true", help="do not read or write the reply cache")
    g = p.add_argument_group("oracle")
    g.add_argument("--oracle-signal", action="append", default=None,
                   help="per-frame signal compared in order, repeatable (e.g. next.success, "
                        "observation.environment_state:cube.z); default: next.success, next.reward / rewards")
    g.add_argument("--no-agreement", action="store_true", help="do not compute agreement with oracle labels")
    p.add_argument("--no-retry-errors", action="store_true", help="on resume, do not ask failed queries again")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_label)
    return p


def config_from_args(args: argparse.Namespace):
    """The :class:`~robot_irl.label.job.LabelConfig` for the parsed flags (``--config`` first, flags over it)."""
    from robot_irl.cli import _load_mapping
    from robot_irl.label.job import LabelConfig

    data = _load_mapping(args.config, "--config")
    vlm = dict(data.pop("vlm", None) or {})
    oracle = dict(data.pop("oracle", None) or {})
    top = {"dataset": args.dataset, "backend": args.backend, "pairs": args.pairs, "seed": args.seed,
           "segment_length": args.segment_length, "camera": args.camera, "goal": args.goal}
    data.update({k: v for k, v in top.items() if v is not None})
    data.setdefault("backend", "vlm")
    if args.no_retry_errors:
        data["retry_errors"] = False
    if args.no_agreement:
        data["agreement"] = False
    flags = {"base_url": args.base_url or (None if "base_url" in vlm else os.environ.get("OPENAI_BASE_URL")),
             "model": args.model or (None if "model" in vlm else os.environ.get("OPENAI_MODEL")),
             "api_key_env": args.api_key_env, "concurrency": args.concurrency, "rate_limit": args.rate_limit,
             "timeout_s": args.timeout, "max_retries": args.max_retries, "prompt_version": args.prompt_version,
             "cache_path": args.cache}
    vlm.update({k: v for k, v in flags.items() if v is not None})
    if args.no_cache:
        vlm["cache"] = False
    if args.oracle_signal:
        oracle["signals"] = list(args.oracle_signal)
    return LabelConfig.from_dict({**data, "vlm": vlm, "oracle": oracle})


def cmd_label(args: argparse.Namespace) -> int:
    """Run ``robot-irl label``; user errors are ``robot_irl.cli.CliError`` (one line, exit status 2)."""
    from robot_irl.cli import CliError, _headless_env
    from robot_irl.core.config import ConfigError
    from robot_irl.label.job import format_report, run_label_job

    _headless_env()
    try:
        config = config_from_args(args)
        report = run_label_job(config, Path(args.out), progress=not args.no_progress)
    except ConfigError:
        raise
    except (ValueError, KeyError) as e:  # dataset, camera, signal and label-file errors name what and where
        raise CliError(str(e).strip("'\"")) from None
    print(format_report(report))
    print(f"labels: {report['run']['labels_file']}\nreport: {Path(args.out) / 'report.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m robot_irl.label.cli_label ...`` (the same as ``robot-irl label ...``)."""
    from robot_irl.cli import CliError
    from robot_irl.core.config import ConfigError

    parser = argparse.ArgumentParser(prog="robot-irl")
    sub = parser.add_subparsers(dest="command", required=True)
    add_label_parser(sub)
    args = parser.parse_args(["label", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CliError, ConfigError, FileExistsError, FileNotFoundError) as e:
        print(f"robot-irl label: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
