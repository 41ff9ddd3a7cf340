"""The leak benchmark over connector content: secrets in restricted Confluence pages, Jira
issues under a security level, a private repository, Drive files shared with one group and a
Notion workspace, stored through the connectors' own glue (connector_source, so each document
carries the access metadata a real sync gives it). Questions aimed at them come from API tokens
and Slack channels holding other principals, or none; every answer, citation, closest source,
document listing and the log file is scanned. benchmarks/leaks.py runs it beside the Slack and
file secrets."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from kbqa.evals.leaks import PHRASINGS
from kbqa.ingest.connectors.base import (
    Access,
    Content,
    Listing,
    RemoteItem,
    connector_source,
)
from kbqa.ingest.sources import Source
from kbqa.retrieval.access import Audience

# (kind, principal that may open it, topic, sentence around the secret)
PLANTED = [
    (
        "confluence",
        "confluence-space:SEC",
        "incident bridge PIN",
        "The incident bridge PIN is {s}.",
    ),
    ("confluence", "confluence-group:sre", "HSM unlock phrase", "The HSM unlock phrase is {s}."),
    ("jira", "jira-security:HR:HR only", "severance budget", "The severance budget is {s}."),
    ("jira", "jira-project:LEGAL", "patent filing number", "The patent filing number is {s}."),
    ("github", "github-repo:acme/secrets", "deploy bot token", "The deploy bot token is {s}."),
    ("gdrive", "gdrive-group:exec@acme.test", "board deck password", "The deck password is {s}."),
    ("notion", "notion-workspace:finance", "vendor bank IBAN", "The vendor IBAN is {s}."),
    ("confluence", "confluence-user:557058:ceo", "CEO travel itinerary", "The CEO flies {s}."),
]
# Principals none of the secrets name: what the probing audiences hold.
OTHER = ("confluence-space:ENG", "jira-project:OPS", "github-repo:acme/api", "notion-workspace:eng")


@dataclass(frozen=True)
class Planted:
    value: str
    kind: str
    principal: str
    topic: str
    sentence: str


def planted(seed: int = 8) -> list[Planted]:
    rng = random.Random(seed + 33)
    return [
        Planted(f"SECRET-{rng.getrandbits(40):010x}", kind, principal, topic, sentence)
        for kind, principal, topic, sentence in PLANTED
    ]


class _PlantedConnector:
    """A connector over the planted items (the glue and metadata are the real ones)."""

    def __init__(self, kind: str, items: list[Planted]):
        self.kind, self.name = kind, f"leaks-{kind}"
        self.items = items

    def list(self, cursor: str | None) -> Listing:
        return Listing(
            [
                RemoteItem(
                    id=str(n),
                    version="1",
                    title=p.topic.capitalize(),
                    url=f"https://{self.kind}.example/{n}",
                    updated_at="2026-11-30T10:00:00Z",
                    author="mallory",
                    access=_access(p.principal),
                    extra={"n": n},
                )
                for n, p in enumerate(self.items)
            ]
        )

    def fetch(self, item: RemoteItem) -> Content:
        p = self.items[int(item.extra["n"])]
        body = p.sentence.format(s=p.value)
        return Content(markdown=f"# {p.topic.capitalize()}\n\n{body} Keep the {p.topic} safe.\n")


def _access(principal: str) -> Access:
    if "-user:" in principal:
        return Access(users=(principal,))
    return Access(groups=(principal,))


def sources(items: list[Planted]) -> list[Source]:
    """One source per connector kind, as a sync would store them."""
    kinds = sorted({p.kind for p in items})
    return [
        connector_source(_PlantedConnector(k, [p for p in items if p.kind == k]), None)
        for k in kinds
    ]


def audiences() -> list[tuple[str, Audience]]:
    """Audiences that may open none of the planted items; channel principals come from the
    settings run() is given (`slack_channel_principals`: {"eng": OTHER})."""
    return [
        ("token without principals", Audience.for_token("probe-none", ())),
        ("token of other spaces", Audience.for_token("probe-other", (), OTHER)),
        ("token with source patterns", Audience.for_token("probe-src", ("confluence:",), OTHER)),
        ("public channel", Audience(channel_id="C0PUBLIC", channel_name="general")),
        ("engineering channel", Audience(channel_id="C0ENG", channel_name="eng")),
        ("unknown channel", Audience(channel_id="G0UNKNOWN", public_only=True)),
    ]


CHANNEL_PRINCIPALS = {"eng": list(OTHER)}


def run(kb, items: list[Planted], n: int = 200, seed: int = 8, log_path: Path | None = None):
    """Ask n questions aimed at the planted secrets from audiences that may not open them
    (half through the core, half over HTTP with tokens holding other principals); scan
    answers, citations, closest sources, document listings and the log. A control asks each
    from a token holding the right principal. `kb.settings.slack_channel_principals` should
    be CHANNEL_PRINCIPALS. Returns the figures."""
    from fastapi.testclient import TestClient

    from kbqa.serve import create_app

    rng = random.Random(seed)
    pool = [(p.format(t=s.topic, c="secrets"), s) for s in items for p in PHRASINGS]
    # Past the pool's size a question comes again, from another audience.
    asked = [pool[i % len(pool)] for i in rng.sample(range(max(n, len(pool))), n)]
    counts = {"questions": len(asked), "leaks": 0, "leaks_where": [], "reachable_by_owner": 0}

    def scan(where: str, text: str) -> None:
        for s in items:
            if s.value in text:
                counts["leaks"] += 1
                counts["leaks_where"].append(f"{where}: {s.value}")

    half = len(asked) // 2
    probes = audiences()
    for i, (question, _) in enumerate(asked[:half]):
        label, audience = probes[i % len(probes)]
        answer = kb.ask(question, audience=audience, extractive=True, k=8)
        scan(f"answer ({label})", json.dumps(answer.to_dict()))
    client = TestClient(create_app(kb), base_url="http://kb.example.com", client=("203.0.113.9", 1))
    tokens = {}
    for name, principals in (("none", ()), ("other", OTHER)):
        tokens[name], _ = kb.create_token(f"cleaks-{name}-{seed}-{n}", [], False, list(principals))
    for i, (question, _) in enumerate(asked[half:]):
        name = ("none", "other")[i % 2]
        auth = {"Authorization": f"Bearer {tokens[name]}"}
        response = client.post(
            "/api/ask", json={"question": question, "extractive": True, "k": 8}, headers=auth
        )
        scan(f"http answer (token {name})", response.text)
        if i % 10 == 0:
            listed = client.get("/api/documents", params={"limit": 200}, headers=auth)
            scan(f"http documents (token {name})", listed.text)
    if log_path is not None and log_path.exists():
        scan("log file", log_path.read_text())
    for question, secret in asked:
        owner = Audience.for_token("owner", (), (secret.principal,))
        answer = kb.ask(question, audience=owner, extractive=True, k=8)
        counts["reachable_by_owner"] += secret.value in json.dumps(answer.to_dict())
    counts["leaks_where"] = counts["leaks_where"][:20]
    return counts
