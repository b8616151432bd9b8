# trailcam: the two set-up commands are `make demo` and `make test`.
# Both create their own virtual environments; nothing is installed system-wide
# except the mosquitto broker (and systemd's tools) that the tests need.

PYTHON   ?= python3
VENV     := .venv
EDGE_VENV := .venv-edge
MIN_VENV := .venv-min
MIN_CONSTRAINTS := constraints/edge-min.txt
PY       := $(VENV)/bin/python
PIP_FLAGS := --disable-pip-version-check --quiet
DEMO_DIR ?= demo-output
# Run as root in CI; elsewhere use sudo for apt-get when it exists.
SUDO     := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo)

.PHONY: demo test test-min lint bench docs system-deps venv edge-venv min-venv clean

## Full development environment: trainer (TensorFlow) + edge + test tools.
$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV)/bin/pip install $(PIP_FLAGS) -e '.[trainer,web,report,dev,collector,notify]'
	touch $@
venv: $(VENV)/.stamp

## A second, edge-only environment with tflite-runtime and NumPy 1.x, as on a
## Raspberry Pi: it proves the edge runs without TensorFlow or ai-edge-litert.
$(EDGE_VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(EDGE_VENV)/bin/pip install $(PIP_FLAGS) -e '.[edge-tflite,web]'
	touch $@
edge-venv: $(EDGE_VENV)/.stamp

## A third, lowest-versions environment: the `edge` extra with every dependency at its declared
## `>=` floor exactly (constraints/edge-min.txt, which tests/test_dependency_floors.py keeps equal
## to pyproject.toml), so a floor that is not true fails `make test`. Test tools come on top.
$(MIN_VENV)/.stamp: pyproject.toml $(MIN_CONSTRAINTS)
	rm -rf $(MIN_VENV)
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(MIN_VENV)/bin/pip install $(PIP_FLAGS) -c $(MIN_CONSTRAINTS) -e '.[edge,web,onnx,video]' 'pytest>=8' 'pytest-timeout>=2.2' 'pytest-xdist>=3.5' 'piexif>=1.1' 'onnx>=1.16' 'hypothesis>=6.100'
	touch $@
min-venv: $(MIN_VENV)/.stamp

# The whole TensorFlow-free edge suite (about 2 minutes on two pytest-xdist workers): every area there uses
# one of the floored dependencies, and tests needing trainer-built models skip (no TensorFlow); the ONNX
# detector tests (the [onnx] extra at its floor); and the detector's pure box arithmetic (NMS), which
# needs no TensorFlow either; and the video clips (the [video] extra, PyAV at its floor; not the counting
# test, which validates its Camtrap DP package with frictionless, the [ecology] extra .venv-min lacks).
MIN_CLIP_TESTS := $(addprefix tests/edge/daemon/clips/test_clips_daemon.py::test_,a_truncated_clip_counts_what_came_before_the_fault_and_is_an_error an_unsupported_codec_is_a_clear_error_and_counts_nothing a_clip_still_being_written_is_waited_for)
# The edge's folders (tests/README.md) whose every test runs here; of the others, the files listed.
MIN_EDGE_DIRS := classify cli config ingest live store operate publish web
MIN_TESTS ?= tests/test_dependency_floors.py tests/fixtures/test_broker_fixture.py tests/edge/test_no_tensorflow.py \
	$(addprefix tests/edge/,$(MIN_EDGE_DIRS)) $(sort $(wildcard tests/edge/daemon/test_*.py)) \
	tests/edge/ecology/test_taxa_and_deployments.py tests/edge/detect/test_onnx_detectors.py \
	tests/edge/detect/test_boxes_tiles.py tests/edge/detect/test_nms.py tests/edge/daemon/clips/test_clips_restart.py $(MIN_CLIP_TESTS)

# What must be there, so that a test needing it fails instead of skipping (tests/fixtures/require.py):
# ../shared, the broker, systemd-analyze, setpriv, and a tmpfs mount (root only: a developer who is not
# root gets those few tests skipped, allowed by tests/skip_budget.toml; `make test REQUIRE_TMPFS=0` in a
# root container that may not mount). Each run then fails when a test skips that its skip budget
# (tests/skip_budget.toml, TRAILCAM_SKIP_BUDGET) does not expect. pytest's exit code 5 (no tests
# collected) fails make like any other non-zero code.
REQUIRE_TMPFS ?= $(shell [ "$$(id -u)" -eq 0 ] && echo 1 || echo 0)
REQUIRE := TRAILCAM_REQUIRE_SHARED=1 TRAILCAM_REQUIRE_BROKER=1 TRAILCAM_REQUIRE_SYSTEMD=1 TRAILCAM_REQUIRE_SETPRIV=1 TRAILCAM_REQUIRE_TMPFS=$(REQUIRE_TMPFS)

## The edge tests on the lowest declared versions.
test-min: min-venv system-deps
	TRAILCAM_MIN_ENV=1 $(REQUIRE) TRAILCAM_SKIP_BUDGET=min $(MIN_VENV)/bin/python -m pytest -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile $(MIN_TESTS)

## ruff (the whole tree) and mypy (edge, fleet, collector, trainer), as configured in pyproject.toml;
## `make test` runs it first, so a lint or type error fails the build before the long suite starts.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

## The broker the MQTT tests start on a free loopback port, chromium for tests/edge/web, systemd-analyze, and
## PostgreSQL for tests/collector and tests/fleet (the tests run initdb + pg_ctl themselves; the packaged cluster is not used);
## ffmpeg and rtsp-server-perl serve real RTSP and MJPEG streams to tests/edge/live/test_live_streams.py (the
## packaged relay service is disabled: the tests start their own on free loopback ports).
system-deps:
	@command -v mosquitto >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q mosquitto mosquitto-clients; }
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }
	@command -v openssl >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q openssl; }
	@command -v systemd-analyze >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q systemd; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q postgresql; }
	@command -v ffmpeg >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q ffmpeg; }
	@command -v rtsp-server-perl >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q rtsp-server-perl \
		&& { $(SUDO) systemctl disable --now rtsp-server-perl >/dev/null 2>&1 || true; }; }

