"""Hostile files: generated bad inputs mixed with good files, ingested in one run.

    python benchmarks/fuzz_ingest.py [--bad 1000] [--good 100] [--seed 11]

Bad inputs, seeded: truncated and bit-flipped PDFs, DOCX zip bombs (kilobytes that inflate to
gigabytes), deeply nested HTML, a 50 MB single line and smaller single lines that are slow to
parse, invalid UTF-8, binary data named .md, empty files, a PDF named .docx, symbolic link loops
and broken links, and Slack exports with malformed or deeply nested JSON, oversized members and
huge messages. Passes when the ingest finishes, every bad input is reported by name with a
reason (a bit-flipped or truncated PDF whose text survives may be indexed instead), every good
file is indexed, the peak memory stays under the stated bounds and no file took longer than the
per-file limit. tests/test_fuzz.py runs a short version.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sys
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from kbqa.app import KnowledgeBase
from kbqa.ingest.partition import load_parsers
from kbqa.settings import Settings
from kbqa.store import DocumentRow

ROOT = Path(__file__).resolve().parents[1]
HANDBOOK = ROOT / "examples" / "handbook"
MB = 1024 * 1024
# Categories whose damage may miss everything that matters: indexed instead of reported is fine.
MAY_SURVIVE = {"bit-flipped-pdf", "truncated-pdf", "bit-flipped-docx"}


@dataclass
class Corpus:
    folder: Path
    exports: list[Path] = field(default_factory=list)
    good: list[Path] = field(default_factory=list)
    # name as the ingest reports it -> category
    bad: dict[str, str] = field(default_factory=dict)


def _bomb(path: Path, unpacked: int) -> None:
    """A DOCX whose document.xml inflates to `unpacked` bytes (of one repeated paragraph)."""
    good = zipfile.ZipFile(HANDBOOK / "onboarding" / "laptop-setup.docx")
    paragraph = b"<w:p><w:r><w:t>" + b"A" * 4000 + b"</w:t></w:r></w:p>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in good.infolist():
            if info.filename != "word/document.xml":
                out.writestr(info, good.read(info.filename))
        with out.open("word/document.xml", "w", force_zip64=True) as member:
            block = paragraph * (MB // len(paragraph))
            written = 0
            while written < unpacked:
                member.write(block)
                written += len(block)


def _flip(data: bytes, rng: random.Random, flips: int) -> bytes:
    out = bytearray(data)
    for _ in range(flips):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def _good_page(rng: random.Random, i: int) -> str:
    words = ("service", "owner", "port", "rotate", "vault", "deploy", "backup", "restore")
    body = " ".join(rng.choice(words) for _ in range(rng.randint(20, 120)))
    return f"# Good page {i}\n\n## Facts\n\nToken good{i:04} is unique. {body}.\n"


def make_export(root: Path, rng: random.Random, kind: str, corpus: Corpus, bomb: Path) -> None:
    """A small Slack export folder with one kind of damage; records what must be reported."""
    (root / "general").mkdir(parents=True)
    (root / "users.json").write_text(json.dumps([{"id": "U1", "name": "ada"}]))
    channels = [{"id": "C1", "name": "general"}]
    (root / "channels.json").write_text(json.dumps(channels))
    good_day = [{"ts": "1700000000.000100", "user": "U1", "text": f"export ok {rng.random()}"}]
    (root / "general" / "2024-01-01.json").write_text(json.dumps(good_day))
    day = "general/2024-01-02.json"
    reported_day = f"{root}/{day}"  # how the ingest names a file of an export
    if kind == "slack-malformed-day":
        (root / day).write_text('[{"ts": "1700000001.0", "text": "cut off')
        corpus.bad[reported_day] = kind
    elif kind == "slack-nested-json":
        (root / day).write_text("[" * 100_000 + "]" * 100_000)
        corpus.bad[reported_day] = kind
    elif kind == "slack-huge-message":
        message = {"ts": "1700000002.0", "user": "U1", "text": "spam " * 200_000}
        (root / day).write_text(json.dumps([message]))
        corpus.bad[reported_day] = kind
    elif kind == "slack-malformed-channels":
        (root / "channels.json").write_text("{not json")
        corpus.bad[str(root)] = kind
    elif kind == "slack-invalid-utf8":
        (root / day).write_bytes(b'[{"ts": "1700000003.0", "text": "\xff\xfe bad"}]')
        corpus.bad[reported_day] = kind
    elif kind == "slack-zip-bomb":
        # The export as a zip whose day file declares gigabytes (the bomb's inflated XML).
        archive = root.with_suffix(".zip")
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
            for path in sorted(root.rglob("*.json")):
                out.write(path, path.relative_to(root).as_posix())
            with zipfile.ZipFile(bomb) as source:
                info = source.getinfo("word/document.xml")
                with source.open(info) as member, out.open(day, "w", force_zip64=True) as dest:
                    shutil.copyfileobj(member, dest, MB)
        shutil.rmtree(root)
        corpus.exports.append(archive)
        corpus.bad[f"{archive}/{day}"] = kind
        return
    corpus.exports.append(root)


BAD_KINDS = [
    "truncated-pdf",
    "bit-flipped-pdf",
    "bit-flipped-docx",
    "docx-bomb",
    "nested-html",
    "single-line-50mb",
    "slow-single-line",
    "invalid-utf8",
    "binary-md",
    "empty",
    "pdf-named-docx",
    "symlink-loop",
    "broken-symlink",
    "slack-malformed-day",
    "slack-nested-json",
    "slack-huge-message",
    "slack-malformed-channels",
    "slack-invalid-utf8",
    "slack-zip-bomb",
]
# Expensive kinds are capped (each costs disk, or max_file_seconds of parsing).
CAPS = {"single-line-50mb": 2, "slow-single-line": 3, "slack-zip-bomb": 3, "docx-bomb": 40}


def make_corpus(work: Path, bad: int, good: int, seed: int, bomb_bytes: int) -> Corpus:
    rng = random.Random(seed)
    folder = work / "docs"
    folder.mkdir(parents=True)
    corpus = Corpus(folder)
    pdfs = [p.read_bytes() for p in sorted(HANDBOOK.rglob("*.pdf")) if p.name != "broken.pdf"]
    docxs = [p.read_bytes() for p in sorted(HANDBOOK.rglob("*.docx"))]
    bomb = work / "bomb.docx"
    _bomb(bomb, bomb_bytes)
    for i in range(good):
        path = folder / "good" / f"good-{i:04}.md"
        path.parent.mkdir(exist_ok=True)
        path.write_text(_good_page(rng, i))
        corpus.good.append(path)
    for source in sorted(HANDBOOK.rglob("*")):
        if source.is_file() and source.name != "broken.pdf":
            target = folder / "good" / "handbook" / source.relative_to(HANDBOOK)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
            corpus.good.append(target)
    made: Counter[str] = Counter()
    bad_dir = folder / "bad"
    bad_dir.mkdir()
    while sum(made.values()) < bad:
        kind = rng.choice(BAD_KINDS)
        if made[kind] >= CAPS.get(kind, bad):
            continue
        n = made[kind]
        made[kind] += 1
        stem = bad_dir / f"{kind}-{n:04}"
        path: Path | None = None
        if kind == "truncated-pdf":
            data = rng.choice(pdfs)
            path = stem.with_suffix(".pdf")
            path.write_bytes(data[: rng.randrange(1, len(data) - 1)])
        elif kind == "bit-flipped-pdf":
            path = stem.with_suffix(".pdf")
            path.write_bytes(_flip(rng.choice(pdfs), rng, rng.randint(1, 50)))
        elif kind == "bit-flipped-docx":
            path = stem.with_suffix(".docx")
            path.write_bytes(_flip(rng.choice(docxs), rng, rng.randint(1, 50)))
        elif kind == "docx-bomb":
            path = stem.with_suffix(".docx")
            shutil.copy(bomb, path)
        elif kind == "nested-html":
            depth = rng.choice([1_000, 10_000, 100_000, 300_000])
            tag = rng.choice(["div", "span", "b", "table"])
            path = stem.with_suffix(".html")
            closing = f"</{tag}>" * depth if rng.random() < 0.5 else ""
            path.write_text(f"<html><body>{f'<{tag}>' * depth}deep{closing}</body></html>")
        elif kind == "single-line-50mb":
            path = stem.with_suffix(".md")
            with open(path, "w") as f:
                for _ in range(50):
                    f.write("word " * (MB // 5))
        elif kind == "slow-single-line":
            path = stem.with_suffix(".md")
            path.write_text("lorem " * (rng.randint(3, 6) * MB // 6))
        elif kind == "invalid-utf8":
            path = stem.with_suffix(rng.choice([".md", ".txt", ".rst"]))
            text = _good_page(rng, 9999).encode()
            cut = rng.randrange(len(text))
            path.write_bytes(
                text[:cut] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]) + text[cut:]
            )
        elif kind == "binary-md":
            path = stem.with_suffix(".md")
            path.write_bytes(rng.randbytes(rng.randint(16, 65536)))
        elif kind == "empty":
            path = stem.with_suffix(rng.choice([".md", ".txt", ".html", ".pdf", ".docx"]))
            path.write_bytes(rng.choice([b"", b" \n\t\n", b"\n" * 1000]))
        elif kind == "pdf-named-docx":
            path = stem.with_suffix(".docx")
            path.write_bytes(rng.choice(pdfs))
        elif kind == "symlink-loop":
            path = stem.with_suffix(".md")
            if rng.random() < 0.5:
                path.symlink_to(path.name)
            else:
                other = stem.with_name(stem.name + "-b.md")
                path.symlink_to(other.name)
                other.symlink_to(path.name)
                corpus.bad[str(other)] = kind
        elif kind == "broken-symlink":
            path = stem.with_suffix(".md")
            path.symlink_to(f"nowhere-{n}.md")
        else:
            make_export(work / "exports" / f"{kind}-{n:04}", rng, kind, corpus, bomb)
            continue
        corpus.bad[str(path)] = kind
    bomb.unlink()
    return corpus


def run(work: Path, bad: int, good: int, seed: int, settings: Settings, bomb_bytes: int) -> dict:
    started = time.perf_counter()
    corpus = make_corpus(work, bad, good, seed, bomb_bytes)
    made = time.perf_counter() - started
    inputs = len(corpus.bad)
    # The parsers' imports (~5 s, far more on a busy machine) are paid once by the ingest
    # process, not by any one file: paid here first, so the per-file times are the files'.
    load_parsers()
    kb = KnowledgeBase(settings)
    gaps: list[tuple[float, str]] = []
    last = [time.perf_counter(), ""]

    def progress(done: int, total: int, name: str) -> None:
        now = time.perf_counter()
        gaps.append((now - last[0], last[1]))
        last[0], last[1] = now, name

    t = time.perf_counter()
    report = kb.ingest([corpus.folder, *corpus.exports], progress)
    seconds = time.perf_counter() - t
    reported = {name: why for name, why in report.failed}
    with kb.store.session() as s:
        indexed = set(s.scalars(select(DocumentRow.uri)))
    outcome: dict[str, Counter[str]] = {}
    problems = []
    for name, kind in sorted(corpus.bad.items()):
        counts = outcome.setdefault(kind, Counter())
        if name in reported and reported[name].strip():
            counts["reported"] += 1
        elif kind in MAY_SURVIVE and str(Path(name).resolve()) in indexed:
            counts["indexed"] += 1
        else:
            counts["lost"] += 1
            problems.append(f"{kind}: {name} neither reported nor indexed")
    missing = [p for p in corpus.good if str(p.resolve()) not in indexed]
    problems += [f"good file not indexed: {p}" for p in missing]
    worst = max(gaps, default=(0.0, ""))
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {
        "inputs": inputs,
        "good": len(corpus.good),
        "good_indexed": len(corpus.good) - len(missing),
        "outcome": outcome,
        "problems": problems,
        "seconds": seconds,
        "generate_seconds": made,
        "slowest_file": worst,
        "peak_rss": self_peak,
        "worker_peak_rss": worker_peak,
        "examples": {
            kind: next(
                (reported[n] for n, k in corpus.bad.items() if k == kind and n in reported), ""
            )
            for kind in outcome
        },
        "failed": len(report.failed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bad", type=int, default=1000)
    parser.add_argument("--good", type=int, default=100)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--max-file-seconds", type=float, default=10.0)
    parser.add_argument("--max-parse-memory-mb", type=int, default=1024)
    parser.add_argument("--bomb-gb", type=float, default=4.0)
    parser.add_argument("--max-rss-mb", type=int, default=2048, help="the stated bound")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            home=Path(tmp) / "home",
            embedding_model="hash",
            device="cpu",
            slack_workspace="fuzz",
            max_file_seconds=args.max_file_seconds,
            max_parse_memory_bytes=args.max_parse_memory_mb * MB,
        )
        result = run(
            Path(tmp), args.bad, args.good, args.seed, settings, int(args.bomb_gb * 1024 * MB)
        )
    print(
        f"{result['inputs']} bad inputs (seed {args.seed}) and {result['good']} good files, "
        f"ingested in {result['seconds']:.0f} s (made in {result['generate_seconds']:.0f} s)"
    )
    print(f"{'kind':26} {'made':>5} {'reported':>9} {'indexed':>8} {'lost':>5}  example reason")
    for kind, counts in sorted(result["outcome"].items()):
        total = sum(counts.values())
        example = result["examples"][kind][:70]
        print(
            f"{kind:26} {total:5} {counts['reported']:9} {counts['indexed']:8} "
            f"{counts['lost']:5}  {example}"
        )
    print(f"good files indexed: {result['good_indexed']} of {result['good']}")
    slowest, name = result["slowest_file"]
    print(f"slowest file: {slowest:.1f} s ({name}); max_file_seconds {args.max_file_seconds:g} s")
    print(
        f"peak RSS: ingest process {result['peak_rss'] / MB:.0f} MB, largest parse worker "
        f"{result['worker_peak_rss'] / MB:.0f} MB (bound {args.max_rss_mb} MB each; a worker "
        f"is capped at its size + {args.max_parse_memory_mb} MB)"
    )
    over = max(result["peak_rss"], result["worker_peak_rss"]) > args.max_rss_mb * MB
    late = slowest > args.max_file_seconds + 5
    for problem in result["problems"]:
        print("  " + problem)
    ok = not result["problems"] and not over and not late
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
