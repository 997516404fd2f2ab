"""Steps/s of the legged env against raw MuJoCo on the same Go1 model, in one run.

    MUJOCO_GL=egl .venv/bin/python bench/bench_legged.py [--envs 256] [--steps 100] [--threads 1 2] [--repeats 3]

Rows (median of ``--repeats`` timed runs after a warm-up; physics steps are 4 ms, a policy step is 5 of them):

* raw ``mj_step`` loop, one ``MjData``, single thread, holding the home pose (the reference, 1.00x);
* raw ``mujoco.rollout`` over N envs (one ``MjModel`` copy each, as the env does, and all sharing one model: what
  per-env copies cost), 5 steps per call, per thread count;
* threads over ``mj_step`` (one ``MjData`` per env, a Python thread pool; ``mj_step`` releases the GIL), and one
  shared model with each env's randomized parameters written into it before its ``mj_step``: the alternatives the
  env does not use, for the comparison;
* ``LeggedVecEnv`` (go1_flat, randomization none), zero action: physics and policy (= env) steps/s;
* ``LeggedVecEnv`` (train randomization with pushes and noise), uniform random actions in [-1, 1]: robots fall
  and reset, so this includes resets.

The ratio column is physics steps/s over the raw single-thread loop; the last column counts this process's CPU
time (all threads), which a machine shared with other work disturbs less than wall time. All cases are timed
round-robin. Prints a markdown table; writes nothing.
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


def interleaved_rates(cases: list, repeats: int) -> list[tuple[float, float]]:
    """``cases``: ``(run, units)`` pairs. Each is warmed up once, then timed ``repeats`` times round-robin (so a
    machine shared with other work loads every case alike). Returns per case the median ``units`` per wall-clock
    second and per CPU second (this process's CPU time, all threads)."""
    for run, _ in cases:
        run()
    wall: list[list[float]] = [[] for _ in cases]
    cpu: list[list[float]] = [[] for _ in cases]
    for _ in range(repeats):
        for i, (run, units) in enumerate(cases):
            w0, c0 = time.perf_counter(), time.process_time()
            run()
            wall[i].append(units / (time.perf_counter() - w0))
            cpu[i].append(units / max(time.process_time() - c0, 1e-9))
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(wall, cpu)]


def bench_raw(model, steps: int):
    import mujoco

    d = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, d, model.key("home").id)
    home = d.ctrl.copy()

    def run():
        for _ in range(steps):
            d.ctrl[:] = home
            mujoco.mj_step(model, d, nstep=5)

    return run, steps * 5


def bench_rollout(model, envs: int, steps: int, threads: int, shared: bool = False):
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

    return run, steps * envs * 5


def bench_thread_pool(model, envs: int, steps: int, threads: int):
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

    pool = ThreadPoolExecutor(threads)  # lives as long as the process

    def run():
        for _ in range(steps):
            if threads == 1:
                work(chunks[0])
            else:
                list(pool.map(work, chunks))

    return run, steps * envs * 5


def bench_shared_writes(built, envs: int, steps: int):
    """One shared model; each env's randomized parameters are written into it before that env's ``mj_step``."""
    import mujoco

    from robot_irl.legged.model import apply_dynamics
    from robot_irl.legged.randomization import DynamicsSampler, get_randomization

    model, layout = built.model, built.layout
    params = DynamicsSampler(get_randomization("train"), layout.nominal_friction).sample(np.random.default_rng(0), envs)
    params[:, -1] = 0.0  # no delay: the same servo targets as the other rows
    datas = [mujoco.MjData(model) for _ in range(envs)]
    for d in datas:
        mujoco.mj_resetDataKeyframe(model, d, model.key("home").id)
    home = datas[0].ctrl.copy()

    def run():
        for _ in range(steps):
            for i, d in enumerate(datas):
                apply_dynamics(model, layout, params[i])
                d.ctrl[:] = home
                mujoco.mj_step(model, d, nstep=5)

    return run, steps * envs * 5


def bench_env(task: str, envs: int, steps: int, threads: int, random_actions: bool):
    """LeggedVecEnv's physics steps (5 per env step)."""
    from robot_irl.legged.env import make_legged_env

    env = make_legged_env(task, num_envs=envs, randomization="train" if random_actions else "none", seed=0,
                          num_threads=threads)
    rng = np.random.default_rng(0)
    actions = ([rng.uniform(-1, 1, (envs, 12)).astype(np.float32) for _ in range(steps)] if random_actions
               else [np.zeros((envs, 12), np.float32)] * steps)

    def run():
        for a in actions:
            env.step(a)

    return run, steps * envs * 5


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

    built = build_model(LEGGED_TASKS.get(args.task).terrain)
    model = copy.copy(built.model)  # the shared-writes row writes into built.model
    cases = [("raw `mj_step` loop, 1 MjData, 1 thread (home pose)", bench_raw(model, args.steps * args.envs // 4))]
    for t in args.threads:
        cases.append((f"raw `mujoco.rollout`, {args.envs} envs (a model copy each), {t} thread(s)",
                      bench_rollout(model, args.envs, args.steps, t)))
        cases.append((f"raw `mujoco.rollout`, {args.envs} envs sharing one model, {t} thread(s)",
                      bench_rollout(model, args.envs, args.steps, t, shared=True)))
    for t in args.threads:
        cases.append((f"thread pool over `mj_step`, {args.envs} envs, {t} thread(s)",
                      bench_thread_pool(model, args.envs, args.steps, t)))
    cases.append((f"one shared model, randomized parameters written before each env's `mj_step`, {args.envs} envs",
                  bench_shared_writes(built, args.envs, args.steps)))
    for random_actions in (False, True):
        what = "random actions, train randomization (falls, resets, pushes)" if random_actions else \
            "zero action, no randomization"
        for t in args.threads:
            cases.append((f"LeggedVecEnv {args.task}, {args.envs} envs, {t} thread(s), {what}",
                          bench_env(args.task, args.envs, args.steps, t, random_actions)))
    rates = interleaved_rates([c[1] for c in cases], args.repeats)
    raw = rates[0][0]

    print(f"command: MUJOCO_GL={os.environ['MUJOCO_GL']} {sys.executable} {' '.join(sys.argv)}")
    print(f"machine: {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at the end; mujoco "
          f"{mujoco.__version__}; median of {args.repeats} interleaved runs each\n")
    print("| what | physics steps/s | policy steps/s | vs raw mj_step | physics steps per CPU-s |")
    print("|---|---:|---:|---:|---:|")
    for (what, _), (wall, cpu) in zip(cases, rates):
        print(f"| {what} | {wall:,.0f} | {wall / 5:,.0f} | {wall / raw:.2f}x | {cpu:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
