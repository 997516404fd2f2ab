"""Steps/s of the simulated drivers against the raw simulators they wrap, and what a naive robosuite setup costs.

    MUJOCO_GL=egl .venv/bin/python bench/bench_sim_driver.py [--steps 300] [--camera-steps 100] [--repeats 3]

Rows (each the median of ``--repeats`` timed runs after a warm-up):

* robosuite Lift/Panda, OSC_POSE absolute, 20 Hz: raw ``env.step`` vs ``RobosuiteDriver`` (``send_action`` +
  ``get_observation``, i.e. the full control loop) without cameras and with one 84x84 ``agentview`` camera
  (raw: robosuite's own ``use_camera_obs`` rendering; driver: its tuned renderer);
* the naive ``suite.make("Lift", robots="Panda")`` defaults (256x256 camera, hard reset) for reference;
* reset times (raw default hard reset vs the driver's soft reset);
* the small MuJoCo arm: raw ``mj_step`` loop vs ``MujocoArmDriver``.

Prints a markdown table; writes nothing.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from functools import partial

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")


def timed_rate(step, steps: int, repeats: int, warmup: int = 5) -> float:
    """Median steps/s of ``step()`` over ``repeats`` runs of ``steps`` calls."""
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates)


def timed_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def control_tick(driver, action) -> None:
    """One tick of a control loop on the driver: send (through the safety layer), then observe."""
    driver.send_action(action)
    driver.get_observation()


def raw_env(camera_size: int | None, **overrides):
    """A robosuite Lift env with the driver's controller config; ``camera_size`` adds robosuite's agentview obs."""
    import robosuite as suite

    from robot_irl.drivers.robosuite_arm import _controller_config

    kwargs = {"robots": "Panda", "controller_configs": _controller_config("ee_target", 150.0), "has_renderer": False,
              "control_freq": 20, "hard_reset": False, "ignore_done": True,
              "has_offscreen_renderer": camera_size is not None, "use_camera_obs": camera_size is not None}
    if camera_size is not None:
        kwargs.update(camera_names="agentview", camera_heights=camera_size, camera_widths=camera_size)
    kwargs.update(overrides)
    env = suite.make("Lift", **kwargs)
    env.reset()
    return env


def hold_target(env) -> np.ndarray:
    """An absolute OSC target that holds the current pose (gripper open)."""
    import mujoco

    from robot_irl.drivers.robosuite_arm import quat_to_rotvec

    controller = env.robots[0].part_controllers["right"]
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, controller.ref_ori_mat.reshape(-1))
    return np.concatenate([controller.ref_pos, quat_to_rotvec(quat), [-1.0]])


def bench_robosuite(steps: int, camera_steps: int, repeats: int) -> list[tuple[str, float, str]]:
    from robot_irl.drivers.robosuite_arm import RobosuiteConfig, RobosuiteDriver, _import_robosuite

    _import_robosuite(quiet=True)
    rows = []
    for camera, n in ((None, steps), (84, camera_steps)):
        env = raw_env(camera)
        raw = timed_rate(partial(env.step, hold_target(env)), n, repeats)
        env.close()
        with RobosuiteDriver(RobosuiteConfig(task="lift", cameras=("agentview",) if camera else ())) as driver:
            ours = timed_rate(partial(control_tick, driver, driver.hold_action()), n, repeats)
        label = "no camera" if camera is None else f"1 camera {camera}x{camera}"
        rows.append((f"robosuite Lift, raw env.step, {label}", raw, "1.00x"))
        rows.append((f"robosuite Lift, RobosuiteDriver loop, {label}", ours, f"{ours / raw:.2f}x"))
    return rows


def bench_naive_and_reset(repeats: int) -> tuple[list, list]:
    import robosuite as suite

    from robot_irl.drivers.robosuite_arm import RobosuiteConfig, RobosuiteDriver

    env = suite.make("Lift", robots="Panda", has_renderer=False)  # the naive defaults
    zero = np.zeros(env.action_dim)
    naive = timed_rate(lambda: env.step(zero), 20, 1, warmup=2)
    naive_reset = timed_seconds(env.reset, min(repeats, 2))
    env.close()
    driver = RobosuiteDriver(RobosuiteConfig(task="lift"))
    with driver:
        soft_reset = timed_seconds(lambda: driver.reset(0), repeats)
    rows = [("robosuite Lift, naive suite.make defaults (256x256 camera)", naive, "-")]
    resets = [("robosuite Lift reset, naive defaults (hard_reset=True)", naive_reset),
              ("robosuite Lift reset, RobosuiteDriver (soft reset)", soft_reset)]
    return rows, resets


def bench_mujoco_arm(steps: int, repeats: int) -> list[tuple[str, float, str]]:
    import mujoco

    from robot_irl.drivers.mujoco_arm import MujocoArmDriver

    driver = MujocoArmDriver()
    m = driver.model
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, 0)
    target = d.ctrl.copy()
    substeps = driver._substeps

    def raw_step():
        d.ctrl[:] = target
        mujoco.mj_step(m, d, nstep=substeps)

    raw = timed_rate(raw_step, steps, repeats)
    with driver:
        hold = driver.hold_action()
        ours = timed_rate(lambda: control_tick(driver, hold), steps, repeats)
    return [(f"small arm, raw mj_step loop ({substeps} substeps/tick)", raw, "1.00x"),
            ("small arm, MujocoArmDriver loop", ours, f"{ours / raw:.2f}x")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300, help="control steps per timed run without cameras")
    p.add_argument("--camera-steps", type=int, default=100, help="control steps per timed run with a camera")
    p.add_argument("--arm-steps", type=int, default=3000, help="control steps per timed run for the small arm")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-naive", action="store_true", help="skip the slow naive-defaults reference rows")
    args = p.parse_args(argv)

    rows = bench_robosuite(args.steps, args.camera_steps, args.repeats)
    resets = []
    if not args.skip_naive:
        naive_rows, resets = bench_naive_and_reset(args.repeats)
        rows += naive_rows
    rows += bench_mujoco_arm(args.arm_steps, args.repeats)

    print(f"command: MUJOCO_GL={os.environ['MUJOCO_GL']} {sys.executable} {' '.join(sys.argv)}")
    print(f"machine: {os.cpu_count()} CPU cores; median of {args.repeats} runs each\n")
    print("| what | control steps/s | vs raw |")
    print("|---|---:|---:|")
    for what, rate, ratio in rows:
        print(f"| {what} | {rate:,.1f} | {ratio} |")
    if resets:
        print("\n| reset | seconds |")
        print("|---|---:|")
        for what, seconds in resets:
            print(f"| {what} | {seconds:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
