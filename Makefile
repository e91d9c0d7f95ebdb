# sysmon: `make run` starts the service, `make test` runs every check. Both set up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP  := $(VENV)/.run-installed
TEST_STAMP := $(VENV)/.test-installed
NPM_STAMP  := node_modules/.npm-installed

.PHONY: run test setup lint format bench clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): $(BIN)/python requirements-level1.txt pyproject.toml constraints.txt
	$(BIN)/pip install -q -r requirements-level1.txt -c constraints.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(TEST_STAMP): $(RUN_STAMP) requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt -c constraints.txt
	touch $@

$(NPM_STAMP): package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(RUN_STAMP) $(NPM_STAMP)

# The agent creates data/ itself (0700). Extra arguments: make run ARGS="--port 8400"
run: setup
	$(BIN)/sysmon serve $(ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check sysmon app tests bench setup.py
	$(BIN)/ruff format --check sysmon app tests bench setup.py
	$(BIN)/mypy

format: $(TEST_STAMP)
	$(BIN)/ruff format sysmon app tests bench setup.py
	$(BIN)/ruff check --fix sysmon app tests bench setup.py

test: $(TEST_STAMP) $(NPM_STAMP) lint
	$(BIN)/pytest

# The newest releases the requirements' ranges allow, resolved in a scratch venv and
# written to constraints.txt; run `make test` on them before committing.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/pip install -q -r requirements-dev.txt
	{ sed -n '1,3p' constraints.txt; .lock-venv/bin/pip freeze --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache
