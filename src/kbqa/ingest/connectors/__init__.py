"""Connectors to remote services, each built by name from a `[[sources]]` entry."""

from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from kbqa.errors import ConfigError, MissingDependencyError
from kbqa.ingest.connectors.config import SourceConfig

if TYPE_CHECKING:
    from kbqa.ingest.connectors.base import Connector

# Imported only when a source of that kind is synced: each pulls in its own dependencies.
BUILDERS = {
    "confluence": "kbqa.ingest.connectors.confluence:build",
    "jira": "kbqa.ingest.connectors.jira:build",
    "git": "kbqa.ingest.connectors.git:build",
    "github": "kbqa.ingest.connectors.github:build",
    "web": "kbqa.ingest.connectors.web:build",
    "gdrive": "kbqa.ingest.connectors.gdrive:build",
    "notion": "kbqa.ingest.connectors.notion:build",
}


def build_connector(config: SourceConfig, home: Path | None = None) -> Connector:
    """The connector for one `[[sources]]` entry of the knowledge base under `home`."""
    if home is not None:
        config = replace(config, home=home)
    target = BUILDERS.get(config.kind)
    if target is None:
        raise ConfigError(f"source '{config.name}': no connector of kind {config.kind!r}")
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("kbqa."):
            raise ConfigError(
                f"source '{config.name}': the {config.kind} connector is not "
                "available in this version"
            ) from exc
        raise MissingDependencyError(exc.name or "a package", "connectors") from exc
    return getattr(module, attribute)(config)


__all__ = ["BUILDERS", "SourceConfig", "build_connector"]
