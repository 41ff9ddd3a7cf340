"""Load on `kbqa serve --slack` (a real server process, on 127.0.0.1): 50 concurrent HTTP
questions and 50 signed Slack events while `kbqa ingest` of new files runs in another process.
Checks 0 errors, every Slack event acknowledged in < 3 s, answers after the ingest using the new
files; prints p50/p95 latency beside a single-question baseline, then the start-up figures:
`kbqa ask` against the running server and a cold in-process `kbqa ask --extractive`, the latter
beside the same command from git revision --before (default: the revision before this work).

    python benchmarks/serve_load.py [--fakes] [--generated] [--before REV] [--questions 50]
        [--events 50]

Default: the packaged models, extractive answers over the HTTP API (the Slack bot's answers are
generated); --fakes uses the hash embedder and echo generator. Bounded: a few minutes.
--generated: every HTTP question is generated too, each a different handbook question (so no
answer comes from the cache), through the generation queue with its default limit: what does
not fit is told "busy" (HTTP 503, Retry-After; the busy text in Slack), counted apart from
errors; the baseline is a lone generated question. It skips the start-up figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import SECRET, MockSlackApi, event  # noqa: E402 - tests/support.py, as the tests send

# --generated: different questions, so that none is answered from the answer cache.
DATA = ROOT / "tests" / "data"
QUESTIONS = [
    "How do I rotate the staging database password?",
    "what port is route-planner listening on?",
    "what batch size does the tracker use for GPS pings?",
    "how many days of PTO do we get?",
    "who owns the billing service?",
]


def handbook_questions() -> list[str]:
    """Every distinct handbook question in tests/data, in a fixed order."""
    qa = json.loads((DATA / "handbook_qa.json").read_text())
    found = [q["question"] for q in qa["answerable"] + qa["unanswerable"]]
    for name in ("followups.json", "followups_heldout.json"):
        found += [p["first"] for p in json.loads((DATA / name).read_text())["pairs"]]
    return list(dict.fromkeys(found))


class Busy(Exception):
    """The server said busy (HTTP 503 with Retry-After): by design, not an error."""


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def post(url: str, payload: bytes, headers: dict[str, str], timeout: float = 300) -> tuple:
    request = urllib.request.Request(url, data=payload, headers=headers, method="POST")
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
        return response.status, body, time.perf_counter() - started


def ask(base: str, question: str, extractive: bool = True) -> tuple[float, dict]:
    payload = json.dumps({"question": question, "extractive": extractive}).encode()
    try:
        status, body, seconds = post(
            base + "/api/ask", payload, {"Content-Type": "application/json"}
        )
    except urllib.error.HTTPError as exc:
        if exc.code == 503 and exc.headers.get("Retry-After"):
            raise Busy() from None
        raise
    assert status == 200, status
    return seconds, json.loads(body)


def new_files(root: Path, count: int) -> Path:
    root.mkdir(parents=True)
    for i in range(count):
        (root / f"quokka-{i}.md").write_text(
            f"# Quokka service {i}\n\n## Port\n\nThe quokka-{i} service listens on port "
            f"{9100 + i} and is owned by the marsupial team.\n"
        )
    return root


def run(args: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kbqa", *args], env=env, capture_output=True, text=True, **kw
    )


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = run(args, env, timeout=300)
    assert result.returncode == 0, result.stderr
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fakes", action="store_true")
    parser.add_argument("--generated", action="store_true", help="generated HTTP answers too")
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--before", default="3170e0f", help="git revision to compare start-up with")
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kbqa-load-"))
    home = tmp / "home"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "KBQA_HOME": str(home),
        "KBQA_SLACK_WORKSPACE": "larkspur",
        "SLACK_BOT_TOKEN": "xoxb-load",
        "SLACK_SIGNING_SECRET": SECRET,
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("SLACK_APP_TOKEN", None)
    if opts.fakes:
        env.update(
            KBQA_EMBEDDING_MODEL="hash",
            KBQA_GENERATOR_MODEL="echo",
            KBQA_MIN_HIT_SCORE="0.1",
            KBQA_MIN_CONFIDENCE="0",
        )
    print("ingesting the examples…", flush=True)
    result = run(
        ["ingest", str(ROOT / "examples/handbook"), str(ROOT / "examples/slack-export")],
        env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    port = 18000 + os.getpid() % 1000
    base = f"http://127.0.0.1:{port}"
    with MockSlackApi() as slack:
        env["KBQA_SLACK_API_URL"] = slack.url
        server = subprocess.Popen(
            [sys.executable, "-m", "kbqa", "serve", "--slack", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            started = time.perf_counter()
            while time.perf_counter() - started < 180:
                try:
                    urllib.request.urlopen(base + "/api/status", timeout=2).read()
                    break
                except OSError:
                    if server.poll() is not None:
                        raise SystemExit(f"kbqa serve exited: {server.stderr.read()}") from None
                    time.sleep(0.2)
            print(f"server up in {time.perf_counter() - started:.1f} s", flush=True)
            measure(base, slack, env, tmp, opts)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    if not opts.generated:
        startup(env, tmp, opts, base)


def measure(base: str, slack: MockSlackApi, env: dict, tmp: Path, opts) -> None:
    extractive = not opts.generated
    if opts.generated:
        # Lone questions (the baseline) and the burst's: all different, none cached.
        pool_ = handbook_questions()
        lone, asked = pool_[:3], pool_[3:]
        ask(base, "warm the model up: what is kbqa?", False)
        baseline = [ask(base, q, False)[0] for q in lone]
    else:
        asked = QUESTIONS
        for q in QUESTIONS:  # warm up
            ask(base, q)
        baseline = [ask(base, QUESTIONS[i % len(QUESTIONS)])[0] for i in range(10)]
    ingest = subprocess.Popen(
        [sys.executable, "-m", "kbqa", "ingest", str(new_files(tmp / "new", 30))],
        env={**env, "KBQA_EMBED_BATCH_SIZE": "2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    errors: list[str] = []
    acks: list[float] = []
    busy: list[int] = []

    def one_question(i: int) -> float:
        try:
            return ask(base, asked[i % len(asked)], extractive)[0]
        except Busy:
            busy.append(i)
            return float("nan")
        except Exception as exc:  # every failure is counted and shown
            errors.append(f"http: {exc}")
            return float("nan")

    def one_event(i: int) -> None:
        # Another question than the HTTP one of the same number, where there are enough.
        question = asked[(opts.questions + i) % len(asked)]
        request = event("app_mention", f"<@UBOT> {question}", ts=f"1794700000.{i:06}")
        headers = {k: v[0] for k, v in request.headers.items()}
        try:
            status, _, seconds = post(
                base + "/slack/events", request.raw_body.encode(), headers, 30
            )
            acks.append(seconds)
            if status != 200:
                errors.append(f"slack ack: {status}")
        except Exception as exc:
            errors.append(f"slack ack: {exc}")

    started = time.perf_counter()
    with ThreadPoolExecutor(opts.questions + opts.events) as pool:
        futures = [pool.submit(one_question, i) for i in range(opts.questions)]
        futures += [pool.submit(one_event, i) for i in range(opts.events)]
        latencies = [f.result() for f in futures[: opts.questions]]
        for f in futures[opts.questions :]:
            f.result()
    wall = time.perf_counter() - started
    updates, slack_busy = slack_answers(slack, opts.events, timeout=900)
    errors += [f"slack answer: {u[:80]}" for u in updates if u.startswith("Sorry")]
    if len(updates) < opts.events:
        errors.append(f"slack: only {len(updates)} of {opts.events} answered")
    out, err = ingest.communicate(timeout=600)
    ingest_ok = ingest.returncode == 0
    # After the ingest: the new files answer, without a restart.
    deadline, fresh = time.monotonic() + 15, False
    while time.monotonic() < deadline and not fresh:
        _, data = ask(base, "which port does the quokka-17 service listen on?", True)
        fresh = any("9117" in h["text"] for h in data["hits"])
        time.sleep(0.2)
    good = [x for x in latencies if x == x]
    print()
    kind = "generated" if opts.generated else "extractive"
    print(
        f"single {kind} question (sequential, {len(baseline)}): "
        f"p50 {statistics.median(baseline):.3f} s"
    )
    print(
        f"{opts.questions} concurrent {kind} HTTP questions + {opts.events} Slack events during "
        f"an ingest: {wall:.1f} s wall; told busy (503, Retry-After): {len(busy)} HTTP, "
        f"{slack_busy} Slack"
    )
    one, p50, p95 = statistics.median(baseline), pct(good, 50), pct(good, 95)
    print(
        f"  HTTP latency p50 {p50:.3f} s ({p50 / one:.1f}x baseline), "
        f"p95 {p95:.3f} s ({p95 / one:.1f}x)"
    )
    print(
        f"  Slack acks: max {max(acks):.3f} s, p95 {pct(acks, 95):.3f} s "
        f"({sum(a < 3 for a in acks)}/{len(acks)} under 3 s); answered {len(updates)} "
        f"(busy among them: {slack_busy})"
    )
    print(
        f"  ingest in another process: {'ok' if ingest_ok else 'FAILED ' + err[-300:]} "
        f"({out.strip().splitlines()[-1] if out.strip() else ''})"
    )
    print(f"  new files used after the ingest: {'yes' if fresh else 'NO'}")
    print(f"  errors: {len(errors)}" + (f" — {errors[:5]}" if errors else ""))
    if errors or not fresh or not ingest_ok or max(acks) >= 3:
        raise SystemExit(1)


def slack_answers(slack: MockSlackApi, n: int, timeout: float) -> tuple[list[str], int]:
    """The last text of each of the n placeholders once it is final (not a progress text), and
    how many of them said busy."""
    from kbqa.assistant.queue import BUSY_TEXT, STAGES
    from kbqa.integrations.slack.bot import WORKING_TEXT

    stages = [re.escape(t).replace(r"\{position\}", r"\d+") for t in STAGES.values()]
    progress = re.compile("|".join(stages))
    deadline = time.monotonic() + timeout
    while True:
        last: dict[str, str] = {}
        for update in slack.params("chat.update"):
            last[update["ts"]] = update["text"]
        final = [t for t in last.values() if t != WORKING_TEXT and not progress.fullmatch(t)]
        if len(final) >= n or time.monotonic() > deadline:
            return final, sum(t == BUSY_TEXT for t in final)
        time.sleep(1)


def startup(env: dict, tmp: Path, opts, base: str) -> None:
    question = "How do I rotate the staging database password?"
    print("\nstart-up (each the median of 3 runs):", flush=True)
    before = tmp / "before"
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", opts.before, "src"], capture_output=True, check=True
    ).stdout
    before.mkdir()
    subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
    home = env["KBQA_HOME"]
    old_home = tmp / "before-home"
    subprocess.run(["cp", "-r", home, str(old_home)], check=True)
    cold_now = statistics.median(timed(["ask", "--extractive", question], env) for _ in range(3))
    old_env = {**env, "PYTHONPATH": str(before / "src"), "KBQA_HOME": str(old_home)}
    cold_before = statistics.median(
        timed(["ask", "--extractive", question], old_env) for _ in range(3)
    )
    print(
        f"  cold in-process `kbqa ask --extractive`: {cold_now:.2f} s; at {opts.before}: "
        f"{cold_before:.2f} s (ratio {cold_now / cold_before:.2f})"
    )
    # Against a running server (started again for this, warm).
    port = 19000 + os.getpid() % 1000
    server = subprocess.Popen(
        [sys.executable, "-m", "kbqa", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                ask(url, question)
                break
            except OSError:
                time.sleep(0.2)
        served = statistics.median(
            timed(["ask", "--extractive", "--server", url, question], env) for _ in range(3)
        )
        print(
            f"  `kbqa ask --server` (a running server): {served:.2f} s "
            f"(ratio {served / cold_before:.3f} of the cold run at {opts.before})"
        )
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
