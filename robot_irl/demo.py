"""``make demo``: the main job, end to end on a fresh machine.

1. bring up the sim graph (robosuite Panda Lift with a small agentview camera) as ROS 2 processes; drive it over
   ROS with the scripted policy through :class:`robot_irl.ros.remote.RemoteDriver`, recording every frame (what the
   policy saw, the action actually sent, the camera, the instruction, wall-clock time) to a LeRobot v3.0 dataset;
   stop the graph, load the dataset back with lerobot itself, print a summary and save a contact sheet;
2. ADC: collect a small adversarial dataset in simulation: the scripted tele-operator does the task while the
   scripted adversary pushes and moves objects, changes lights, colours and the camera, brings distractors in and
   switches the instruction mid-grasp; every perturbation is a per-frame annotation. Print the collection report
   and save a contact sheet of the perturbed frames;
3. offline RL from preferences (``robot-irl experiment vlm-iql --budget small``): collect sub-optimal Lift episodes,
   label pairs of frames with the oracle (and a VLM when ``$OPENAI_BASE_URL``/``$OPENAI_MODEL`` name one), learn a
   reward model, relabel, train BC and IQL, evaluate, print the table and save its plot.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

TASK = "lift"
CAMERA = "agentview"
CAMERA_SIZE = 84


def _driver_config() -> dict:
    return {"task": TASK, "cameras": [CAMERA], "camera_size": CAMERA_SIZE}


def run_demo(out_parent: Path, episodes: int = 3, max_steps: int = 120, in_process: bool = False,
             adc_episodes: int = 3, offline_rl: str = "small", offline_rl_overrides: dict | None = None) -> int:
    """``offline_rl``: the vlm-iql experiment budget to run as the third stage (``""`` skips it)."""
    run_dir = _record_stage(Path(out_parent), episodes, max_steps, in_process)
    if adc_episodes > 0:
        _adc_stage(run_dir, adc_episodes)
    if offline_rl:
        _offline_rl_stage(run_dir, offline_rl, offline_rl_overrides or {})
    print(f"\ndemo done: {run_dir}")
    return 0


def _offline_rl_stage(run_dir: Path, budget: str, overrides: dict) -> None:
    from robot_irl.experiments.vlm_iql import VLMIQLExperimentConfig, run_vlm_iql_experiment

    print(f"\n[offline RL] sub-optimal data -> oracle preference labels -> reward model -> IQL -> evaluation "
          f"(vlm-iql, budget {budget}) ...")
    config = VLMIQLExperimentConfig.budget(budget, **overrides)
    run_vlm_iql_experiment(config, run_dir / "vlm_iql")
    print(f"offline RL results: {run_dir / 'vlm_iql' / 'results.md'}, plot {run_dir / 'vlm_iql' / 'results.png'}")


def _adc_stage(run_dir: Path, episodes: int) -> None:
    from robot_irl.collect.adversary import ScriptedAdversary
    from robot_irl.collect.operators import ScriptedOperator
    from robot_irl.collect.session import collect
    from robot_irl.drivers import make_driver

    print(f"\n[ADC] collecting {episodes} adversarial episodes in simulation (scripted operator and adversary) ...")
    driver = make_driver("sim", _driver_config())
    operator = ScriptedOperator.from_driver(driver, seed=0)
    report = collect(driver, operator, ScriptedAdversary("train", seed=0), episodes=episodes, max_steps=250,
                     out=run_dir / "adc", mode="adc", seed=100)
    print(report.format_report())
    sheet = _adc_contact_sheet(run_dir / "adc" / "dataset", run_dir / "adc_contact_sheet.png")
    print(f"ADC dataset:   {run_dir / 'adc' / 'dataset'}")
    print(f"contact sheet: {sheet}  (frames right after each perturbation)")


def _adc_contact_sheet(root: Path, out_png: Path) -> Path:
    """One row per episode: the frames just after each perturbation, labelled with its kind."""
    from robot_irl.collect.annotations import PERTURBATION_KIND
    from robot_irl.data.contact_sheet import contact_sheet
    from robot_irl.data.lerobot_io import load_dataset, read_frames

    ds = load_dataset(root)
    cols = read_frames(root, ["episode_index", "frame_index", PERTURBATION_KIND])
    rows: dict[str, list] = {}
    labels: dict[str, list[str]] = {}
    for i, (ep, kind) in enumerate(zip(cols["episode_index"].reshape(-1), cols[PERTURBATION_KIND].reshape(-1))):
        row = f"episode {int(ep)}"
        if kind and len(rows.get(row, [])) < 8 and i + 1 < len(ds):
            rows.setdefault(row, []).append(_to_hwc_uint8(ds[i + 1][f"observation.images.{CAMERA}"]))
            labels.setdefault(row, []).append(str(kind)[:18])
    return contact_sheet(rows, out_png, cols=8, scale=2, labels=labels,
                         title="ADC: the frame after each perturbation (kind below)")


def _record_stage(out_parent: Path, episodes: int, max_steps: int, in_process: bool) -> Path:
    from robot_irl.data.contact_sheet import contact_sheet
    from robot_irl.data.lerobot_io import LeRobotRecorder, dataset_summary, format_summary, load_dataset
    from robot_irl.policies import POLICIES
    from robot_irl.runner import rollout, summarize
    from robot_irl.runs import prepare_run_dir, save_run_config

    run_dir = prepare_run_dir(Path(out_parent) / time.strftime("%Y%m%d-%H%M%S"))
    save_run_config(run_dir, {"command": "demo", "task": TASK, "episodes": episodes, "max_steps": max_steps,
                              "driver_config": _driver_config(), "via_ros": not in_process})
    print(f"robot_irl demo -> {run_dir}")
    graph = None
    if in_process:
        from robot_irl.drivers import make_driver

        driver = make_driver("sim", _driver_config())
    else:
        from robot_irl.launcher import start_graph
        from robot_irl.ros.remote import RemoteDriver

        print("[1/3] bringing up the sim graph (driver_node with robosuite Panda Lift) ...")
        log = open(run_dir / "graph.log", "w")  # noqa: SIM115 - closed with the graph below
        graph = start_graph("bringup", out=log, driver="sim", driver_config=_driver_config())
        driver = RemoteDriver("sim", config=_driver_config(), timeout_s=60.0)
    recorder = LeRobotRecorder(run_dir / "dataset", repo_id="robot_irl/demo", fps=driver.fps,
                               observation_features=driver.observation_features,
                               action_features=driver.action_features, robot_type="panda",
                               use_videos=True, extra_features=_status_features())
    try:
        with driver:
            print(f"[2/3] recording {episodes} scripted episodes of {max_steps} steps over "
                  f"{'ROS 2' if graph else 'the in-process driver'} ...")
            policy = POLICIES.get("scripted").from_driver(driver, seed=0, noise=0.0)
            results = rollout(driver, policy, episodes, max_steps, seed=0, sink=recorder)
    finally:
        recorder.finalize()
        if graph is not None:
            graph.stop()
            log.close()
    summary = summarize(results)
    print("[3/3] loading the dataset back with lerobot ...")
    ds = load_dataset(run_dir / "dataset")
    rows: dict[str, list] = {}
    labels: dict[str, list[str]] = {}
    for i in _sheet_indices(ds, per_episode=6):
        item = ds[i]
        row, frame = f"episode {int(item['episode_index'])}", int(item["frame_index"])
        rows.setdefault(row, []).append(_to_hwc_uint8(item[f"observation.images.{CAMERA}"]))
        labels.setdefault(row, []).append(f"t={frame / driver.fps:.1f}s")
    sheet = contact_sheet(rows, run_dir / "contact_sheet.png", cols=6, scale=2, labels=labels,
                          title=f"robot_irl demo: {TASK}, {CAMERA} camera, {len(results)} episodes")
    (run_dir / "results.json").write_text(json.dumps(
        {"summary": summary, "episodes": [r.to_dict() for r in results]}, indent=2))
    print(format_summary(dataset_summary(run_dir / "dataset")))
    print(f"success rate {summary['success_rate']:.2f} over {summary['episodes']} episodes "
          f"({summary['steps_per_s']:.1f} steps/s)")
    print(f"dataset:       {run_dir / 'dataset'}  (LeRobotDataset loads it: {len(ds)} frames)")
    print(f"contact sheet: {sheet}")
    return run_dir


def _status_features() -> dict:
    from robot_irl.core.features import Feature

    return {"next.reward": Feature("float32", (1,)), "next.success": Feature("bool", (1,))}


def _sheet_indices(ds, per_episode: int) -> list[int]:
    import numpy as np

    idx = []
    for ep in range(ds.meta.total_episodes):
        start = int(ds.meta.episodes[ep]["dataset_from_index"])
        stop = int(ds.meta.episodes[ep]["dataset_to_index"])
        idx += [int(i) for i in np.linspace(start, stop - 1, per_episode)]
    return idx


def _to_hwc_uint8(frame):
    import numpy as np

    arr = frame.numpy() if hasattr(frame, "numpy") else np.asarray(frame)
    if arr.ndim == 3 and arr.shape[0] == 3:
        arr = arr.transpose(1, 2, 0)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).astype(np.uint8)
    return arr
