# Two commands do everything on a fresh machine:
#   make demo   - the main job
#   make test   - every check: ruff, mypy --strict, the layering contract, pytest
# Both create the virtualenv and install what they need (Python packages pinned by constraints.txt).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test demo setup lint typecheck unit clean

setup: $(VENV)/.installed devnet/node_modules/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# The devnet's npm packages (anvil binary, Aave / Morpho artifacts, solcjs, viem), reinstalled when
# the lockfile changes.
devnet/node_modules/.installed: devnet/package.json devnet/package-lock.json
	cd devnet && npm ci --no-audit --no-fund
	touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

test: setup lint typecheck
	scripts/ensure_postgres.sh
	$(BIN)/pytest -q -p no:cacheprovider

demo: setup
	$(BIN)/crossmargin demo

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
