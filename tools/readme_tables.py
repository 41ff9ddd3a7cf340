"""Rewrite the generated tables from the code: the README's commands (from the click CLI) and
settings (names and defaults from `Settings`, one line of description each from SETTINGS
below), and docs/benchmarks.md's benchmarks (each script's first docstring line).

    python tools/readme_tables.py           # rewrite README.md and docs/benchmarks.md (`make docs`)
    python tools/readme_tables.py --check   # exit 1 if either is out of date (CI's test)

A table lies between `<!-- BEGIN GENERATED: NAME -->` and `<!-- END GENERATED: NAME -->`.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"

# One line a setting, for a user; the name and the default come from kbqa.settings.Settings.
# A field missing here (or a name here that is no field) is an error, so the table cannot
# silently fall behind the code.
SETTINGS = {
    "home": "database, index and converted models (`KBQA_HOME`)",
    "database_url": "any SQLAlchemy URL; empty: SQLite at `HOME/kbqa.db` ([Teams](docs/teams.md))",
    "embedding_model": "a sentence-transformers name or folder; the default is packaged",
    "embedding_backend": "`torch-fp32`, `torch-bf16`, `onnx-int8`, `onnx-qint8`; auto keeps a "
    "knowledge base's own, else picks per machine ([Scale](docs/scale.md))",
    "generator_model": "the packaged `Qwen2.5-Coder-0.5B-Instruct` or `SmolLM2-135M-Instruct`, a "
    "`.gguf` path, a Hugging Face id, a local folder, or a name under `HOME/models`",
    "generator_backend": "`llama.cpp` for packaged models and `.gguf` paths, `transformers` for "
    "ids and folders; or force one",
    "generator_threads": "llama.cpp threads (0: one per core)",
    "generator_precision": "the transformers backend: bf16 where the GPU or CPU has bf16 units, "
    "fp32 elsewhere; `fp32` or `bf16` force one",
    "generator_draft": "llama.cpp drafts the words a reply copies from its sources (the same "
    "answers; 0.72x a handbook answer's time on an Intel Xeon with AMX, but 0.95-1.03x a set's "
    "on an AMD EPYC; off by default, versions 17 and 23 of [docs/pointer.md](docs/pointer.md))",
    "generator_slots": "replies llama.cpp writes at once: queued questions are answered together "
    "([Serving speed](docs/serving-speed.md))",
    "queue_limit": "generated questions waiting or answered at once, one channel at most half; "
    "beyond it, busy (HTTP 503)",
    "queue_retry_seconds": "the Retry-After of that 503",
    "model_cache": "where a packaged model split over several packages is joined (once)",
    "device": "`cpu`, `cuda`; auto uses a GPU when torch and faiss see one",
    "embed_batch_size": "texts per embedder pass (higher on a GPU)",
    "embed_threads": "threads of each packaged ONNX embedder call (0: one per core); an ingest "
    "embeds on every core",
    "max_file_bytes": "a larger file is skipped and reported before it is read",
    "max_unpacked_bytes": "a DOCX whose zip members declare more is skipped as a zip bomb",
    "max_file_seconds": "a parse that takes longer is stopped and the file skipped",
    "max_parse_memory_bytes": "a parse that needs more memory is stopped and the file skipped",
    "ingest_workers": "files parsed at once, each in a worker process; 0: one per core",
    "database_busy_seconds": "SQLite: how long a write waits for another process's lock",
    "vector_index": "`flat` (exact), `ivf`; auto is flat up to `vector_index_flat_max`, then IVF",
    "vector_index_flat_max": "vectors up to which auto uses a flat index",
    "chunk_max_chars": "the longest chunk (characters)",
    "chunk_soft_max_chars": "a chunk is closed at the next heading past this",
    "retrieval_mode": "`dense`, `bm25`, or `hybrid` (both fused)",
    "fusion": "hybrid's fusion: `convex` (min-max scores), `zscore` or `rrf`",
    "fusion_alpha": "the weight of dense against BM25 in the fusion",
    "rrf_k": "the k of reciprocal-rank fusion",
    "recency_tie": "hits whose fused scores lie this close go newest source first (0: off)",
    "stale_after_days": "`kbqa stale` and the admin page list sources not updated for this long",
    "bm25_stemmer": 'Snowball stemming for BM25; `""` for none',
    "rerank_model": "a sentence-transformers model that re-scores the top hits; off when empty",
    "rerank_depth": "how many hits the reranker re-scores",
    "vector_backend": "`faiss`, or `pgvector` in the PostgreSQL of `database_url` "
    "([Teams](docs/teams.md))",
    "lexical_backend": "`bm25`, or `postgres-fts` (with `pgvector` only)",
    "pgvector_ef_search": "pgvector's `hnsw.ef_search`",
    "spark_writes": "who writes a `--spark` ingest: `executors`, `driver`, or auto",
    "top_k": "passages retrieved: checked against, quoted from, shown to the generator",
    "min_hit_score": "abstain when the best passage's cosine is below this",
    "min_confidence": "abstain when the learned confidence (a probability) is below this",
    "min_quote_confidence": "when no generated sentence passes the check, quote only from here",
    "support_min_overlap": "the support check: share of a sentence's new words in its passage",
    "support_min_similarity": "the support check: cosine of a sentence to its passage",
    "max_new_tokens": "tokens per answer",
    "answer_style": "`pointed` (the model names sentences, kbqa quotes them) or `free`",
    "pointer_checks": "checks on a pointed answer: `subject`, `pointer_probability`, "
    "`pointer_margin`, `pointer_share`, `pointer_declined`",
    "pointer_min_probability": "the model's least probability for a unit it points at",
    "pointer_min_margin": "the least lead of the pick's first digit (its passage) over the next",
    "pointer_labels": "unit numbers: `flat` (1, 2, …) or `passage` (11, 12, … 21: the first "
    "digit names the passage)",
    "pointer_min_share": "the least share of the pick's first digit (`pointer_share`)",
    "pointer_max_declined": "the most probability of `[0]` at the first pick (`pointer_declined`)",
    "pointer_max_tokens": "tokens per pointed reply",
    "pointer_max_words": "the most words a reply line copies from its unit; kbqa copies the "
    "rest (0: no limit; 10: a handbook answer 0.78-0.83x the time, off by default: "
    "[docs/pointer.md](docs/pointer.md), version 15)",
    "pointer_copies": "a reply line copies words of its unit after the number (the bold mark "
    "in the quote); `false`: numbers alone, a handbook answer 0.45x the wait but always one "
    "sentence ([docs/pointer.md](docs/pointer.md), version 18)",
    "pointer_fill": "kbqa writes each named unit's words into the reply, the model only the "
    "numbers: 0.52-0.89x the wait, no bold mark, support no better over three blind reads "
    "([docs/pointer.md](docs/pointer.md), versions 19-21)",
    "on_failed_pick": "a pick that fails a check: `drop` it (keep the others) or `abstain`",
    "pointer_max_sources": "the most passages one answer quotes (0: any; 1: units from other "
    "passages than the first pick's are left out, by blind read 17: "
    "[docs/pointer.md](docs/pointer.md), version 22)",
    "followup_rewrite": "a follow-up is searched as the model's checked rewrite (`generator`) "
    "or with the conversation's own words (`words`) ([First hour](docs/first-hour.md))",
    "quote_context_chars": "a quoted sentence shows the one before it and this much after it",
    "prompt_passage_chars": "each passage is cut to its lines closest to the question (0: whole)",
    "prompt_passages": "the generator sees at most this many of the `top_k` passages",
    "prompt_score_gap": "… and only those within this cosine of the first one's",
    "on_unsupported": "when no generated sentence passes: `extract` (quote) or `abstain`",
    "on_idk": "when the generator says the sources lack it: `abstain` or `extract`",
    "slack_workspace": "`YOUR-TEAM` of `https://YOUR-TEAM.slack.com`, for thread permalinks",
    "slack_include_bots": "index bot messages too",
    "slack_channel_sources": "per channel (id, name or `*`): the sources it may draw on",
    "slack_channel_principals": "per channel (id, name or `*`): the connector principals its "
    "members hold ([Connect your sources](#connect-your-sources))",
    "slack_bot_token": "also read from `SLACK_BOT_TOKEN`",
    "slack_app_token": "also read from `SLACK_APP_TOKEN` (Socket Mode)",
    "slack_signing_secret": "also read from `SLACK_SIGNING_SECRET` (HTTP events)",
    "serve_host": "where `kbqa serve` listens",
    "serve_port": "… and its port",
    "allow_loopback_without_token": "requests from this machine need no API token",
    "max_question_chars": "the server refuses a longer question (400)",
    "max_request_bytes": "the server refuses a larger body (413)",
    "answer_cache_size": "answers kept for a question asked again (same audience and KB); 0: none",
    "answer_cache_similarity": "the cosine above which another wording is the same question",
    "snapshot_check_seconds": "how often a long-running process looks for another's ingest",
    "server": "`kbqa ask` asks this server (`KBQA_SERVER`); else one serving the same home",
    "server_token": "… with this API token (`KBQA_SERVER_TOKEN`)",
    "slack_api_url": "the Slack Web API's URL; empty for Slack's own",
    "sources": "the `[[sources]]` tables: services `kbqa sync` reads "
    "([Connect your sources](#connect-your-sources))",
    "fault_at": "crash tests only: `STAGE:N` kills the process at a fault point",
}


def _default(field: dataclasses.Field) -> str:
    value = field.default_factory() if callable(field.default_factory) else field.default
    if value == "" or value == {}:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    return f"`{value}`"


def settings_table() -> list[str]:
    from kbqa.settings import Settings

    fields = dataclasses.fields(Settings)
    names = [f.name for f in fields]
    missing = [n for n in names if n not in SETTINGS]
    stale = [n for n in SETTINGS if n not in names]
    if missing or stale:
        raise SystemExit(
            f"tools/readme_tables.py SETTINGS: describe {missing or 'nothing'}; "
            f"remove {stale or 'nothing'}"
        )
    rows = ["| setting | default | |", "|---|---|---|"]
    rows += [f"| `{f.name}` | {_default(f)} | {SETTINGS[f.name]} |" for f in fields]
    return rows


def commands_table() -> list[str]:
    import click

    from kbqa.cli import cli

    def walk(group: click.Group, prefix: list[str]):
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from walk(command, [*prefix, name])
            elif not command.hidden:
                yield [*prefix, name], command

    rows = ["| command | options | what it does |", "|---|---|---|"]
    for path, command in walk(cli, []):
        arguments = [p.human_readable_name for p in command.params if isinstance(p, click.Argument)]
        options = [
            max(p.opts, key=len)
            for p in command.params
            if isinstance(p, click.Option) and not p.hidden
        ]
        usage = " ".join(["kbqa", *path, *arguments])
        shown = ", ".join(f"`{o}`" for o in options) or "—"
        rows.append(f"| `{usage}` | {shown} | {command.get_short_help_str(200)} |")
    return rows


def benchmarks_table() -> list[str]:
    rows = ["| benchmark | what it measures |", "|---|---|"]
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        first = re.split(r"(?<=[.?!])\s", " ".join(doc.split("\n\n")[0].split()))[0]
        if not first:
            raise SystemExit(f"{path.relative_to(ROOT)}: no docstring to describe it")
        rows.append(f"| [`{path.stem}`](../benchmarks/{path.name}) | {first} |")
    return rows


TABLES = {"commands": commands_table, "settings": settings_table, "benchmarks": benchmarks_table}
# Which page holds which tables.
PAGES = {README: ("commands", "settings"), BENCHMARKS: ("benchmarks",)}


def render(text: str, page: Path = README) -> str:
    """`text` (the page `page`) with every generated table of that page rewritten."""
    for name in PAGES[page]:
        pattern = re.compile(
            rf"(<!-- BEGIN GENERATED: {name} [^>]*-->\n).*?(<!-- END GENERATED: {name} -->)", re.S
        )
        if not pattern.search(text):
            raise SystemExit(f"{page.name} has no generated {name} table")
        body = "\n".join(TABLES[name]()) + "\n"
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a page is out of date")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    for page in PAGES:
        old = page.read_text()
        new = render(old, page)
        if args.check and new != old:
            raise SystemExit(f"{page.relative_to(ROOT)} is out of date: run `make docs`")
        if not args.check:
            page.write_text(new)


if __name__ == "__main__":
    main()
