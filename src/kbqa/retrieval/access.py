"""Who may see what: an answer may only draw on sources its audience is allowed to see.

- The command line (and a local server without a token, when settings allow) sees everything.
- A Slack channel: content from a private Slack channel (or DM) is only used to answer in that
  same channel, and `slack_channel_sources` in settings can restrict a channel (by name, or "*"
  for every channel) to a list of patterns.
- An API token (`kbqa token create --sources …`) sees only the sources its patterns match (all
  when it has none), and never a private channel's content unless a pattern names that channel.

A pattern is "#name" for a Slack channel's threads, a glob matched against the document's uri
(e.g. "*/runbooks/*"), or else a part of the uri ("runbooks/").
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch

from kbqa.types import Hit


@dataclass(frozen=True)
class Audience:
    """Where an answer will be shown. The command line (no channel, no token) sees everything."""

    channel_id: str | None = None
    channel_name: str | None = None
    # The name of the API token the question came with, and that token's source patterns.
    token: str | None = None
    sources: tuple[str, ...] = ()

    @classmethod
    def for_token(cls, name: str, sources: tuple[str, ...] | list[str]) -> Audience:
        return cls(token=name, sources=tuple(sources))

    @property
    def restricted(self) -> bool:
        return self.channel_id is not None or self.token is not None


def allows(hit: Hit, audience: Audience, restrictions: dict[str, list[str]]) -> bool:
    meta = hit.metadata
    if audience.token is not None:
        if meta.get("private"):
            # Fail closed: only a pattern naming the private channel itself opens it.
            return bool(meta.get("channel")) and f"#{meta['channel']}" in audience.sources
        return not audience.sources or any(matches(rule, hit) for rule in audience.sources)
    if audience.channel_id is None:
        return True
    if meta.get("private") and meta.get("channel_id") != audience.channel_id:
        return False
    rules = restrictions.get(audience.channel_name or "", restrictions.get("*"))
    if rules is None:
        return True
    return any(matches(rule, hit) for rule in rules)


def matches(rule: str, hit: Hit) -> bool:
    """ "#name": a Slack channel's threads; a glob ("*/runbooks/*") against the uri; anything
    else, a part of the uri ("runbooks/", "slack.com")."""
    if rule.startswith("#"):
        return hit.metadata.get("kind") == "slack" and hit.metadata.get("channel") == rule[1:]
    if any(ch in rule for ch in "*?["):
        return fnmatch(hit.uri, rule)
    return rule in hit.uri
