"""Imported by the parse workers' fork server (see ingest/worker.py): the parsers load once
there, and the PDF parser is warmed (partition.warm_pdf), so every worker it forks starts with
them loaded."""

from kbqa.ingest.partition import load_parsers, warm_pdf

load_parsers()
warm_pdf()
