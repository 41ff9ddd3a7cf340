# The README's commands. Each sets up $(VENV) first (a few minutes the first time): `make demo`
# with the demo's extras only, the others with every extra (scripts/setup.sh all).
QUESTION ?= How do I rotate the staging database password?
VENV ?= .venv
BENCH ?= ingest_and_query handbook_qa generators
PY := $(VENV)/bin/python

.PHONY: setup setup-all native demo test check lint docs bench

setup:
	VENV=$(VENV) bash scripts/setup.sh

setup-all:
	VENV=$(VENV) bash scripts/setup.sh all

# Optional: llama.cpp built for this CPU (docs/native-llama.md; about 6 minutes on 2 cores).
# `bash scripts/native-llama.sh generic` puts the generic wheel back.
native: setup
	VENV=$(VENV) bash scripts/native-llama.sh

# The bundled export's permalinks point at its made-up workspace (examples/slack-export/kbqa.toml).
demo: export KBQA_SLACK_WORKSPACE ?= larkspur
demo: setup
	$(VENV)/bin/kbqa ingest examples/handbook examples/slack-export
	$(VENV)/bin/kbqa ask "$(QUESTION)"

# Everything, as CI runs it (.ci/run).
test: setup-all
	$(VENV)/bin/ruff check .
	bash scripts/with-postgres.sh $(PY) -m pytest -n 2 --dist loadfile

# The quick loop while editing: lint and the fast tests (no packaged models, no PostgreSQL).
# It sets up only when the test tools are missing, so it starts at once.
check:
	$(PY) -c "import xdist" 2>/dev/null || $(MAKE) setup-all
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -m "not slow" -q -n 2 --dist loadfile -p no:cacheprovider

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Rewrites the README's generated tables (commands, settings, benchmarks) from the code.
docs:
	$(PY) tools/readme_tables.py

# `make bench` runs the product benchmarks that need nothing but the examples;
# `make bench BENCH="embedders index_scale"` runs others (README: How good and how fast).
bench: setup-all
	for b in $(BENCH); do $(PY) benchmarks/$$b.py || exit 1; done
