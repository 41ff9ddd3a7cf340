# The two commands of the README. Both set up ./.venv first (a few minutes the first time).
QUESTION ?= How do I rotate the staging database password?

.PHONY: setup demo test lint bench

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/kbqa ingest examples/handbook examples/slack-export
	.venv/bin/kbqa ask "$(QUESTION)"

test: setup
	.venv/bin/ruff check .
	bash scripts/with-postgres.sh .venv/bin/python -m pytest

bench: setup
	.venv/bin/python benchmarks/ingest_and_query.py
	.venv/bin/python benchmarks/handbook_qa.py
	.venv/bin/python benchmarks/generators.py
