"""Over a real socket: the `openai` package pointed at kbqa in uvicorn on 127.0.0.1, and
`kbqa ask --server` (a subprocess) against it."""

import os
import subprocess
import sys
import time

import pytest

openai = pytest.importorskip("openai")

QUESTION = "when do the larkdb backups run nightly?"


@pytest.fixture
def client(server, core):
    secret, _ = core.create_token("editor", [])
    return openai.OpenAI(base_url=server.url + "/v1", api_key=secret, max_retries=0, timeout=30)


def test_openai_client_gets_a_cited_answer_with_its_sources(client):
    reply = client.chat.completions.create(
        model="kbqa", messages=[{"role": "user", "content": QUESTION}]
    )
    content = reply.choices[0].message.content
    answer, sources = content.split("\n\nSources:\n")
    assert "02:00 UTC" in answer and "[1]" in answer
    assert sources.startswith("[1] Database runbook › Backups — ")
    extra = reply.model_extra["kbqa"]  # the documented extra field: `kbqa ask --json`'s JSON
    assert extra["answer"] == answer and extra["citations"][0]["n"] == 1
    assert reply.choices[0].finish_reason == "stop" and reply.object == "chat.completion"
    assert [m.id for m in client.models.list()] == ["kbqa"]


def test_openai_client_streams_the_same_answer(client):
    stream = client.chat.completions.create(
        model="kbqa", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    final = chunks[-1].model_extra["kbqa"]
    assert text.startswith(final["answer"]) and "\n\nSources:\n[1] " in text


def test_openai_client_reads_a_streams_usage_when_it_asks(client):
    stream = client.chat.completions.create(
        model="kbqa",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
    )
    *chunks, last = list(stream)
    assert chunks[-1].choices[0].finish_reason == "stop" and last.choices == []
    assert last.usage.completion_tokens > 0 and last.usage.prompt_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens


def test_openai_follow_up_carries_the_conversation(client, core):
    seen = []
    original = core.ask

    def spy(*args, **kwargs):
        seen.append(kwargs["history"])
        return original(*args, **kwargs)

    core.ask = spy
    client.chat.completions.create(
        model="kbqa",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": "At 02:00 UTC [1].\n\nSources:\n[1] Database runbook"},
            {"role": "user", "content": "and how long are they kept?"},
        ],
    )
    assert seen == [[(QUESTION, "At 02:00 UTC [1].")]]


def test_openai_errors_are_openai_errors(client, server, core):
    with pytest.raises(openai.BadRequestError, match="last message must be the user"):
        client.chat.completions.create(
            model="kbqa", messages=[{"role": "assistant", "content": "hi"}]
        )
    anonymous = openai.OpenAI(base_url=server.url + "/v1", api_key="kbqa_wrong", max_retries=0)
    # From this machine any key will do (issue 36), unless loopback must show a token too.
    anonymous.chat.completions.create(model="kbqa", messages=[{"role": "user", "content": "q"}])
    core.settings = core.settings.replace(allow_loopback_without_token=False)
    with pytest.raises(openai.AuthenticationError, match="kbqa token create"):
        anonymous.chat.completions.create(model="kbqa", messages=[{"role": "user", "content": "q"}])


def run_cli(args, core, **env):
    environ = {
        **os.environ,
        "KBQA_HOME": str(core.settings.home / "elsewhere"),  # no index here: the server answers
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "kbqa", *args], env=environ, capture_output=True, text=True
    )


def test_kbqa_ask_uses_a_running_server(server, core):
    started = time.perf_counter()
    result = run_cli(["ask", "--extractive", QUESTION], core, KBQA_SERVER=server.url)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    answer, quoted, blank, source = result.stdout.splitlines()[:4]
    assert "02:00 UTC" in answer and quoted == "(quoted from the sources)" and blank == ""
    assert source.startswith("[1] Database runbook")
    assert elapsed < 10  # no models loaded in the client (the figure is in benchmarks/)
    as_json = run_cli(["ask", "--json", "--server", server.url, QUESTION], core)
    assert '"citations"' in as_json.stdout


def test_kbqa_ask_server_errors_are_one_line(server, core):
    core.settings = core.settings.replace(allow_loopback_without_token=False)
    result = run_cli(["ask", QUESTION], core, KBQA_SERVER=server.url)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        result.stderr.startswith("kbqa: error: ") and "401: an API token is needed" in result.stderr
    )
    secret, _ = core.create_token("cli", [])
    result = run_cli(["ask", QUESTION], core, KBQA_SERVER=server.url, KBQA_SERVER_TOKEN=secret)
    assert result.returncode == 0, result.stderr
    down = run_cli(["ask", QUESTION], core, KBQA_SERVER="http://127.0.0.1:9")
    assert down.returncode == 1 and "cannot reach the kbqa server" in down.stderr


def test_kbqa_ask_follow_up_goes_on_through_a_running_server(server, core):
    first = run_cli(["ask", "--extractive", QUESTION], core, KBQA_SERVER=server.url)
    assert first.returncode == 0, first.stderr
    follow_up = ["ask", "--extractive", "--follow-up", "and how long are they kept?"]
    result = run_cli(follow_up, core, KBQA_SERVER=server.url)
    assert result.returncode == 0, result.stderr
    # The server got the first turn as `history`: it searched the follow-up with it.
    assert "searched for: and how long are they kept? (larkdb backups nightly)" in result.stdout
    assert "35 days" in result.stdout
