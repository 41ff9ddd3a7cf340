"""A newcomer's first hour through the HTTP layer: each stumble found on a fresh clone (issue 36),
replayed against the real app."""

import json
import logging
from dataclasses import replace

from kbqa.render import markdown, page, terminal
from kbqa.serve.chat import Message, conversation
from kbqa.serve.usage import count_tokens, usage
from kbqa.types import Citation

QUESTION = "How do I rotate the staging database password?"


def test_loopback_accepts_any_bearer_while_allowed(core, local):
    # Every OpenAI client sends a key; from this machine the README says none is needed.
    response = local.get("/api/status", headers={"Authorization": "Bearer x"})
    assert response.status_code == 200
    core.settings = core.settings.replace(allow_loopback_without_token=False)
    refused = local.get("/api/status", headers={"Authorization": "Bearer x"})
    assert refused.status_code == 401
    assert "kbqa token create" in refused.json()["error"]["message"]


def test_a_bad_token_off_this_machine_says_how_to_get_one(remote):
    bad = remote.get("/api/status", headers={"Authorization": "Bearer kbqa_nope"})
    assert bad.status_code == 401 and "kbqa token create" in bad.json()["error"]["message"]


def test_a_body_that_is_not_a_json_object_gets_a_one_line_hint(local):
    for body in ("question=x", "[1]", '"x"', ""):
        response = local.post("/api/ask", content=body, headers={"content-type": "text/plain"})
        message = response.json()["error"]["message"]
        assert response.status_code == 400, body
        assert "JSON object" in message and '"question"' in message, message
        assert "Input should be" not in message and "\n" not in message
    chat = local.post("/v1/chat/completions", content="hi").json()["error"]["message"]
    assert '"messages"' in chat


def test_each_request_is_logged_in_one_line(local, caplog):
    with caplog.at_level(logging.INFO, logger="kbqa.serve.requests"):
        local.get("/api/status")
        local.post("/api/ask", json={"question": QUESTION})
    lines = [r.getMessage() for r in caplog.records if r.name == "kbqa.serve.requests"]
    assert len(lines) == 2
    assert lines[0].startswith("GET /api/status 200") and "127.0.0.1" in lines[0]
    assert lines[1].startswith("POST /api/ask 200")


def test_usage_counts_tokens_with_the_tokenizer_not_words(core, local):
    reply = local.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]}
    ).json()
    usage = reply["usage"]
    # The fakes have no tokenizer: words and punctuation, so the "?" counts as one.
    assert usage["prompt_tokens"] == len(QUESTION.split()) + 1
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_one_label_per_section(core, local):
    # Two chunks of one section cited: one source line, both numbers on it.
    data = local.post("/api/ask", json={"question": QUESTION}).json()
    hit = data["citations"][0]
    answer = core.ask(QUESTION)
    twice = replace(answer, citations=(answer.citations[0], Citation(2, answer.citations[0].hit)))
    lines = [line for line in terminal.answer(twice).splitlines() if hit["uri"] in line]
    assert len(lines) == 1 and lines[0].startswith("[1][2] ")
    assert markdown.footer(twice).count(hit["heading"].split(" › ")[-1]) == 1


def test_a_file_source_is_a_link_to_a_files_route(core, local):
    data = local.post("/api/ask", json={"question": QUESTION}).json()
    cited = data["citations"][0]
    assert cited["uri"].endswith(".md")
    link = page.sources(core.ask(QUESTION))["citations"][0]["link"]
    assert link.startswith("/files/")
    served = local.get(link)
    assert served.status_code == 200 and "vault write" in served.text
    # Only documents in the knowledge base, and only for callers who may see them.
    assert local.get("/files/etc/passwd").status_code == 404
    assert local.get("/files/" + "%2e%2e/" * 6 + "etc/passwd").status_code == 404


def test_the_openai_reply_links_file_sources_on_the_server(core, remote):
    # A client of /v1/chat/completions runs elsewhere: a server path or "/files/…" is no link.
    secret, _ = core.create_token("editor")
    bearer = {"Authorization": f"Bearer {secret}"}
    asked = {"messages": [{"role": "user", "content": QUESTION}]}
    reply = remote.post("/v1/chat/completions", json=asked, headers=bearer).json()
    sources = reply["choices"][0]["message"]["content"].split(markdown.SOURCES_HEADING)[1]
    link = sources.split(" — ")[1].split(" · ")[0]
    assert link.startswith("http://kb.example.com/files/") and link.endswith(".md"), sources
    served = remote.get(link, headers=bearer)
    assert served.status_code == 200 and "vault write" in served.text
    with remote.stream(
        "POST", "/v1/chat/completions", json={**asked, "stream": True}, headers=bearer
    ) as streamed:
        text = "".join(streamed.iter_text())
    assert f"— {link}" in text


