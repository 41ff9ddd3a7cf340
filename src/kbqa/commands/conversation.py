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


def earlier(home: Path) -> list[Turn]:
    """The turns a follow-up goes on from; a KbqaError when there are none to go on from."""
    path = home / FILE
    if not path.exists():
        raise KbqaError("nothing to follow up: ask a question first with `kbqa ask QUESTION`")
    try:
        turns = [(str(q), str(a)) for q, a in json.loads(path.read_text())["turns"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KbqaError(
            f"{path}: not a conversation kbqa wrote ({exc}); ask without --follow-up to start anew"
        ) from exc
    if not turns:
        raise KbqaError(
            "nothing to follow up: the last question was not answered; ask one with `kbqa ask`"
        )
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
