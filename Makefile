# The README's commands. Each target installs what it needs first.
#   make test                  the suite on the current stack (torch 2.14, NumPy 2)
#   make test-classic          the same suite on the classic stack (torch 2.1, NumPy 1.26)
#   make test-all              make test, then the tests marked slow
#   make lint                  the pre-commit checks on the whole tree
STACK ?= current
VENV_current := .venv
VENV_classic := .venv-classic
VENV ?= $(VENV_$(STACK))
PY := $(VENV)/bin/python
TASK ?= seg
# CONFIG=<another demo config of TASK> (e.g. its MACs-budget demo) runs it
# into work_dirs/<config name>.
CONFIG ?=
# Tests and the demo run small models: one thread per process avoids
# oversubscribing small machines (and keeps timings steady).
export OMP_NUM_THREADS ?= 1
# Test processes (pytest-xdist); each test file runs in one of them, so a
# module's fixtures are built once. TEST_JOBS=0 runs in this process.
TEST_JOBS ?= 2
PYTEST := $(PY) -m pytest tests -q --durations=15 $(if $(filter 0,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile)

.PHONY: setup setup-classic test test-classic test-slow test-all lint demo data

setup:
	STACK=$(STACK) bash tools/setup_env.sh $(VENV)

setup-classic:
	$(MAKE) setup STACK=classic

test: setup
	$(PYTEST) -m "not slow"

test-classic:
	$(MAKE) test STACK=classic

# The slow tests hold paper-size models: one process, as verified.
test-slow: setup
	$(PY) -m pytest tests -q --durations=15 -m slow

test-all: test test-slow

lint: setup
	$(PY) -m pip install --disable-pip-version-check -q -r requirements/lint.txt
	$(VENV)/bin/pre-commit run --all-files

data: setup
	$(PY) tools/dataset_converters/generate_data.py all --out data/demo

demo: setup
	$(PY) tools/run_demo.py --task $(TASK) $(if $(CONFIG),--config $(CONFIG) --work-dir work_dirs/$(basename $(notdir $(CONFIG))))