def test_the_admin_page_shows_code_in_a_thread_title_as_code(local):
    # The thread's first message: "Who owns the `eta-recompute` cron job? …"
    text = local.get("/admin", params={"q": "eta-recompute"}).text
    assert "Who owns the <code>eta-recompute</code> cron job?" in text
    assert "`eta-recompute`" not in text


def test_an_abstention_says_what_to_do_in_plain_words(core, local):
    core.settings = core.settings.replace(min_hit_score=0.9)
    data = local.post("/api/ask", json={"question": "zzzz qqqq wwww"}).json()
    assert data["abstained"]
    assert "min_hit_score" not in data["why"] and "kbqa status" in data["why"]
    assert "min_hit_score" in data["reason"]  # the numbers stay, for debugging


def test_a_source_that_matches_nothing_says_so(core, local, remote):
    asked = {"question": QUESTION, "sources": ["no-such-source"]}
    data = local.post("/api/ask", json=asked).json()
    assert data["abstained"] and "no-such-source" in data["why"]
    assert "no document matches the source" in data["why"]  # a local caller sees everything
    assert "leave it out to search everything" in data["why"]  # what a source can be, too
    secret, _ = core.create_token("eng", ["#eng-help"])
    limited = remote.post("/api/ask", json=asked, headers={"Authorization": f"Bearer {secret}"})
    assert "no document you may see matches the source" in limited.json()["why"]


def test_a_question_in_another_language_gets_a_note(local):
    data = local.post(
        "/api/ask", json={"question": "Hoe wijzig ik het wachtwoord van de database?"}
    ).json()
    assert "English" in data["note"]
    english = local.post("/api/ask", json={"question": QUESTION}).json()
    assert not english["note"]


def test_usage_counts_with_the_packaged_tokenizer():
    from tokenizers import Tokenizer

    from kbqa.retrieval.embedder import packaged_embedder_path

    folder = packaged_embedder_path()
    if folder is None:
        import pytest

        pytest.skip("the packaged embedder is not installed")
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    # WordPiece splits the rare word and the punctuation: more tokens than words.
    text = "Run vault write database/rotate-role/staging-app, then restart the pods."
    plain = Tokenizer.from_file(str(folder / "tokenizer.json"))
    plain.no_padding()
    assert count_tokens(tokenizer, text) == len(plain.encode(text, add_special_tokens=False).ids)
    assert count_tokens(tokenizer, text) > len(text.split())
    assert count_tokens(tokenizer, "word " * 1000) == 1000  # not cut at the model's 256


def test_a_follow_up_through_the_api_and_the_openai_endpoint_is_searched_with_its_history(local):
    follow_up = "and how do I check it worked?"
    first = local.post("/api/ask", json={"question": QUESTION}).json()
    data = local.post(
        "/api/ask", json={"question": follow_up, "history": [[QUESTION, first["answer"]]]}
    ).json()
    assert data["question"] == follow_up and data["searched"].startswith(follow_up + " (")
    assert data["citations"][0]["uri"].endswith("runbooks/db.md")
    # A turn may also be an object, as /api/ask returns one; anything else is one clear line.
    turn = {"question": QUESTION, "answer": first["answer"]}
    again = local.post("/api/ask", json={"question": follow_up, "history": [turn]}).json()
    assert again["searched"] == data["searched"]
    bad = local.post("/api/ask", json={"question": follow_up, "history": [{"q": QUESTION}]})
    assert bad.status_code == 400
    assert 'each turn is ["question", "answer"]' in bad.json()["error"]["message"]
    messages = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": first["answer"]},
        {"role": "user", "content": follow_up},
    ]
    reply = local.post("/v1/chat/completions", json={"messages": messages}).json()
    assert reply["kbqa"]["searched"] == data["searched"]
    assert reply["choices"][0]["message"]["content"].startswith("_searched for: ")


def test_the_admin_page_says_when_it_is_open_because_of_loopback(core, local, remote):
    note = "this request comes from this machine"
    assert note in local.get("/admin").text
    secret, _ = core.create_token("ops", admin=True)
    bearer = {"Authorization": f"Bearer {secret}"}
    assert note not in local.get("/admin", headers=bearer).text
    assert note not in remote.get("/admin", headers=bearer).text
    core.settings = core.settings.replace(allow_loopback_without_token=False)
    assert local.get("/admin").status_code == 401
    assert note not in local.get("/admin", headers=bearer).text


