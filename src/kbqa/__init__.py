"""kbqa: grounded, cited answers from your own docs and Slack threads, on one machine."""

import logging

from kbqa.errors import KbqaError
from kbqa.settings import Settings
from kbqa.types import Answer, Chunk, Citation, Document, Hit

__all__ = ["Answer", "Chunk", "Citation", "Document", "Hit", "KbqaError", "Settings"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
