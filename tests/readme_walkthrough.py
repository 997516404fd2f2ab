"""Run every command of README.md, in order, on a fresh folder, headless and with small budgets.

The commands come from the README itself (every fenced ``bash`` block, continuation lines joined, comments
dropped), so the README and this check cannot drift apart: each command must match exactly one rule of
:data:`RULES`, and each rule must match a README command (``check_rules`` fails otherwise, in the default test
suite). A rule says how the command runs here: as written, or with a smaller budget, a ``--duration`` for a graph
that runs until Ctrl-C, the scripted operator standing in for a joystick nobody holds, the MuJoCo emulator standing
in for a robot, ``ros2 launch`` (no launch wheels here) run as the same graph through ``robot_irl.launcher.up``,
a terminal (pty) for the keyboard teleop, a fake OpenAI-compatible server for the VLM. Every run must exit as the
rule expects (0 unless said) and print what the rule looks for.

    python tests/readme_walkthrough.py                 # the whole README, in a fresh temporary folder
    python tests/readme_walkthrough.py --list          # each README command and the rule that runs it
    python tests/readme_walkthrough.py --workdir /tmp/walk --keep --from 12

``tests/test_readme.py`` runs ``check_rules`` (fast) and the whole walkthrough (``slow``).
"""
from __future__ import annotations

import argparse
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
FENCE = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)


# -- the README's commands ---------------------------------------------------------------------------------------