def test_two_user_messages_in_a_row_are_a_follow_up_of_the_first(local):
    # A chat client may send the first question again with no reply after it (a failed
    # request, a retry): it is still the conversation the follow-up leans on.
    asked = "What's the procedure to rotate the staging database password?"
    follow_up = "and how do I check it worked?"
    messages = [{"role": "user", "content": asked}, {"role": "user", "content": follow_up}]
    reply = local.post("/v1/chat/completions", json={"messages": messages}).json()
    assert reply["kbqa"]["searched"].startswith(follow_up + " (")
    assert "rotate" in reply["kbqa"]["searched"]
    assert not reply["kbqa"]["abstained"]
    assert reply["choices"][0]["message"]["content"].startswith("_searched for: ")


def test_an_abstention_in_the_openai_reply_says_why_as_the_api_does(core, local):
    core.settings = core.settings.replace(min_hit_score=0.9)
    asked = {"messages": [{"role": "user", "content": "zebra giraffe safari?"}]}
    why = local.post("/api/ask", json={"question": "zebra giraffe safari?"}).json()["why"]
    reply = local.post("/v1/chat/completions", json=asked).json()
    content = reply["choices"][0]["message"]["content"]
    assert reply["kbqa"]["abstained"] and markdown.CLOSEST_HEADING in content
    assert content.endswith(f"\n\n_({why})_") and "kbqa status" in why
    streamed = local.post("/v1/chat/completions", json={**asked, "stream": True}).text
    chunks = [json.loads(line[6:]) for line in streamed.splitlines() if line.startswith("data: {")]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == content
    # Sent back as the conversation, the why is no part of the answer the model reads.
    messages = [*asked["messages"], {"role": "assistant", "content": content}]
    _, history = conversation([Message(**m) for m in [*messages, {"role": "user", "content": "?"}]])
    assert history == [("zebra giraffe safari?", reply["kbqa"]["answer"])]


def test_a_replys_notes_are_no_part_of_the_answer_sent_back_as_history(local):
    # A follow-up in Dutch: its reply leads with what was searched for and the language note.
    asked = "What's the procedure to rotate the staging database password?"
    first = local.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": asked}]}
    )
    follow_up = "en hoe controleer ik dat het gewerkt heeft?"
    messages = [
        {"role": "user", "content": asked},
        {"role": "assistant", "content": first.json()["choices"][0]["message"]["content"]},
        {"role": "user", "content": follow_up},
    ]
    reply = local.post("/v1/chat/completions", json={"messages": messages}).json()
    content = reply["choices"][0]["message"]["content"]
    assert content.startswith("_searched for: ") and "\n\n_Note: " in content
    sent_back = [*messages, {"role": "assistant", "content": content}]
    _, history = conversation(
        [Message(**m) for m in [*sent_back, {"role": "user", "content": "?"}]]
    )
    assert history[-1] == (follow_up, reply["kbqa"]["answer"])


def test_usage_counts_the_prompt_tokens_of_every_message_sent(local):
    follow_up = "and how do I check it worked?"
    first = local.post("/api/ask", json={"question": QUESTION}).json()["answer"]
    messages = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": first},
        {"role": "user", "content": [{"type": "text", "text": follow_up}]},
    ]
    usage = local.post("/v1/chat/completions", json={"messages": messages}).json()["usage"]
    # The fakes have no tokenizer: words and punctuation, as count_tokens counts them.
    sent = (QUESTION, first, follow_up)
    assert usage["prompt_tokens"] == sum(count_tokens(None, text) for text in sent)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_a_streamed_reply_ends_with_its_usage_when_the_client_asks(local):
    asked = {"messages": [{"role": "user", "content": QUESTION}], "stream": True}

    def chunks(**extra) -> list[dict]:
        text = local.post("/v1/chat/completions", json={**asked, **extra}).text
        return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]

    *replies, last = chunks(stream_options={"include_usage": True})
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in replies)
    assert content and all(c["usage"] is None for c in replies)
    assert last["choices"] == [] and last["usage"] == usage(None, [QUESTION], content)
    # Not asked: no usage anywhere, as OpenAI's own streams.
    assert all("usage" not in c and c["choices"] for c in chunks())
