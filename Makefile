# Destiny Vault Raider: `make demo` and `make test` are all a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Any Python >= 3.11: python3.11 where present, else the first newer one (PYTHON=... overrides).
PYTHON ?= $(shell for p in python3.11 python3.13 python3.12 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# One stamp per install level, named by the requirements it holds: the demo's (runtime plus
# the fake Bungie.net) and the dev one (tests and tools on top), so a demo venv becomes a dev
# venv at the first `make test`, and a changed pin reinstalls.
DEMO_STAMP := $(VENV)/.installed-demo-$(shell cat requirements.txt requirements-demo.txt | sha1sum | cut -c1-12)
DEV_STAMP := $(VENV)/.installed-dev-$(shell cat requirements.txt requirements-demo.txt requirements-dev.txt | sha1sum | cut -c1-12)

# Tests: real Postgres and Redis on their standard loopback ports (override to taste).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dvr
TEST_REDIS_URL ?= redis://127.0.0.1:6379/14
TEST_ENV := DEBUG=true SECRET_KEY=dvr-test-only DJANGO_SETTINGS_MODULE=dvr.settings LOG_LEVEL=WARNING

# Benchmarks: a database of their own (dropped and created fresh), Redis cache on 12, broker on 13.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dvr_bench
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/12

DEMO_PORT ?= 8000
FAKE_PORT ?= 8765

# The soak (issue 18): a database of its own (dropped and created fresh) and a Redis of its own.
SOAK_MINUTES ?= 20
SOAK_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dvr_soak

.PHONY: help install install-demo demo prod test mirror-client test-postgres test-sqlite faults image-check lint migrations-check chromium audit bench bench-mirror soak clean

help:
	@echo "make demo   - install, migrate, start fake Bungie + qcluster + site, sync the manifest"
	@echo "make test   - install what tests need and run them (Postgres + Redis, then SQLite)"
	@echo "make prod   - the production shape here: gunicorn + 2 qclusters on local Postgres and Redis"
	@echo "make bench  - the benchmark (issue 8): full-size manifest on Postgres + Redis and SQLite; BENCH_ARGS=--quick"
	@echo "make soak   - 20 players on the production shape for SOAK_MINUTES (20) with faults, publishes, kills; the invariants"
	@echo "make faults - the long fault-injection runs (clusters, schedules; minutes) on Postgres + Redis"
	@echo "make image-check - build the Docker image and run it: migrate, /, a static file, /healthz, uid (root; ~2-5 min)"
	@echo "make audit  - pip-audit the pinned requirements (needs a network with vulnerability data)"

$(PY):
	@[ -n "$(PYTHON)" ] && $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
		|| { echo "make: DVR needs Python >= 3.11 (tried $(or $(PYTHON),python3.11 python3.13 python3.12 python3)); install one or pass PYTHON=/path/to/python3" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# What the demo runs: requirements.txt plus the fake Bungie.net's Werkzeug and Pillow (requirements-demo.txt).
$(DEMO_STAMP): | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-demo.txt
	rm -f $(VENV)/.installed-demo-* && touch $(DEMO_STAMP)

# Tests, lint, benchmarks: everything (requirements-dev.txt includes the demo's file).
$(DEV_STAMP): | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $(DEV_STAMP) $(DEMO_STAMP)

install-demo: $(DEMO_STAMP)

install: $(DEV_STAMP)

demo: install-demo
	@$(PY) -m tests.demo --port $(DEMO_PORT) --fake-port $(FAKE_PORT)

# The production topology on this machine: gunicorn + two qclusters, DEBUG off, on the
# local Postgres (database dvr_prod, created if missing) and Redis; see bin/prod.py.
prod: install-demo
	@$(PY) bin/prod.py --port $(DEMO_PORT) --fake-port $(FAKE_PORT)

chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| { echo "could not install chromium with apt-get"; exit 1; }; \
	else echo "browser tests need /usr/bin/chromium: run 'sudo apt-get install chromium'"; exit 1; fi

# bungie-api-ts, pinned in tests/mirror_client/package-lock.json, for the mirror's client
# tests (Node 20 from Debian; its absence fails those tests, it never skips them).
mirror-client:
	@command -v npm >/dev/null || { echo "the mirror's client tests need node and npm: apt-get install nodejs npm"; exit 1; }
	cd tests/mirror_client && npm ci --no-audit --no-fund --silent

# Style (ruff), types (mypy with Django's stubs) and the layer contracts (import-linter).
lint: install
	$(VENV)/bin/ruff check .
	$(TEST_ENV) $(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

migrations-check: install
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run

test: install chromium mirror-client lint migrations-check test-postgres test-sqlite

test-postgres:
	$(TEST_ENV) DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
		$(VENV)/bin/pytest -m "not faults" $(PYTEST_ARGS)

# The embedded default: SQLite, local-memory cache, ORM broker (whatever the caller exported).
test-sqlite:
	@mkdir -p var
	env -u DATABASE_URL -u REDIS_URL $(TEST_ENV) $(VENV)/bin/pytest -m "not postgres_only and not faults" $(PYTEST_ARGS)

# Fault injection that takes minutes (two clusters on the one-minute schedule, a burst of
# refreshes): see docs/RELIABILITY.md. .ci/run runs it after `make test`.
faults: install
	$(TEST_ENV) DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
		$(VENV)/bin/pytest -m faults $(PYTEST_ARGS)

# Not part of `make test` (nor .ci/run): about SOAK_MINUTES minutes; see docs/RELIABILITY.md "Soak".
soak: install
	SOAK_MINUTES=$(SOAK_MINUTES) $(PY) -m bench.soak --database-url $(SOAK_DATABASE_URL)

# The image itself (issue 18): Debian's docker.io, a debootstrapped bookworm base (cached),
# dockerd on loopback only, the build and every container on --network host. Bounded: 30 min.
image-check: install-demo
	timeout 1800 bin/image_check.sh

# Then the mirror's figures (bench/mirror_bench.py), unless BENCH_ARGS picks figures with --only.
MIRROR_JSON := $(if $(filter --quick,$(BENCH_ARGS)),,--json bench/mirror-results.json)
bench: install
	$(PY) -m bench.run --database-url $(BENCH_DATABASE_URL) --redis-url $(BENCH_REDIS_URL) $(BENCH_ARGS)
	$(if $(findstring --only,$(BENCH_ARGS)),,$(PY) -m bench.mirror_bench --database-url $(BENCH_DATABASE_URL)_mirror \
		--redis-url $(BENCH_REDIS_URL) $(filter --quick,$(BENCH_ARGS)) $(MIRROR_JSON))

# The manifest mirror against the same bytes served as a static file (bench/mirror_bench.py).
bench-mirror: install
	$(PY) -m bench.mirror_bench --database-url $(BENCH_DATABASE_URL)_mirror --redis-url $(BENCH_REDIS_URL) $(BENCH_ARGS)

# --strict: a package the vulnerability service cannot look up fails the audit, so a
# machine without the data (like these) fails loudly instead of passing vacuously.
audit: install
	$(VENV)/bin/pip install --quiet pip-audit==2.10.1
	$(VENV)/bin/pip-audit --strict -r requirements.txt -r requirements-dev.txt

clean:
	rm -rf $(VENV) var db.sqlite3* staticfiles .pytest_cache .ruff_cache
