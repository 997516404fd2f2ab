"""Steps/s of the legged env against raw MuJoCo on the same Go1 model, in one run.

    MUJOCO_GL=egl .venv/bin/python bench/bench_legged.py [--envs 256] [--steps 100] [--threads 1 2] [--repeats 3]

Rows (median of ``--repeats`` timed runs after a warm-up; physics steps are 4 ms, a policy step is 5 of them):

* raw ``mj_step`` loop, one ``MjData``, single thread, holding the home pose (the reference, 1.00x);
* raw ``mujoco.rollout`` over N envs (one ``MjModel`` copy each, as the env does, and all sharing one model: what
  per-env copies cost), 5 steps per call, per thread count;
* threads over ``mj_step`` (one ``MjData`` per env, a Python thread pool; ``mj_step`` releases the GIL): the
  alternative the env does not use, for the comparison;
* ``LeggedVecEnv`` (go1_flat, randomization none), zero action: physics and policy (= env) steps/s;
* ``LeggedVecEnv`` (train randomization with pushes and noise), uniform random actions in [-1, 1]: robots fall
  and reset, so this includes resets.

The ratio column is physics steps/s over the raw single-thread loop. Prints a markdown table; writes nothing.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")


def median_rate(run, units: int, repeats: int) -> float:
    """Median of ``units / seconds`` over ``repeats`` calls of ``run()`` (after one warm-up call)."""
    run()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        rates.append(units / (time.perf_counter() - start))
    return statistics.median(rates)


def bench_raw(model, steps: int, repeats: int) -> float:
    import mujoco

    d = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, d, model.key("home").id)
    home = d.ctrl.copy()

    def run():
        for _ in range(steps):
            d.ctrl[:] = home
            mujoco.mj_step(model, d, nstep=5)

    return median_rate(run, steps * 5, repeats)


def bench_rollout(model, envs: int, steps: int, threads: int, repeats: int, shared: bool = False) -> float:
    import mujoco
    from mujoco import rollout

    d = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, d, model.key("home").id)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    s0 = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, d, s0, spec)
    models = [model] * envs if shared else [copy.copy(model) for _ in range(envs)]
    datas = [mujoco.MjData(model) for _ in range(threads)]
    state = np.tile(s0, (envs, 1))
    ctrl = np.tile(d.ctrl, (envs, 5, 1))
    out = np.empty((envs, 5, s0.size))
    sensors = np.empty((envs, 5, model.nsensordata))
    runner = rollout.Rollout(nthread=threads if threads > 1 else 0)
    chunk = max(1, envs // (threads * 4))

    def run():
        for _ in range(steps):
            runner.rollout(models, datas, state, ctrl, skip_checks=True, nstep=5, state=out, sensordata=sensors,
                           control_spec=int(mujoco.mjtState.mjSTATE_CTRL), chunk_size=chunk)
            state[:] = out[:, -1]

    try:
        return median_rate(run, steps * envs * 5, repeats)
    finally:
        runner.close()


def bench_thread_pool(model, envs: int, steps: int, threads: int, repeats: int) -> float:
    import mujoco

    models = [copy.copy(model) for _ in range(envs)]
    datas = [mujoco.MjData(model) for _ in range(envs)]
    for d in datas:
        mujoco.mj_resetDataKeyframe(model, d, model.key("home").id)
    home = datas[0].ctrl.copy()
    qpos = np.empty((envs, model.nq))
    qvel = np.empty((envs, model.nv))
    chunks = np.array_split(np.arange(envs), threads)

    def work(idx):
        for i in idx:
            d = datas[i]
            d.ctrl[:] = home
            mujoco.mj_step(models[i], d, nstep=5)
            qpos[i] = d.qpos
            qvel[i] = d.qvel

    with ThreadPoolExecutor(threads) as pool:
        def run():
            for _ in range(steps):
                if threads == 1:
                    work(chunks[0])
                else:
                    list(pool.map(work, chunks))

        return median_rate(run, steps * envs * 5, repeats)


def bench_env(task: str, envs: int, steps: int, threads: int, repeats: int, random_actions: bool) -> float:
    """Policy (env) steps/s of LeggedVecEnv."""
    from robot_irl.legged.env import make_legged_env

    env = make_legged_env(task, num_envs=envs, randomization="train" if random_actions else "none", seed=0,
                          num_threads=threads)
    rng = np.random.default_rng(0)
    actions = ([rng.uniform(-1, 1, (envs, 12)).astype(np.float32) for _ in range(steps)] if random_actions
               else [np.zeros((envs, 12), np.float32)] * steps)

    def run():
        for a in actions:
            env.step(a)

    try:
        return median_rate(run, steps * envs, repeats)
    finally:
        env.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", type=int, default=256, help="envs stepped together")
    p.add_argument("--steps", type=int, default=100, help="policy steps per timed run (raw loop: x envs / 4)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--task", default="go1_flat", choices=["go1_flat", "go1_rough"])
    args = p.parse_args(argv)

    import mujoco

    from robot_irl.legged import LEGGED_TASKS
    from robot_irl.legged.model import build_model

    model = build_model(LEGGED_TASKS.get(args.task).terrain).model
    raw = bench_raw(model, max(args.steps * args.envs // 4, 500), args.repeats)
    rows = [("raw `mj_step` loop, 1 MjData, 1 thread (home pose)", raw, raw / 5, 1.0)]
    for t in args.threads:
        r = bench_rollout(model, args.envs, args.steps, t, args.repeats)
        rows.append((f"raw `mujoco.rollout`, {args.envs} envs (a model copy each), {t} thread(s)", r, r / 5, r / raw))
        r = bench_rollout(model, args.envs, args.steps, t, args.repeats, shared=True)
        rows.append((f"raw `mujoco.rollout`, {args.envs} envs sharing one model, {t} thread(s)", r, r / 5, r / raw))
    for t in args.threads:
        r = bench_thread_pool(model, args.envs, args.steps, t, args.repeats)
        rows.append((f"thread pool over `mj_step`, {args.envs} envs, {t} thread(s)", r, r / 5, r / raw))
    for random_actions in (False, True):
        for t in args.threads:
            pol = bench_env(args.task, args.envs, args.steps, t, args.repeats, random_actions)
            what = ("random actions, train randomization (falls, resets, pushes)" if random_actions
                    else "zero action, no randomization")
            rows.append((f"LeggedVecEnv {args.task}, {args.envs} envs, {t} thread(s), {what}", pol * 5, pol,
                         pol * 5 / raw))

    print(f"command: MUJOCO_GL={os.environ['MUJOCO_GL']} {sys.executable} {' '.join(sys.argv)}")
    print(f"machine: {os.cpu_count()} CPU cores; mujoco {mujoco.__version__}; median of {args.repeats} runs each\n")
    print("| what | physics steps/s | policy steps/s | vs raw mj_step |")
    print("|---|---:|---:|---:|")
    for what, phys, pol, ratio in rows:
        print(f"| {what} | {phys:,.0f} | {pol:,.0f} | {ratio:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
