# Two commands on a fresh machine: `make demo` and `make test`. Everything they need
# (virtualenvs, the pinned CDK CLI) is created here; nothing is installed by hand.
PYTHON ?= python3
VENV := .venv
FS_VENV := .venv-fakesnow
BIN := $(VENV)/bin
PYTEST_WORKERS ?= 2

.PHONY: setup test lint format synth demo bench clean reliability-doc docs

setup: $(VENV)/.installed $(FS_VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements/dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# The embedded Snowflake lives in its own environment: fakesnow cannot be imported
# beside snowflake-connector-python 5.x, so it runs as a server that tests start.
$(FS_VENV)/.installed: requirements/fakesnow.txt
	$(PYTHON) -m venv $(FS_VENV)
	$(FS_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/fakesnow.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20+ first"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: setup lint
	$(BIN)/pytest -n $(PYTEST_WORKERS)

synth: setup
	npx cdk synth --quiet

# Two nights against one embedded Snowflake: night 1 enriches the sample and loads the
# answers; night 2 sends nothing, every ID being fresh (snowflake.incremental.refreshAfterDays).
demo: setup
	$(BIN)/enrichctl local --nights 2

# Re-run the reliability matrices recording what they observe, then render
# docs/reliability.md from those outcomes (tests/reliability/readme.py) with `make docs`.
reliability-doc: setup
	RELIABILITY_UPDATE=1 $(BIN)/pytest -n $(PYTEST_WORKERS) tests/reliability
	$(BIN)/python -m tools.docs

bench: setup
	$(BIN)/python -m enrichctl bench

# Render every generated block of README.md and docs/ from its committed source (tools/docs.py);
# `make docs BENCH=bench-results/latest.json` first takes that bench run into docs/results/.
docs: setup
	$(BIN)/python -m tools.docs $(if $(BENCH),--bench-results $(BENCH))

clean:
	rm -rf cdk.out .build .pytest_cache .ruff_cache .hypothesis
