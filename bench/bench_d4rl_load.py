"""D4RL-format loading: 1M transitions (hopper-sized: 11-d obs, 3-d actions) read + qlearning_dataset.

Reference, side by side on the same file: a straightforward h5py reader that builds the qlearning dataset with a
per-row Python loop (D4RL's own ``qlearning_dataset`` loops over rows like this). Run:
    .venv/bin/python bench/bench_d4rl_load.py
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from robot_irl.data.d4rl import export_d4rl, load_d4rl, qlearning_dataset

N, OBS, ACT = 1_000_000, 11, 3


def reference_loop(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        data = {k: f[k][()] for k in ("observations", "actions", "rewards", "terminals", "timeouts")}
    obs, nxt, act, rew, done = [], [], [], [], []
    for i in range(len(data["rewards"]) - 1):
        if data["timeouts"][i]:
            continue
        obs.append(data["observations"][i])
        nxt.append(data["observations"][i + 1])
        act.append(data["actions"][i])
        rew.append(data["rewards"][i])
        done.append(bool(data["terminals"][i]))
    return {"observations": np.array(obs), "next_observations": np.array(nxt), "actions": np.array(act),
            "rewards": np.array(rew), "terminals": np.array(done)}


def main() -> None:
    rng = np.random.default_rng(0)
    timeouts = np.zeros(N, bool)
    timeouts[999::1000] = True
    data = {"observations": rng.standard_normal((N, OBS), dtype=np.float32),
            "actions": rng.uniform(-1, 1, (N, ACT)).astype(np.float32),
            "rewards": rng.standard_normal(N, dtype=np.float32), "terminals": np.zeros(N, bool), "timeouts": timeouts}
    with tempfile.TemporaryDirectory() as tmp:
        path = export_d4rl(Path(tmp) / "hopper_like.hdf5", data)
        t = time.perf_counter()
        ours = qlearning_dataset(load_d4rl(path))
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        ref = reference_loop(path)
        t_ref = time.perf_counter() - t
    assert np.array_equal(ours["next_observations"], ref["next_observations"])
    print("command: .venv/bin/python bench/bench_d4rl_load.py")
    print(f"\n| 1M transitions ({OBS}-d obs), load + qlearning_dataset | seconds | vs reference |")
    print("|---|---:|---:|")
    print(f"| per-row Python loop (D4RL-style reference) | {t_ref:.2f} | 1.00x |")
    print(f"| robot_irl.data.d4rl (vectorised) | {t_ours:.2f} | {t_ref / t_ours:.1f}x faster |")


if __name__ == "__main__":
    main()
