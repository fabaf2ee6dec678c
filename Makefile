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

# Airflow lives in its own environment (it pins its own fastapi, sqlalchemy, ...).
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_BIN := $(AIRFLOW_VENV)/bin
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER ?= $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__USAGE_DATA_COLLECTION__ENABLED := False
export SCARF_ANALYTICS := false
# Podman's settings for these machines (runc, cgroupfs, lower ulimits): deploy/podman/.
export CONTAINERS_CONF := $(CURDIR)/deploy/podman/containers.conf

.PHONY: setup system-deps monitoring-deps bench-deps demo test test-fast lint bench clean airflow airflow-up sbom audit images stack-up stack-down k8s-rules soak bench-scale bench-images bench-backup bench-drift bench-airflow

# The project's Python environment, pinned by requirements.lock (torch is the CPU build).
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -c requirements.lock -e '.[pipeline,server,dev,torch]'
	touch $(STAMP)

setup: $(STAMP)

# The Airflow environment, pinned by airflow/requirements.lock.
$(AIRFLOW_STAMP): airflow/requirements.txt airflow/requirements.lock
	test -x $(AIRFLOW_BIN)/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_BIN)/python -m pip install -qq --upgrade pip
	$(AIRFLOW_BIN)/python -m pip install -qq -r airflow/requirements.txt -c airflow/requirements.lock
	touch $(AIRFLOW_STAMP)

# Its metadata DB: SQLite in $(AIRFLOW_HOME) unless AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
# says otherwise (e.g. postgresql+psycopg2://...). Migrating is idempotent.
$(AIRFLOW_HOME)/.migrated: $(AIRFLOW_STAMP)
	mkdir -p $(AIRFLOW_HOME)
	$(AIRFLOW_BIN)/airflow db migrate >/dev/null
	touch $(AIRFLOW_HOME)/.migrated

airflow: $(AIRFLOW_HOME)/.migrated

# A local Airflow with its UI on http://127.0.0.1:8080 (Ctrl-C stops all three).
# SimpleAuthManager prints the admin password it generates on start-up.
airflow-up: airflow
	trap 'kill 0' INT TERM EXIT; \
	$(AIRFLOW_BIN)/airflow api-server --port 8080 & \
	$(AIRFLOW_BIN)/airflow scheduler & \
	$(AIRFLOW_BIN)/airflow dag-processor & \
	wait

# Supply-chain tools in their own environment, pinned by audit/requirements.lock.
AUDIT_VENV ?= .venv-audit
AUDIT_STAMP := $(AUDIT_VENV)/.installed
$(AUDIT_STAMP): audit/requirements.txt audit/requirements.lock
	test -x $(AUDIT_VENV)/bin/python || $(PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/python -m pip install -qq -r audit/requirements.txt -c audit/requirements.lock
	touch $(AUDIT_STAMP)

# A CycloneDX SBOM of each lock file (works offline): build/sbom/*.cdx.json.
sbom: $(AUDIT_STAMP)
	mkdir -p build/sbom
	$(AUDIT_VENV)/bin/cyclonedx-py requirements requirements.lock --output-format JSON --output-reproducible -o build/sbom/conveyor.cdx.json
	$(AUDIT_VENV)/bin/cyclonedx-py requirements airflow/requirements.lock --output-format JSON --output-reproducible -o build/sbom/airflow.cdx.json

# Known vulnerabilities of every pinned package (needs PyPI's JSON API or OSV: online).
audit: sbom
	$(AUDIT_VENV)/bin/pip-audit --progress-spinner off --disable-pip --no-deps -r requirements.lock
	$(AUDIT_VENV)/bin/pip-audit --progress-spinner off --disable-pip --no-deps -r airflow/requirements.lock

# Debian packages the integration tests need (PostgreSQL server binaries, Prometheus with
# promtool, Alertmanager with amtool, podman/buildah/mmdebstrap for the images). Installed,
# never started: the tests start their own throwaway servers.
system-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "installing postgresql (Debian package)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	fi
	@bash deploy/install-prometheus.sh
	@bash deploy/docker/install-tools.sh

# The Prometheus Operator's PrometheusRule in deploy/k8s/base, rendered from the rule files
# in deploy/prometheus/rules (a test fails when it is stale).
k8s-rules: setup
	$(BIN)/python deploy/k8s/render_rules.py

# Conveyor's images, built offline from a wheelhouse of requirements.lock, tagged with the
# package version (BASE_IMAGE=<image> builds on it instead of a local Debian base).
images: setup system-deps
	bash deploy/docker/build-images.sh $(BIN)/python

# The whole stack on this machine (deploy/compose): secrets in deploy/compose/.env (written
# with fresh random values when absent), third-party services from local Debian-built images
# unless STACK_LOCAL=0 (then the official images are pulled), a demo table trained once.
STACK_LOCAL ?= 1
STACK_FLAGS := $(if $(filter 1,$(STACK_LOCAL)),--local,)
stack-up: images
	$(if $(filter 1,$(STACK_LOCAL)),bash deploy/compose/local/build.sh $(BIN)/python)
	$(BIN)/python deploy/compose/stack.py up $(STACK_FLAGS)
	$(BIN)/python deploy/compose/stack.py seed $(STACK_FLAGS)

# Stops and removes the stack's containers; its data volumes stay (STACK_VOLUMES=1 drops them).
stack-down: setup
	$(BIN)/python deploy/compose/stack.py down $(STACK_FLAGS) $(if $(filter 1,$(STACK_VOLUMES)),--volumes,)

# The load generator of the serving benchmark.
bench-deps:
	@command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; }

