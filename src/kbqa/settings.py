"""One Settings object: defaults < kbqa.toml < KBQA_* environment < explicit arguments.

This is the only module that reads the environment.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kbqa.errors import ConfigError
from kbqa.settings_check import check

log = logging.getLogger(__name__)

PACKAGED_EMBEDDER = "all-MiniLM-L6-v2"
# The default generator (benchmarks/generators.py picked it; docs/generators.md).
PACKAGED_GENERATOR = "Qwen2.5-Coder-1.5B-Instruct"
# The small one `kbqa tune train` fine-tunes by default: fully fine-tuning 1.5B parameters
# needs ~24 GB and days on a 2-core CPU.
TUNE_BASE = "SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class Settings:
    home: Path = Path(".kbqa")
    # A SQLAlchemy URL; empty means SQLite at HOME/kbqa.db.
    database_url: str = ""
    # A sentence-transformers model name, Hugging Face id or local folder.
    embedding_model: str = PACKAGED_EMBEDDER
    # What runs it: "torch-fp32", "torch-bf16" (fast only on CPUs with bf16 units or a GPU),
    # "onnx-int8" / "onnx-qint8" (the packaged MiniLM on onnxruntime). "auto": the backend a
    # knowledge base was embedded with, else this machine's pick: onnx-qint8 on a CPU
    # (docs/scale.md). Backends give different vectors: changing it
    # needs a re-ingest.
    embedding_backend: str = "auto"
    # A causal LM: Hugging Face id, local folder, a name under HOME/models, or the packaged one.
    generator_model: str = PACKAGED_GENERATOR
    # "auto": llama.cpp for the packaged models and .gguf paths (when xllamacpp is installed),
    # transformers for Hugging Face ids and folders; or force "llama.cpp" / "transformers".
    generator_backend: str = "auto"
    # llama.cpp threads; 0 is one per core.
    generator_threads: int = 0
    # The transformers backend's precision: "auto" is bf16 on a GPU that has it or a CPU with
    # bf16 units (AMX, AVX-512 BF16), fp32 elsewhere; "fp32" or "bf16" force one.
    generator_precision: str = "auto"
    # llama.cpp drafts the words a reply copies from its prompt (prompt lookup) and checks
    # them in one pass; the pointer's unit numbers are scored again where drafted
    # (docs/pointer.md, version 11). Off: the same answers, but 0.72x a handbook answer's wait
    # on an Intel Xeon with AMX and 0.95-1.03x a set's on an AMD EPYC (versions 17 and 23).
    generator_draft: bool = False
    # -- serving many questions (docs/serving-speed.md) --
    # Replies llama.cpp writes at once: a question arriving at an idle model is answered
    # alone, those that queued meanwhile together, up to this many. 1 on 2 cores: on a quiet
    # machine 2 slots took 1.11x as long in total as one by one (prompt reading is compute-
    # bound); measure yours with benchmarks/concurrent_generation.py (docs/serving-speed.md).
    generator_slots: int = 1
    # Questions waiting for or being answered by the generator; beyond it, "busy" (HTTP 503
    # with Retry-After: queue_retry_seconds).
    queue_limit: int = 16
    queue_retry_seconds: int = 60
    # Where packaged models split over several packages are assembled (once, ~1 GB).
    model_cache: Path = Path("~/.cache/kbqa/models")
    # "auto" uses a CUDA GPU when torch (and faiss) see one; "cpu" or "cuda" force it.
    device: str = "auto"
    # Texts a forward pass of the embedder. Small batches pad less and keep the activations in
    # the CPU's caches: on the handbook's chunks batch 8 was 1.5x batch 32 in fp32 and 1.6x in
    # onnx-qint8 (benchmarks/embedders.py --batch-sizes 32,8). On a GPU, larger is faster.
    # onnx-qint8 ignores it: it runs one text at a time (retrieval/embedder.py OnnxEmbedder).
    embed_batch_size: int = 8
    # Threads of each call of the packaged ONNX embedder (0: onnxruntime's default, one per
    # core, which spin while they wait). An ingest embeds ahead on every core, one call per
    # parse thread (ingest/prefetch.py): one thread each used both cores fully (python-docs
    # 1.62x the ingest before, against 1.12x with the default); a question's embedding is as
    # fast either way (1.8 ms against 1.7). docs/serving-speed-cache.md.
    embed_threads: int = 1
    # Limits on one file at ingest (docs/reliability.md): a file larger than
    # max_file_bytes, or a DOCX whose zip members unpack to more than max_unpacked_bytes, is
    # skipped before parsing; a parse that takes longer than max_file_seconds, or needs more
    # than max_parse_memory_bytes above the parse worker's own size, is stopped and skipped.
    max_file_bytes: int = 32 * 1024 * 1024
    max_unpacked_bytes: int = 256 * 1024 * 1024
    max_file_seconds: float = 60.0
    max_parse_memory_bytes: int = 2 * 1024 * 1024 * 1024
    # Parse worker processes an ingest runs at once (each within the limits above, so at worst
    # this many times max_parse_memory_bytes); 0: one per core this process may use.
    ingest_workers: int = 0
    # SQLite: how long a write waits for another process's write lock before giving up.
    database_busy_seconds: float = 30.0
    # The vector index: "flat" (exact), "ivf" (approximate, trained on the stored vectors), or
    # "auto": flat below vector_index_flat_max vectors, IVF above (see retrieval/index.py).
    vector_index: str = "auto"
    vector_index_flat_max: int = 50000
    # Chunking (characters), passed to unstructured's chunk_by_title.
    chunk_max_chars: int = 1200
    chunk_soft_max_chars: int = 800
    # Retrieval: "dense" (FAISS), "bm25" or "hybrid"; hybrid fuses by "rrf", "convex" (a mix
    # of min-max-normalised scores) or "zscore" (a mix of z-scores: how far each score stands
    # above its list's mean). fusion_alpha weighs dense against BM25 (0.5: even; for rrf,
    # plain RRF). Defaults from python-faq's dev split (tools/tune_retrieval.py): convex
    # at 0.9 with stemming gave nDCG@10 0.640 against dense's 0.613; lower alphas and RRF fell
    # below dense, since BM25 alone is far weaker there (0.32-0.36). "zscore" at 0.8 suits a
    # corpus whose questions name their passages' rare words (halueval-qa dev: 0.932 against
    # 0.887; python-faq dev 0.650 against 0.648, test 0.668 against 0.684); it costs the
    # handbook one right source and needs a higher min_confidence (docs/evaluation.md), so it
    # is not the default.
    retrieval_mode: str = "hybrid"
    fusion: str = "convex"
    fusion_alpha: float = 0.9
    # The k of reciprocal-rank fusion: larger flattens the gap between ranks.
    rrf_k: int = 60
    # Hits whose fused scores lie within this of each other are ordered newest source first
    # (a tie-breaker, not a decay); 0 is off. Off by default: docs/freshness.md.
    recency_tie: float = 0.0
    # `kbqa stale` and the admin page list sources not updated for this many days.
    stale_after_days: int = 180
    # BM25 stems words with this Snowball language ("" for no stemming; needs PyStemmer).
    bm25_stemmer: str = "english"
    # Optional second stage: a sentence-transformers model (name or folder) that re-scores the
    # top rerank_depth hits: a cross-encoder if it is one, else by its own cosine. "" is off.
    rerank_model: str = ""
    rerank_depth: int = 20
    # Where dense search runs: "faiss" (a FAISS file under HOME, searched in memory) or
    # "pgvector" (a `vector` column with an HNSW index in the PostgreSQL of database_url, the
    # access filters applied in SQL; replicas sharing the database need no index file).
    vector_backend: str = "faiss"
    # The lexical side of hybrid retrieval: "bm25" (bm25s, in memory) or "postgres-fts"
    # (PostgreSQL full-text search; only with vector_backend "pgvector").
    lexical_backend: str = "bm25"
    # pgvector's HNSW search breadth (hnsw.ef_search): higher finds more, slower.
    pgvector_ef_search: int = 100
    # Who writes a Spark ingest's documents: "executors" (each writes its own, in batches),
    # "driver" (the executors' results go through this process), or "auto": executors with a
    # server database, the driver with SQLite (one writer at a time).
    spark_writes: str = "auto"
    # How many passages the answerer shows the model.
    top_k: int = 4
    # Abstain when the best hit's cosine similarity is below min_hit_score (tuned on the
    # handbook set), or when the answerer's confidence (a logistic probability over retrieval
    # signals, fitted on halueval-qa dev: assistant/confidence.py) is below min_confidence.
    min_hit_score: float = 0.35
    min_confidence: float = 0.45
    # When every sentence the generator wrote failed the support check, a quote stands in for
    # them only at this confidence or above; below it the answerer abstains. A generator that
    # cannot say the answer in words the passages back is itself a sign they lack it. Both are
    # dev's operating point (tools/operating_point.py on an ungated halueval-qa dev run:
    # the pair that abstains on the most unanswerable questions while answering >= 92 % of the
    # answerable ones): the model may try from 0.45, a quote needs 0.5 as before.
    min_quote_confidence: float = 0.5
    # A sentence is supported by its cited passage when both hold (see assistant/support.py).
    # 0.6 with the "question + answer" similarity (tools/tune_support.py --halueval):
    # halueval-qa dev right-vs-hallucinated accuracy 0.81 (0.57 before), the handbook's 95
    # labelled sentences unchanged (accuracy 0.905, 5 of 45 right ones rejected).
    support_min_overlap: float = 0.6
    support_min_similarity: float = 0.4
    max_new_tokens: int = 96
    # How answers are made: "pointed" (the model names the sentences of the passages that
    # answer, under a grammar, and kbqa quotes them: assistant/pointed.py) or "free" (the model
    # writes sentences, each checked against its passage: assistant/support.py). Pointed by the
    # rule in docs/pointer.md, written before the numbers: on fresh questions its delivered
    # answers were unsupported in 18 of 106 blind-read (17 %, against the free style's 37 %),
    # it answered 10 of 12 handbook questions with the right source, and it held halueval-qa's
    # reference in 59 % of answerable questions against the free style's 55 % (2026-12-05).
    answer_style: str = "pointed"
    # The checks a pointed answer's units must pass (assistant/signals.py), and their settings.
    # pointer_margin joined by the rule in docs/pointer.md: on blind read 3 (fresh questions)
    # answers it keeps were unsupported in 3 of 61 against 10 of all 82 delivered (0.40x).
    # Version 13, the passage gate, by read 11's rule (docs/pointer.md): the model's share for
    # the passage (pointer_share), its lead (pointer_margin) and [0]'s probability
    # (pointer_declined) instead of the unit's own probability.
    pointer_checks: tuple = ("subject", "pointer_share", "pointer_margin", "pointer_declined")
    # Fitted on halueval-qa dev (50 questions, 2026-12-05, docs/pointer.md): no threshold keeps
    # 90 % of answerable ones answered (88 % at 0); 0.3 loses none of them and abstains on one
    # more unanswerable question (4 -> 5 of 7); 0.5 would lose 6 answerable for 2 more.
    pointer_min_probability: float = 0.3
    # The least margin of the pick's first digit over the next likeliest ("pointer_margin" in
    # pointer_checks): with passage labels, the passage's lead over the next one and [0]. 0.2
    # was chosen on blind read 2 between flat unit numbers (docs/pointer.md: 76 of 106 kept, 6
    # unsupported against 18) and kept for the passage gate (version 13, read 11).
    pointer_min_margin: float = 0.2
    # How the units are numbered in the prompt: "flat" (1, 2, 3 … over all passages) or
    # "passage" (11, 12 … in the first passage, 21 … in the second: a number's first digit
    # names its passage, so pointer_share is the model's share for the passage).
    pointer_labels: str = "passage"
    # The least share of the pick's first digit ("pointer_share" in pointer_checks), and the
    # most probability of [0] where the first number was written ("pointer_declined"): the
    # passage gate of version 13 (docs/pointer.md). 0.5 from the dev probe of click-docs and
    # requests-docs; 0.08 on the dev runs of those and halueval-qa (the least value among the
    # unanswerable questions it stopped was 0.10; 13 answerable ones were at 0.06-0.09).
    pointer_min_share: float = 0.5
    pointer_max_declined: float = 0.08
    pointer_max_tokens: int = 48
    # The most words a reply line may copy from its unit (0: no limit); with llama.cpp, kbqa
    # copies the rest of a cut sentence and the model goes on from it (docs/pointer.md,
    # version 15: a handbook answer 0.78-0.83x the time, but its rule failed, so off).
    pointer_max_words: int = 0
    # Whether a reply line copies words of its unit after the number ("[12] port 7200"): they
    # mark the answer in bold inside the quote. false: the numbers alone ("[12]"), no mark
    # (docs/pointer.md, version 18).
    pointer_copies: bool = True
    # Whether kbqa writes each named unit's words into the reply as soon as the model has
    # written its number (the model then writes the unit's closing mark and the next number or
    # the end), instead of the model copying them token by token: no bold mark, 0.52-0.89x the
    # wait of a delivered answer, the same first picks, support no better over three blind
    # reads, so off (docs/pointer.md, versions 19-21). Only with pointer_copies and llama.cpp,
    # not with generator_draft.
    pointer_fill: bool = False
    # A pick that fails a check: "drop" it and deliver the model's other picks, or "abstain"
    # (the model was unsure of the answer; its quotes then wait for the reply's end, since a
    # later pick can still fail). "abstain" by read 9's rule (docs/pointer.md, version 8):
    # answers with no failed pick were responsive in 18 of 27, all delivered in 24 of 47.
    on_failed_pick: str = "abstain"
    # The most passages one answer quotes (0: any). With 1, a reply's units from passages
    # other than its first pick's are not quoted: on reads 10-16 (dev) the model's hop to
    # another passage was unsupported in 8 of its 10 answers; 1 by read 17's rule
    # (docs/pointer.md, version 22: 11 unsupported of 94 delivered against 12 of 91, responsive
    # 67 against 67, on fresh questions, 2026-12-07).
    pointer_max_sources: int = 1
    # How a follow-up is made standalone before the search (assistant/followup.py): "generator"
    # (the model's checked rewrite, else the conversation's words) or "words" (the previous
    # question with the follow-up's word in place, else its key words after the follow-up; no
    # request to the model). "words" by the rule in docs/first-hour.md, written before the
    # run: on a blind ninth set the default path answered 25 of 40 follow-ups right against 21
    # with the model's rewrite, standalone questions kept alike (65 of 70; 2026-12-06).
    followup_rewrite: str = "words"
    # A quoted sentence comes with its paragraph's sentence before it and those after it up to
    # this many characters (0: the unit alone). Part of version 13 (read 11, docs/pointer.md):
    # the passage gate is sure of the passage more often than of the sentence.
    quote_context_chars: int = 320
    # Each passage is shown to the generator cut to its lines closest to the question, at most
    # this many characters (0: whole passages); the support check always reads whole passages.
    prompt_passage_chars: int = 450
    # The generator sees at most this many of the top_k passages, and only those whose cosine
    # is within prompt_score_gap of the first one's (the check and the fallback still read all
    # top_k). The gap was chosen on halueval-qa dev (docs/answers.md): 0.1 against all 4
    # passages, span F1 0.450 vs 0.424, first checked sentence p50 3.96 s vs 10.03 s. 4 rather
    # than 3: the same on 40 dev questions, and 10 of 12 handbook answers generated, not 7 (the
    # answering section was often the 4th, within the gap).
    prompt_passages: int = 4
    prompt_score_gap: float = 0.1
    # When no generated sentence survives the support check but retrieval was confident:
    # "abstain", or "extract" (quote the best sentences instead, as --extractive does).
    # "extract" is the default because the packaged 135M generator rarely writes a supported,
    # cited sentence (benchmarks/handbook_qa.py: 0 of 12 handbook questions answered alone).
    on_unsupported: str = "extract"
    # When the generator's only answer is that the sources lack one ("I don't know"):
    # "abstain" (trust it) or "extract" (quote the best sentences anyway).
    on_idk: str = "abstain"
    # Slack: YOUR-TEAM in https://YOUR-TEAM.slack.com, for permalinks to threads.
    slack_workspace: str = ""
    slack_include_bots: bool = False
    # Channel name (or "*") -> patterns of sources it may draw on (see retrieval/access.py).
    slack_channel_sources: dict = field(default_factory=dict)
    # Read from SLACK_BOT_TOKEN, SLACK_APP_TOKEN and SLACK_SIGNING_SECRET too.
    slack_bot_token: str = ""
    slack_app_token: str = ""
    slack_signing_secret: str = ""
    # Serving (`kbqa serve`, the Slack bot and `kbqa ask --server`).
    serve_host: str = "127.0.0.1"
    serve_port: int = 8080
    # Requests from this machine (127.0.0.1 / ::1, Host localhost) need no API token.
    allow_loopback_without_token: bool = True
    max_question_chars: int = 2000
    max_request_bytes: int = 65536
    # Answers kept for the same question again (assistant/cache.py; 0: none), and the cosine
    # above which another wording is the same question (docs/serving-speed-cache.md; >1: never).
    answer_cache_size: int = 512
    answer_cache_similarity: float = 0.97
    # How often a long-running process checks the database for another process's ingest.
    snapshot_check_seconds: float = 1.0
    # KBQA_SERVER: `kbqa ask` sends its question to this running server (http://host:port);
    # KBQA_SERVER_TOKEN: the API token it sends.
    server: str = ""
    server_token: str = ""
    # The Slack Web API's base URL; empty for Slack's own (a test or load run sets a local one).
    slack_api_url: str = ""
    # Crash tests only (KBQA_FAULT_AT): "stage:n" kills this process with SIGKILL the n-th
    # time it reaches that fault point (kbqa/faults.py lists them); "trace" counts them.
    fault_at: str = ""
    # Connectors (issue 33): the [[sources]] tables of kbqa.toml, as SourceConfigs; and
    # Slack channel (id or name, or "*") -> the connector principals its members hold.
    sources: tuple = ()
    slack_channel_principals: dict = field(default_factory=dict)

    # Fields whose values are secrets: masked in repr() and in every log line.
    SECRET_FIELDS = ("slack_bot_token", "slack_app_token", "slack_signing_secret", "server_token")

    def __repr__(self) -> str:
        from kbqa.redact import MASK, mask_url

        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in self.SECRET_FIELDS and value:
                value = MASK
            elif f.name in ("database_url", "server", "slack_api_url") and value:
                value = mask_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def secrets(self) -> tuple[str, ...]:
        """The secret values set here (for log redaction), the database password included."""
        from urllib.parse import urlsplit

        values = [getattr(self, name) for name in self.SECRET_FIELDS]
        values += [c.token for c in self.sources]  # connectors' credentials
        with contextlib.suppress(ValueError):  # a malformed URL has no password to hide
            values.append(urlsplit(self.database_url).password or "")
        return tuple(v for v in values if v)

    @property
    def db_url(self) -> str:
        # Absolute, as `kbqa status` shows the home: the same file whatever the directory.
        return self.database_url or f"sqlite:///{self.home.absolute() / 'kbqa.db'}"

    @property
    def database_made(self) -> bool:
        """False for a SQLite file not made yet (nothing ingested): asking about it must not
        make it, so a mistyped or empty home is not left with a database."""
        url = self.db_url
        return not url.startswith("sqlite:///") or Path(url[10:].partition("?")[0]).exists()

    @property
    def index_path(self) -> Path:
        return self.home / "index.faiss"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    def replace(self, **changes: Any) -> Settings:
        settings = dataclasses.replace(self, **_coerce_all(changes, "argument"))
        settings.validate()
        return settings

    @classmethod
    def load(
        cls,
        config_file: Path | None = None,
        environ: dict[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings from the layers, lowest first; unknown keys are errors."""
        environ = dict(os.environ) if environ is None else environ
        values: dict[str, Any] = {}
        origin: dict[str, str] = {}  # a setting -> where its value came from, for errors
        path = config_file or Path("kbqa.toml")
        if path.is_file():
            data = _read_toml(path)
            if "sources" in data:
                from kbqa.ingest.connectors.config import parse_sources

                values["sources"] = parse_sources(data.pop("sources"), environ)
            values.update(_coerce_all(data, str(path)))
            origin.update(dict.fromkeys(data, str(path)))
        env = {
            key[len("KBQA_") :].lower(): value
            for key, value in environ.items()
            if key.startswith("KBQA_") and value != ""
        }
        # Slack's own variable names, as Slack's documentation and tools use them.
        for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
            if environ.get(name):
                env.setdefault(name.lower(), environ[name])
        values.update(_coerce_all(env, "KBQA_{KEY}", ignore_unknown=True))
        origin.update({k: f"KBQA_{k.upper()}" for k in env if k in _FIELDS})
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(_coerce_all(given, "argument"))
        origin.update(dict.fromkeys(given, "argument"))
        settings = cls(**values)
        try:
            settings.validate()
        except ConfigError as exc:  # say where the bad value was set
            named = re.search(r"setting '(\w+)'", str(exc))
            if named and named.group(1) in origin:
                raise ConfigError(f"{origin[named.group(1)]}: {exc}") from None
            raise
        return settings

    def validate(self) -> None:
        check(self)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read settings: {exc}") from exc
    # Accept both top-level keys and a [kbqa] table.
    return {**{k: v for k, v in data.items() if k != "kbqa"}, **data.get("kbqa", {})}


