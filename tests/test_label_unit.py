"""Preference labelling, pure parts: pair sampling, prompts and parsing, oracle, store, rate limit, config."""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from robot_irl.core.config import ConfigError
from robot_irl.label import LABELLERS, load_preferences, preference_arrays
from robot_irl.label.backends import Query
from robot_irl.label.job import LabelConfig, agreement, build_report, format_report
from robot_irl.label.oracle import OracleLabeller, resolve_signals
from robot_irl.label.pairs import ArraySource, FrameRef, PairError, PairSampler, image_hash, pair_id
from robot_irl.label.prompts import PROMPT_VERSION, RLVLMF_V1, get_prompt, parse_label
from robot_irl.label.store import LabelCache, LabelStore, read_records
from robot_irl.label.vlm import RateLimiter, VLMConfig, cache_key, redact, stage1_messages, stage2_messages

pytestmark = pytest.mark.unit


# -- pairs -------------------------------------------------------------------------------------------------------
def test_pairs_are_deterministic_from_different_episodes_and_in_range():
    lengths = [5, 9, 3, 7]
    sampler = PairSampler(lengths, seed=4)
    again = PairSampler(lengths, seed=4)
    other = PairSampler(lengths, seed=5)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pairs = [sampler.pair(k) for k in range(200)]
    assert pairs == [again.pair(k) for k in range(200)]
    assert pairs != [other.pair(k) for k in range(200)]
    assert [p.pair_id for p in pairs[:2]] == [pair_id(4, 0), pair_id(4, 1)] == ["s4-0000000", "s4-0000001"]
    for p in pairs:
        assert p.a.episode != p.b.episode
        for ref in (p.a, p.b):
            assert 0 <= ref.frame < lengths[ref.episode] and ref.index == starts[ref.episode] + ref.frame
    used = {p.a.episode for p in pairs} | {p.b.episode for p in pairs}
    assert used == {0, 1, 2, 3}
    assert sampler.pair(150) == next(sampler.candidates(start=150))


def test_segments_fit_inside_their_episode_and_short_episodes_are_skipped():
    sampler = PairSampler([2, 10, 6], seed=0, segment_length=4)
    for k in range(100):
        p = sampler.pair(k)
        for ref in (p.a, p.b):
            assert ref.episode in (1, 2) and ref.length == 4
            assert ref.frame + ref.length <= [2, 10, 6][ref.episode]
            assert ref.last_index == ref.index + 3 and list(ref.indices) == list(range(ref.index, ref.index + 4))
    single = PairSampler([8], seed=1)  # one episode: two different frames of it
    assert all(single.pair(k).a != single.pair(k).b for k in range(50))
    with pytest.raises(PairError, match="no episode has 5 frames"):
        PairSampler([2, 3], segment_length=5)
    with pytest.raises(PairError, match="one usable episode with 1 frames"):
        PairSampler([1])
    assert FrameRef.from_dict(FrameRef(1, 2, 3, 4).to_dict()) == FrameRef(1, 2, 3, 4)


def test_image_hash_sees_every_pixel_and_the_shape():
    img = np.zeros((4, 4, 3), np.uint8)
    other = img.copy()
    other[3, 3, 2] = 1
    assert image_hash(img) == image_hash(img.copy()) != image_hash(other)
    assert image_hash(img) != image_hash(np.zeros((2, 8, 3), np.uint8))


# -- prompts -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, label, reason", [
    ("0", 0, "ok"), ("1", 1, "ok"), ("-1", -1, "unsure"), (" 1 \n", 1, "ok"), ("**1**", 1, "ok"), ("`0`", 0, "ok"),
    ("1.", 1, "ok"), ("Label: 0", 0, "ok"), ("answer = 1", 1, "ok"), ("1\nbecause the cube is higher", 1, "ok"),
    ("", -1, "empty"), ("   ", -1, "empty"), (None, -1, "empty"), ("Image 2", -1, "unparseable"),
    ("2", -1, "unparseable"), ("10", -1, "unparseable"), ("I cannot tell", -1, "unparseable"),
    ("0 or 1", -1, "unparseable"),
])
def test_parse_label(text, label, reason):
    assert parse_label(text) == (label, reason)


