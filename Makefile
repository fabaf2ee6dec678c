# One command surface for people and CI: make demo, make test, make lint, make bench.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: setup system-deps demo test test-fast lint bench clean

# The project's Python environment, pinned by requirements.lock (torch is the CPU build).
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -c requirements.lock -e '.[dev,torch]'
	touch $(STAMP)

setup: $(STAMP)

# Debian packages the integration tests need (PostgreSQL server binaries). Installed,
# never started: the tests start their own throwaway servers.
system-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "installing postgresql (Debian package)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	fi

DEMO_DIR ?= demo
demo: setup
	$(BIN)/conveyor demo --dir $(DEMO_DIR)
	$(BIN)/conveyor run -c $(DEMO_DIR)/conveyor.yaml

test: lint system-deps
	$(BIN)/pytest -n 2 --dist loadfile -q

test-fast: setup
	$(BIN)/pytest -n 2 -q tests/unit

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
