import json
import shutil
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT
from kbqa.errors import ParseError
from kbqa.ingest.slack import Conversation, build_documents, render_markup
from kbqa.ingest.slack_export import is_slack_export, read_export

EXPORT = ROOT / "examples" / "slack-export"
USERS = {"U1": "Maya Okafor", "U2": "Greta Vos", "U3": "Jonas Weber"}
CHANNELS = {"C1": "eng-help", "C2": "deploys"}
ENG_HELP = Conversation("C1", "eng-help", False)
T0 = 1_794_000_000  # a Monday in November 2026


def msg(user: str, seconds: float, text: str, thread: float | None = None, **extra) -> dict:
    """A raw Slack message `seconds` after T0 (ts and thread_ts as Slack writes them)."""
    m = {"type": "message", "user": user, "text": text, "ts": _ts(seconds)}
    if thread is not None:
        m["thread_ts"] = _ts(thread)
    return {**m, **extra}


def _ts(seconds: float) -> str:
    return f"{T0 + int(seconds)}.{round((seconds % 1) * 1e6):06d}"


def build(messages: list[dict], **kwargs):
    return build_documents(ENG_HELP, messages, USERS, CHANNELS, "larkspur", **kwargs)


def thread_messages() -> list[dict]:
    return [
        msg("U3", 0, "How do I get access to the staging Grafana?", 0, reply_count=2),
        msg("U2", 60, "Run `larkctl access grant grafana-staging --user you`.", 0),
        msg("U3", 120, "Worked, thanks!", 0),
    ]


# --- render_markup


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ask <@U2>", "ask @Greta Vos"),
        ("ask <@U999>", "ask @U999"),
        ("ask <@U999|greta>", "ask @greta"),
        ("see <#C2|deploys>", "see #deploys"),
        ("see <#C2>", "see #deploys"),
        ("see <#C77|inc-1>", "see #inc-1"),
        ("see <#C77>", "see #C77"),
        ("<https://x.io/pr/1|PR #1> merged", "PR #1 (https://x.io/pr/1) merged"),
        ("<https://x.io/pr/1>", "https://x.io/pr/1"),
        ("<!here> <!channel> <!everyone>", "@here @channel @everyone"),
        ("<!here|here> ping", "@here ping"),
        ("cc <!subteam^S1|@tracking-team>", "cc @tracking-team"),
        ("a &lt;service&gt; &amp; b", "a <service> & b"),
        ("literal &amp;lt;", "literal &lt;"),
        ("<https://x.io/?a=1&amp;b=2|A &amp; B>", "A & B (https://x.io/?a=1&b=2)"),
        ("mail <mailto:sec@larkspur.io|sec@larkspur.io>", "mail sec@larkspur.io"),
    ],
)
def test_render_markup(text: str, expected: str):
    assert render_markup(text, USERS, CHANNELS) == expected


def test_a_display_name_is_not_unescaped():
    assert render_markup("<@U1>", {"U1": "R&amp;D"}, {}) == "@R&amp;D"


# --- threads


def test_one_document_per_thread_with_replies_in_ts_order():
    messages = thread_messages()
    docs, warnings = build([messages[2], messages[0], messages[1]])
    assert warnings == []
    [doc] = docs
    text = "\n\n".join(c.text for c in doc.chunks)
    assert text == (
        "Jonas Weber: How do I get access to the staging Grafana?\n\n"
        "Greta Vos: Run `larkctl access grant grafana-staging --user you`.\n\n"
        "Jonas Weber: Worked, thanks!"
    )
    assert doc.uri == f"https://larkspur.slack.com/archives/C1/p{T0}000000"
    assert doc.title == "#eng-help: How do I get access to the staging Grafana?"
    assert doc.mtime == float(T0 + 120)
    assert doc.metadata == {
        "kind": "slack",
        "channel": "eng-help",
        "channel_id": "C1",
        "private": False,
        "participants": ["Jonas Weber", "Greta Vos"],
        "reply_count": 2,
        "reactions": {},
        "resolved": False,
        "first_ts": f"{T0}.000000",
        "last_ts": f"{T0 + 120}.000000",
        "updated_at": "2026-11-06T21:22:00+00:00",  # T0 + 120, the newest message
        "author": "Jonas Weber",
        "time_source": "slack",
        "superseded": [],  # no message of it corrects another
        "thread_ts": f"{T0}.000000",
        "messages": [
            {"ts": f"{T0}.000000", "user": "U3", "author": "Jonas Weber", "reactions": {}},
            {"ts": f"{T0 + 60}.000000", "user": "U2", "author": "Greta Vos", "reactions": {}},
            {"ts": f"{T0 + 120}.000000", "user": "U3", "author": "Jonas Weber", "reactions": {}},
        ],
    }