def test_two_stage_prompt_messages():
    t = get_prompt(PROMPT_VERSION)
    assert t is RLVLMF_V1 and PROMPT_VERSION == "rlvlmf-v1"
    m1 = stage1_messages(t, "lift the cube", ("data:image/png;base64,AAA", "data:image/png;base64,BBB"))
    parts = m1[0]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    texts = [p["text"] for p in parts if p["type"] == "text"]
    assert urls == ["data:image/png;base64,AAA", "data:image/png;base64,BBB"]
    assert texts[1:3] == ["Image 1:", "Image 2:"] and "The goal is: lift the cube." in texts[-1]
    assert "What is shown in Image 1?" in texts[-1]
    m2 = stage2_messages(t, "lift the cube", "ANALYSIS TEXT")
    assert isinstance(m2[0]["content"], str) and "ANALYSIS TEXT" in m2[0]["content"]
    assert "Reply a single line of 0" in m2[0]["content"] and "-1" in m2[0]["content"]
    with pytest.raises(KeyError, match="unknown prompt version 'v0'"):
        get_prompt("v0")
    key = cache_key("m", "rlvlmf-v1", "g", ("h1", "h2"))
    assert key == cache_key("m", "rlvlmf-v1", "g", ("h1", "h2"))
    assert len({key, cache_key("m2", "rlvlmf-v1", "g", ("h1", "h2")), cache_key("m", "v2", "g", ("h1", "h2")),
                cache_key("m", "rlvlmf-v1", "g", ("h2", "h1")), cache_key("m", "rlvlmf-v1", "g2", ("h1", "h2"))}) == 5


# -- oracle ------------------------------------------------------------------------------------------------------
def _source(**kwargs):
    success = np.array([0, 0, 1, 0, 0, 0, 1, 1], bool)
    reward = np.array([0.1, 0.2, 1.0, 0.0, 0.3, 0.3, 1.0, 0.9], np.float32)
    state = np.zeros((8, 3), np.float32)
    state[:, 2] = np.arange(8) / 10
    return ArraySource([3, 5], {"next.success": success, "next.reward": reward, "observation.environment_state": state},
                       entry_names={"observation.environment_state": ["cube.x", "cube.y", "cube.z"]},
                       default_signals=("next.success", "next.reward"), **kwargs)


def test_oracle_prefers_success_then_reward_and_ties_are_minus_one():
    src = _source()
    oracle = OracleLabeller(src)
    assert oracle.signals == ["next.success", "next.reward"]
    ref = lambda i: FrameRef(0 if i < 3 else 1, i if i < 3 else i - 3, i)  # noqa: E731
    assert oracle.compare(ref(2), ref(1)) == 0  # success beats no success
    assert oracle.compare(ref(0), ref(1)) == 1  # then the higher reward
    assert oracle.compare(ref(4), ref(5)) == -1  # same success and reward: tie
    assert oracle.compare(ref(6), ref(7)) == 0  # both succeed: reward decides
    seg = OracleLabeller(src, ["next.reward"])
    assert seg.compare(FrameRef(1, 0, 3, 2), FrameRef(1, 1, 4, 2)) == 1  # 0.0+0.3 < 0.3+0.3: sums of segments
    answer = oracle.label(Query(src_pair := PairSampler(src.episode_lengths).pair(0)))
    assert answer.label == oracle.compare(src_pair.a, src_pair.b) and answer.reason in ("ok", "tie")
    assert json.loads(answer.raw[0])["signals"] == ["next.success", "next.reward"]


