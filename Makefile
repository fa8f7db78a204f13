# Two commands set everything up on a fresh machine:
#   make demo   installs dlbench in .venv and runs the main job offline (a sweep on `shapes`, then a report)
#   make test   installs dlbench with its test extras, checks lint and format, builds and checks the sdist and
#               wheel, and runs the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo-out

.PHONY: install demo test lint format bench browser dist-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# The main job, offline: an activation sweep of a small CNN on the procedural `shapes` dataset, then the report.
# Results go to $(DEMO_OUT)/cache, so a second `make demo` trains nothing and only rewrites the report.
DEMO_ENV := DLBENCH_HOME=$(DEMO_OUT)/cache DLBENCH_DATA_DIR=$(DEMO_OUT)/data
demo: install
	$(DEMO_ENV) $(VENV)/bin/dlbench sweep activation relu,tanh,sigmoid --model cnn --dataset shapes \
	  --dataset-opt train_size=8000 --dataset-opt test_size=2000 --epochs 4 --optimizer adam --lr 2e-3 \
	  --figures-dir $(DEMO_OUT)/figures
	$(DEMO_ENV) $(VENV)/bin/dlbench report --out $(DEMO_OUT)/report.md
	$(DEMO_ENV) $(VENV)/bin/dlbench report --out $(DEMO_OUT)/report.html

# Lint: ruff (style, complexity) and import-linter (the layer rules in pyproject.toml; docs/architecture.md).
lint: install
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/lint-imports --no-cache

format: install
	$(VENV)/bin/ruff check --fix src tests benchmarks scripts
	$(VENV)/bin/ruff format src tests benchmarks scripts

# Chromium for the HTML report's browser test: installed when missing and we are root; otherwise that test skips.
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) || \
	  echo "chromium could not be installed: the browser test will be skipped"

# The sdist and wheel as PyPI would get them, built into a temp folder: `twine check --strict`, py.typed in the
# wheel and no test files, URLs and classifiers in the metadata, no README link PyPI could not resolve.
dist-check: install
	$(PY) scripts/check_dist.py

test: lint browser dist-check
	$(PY) -m pytest -n 2 --durations=15 -q

bench: install
	$(PY) benchmarks/throughput.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache
