# Everything a fresh machine needs is installed here, into .venv, from the project's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-fast check demo bench bench-deployments bench-ceilings bench-report bench-audit-verify bench-web-api bench-web-pages bench-push bench-scale bench-scale-send messages lock clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The whole suite, as CI runs it (service tests skip without PostgreSQL/RabbitMQ unless
# BROADCASTER_REQUIRE_SERVICES=1).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The edit loop: leaves out the tests that need PostgreSQL/RabbitMQ/Redis and the slow ones.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not services" $(PYTEST_ARGS)

check: $(STAMP)
	$(BIN)/ruff check broadcaster channels consent tests benchmarks
	$(BIN)/ruff format --check broadcaster channels consent tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

demo: $(STAMP)
	$(BIN)/broadcaster demo --dir demo-workdir

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# The same campaigns embedded and distributed (PostgreSQL + RabbitMQ, the worker/gateway/beat processes),
# three times alternately; then the broker's and PostgreSQL's own ceilings (benchmarks/README.md,
# "Embedded and distributed").
bench-deployments: $(STAMP)
	$(BIN)/python -m benchmarks.run --n 3000 --channels email,sms --deployment embedded,distributed --rounds 3

bench-ceilings: $(STAMP)
	$(BIN)/python -m benchmarks.ceilings

# Report generation from rollups over 1,000,000 and 100,000 bulk-inserted messages (benchmarks/README.md).
bench-report: $(STAMP)
	$(BIN)/python -m benchmarks.report_figures --n 1000000,100000

# verify_chain over 1,000,000 bulk-inserted, chained audit entries (benchmarks/README.md, "Audit verify").
bench-audit-verify: $(STAMP)
	$(BIN)/python -m benchmarks.audit_verify --n 1000000

# The single-message API under load: uvicorn with 2 workers, ~20 s of POST /api/v1/notifications/sms
# (benchmarks/README.md, "Web API").
bench-web-api: $(STAMP)
	$(BIN)/python -m benchmarks.web_api --seconds 20

# p50/p95 of the dashboard and the message log over 1,000,000 bulk-inserted messages ("Web pages").
bench-web-pages: $(STAMP)
	$(BIN)/python -m benchmarks.web_pages --n 1000000

# FcmAdapter against the local FCM peer next to a raw httpx HTTP/2 client, 20,000 notifications each
# (benchmarks/README.md, "Push (FCM)").
bench-push: $(STAMP)
	$(BIN)/python -m benchmarks.push --n 20000

# A city-sized contact list (100,000 and 3,000,000 contacts) generated, imported through the CLI and one e-mail +
# SMS run planned, on SQLite and on PostgreSQL: seconds and peak RSS per phase (benchmarks/README.md, "Scale").
bench-scale: $(STAMP)
	$(BIN)/python -m benchmarks.scale --n 100000,3000000 --database sqlite,postgresql

# The city-wide SMS with receipts through the engine, embedded and then distributed (PostgreSQL, RabbitMQ, two
# gateway processes): wall time, msgs/s, every message terminal, peak RSS per process (benchmarks/scale.py).
bench-scale-send: $(STAMP)
	$(BIN)/python -m benchmarks.scale --n 3000000 --database sqlite --send
	$(BIN)/python -m benchmarks.scale --n 3000000 --database postgresql --send --broker rabbitmq --sms-accounts 2

# Adds the texts newly marked for translation to the Vietnamese catalogue (empty msgstr, for the translator);
# tests/broadcaster/test_i18n.py fails until each has its translation (docs/i18n.md).
messages: $(STAMP)
	$(BIN)/python -m tests.broadcaster.test_i18n

# Pins the full dependency set (with the dev extras) in requirements.lock. pip-tools lives in a venv of its
# own so that it never becomes one of the pinned packages; pyproject.toml keeps only lower bounds.
LOCK_VENV := .venv-lock
lock:
	@test -x $(LOCK_VENV)/bin/pip-compile || ($(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/python -m pip install --quiet pip-tools)
	$(LOCK_VENV)/bin/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file requirements.lock pyproject.toml
	@# The project itself (pulled in by its own extras) is not a dependency to pin, and its path is this checkout's.
	sed -i '/^broadcaster-engine @ /d' requirements.lock

clean:
	rm -rf $(VENV) $(LOCK_VENV) demo-workdir build dist .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