def test_oracle_dense_signal_by_entry_name_or_index_and_errors_by_name():
    src = _source()
    dense = OracleLabeller(src, ["observation.environment_state:cube.z"])
    assert dense.compare(FrameRef(0, 0, 0), FrameRef(1, 4, 7)) == 1
    assert OracleLabeller(src, ["observation.environment_state:2"]).compare(FrameRef(1, 4, 7), FrameRef(0, 0, 0)) == 0
    with pytest.raises(PairError, match="has 3 entries; name one"):
        OracleLabeller(src, ["observation.environment_state"])
    with pytest.raises(PairError, match="no entry 'cube.w'"):
        OracleLabeller(src, ["observation.environment_state:cube.w"])
    with pytest.raises(PairError, match=r"signal\(s\) \['next.done'\] not in the dataset"):
        resolve_signals(src, ["next.done"])
    with pytest.raises(PairError, match="no oracle signal"):
        resolve_signals(ArraySource([4], {"x": np.zeros(4)}, default_signals=("next.success",)))


# -- store -------------------------------------------------------------------------------------------------------
def _record(k: int, label: int = 0, reason: str = "ok", error: str | None = None, length: int = 1) -> dict:
    return {"pair_id": pair_id(0, k), "number": k, "a": FrameRef(0, k, k, length).to_dict(),
            "b": FrameRef(1, k, 10 + k, length).to_dict(), "label": label, "reason": reason, "error": error,
            "backend": "vlm", "model": "m"}


def test_store_appends_durably_repairs_a_torn_line_and_last_record_wins(tmp_path, caplog):
    path = tmp_path / "labels.jsonl"
    with LabelStore(path) as store:
        store.append(_record(0))
        store.append(_record(1, error="timed out", label=-1, reason="error"))
    with open(path, "ab") as f:
        f.write(b'{"pair_id": "s0-00000')  # a kill mid-write
    assert [r["number"] for r in read_records(path)] == [0, 1]  # reading skips the torn line
    assert "torn last line" in caplog.text
    with LabelStore(path) as store:  # opening to append cuts it off first
        assert path.read_bytes().endswith(b"\n")
        store.append(_record(1, label=1))
        assert list(store.latest()) == [pair_id(0, 0), pair_id(0, 1)] and store.latest()[pair_id(0, 1)]["label"] == 1
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)
    path.write_text(path.read_text() + "garbage\n" + json.dumps(_record(2)) + "\n")
    with pytest.raises(ValueError, match="line 4 is not a JSON record"):
        read_records(path)


def test_store_redacts_secrets(tmp_path):
    with LabelStore(tmp_path / "l.jsonl", secrets=["sk-SECRET123"]) as store:
        stored = store.append({**_record(0), "error": "HTTP 401: bad key sk-SECRET123"})
    assert stored["error"] == "HTTP 401: bad key ***"
    assert "sk-SECRET123" not in (tmp_path / "l.jsonl").read_text()
    assert redact("k=sk-SECRET123&x=sk-SECRET123", ["sk-SECRET123"]) == "k=***&x=***"


def test_cache_survives_reopening(tmp_path):
    with LabelCache(tmp_path / "c.jsonl") as cache:
        cache.put("k1", {"label": 1, "reason": "ok", "raw": ["a", "1"]})
        assert cache.get("k1")["label"] == 1 and cache.get("k2") is None
    with LabelCache(tmp_path / "c.jsonl") as cache:
        assert len(cache) == 1 and cache.get("k1")["raw"] == ["a", "1"]


