"""`kbqa serve`: the HTTP API, the OpenAI-compatible endpoint and the web pages, over the core."""

from kbqa.serve.app import create_app

__all__ = ["create_app"]
