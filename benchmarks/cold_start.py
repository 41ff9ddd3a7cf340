"""Cold starts: `kbqa ask` as a user runs it (a new process), cold in-process and through a
`kbqa serve` on the same home, beside git revision --before, in one run (examples/handbook).

With the packaged models:
- a cold in-process `kbqa ask --extractive` (--local now; the revision before had no server
  discovery), with whether the torch stack was imported;
- `kbqa ask --extractive` with a `kbqa serve` running on the same home (found through its file
  under KBQA_HOME), against the cold in-process run at --before.

Each figure is the median of --runs, the two revisions alternated.

    python benchmarks/cold_start.py [--before REV] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "How do I rotate the staging database password?"
PROBE = "import sys, runpy; sys.argv = ['kbqa', *sys.argv[1:]]\ntry:\n    runpy.run_module('kbqa', run_name='__main__')\nfinally:\n    print('TORCH', 'torch' in sys.modules, file=sys.stderr)\n"  # noqa: E501


CPU: list[float] = []  # each run's CPU seconds (user + system): steadier than wall on a busy host


def kbqa(args: list[str], env: dict[str, str], probe: bool = False) -> tuple[float, str]:
    command = [sys.executable, "-c", PROBE, *args] if probe else [sys.executable, "-m", "kbqa"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        command + ([] if probe else args), env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return time.perf_counter() - started, result.stderr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", default="17f89ac", help="the revision to compare with")
    parser.add_argument("--runs", type=int, default=5)
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kbqa-cold-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "KBQA_HOME": str(tmp / "home")}
    env["HF_HUB_OFFLINE"] = "1"
    kbqa(["ingest", str(ROOT / "examples/handbook")], env)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", opts.before, "src"], capture_output=True, check=True
    ).stdout
    (tmp / "before").mkdir()
    subprocess.run(["tar", "-x", "-C", str(tmp / "before")], input=archive, check=True)
    subprocess.run(["cp", "-r", str(tmp / "home"), str(tmp / "before-home")], check=True)
    old = {**env, "PYTHONPATH": str(tmp / "before" / "src"), "KBQA_HOME": str(tmp / "before-home")}
    cold: dict[str, list[float]] = {"now": [], "before": []}
    cpu: dict[str, list[float]] = {"now": [], "before": []}
    torch: dict[str, str] = {}
    for _ in range(opts.runs):
        for name, environ, extra in (("now", env, ["--local"]), ("before", old, [])):
            seconds, stderr = kbqa(["ask", "--extractive", *extra, QUESTION], environ, True)
            cold[name].append(seconds)
            cpu[name].append(CPU[-1])
            torch[name] = stderr.strip().splitlines()[-1]
    now, before = statistics.median(cold["now"]), statistics.median(cold["before"])
    print(
        f"cold in-process `kbqa ask --extractive`: {now:.2f} s ({torch['now']}); at "
        f"{opts.before}: {before:.2f} s ({torch['before']}): ratio {now / before:.2f}; CPU "
        f"{statistics.median(cpu['now']):.2f} s against {statistics.median(cpu['before']):.2f} s"
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "kbqa", "serve", "--port", str(19500 + os.getpid() % 400)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not (tmp / "home" / "server.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        kbqa(["ask", "--extractive", "warm up"], env)
        served, served_cpu, answers = [], [], set()
        for _ in range(opts.runs):
            seconds, _ = kbqa(["ask", "--extractive", "--json", QUESTION], env)
            served.append(seconds)
            served_cpu.append(CPU[-1])
        out = subprocess.run(
            [sys.executable, "-m", "kbqa", "ask", "--extractive", "--json", QUESTION],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        answers.add(json.loads(out)["cached"])
        median = statistics.median(served)
        print(
            f"`kbqa ask --extractive` with a server on the same home: {median:.2f} s "
            f"(ratio {median / before:.3f} of the cold run at {opts.before}; "
            f"the command's CPU {statistics.median(served_cpu):.2f} s; "
            f"served from its cache: {answers == {True}})"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
