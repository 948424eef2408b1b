# The README's commands. Each target installs what it needs first.
VENV ?= .venv
PY := $(VENV)/bin/python
TASK ?= seg
# Tests and the demo run small models: one thread per process avoids
# oversubscribing small machines (and keeps timings steady).
export OMP_NUM_THREADS ?= 1

.PHONY: setup test test-all demo data

setup:
	bash tools/setup_env.sh $(VENV)

test: setup
	$(PY) -m pytest tests -q -m "not slow"

test-all: setup
	$(PY) -m pytest tests -q

data: setup
	$(PY) tools/dataset_converters/generate_data.py all --out data/demo

demo: setup
	$(PY) tools/run_demo.py --task $(TASK)