def test_a_thread_spanning_days_is_one_document():
    messages = [
        msg("U3", 0, "What batch size does the tracker use?", 0, reply_count=1),
        msg("U1", 40 * 3600, "Something loose in between"),
        msg("U2", 2 * 86400, "5,000 pings or every 2 seconds.", 0),
    ]
    docs, _ = build(messages)
    thread = next(d for d in docs if d.metadata["thread_ts"])
    assert thread.metadata["reply_count"] == 1
    assert "5,000 pings" in thread.chunks[0].text
    assert [d.metadata["first_ts"] for d in docs] == [_ts(0), _ts(40 * 3600)]


def test_parents_are_recognised_with_or_without_thread_ts():
    with_field = build(thread_messages())[0]
    without = build(
        [
            {k: v for k, v in m.items() if k != "thread_ts" or m["ts"] != v}
            for m in thread_messages()
        ]
    )[0]
    assert len(with_field) == len(without) == 1
    assert with_field[0].content_hash == without[0].content_hash


def test_replies_without_their_parent_still_make_a_thread():
    docs, _ = build([msg("U2", 60, "Late answer", 0), msg("U3", 90, "thanks", 0)])
    [doc] = docs
    assert doc.uri.endswith(f"/p{T0}000000")
    assert doc.metadata["thread_ts"] == _ts(0)
    assert doc.metadata["reply_count"] == 2


def test_a_message_seen_twice_is_kept_once():
    messages = thread_messages()
    [doc] = build([*messages, dict(messages[1])])[0]
    assert doc.metadata["reply_count"] == 2


def test_ts_is_sorted_as_a_number_and_kept_as_a_string():
    # "999999999.5" sorts after "1000000000.1" as text and equals it as a 32-bit float.
    messages = [
        {
            "user": "U1",
            "text": "second",
            "ts": "1000000000.000100",
            "thread_ts": "999999999.500000",
        },
        {"user": "U2", "text": "first", "ts": "999999999.500000", "thread_ts": "999999999.500000"},
        {"user": "U3", "text": "third", "ts": "1000000000.000101", "thread_ts": "999999999.500000"},
    ]
    [doc] = build(messages)[0]
    assert [line.split(": ")[1] for line in doc.chunks[0].text.split("\n\n")] == [
        "first",
        "second",
        "third",
    ]
    assert doc.metadata["first_ts"] == "999999999.500000"
    assert doc.metadata["last_ts"] == "1000000000.000101"
    assert all(isinstance(doc.metadata[k], str) for k in ("first_ts", "last_ts", "thread_ts"))


def test_unknown_user_ids_warn_once_and_render_raw():
    messages = [
        msg("U999", 0, "hi <@U998>, <@U999> here", 0, reply_count=2),
        msg("U999", 10, "again", 0),
        msg("U1", 20, "welcome <@U998>", 0),
    ]
    [doc], warnings = build(messages)
    assert warnings == ["unknown user id U999", "unknown user id U998"]
    assert doc.chunks[0].text.startswith("U999: hi @U998, @U999 here")
    assert doc.metadata["participants"] == ["U999", "Maya Okafor"]


# --- loose messages


def test_loose_messages_are_grouped_into_time_windows():
    messages = [
        msg("U1", 0, "lunch?"),
        msg("U2", 3599, "yes"),
        msg("U3", 3599 + 3600, "an hour later: a new window"),
        msg("U1", 3599 + 3601, "same window"),
    ]
    docs, _ = build(messages)
    assert [d.metadata["participants"] for d in docs] == [
        ["Maya Okafor", "Greta Vos"],
        ["Jonas Weber", "Maya Okafor"],
    ]
    assert docs[1].uri == f"https://larkspur.slack.com/archives/C1/p{T0 + 7199}000000"
    assert docs[1].title == "#eng-help: an hour later: a new window"
    assert all(d.metadata["thread_ts"] == "" and d.metadata["reply_count"] == 0 for d in docs)
    assert len(build(messages, window_seconds=10)[0]) == 3


def test_threads_and_loose_messages_are_kept_apart():
    messages = [*thread_messages(), msg("U1", 30, "unrelated chatter")]
    docs, _ = build(messages)
    assert len(docs) == 2
    assert "unrelated" not in docs[0].chunks[0].text
    assert docs[1].chunks[0].text == "Maya Okafor: unrelated chatter"


# --- noise


@pytest.mark.parametrize(
    "subtype",
    [
        "channel_join",
        "channel_leave",
        "channel_topic",
        "channel_purpose",
        "channel_name",
        "channel_archive",
        "pinned_item",
        "bot_add",
        "tombstone",
    ],
)
def test_noise_subtypes_are_skipped(subtype: str):
    docs, _ = build([msg("U1", 0, "<@U1> did something", subtype=subtype)])
    assert docs == []


def test_bot_messages_are_skipped_unless_asked_for():
    messages = [
        msg("U1", 0, "deploying", 0, reply_count=2),
        {
            "type": "message",
            "subtype": "bot_message",
            "bot_id": "B1",
            "username": "Larkbot",
            "text": "Canary started",
            "ts": _ts(10),
            "thread_ts": _ts(0),
        },
        msg("U9", 20, "I am an app", 0, bot_id="B2", bot_profile={"name": "Deploybot"}),
    ]
    [doc], warnings = build(messages)
    assert doc.chunks[0].text == "Maya Okafor: deploying"
    assert warnings == []
    [doc], warnings = build(messages, include_bots=True)
    assert doc.chunks[0].text.split("\n\n") == [
        "Maya Okafor: deploying",
        "Larkbot: Canary started",
        "Deploybot: I am an app",
    ]
    assert warnings == []


def test_empty_messages_are_skipped():
    assert build([msg("U1", 0, ""), msg("U2", 1, "   "), {"user": "U1", "ts": _ts(2)}])[0] == []


def test_broadcast_replies_and_file_shares_are_kept():
    messages = [
        *thread_messages(),
        msg("U2", 150, "Also: access lasts 90 days.", 0, subtype="thread_broadcast"),
        msg(
            "U1", 9000, "diagram", subtype="file_share", files=[{"name": "a.png", "title": "Flow"}]
        ),
        msg("U1", 9001, "", subtype="file_share", files=[{"name": "b.pdf"}]),
    ]
    thread, files = build(messages)[0]
    assert thread.chunks[0].text.endswith("Greta Vos: Also: access lasts 90 days.")
    assert thread.metadata["reply_count"] == 3
    assert (
        files.chunks[0].text == "Maya Okafor: diagram\n[file: Flow]\n\nMaya Okafor: [file: b.pdf]"
    )


def test_odd_fields_do_not_stop_the_rest():
    messages = [
        msg("U1", 0, None, reactions="lots", files=["x"]),
        msg("U2", 1, "still here", reactions=[{"name": None}, "eyes"], attachments=7),
        {"user": "U3", "text": "no ts"},
        {"user": "U3", "text": "bad ts", "ts": "yesterday"},
        msg("U3", 2, "bad thread_ts", thread_ts=12.5),
        msg("U9", 3, "bot", bot_id="B1", bot_profile="Deploybot"),
    ]
    [doc], _ = build(messages, include_bots=True)
    assert doc.chunks[0].text.split("\n\n") == [
        "Greta Vos: still here",
        "Jonas Weber: bad thread_ts",
        "B1: bot",
    ]


# --- reactions


def test_reactions_are_summed_and_a_check_mark_resolves():
    messages = thread_messages()
    messages[0]["reactions"] = [{"name": "eyes", "users": ["U1", "U2"], "count": 2}]
    messages[1]["reactions"] = [
        {"name": "white_check_mark", "users": ["U3"], "count": 1},
        {"name": "eyes", "users": ["U3"], "count": 1},
        {"name": "+1::skin-tone-3", "users": ["U3"], "count": 1},
    ]
    [doc] = build(messages)[0]
    assert doc.metadata["reactions"] == {"eyes": 3, "white_check_mark": 1, "+1": 1}
    assert doc.metadata["resolved"] is True