def test_load_preferences_and_arrays(tmp_path):
    with LabelStore(tmp_path / "labels.jsonl") as store:
        for rec in (_record(0, 0), _record(1, 1), _record(2, -1, "unsure"), _record(3, -1, "tie"),
                    _record(4, -1, "error", "timed out"), _record(5, -1, "refused"), _record(6, -1, "error", "x")):
            store.append(rec)
        store.append(_record(6, 1))  # retried later: the last record wins
    prefs = load_preferences(tmp_path)  # a run folder works too
    assert [p.pair_id for p in prefs] == [pair_id(0, k) for k in (0, 1, 2, 3, 6)]
    assert [p.label for p in load_preferences(tmp_path, include_ties=False)] == [0, 1, 1]
    assert len(load_preferences(tmp_path / "labels.jsonl", include_failed=True)) == 7
    arrays = preference_arrays(prefs)
    assert arrays["labels"].tolist() == [0, 1, -1, -1, 1]
    assert arrays["targets"].tolist() == [0.0, 1.0, 0.5, 0.5, 1.0] and arrays["targets"].dtype == np.float32
    assert arrays["a_index"].tolist() == [0, 1, 2, 3, 6] and arrays["b_index"].tolist() == [10, 11, 12, 13, 16]
    assert arrays["b_episode"].tolist() == [1] * 5 and arrays["length"].tolist() == [1] * 5
    with pytest.raises(FileNotFoundError):
        load_preferences(tmp_path / "nope.jsonl")
    with LabelStore(tmp_path / "mixed.jsonl") as store:
        store.append(_record(0))
        store.append(_record(1, length=3))
    with pytest.raises(ValueError, match="mix segment lengths"):
        preference_arrays(load_preferences(tmp_path / "mixed.jsonl"))


# -- rate limit, config, report ------------------------------------------------------------------------------------
def test_rate_limiter_spaces_requests_across_threads():
    limiter = RateLimiter(rate=20.0)
    times: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(3):
            limiter.acquire()
            with lock:
                times.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(times) == 9
    assert times[-1] - start >= 8 / 20 - 0.02  # one burst token, then 1/20 s apart
    assert RateLimiter(0).acquire() == 0.0


def test_label_config_validation_and_round_trip():
    cfg = LabelConfig.from_dict({"dataset": "d", "backend": "vlm", "vlm": {"model": "m", "rate_limit": 2}})
    assert LabelConfig.from_dict(cfg.to_dict()) == cfg and cfg.vlm.rate_limit == 2.0
    assert cfg.identity()["model"] == "m" and cfg.concurrency == 4
    with pytest.raises(ConfigError, match="vlm.model"):
        LabelConfig.from_dict({"dataset": "d", "backend": "vlm"})
    with pytest.raises(ConfigError, match="unknown labeller 'gpt'; known: oracle, vlm"):
        LabelConfig.from_dict({"dataset": "d", "backend": "gpt"})
    with pytest.raises(ConfigError, match="unknown key"):
        LabelConfig.from_dict({"dataset": "d", "backend": "oracle", "api_key": "sk-x"})
    with pytest.raises(ConfigError, match="NAME of an environment variable"):
        VLMConfig(model="m", api_key_env="sk-live-1234")
    with pytest.raises(ConfigError, match="concurrency"):
        VLMConfig(model="m", concurrency=0)
    assert VLMConfig(base_url="http://h:1/v1/").url == "http://h:1/v1/chat/completions"
    assert sorted(LABELLERS.names()) == ["oracle", "vlm"]


def test_report_counts_ties_reasons_and_agreement():
    records = [_record(0, 0), _record(1, 1), _record(2, -1, "unsure"), _record(3, -1, "error", "timed out"),
               {**_record(4, 1), "cached": True}]
    for r, latency in zip(records, (1.0, 3.0, 2.0, 6.0, 0.0)):
        r["latency_s"] = latency
    report = build_report(records, [0, 0, 1, -1, 1])
    assert report["labels"] == {"0": 1, "1": 2, "-1": 2} and report["tie_rate"] == 0.4
    assert report["reasons"] == {"ok": 3, "unsure": 1, "error": 1} and report["failed"] == 1
    assert report["errors"] == {"timed out": 1} and report["cached"] == 1 and report["mean_latency_s"] == 3.0
    a = report["agreement"]
    assert (a["both_decisive"], a["agree"], a["accuracy"]) == (3, 2, 0.6667)
    assert a["confusion"] == {"-1/-1": 1, "-1/1": 1, "0/0": 1, "1/0": 1, "1/1": 1}
    assert a["decisive_on_oracle_ties"] == 0 and a["exact_match"] == 0.6
    text = format_report(report)
    assert "tie rate     0.4" in text and "accuracy 0.6667" in text and "timed out" in text
    assert agreement([], [])["accuracy"] is None
