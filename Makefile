# Two commands on a fresh machine: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 3000

.PHONY: install run test lint bench simulate simulate-long clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/creditbot db upgrade
	PORT=$(PORT) $(BIN)/creditbot serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

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
