"""A sync killed mid-way loses and duplicates nothing: 20 kills against the Confluence mock (an
exception injected between items, and at each write-path fault point, after edits, deletions,
additions and a permission change), each followed by a re-run, then compared with a clean sync;
and one real SIGKILL of a `kbqa sync` subprocess."""

import os
import random
import subprocess
import sys

import pytest

from conftest import ROOT
from kbqa import faults
from kbqa.app import KnowledgeBase
from kbqa.ingest.connectors.config import SourceConfig
from kbqa.ingest.connectors.confluence import build

from .conftest import FAST_RETRY, cursor, documents, sync, uris
from .mock_confluence import MockConfluence, MockPage

sys.path.insert(0, str(ROOT / "benchmarks"))
import faults as bench  # benchmarks/ is not a package

# Twenty kills and re-runs of a sync: left out of `make check`.
pytestmark = pytest.mark.slow

STAGES = ["parse", "embed", "commit", "committed", "remove", "sync-cursor"]


class Killed(BaseException):
    """Stands for the process dying: nothing in kbqa catches it."""


def storage(rng: random.Random, name: str) -> str:
    words = " ".join(rng.choice(bench.WORDS) for _ in range(rng.randint(20, 90)))
    return f"<h1>{name}</h1><h2>Part one</h2><p>{name} {words}.</p><h2>Part two</h2><p>{words}</p>"


@pytest.fixture
def wiki():
    rng = random.Random(11)
    with MockConfluence(max_page=3) as server:
        server.add_space("ENG", groups=("eng",))
        for n in range(8):
            server.pages[str(300 + n)] = MockPage(f"Page {n}", "ENG", storage(rng, f"page{n}"))
        yield server


def connector(server):
    config = SourceConfig(
        name="wiki",
        kind="confluence",
        url=server.url,
        scope=("ENG",),
        token="api-token-123456",
        user="bot@acme.test",
    )
    return build(config, retry=FAST_RETRY)


def expected(server) -> dict[str, str]:
    """uri -> the version number each stored page must have."""
    return {f"confluence:wiki/{i}": str(p.version) for i, p in server.pages.items()}


def assert_whole(kb, server) -> None:
    assert bench.check(kb) == []
    docs = documents(kb)
    assert {u: d["content_hash"].split(":")[0] for u, d in docs.items()} == expected(server)


def mutate(server, rng: random.Random, trial: int) -> None:
    ids = sorted(server.pages)
    edited = rng.choice(ids)
    server.edit(edited, storage(rng, f"edited{trial}"))
    if len(ids) > 5:  # two pages at least are fetched again: the edited one and the new one
        del server.pages[rng.choice([i for i in ids if i != edited])]
    server.pages[str(400 + trial)] = MockPage(f"New {trial}", "ENG", storage(rng, f"new{trial}"))
    if trial % 3 == 0:
        page = server.pages[rng.choice(sorted(server.pages))]
        page.groups = [] if page.groups else ["sre"]  # a permission change: re-read, same text


def test_twenty_kills_mid_sync_lose_and_duplicate_nothing(ckb, wiki, monkeypatch):
    rng = random.Random(5)
    c = connector(wiki)
    sync(ckb, c)
    assert_whole(ckb, wiki)
    real_point, real_fetch = faults.point, c.fetch
    kills = 0
    for trial in range(20):
        mutate(wiki, rng, trial)
        if trial % 2 == 0:  # an exception between items: the n-th fetch never returns
            n = rng.randint(1, 2)
            calls = {"n": 0}

            def fetch(item, n=n, calls=calls):
                calls["n"] += 1
                if calls["n"] == n:
                    raise Killed(f"fetch {n}")
                return real_fetch(item)

            monkeypatch.setattr(c, "fetch", fetch)
        else:  # at a fault point of the write path
            stage = STAGES[(trial // 2) % len(STAGES)]
            seen = {"n": 0}

            def point(name, stage=stage, seen=seen):
                if name == stage:
                    seen["n"] += 1
                    if seen["n"] == 1:
                        raise Killed(stage)
                real_point(name)

            monkeypatch.setattr(faults, "point", point)
        before = cursor(ckb, "wiki")
        with pytest.raises(Killed):
            sync(ckb, c)
        kills += 1
        monkeypatch.undo()
        assert cursor(ckb, "wiki") == before  # the cursor never runs ahead of the items
        assert bench.check(ckb) == [], trial  # whole before the re-run, too
        result = sync(ckb, c)
        assert result.error == "" and result.failed == [], (trial, result)
        assert_whole(ckb, wiki)
    assert kills == 20
    clean = KnowledgeBase(
        ckb.settings.replace(home=ckb.settings.home.parent / "clean"), embedder=ckb.embedder
    )
    sync(clean, c)
    assert bench.contents(ckb) == bench.contents(clean)


@pytest.mark.slow  # two CLI starts: ~30 s on a busy machine
def test_a_sigkilled_sync_subprocess_then_a_re_run_loses_nothing(tmp_path, wiki):
    home = tmp_path / "home"
    (tmp_path / "kbqa.toml").write_text(
        f'[[sources]]\nname = "wiki"\nkind = "confluence"\nurl = "{wiki.url}"\n'
        'scope = ["ENG"]\ntoken_env = "WIKI_TOKEN"\nuser_env = "WIKI_USER"\n'
    )
    env = {
        **os.environ,
        "KBQA_HOME": str(home),
        "KBQA_EMBEDDING_MODEL": "hash",
        "KBQA_EMBED_BATCH_SIZE": "2",
        "KBQA_DEVICE": "cpu",
        "WIKI_TOKEN": "api-token-123456",
        "WIKI_USER": "bot@acme.test",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }

    def run(fault: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "kbqa", "sync", "wiki"],
            env={**env, "KBQA_FAULT_AT": fault} if fault else env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )

    killed = run("commit:2")
    assert killed.returncode == -9, killed.stderr
    done = run()
    assert done.returncode == 0, done.stderr
    assert "wiki: listed 8 · added" in done.stdout
    kb = KnowledgeBase(bench.settings_for(home))
    assert_whole(kb, wiki)
    assert len(uris(kb)) == 8
