"""Files on disk: finding them, fingerprinting them, and parsing them into Documents."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from kbqa.errors import ParseError
from kbqa.ingest.partition import markup_share, partition_and_chunk
from kbqa.types import Document

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = frozenset(
    {".md", ".markdown", ".html", ".htm", ".txt", ".text", ".rst", ".pdf", ".docx"}
)
TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".text", ".rst"})
# What unstructured is told each file is. Left to guess, it calls a Sphinx page that starts with
# a blank line (libmagic: application/javascript) plain text, and its markup gets indexed.
CONTENT_TYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".txt": "text/plain",
    ".text": "text/plain",
    ".rst": "text/x-rst",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
_HTML_START = re.compile(
    rb"\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*(<!doctype\s+html|<html[\s>])",
    re.IGNORECASE | re.DOTALL,
)
_SNIFF_BYTES = 2048
# A file whose chunks have more of their characters inside HTML tags than this is markup that
# no parser took for markup: it is reported, not indexed. Measured on 120 real pages
# (docs/ingest-markup.md): Sphinx pages read as plain text 0.38-0.82, the same parsed as HTML at
# most 0.10. Not per chunk: the HTML examples of Django's forms docs are chunks 90 % tags.
MAX_MARKUP_SHARE = 0.2
# Cheap checks that catch a renamed or truncated file before a parser gives a confusing error.
_MAGIC = {".pdf": (b"%PDF-", "not a PDF file"), ".docx": (b"PK\x03\x04", "not a DOCX file")}
_MB = 1024 * 1024


@dataclass(frozen=True)
class FileLimits:
    """What one file may cost before it is skipped (the settings of the same names)."""

    max_file_bytes: int = 32 * _MB
    max_unpacked_bytes: int = 256 * _MB
    max_file_seconds: float = 60.0
    max_parse_memory_bytes: int = 2048 * _MB


def discover(root: Path) -> tuple[list[Path], list[Path]]:
    """(supported files, unsupported files) under root, sorted; hidden files are left out.
    Links to folders are not followed (so a link loop cannot recur)."""
    files, unsupported, _ = discover_all(root)
    return files, unsupported


def discover_all(root: Path) -> tuple[list[Path], list[Path], list[tuple[str, str]]]:
    """discover(), and (path, reason) for each symbolic link that leads nowhere or in a loop."""
    if root.is_file():
        paths, broken = [root], []
    else:
        paths, broken = [], []
        for p in sorted(root.rglob("*")):
            if any(part.startswith(".") for part in p.relative_to(root).parts):
                continue
            if p.is_file():
                paths.append(p)
            elif p.is_symlink() and not p.exists():
                broken.append((str(p), _broken_link(p)))
    supported, unsupported = [], []
    for p in paths:
        # Only a file without an extension is opened to be typed.
        head = _head(p) if not p.suffix else b""
        (supported if file_kind(p, head) else unsupported).append(p)
    return supported, unsupported, broken


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(_SNIFF_BYTES)
    except OSError:
        return b""


def looks_like_html(head: bytes) -> bool:
    """Whether a file's first bytes open an HTML page (a doctype or <html>, after any BOM,
    blank lines, XML declaration or comments)."""
    return bool(_HTML_START.match(head.removeprefix(b"\xef\xbb\xbf")))


def file_kind(path: Path, head: bytes) -> str | None:
    """The suffix a file is parsed as, from its extension first; `head` (its first bytes) is
    read only where the extension is missing (an HTML page or a PDF) or a text extension holds
    an HTML page. None: not a supported file."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return ".html" if looks_like_html(head) else suffix
    if suffix in SUPPORTED_SUFFIXES:
        return suffix
    if suffix:
        return None
    if looks_like_html(head):
        return ".html"
    return ".pdf" if head.startswith(b"%PDF-") else None


def _broken_link(path: Path) -> str:
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            return "a symbolic link loop"
    return f"a broken symbolic link (to {os.readlink(path)})"


