# The two commands: `make demo` and `make test`. Everything they need is
# installed by the targets below, pinned and stamped, so a second run only
# does the work.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/.tools/bin:$(PATH)
export PACKER_PLUGIN_PATH := $(CURDIR)/.tools/packer-plugins
export CHECKPOINT_DISABLE := 1
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PYTHONPATH := $(CURDIR)
export PYTHONDONTWRITEBYTECODE := 1

PY_SRC := agent_src/src library module_utils tests bench tools packer/scripts playbooks/files
MYPY_SRC := agent_src/src library module_utils
PLAYBOOKS = $(wildcard playbooks/*.yml)
PYTEST_ARGS ?= -m "not slow"

.PHONY: help setup tools lint test pytest demo lock clean bench

help:
	@echo "make demo   - rehearse the whole flow on local servers and print what it did"
	@echo "make test   - install what is needed, then run every lint and test"
	@echo "make bench  - run the benchmarks (bench/) and print ours/baseline ratios"

# -- installs -----------------------------------------------------------------
# Bytecode is compiled once, at install: with PYTHONDONTWRITEBYTECODE (exported
# above) every python, ansible-playbook and agent process would otherwise
# recompile what it imports (boto3 with botocore alone: about 0.6 s each time).
$(BIN)/.stamp: requirements.lock agent_src/pyproject.toml VERSION
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e agent_src
	touch $@

.tools/.stamp: tools/install-tools.sh tools/go-build.sh tools/versions.env
	tools/install-tools.sh all
	touch $@

setup: $(BIN)/.stamp .tools/.stamp

tools: .tools/.stamp

lock: $(BIN)/.stamp
	$(BIN)/uv pip compile --quiet --python-version 3.11 requirements.in -o requirements.lock
	# The agent's own pins (the image installs them), the same versions as above.
	$(BIN)/uv pip compile --quiet --python-version 3.11 --no-annotate -c requirements.lock \
	  agent_src/pyproject.toml -o agent_src/requirements.lock

# -- checks -------------------------------------------------------------------
lint: setup
	@echo "== ruff";          ruff check $(PY_SRC)
	@echo "== ruff format";   ruff format --check $(PY_SRC)
	@echo "== mypy --strict"; mypy --strict $(MYPY_SRC)
	@# The agent's Windows-only code (ctypes, msvcrt) is checked as Windows would import it.
	@echo "== mypy --strict --platform win32"; mypy --strict --platform win32 --cache-dir .mypy_cache/win32 agent_src/src
	@echo "== yamllint";      yamllint --strict .
	@echo "== syntax-check";  for p in $(PLAYBOOKS); do out=$$(ansible-playbook --syntax-check "$$p" 2>&1) || { echo "$$out"; echo "syntax-check failed: $$p"; exit 1; }; done
	@echo "== ansible-lint";  ansible-lint --profile production --offline -q
	@echo "== packer fmt";    packer fmt -check -diff -recursive packer/
	@echo "== packer validate"; tools/packer-validate.sh

pytest: setup
	pytest $(PYTEST_ARGS)

test: lint pytest

# -- demo and benchmarks ------------------------------------------------------
demo: setup
	$(BIN)/python tools/demo.py

bench: setup
	tools/install-tools.sh bench
	for b in warmup upload pool; do $(BIN)/python -m bench.$$b; done

clean:
	rm -rf $(VENV) .tools .state .pytest_cache .mypy_cache .ruff_cache
