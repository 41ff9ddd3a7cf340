"""Access is a filter before ranking: an audience's hidden chunks never take an allowed one's
place in the cut-off, never erase it as a near-duplicate, and a failed lookup fails closed."""

import hashlib

import numpy as np
import pytest

from kbqa.app import KnowledgeBase
from kbqa.assistant.generator import EchoGenerator
from kbqa.ingest.sources import documents_source
from kbqa.retrieval.access import Audience, Scope
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.types import Chunk, Document

PUBLIC_ID, PRIVATE_ID, OTHER_ID = "C0PUBLIC", "C0SECRET", "C0OTHER"


def thread(channel_id: str, name: str, private: bool, ts: str, text: str) -> Document:
    uri = f"https://larkspur.slack.com/archives/{channel_id}/p{ts.replace('.', '')}"
    meta = {
        "kind": "slack",
        "channel": name,
        "channel_id": channel_id,
        "private": private,
        "thread_ts": ts,
    }
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Document(uri, f"#{name} thread", digest, (Chunk(text),), metadata=meta)


TWIN = (
    "The staging database failover drill runs every second Tuesday at 14:00 UTC and the "
    "on-call engineer posts the runbook link before starting it."
)


@pytest.fixture(params=["dense", "bm25", "hybrid"])
def twins(settings, request) -> KnowledgeBase:
    """The same text posted in a public and (a moment earlier, so ranked first) a private
    channel, plus filler threads that outrank both on other words."""
    settings = settings.replace(retrieval_mode=request.param)
    kb = KnowledgeBase(settings, embedder=HashEmbedder(), generator=EchoGenerator())
    docs = [thread(PRIVATE_ID, "sec-private", True, "1700000000.000100", TWIN)]
    docs.append(thread(PUBLIC_ID, "eng-help", False, "1700000001.000100", TWIN + " Thanks!"))
    # Private chunks about the same thing that rank above the public twin: with a filter after
    # the cut-off, they would fill it.
    for n in range(40):
        docs.append(
            thread(
                PRIVATE_ID,
                "sec-private",
                True,
                f"17000001{n:02d}.000100",
                f"staging database failover drill Tuesday notes {n}: " + TWIN[:60],
            )
        )
    source = documents_source("slack-api:test", "slack-api", docs, complete=True)
    kb.index_sources([source])
    return kb


def test_a_private_twin_cannot_erase_its_public_copy(twins):
    question = "when does the staging database failover drill run?"
    everyone = twins.retriever.search(question, 3)
    assert any(h.metadata["private"] for h in everyone)  # unfiltered, private ranks first
    scope = twins.scope(Audience(channel_id=PUBLIC_ID, channel_name="eng-help"))
    hits = twins.retriever.search(question, 3, scope)
    assert hits and not any(h.metadata["private"] for h in hits)
    assert hits[0].metadata["channel_id"] == PUBLIC_ID  # the public twin survived collapsing
    answer = twins.ask(question, audience=Audience(channel_id=PUBLIC_ID), extractive=True)
    assert not answer.abstained
    assert {c.hit.metadata["channel_id"] for c in answer.citations} == {PUBLIC_ID}
    assert all(not h.metadata["private"] for h in answer.hits)


def test_the_private_channel_itself_still_sees_its_own_content(twins):
    scope = twins.scope(Audience(channel_id=PRIVATE_ID, channel_name="sec-private"))
    hits = twins.retriever.search("staging database failover drill", 3, scope)
    assert any(h.metadata["channel_id"] == PRIVATE_ID for h in hits)


def test_an_unknown_channel_is_answered_from_public_content_only(twins):
    # The bot could not look the channel up: even "its own" private content stays out.
    scope = twins.scope(Audience(channel_id=PRIVATE_ID, public_only=True))
    hits = twins.retriever.search("staging database failover drill", 5, scope)
    assert hits and not any(h.metadata["private"] for h in hits)


def test_filters_are_applied_inside_the_dense_and_lexical_indexes(twins):
    snapshot = twins.snapshot
    scope = Scope(Audience(channel_id=OTHER_ID))
    allowed = snapshot.allowed_ids(scope)
    assert len(allowed) == 1  # only the public twin
    vector = twins.embedder.embed(["failover drill"])
    _, ids = snapshot.index.search(vector, 10, allowed)
    assert [i for i in ids[0] if i >= 0] == allowed.tolist()
    lexical_ids, _ = snapshot.lexical.search("failover drill", 10, allowed)
    assert lexical_ids.tolist() == allowed.tolist()
    # A plain predicate over hits is a pre-filter too (asked per chunk).
    same = snapshot.allowed_ids(lambda hit: not hit.metadata.get("private"))
    assert np.array_equal(same, allowed)


def test_a_snapshot_computes_an_audiences_allowed_ids_once(twins):
    snapshot = twins.snapshot
    first = snapshot.allowed_ids(Scope(Audience(channel_id=OTHER_ID)))
    again = snapshot.allowed_ids(Scope(Audience(channel_id=OTHER_ID)))  # an equal scope
    assert again is first and not first.flags.writeable
    other = snapshot.allowed_ids(Scope(Audience(channel_id=PRIVATE_ID)))
    assert other is not first and len(other) > len(first)
    restricted = Scope(Audience(channel_id=OTHER_ID), restrictions={OTHER_ID: ["nothing/*"]})
    assert len(snapshot.allowed_ids(restricted)) == 0  # restrictions are part of the key


def test_channel_restrictions_are_keyed_by_id_not_name(twins):
    # A rename cannot lift a restriction: the settings name the channel by id.
    twins.settings = twins.settings.replace(slack_channel_sources={PUBLIC_ID: ["#deploys"]})
    renamed = Audience(channel_id=PUBLIC_ID, channel_name="renamed-channel")
    assert twins.retriever.search("failover drill", 5, twins.scope(renamed)) == []


def test_the_gpu_path_scores_the_allowed_vectors_exactly_as_faiss_does():
    from kbqa.retrieval.index import VectorIndex

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(200, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex(16)
    index.add(np.arange(1000, 1200, dtype=np.int64), vectors)
    allowed = np.arange(1000, 1200, 7, dtype=np.int64)
    query = vectors[:2]
    expected_scores, expected_ids = index.search(query, 10, allowed)  # faiss IDSelector
    index.use_gpu = True  # the GPU branch (no selector there) runs on the CPU copy here
    scores, ids = index.search(query, 10, allowed)
    assert np.array_equal(ids, expected_ids)
    assert np.allclose(scores, expected_scores, atol=1e-5)
    assert set(ids.ravel().tolist()) <= set(allowed.tolist())
    _, few_ids = index.search(query, 40, allowed[:3])  # fewer allowed than k
    assert (few_ids[:, 3:] == -1).all() and set(few_ids[:, :3].ravel()) <= set(allowed[:3])
