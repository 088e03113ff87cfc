# The two commands of the README:
#   make demo   run the exporter on :9865 against the built-in EMR Serverless simulator (no AWS account)
#   make test   lint, type-check and run the whole test suite (installs Prometheus when missing)
# Both create what they need: the virtual environment in .venv and the package with its test extra.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint prometheus clean

demo: $(STAMP)
	$(BIN)/emr-serverless-exporter --demo

test: $(STAMP) prometheus lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Debian's prometheus package gives the real prometheus and promtool the tests run.
prometheus:
	@command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq prometheus; }

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
