"""PPO samples/s end to end on the Go1 env (env + learner), and the time per PPO iteration split into rollout and
learner time, for the experiment's network sizes and for rsl_rl's [512, 256, 128], on CPU (and CUDA if present).

    MUJOCO_GL=egl .venv/bin/python bench/bench_ppo.py [--envs 128] [--steps-per-env 24] [--repeats 5]
        [--kinds dr hib] [--sizes 128,128 512,256,128] [--env-threads 2] [--devices cpu cuda]

One :class:`robot_irl.legged.train.LeggedRunner` per (device, network size, policy kind) with the experiment's
training setup (:func:`robot_irl.experiments.hib._cpu_train`: ``num_envs`` x ``steps_per_env`` samples per
iteration, 5 epochs x 4 minibatches, ``train`` randomization). Every runner does one warm-up iteration, then the
cases are timed round-robin, ``--repeats`` iterations each (a machine shared with other work loads every case
alike); the table shows medians:

* ``rollout s``: collecting one iteration (env steps + one batched actor call per step); ``env s``: its
  ``env.step`` part alone; ``learner s``: GAE + the PPO update (RMA's phase 1) / the adaptation update;
* ``env samples/s``: samples over ``env s`` (physics + observation + reward); ``learner samples/s``: samples over
  ``learner s``; ``end-to-end samples/s``: samples over the whole iteration (what a training run gets).

Prints a markdown table; writes nothing but a scratch run folder that is removed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("MUJOCO_GL", "egl")


def make_runner(device: str, hidden: tuple[int, ...], kind: str, args, out: str):
    from robot_irl.experiments.hib import _cpu_train
    from robot_irl.legged.train import LeggedRunner

    base = _cpu_train()
    ac = base.actor_critic.replace(kind=kind, actor_hidden=hidden, critic_hidden=hidden)
    config = base.replace(num_envs=args.envs, steps_per_env=args.steps_per_env, device=device,
                          env_threads=args.env_threads, num_threads=args.torch_threads, actor_critic=ac.to_dict(),
                          total_steps=args.envs * args.steps_per_env * 1000)
    runner = LeggedRunner(config, out)
    runner._start()
    return runner


def one_iteration(runner) -> dict[str, float]:
    import torch

    t0 = time.perf_counter()
    timing = runner.collect("rl")
    t1 = time.perf_counter()
    runner.learn("rl")
    if runner.device.startswith("cuda"):
        torch.cuda.synchronize()
    t2 = time.perf_counter()
    return {"rollout_s": t1 - t0, "env_s": timing["env_s"], "learn_s": t2 - t1, "total_s": t2 - t0}


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", type=int, default=128)
    parser.add_argument("--steps-per-env", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--kinds", nargs="+", default=["dr", "hib"], choices=["dr", "oracle", "rma", "hib"])
    parser.add_argument("--sizes", nargs="+", default=["128,128", "512,256,128"])
    parser.add_argument("--env-threads", type=int, default=2)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when torch sees a GPU")
    args = parser.parse_args(argv)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    sizes = [tuple(int(x) for x in s.split(",")) for s in args.sizes]
    scratch = tempfile.mkdtemp(prefix="bench_ppo_")
    try:
        cases = []
        for device in devices:
            for hidden in sizes:
                for kind in args.kinds:
                    runner = make_runner(device, hidden, kind, args, os.path.join(scratch, f"{len(cases)}"))
                    one_iteration(runner)  # warm-up
                    cases.append(((device, hidden, kind), runner, []))
        for _ in range(args.repeats):
            for _, runner, times in cases:
                times.append(one_iteration(runner))
        batch = args.envs * args.steps_per_env
        print(f"PPO on go1_flat (train randomization), {args.envs} envs x {args.steps_per_env} steps = {batch} "
              f"samples per iteration, 5 epochs x 4 minibatches, env threads {args.env_threads}, torch threads "
              f"{args.torch_threads}; medians of {args.repeats} iterations per case\n")
        header = ["device", "actor/critic", "policy", "rollout s", "env s", "learner s", "iteration s",
                  "env samples/s", "learner samples/s", "end-to-end samples/s"]
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for (device, hidden, kind), runner, times in cases:
            med = {k: statistics.median(t[k] for t in times) for k in times[0]}
            row = [device, "x".join(map(str, hidden)), kind, f"{med['rollout_s']:.3f}", f"{med['env_s']:.3f}",
                   f"{med['learn_s']:.3f}", f"{med['total_s']:.3f}", f"{batch / med['env_s']:.0f}",
                   f"{batch / med['learn_s']:.0f}", f"{batch / med['total_s']:.0f}"]
            print("| " + " | ".join(row) + " |")
            runner.env.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
