"""Rollouts: run a policy on a driver for some episodes, optionally recording every frame.

The loop is the same whether the driver is a simulator in this process, a real robot behind the ros2_control
bridge, or a driver node reached over ROS (:class:`robot_irl.ros.remote.RemoteDriver`): it only uses the driver
contract. What is recorded per frame is the observation the policy saw, the action *actually sent* (after the
safety layer), the instruction in force, the wall-clock time, and reward/success where the driver knows them.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from robot_irl.core.contracts import Policy, RobotDriver
from robot_irl.core.perturbation import Perturbation


class Perturber(Protocol):
    """Something that perturbs the world mid-episode (the ADC adversary, scripted or human).

    ``step`` sees the observation the policy just acted on and returns perturbation *requests*; the runner applies
    them through ``driver.perturb`` (which stamps and returns the records) and records them on the frame.
    """

    def reset(self, seed: int | None = None) -> None: ...

    def step(self, observation: dict, driver: RobotDriver, phase: str = "") -> list[Perturbation]: ...


class FrameSink(Protocol):
    """What a rollout writes to (``robot_irl.data.lerobot_io.LeRobotRecorder`` is one)."""

    def start_episode(self) -> None: ...

    def add_frame(self, observation: dict, action_sent: np.ndarray, task: str, timestamp: float,
                  extras: dict | None = None) -> None: ...

    def save_episode(self, metadata: dict | None = None) -> Any: ...


@dataclass
class EpisodeResult:
    index: int
    steps: int
    success: bool
    episode_return: float
    duration_s: float
    clamped_steps: int
    tasks: list[str] = field(default_factory=list)
    perturbations: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def run_episode(
    driver: RobotDriver,
    policy: Policy,
    max_steps: int,
    index: int = 0,
    seed: int | None = None,
    sink: FrameSink | None = None,
    stop_on_success: bool = False,
    realtime: bool = False,
    on_step: Callable[[int, dict], None] | None = None,
    adversary: Perturber | None = None,
    annotate: bool = False,
    hold_after_success: int = 0,
    should_stop: Callable[[], bool] | None = None,
) -> EpisodeResult:
    """One episode: reset, then observe -> act -> send -> perturb, ``max_steps`` times (or until success).

    The policy sees the observation plus ``"task"``: the instruction in force (as LeRobot policies get it), so an
    instruction changed mid-episode reaches it. With ``annotate`` each recorded frame also carries the collection
    annotations (:mod:`robot_irl.collect.annotations`): perturbations applied after that frame's action, and the
    policy's ``phase`` attribute when it has one. With ``stop_on_success`` the episode ends ``hold_after_success``
    steps after the first success (so the data shows the result being held); ``should_stop`` is asked after every
    step and ends the episode when it returns True (an operator's "episode done" or "re-record").
    """
    obs = driver.reset(seed)
    policy.reset(seed)
    if adversary is not None:
        adversary.reset(seed)
    if annotate:
        from robot_irl.collect.annotations import frame_annotations
    applied: list[Perturbation] = []
    if sink is not None:
        sink.start_episode()
    period = 1.0 / driver.fps
    t0 = time.time()
    total, clamped, success, steps, success_step = 0.0, 0, False, 0, None
    tasks: list[str] = []
    for steps in range(1, max_steps + 1):
        tick = time.time()
        task = driver.instruction
        if not tasks or tasks[-1] != task:
            tasks.append(task)
        action = policy.act({**obs, "task": task})
        sent = driver.send_action(action)
        clamped += int(np.any(driver.last_clamped))
        status = driver.task_status()
        total += float(status.get("reward", 0.0))
        success = success or bool(status.get("success", False))
        if success and success_step is None:
            success_step = steps
        phase = str(getattr(policy, "phase", "") or "")
        records = [driver.perturb(r) for r in adversary.step(obs, driver, phase)] if adversary is not None else []
        applied += records
        if sink is not None:
            extras = {"next.reward": float(status.get("reward", 0.0)),
                      "next.success": bool(status.get("success", False))}
            if annotate:
                extras.update(frame_annotations(records, phase))
            sink.add_frame(obs, sent, task, tick, extras)
        if on_step is not None:
            on_step(steps, status)
        obs = driver.get_observation()
        if stop_on_success and success and steps - success_step >= hold_after_success:
            break
        if should_stop is not None and should_stop():
            break
        if realtime:
            time.sleep(max(0.0, period - (time.time() - tick)))
    result = EpisodeResult(index, steps, success, total, time.time() - t0, clamped, tasks,
                           [r.to_dict() for r in applied])
    if sink is not None:
        sink.save_episode({"success": success, "return": total, "clamped_steps": clamped, "seed": seed,
                           "perturbations": result.perturbations})
    return result


def rollout(
    driver: RobotDriver,
    policy: Policy,
    episodes: int,
    max_steps: int,
    seed: int = 0,
    sink: FrameSink | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> list[EpisodeResult]:
    """``episodes`` episodes with seeds ``seed, seed+1, ...``; a progress bar shows steps and successes."""
    from tqdm.auto import tqdm

    results: list[EpisodeResult] = []
    with tqdm(total=episodes * max_steps, disable=not progress, unit="step", dynamic_ncols=True,
              mininterval=0.5) as bar:
        for ep in range(episodes):
            res = run_episode(driver, policy, max_steps, index=ep, seed=seed + ep, sink=sink,
                              on_step=lambda *_: bar.update(1), **kwargs)
            bar.update(max_steps - res.steps)
            results.append(res)
            bar.set_postfix(success=f"{sum(r.success for r in results)}/{len(results)}")
    return results


def summarize(results: list[EpisodeResult]) -> dict[str, float]:
    if not results:
        return {"episodes": 0}
    return {
        "episodes": len(results),
        "success_rate": float(np.mean([r.success for r in results])),
        "mean_return": float(np.mean([r.episode_return for r in results])),
        "mean_steps": float(np.mean([r.steps for r in results])),
        "steps_per_s": float(sum(r.steps for r in results) / max(1e-9, sum(r.duration_s for r in results))),
        "clamped_fraction": float(sum(r.clamped_steps for r in results) / max(1, sum(r.steps for r in results))),
    }
