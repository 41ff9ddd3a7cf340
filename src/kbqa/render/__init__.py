"""How an answer is shown, for every interface. `shown(answer)` is the one model of what is
shown (the text and its marked span, the quoted evidence, the sources with label, place and
age, why it abstained); one module per medium renders it: `terminal` (the CLI), `markdown` (the
OpenAI endpoint), `slack` (mrkdwn blocks), `page` (JSON for the web page and its event stream)."""

from kbqa.render.model import (
    Shown,
    Source,
    age,
    cached_line,
    display_uri,
    shown,
    why_no_answer,
)

__all__ = ["Shown", "Source", "age", "cached_line", "display_uri", "shown", "why_no_answer"]
