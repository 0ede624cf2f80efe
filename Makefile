# Two commands on a fresh machine: `make run` and `make test`. See README.md.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test install install-dev migrate seed lint check-schema clean worker bench

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Voxboard needs Python 3.11 or newer ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/flask db upgrade

seed: migrate
	$(BIN)/flask seed

## Set up everything on the embedded defaults, with the demo org, and serve on http://$(HOST):$(PORT)
run: migrate
	$(BIN)/flask seed --demo --base-url http://$(HOST):$(PORT)
	@echo "Open http://$(HOST):$(PORT) and log in as owner@demo.voxboard.test"
	@echo "Voxboard is starting on http://$(HOST):$(PORT) with a job worker  (Ctrl+C stops both)"
	@# The worker speaks queued generations; it stops when the web server does.
	@$(BIN)/flask worker & worker=$$!; \
		trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
		$(BIN)/flask run --host $(HOST) --port $(PORT)

## Run only the job worker (speaks queued generations; `make run` starts one itself)
worker: migrate
	$(BIN)/flask worker

## Run the whole suite (PostgreSQL tests need TEST_DATABASE_URL; browser tests need chromium)
test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check dashboard tests migrations

## Fail when the models and the migrations disagree (run on a fresh SQLite database)
check-schema: install
	@rm -f /tmp/voxboard-schema-check.db
	DATABASE_URL=sqlite:////tmp/voxboard-schema-check.db $(BIN)/flask db upgrade
	DATABASE_URL=sqlite:////tmp/voxboard-schema-check.db $(BIN)/flask db check

## Benchmarks on PostgreSQL (docs/performance.md): bench extras, data if missing, load run
bench: | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[bench]'
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; } \
		|| echo "wrk not installed: bench.run uses its Python load generator"
	$(BIN)/python -m bench.data
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
