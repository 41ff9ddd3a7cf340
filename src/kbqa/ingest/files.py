"""Files on disk: finding them, fingerprinting them, and parsing them into Documents."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from kbqa.errors import ParseError
from kbqa.ingest.partition import partition_and_chunk
from kbqa.types import Document

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = frozenset(
    {".md", ".markdown", ".html", ".htm", ".txt", ".text", ".rst", ".pdf", ".docx"}
)
# Cheap checks that catch a renamed or truncated file before a parser gives a confusing error.
_MAGIC = {".pdf": (b"%PDF-", "not a PDF file"), ".docx": (b"PK\x03\x04", "not a DOCX file")}


def discover(root: Path) -> tuple[list[Path], list[Path]]:
    """(supported files, unsupported files) under root, sorted; hidden files are left out."""
    if root.is_file():
        paths = [root]
    else:
        paths = sorted(
            p
            for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
    supported = [p for p in paths if p.suffix.lower() in SUPPORTED_SUFFIXES]
    return supported, [p for p in paths if p.suffix.lower() not in SUPPORTED_SUFFIXES]


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def parse_file(
    path: Path,
    max_chars: int = 1200,
    soft_max_chars: int = 800,
    digest: str | None = None,
    timings: dict[str, float] | None = None,
) -> Document:
    """Parse one file into a Document with its chunks; ParseError says why it cannot be.

    Seconds spent partitioning and chunking are added to `timings` when given."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ParseError(f"unsupported file type '{suffix or path.name}'")
    try:
        head = path.read_bytes()[:4096]
        stat = path.stat()
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror or exc}") from exc
    if not head.strip():
        raise ParseError("empty file")
    magic, complaint = _MAGIC.get(suffix, (b"", ""))
    if not head.startswith(magic):
        raise ParseError(complaint)
    title, chunks = partition_and_chunk(path, max_chars, soft_max_chars, timings)
    if not chunks:
        hint = " (a scanned PDF? OCR is not supported)" if suffix == ".pdf" else ""
        raise ParseError(f"no text found{hint}")
    return Document(
        uri=str(path.resolve()),
        title=title or _title_from_name(path),
        content_hash=digest or content_hash(path),
        chunks=tuple(chunks),
        mtime=stat.st_mtime,
        metadata={"format": suffix.lstrip("."), "size": stat.st_size},
    )


def _title_from_name(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").strip().capitalize() or path.name