# Two pytest workers (pytest-xdist), a test file never split across them (--dist loadfile): the
# edge tests mostly wait on daemons, brokers and inotify while the trainer tests use the CPU.
# TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
test: lint venv edge-venv min-venv system-deps
	$(REQUIRE) TRAILCAM_REQUIRE_EDGE_VENV=1 TRAILCAM_REQUIRE_POSTGRES=1 TRAILCAM_REQUIRE_BROWSER=1 TRAILCAM_REQUIRE_TRAINER=1 TRAILCAM_REQUIRE_STREAMS=1 TRAILCAM_SKIP_BUDGET=main $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile
	$(MAKE) --no-print-directory test-min

## The main job end to end, offline, on generated frames.
demo: venv
	$(PY) -m trainer synth --out $(DEMO_DIR)/dataset --train-per-class 60 --frames-per-class 4 --frames-out $(DEMO_DIR)/camera --frames-start 2026-05-01T07:00
	$(PY) -m trainer train --data $(DEMO_DIR)/dataset --arch convnet --image-size 96 --epochs 6 --out $(DEMO_DIR)/run --overwrite
	$(PY) -m trainer export $(DEMO_DIR)/run --quantize int8 --out $(DEMO_DIR)/bundle --overwrite
	@echo "== edge daemon over $(DEMO_DIR)/camera"
	rm -f $(DEMO_DIR)/counts.db $(DEMO_DIR)/counts.db-wal $(DEMO_DIR)/counts.db-shm
	$(PY) -m edge run --once --model $(DEMO_DIR)/bundle --watch $(DEMO_DIR)/camera --db $(DEMO_DIR)/counts.db
	@echo "== visits (events) per species and day"
	@$(PY) -m edge counts --db $(DEMO_DIR)/counts.db --by day
	@echo "== frames per species and day"
	@$(PY) -m edge counts --db $(DEMO_DIR)/counts.db --by day --frames

bench: venv
	$(PY) -m benchmarks

## The generated references: docs/configuration.md from the config models in edge/config/,
## docs/cli.md from the edge and trainer argparse parsers. tests/docs fails when they are stale.
## (Any existing .venv will do: the generators import neither TensorFlow nor anything new.)
docs:
	@test -x $(PY) || $(MAKE) --no-print-directory venv
	$(PY) -m tests.docs.generate

clean:
	rm -rf $(VENV) $(EDGE_VENV) $(MIN_VENV) $(DEMO_DIR) .pytest_cache
