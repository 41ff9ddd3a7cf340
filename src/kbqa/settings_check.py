"""The checks a Settings object passes when it is built: each bad value is one ConfigError
naming the setting (settings.py calls `check` from `Settings.validate`)."""

from __future__ import annotations

from typing import Any

from kbqa.errors import ConfigError
from kbqa.faults import check_spec

# The generation queue's settings (assistant/queue.py), each at least 1.
QUEUE = ("generator_slots", "queue_limit", "queue_retry_seconds")


def check(s: Any) -> None:
    """Raise ConfigError for the first bad value of `s` (a Settings)."""
    choices = {
        "on_unsupported": ("abstain", "extract"),
        "on_idk": ("abstain", "extract"),
        "on_failed_pick": ("drop", "abstain"),
        "answer_style": ("pointed", "free"),
        "followup_rewrite": ("generator", "words"),
        "pointer_labels": ("flat", "passage"),
        "generator_backend": ("auto", "llama.cpp", "transformers"),
        "generator_precision": ("auto", "fp32", "bf16"),
        "device": ("auto", "cpu", "cuda"),
        "retrieval_mode": ("dense", "bm25", "hybrid"),
        "fusion": ("rrf", "convex", "zscore"),
        "embedding_backend": ("auto", "torch-fp32", "torch-bf16", "onnx-int8", "onnx-qint8"),
        "vector_index": ("auto", "flat", "ivf"),
        "vector_backend": ("faiss", "pgvector"),
        "lexical_backend": ("bm25", "postgres-fts"),
        "spark_writes": ("auto", "driver", "executors"),
    }
    for key, allowed in choices.items():
        if (value := getattr(s, key)) not in allowed:
            raise ConfigError(f"setting '{key}' must be one of {', '.join(allowed)}, got {value!r}")
    for key in ("top_k", "rrf_k", "rerank_depth", "vector_index_flat_max", "prompt_passages"):
        if getattr(s, key) < 1:
            raise ConfigError(f"setting '{key}' must be at least 1")
    if s.recency_tie < 0 or s.stale_after_days < 1:
        raise ConfigError("settings 'recency_tie' must be >= 0, 'stale_after_days' >= 1")
    probabilities = ("pointer_min_probability", "pointer_min_margin", "pointer_min_share")
    for key in (*probabilities, "pointer_max_declined"):
        if not 0 <= getattr(s, key) <= 1:
            raise ConfigError(f"setting '{key}' must be between 0 and 1")
    if s.pointer_max_words < 0:
        raise ConfigError("setting 'pointer_max_words' must be 0 (no limit) or more")
    if s.pointer_max_sources < 0:
        raise ConfigError("setting 'pointer_max_sources' must be 0 (any) or more")
    if s.quote_context_chars < 0:
        raise ConfigError("setting 'quote_context_chars' must be 0 (the unit alone) or more")
    if s.embed_threads < 0:
        raise ConfigError("setting 'embed_threads' must be 0 (one per core) or more")
    if s.ingest_workers < 0:
        raise ConfigError("setting 'ingest_workers' must be 0 (one per core) or more")
    for key in ("max_question_chars", "max_request_bytes", "pointer_max_tokens", *QUEUE):
        if getattr(s, key) < 1:
            raise ConfigError(f"setting '{key}' must be at least 1")
    if not 0 < s.serve_port < 65536:
        raise ConfigError("setting 'serve_port' must be a port number (1-65535)")
    if s.server and not s.server.startswith(("http://", "https://")):
        raise ConfigError("setting 'server' (KBQA_SERVER) must be a URL like http://127.0.0.1:8080")
    for key in ("max_file_bytes", "max_unpacked_bytes", "max_parse_memory_bytes"):
        if getattr(s, key) < 1:
            raise ConfigError(f"setting '{key}' must be at least 1")
    for key in ("max_file_seconds", "database_busy_seconds"):
        if getattr(s, key) <= 0:
            raise ConfigError(f"setting '{key}' must be more than 0")
    check_spec(s.fault_at)
    if s.vector_backend == "pgvector" and not s.db_url.startswith("postgresql"):
        raise ConfigError(
            "setting 'vector_backend' pgvector needs database_url to be a PostgreSQL URL "
            "(postgresql+psycopg://user@host/db)"
        )
    if s.lexical_backend == "postgres-fts" and s.vector_backend != "pgvector":
        raise ConfigError("setting 'lexical_backend' postgres-fts needs vector_backend pgvector")
    if not 0.0 <= s.fusion_alpha <= 1.0:
        raise ConfigError("setting 'fusion_alpha' must be between 0 and 1")
    # A threshold past 1 (on a probability, or a cosine, which is at most 1) would abstain on
    # every question without saying why. -inf switches a gate off (the ungated evaluation).
    bounds = {"min_confidence": 0.0, "min_quote_confidence": 0.0, "min_hit_score": -1.0}
    for key, low in bounds.items():
        value = getattr(s, key)
        if value != float("-inf") and not low <= value <= 1.0:
            raise ConfigError(f"setting '{key}' must be between {low:g} and 1 (it is {value:g})")
