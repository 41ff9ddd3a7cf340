"""Slack messages to Documents: one per thread, one per time window of loose messages.

Shared by the export reader and the live sync, so it works on raw message dicts only."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from kbqa.clock import iso
from kbqa.ingest import corrections
from kbqa.ingest.partition import HEADING_SEPARATOR
from kbqa.types import Chunk, Document

# Subtypes that carry what someone said; every other subtype is channel noise (joins, topics…).
_CONTENT_SUBTYPES = frozenset({"thread_broadcast", "file_share"})
RESOLVED_REACTIONS = frozenset({"white_check_mark", "heavy_check_mark", "ballot_box_with_check"})
_BROADCASTS = frozenset({"here", "channel", "everyone"})
_MARKUP = re.compile(r"<([^<>]*)>")
_MENTION = re.compile(r"<@([A-Z0-9]+)")
_ENTITY = re.compile(r"&(lt|gt|amp);")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&"}
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]?\s+|\n")
_SKIN_TONE = re.compile(r"::skin-tone-\d$")
_TITLE_CHARS = 70
_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Conversation:
    """A channel, private channel, DM or group DM."""

    id: str  # "C0123"
    name: str  # "deploys" (for DMs: "dm-<user display name>")
    private: bool  # private channels, DMs and group DMs


@dataclass(frozen=True)
class _Message:
    ts: str
    key: Decimal
    thread_ts: str | None
    author: str
    body: str
    raw: dict[str, Any]


def render_markup(text: str, users: dict[str, str], channels: dict[str, str]) -> str:
    """Slack markup to readable text: mentions, channel links, links and escapes."""
    out, last = [], 0
    for match in _MARKUP.finditer(text):
        out.append(_unescape(text[last : match.start()]))
        out.append(_render_token(match.group(1), users, channels))
        last = match.end()
    out.append(_unescape(text[last:]))
    return "".join(out)


def _render_token(token: str, users: dict[str, str], channels: dict[str, str]) -> str:
    target, _, label = token.partition("|")
    label = _unescape(label)
    if target.startswith("@"):
        uid = target[1:]
        return "@" + (users.get(uid) or label.removeprefix("@") or uid)
    if target.startswith("#"):
        cid = target[1:]
        return "#" + (channels.get(cid) or label.removeprefix("#") or cid)
    if target.startswith("!"):
        command = target[1:]
        if command in _BROADCASTS:
            return "@" + command
        if label:
            return label
        return "@" + command.removeprefix("subteam^")
    url = _unescape(target)
    if not label or label == url or url in (f"http://{label}", f"https://{label}"):
        return url
    if url == f"mailto:{label}":
        return label
    return f"{label} ({url})"


def _unescape(text: str) -> str:
    # One pass, so "&amp;lt;" becomes the literal "&lt;" someone typed, not "<".
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)


def build_documents(
    conversation: Conversation,
    messages: list[dict],
    users: dict[str, str],
    channels: dict[str, str],
    workspace: str,
    include_bots: bool = False,
    window_seconds: int = 3600,
    max_chars: int = 1200,
) -> tuple[list[Document], list[str]]:
    """Thread documents (and time windows for loose messages), plus warnings (e.g. unknown
    user ids)."""
    unknown: dict[str, None] = {}
    kept: dict[str, _Message] = {}
    for raw in messages:
        message = _prepare(raw, users, channels, include_bots, unknown)
        # The live sync can see a parent twice (history and replies): the first copy wins.
        if message is not None and message.ts not in kept:
            kept[message.ts] = message
    ordered = sorted(kept.values(), key=lambda m: m.key)

    groups: dict[str, list[_Message]] = {}
    for message in ordered:
        groups.setdefault(message.thread_ts or message.ts, []).append(message)
    threads, loose = [], []
    for root, group in groups.items():
        if len(group) > 1 or group[0].ts != root or _int(group[0].raw.get("reply_count")) > 0:
            threads.append((root, group))
        else:
            loose.extend(group)

    documents = [
        _document(conversation, group, root, workspace, max_chars, thread=True)
        for root, group in threads
    ]
    for window in _windows(sorted(loose, key=lambda m: m.key), window_seconds):
        documents.append(
            _document(conversation, window, window[0].ts, workspace, max_chars, thread=False)
        )
    documents.sort(key=lambda d: Decimal(d.metadata["first_ts"]))
    return documents, [f"unknown user id {uid}" for uid in unknown]


def _prepare(
    raw: dict,
    users: dict[str, str],
    channels: dict[str, str],
    include_bots: bool,
    unknown: dict[str, None],
) -> _Message | None:
    """The message as kept (author and rendered body), or None for noise."""
    ts = raw.get("ts")
    key = _ts_key(ts)
    if not isinstance(ts, str) or key is None:
        return None
    subtype = raw.get("subtype")
    bot = bool(raw.get("bot_id")) or subtype == "bot_message"
    if bot and not include_bots:
        return None
    if subtype and subtype not in _CONTENT_SUBTYPES and not (bot and subtype == "bot_message"):
        return None
    text = _str(raw.get("text"))
    if not text.strip() and bot:
        # Bots often say everything in attachments; people's attachments are link previews.
        text = "\n".join(
            _str(a.get("text") or a.get("fallback")) for a in _dicts(raw, "attachments")
        )
    body = render_markup(text, users, channels).strip()
    files = [_str(f.get("title") or f.get("name")) for f in _dicts(raw, "files")]
    body = "\n".join([body, *(f"[file: {name}]" for name in files if name)]).strip()
    if not body:
        return None
    uid = _str(raw.get("user"))
    if bot:
        profile = raw.get("bot_profile")
        named = profile.get("name") if isinstance(profile, dict) else None
        author = raw.get("username") or named or users.get(uid) or raw.get("bot_id")
    else:
        author = users.get(uid) or uid or "unknown"
        if uid and uid not in users:
            unknown[uid] = None
    for mentioned in _MENTION.findall(text):
        if mentioned not in users:
            unknown[mentioned] = None
    thread_ts = raw.get("thread_ts")
    thread_ts = thread_ts if _ts_key(thread_ts) is not None else None
    return _Message(ts, key, thread_ts, str(author or "bot"), body, raw)


def _windows(messages: list[_Message], window_seconds: int) -> list[list[_Message]]:
    windows: list[list[_Message]] = []
    for message in messages:
        if windows and message.key - windows[-1][-1].key < window_seconds:
            windows[-1].append(message)
        else:
            windows.append([message])
    return windows


def _document(
    conversation: Conversation,
    group: list[_Message],
    root: str,
    workspace: str,
    max_chars: int,
    thread: bool,
) -> Document:
    per_message = _message_reactions(group)
    # A message a later one of the thread corrects is not evidence: it is left out of the
    # text and kept in the metadata, so an answer can say what was said before.
    corrected = corrections.superseded(_claims(group, per_message)) if thread else {}
    blocks = [f"{m.author}: {m.body}" for i, m in enumerate(group) if i not in corrected]
    text = _SEPARATOR.join(blocks)
    first_line = _first_line(group[0].body)
    reactions: dict[str, int] = {}
    for counts in per_message:
        for name, count in counts.items():
            reactions[name] = reactions.get(name, 0) + count
    heading = f"#{conversation.name}{HEADING_SEPARATOR}{first_line}"
    chunks = _chunk(blocks, max_chars)
    # The thread changed last when its newest message was posted or any message was edited.
    changed = max(group, key=_changed_at)
    return Document(
        uri=f"https://{workspace}.slack.com/archives/{conversation.id}/p{root.replace('.', '')}",
        title=f"#{conversation.name}: {first_line}",
        # Each message's reactions count too: a ✅ added later (or moved to another reply)
        # changes which answer was accepted, and must re-index the thread.
        content_hash=hashlib.sha256(
            (text + json.dumps([sorted(r.items()) for r in per_message])).encode("utf-8")
        ).hexdigest(),
        chunks=tuple(Chunk(c, heading, position=i) for i, c in enumerate(chunks)),
        mtime=float(group[-1].key),
        metadata={
            "kind": "slack",
            "channel": conversation.name,
            "channel_id": conversation.id,
            "private": conversation.private,
            "participants": list(dict.fromkeys(m.author for m in group)),
            "reply_count": sum(1 for m in group if m.ts != root) if thread else 0,
            "reactions": reactions,
            "resolved": any(name in RESOLVED_REACTIONS for name in reactions),
            "first_ts": group[0].ts,
            "last_ts": group[-1].ts,
            "updated_at": iso(float(_changed_at(changed))),
            "author": changed.author,
            "time_source": "slack",
            "superseded": [
                {
                    "ts": group[i].ts,
                    "author": group[i].author,
                    "text": group[i].body,
                    "corrected_by": group[j].ts,
                    "correction": group[j].body,
                    "cue": cue,
                }
                for i, (j, cue) in sorted(corrected.items())
            ],
            # Loose messages are not a thread: nothing to reply to.
            "thread_ts": root if thread else "",
            # Per message kept, in the order of the text's "author: body" blocks: who said it and
            # its reactions (which reply was accepted), for `kbqa tune data`.
            "messages": [
                {"ts": m.ts, "user": _str(m.raw.get("user")), "author": m.author, "reactions": r}
                for i, (m, r) in enumerate(zip(group, per_message, strict=True))
                if i not in corrected
            ]
            if thread
            else [],
        },
    )


def _claims(group: list[_Message], reactions: list[dict[str, int]]) -> list[corrections.Message]:
    return [
        corrections.Message(m.key, m.author, m.body, _edited(m), frozenset(r))
        for m, r in zip(group, reactions, strict=True)
    ]


def _edited(message: _Message) -> Decimal | None:
    edited = message.raw.get("edited")
    return _ts_key(edited.get("ts")) if isinstance(edited, dict) else None


def _changed_at(message: _Message) -> Decimal:
    key = _edited(message)
    return max(message.key, key) if key is not None else message.key


def _message_reactions(group: list[_Message]) -> list[dict[str, int]]:
    out = []
    for message in group:
        counts: dict[str, int] = {}
        for reaction in _dicts(message.raw, "reactions"):
            name = _SKIN_TONE.sub("", _str(reaction.get("name")))
            count = _int(reaction.get("count")) or len(reaction.get("users") or [])
            if name and count:
                counts[name] = counts.get(name, 0) + count
        out.append(counts)
    return out


def _first_line(body: str) -> str:
    line = next((s.strip() for s in body.splitlines() if s.strip()), "")
    if len(line) <= _TITLE_CHARS:
        return line
    cut = line[: _TITLE_CHARS - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > _TITLE_CHARS // 2 else cut).rstrip(" ,;:-") + "…"


def _chunk(blocks: list[str], max_chars: int) -> list[str]:
    """Blocks packed into chunks of at most max_chars, split only between messages when it can."""
    pieces = [p for block in blocks for p in _split_long(block, max_chars)]
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + len(_SEPARATOR) + len(piece) <= max_chars:
            chunks[-1] += _SEPARATOR + piece
        else:
            chunks.append(piece)
    return chunks


def _split_long(text: str, limit: int) -> list[str]:
    parts = []
    while len(text) > limit:
        ends = [m.end() for m in _SENTENCE_END.finditer(text, 0, limit + 1)]
        cut = ends[-1] if ends else 0
        if cut <= limit // 3:
            cut = text.rfind(" ", 0, limit + 1)
        if cut <= limit // 3:
            cut = limit  # one long word (a URL, a log line): cut it hard
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts


def _ts_key(ts: Any) -> Decimal | None:
    # Slack ts strings are exact ("1712345678.000100"); floats would merge neighbours.
    if not isinstance(ts, str):
        return None
    try:
        key = Decimal(ts)
    except InvalidOperation:
        return None
    return key if key.is_finite() else None


def _dicts(raw: dict, key: str) -> list[dict]:
    # Exports are outside input: one odd field must not stop the whole export.
    value = raw.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
