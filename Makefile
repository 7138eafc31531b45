# Two commands on a fresh machine: `make run` and `make test`. Both install what they need:
# `make run` only what serving needs, `make test` the test tools as well.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 3000

.PHONY: install install-runtime run shell test lint browser bench simulate simulate-long clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Python 3.11's own pip installs the project editable (PEP 660); no upgrade needed.
$(BIN)/.installed-runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(BIN)/.installed-runtime

install-runtime: $(BIN)/.installed-runtime

install: $(BIN)/.installed

run: install-runtime
	$(BIN)/creditbot db upgrade
	PORT=$(PORT) $(BIN)/creditbot serve

# A shell with the venv's bin first on PATH, so `creditbot ...` works as the README writes it.
shell: install-runtime
	@echo "creditbot is on your PATH in this shell (exit to leave it)"
	@PATH="$(abspath $(BIN)):$$PATH" VIRTUAL_ENV="$(abspath $(VENV))" $${SHELL:-/bin/bash} -i

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The billing page's tests drive Debian's headless Chromium: installed here when missing and
# apt-get can (as root); without it they are skipped, except under CI=true.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      chromium chromium-driver >/dev/null) || echo "could not install chromium"; \
	  else echo "chromium and chromium-driver are not installed: browser tests will be skipped"; fi; \
	fi

# The suite on both cores: one pytest-xdist worker per core of the 2-core CI machine (a
# fixed count, not `auto`, which can count cores a container may not use). Each worker
# starts its own PostgreSQL, localstripe and servers; `worksteal` keeps the workers busy
# to the end. `make test WORKERS=4` on a bigger machine; one file on one core:
# `.venv/bin/pytest tests/ledger/test_wallet.py`.
WORKERS ?= 2
test: lint browser
	$(BIN)/pytest -n $(WORKERS) --dist worksteal

bench: install
	$(BIN)/python bench/ledger_charge.py

# The whole-system simulation (docs/simulation.md): `make simulate SEED=7 DAYS=90`
# (MUTATION=name breaks one invariant on purpose).
SEED ?= 1
DAYS ?= 30
ACCOUNTS ?= 12
simulate: install
	$(BIN)/python -m sim --seed $(SEED) --days $(DAYS) --accounts $(ACCOUNTS) $(if $(MUTATION),--mutation $(MUTATION))

# The long form: a year for each of many seeds (tens of minutes). `make test` runs the short one.
SEEDS ?= 1 2 3 4 5 6 7 8 9 10
simulate-long: install
	@for seed in $(SEEDS); do $(BIN)/python -m sim --seed $$seed --days 365 --accounts $(ACCOUNTS) || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis sim-failures