# Prometheus and Alertmanager for the demo's loop (Debian packages, installed when missing
# and possible; without them the demo posts the retraining alert itself and says so).
monitoring-deps:
	@bash deploy/install-prometheus.sh || echo "Prometheus and Alertmanager could not be installed: the demo will post the retraining alert itself"

# The whole loop on a fresh demo project: train, serve, traffic, drift, Prometheus alert,
# Alertmanager, retrain through the gates, swap.
DEMO_DIR ?= demo
demo: setup monitoring-deps
	rm -rf $(DEMO_DIR)
	$(BIN)/conveyor demo --dir $(DEMO_DIR) --loop

test: lint system-deps airflow sbom
	$(BIN)/pytest -n 2 --dist loadfile -q --durations=25

test-fast: setup
	$(BIN)/pytest -n 2 -q tests/unit

lint: setup
	$(BIN)/ruff check src tests benchmarks dags deploy
	$(BIN)/ruff format --check src tests benchmarks dags deploy
	$(BIN)/mypy
	$(BIN)/mypy --strict deploy/compose/stack.py deploy/k8s/render_rules.py deploy/k8s/deploy.py deploy/rollout/rollout.py
	$(BIN)/lint-imports

# The speed comparisons, each against its baseline in interleaved rounds (about half an
# hour here); the longer ones have their own targets below.
bench: setup bench-deps system-deps
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.serving
	$(BIN)/python -m benchmarks.serving.overhead
	$(BIN)/python -m benchmarks.batch_scoring
	$(BIN)/python -m benchmarks.rollout

# Image size, build and start-up against MLflow's build-docker (builds images with podman).
bench-images: setup system-deps
	$(BIN)/python -m benchmarks.images

# Backup and restore of a project's registry, runs and data.
bench-backup: setup system-deps
	$(BIN)/python -m benchmarks.backup_restore

# How a fresh run scales with data volume, up to 5 million rows (not in bench: about
# 25 minutes here); docs/benchmarks.md#scaling-with-data-volume.
bench-scale: setup system-deps
	$(BIN)/python -m benchmarks.scale

# A soak (not in bench, not in CI): replicas behind HAProxy for --minutes (default 10) of
# traffic, feedback, alias swaps, a killed replica and a registry outage; docs/benchmarks.md.
soak: setup system-deps
	$(BIN)/python -m benchmarks.soak

# Drift calibration (not in bench): false alarms and injected shifts, 200 replicates.
bench-drift: setup
	$(BIN)/python -m benchmarks.drift_calibration

# Airflow vs `conveyor run`, fresh and cached, 3 interleaved rounds (not in bench).
bench-airflow: setup airflow
	$(BIN)/python -m benchmarks.airflow_overhead

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) $(AUDIT_VENV) build/sbom build/wheelhouse build/wheelhouse-airflow build/wheelhouse.lock build/wheelhouse.log build/wheelhouse-airflow.log build/images.lock build/images.session $(AIRFLOW_HOME) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
