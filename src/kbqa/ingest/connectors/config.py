"""`[[sources]]` tables of kbqa.toml: one SourceConfig each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kbqa.errors import ConfigError

KINDS = ("confluence", "jira", "git", "github", "web", "gdrive", "notion")
_KNOWN = ("name", "kind", "url", "token_env", "user_env", "scope", "schedule_minutes")


@dataclass(frozen=True)
class SourceConfig:
    name: str
    kind: str
    url: str  # the service's base URL; a git repository may be a local path
    token_env: str = ""  # the environment variable holding the credential
    user_env: str = ""  # where a service needs a user or email beside the token
    scope: tuple[str, ...] = ()  # spaces, projects, repos, folders, base paths
    schedule_minutes: int = 0  # 0: only when asked (`kbqa sync NAME`)
    options: Mapping[str, Any] = field(default_factory=dict)  # the table's other keys
    # The credential's values, read from token_env / user_env by Settings.load; never shown.
    token: str = field(default="", repr=False, compare=False)
    user: str = field(default="", repr=False, compare=False)
    # The knowledge base's KBQA_HOME, set by build_connector: where a connector keeps its own
    # state (git's mirror), so two knowledge bases never share one.
    home: Path | None = field(default=None, compare=False)


def parse_sources(tables: Any, environ: Mapping[str, str]) -> tuple[SourceConfig, ...]:
    """Each `[[sources]]` table as a SourceConfig; a bad one is a one-line ConfigError naming
    `[[sources]] N` (from 1) and the field."""
    if not isinstance(tables, list):
        raise ConfigError("[[sources]] must be an array of tables ([[sources]] name = …)")
    configs: list[SourceConfig] = []
    for n, table in enumerate(tables, 1):
        where = f"[[sources]] {n}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        for key in ("name", "kind", "url"):
            if not isinstance(table.get(key), str) or not table[key].strip():
                raise ConfigError(f"{where}: '{key}' is missing (a non-empty string)")
        name, kind = table["name"].strip(), table["kind"].strip()
        where = f"[[sources]] {n} ({name})"
        if kind not in KINDS:
            raise ConfigError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, not {kind!r}")
        if any(c.name == name for c in configs):
            raise ConfigError(f"{where}: 'name' is used by another source")
        scope = table.get("scope", [])
        if isinstance(scope, str):
            scope = [scope]
        if not isinstance(scope, list) or not all(isinstance(s, str) for s in scope):
            raise ConfigError(f"{where}: 'scope' must be a list of strings")
        schedule = table.get("schedule_minutes", 0)
        if isinstance(schedule, bool) or not isinstance(schedule, int) or schedule < 0:
            raise ConfigError(f"{where}: 'schedule_minutes' must be a whole number >= 0")
        names = {}
        for key in ("token_env", "user_env"):
            value = table.get(key, "")
            if not isinstance(value, str):
                raise ConfigError(f"{where}: '{key}' must be an environment variable's name")
            names[key] = value.strip()
        configs.append(
            SourceConfig(
                name=name,
                kind=kind,
                url=table["url"].strip(),
                token_env=names["token_env"],
                user_env=names["user_env"],
                scope=tuple(s.strip() for s in scope if s.strip()),
                schedule_minutes=schedule,
                options={k: v for k, v in table.items() if k not in _KNOWN},
                token=environ.get(names["token_env"], "") if names["token_env"] else "",
                user=environ.get(names["user_env"], "") if names["user_env"] else "",
            )
        )
    return tuple(configs)


def need_token(config: SourceConfig) -> str:
    """The source's credential, or a one-line ConfigError saying which variable to set."""
    if not config.token:
        what = config.token_env or "token_env"
        raise ConfigError(
            f"source '{config.name}': set {what} (the {config.kind} credential)"
            if config.token_env
            else f"source '{config.name}': set token_env to the variable holding its credential"
        )
    return config.token