@pytest.mark.parametrize(
    "name, resolved",
    [
        ("heavy_check_mark", True),
        ("ballot_box_with_check", True),
        ("white_check_mark", True),
        ("thumbsup", False),
    ],
)
def test_resolved_check_marks(name: str, resolved: bool):
    messages = thread_messages()
    messages[2]["reactions"] = [{"name": name, "users": ["U3"], "count": 1}]
    assert build(messages)[0][0].metadata["resolved"] is resolved


# --- chunks, titles and hashes


def test_chunks_split_at_message_boundaries():
    messages = [msg("U1", 0, "Question about deploys?", 0, reply_count=6)] + [
        msg("U2", 10 * i, f"Answer number {i}. " + "x" * 60, 0) for i in range(1, 7)
    ]
    [doc] = build(messages, max_chars=200)[0]
    assert len(doc.chunks) > 1
    assert [c.position for c in doc.chunks] == list(range(len(doc.chunks)))
    for chunk in doc.chunks:
        assert len(chunk.text) <= 200
        assert chunk.heading == "#eng-help › Question about deploys?"
        assert all(
            line.startswith(("Maya Okafor: ", "Greta Vos: ")) for line in chunk.text.split("\n\n")
        )
    assert "\n\n".join(c.text for c in doc.chunks).count("Answer number") == 6


def test_a_long_message_is_split_on_sentences():
    sentence = "The tracker flushes every five thousand pings. "
    messages = [msg("U1", 0, "Batch size?", 0, reply_count=1), msg("U2", 5, sentence * 12, 0)]
    [doc] = build(messages, max_chars=150)[0]
    texts = [c.text for c in doc.chunks]
    assert all(len(t) <= 150 for t in texts)
    assert all(t.endswith(("?", ".")) for t in texts)
    joined = " ".join(texts)
    assert joined.count("five thousand") == 12


def test_a_long_word_is_cut_hard():
    [doc] = build([msg("U1", 0, "y" * 500)], max_chars=100)[0]
    assert [len(c.text) for c in doc.chunks] == [100, 100, 100, 100, 100, 13]


def test_long_titles_are_truncated():
    text = "How do I " + "really " * 20 + "deploy?\nsecond line"
    [doc] = build([msg("U1", 0, text)])[0]
    title = doc.title.removeprefix("#eng-help: ")
    assert title.endswith("…") and len(title) <= 70
    assert doc.chunks[0].heading == f"#eng-help › {title}"
    assert "second line" not in doc.title


def test_content_hash_is_stable_and_changes_with_a_new_reply():
    messages = thread_messages()
    first = build(messages)[0][0].content_hash
    assert build(list(reversed(messages)))[0][0].content_hash == first
    longer = [*messages, msg("U1", 500, "Also works for prod Grafana.", 0)]
    assert build(longer)[0][0].content_hash != first


def test_private_conversations_are_marked():
    dm = Conversation("D1", "dm-Maya Okafor", True)
    [doc], _ = build_documents(dm, thread_messages(), USERS, CHANNELS, "larkspur")
    assert doc.metadata["private"] is True
    assert doc.title.startswith("#dm-Maya Okafor: ")
    assert doc.uri.startswith("https://larkspur.slack.com/archives/D1/p")


# --- the example export


def by_title(docs) -> dict:
    return {d.title: d for d in docs}


def text_of(doc) -> str:
    return "\n\n".join(c.text for c in doc.chunks)


def find(docs, phrase: str):
    [doc] = [d for d in docs if phrase in text_of(d)]
    return doc


def test_the_example_export_reads_cleanly():
    docs, problems = read_export(EXPORT, "larkspur")
    assert problems == []
    assert is_slack_export(EXPORT)
    assert not is_slack_export(ROOT / "examples" / "handbook")
    threads = [d for d in docs if d.metadata["thread_ts"]]
    assert len(threads) >= 10
    assert {d.metadata["channel"] for d in docs} == {
        "eng-help",
        "deploys",
        "incidents",
        "random",
        "sec-private",
    }
    grafana = find(docs, "larkctl access grant grafana-staging")
    assert grafana.metadata["resolved"] is True
    assert "#sec-private" in text_of(grafana) and "@Lucia Ferreira" in text_of(grafana)
    assert "Jonas Weber has joined" not in "".join(text_of(d) for d in docs)
    secret = find(docs, "next one is on 2026-12-01")
    assert secret.metadata["private"] is True
    assert secret.metadata["channel"] == "sec-private"
    assert secret.uri.startswith("https://larkspur.slack.com/archives/G05SECPRIV/p")
    # Tomasz Brenner has no display name: his real name stands in.
    assert "Tomasz Brenner" in find(docs, "What did we change").metadata["participants"]
    argo = find(docs, "rollout undo deployment/<service>")
    assert argo.title.startswith("#deploys: @channel Argo CD")
    assert "PR #4821 (https://github.com/larkspur-labs/dispatch-api/pull/4821)" in text_of(
        find(docs, "a41f9c2` to prod")
    )
    assert "Canary started" not in "".join(text_of(d) for d in docs)


def test_the_example_thread_spanning_two_days_is_one_document():
    docs, _ = read_export(EXPORT, "larkspur")
    batch = find(docs, "TRACKER_BATCH_SIZE=5000")
    assert "What batch size does the tracker use" in text_of(batch)
    assert "batch size of 2,000" in text_of(batch)
    assert batch.metadata["reply_count"] == 3
    assert (EXPORT / "eng-help" / "2026-11-10.json").read_text().count(
        batch.metadata["thread_ts"]
    ) >= 1
    assert batch.metadata["last_ts"] in (EXPORT / "eng-help" / "2026-11-11.json").read_text()


def test_the_example_bots_are_read_when_asked_for():
    docs, _ = read_export(EXPORT, "larkspur", include_bots=True)
    deploy = find(docs, "a41f9c2` to prod")
    assert "Larkbot: Canary started for dispatch-api a41f9c2" in text_of(deploy)


def zip_export(source: Path, target: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(source).as_posix())
    return target


@pytest.mark.parametrize("prefix", ["", "Larkspur Labs Slack export Nov 9 2026/"])
def test_a_zip_reads_the_same_as_the_folder(tmp_path: Path, prefix: str):
    archive = zip_export(EXPORT, tmp_path / "export.zip", prefix)
    assert is_slack_export(archive)
    from_zip, problems = read_export(archive, "larkspur")
    from_folder, _ = read_export(EXPORT, "larkspur")
    assert problems == []
    assert [(d.uri, d.content_hash, d.metadata) for d in from_zip] == [
        (d.uri, d.content_hash, d.metadata) for d in from_folder
    ]
    assert list(tmp_path.iterdir()) == [archive]  # nothing extracted


def test_a_folder_one_level_down_is_found(tmp_path: Path):
    shutil.copytree(EXPORT, tmp_path / "unzipped" / "Larkspur export")
    assert is_slack_export(tmp_path / "unzipped")
    docs, _ = read_export(tmp_path / "unzipped", "larkspur")
    assert len(docs) == len(read_export(EXPORT, "larkspur")[0])


def test_what_is_not_an_export(tmp_path: Path):
    (tmp_path / "notes.zip").write_bytes(b"not a zip")
    assert not is_slack_export(tmp_path / "notes.zip")
    assert not is_slack_export(tmp_path / "missing")
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("a/b/channels.json", "[]")  # too deep
    assert not is_slack_export(plain)


@pytest.mark.parametrize("as_zip", [False, True])
def test_missing_channels_json_is_a_parse_error(tmp_path: Path, as_zip: bool):
    folder = tmp_path / "export"
    shutil.copytree(EXPORT, folder)
    (folder / "channels.json").unlink()
    path = zip_export(folder, tmp_path / "export.zip") if as_zip else folder
    with pytest.raises(ParseError, match=r"^not a Slack export: channels.json is missing$"):
        read_export(path, "larkspur")


def test_a_malformed_channels_json_is_a_parse_error(tmp_path: Path):
    folder = tmp_path / "export"
    shutil.copytree(EXPORT, folder)
    (folder / "channels.json").write_text("[{")
    with pytest.raises(ParseError, match=r"^channels.json: malformed JSON: "):
        read_export(folder, "larkspur")


def test_a_malformed_day_file_is_a_problem_and_the_rest_goes_on(tmp_path: Path):
    folder = tmp_path / "export"
    shutil.copytree(EXPORT, folder)
    (folder / "deploys" / "2026-11-11.json").write_text('[{"type": "message", "ts": ')
    docs, problems = read_export(folder, "larkspur")
    [(name, reason)] = problems
    assert name == "deploys/2026-11-11.json"
    assert reason.startswith("malformed JSON: ")
    assert len(reason) < 100
    assert not any("Argo CD" in text_of(d) for d in docs)
    assert find(docs, "Friday deploy request").metadata["channel"] == "deploys"
    assert len(docs) == len(read_export(EXPORT, "larkspur")[0]) - 1


def test_unknown_user_ids_are_problems_of_their_conversation(tmp_path: Path):
    folder = tmp_path / "export"
    shutil.copytree(EXPORT, folder)
    day = folder / "random" / "2026-11-12.json"
    messages = json.loads(day.read_text())
    messages.append({"type": "message", "user": "U999", "text": "hi", "ts": "1794531000.000100"})
    day.write_text(json.dumps(messages))
    docs, problems = read_export(folder, "larkspur")
    assert problems == [("random", "unknown user id U999")]
    assert "U999: hi" in text_of(find(docs, "espresso machine"))


def test_a_newer_export_changes_only_the_thread_that_gained_a_reply(tmp_path: Path):
    folder = tmp_path / "export"
    shutil.copytree(EXPORT, folder)
    before = {d.uri: d.content_hash for d in read_export(EXPORT, "larkspur")[0]}
    rate = find(read_export(EXPORT, "larkspur")[0], "Is there a rate limit")
    reply = {
        "type": "message",
        "user": "U05PRIYAR3",
        "text": "Note the burst limit is per API key too.",
        "ts": "1794620000.000100",
        "thread_ts": rate.metadata["thread_ts"],
    }
    (folder / "eng-help" / "2026-11-13.json").write_text(
        json.dumps([*json.loads((folder / "eng-help" / "2026-11-13.json").read_text()), reply])
    )
    after = {d.uri: d.content_hash for d in read_export(folder, "larkspur")[0]}
    assert after.keys() == before.keys()
    assert [uri for uri in before if before[uri] != after[uri]] == [rate.uri]


def write_export(root: Path, files: dict[str, object]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
    return root


def test_private_channels_dms_and_group_dms(tmp_path: Path):
    users = [
        {"id": "U1", "name": "maya", "real_name": "Maya Okafor", "profile": {"display_name": ""}},
        {"id": "U2", "name": "greta.vos", "profile": {"display_name": "Greta"}},
        {"id": "U3", "name": "jonas.weber", "profile": {}},
    ]
    hello = [
        {"type": "message", "user": "U1", "text": "hello <@U2> <@U3>", "ts": "1794000000.000100"}
    ]
    root = write_export(
        tmp_path / "export",
        {
            "users.json": users,
            "channels.json": [{"id": "C1", "name": "general"}, {"id": "C2", "name": "empty"}],
            "groups.json": [{"id": "G1", "name": "secret"}],
            "dms.json": [{"id": "D1", "members": ["U1", "U2"]}],
            "mpims.json": [{"id": "G2", "name": "mpdm-maya--greta--jonas-1", "members": []}],
            "general/2026-11-01.json": hello,
            "secret/2026-11-01.json": hello,
            "D1/2026-11-01.json": hello,
            "mpdm-maya--greta--jonas-1/2026-11-01.json": hello,
            "general/notes.json": {"not": "a day file"},
        },
    )
    docs, problems = read_export(root, "larkspur")
    assert problems == []
    seen = {d.metadata["channel"]: (d.metadata["private"], d.uri) for d in docs}
    assert seen == {
        "general": (False, "https://larkspur.slack.com/archives/C1/p1794000000000100"),
        "secret": (True, "https://larkspur.slack.com/archives/G1/p1794000000000100"),
        "dm-Maya Okafor, Greta": (True, "https://larkspur.slack.com/archives/D1/p1794000000000100"),
        "mpdm-maya--greta--jonas-1": (
            True,
            "https://larkspur.slack.com/archives/G2/p1794000000000100",
        ),
    }
    assert all(text_of(d) == "Maya Okafor: hello @Greta @jonas.weber" for d in docs)


def test_a_day_file_that_is_not_a_list_is_a_problem(tmp_path: Path):
    root = write_export(
        tmp_path / "export",
        {
            "users.json": [],
            "channels.json": [{"id": "C1", "name": "general"}],
            "general/2026-11-01.json": {"messages": []},
        },
    )
    assert read_export(root, "larkspur") == (
        [],
        [("general/2026-11-01.json", "not a list of messages")],
    )
