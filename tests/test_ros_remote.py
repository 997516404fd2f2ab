"""RemoteDriver: the driver contract over ROS 2, against a driver node started as a real process."""
from __future__ import annotations

import io

import numpy as np
import pytest

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def mock_graph():
    from robot_irl.launcher import start_graph

    log = io.StringIO()
    graph = start_graph("bringup", out=log, driver="sim", backend="mock", driver_config={"joints": 3})
    yield graph
    codes = graph.stop()
    assert all(c == 0 for c in codes.values()), log.getvalue()


def test_remote_driver_runs_the_contract_in_lock_step(mock_graph):
    from robot_irl.core import Perturbation, UnsafeActionError
    from robot_irl.core.contracts import Policy
    from robot_irl.ros.remote import RemoteDriver
    from robot_irl.runner import rollout

    driver = RemoteDriver("sim", backend="mock", config={"joints": 3}, timeout_s=20.0)
    assert driver.observation_features["observation.state"].shape == (3,)  # known before connecting
    with driver:
        obs = driver.reset()
        assert np.allclose(obs["observation.state"], 0.0)
        sent = driver.send_action([1.0, 0.0, -1.0])  # max 2 rad/s at 20 Hz: clamped to 0.1 per tick
        assert np.allclose(sent, [0.1, 0.0, -0.1], atol=1e-6)
        # the observation after send_action is the tick that used this command: mock closes half the error
        assert np.allclose(driver.get_observation()["observation.state"], [0.05, 0.0, -0.05], atol=1e-6)
        assert driver.step_count >= 1  # the node free-runs: hold ticks may come before our command
        with pytest.raises(UnsafeActionError, match="joint_1=nan"):
            driver.send_action([0.0, float("nan"), 0.0])
        record = driver.perturb(Perturbation("instruction", "task", {"text": "wave hello"}))
        assert record.params["previous"] == "move the arm"

        class Toward(Policy):
            def act(self, observation):
                return np.full(3, 0.5)

        results = rollout(driver, Toward(), episodes=2, max_steps=10, progress=False)
    assert [r.steps for r in results] == [10, 10]
    assert all(r.clamped_steps > 0 for r in results)


def test_remote_driver_names_the_missing_node():
    from robot_irl.ros.remote import RemoteDriver, RemoteDriverError

    driver = RemoteDriver("sim", backend="mock", namespace="/nobody_here", timeout_s=1.0)
    with pytest.raises(RemoteDriverError, match="/nobody_here"):
        driver.connect()
    assert not driver.is_connected