_FIELDS = {f.name: f for f in fields(Settings)}


def _coerce_all(values: dict[str, Any], where: str, ignore_unknown: bool = False) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if key not in _FIELDS:
            near = difflib.get_close_matches(key, _FIELDS, n=1, cutoff=0.8)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            if not ignore_unknown:
                raise ConfigError(f"{where}: unknown setting '{key}'{hint}")
            if near:  # other KBQA_* variables (tests', tools') are not settings: only a near miss
                log.warning("KBQA_%s is not a setting%s: it is ignored", key.upper(), hint)
            continue
        # Where an environment value was set, by its variable's name ("KBQA_TOP_K").
        out[key] = _coerce(key, value, where.replace("{KEY}", key.upper()))
    return out


_KINDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "tuple": "a list",
    "dict": "a table of lists",
}


def _coerce(key: str, value: Any, where: str) -> Any:
    kind = _FIELDS[key].type
    if key == "sources":  # SourceConfigs, from [[sources]] tables (Settings.load parses them)
        if isinstance(value, str) or not all(hasattr(v, "kind") for v in value):
            raise ConfigError(f"{where}: sources are [[sources]] tables in kbqa.toml")
        return tuple(value)
    try:
        if kind == "Path":
            return Path(value)
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "str":
            return str(value)
        if kind == "tuple":
            # A list in kbqa.toml, or "a,b" in the environment.
            parts = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(p).strip() for p in parts if str(p).strip())
        if kind == "dict":
            if not isinstance(value, dict):
                raise ValueError(value)
            return {str(k): [str(p) for p in v] for k, v in value.items()}
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
    except (TypeError, ValueError):
        wanted = _KINDS.get(kind, f"a {kind}")
        raise ConfigError(f"{where}: setting '{key}' must be {wanted}, got {value!r}") from None
    return value
