"""Who may see what: an answer posted in a Slack channel may only draw on sources that channel
is allowed to see.

- Content from a private Slack channel (or DM) is only used to answer in that same channel.
- `slack_channel_sources` in settings can restrict a channel (by name, or "*" for every channel)
  to a list of patterns: "#name" for a Slack channel's threads, or a glob matched against the
  document's uri (e.g. "*/runbooks/*").
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch

from kbqa.types import Hit


@dataclass(frozen=True)
class Audience:
    """Where an answer will be shown. The command line (no channel) sees everything."""

    channel_id: str | None = None
    channel_name: str | None = None


def allows(hit: Hit, audience: Audience, restrictions: dict[str, list[str]]) -> bool:
    if audience.channel_id is None:
        return True
    meta = hit.metadata
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
