"""Who may see what: an answer may only draw on sources its audience is allowed to see.

- The command line (and a local server without a token, when settings allow) sees everything.
- A Slack channel: content from a private Slack channel (or DM) is only used to answer in that
  same channel, and `slack_channel_sources` in settings can restrict a channel (by id, by name
  resolved to its id when the bot starts, or "*" for every channel) to a list of patterns. A
  channel the bot could not look up is answered from public content only (fail closed).
- An API token (`kbqa token create --sources …`) sees only the sources its patterns match (all
  when it has none), and never a private channel's content unless a pattern names that channel.

A connector's document (Confluence, Jira, git, the web, Drive, Notion) carries `access`: who may
open it at its source. Besides the rules above, it is seen by an unrestricted audience (the
command line, an admin token), by anyone when it is public, and otherwise only by an audience
holding one of its principals ("confluence-space:ENG"): a token's own (`kbqa token create
--principal`), a channel's from `slack_channel_principals`. Unknown access is restricted.

A pattern is "#name" for a Slack channel's threads, a glob matched against the document's uri
(e.g. "*/runbooks/*"), or else a part of the uri ("runbooks/").

The rules are a predicate over a document (its uri and metadata), held in a `Scope` value that
the retriever applies *before* ranking: only allowed chunks are searched, fused, reranked and
collapsed, so nothing the audience may not see can push out, or erase, what it may.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatch
from typing import Any

from kbqa.types import Hit


@dataclass(frozen=True)
class Audience:
    """Where an answer will be shown. The command line (no channel, no token) sees everything."""

    channel_id: str | None = None
    # For logs and messages only: every rule is keyed by the id, which a rename keeps.
    channel_name: str | None = None
    # The name of the API token the question came with, and that token's source patterns.
    token: str | None = None
    sources: tuple[str, ...] = ()
    # A Slack channel's own restriction (already resolved from settings); None: none.
    channel_sources: tuple[str, ...] | None = None
    # No private content at all: a channel whose privacy could not be looked up.
    public_only: bool = False
    # Connector principals it holds ("confluence-space:ENG"); "*" (an admin token) holds all.
    principals: tuple[str, ...] = ()

    @classmethod
    def for_token(
        cls,
        name: str,
        sources: tuple[str, ...] | list[str],
        principals: tuple[str, ...] | list[str] = (),
        admin: bool = False,
    ) -> Audience:
        return cls(token=name, sources=tuple(sources), principals=(*principals, *("*",) * admin))

    @property
    def restricted(self) -> bool:
        return self.channel_id is not None or self.token is not None or self.public_only


def held(audience: Audience, channel_principals: Mapping[str, list[str]] | None) -> set[str]:
    """The connector principals `audience` holds: its own, and a channel's from settings (by
    id or name, else "*")."""
    found = set(audience.principals)
    if audience.channel_id is not None and channel_principals and not audience.public_only:
        for key in (audience.channel_id, audience.channel_name, f"#{audience.channel_name}"):
            if key in channel_principals:
                found.update(channel_principals[key])
                break
        else:
            found.update(channel_principals.get("*", ()))
    return found


def opens(access: Any, principals: set[str]) -> bool:
    """Whether a connector document's `access` lets one of `principals` open it. Anything
    unreadable is restricted (fail closed)."""
    if not isinstance(access, Mapping):
        return "*" in principals
    if access.get("public") is True or "*" in principals:
        return True
    granted = [access.get("groups"), access.get("users")]
    return any(
        isinstance(names, list | tuple) and any(str(p) in principals for p in names)
        for names in granted
    )


def guarded(meta: Mapping[str, Any]) -> bool:
    """Whether a document carries a connector's access (or should, and lacks it)."""
    return "access" in meta or bool(meta.get("connector"))


def allows_document(
    uri: str,
    meta: Mapping[str, Any],
    audience: Audience,
    restrictions: Mapping[str, list[str]] | None = None,
    channel_principals: Mapping[str, list[str]] | None = None,
) -> bool:
    """Whether `audience` may see a document. `restrictions` (channel id or "*" -> patterns)
    apply to a channel audience that carries no `channel_sources` of its own;
    `channel_principals` (channel id or name, or "*" -> principals) to a connector's document."""
    if (
        audience.restricted
        and guarded(meta)
        and not opens(meta.get("access"), held(audience, channel_principals))
    ):
        return False
    if audience.public_only and meta.get("private"):
        return False
    if audience.token is not None:
        if meta.get("private"):
            # Fail closed: only a pattern naming the private channel itself opens it.
            return bool(meta.get("channel")) and f"#{meta['channel']}" in audience.sources
        return not audience.sources or any(matches(r, uri, meta) for r in audience.sources)
    if audience.channel_id is None:
        return True
    if meta.get("private") and meta.get("channel_id") != audience.channel_id:
        return False
    rules = audience.channel_sources
    if rules is None and restrictions:
        rules = restrictions.get(audience.channel_id, restrictions.get("*"))
    if rules is None:
        return True
    return any(matches(rule, uri, meta) for rule in rules)


def allows(
    hit: Hit, audience: Audience, restrictions: Mapping[str, list[str]] | None = None
) -> bool:
    """allows_document for a hit's document."""
    return allows_document(hit.uri, hit.metadata, audience, restrictions)


def matches(rule: str, uri_or_hit: str | Hit, meta: Mapping[str, Any] | None = None) -> bool:
    """ "#name": a Slack channel's threads; a glob ("*/runbooks/*") against the uri; anything
    else, a part of the uri ("runbooks/", "slack.com")."""
    if isinstance(uri_or_hit, Hit):
        uri, meta = uri_or_hit.uri, uri_or_hit.metadata
    else:
        uri, meta = uri_or_hit, meta or {}
    if rule.startswith("#"):
        return meta.get("kind") == "slack" and meta.get("channel") == rule[1:]
    if any(ch in rule for ch in "*?["):
        return fnmatch(uri, rule)
    return rule in uri


@dataclass(frozen=True)
class Scope:
    """What one question may draw on: an audience's rules and the asker's own source patterns.
    A value, so a search backend can turn it into a pre-filter (allowed ids here; a SQL
    backend could as well turn it into WHERE clauses over the document's metadata)."""

    audience: Audience | None = None
    sources: tuple[str, ...] = ()
    # Settings' channel restrictions (channel id or "*" -> patterns), for a channel audience
    # that carries none of its own.
    restrictions: Mapping[str, list[str]] = field(default_factory=dict)
    # Settings' channel principals (channel id or name, or "*" -> connector principals).
    channel_principals: Mapping[str, list[str]] = field(default_factory=dict)

    @property
    def everything(self) -> bool:
        return not self.sources and (self.audience is None or not self.audience.restricted)

    @property
    def key(self) -> tuple:
        """A hashable value equal for equal scopes (a snapshot caches allowed ids by it)."""
        restrictions = tuple(sorted((k, tuple(v)) for k, v in self.restrictions.items()))
        principals = tuple(sorted((k, tuple(v)) for k, v in self.channel_principals.items()))
        return (self.audience, self.sources, restrictions, principals)

    def allows_document(self, uri: str, meta: Mapping[str, Any]) -> bool:
        audience = self.audience
        if audience is not None and not allows_document(
            uri, meta, audience, self.restrictions, self.channel_principals
        ):
            return False
        return not self.sources or any(matches(rule, uri, meta) for rule in self.sources)

    def __call__(self, hit: Hit) -> bool:
        return self.allows_document(hit.uri, hit.metadata)
