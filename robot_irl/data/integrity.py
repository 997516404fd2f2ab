"""Cheap integrity checks of the files a command is about to read; every failure names the file.

A torn or foreign file (a truncated parquet, a half-written ``meta/info.json``, a garbage ``model.safetensors``)
otherwise surfaces deep inside pyarrow, json or safetensors with a message that names no file. These checks read
only what identifies a sound file: a JSON document, a parquet footer, a safetensors header (against the file's
size), so they cost milliseconds even for large datasets and checkpoints.

* :func:`read_json` — a JSON file, or :class:`CorruptFileError` naming it;
* :func:`check_dataset_files` — a LeRobot dataset's ``meta/info.json`` and every parquet file (data, episodes,
  tasks): used by ``robot-irl info`` and by the command line before a command reads a dataset;
* :func:`check_checkpoint_files` — a checkpoint folder's ``config.json`` and ``*.safetensors``.

Imports nothing heavy (pyarrow and safetensors inside the functions).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class CorruptFileError(ValueError):
    """A file that cannot be read as what it should be (truncated, garbage, wrong format); the message names it."""


def read_json(path: str | Path) -> Any:
    """The JSON document in ``path``; :class:`CorruptFileError` naming the file when it is not valid UTF-8 JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptFileError(f"{path}: not valid JSON, the file is truncated or corrupt ({e})") from None


def check_parquet(path: str | Path) -> int:
    """Read the footer of the parquet file ``path``; returns its row count. Raises naming the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return int(pq.read_metadata(path).num_rows)
    except (pa.ArrowException, OSError) as e:
        raise CorruptFileError(f"{path}: not a readable parquet file, it is truncated or corrupt ({e})") from None


def check_safetensors(path: str | Path) -> None:
    """Read the header of the safetensors file ``path`` (its tensors must lie inside the file). Raises naming it."""
    try:
        from safetensors import safe_open
    except ImportError:  # without the learn extra nothing here could load it either
        return
    try:
        with safe_open(str(path), framework="numpy") as f:
            f.keys()
    except Exception as e:  # safetensors' SafetensorError is not exported under a stable name
        raise CorruptFileError(f"{path}: not a readable safetensors file, it is truncated or corrupt "
                               f"({type(e).__name__}: {e})") from None


def check_dataset_files(root: str | Path) -> None:
    """``meta/info.json`` and every parquet file of the LeRobot dataset at ``root`` (nothing if it is none)."""
    root = Path(root)
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        return
    info = read_json(info_path)
    if not isinstance(info, dict) or "features" not in info:
        raise CorruptFileError(f"{info_path}: not a LeRobot info.json (no 'features')")
    rows = 0
    for path in sorted((root / "data").glob("chunk-*/*.parquet")):
        rows += check_parquet(path)
    for path in sorted((root / "meta").rglob("*.parquet")):
        check_parquet(path)
    total = info.get("total_frames")
    if isinstance(total, int) and rows != total:
        raise CorruptFileError(f"{root / 'data'}: the parquet files hold {rows} frames but {info_path} says "
                               f"{total}; a data file is missing or was not closed")


def check_checkpoint_files(path: str | Path) -> None:
    """``config.json`` and every ``*.safetensors`` of a checkpoint folder (or of ``checkpoint/`` in a run folder)."""
    path = Path(path)
    for folder in (path / "checkpoint", path):
        if (folder / "config.json").is_file():
            read_json(folder / "config.json")
            for tensors in sorted(folder.glob("*.safetensors")):
                check_safetensors(tensors)
            return
