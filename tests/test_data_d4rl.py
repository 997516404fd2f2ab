"""D4RL HDF5: round trips, Q-learning semantics (timeouts vs terminals), clear errors, LeRobot conversion."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from robot_irl.data.d4rl import (
    D4RLFormatError,
    episode_returns,
    episodes_to_arrays,
    export_d4rl,
    lerobot_to_d4rl,
    load_d4rl,
    qlearning_dataset,
    read_d4rl_attrs,
)
from robot_irl.data.synthetic import (
    make_synthetic_d4rl,
    rollout,
    synthetic_d4rl_arrays,
    synthetic_episodes,
)

pytestmark = pytest.mark.data


def _tiny(n: int = 6) -> dict[str, np.ndarray]:
    """Episode A = rows 0-2 (cut off: timeout at 2); episode B = rows 3-4 (terminal at 4); row 5 starts C."""
    return {"observations": np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32),
            "actions": np.arange(n, dtype=np.float32)[:, None] + 0.5,
            "rewards": np.arange(n, dtype=np.float32) * 10,
            "terminals": np.array([0, 0, 0, 0, 1, 0], bool), "timeouts": np.array([0, 0, 1, 0, 0, 0], bool)}


def test_round_trip_keeps_arrays_dtypes_and_attrs(tmp_path):
    path = make_synthetic_d4rl(tmp_path / "pm.hdf5", n_episodes=6, length=20, seed=1)
    data = load_d4rl(path)
    expected = synthetic_d4rl_arrays(n_episodes=6, length=20, seed=1)
    assert set(data) == set(expected) >= {"observations", "actions", "rewards", "terminals", "timeouts",
                                          "infos/qpos", "infos/qvel"}
    for key, arr in expected.items():
        np.testing.assert_array_equal(data[key], arr, err_msg=key)
    assert data["observations"].dtype == np.float32 and data["terminals"].dtype == bool
    ends = data["terminals"] | data["timeouts"]
    assert ends.sum() == 6 and ends[-1]  # every episode ends exactly once
    assert read_d4rl_attrs(path)["seed"] == 1
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_synthetic_d4rl(path)


def test_synthetic_rewards_mean_something():
    ro = rollout(np.random.default_rng(0), 60)
    assert ro.terminated and ro.successes[-1] and ro.rewards[-1] > -0.1
    assert ro.rewards[-1] > ro.rewards[0]  # the controller gets closer to the goal


def test_qlearning_drops_timeouts_and_keeps_terminals():
    q = qlearning_dataset(_tiny())
    np.testing.assert_array_equal(q["observations"][:, 0], [0, 1, 3, 4])  # row 2 (timeout) and row 5 (last) gone
    np.testing.assert_array_equal(q["next_observations"][:, 0], [1, 2, 4, 5])
    np.testing.assert_array_equal(q["actions"][:, 0], [0.5, 1.5, 3.5, 4.5])
    np.testing.assert_array_equal(q["rewards"], [0, 10, 30, 40])
    np.testing.assert_array_equal(q["terminals"], [False, False, False, True])
    kept = qlearning_dataset(_tiny(), terminate_on_end=True)
    np.testing.assert_array_equal(kept["observations"][:, 0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(kept["terminals"], [False, False, False, False, True])  # a timeout is no terminal


def test_episode_returns():
    np.testing.assert_allclose(episode_returns(_tiny()), [0 + 10 + 20, 30 + 40, 50])


def test_episodes_to_arrays_marks_cut_off_episodes_as_timeouts():
    ep = {"observations": np.zeros((3, 2)), "actions": np.zeros((3, 1)), "rewards": np.ones(3)}
    done = {**ep, "terminals": np.array([0, 0, 1])}
    flat = episodes_to_arrays([ep, done])
    np.testing.assert_array_equal(flat["timeouts"], [0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(flat["terminals"], [0, 0, 0, 0, 0, 1])
    with pytest.raises(D4RLFormatError, match="episode 1: 'actions' has 2 rows, 'observations' has 3"):
        episodes_to_arrays([ep, {**ep, "actions": np.zeros((2, 1))}])


@pytest.mark.parametrize("change, message", [
    (lambda f: f.__delitem__("timeouts"), r"missing required key\(s\) \['timeouts'\]"),
    (lambda f: f.__setitem__("rewards", np.zeros(5, np.float32)), "'rewards' has 5 rows, 'observations' has 6"),
    (lambda f: f.__setitem__("actions", np.zeros(6, np.float32)), r"'actions' must have shape \(N, dim\)"),
    (lambda f: f.__setitem__("terminals", np.full(6, 2.0)), "'terminals' must hold booleans"),
    (lambda f: f.__setitem__("rewards", np.array([0, 0, np.nan, 0, 0, 0], np.float32)),
     "'rewards' has NaN/inf at row 2"),
    (lambda f: f.__setitem__("timeouts", np.array([0, 0, 0, 0, 1, 0], bool)), "row 4 is both a terminal and a timeout"),
])
def test_malformed_files_give_clear_errors(tmp_path, change, message):
    path = tmp_path / "bad.hdf5"
    with h5py.File(path, "w") as f:
        for key, arr in _tiny().items():
            f[key] = arr
    with h5py.File(path, "a") as f:
        arrays = {k: f[k][()] for k in f}
        change(arrays)
        for key in list(f):
            del f[key]
        for key, arr in arrays.items():
            f[key] = arr
    with pytest.raises(D4RLFormatError, match=message):
        load_d4rl(path)


def test_not_hdf5_is_a_clear_error(tmp_path):
    path = tmp_path / "x.hdf5"
    path.write_text("not hdf5")
    with pytest.raises(D4RLFormatError, match="not a readable HDF5 file"):
        load_d4rl(path)


def test_one_million_transitions_round_trip(tmp_path):
    """Vectorised loading at D4RL scale (timing lives in bench/bench_d4rl_load.py, not here)."""
    n = 1_000_000
    rng = np.random.default_rng(0)
    timeouts = np.zeros(n, bool)
    timeouts[999::1000] = True
    data = {"observations": rng.standard_normal((n, 17), dtype=np.float32),
            "actions": rng.uniform(-1, 1, (n, 6)).astype(np.float32), "rewards": rng.standard_normal(n, np.float32),
            "terminals": np.zeros(n, bool), "timeouts": timeouts}
    path = export_d4rl(tmp_path / "big.hdf5", data)
    q = qlearning_dataset(load_d4rl(path))
    assert len(q["observations"]) == n - 1000  # one timeout per 1000-step episode; the last row is a timeout
    np.testing.assert_array_equal(q["next_observations"][0], data["observations"][1])


def test_lerobot_recording_converts_with_explicit_end_labels(tmp_path):
    from robot_irl.data.lerobot_io import LeRobotRecorder
    from robot_irl.data.synthetic import synthetic_features

    root = tmp_path / "ds"
    obs, act, extra = synthetic_features(4, 2)
    episodes = [*synthetic_episodes(1, 60, seed=2), *synthetic_episodes(1, 3, seed=3)]  # reaches / cut off
    assert episodes[0][-1]["extras"]["next.success"][0] and not episodes[1][-1]["extras"]["next.success"][0]
    with LeRobotRecorder(root, "local/pm", 20, obs, act, "point_mass", extra_features=extra) as rec:
        for frames in episodes:
            for frame in frames:
                rec.add_frame(**frame)
            rec.save_episode()
    attrs = lerobot_to_d4rl(root, tmp_path / "pm.hdf5")
    data = load_d4rl(tmp_path / "pm.hdf5")
    n0, n = len(episodes[0]), sum(map(len, episodes))
    states = [f["observation"]["observation.state"] for e in episodes for f in e]
    np.testing.assert_allclose(data["observations"], states)
    np.testing.assert_allclose(data["rewards"], [f["extras"]["next.reward"][0] for e in episodes for f in e])
    assert np.flatnonzero(data["terminals"]).tolist() == [n0 - 1]  # the successful episode terminates
    assert np.flatnonzero(data["timeouts"]).tolist() == [n - 1]  # the cut-off one times out
    assert attrs["end_of_episode"] == "success" and read_d4rl_attrs(tmp_path / "pm.hdf5")["reward_key"] == "next.reward"
    assert len(qlearning_dataset(data)["observations"]) == n - 1

    lerobot_to_d4rl(root, tmp_path / "all_timeouts.hdf5", end_of_episode="timeout")
    data = load_d4rl(tmp_path / "all_timeouts.hdf5")
    assert not data["terminals"].any() and np.flatnonzero(data["timeouts"]).tolist() == [n0 - 1, n - 1]
    with pytest.raises(D4RLFormatError, match="reward_key 'reward' is not a feature"):
        lerobot_to_d4rl(root, tmp_path / "x.hdf5", reward_key="reward")
    with pytest.raises(ValueError, match="end_of_episode must be one of"):
        lerobot_to_d4rl(root, tmp_path / "x.hdf5", end_of_episode="sometimes")
