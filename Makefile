# Two commands set everything up on a fresh machine:
#   make demo   installs dlbench in .venv and runs the main job offline (a sweep on `shapes`, then a report)
#   make test   installs dlbench with its test extras, checks lint and format, and runs the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo-out

.PHONY: install demo test lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: install
	DLBENCH_HOME=$(DEMO_OUT)/cache $(VENV)/bin/dlbench count-params mlpmixer --dataset cifar10 --set patch_size=2,4,8,16,32
	DLBENCH_HOME=$(DEMO_OUT)/cache $(VENV)/bin/dlbench solve-depth mlp --set width=64 --target-model mlp --dataset fashion-mnist

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: install
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

test: lint
	$(PY) -m pytest -n 2 --durations=15 -q

bench: install
	$(PY) benchmarks/throughput.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache
