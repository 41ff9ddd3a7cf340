"""Rendering of answers for every medium (kbqa.render): a pointed answer (the units it rests on
quoted, the words that answer marked), and answers without evidence shown as before."""

import subprocess
import sys
import time
from dataclasses import replace

from kbqa import render
from kbqa.client import answer_from_dict
from kbqa.render import markdown, page, slack, terminal
from kbqa.types import Answer, Citation, Evidence, Hit, Quoted

NOW = time.time()
PORTS = Hit(
    7,
    0.81,
    "Services\n\nThe tracker service listens on port 7300. The billing service listens on 7400.",
    "Services",
    "/srv/docs/ports.md",
    "Services",
    {"mtime": NOW - 3 * 86400},
)
THREAD = Hit(
    9,
    0.52,
    "Yuki: the <!channel> freeze starts 18 Nov; deploys need *two* approvals.",
    "#deploys › freeze",
    "https://larkspur.slack.com/archives/C05DEPLOYS/p1794345300038612",
    "#deploys: freeze",
    {"kind": "slack", "channel": "deploys", "last_ts": str(NOW - 40 * 86400)},
)
UNITS = (
    Evidence(1, "The tracker service listens on port 7300.", "port 7300"),
    Evidence(2, "Yuki: the <!channel> freeze starts 18 Nov; deploys need *two* approvals.", ""),
)
POINTED = Answer(
    question="which port does tracker use?",
    text=" ".join(f"{e.text} [{e.n}]" for e in UNITS),
    abstained=False,
    citations=(Citation(1, PORTS), Citation(2, THREAD)),
    hits=(PORTS, THREAD),
    confidence=0.9,
    mode="pointed",
    span="port 7300",
    evidence=UNITS,
)
GENERATED = Answer(
    question="which port does tracker use?",
    text="The tracker service listens on port 7300 [1].",
    abstained=False,
    citations=(Citation(1, PORTS),),
    hits=(PORTS, THREAD),
    mode="generated",
    span="7300",
)
ABSTAINED = Answer(
    question="zebra?",
    text="I couldn't find this in the knowledge base.",
    abstained=True,
    citations=(),
    hits=(PORTS, PORTS, THREAD),
    reason="best passage's similarity 0.12 < min_hit_score 0.35",
)


def bold(text: str) -> str:
    return f"**{text}**"


def test_terminal_quotes_each_unit_with_its_span_in_bold_then_the_sources():
    out = terminal.answer(POINTED, bold=bold).splitlines()
    # The copied words are marked inside their sentence, never shown on their own.
    assert out[0] == "> The tracker service listens on **port 7300**. [1]"
    assert (
        out[1] == "> Yuki: the <!channel> freeze starts 18 Nov; deploys need *two* approvals. [2]"
    )
    assert out[2] == ""
    assert (
        out[3] == "[1] Services — file:///srv/docs/ports.md · 3 days ago"
    )  # a link a terminal opens
    assert out[4].startswith("[2] #deploys: freeze — https://larkspur.slack.com/")
    assert out[4].endswith(" · 40 days ago")


def test_terminal_streamed_units_and_the_rest_make_the_same_output():
    streamed = [terminal.evidence_lines(e, first=i == 0, bold=bold) for i, e in enumerate(UNITS)]
    rest = terminal.answer(POINTED, evidence_shown=True, bold=bold)
    assert "\n".join([*streamed, rest]) == terminal.answer(POINTED, bold=bold)


def test_terminal_without_evidence_is_unchanged():
    # A generated answer: its text (the model's words, not marked), a blank line, the sources.
    assert terminal.answer(GENERATED, bold=bold) == (
        "The tracker service listens on port 7300 [1].\n\n[1] Services — file:///srv/docs/ports.md"
        " · 3 days ago"
    )
    quoted = Answer(**{**GENERATED.__dict__, "mode": "extracted"})
    assert terminal.answer(quoted, bold=bold).startswith(
        "The tracker service listens on port **7300**"
    )
    lines = terminal.answer(ABSTAINED).splitlines()
    assert lines[0] == "I couldn't find this in the knowledge base. Closest sources:"
    assert len(lines) == 4  # two documents (the repeated one once), then why
    # In plain words with a next step; the numbers stay in the JSON's reason. A command in
    # it without backticks, as the terminal shows code elsewhere.
    assert lines[-1] == (
        "(nothing in the knowledge base is close enough to this question; if it should be, "
        "ask in the words the docs would use, or check kbqa status)"
    )


def test_markdown_quotes_each_unit_and_streams_the_same_text():
    text = markdown.markdown(POINTED)
    assert text.startswith("> The tracker service listens on **port 7300**. [1]\n\n> Yuki: the")
    assert text.endswith(
        "\n\nSources:\n[1] Services — /srv/docs/ports.md · 3 days ago\n[2] #deploys: freeze"
        " — https://larkspur.slack.com/archives/C05DEPLOYS/p1794345300038612 · 40 days ago"
    )
    pieces = "".join(markdown.evidence_piece(e, first=i == 0) for i, e in enumerate(UNITS))
    assert pieces == markdown.body(POINTED)
    assert markdown.body(GENERATED) == GENERATED.text  # no evidence: the text as it is


def test_slack_quotes_each_unit_with_the_span_in_bold_and_pings_no_one():
    text, blocks = slack.answer_blocks(POINTED)
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert sections == [
        ">The tracker service listens on *port 7300*. [1]",
        ">Yuki: the &lt;!channel&gt; freeze starts 18 Nov; deploys need *two* approvals. [2]",
    ]
    sources = blocks[-1]["elements"]
    assert sources[0]["text"] == "[1] Services — `ports.md` · 3 days ago"
    assert sources[1]["text"].endswith(" · #deploys · 40 days ago")
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text


def test_slack_bot_message_keeps_its_feedback_buttons():
    from kbqa.integrations.slack.blocks import answer_blocks

    _, blocks = answer_blocks(POINTED)
    assert blocks[-1]["type"] == "actions" and len(blocks[-1]["elements"]) == 2


def test_page_data_carries_sources_evidence_and_why():
    sources = page.sources(POINTED)
    assert [s["n"] for s in sources["citations"]] == [1, 2]
    assert sources["citations"][1]["link"].startswith("https://larkspur.slack.com/")
    assert sources["citations"][1]["channel"] == "deploys" and sources["hits"][0]["age"]
    data = page.answer_data(POINTED)
    # The answer's HTML is its units as quotes, formatted as the evidence shows them.
    quoted = [f'<blockquote data-n="{e["n"]}">{e["html"]}</blockquote>' for e in data["evidence"]]
    assert data["html"] == "".join(quoted)
    assert data["evidence"][0].pop("html") == "<p>The tracker service listens on port 7300.</p>"
    assert data["evidence"][0] == {
        "n": 1,
        "text": UNITS[0].text,
        "span": "port 7300",
        "before": "",
        "after": "",
        "probability": 1.0,
    }
    assert "why" not in data
    assert page.evidence_data(UNITS[1])["quote"] is True
    assert page.answer_data(ABSTAINED)["why"] == render.why_no_answer(ABSTAINED)
    assert page.sse("evidence", {"n": 1}) == 'event: evidence\ndata: {"n": 1}\n\n'


def test_why_no_answer_is_plain_words_with_a_next_step():
    why = render.why_no_answer(ABSTAINED)
    assert "min_hit_score" not in why and "kbqa status" in why
    assert ABSTAINED.to_dict()["reason"] == ABSTAINED.reason  # the numbers, for debugging
    nothing = Answer("q", "I couldn't find this.", True, (), ())
    assert "nothing in the knowledge base (that you may see)" in render.why_no_answer(nothing)
    # A pick the checks rejected: the passages were close (the walkthrough's "on-call
    # compensation", confidence 0.94), so the answer does not say they do not answer it.
    unsure = replace(
        ABSTAINED,
        reason="a unit the model named was rejected, so its answer is not sure "
        "(pointer_margin: the model's margin 0.11 < 0.2)",
    )
    why = render.why_no_answer(unsure)
    assert why.startswith("the model was not sure which sentence") and "do not answer" not in why


def test_an_answer_survives_its_json_with_its_evidence():
    again = answer_from_dict(POINTED.to_dict())
    assert again.evidence == POINTED.evidence and again.mode == "pointed"
    assert again.span == POINTED.span and [c.n for c in again.citations] == [1, 2]
    assert terminal.answer(again).splitlines()[:2] == terminal.answer(POINTED).splitlines()[:2]


def test_sources_are_shown_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert render.display_uri(str(tmp_path / "docs" / "a.md")) == "docs/a.md"
    assert render.display_uri("https://x.example/a") == "https://x.example/a"
    assert render.age(PORTS, now=NOW) == "3 days ago" and render.age(THREAD, now=NOW + 1e9)


def test_no_interface_imports_the_command_line():
    code = (
        "import sys, kbqa.serve, kbqa.integrations.slack, kbqa.render.terminal, kbqa.commands.tune,"
        "kbqa.commands.tokens;"
        "assert 'kbqa.cli' not in sys.modules, 'kbqa.cli imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_table_row_reads_as_a_sentence_and_a_command_keeps_its_backticks():
    row = Evidence(1, "Service: route-planner; Language: Rust; Port: 7200; Owner: Routing", "7200")
    command = Evidence(2, "Rotate it: `vault write -f database/rotate-role/staging-app`", "vault")
    cited = (Citation(1, PORTS), Citation(2, PORTS))
    answer = Answer(**{**POINTED.__dict__, "evidence": (row, command), "citations": cited})
    said = "route-planner: language Rust, port 7200, owner Routing."
    assert terminal.quote(row).startswith(f"> {said}")
    assert markdown.quote(row).startswith("> route-planner: language Rust, port **7200**")
    _, blocks = slack.answer_blocks(answer)
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert texts[0].startswith(">route-planner: language Rust, port *7200*")
    # Inside `code` a * is shown as it is: the command stays copyable.
    assert texts[1] == ">Rotate it: `vault write -f database/rotate-role/staging-app` [2]"
    assert "`vault write -f database/rotate-role/staging-app`" in markdown.quote(command)
    assert blocks[0]["elements"][0]["text"] == "_Quoted from the sources:_"


def test_a_placeholder_in_a_quoted_command_survives_a_markdown_reader():
    # A chat client renders the OpenAI reply as CommonMark, which passes "<service>" through
    # as an HTML tag: the command read "promote  --from staging" (issue 36's replay).
    from markdown_it import MarkdownIt

    unit = Evidence(1, "Promote: larkctl deploy promote <service> --from staging --to prod.")
    coded = Evidence(2, "Run `larkctl logs <service>` to see it.")
    shown = MarkdownIt("commonmark").render(markdown.quote(unit) + "\n\n" + markdown.quote(coded))
    assert "promote &lt;service&gt; --from staging" in shown
    assert "<code>larkctl logs &lt;service&gt;</code>" in shown  # as written inside code


def test_what_a_follow_up_searched_for_is_shown_in_every_medium():
    searched = "and which port does billing use? (tracker port)"
    answer = Answer(**{**GENERATED.__dict__, "searched": searched, "note": ""})
    assert f"(searched for: {searched})" in terminal.answer(answer)
    assert markdown.body(answer).startswith(f"_searched for: {searched}_")
    _, blocks = slack.answer_blocks(answer)
    assert blocks[0]["type"] == "context" and "searched for:" in blocks[0]["elements"][0]["text"]
    assert page.answer_data(answer)["searched"] == searched


def test_an_html_passage_is_shown_with_its_steps_and_code_and_none_of_its_markup(kb, tmp_path):
    """A Sphinx-style page: the page shows the passage's numbered steps, inline commands as code
    and its code block, written as Markdown from the page's text; markup in the text, comments
    and scripts never reach the page as HTML."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "restart.html").write_text(
        "\n<!DOCTYPE html>\n<html><head><title>Restarting a program</title></head><body>"
        '<div role="main"><h1>Restarting a program</h1>'
        '<p>Run <code class="docutils literal"><span class="pre">supervisorctl</span> '
        '<span class="pre">reread</span></code> after an edit; &lt;img src=x onerror=alert(1)&gt;'
        " stays text.</p><!-- an editor's note -->"
        "<ol><li><p>Stop it with <code>supervisorctl stop web</code>.</p></li>"
        "<li><p>Edit the program's section.</p></li>"
        "<li><p>Start it again with <code>supervisorctl start web</code>.</p></li></ol>"
        "<dl><dt><code>-n, --nodaemon</code></dt><dd><p>Run in the foreground.</p></dd></dl>"
        '<div class="highlight"><pre>[program:web]\ncommand=/usr/bin/web --port 8000\n</pre></div>'
        "<script>document.title = 'pwned'</script></div></body></html>"
    )
    kb.ingest([folder])
    (hit,) = kb.retriever.search("restart supervisorctl stop web", k=1)
    shown = page.source_data(render.Source(1, hit))["html"]
    assert "<code>supervisorctl reread</code>" in shown
    assert "<ol>" in shown and shown.count("<li>") == 3
    assert "<code>supervisorctl stop web</code>" in shown
    assert "<pre><code>[program:web]\ncommand=/usr/bin/web --port 8000\n</code></pre>" in shown
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown and "<img" not in shown
    assert "<script" not in shown and "pwned" not in shown and "editor" not in shown
    assert "<code>-n, --nodaemon</code>" in shown and shown.count("Run in the foreground") == 1
    # A step quoted alone is shown as the numbered item it is.
    step = page.unit_html(Evidence(1, "Start it again with supervisorctl start web."), hit)
    assert '<ol start="3">' in step and "<code>supervisorctl start web</code>" in step
    # A procedure quoted whole (a paragraph a step) is shown as its numbered steps, with code.
    steps = "Stop it with supervisorctl stop web.\n\nEdit the program's section."
    shown = page.unit_html(Evidence(1, steps), hit)
    assert "<ol>" in shown and shown.count("<li>") == 2, shown
    assert "<code>supervisorctl stop web</code>" in shown
    # The file gone: the passage's plain text, as before.
    (folder / "restart.html").unlink()
    assert "<ol>" not in page.source_data(render.Source(1, hit))["html"]


def test_a_quote_shows_the_sentences_around_its_unit_everywhere():
    unit = Evidence(
        1, "Its files are written by the exporter job.", "exporter job",
        before="The export moved in May.", after="The job keeps them for 30 days.",
    )  # fmt: skip
    want = "The export moved in May. Its files are written by the **exporter job**. The job"
    assert want in markdown.quote(unit)
    assert want.replace("**", "*") in slack.quote(unit)
    assert "by the exporter job. The job keeps them for 30 days. [1]" in terminal.quote(unit)
    data = page.evidence_data(unit)
    assert data["before"] == unit.before and "30 days" in data["html"]
    assert "moved in May" in page.unit_html(unit, None)


def test_an_abstention_within_named_sources_says_only_they_were_searched():
    from kbqa.assistant.followup import told

    low = replace(ABSTAINED, reason="best passage's similarity 0.22 < min_hit_score 0.35")
    why = render.model.why_no_answer(told(low, "zebra?", ["#deploys"]))
    assert why.startswith("nothing in the knowledge base is close enough")
    assert why.endswith("; only the source '#deploys' was searched")
    assert "only the source" not in render.model.why_no_answer(told(low, "zebra?"))
    none = render.model.why_no_answer(told(replace(low, hits=()), "zebra?", ["nope/**"]))
    assert none.startswith("no document you may see matches the source 'nope/**'")
    assert "leave it out to search everything" in none


SNAPSHOT = Evidence(
    1,
    "Before a migration that rewrites a table larger than 10 GB, take a manual snapshot:",
    after="\n```\naws rds create-db-snapshot --db-instance-identifier larkdb-prod \\\n"
    "  --db-snapshot-identifier pre-migration-<ticket-key>\n```",
)


def test_a_quoted_sentence_that_announces_a_command_is_shown_with_it_in_every_medium():
    command = "aws rds create-db-snapshot --db-instance-identifier larkdb-prod \\"
    answer = Answer(**{**POINTED.__dict__, "evidence": (SNAPSHOT,), "span": ""})
    # Markdown (the OpenAI endpoint): the citation after the sentence, the command fenced in
    # the quote, the fence closed on its own line.
    said = markdown.quote(SNAPSHOT).splitlines()
    assert said[0].endswith("take a manual snapshot: [1]")
    assert said[1:] == ["> ```", f"> {command}", ">   --db-snapshot-identifier "
                        "pre-migration-<ticket-key>", "> ```"]  # fmt: skip
    # The terminal: the command indented under the sentence, without fences.
    shown = terminal.quote(SNAPSHOT).splitlines()
    assert shown[0].endswith("[1]") and shown[1] == f">     {command}" and "```" not in shown[2]
    # Slack: a code block in the quote; the page: a code block the copy button finds.
    _, blocks = slack.answer_blocks(answer)
    quoted = next(b["text"]["text"] for b in blocks if b["type"] == "section")
    assert quoted.splitlines()[1:3] == [">```", f">{command}"]
    html = page.answer_data(answer)["evidence"][0]["html"]
    assert "<pre><code>aws rds create-db-snapshot" in html and "&lt;ticket-key&gt;" in html


def test_code_in_a_slack_threads_title_is_shown_as_code_where_the_medium_has_code():
    title = "#deploys: Deploying dispatch-api `a41f9c2` to prod <soon> __now__…"
    thread = replace(THREAD, title=title, heading=title.replace(": ", " › ", 1))
    answer = replace(POINTED, citations=(Citation(1, PORTS), Citation(2, thread)))
    # The terminal: without the backticks, as a Markdown file's code reads there.
    cited = [line for line in terminal.answer(answer).splitlines() if line.startswith("[2]")]
    assert cited == [
        "[2] #deploys: Deploying dispatch-api a41f9c2 to prod <soon> __now__…"
        f" — {THREAD.uri} · 40 days ago"
    ]
    # Slack keeps them (its mrkdwn shows code); the page shows <code>, the rest escaped.
    assert "`a41f9c2`" in slack.source_line(render.Source(2, thread))
    assert page.code_html(title) == (
        "#deploys: Deploying dispatch-api <code>a41f9c2</code> to prod &lt;soon&gt; __now__…"
    )


def test_a_quoted_table_row_in_an_extractive_answer_reads_as_a_sentence_in_the_terminal():
    text = (
        "Service: tracker; Language: Go; Port: 7300; Owner: Tracking [1]. "
        "The billing service listens on 7400 [2]."
    )
    quoted = replace(GENERATED, text=text, mode="extracted", span="7300")
    # The row as the pointed path shows it, its citation and copied words kept; prose as is.
    said = terminal.answer(quoted, bold=bold).splitlines()
    assert said[0] == (
        "tracker: language Go, port **7300**, owner Tracking [1]. "
        "The billing service listens on 7400 [2]."
    )
    assert said[1] == "(quoted from the sources)"  # as the page and Slack label a quote
    # A generated answer is the model's own words: shown as written.
    assert terminal.answer(replace(quoted, mode="generated")).startswith("Service: tracker;")


def test_a_quoted_table_row_reads_as_a_sentence_in_the_openai_reply_streamed_or_whole():
    text = "Service: tracker; Language: Go; Port: 7300; Owner: Tracking [1]."
    quoted = replace(GENERATED, text=text, mode="extracted", span="7300")
    said = "tracker: language Go, port 7300, owner Tracking [1]."
    assert markdown.body(quoted) == said == markdown.text_piece(Quoted(text))
    # A placeholder in a quoted command survives a Markdown reader, as in a pointed quote.
    command = Quoted("Promote: larkctl deploy promote <service> --from staging [1].")
    assert "promote \\<service> --from" in markdown.text_piece(command)
    # The model's own words are shown as written.
    assert markdown.body(replace(quoted, mode="generated")) == text == markdown.text_piece(text)


def test_the_terminal_shows_a_quoted_slack_messages_code_without_backticks():
    said = "Yuki: run `kubectl rollout restart deploy/tracker` after the freeze."
    unit = Evidence(2, said, "kubectl rollout restart")
    pointed = replace(POINTED, evidence=(unit,), citations=(Citation(2, THREAD),))
    assert terminal.answer(pointed, bold=bold).splitlines()[0] == (
        "> Yuki: run **kubectl rollout restart** deploy/tracker after the freeze. [2]"
    )
    quoted = replace(GENERATED, text=said[:-1] + " [1].", mode="extracted", span="")
    assert terminal.answer(quoted).splitlines()[0] == (
        "Yuki: run kubectl rollout restart deploy/tracker after the freeze [1]."
    )
    # Slack and Markdown show code as code: their backticks stay.
    assert "`" in slack.quote(unit) and "`" in markdown.quote(unit)
