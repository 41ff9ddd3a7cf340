"""Imported by the parse workers' fork server (see ingest/worker.py): the parsers load once
there, so every worker it forks starts with them loaded."""

from kbqa.ingest.partition import load_parsers

load_parsers()
