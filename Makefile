# Two commands: `make run` (serve the exchange) and `make test` (the whole suite).
# With DATABASE_URL and REDIS_URL set, both use PostgreSQL and Redis; otherwise the
# embedded default (SQLite, in-memory channel layer, in-process jobs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run run-prod test install install-test lint bench book

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.run-deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.test-deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

# Front-end libraries: pinned in package-lock.json, installed by npm, served from static/vendor.
VENDOR := static/vendor/lightweight-charts.mjs
$(VENDOR): package.json package-lock.json
	npm ci --no-audit --no-fund
	mkdir -p static/vendor
	cp node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.mjs $@

# The order book compiled with mypyc into build/book (bin/build-book, ~30-80 s): used
# only while its stamp matches the sources (trading/engine/_native.py), else the
# interpreted source runs, with a warning.
BOOK_STAMP := build/book/stamp.txt
$(BOOK_STAMP): $(wildcard trading/engine/*.py) bin/build-book requirements.txt
	$(BIN)/python bin/build-book
book: $(BOOK_STAMP)

install: $(VENV)/.run-deps $(VENDOR)
	@$(MAKE) --no-print-directory book
install-test: $(VENV)/.test-deps $(VENDOR)
	@$(MAKE) --no-print-directory book

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

# The production topology (Procfile, supervised by bin/run-prod): needs DATABASE_URL and
# REDIS_URL; WEB_WORKERS, PORT, ENGINE_SHARDS choose the web workers and engine shards.
run-prod: install
	$(BIN)/python bin/run-prod

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
