"""The conversation `kbqa ask --follow-up` goes on with: the last answered turns of `kbqa ask`,
kept in one small JSON file per home (KBQA_HOME/conversation.json)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from kbqa.errors import KbqaError
from kbqa.types import Answer

FILE = "conversation.json"
TURNS = 3  # the earlier turns a follow-up is asked with (as `kbqa chat`)

Turn = tuple[str, str]


# Said (on stderr) when `kbqa ask --follow-up` has no answered turn to go on from.
NOTHING = "(nothing answered to follow up yet, so this question is searched as asked)"


def earlier(home: Path) -> list[Turn]:
    """The answered turns a follow-up goes on from ([] when none was answered yet: the question
    is then asked as it is); a KbqaError for a file kbqa did not write."""
    path = home / FILE
    if not path.exists():
        return []
    try:
        turns = [(str(q), str(a)) for q, a in json.loads(path.read_text())["turns"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KbqaError(
            f"{path}: not a conversation kbqa wrote ({exc}); ask without --follow-up to start anew"
        ) from exc
    return turns


def keep(home: Path, history: list[Turn], question: str, answer: Answer) -> None:
    """Keep the conversation with this turn added (an abstention adds nothing: a follow-up goes
    on from what was answered)."""
    turns = list(history) if answer.abstained else [*history, (question, answer.text)]
    home.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: a reader never sees half a file.
    partial = home / f".{FILE}.{os.getpid()}"
    partial.write_text(json.dumps({"turns": turns[-TURNS:]}, ensure_ascii=False))
    partial.replace(home / FILE)
