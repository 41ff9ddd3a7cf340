"""The bot's answer message: the answer as kbqa.render.slack draws it, and feedback buttons."""

from __future__ import annotations

import json

from kbqa.render import slack as render
from kbqa.render.slack import MAX_SOURCES, neutralize
from kbqa.types import Answer

__all__ = ["FEEDBACK_DOWN", "FEEDBACK_UP", "answer_blocks", "neutralize"]
BUTTON_VALUE_LIMIT = 2000
FEEDBACK_UP, FEEDBACK_DOWN = "kbqa_feedback_up", "kbqa_feedback_down"


def answer_blocks(answer: Answer) -> tuple[str, list[dict]]:
    """(fallback text, blocks) for an answer or an abstention, with the feedback buttons."""
    text, blocks = render.answer_blocks(answer)
    return text, [*blocks, _feedback_buttons(answer)]


def _feedback_buttons(answer: Answer) -> dict:
    # The click carries what is needed to store the feedback, within Slack's size limit.
    uris = [c.hit.uri for c in answer.citations][:MAX_SOURCES]
    keep = 900
    while True:
        payload = {"q": answer.question[:400], "a": answer.text[:keep], "c": uris}
        value = json.dumps(payload, ensure_ascii=False)
        if len(value) <= BUTTON_VALUE_LIMIT:
            break
        keep, uris = keep // 2, uris[:-1] if keep < 100 else uris
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": FEEDBACK_UP,
                "value": value,
                "text": {"type": "plain_text", "text": "👍 Helpful"},
            },
            {
                "type": "button",
                "action_id": FEEDBACK_DOWN,
                "value": value,
                "text": {"type": "plain_text", "text": "👎 Not helpful"},
            },
        ],
    }
