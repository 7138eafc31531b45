# Two commands on a fresh machine: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 3000

.PHONY: install run test lint browser bench clean

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

# The billing page's tests drive Debian's headless Chromium: installed here when missing and
# apt-get can (as root); without it they are skipped, except under CI=true.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      chromium chromium-driver >/dev/null) || echo "could not install chromium"; \
	  else echo "chromium and chromium-driver are not installed: browser tests will be skipped"; fi; \
	fi

test: lint browser
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/ledger_charge.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
