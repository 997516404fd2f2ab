"""The `vlm` labeller and the resumable job against a local fake OpenAI server (nothing leaves the machine)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAI, brightness_judge, write_progress_hdf5

from robot_irl.label import load_preferences
from robot_irl.label.cli_label import main, parse_rate
from robot_irl.label.job import LabelConfig, run_label_job
from robot_irl.label.pairs import PairError
from robot_irl.label.store import read_records

pytestmark = pytest.mark.data

KEY_ENV = "ROBOT_IRL_TEST_VLM_KEY"
KEY = "sk-test-SECRET-0123456789"
CAMERA = "images/top"


@pytest.fixture(scope="module")
def h5(tmp_path_factory) -> Path:
    return write_progress_hdf5(tmp_path_factory.mktemp("label") / "progress.hdf5")


def _config(h5: Path, url: str, pairs: int, **vlm) -> LabelConfig:
    return LabelConfig.from_dict({"dataset": str(h5), "backend": "vlm", "pairs": pairs, "camera": CAMERA,
                                  "vlm": {"base_url": url, "model": "fake-vlm", "api_key_env": KEY_ENV,
                                          "backoff_s": 0.01, **vlm}})


def _files_text(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_labels_follow_the_protocol_agree_with_the_oracle_and_never_hold_the_key(h5, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    with FakeOpenAI(judge=brightness_judge) as server:
        report = run_label_job(_config(h5, server.url, 24, concurrency=3), tmp_path / "run", progress=False)
    records = read_records(tmp_path / "run" / "labels.jsonl")
    assert len(records) == 24 and len({r["pair_id"] for r in records}) == 24
    assert report["agreement"]["accuracy"] == 1.0 and report["agreement"]["both_decisive"] == 24
    assert report["run"]["dropped_identical"] > 0  # equal progress -> identical images -> not asked
    for r in records:
        assert r["image_hashes"][0] != r["image_hashes"][1] and r["label"] in (0, 1) and r["reason"] == "ok"
        assert r["prompt_version"] == "rlvlmf-v1" and r["model"] == "fake-vlm" and r["backend"] == "vlm"
        assert r["goal"] == "make the square bright" and r["error"] is None
        assert "PREFERENCE=" in r["raw"][0] and r["raw"][1] == str(r["label"])
        assert r["cached"] or r["latency_s"] > 0
    first, second = server.requests[0], next(q for q in server.requests if q["stage"] == 2)
    assert first["path"] == "/v1/chat/completions" and first["headers"]["Authorization"] == f"Bearer {KEY}"
    body = first["body"]
    assert body["model"] == "fake-vlm" and body["temperature"] == 0 and body["max_tokens"] == 512
    urls = [p["image_url"]["url"] for p in body["messages"][0]["content"] if p["type"] == "image_url"]
    assert len(urls) == 2 and all(u.startswith("data:image/png;base64,") for u in urls)
    assert "PREFERENCE=" in second["body"]["messages"][0]["content"]  # stage 2 got stage 1's text
    assert 1 < server.max_active <= 3
    text = _files_text(tmp_path / "run")
    assert KEY not in text and KEY_ENV in text  # the variable's name is saved, never its value
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["config"]["label"]["vlm"]["api_key_env"] == KEY_ENV


def test_bad_replies_become_minus_one_with_the_reason_kept(h5, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    script = {  # per pair, in order (concurrency 1): the behaviours its requests get
        "unparseable": ["good", "unparseable"], "refused": ["refusal"], "empty": ["good", "empty"],
        "malformed": ["malformed"] * 3, "after_429": ["429", "good", "good"],
        "after_500": ["500", "no_choices", "good", "good"], "after_timeout": ["slow", "good", "good"],
        "timeout": ["slow"] * 3, "key_echo": ["good", "401_echo"]}
    with FakeOpenAI(script=[b for behaviours in script.values() for b in behaviours], judge=brightness_judge,
                    slow_s=0.8, retry_after="0.3") as server:
        cfg = _config(h5, server.url, len(script), concurrency=1, max_retries=2, timeout_s=0.4, cache=False)
        report = run_label_job(cfg, tmp_path / "run", progress=False)
        times = [q["time"] for q in server.requests]
    got = dict(zip(script, read_records(tmp_path / "run" / "labels.jsonl")))
    assert got["unparseable"]["label"] == -1 and got["unparseable"]["reason"] == "unparseable"
    assert got["unparseable"]["raw"][1] == "Image 2 seems a bit better, I think."
    assert (got["refused"]["reason"], got["refused"]["label"]) == ("refused", -1)
    assert "can't help" in got["refused"]["detail"]
    assert (got["empty"]["reason"], got["empty"]["error"]) == ("empty", None) and "PREFERENCE" in got["empty"]["raw"][0]
    assert got["malformed"]["reason"] == "error" and "not JSON" in got["malformed"]["error"]
    assert "after 3 attempts" in got["malformed"]["error"]
    for name in ("after_429", "after_500", "after_timeout"):
        assert got[name]["label"] in (0, 1) and got[name]["error"] is None, name
    assert got["after_500"]["attempts"] == 4
    i429 = len(script["unparseable"] + script["refused"] + script["empty"] + script["malformed"])
    assert times[i429 + 1] - times[i429] >= 0.3  # Retry-After honoured
    assert got["timeout"]["label"] == -1 and "timed out" in got["timeout"]["error"]
    assert "HTTP 401" in got["key_echo"]["error"] and "***" in got["key_echo"]["error"]
    assert KEY not in _files_text(tmp_path / "run")
    assert report["failed"] == 3 and report["reasons"]["error"] == 3 and report["tie_rate"] == round(6 / 9, 4)


def test_rate_limit_spaces_requests(h5, tmp_path):
    with FakeOpenAI(judge=brightness_judge) as server:
        run_label_job(_config(h5, server.url, 4, concurrency=4, rate_limit=20.0, cache=False), tmp_path / "run",
                      progress=False)
        times = sorted(q["time"] for q in server.requests)
    assert len(times) == 8 and times[-1] - times[0] >= 7 / 20 - 0.03


def test_cache_avoids_paying_twice(h5, tmp_path):
    cache = tmp_path / "shared_cache.jsonl"
    with FakeOpenAI(judge=brightness_judge) as server:
        first = run_label_job(_config(h5, server.url, 10, cache_path=str(cache)), tmp_path / "a", progress=False)
        paid = len(server.requests)
        second = run_label_job(_config(h5, server.url, 10, cache_path=str(cache)), tmp_path / "b", progress=False)
        assert len(server.requests) == paid  # nothing asked again
    a, b = read_records(tmp_path / "a" / "labels.jsonl"), read_records(tmp_path / "b" / "labels.jsonl")
    assert {r["pair_id"]: r["label"] for r in a} == {r["pair_id"]: r["label"] for r in b}
    assert all(r["cached"] for r in b)
    assert second["cached"] == 10 and first["labels"] == second["labels"]


def test_rerun_skips_answered_pairs_retries_failed_ones_and_extends(h5, tmp_path):
    out = tmp_path / "run"
    with FakeOpenAI(script=["good", "good", "500", "500"], judge=brightness_judge) as server:
        first = run_label_job(_config(h5, server.url, 5, concurrency=1, max_retries=1, cache=False), out,
                              progress=False)
        assert first["failed"] == 1
        second = run_label_job(_config(h5, server.url, 8, concurrency=1, cache=False), out, progress=False)
        with pytest.raises(PairError, match=r"other settings \(seed: 0 -> 1\)"):
            run_label_job(LabelConfig.from_dict({**_config(h5, server.url, 8).to_dict(), "seed": 1}), out,
                          progress=False)
    assert second["run"]["already_answered"] == 4 and second["run"]["asked"] == 4  # 1 retried + 3 new
    assert second["pairs"] == 8 and second["failed"] == 0
    assert len(read_records(out / "labels.jsonl")) == 9  # append-only: the failed record stays, superseded
    prefs = load_preferences(out)
    assert len(prefs) == 8 and all(p.label in (0, 1) for p in prefs)


def test_killed_job_resumes_and_every_pair_is_answered_once(h5, tmp_path):
    out = tmp_path / "run"
    labels = out / "labels.jsonl"
    pairs = 14
    with FakeOpenAI(judge=brightness_judge, delay_s=0.08) as server:
        args = ["--dataset", str(h5), "--backend", "vlm", "--pairs", str(pairs), "--out", str(out),
                "--base-url", server.url, "--model", "fake-vlm", "--camera", CAMERA, "--concurrency", "1",
                "--api-key-env", KEY_ENV, "--no-progress"]
        env = {**os.environ, KEY_ENV: KEY}
        proc = subprocess.Popen([sys.executable, "-m", "robot_irl.label.cli_label", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not labels.exists() or labels.read_text().count("\n") < 4):
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.02)
        proc.kill()  # SIGKILL: no cleanup
        proc.wait()
        proc.stderr.close()
        before = labels.read_bytes()
        answered_before = len(read_records(labels))
        assert 4 <= answered_before < pairs
        server.delay_s = 0.0
        assert main(args) == 0
    records = read_records(labels)
    ids = [r["pair_id"] for r in records]
    assert len(ids) == len(set(ids)) == pairs  # every pair exactly once
    assert labels.read_bytes().startswith(before[: before.rfind(b"\n") + 1])  # nothing written before was lost
    report = json.loads((out / "report.json").read_text())
    assert report["run"]["already_answered"] == answered_before and report["pairs"] == pairs
    assert server.stage_counts[1] <= pairs + 1  # at most the one query in flight was asked twice
    assert report["agreement"]["accuracy"] == 1.0
    assert KEY not in _files_text(out)


def test_cli_oracle_and_errors(h5, tmp_path, capsys):
    assert main(["--dataset", str(h5), "--backend", "oracle", "--pairs", "12", "--out", str(tmp_path / "o"),
                 "--camera", CAMERA, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "pairs        12" in out and "tie rate" in out and "report:" in out
    prefs = load_preferences(tmp_path / "o")
    assert len(prefs) == 12 and all(p.label in (0, 1) for p in prefs)  # identical images dropped: no ties left
    assert main(["--dataset", str(tmp_path / "missing"), "--backend", "oracle", "--out", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["--dataset", str(h5), "--backend", "vlm", "--model", "m", "--out", str(tmp_path / "y")]) == 2
    assert "name the image array with --camera" in capsys.readouterr().err
    assert main(["--dataset", str(h5), "--backend", "oracle", "--oracle-signal", "nope", "--out",
                 str(tmp_path / "z")]) == 2
    assert "['nope'] not in the dataset" in capsys.readouterr().err
    assert (parse_rate("2/s"), parse_rate("30/min"), parse_rate("0.5")) == (2.0, 0.5, 0.5)
