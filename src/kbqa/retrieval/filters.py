"""The access filter of one question as a value: callable on a hit (for in-memory indexes) and
readable by a store that can apply it itself (pgvector turns it into SQL `WHERE`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kbqa.retrieval.access import Audience, allows, matches
from kbqa.types import Hit


@dataclass(frozen=True)
class AccessFilter:
    """What `audience` may see (with the Slack channel restrictions of settings), narrowed to
    the asker's own `sources` patterns when there are any."""

    audience: Audience | None = None
    restrictions: dict[str, list[str]] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def __call__(self, hit: Hit) -> bool:
        if self.audience is not None and not allows(hit, self.audience, self.restrictions):
            return False
        return not self.sources or any(matches(rule, hit) for rule in self.sources)
