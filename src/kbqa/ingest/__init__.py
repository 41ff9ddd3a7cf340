"""Sources -> documents -> chunks. Nothing here touches the database or the index."""

from kbqa.ingest.files import SUPPORTED_SUFFIXES, content_hash, discover, parse_file

__all__ = ["SUPPORTED_SUFFIXES", "content_hash", "discover", "parse_file"]
