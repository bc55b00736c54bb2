# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: run test test-docker lint typecheck unit clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/python -m bot

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP_TEST)
	$(BIN)/mypy

# tests/docker start real Docker engines (root; installs docker.io when missing): `make test-docker`
test: lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider --ignore=tests/docker
	@echo "Docker tests not run (they start real engines): run make test-docker"

test-docker: $(STAMP_TEST)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/docker

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
