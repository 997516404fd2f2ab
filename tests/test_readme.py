"""Every README command runs as written (headless, small budgets): tests/readme_walkthrough.py.

The fast test checks that every command of the README's bash blocks has exactly one walkthrough rule and every
rule a command, so the README and the walkthrough cannot drift apart; the slow one runs the whole README.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import readme_walkthrough as walkthrough  # noqa: E402


@pytest.mark.unit
def test_every_readme_command_has_exactly_one_walkthrough_rule():
    plan = walkthrough.check_rules()
    commands = [c for c, _ in plan]
    assert len(commands) >= 35 and commands[0] == "make demo"
    assert "robot-irl recover --bag runs/session/dataset_bags/<episode> --dataset runs/session/dataset" in commands
    skipped = [c for c, r in plan if r.mode == "skip"]
    assert skipped == ["make test"]  # the only README command the walkthrough does not run (it is the suite)


@pytest.mark.unit
def test_the_parser_joins_continuations_and_drops_comments():
    text = ("x\n```bash\n# a comment\nrobot-irl a --b 1 \\\n    --c 2   # says what\n\nrobot-irl d\n```\n"
            "```\nnot bash\n```\n")
    assert walkthrough.readme_commands(text) == ["robot-irl a --b 1 --c 2", "robot-irl d"]
    with pytest.raises(LookupError, match="matches 0 walkthrough rules"):
        walkthrough.check_rules(["robot-irl something-new"])


@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_every_readme_command_runs_in_a_fresh_folder(tmp_path):
    log = tmp_path / "walkthrough.log"
    with open(log, "w") as f:
        try:
            timings = walkthrough.walk(tmp_path / "work", log=f)
        except AssertionError as e:
            pytest.fail(f"{e}\n(full log: {log})")
    assert len(timings) == len(walkthrough.check_rules()) - 1