def check_size(path: Path, limits: FileLimits) -> None:
    """ParseError when the file is larger than max_file_bytes (checked before it is read)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror or exc}") from exc
    if size > limits.max_file_bytes:
        raise ParseError(
            f"{size / _MB:.1f} MB, more than max_file_bytes ({limits.max_file_bytes / _MB:g} MB)"
        )


def check_contents(path: Path, data: bytes, limits: FileLimits, kind: str | None = None) -> None:
    """ParseError for what no parser should be given: binary data or invalid UTF-8 in a text
    file, a DOCX that unpacks to more than max_unpacked_bytes (a zip bomb). `kind`: the suffix
    the file is parsed as (file_kind), its own by default."""
    suffix = kind or path.suffix.lower()
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))  # a BOM: NUL bytes are expected
    if suffix in TEXT_SUFFIXES | {".html", ".htm"} and not utf16 and b"\x00" in data[:65536]:
        raise ParseError("binary data, not text")
    if suffix in TEXT_SUFFIXES and not utf16:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"not UTF-8 text (an invalid byte at offset {exc.start})") from None
    if suffix == ".docx":
        try:
            with zipfile.ZipFile(path) as archive:
                # Python's zipfile never inflates a member past its declared size, so the
                # declared sizes bound what parsing can unpack.
                unpacked = sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ParseError(f"not a DOCX file ({exc})") from None
        if unpacked > limits.max_unpacked_bytes:
            raise ParseError(
                f"unpacks to {unpacked / _MB:.0f} MB, more than max_unpacked_bytes "
                f"({limits.max_unpacked_bytes / _MB:g} MB): a zip bomb?"
            )


# How a file becomes chunks. Bumped when parsing or chunking changes what an unchanged file's
# chunks or labels are (2: a plain-text file is titled by its name, not its first heading; 3:
# that name's words as the text writes them, "VPN"). It is part of a file's fingerprint, with
# the chunk sizes, so the next ingest parses every file again ("updated") instead of keeping
# what an older kbqa, or other sizes, made of it.
PARSE_VERSION = 3


def content_hash(path: Path, max_chars: int = 1200, soft_max_chars: int = 800) -> str:
    """The file's fingerprint: its bytes, the parse version and the chunk sizes."""
    digest = hashlib.sha256(f"kbqa parse {PARSE_VERSION} {max_chars} {soft_max_chars}\n".encode())
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
    limits: FileLimits | None = None,
) -> Document:
    """Parse one file into a Document with its chunks; ParseError says why it cannot be.

    Seconds spent partitioning and chunking are added to `timings` when given. The limits'
    size checks apply here; time and memory are bounded by parsing in a worker (worker.py)."""
    limits = limits or FileLimits()
    if path.suffix and file_kind(path, b"") is None:
        raise ParseError(f"unsupported file type '{path.suffix.lower()}'")
    check_size(path, limits)
    try:
        data = path.read_bytes()
        stat = path.stat()
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror or exc}") from exc
    head = data[:4096]
    if not head.strip():
        raise ParseError("empty file")
    suffix = file_kind(path, head[:_SNIFF_BYTES])
    if suffix is None:
        raise ParseError(f"unsupported file type '{path.name}' (no extension, not HTML or PDF)")
    magic, complaint = _MAGIC.get(suffix, (b"", ""))
    if not head.startswith(magic):
        raise ParseError(complaint)
    check_contents(path, data, limits, suffix)
    del data
    title, chunks = partition_and_chunk(
        path, max_chars, soft_max_chars, timings, content_type=CONTENT_TYPES[suffix]
    )
    if not chunks:
        hint = " (a scanned PDF? OCR is not supported)" if suffix == ".pdf" else ""
        raise ParseError(f"no text found{hint}")
    share = markup_share("\n".join(c.text for c in chunks))
    if share > MAX_MARKUP_SHARE:
        raise ParseError(f"mostly markup, not text: {share:.0%} of its text is HTML tags")
    return Document(
        uri=str(path.resolve()),
        title=title or _title_from_name(path, "\n".join(c.text for c in chunks)),
        content_hash=digest or content_hash(path, max_chars, soft_max_chars),
        chunks=tuple(chunks),
        mtime=stat.st_mtime,
        metadata={"format": suffix.lstrip("."), "size": stat.st_size},
    )


def _title_from_name(path: Path, text: str = "") -> str:
    """The file's name as a title ("kafka-consumer-lag.txt": "Kafka consumer lag"), a word
    as the text's sentences most often write it ("vpn.txt": "VPN"): a line in capitals is a
    heading, not how the text writes a word."""
    words = path.stem.replace("_", " ").replace("-", " ").split()
    if not words:
        return path.name
    lines = [line for line in text.splitlines() if any(c.islower() for c in line)]
    written = Counter(w for line in lines for w in re.findall(r"[^\W_]+", line))

    def cased(word: str) -> str:
        forms = [(count, form) for form, count in written.items() if form.lower() == word.lower()]
        return max(forms)[1] if forms else word.lower()

    title = " ".join(cased(word) for word in words)
    return title[:1].upper() + title[1:]
