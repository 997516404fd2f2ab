# robot_irl: `make demo` and `make test` set everything up on a fresh machine, then run.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.robot_irl-installed

# Headless, offline, quiet by default (each can be overridden from the environment).
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
export PYNPUT_BACKEND ?= dummy
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export PYTHONUNBUFFERED ?= 1

PYTEST_ARGS ?=
DEMO_OUT ?= runs/demo

.PHONY: setup demo test test-all lint bench clean

setup: $(STAMP)

# Exact pins for this machine (Python 3.11, CPU) live in requirements/lock.txt; see its header for why they are
# what they are. --no-deps installs exactly the lock, so pip never re-resolves the robosuite/lerobot conflict.
$(STAMP): requirements/lock.txt setup.py
	@# Software EGL rendering (MUJOCO_GL=egl) needs Mesa's EGL; stock Debian 12 images ship it, minimal ones may not.
	@if command -v dpkg >/dev/null && ! dpkg -s libegl1 libegl-mesa0 libgl1-mesa-dri >/dev/null 2>&1; then \
	  echo "installing Mesa EGL for headless rendering"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libegl1 libegl-mesa0 libgl1-mesa-dri; fi
	@# LeRobot's default video backend (torchcodec) loads FFmpeg's shared libraries: without them
	@# LeRobotDataset(repo_id, root=...) fails on our videos unless video_backend="pyav". libavdevice pulls in the
	@# rest (Debian 12: libavdevice59, FFmpeg 5.1; ~55 MB, ~30 s); torchcodec 0.10 takes FFmpeg 4 to 8.
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && ! ldconfig -p | grep -q 'libavdevice\.so\.'; then \
	  echo "installing FFmpeg's libraries for LeRobot's default video backend"; \
	  apt-get update -qq; pkg=$$(apt-cache pkgnames libavdevice | grep -E '^libavdevice[0-9]+$$' | sort -V | tail -1); \
	  ([ -n "$$pkg" ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkg) || \
	  echo "warning: could not install FFmpeg's libraries; read our datasets with video_backend=\"pyav\""; fi
	@# The adversary console's browser test drives Debian's chromium (skipped, with its reason, where it is missing).
	@if command -v apt-get >/dev/null && [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ]; then \
	  echo "installing chromium for the console's browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) || \
	  echo "warning: could not install chromium; the browser test will be skipped"; fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

demo: setup
	$(BIN)/robot-irl demo --out $(DEMO_OUT)

test: setup
	$(BIN)/python -m ruff check robot_irl tests bench launch
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/python -m ruff check robot_irl tests bench launch

bench: setup
	$(BIN)/python bench/bench_sim_driver.py
	$(BIN)/python bench/bench_ros_latency.py
	$(BIN)/python bench/bench_d4rl_load.py
	$(BIN)/python bench/bench_collect.py
	$(BIN)/python bench/bench_iql.py
	$(BIN)/python bench/bench_legged.py
	$(BIN)/python bench/bench_ppo.py

clean:
	rm -rf build install log .pytest_cache *.egg-info