def readme_commands(text: str | None = None) -> list[str]:
    """Every command of every fenced ``bash`` block of the README, in order (``\\`` continuations joined, comments
    and blank lines dropped)."""
    text = README.read_text() if text is None else text
    commands = []
    for block in FENCE.findall(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(re.sub(r"\s+", " ", line))
    return commands


# -- rules --------------------------------------------------------------------------------------------------------

@dataclass
class Rule:
    """How a README command (matched by ``pattern``, a regex searched in it) runs here."""

    pattern: str
    why: str = ""  # what differs from the README, and why (shown by --list)
    replace: list[tuple[str, str]] = field(default_factory=list)  # regex substitutions on the command
    append: str = ""  # appended to the command
    mode: str = "run"  # run | interrupt (runs until SIGINT after `seconds`) | pty_keys | launch | skip
    seconds: float = 0.0  # interrupt: run this long; pty_keys: the keys are sent after startup
    keys: bytes = b""
    expect_rc: int = 0
    expect: str = ""  # a regex the output must contain
    timeout: float = 600.0
    before: Callable[[Path], None] | None = None  # prepares the workdir (e.g. a file the README assumes)

    def matches(self, command: str) -> bool:
        return re.search(self.pattern, command) is not None


def _hopper_file(work: Path) -> None:
    """The README trains on D4RL's hopper-medium file, which nobody ships: a synthetic file of hopper's shape."""
    from robot_irl.data.synthetic import make_synthetic_d4rl

    make_synthetic_d4rl(work / "hopper-medium.hdf5", n_episodes=12, length=40, obs_dim=11, act_dim=3, overwrite=True)


def _first_interrupted_bag(work: Path) -> str:
    from robot_irl.collect.recover import interrupted_bags

    bags = interrupted_bags(work / "runs/session/dataset_bags")
    if not bags:
        raise RuntimeError("the collect session left no interrupted bag to recover")
    return bags[0].name


UP_DONE = r"--duration \d+ s is up: stopping the graph[\s\S]*graph stopped"
RULES: list[Rule] = [
    Rule(r"^make demo$", "the demo itself, without its offline-RL stage (experiment vlm-iql runs below)",
         replace=[(r"^make demo$", "robot-irl demo --out runs/demo --episodes 2 --adc-episodes 2 --no-offline-rl")],
         expect=r"contact_sheet"),
    Rule(r"^make test$", mode="skip", why="the default suite; this walkthrough is part of make test-all"),
    Rule(r"^robot-irl list$", expect=r"graphs: .*collect"),
    Rule(r"^robot-irl up bringup --driver sim --task lift$", "runs until Ctrl-C: 20 s", append=" --duration 20",
         expect=UP_DONE),
    Rule(r"^robot-irl up bringup --driver hardware --emulate$", "runs until Ctrl-C: 20 s", append=" --duration 20",
         expect=UP_DONE),
    Rule(r"^robot-irl up bringup --backend mujoco_arm$", "runs until Ctrl-C: 20 s", append=" --duration 20",
         expect=UP_DONE),
    Rule(r"^robot-irl record --task lift ", "3 episodes", replace=[(r"--episodes 5", "--episodes 3")],
         expect=r"success rate"),
    Rule(r"^robot-irl rollout ", expect=r"success rate"),
    Rule(r"^robot-irl info ", expect=r"frames \d+ = [\d.]+ s of data[\s\S]*LeRobotDataset\("),
    Rule(r"^robot-irl export-d4rl ", expect=r"wrote "),
    Rule(r"^robot-irl collect .*--mode adc", "2 episodes", replace=[(r"--episodes 20", "--episodes 2")],
         expect=r"report:"),
    Rule(r"^robot-irl collect .*--mode traditional", "2 episodes", replace=[(r"--episodes 20", "--episodes 2")],
         expect=r"report:"),
    Rule(r"^robot-irl up collect --operator scripted --adversary scripted", "3 short episodes",
         replace=[(r"episodes: \d+", "episodes: 3, max_steps: 60")], expect=r"operator_node finished"),
    Rule(r"^robot-irl up collect --driver sim --operator joy",
         "nobody holds a joystick here: the scripted operator and adversary stand in, 45 s, so an episode is in "
         "progress when the graph stops (its bag is what recover rebuilds); the console on a free port",
         replace=[(r"--operator joy", "--operator scripted --adversary scripted --set '{max_steps: 80}'")],
         append=" --console-port 0 --duration 45", expect=UP_DONE),
    Rule(r"^python -m robot_irl.ros.teleop_node .*device:=keyboard", "in a terminal (pty); q stops it",
         mode="pty_keys", keys=b"q", expect=r"stopping the teleop node", timeout=120),
    Rule(r"^robot-irl recover --list ", expect=r"episode_\d{6}_"),
    Rule(r"^robot-irl recover --bag ", "<episode>: the bag that --list printed",
         replace=[(r"<episode>", "{bag}")], expect=r"recovered \d+ frames"),
    Rule(r"^robot-irl experiment adc ", expect=r"results"),
    Rule(r"^robot-irl label .*--backend oracle", "200 pairs", replace=[(r"--pairs \d+", "--pairs 200")],
         expect=r"labels"),
    Rule(r"^robot-irl label .*--backend vlm", "a fake OpenAI-compatible server stands in for the VLM; 40 pairs",
         replace=[(r"--base-url \S+", "--base-url {vlm}"), (r"--pairs \d+", "--pairs 40")], expect=r"labels"),
    Rule(r"^robot-irl train-reward ", expect=r"relabel"),
    Rule(r"^robot-irl train iql --dataset runs/lift/dataset_vlm", "300 updates",
         replace=[(r"--steps \d+", "--steps 300"), (r"--eval-every \d+", "--eval-every 150 --eval-episodes 2")],
         expect=r"checkpoint"),
    Rule(r"^robot-irl train iql --dataset hopper-medium.hdf5", "a synthetic file of D4RL hopper's shape; 300 "
         "updates", before=_hopper_file, replace=[(r"--steps \d+", "--steps 300")], expect=r"checkpoint"),
    Rule(r"^robot-irl train bc ", "300 updates", append=" --steps 300", expect=r"checkpoint"),
    Rule(r"^robot-irl eval --policy runs/lift/iql ", "2 episodes", replace=[(r"--episodes \d+", "--episodes 2")],
         expect=r"success"),
    Rule(r"^robot-irl up deploy ", "runs until Ctrl-C: 25 s", append=" --duration 25", expect=UP_DONE),
    Rule(r"^OPENAI_BASE_URL=\S+ OPENAI_MODEL=\S+ robot-irl experiment vlm-iql", "the fake VLM server; small budget",
         replace=[(r"OPENAI_BASE_URL=\S+", "OPENAI_BASE_URL={vlm}")], append=" --budget small",
         expect=r"VLM", timeout=1200),
    Rule(r"^robot-irl experiment vlm-iql$", "small budget", append=" --budget small", timeout=1200,
         expect=r"results"),
    Rule(r"^robot-irl train ppo ", "20k env steps", replace=[(r"--steps \d+", "--steps 20000")],
         expect=r"trained hib"),
    Rule(r"^robot-irl eval-dynamics .*--range held_out", "8 episodes", append=" --episodes 8 --no-progress",
         expect=r"results: .*eval_dynamics_held_out_default\.json"),
    Rule(r"^robot-irl eval-dynamics .*--variant sim2sim", "8 episodes", append=" --episodes 8 --no-progress",
         expect=r"eval_dynamics_train_sim2sim"),
    Rule(r"^robot-irl up legged ", "runs until Ctrl-C: 25 s", append=" --duration 25", expect=UP_DONE),
    Rule(r"^robot-irl experiment hib$", "small budget", append=" --budget small", timeout=1200, expect=r"results"),
    Rule(r"^robot-irl experiment hib --resume", "small budget; the run the line before wrote (under runs/experiments/)",
         replace=[(r"--out \S+", "--out {hib_run}")], append=" --budget small", timeout=1200, expect=r"results"),
    Rule(r"^ros2 launch robot_irl bringup.launch.py driver:=sim", "no launch wheels here: the same graph through "
         "robot_irl.launcher.up, 20 s", mode="launch", seconds=20, expect=UP_DONE),
    Rule(r"^ros2 launch robot_irl bringup.launch.py driver:=hardware", "the MuJoCo emulator plays the robot; 20 s",
         mode="launch", append=" emulate:=true", seconds=20, expect=UP_DONE),
    Rule(r"^ros2 launch robot_irl collect.launch.py driver:=hardware", "the emulator plays the robot, nobody holds "
         "the joystick (the teleop node says so), a dataset under runs/, the console on a free port; 30 s",
         mode="launch", replace=[(r"dataset:=\S+", "dataset:=runs/adc_hw/dataset")],
         append=" emulate:=true console_port:=0", seconds=30, expect=r"no joy input"),
    Rule(r"^ros2 launch robot_irl deploy.launch.py driver:=hardware", "robot-irl up's check of the same graph: the "
         "emulator is the small 5-joint arm, not the Panda the Lift policy was trained on, so the policy is refused "
         "before anything starts, naming the mismatch",
         replace=[(r"^.*$", "robot-irl up deploy --driver hardware --emulate --policy runs/lift/iql/checkpoint")],
         expect_rc=2, expect=r"expects 7 action dims; the ros2_control driver takes 5"),
    Rule(r"^ros2 launch robot_irl legged.launch.py driver:=hardware", "a simulated Go1 plays the robot; 25 s",
         mode="launch", replace=[(r"policy:=\S+", "policy:=runs/go1/hib/checkpoint")], append=" emulate:=true",
         seconds=25, expect=UP_DONE),
    Rule(r"^ros2 run robot_irl driver_node ", "the module the console script runs; Ctrl-C after 15 s",
         replace=[(r"^ros2 run robot_irl driver_node", "python -m robot_irl.ros.driver_node")], mode="interrupt",
         seconds=15, expect=r"driver robosuite at 20 Hz"),
]


def rule_for(command: str) -> Rule:
    found = [r for r in RULES if r.matches(command)]
    if len(found) != 1:
        raise LookupError(f"README command {command!r} matches {len(found)} walkthrough rules (want exactly one): "
                          f"add or fix a rule in {Path(__file__).name}")
    return found[0]


def check_rules(commands: list[str] | None = None) -> list[tuple[str, Rule]]:
    """Every README command with its one rule; raises if a command has none (or several) or a rule is unused."""
    commands = readme_commands() if commands is None else commands
    plan = [(c, rule_for(c)) for c in commands]
    unused = [r.pattern for r in RULES if not any(rule is r for _, rule in plan)]
    if unused:
        raise LookupError(f"walkthrough rules that match no README command (the README changed?): {unused}")
    return plan


# -- running ------------------------------------------------------------------------------------------------------

def headless_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(MUJOCO_GL="egl", PYOPENGL_PLATFORM="egl", PYNPUT_BACKEND="dummy", HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1")
    env.setdefault("ROS_DOMAIN_ID", str(50 + os.getpid() % 50))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


def to_argv(command: str, env: dict[str, str]) -> list[str]:
    """``robot-irl`` / ``python`` as this interpreter runs them; leading ``NAME=value`` words go to ``env``."""
    words = shlex.split(command)
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    if words[0] == "robot-irl":
        return [sys.executable, "-m", "robot_irl.cli", *words[1:]]
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    return words


def launch_argv(command: str, seconds: float) -> list[str]:
    """``ros2 launch robot_irl NAME.launch.py k:=v ...`` as the same graph through ``robot_irl.launcher.up``."""
    words = shlex.split(command)
    graph = words[3].removesuffix(".launch.py")
    args = dict(w.split(":=", 1) for w in words[4:])
    code = (f"import sys; from robot_irl.launcher import up; "
            f"sys.exit(up({graph!r}, duration={seconds!r}, **{args!r}))")
    return [sys.executable, "-c", code]


def run_command(command: str, rule: Rule, work: Path, context: dict[str, str], log) -> str:
    """Run one README command per its rule in ``work``; returns its output; raises AssertionError on failure."""
    if rule.before is not None:
        rule.before(work)
    for pattern, replacement in rule.replace:
        for key, value in context.items():  # {vlm}, {bag}, {hib_run}: not str.format (commands hold YAML braces)
            replacement = replacement.replace("{" + key + "}", value)
        command = re.sub(pattern, lambda _, r=replacement: r, command)
    command += rule.append
    env = headless_env()
    print(f"$ {command}", file=log, flush=True)
    if rule.mode == "launch":
        argv = launch_argv(command, rule.seconds)
    else:
        argv = to_argv(command, env)
    started = time.monotonic()
    if rule.mode == "pty_keys":
        rc, out = _run_in_pty(argv, env, work, rule)
    else:
        proc = subprocess.Popen(argv, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            if rule.mode == "interrupt":
                try:
                    out, _ = proc.communicate(timeout=rule.seconds)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGINT)
                    out, _ = proc.communicate(timeout=60)
            else:
                out, _ = proc.communicate(timeout=rule.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            raise AssertionError(f"{command}: still running after {rule.timeout:g} s\n{out[-4000:]}") from None
        rc = proc.returncode
    print(out, file=log, flush=True)
    print(f"[{rc}] {time.monotonic() - started:.0f} s", file=log, flush=True)
    if rc != rule.expect_rc:
        raise AssertionError(f"{command}: exit status {rc}, expected {rule.expect_rc}\n{out[-4000:]}")
    if rule.expect and not re.search(rule.expect, out):
        raise AssertionError(f"{command}: output lacks /{rule.expect}/\n{out[-4000:]}")
    if "Traceback (most recent call last)" in out:
        raise AssertionError(f"{command}: printed a traceback\n{out[-4000:]}")
    return out


def _run_in_pty(argv: list[str], env: dict[str, str], work: Path, rule: Rule) -> tuple[int, str]:
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, cwd=work, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    output = b""

    def read(seconds: float, until: bytes | None = None) -> None:
        nonlocal output
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until in output):
            if select.select([master], [], [], 0.1)[0]:
                try:
                    output += os.read(master, 4096)
                except OSError:
                    return

    try:
        read(rule.timeout / 2, until=b"teleop for")
        os.write(master, rule.keys)
        try:
            proc.wait(timeout=rule.timeout / 2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        read(0.5)
    finally:
        os.close(master)
    return proc.returncode, output.decode(errors="replace")


class VLMServer:
    """The tests' fake OpenAI-compatible server (tests/fake_openai_server.py), answering every pair."""

    def __enter__(self) -> VLMServer:
        sys.path.insert(0, str(Path(__file__).parent))
        from fake_openai_server import FakeOpenAI

        self.fake = FakeOpenAI().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.fake.__exit__(*exc)

    @property
    def url(self) -> str:
        return self.fake.url


def walk(work: Path, log=sys.stdout, start: int = 1) -> list[tuple[str, float]]:
    """Run the README's commands (from number ``start``) in ``work``; returns (command, seconds) of each."""
    plan = check_rules()
    timings = []
    with VLMServer() as vlm:
        for number, (command, rule) in enumerate(plan, 1):
            if number < start:
                continue
            if rule.mode == "skip":
                print(f"# {number}: {command}: skipped ({rule.why})", file=log, flush=True)
                continue
            context = {"vlm": vlm.url}
            wanted = "".join(r for _, r in rule.replace)
            if "{bag}" in wanted:
                context["bag"] = _first_interrupted_bag(work)
            if "{hib_run}" in wanted:
                runs = (work / "runs/experiments").glob("hib-*")
                context["hib_run"] = str(max(runs, key=lambda p: p.stat().st_mtime))
            print(f"# {number}/{len(plan)}", file=log, flush=True)
            started = time.monotonic()
            run_command(command, rule, work, context, log)
            timings.append((command, time.monotonic() - started))
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default=None, help="folder to run in (default: a fresh temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--from", dest="start", type=int, default=1, help="start at README command number N")
    parser.add_argument("--list", action="store_true", help="list the README's commands and their rules")
    args = parser.parse_args(argv)
    if args.list:
        for number, (command, rule) in enumerate(check_rules(), 1):
            print(f"{number:>2}. {command}\n    {rule.mode}{': ' + rule.why if rule.why else ''}")
        return 0
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="readme_walk_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        timings = walk(work, start=args.start)
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        print(f"workdir: {work}")
    total = sum(s for _, s in timings)
    print(f"{len(timings)} README commands passed in {total / 60:.1f} min")
    if not args.workdir and not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
