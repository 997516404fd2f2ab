"""Contact sheets: a grid of camera frames with labels, saved as one PNG (a quick look at what was recorded)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

LABEL_HEIGHT = 12
PAD = 2


def to_hwc_uint8(frame: Any, where: str = "frame") -> np.ndarray:
    """An HxWx3 uint8 array from HxWx3/CxHxW, uint8 or float in [0, 1] (e.g. a LeRobotDataset tensor)."""
    arr = frame.numpy() if hasattr(frame, "numpy") else np.asarray(frame)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3:
        raise ValueError(f"{where}: expected an image HxWx3 or CxHxW, got shape {arr.shape}")
    if arr.shape[0] in (1, 3) and arr.shape[2] not in (1, 3):
        arr = np.transpose(arr, (1, 2, 0))
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.shape[2] != 3:
        raise ValueError(f"{where}: expected 3 channels, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.dtype.kind != "f":
            raise ValueError(f"{where}: expected uint8 or float pixels, got {arr.dtype}")
        arr = np.clip(np.nan_to_num(arr) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return arr


def _rows(frames: Sequence | Mapping[str, Sequence], labels, cols: int) -> tuple[list, list[str | None]]:
    """Cells as (image, label) in grid order; a dict puts each key on its own row(s)."""
    cells, row_titles = [], []
    if isinstance(frames, Mapping):
        label_map = labels or {}
        for name, group in frames.items():
            group_labels = list(label_map.get(name, [None] * len(group)))
            for start in range(0, max(len(group), 1), cols):
                chunk = list(group[start:start + cols])
                chunk_labels = group_labels[start:start + cols]
                cells.append([(to_hwc_uint8(f, f"{name}[{start + i}]"), lab)
                              for i, (f, lab) in enumerate(zip(chunk, chunk_labels + [None] * len(chunk)))])
                row_titles.append(str(name) if start == 0 else None)
        return cells, row_titles
    labels = list(labels) if labels is not None else [str(i) for i in range(len(frames))]
    if len(labels) != len(frames):
        raise ValueError(f"contact_sheet: {len(labels)} labels for {len(frames)} frames")
    items = [(to_hwc_uint8(f, f"frames[{i}]"), lab) for i, (f, lab) in enumerate(zip(frames, labels))]
    cells = [items[i:i + cols] for i in range(0, len(items), cols)]
    return cells, [None] * len(cells)


def contact_sheet(frames: Sequence | Mapping[str, Sequence], out_png: str | Path, cols: int = 8,
                  labels: Sequence[str] | Mapping[str, Sequence[str]] | None = None, scale: int = 1,
                  title: str | None = None) -> Path:
    """Save ``frames`` as a labelled grid PNG and return its path.

    ``frames`` is a list of images (``labels``: one string per frame, default the index) or a dict
    ``{row name: [images]}`` (e.g. one row per episode; ``labels`` then a dict of lists). Images may differ in
    size (each cell is as large as the largest); ``scale`` enlarges small frames (nearest neighbour).
    """
    from PIL import Image, ImageDraw

    if cols < 1 or scale < 1:
        raise ValueError(f"contact_sheet: cols and scale must be >= 1, got {cols}, {scale}")
    cells, row_titles = _rows(frames, labels, cols)
    images = [img for row in cells for img, _ in row]
    if not images:
        raise ValueError("contact_sheet: no frames given")
    cell_h = max(i.shape[0] for i in images) * scale
    cell_w = max(i.shape[1] for i in images) * scale
    title_w = max((len(t) for t in row_titles if t), default=0) * 6 + (PAD * 2 if any(row_titles) else 0)
    top = LABEL_HEIGHT + PAD if title else 0
    ncols = max(len(r) for r in cells)
    sheet = Image.new("RGB", (title_w + ncols * (cell_w + PAD) + PAD,
                              top + len(cells) * (cell_h + LABEL_HEIGHT + PAD) + PAD), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((PAD, PAD), title, fill=(0, 0, 0))
    for r, (row, row_title) in enumerate(zip(cells, row_titles)):
        y = top + PAD + r * (cell_h + LABEL_HEIGHT + PAD)
        if row_title:
            draw.text((PAD, y + cell_h // 2), row_title, fill=(0, 0, 0))
        for c, (img, label) in enumerate(row):
            x = title_w + PAD + c * (cell_w + PAD)
            pil = Image.fromarray(img)
            if scale > 1:
                pil = pil.resize((img.shape[1] * scale, img.shape[0] * scale), Image.NEAREST)
            sheet.paste(pil, (x, y))
            if label:
                draw.text((x, y + cell_h + 1), str(label), fill=(0, 0, 0))
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def contact_sheet_from_dataset(root: str | Path, out_png: str | Path, camera_key: str | None = None,
                               episodes: Sequence[int] | None = None, per_episode: int = 6,
                               scale: int = 1) -> Path:
    """A sheet with one row per episode of ``per_episode`` evenly spaced frames, decoded by LeRobot itself."""
    from robot_irl.data.lerobot_io import load_dataset, read_episodes_meta

    ds = load_dataset(root)
    cameras = list(ds.meta.camera_keys)
    if not cameras:
        raise ValueError(f"{root}: the dataset has no camera features")
    camera_key = camera_key or cameras[0]
    if camera_key not in cameras:
        raise ValueError(f"{root}: no camera {camera_key!r}; cameras: {cameras}")
    meta = read_episodes_meta(root)
    chosen = list(episodes) if episodes is not None else [m["episode_index"] for m in meta]
    frames, labels = {}, {}
    for e in chosen:
        if not 0 <= e < len(meta):
            raise ValueError(f"{root}: no episode {e} (episodes 0..{len(meta) - 1})")
        start, stop = meta[e]["dataset_from_index"], meta[e]["dataset_to_index"]
        picks = np.unique(np.linspace(start, stop - 1, min(per_episode, stop - start)).round().astype(int))
        frames[f"ep {e}"] = [ds[int(i)][camera_key] for i in picks]
        labels[f"ep {e}"] = [f"f{int(i) - start}" for i in picks]
    return contact_sheet(frames, out_png, cols=per_episode, labels=labels, scale=scale, title=camera_key)


def plot_episode_lengths(lengths: Sequence[int], out_png: str | Path, title: str = "episode lengths") -> Path:
    """A bar chart of episode lengths (frames), saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4, len(lengths) * 0.15), 3))
    ax.bar(range(len(lengths)), lengths, color="tab:blue")
    ax.set_xlabel("episode")
    ax.set_ylabel("frames")
    ax.set_title(title)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
