"""The prompt: numbered passages, the question, and the rules the model must follow."""

from __future__ import annotations

from kbqa.types import Hit

ABSTAIN_TEXT = "I couldn't find this in the knowledge base."

SYSTEM = (
    "You answer questions for engineers using only the numbered passages you are given. "
    "Answer in one to three short sentences, copying commands, names and numbers exactly. "
    "End every sentence with the number of the passage it comes from, like [1]. "
    "If the passages do not contain the answer, reply exactly: I don't know."
)


def build_messages(
    question: str, hits: list[Hit], history: list[tuple[str, str]] = ()
) -> list[dict[str, str]]:
    """Chat messages for the generator; `history` is earlier (question, answer) turns."""
    passages = "\n\n".join(f"[{n}] ({hit.label})\n{hit.text}" for n, hit in enumerate(hits, 1))
    messages = [{"role": "system", "content": SYSTEM}]
    for asked, answered in history:
        messages += [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
    messages.append({"role": "user", "content": f"Passages:\n\n{passages}\n\nQuestion: {question}"})
    return messages
