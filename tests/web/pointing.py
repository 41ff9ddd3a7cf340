"""A core that answers by pointing at evidence units, as the pointer path does: the real core's
retrieval, with the units chosen by the test (found by a needle in the retrieved passages) and
yielded by `ask_stream` before the final Answer, each as soon as it is known."""

import re
from collections.abc import Iterator
from dataclasses import replace

from kbqa.types import Answer, Citation, Evidence

UNITS = re.compile(r"\n\n+|(?<=[.!?])\s+")


class Pointing:
    def __init__(self, core, units: list[tuple[str, str]]):
        """`units`: (a needle that picks the unit, the span it answers with; "" cites it whole)."""
        self.core, self.units = core, units

    def __getattr__(self, name: str):
        return getattr(self.core, name)

    def ask(self, question: str, **kwargs) -> Answer:
        *_, answer = self.ask_stream(question, **kwargs)
        return answer

    def ask_stream(self, question: str, **kwargs) -> Iterator[Evidence | Answer]:
        answer = self.core.ask(question, **kwargs)
        if answer.abstained:
            yield answer
            return
        citations: dict[int, Citation] = {}
        evidence = []
        for needle, span in self.units:
            hit = next(h for h in answer.hits if needle in h.text)
            unit = next(u for u in UNITS.split(hit.text) if needle in u)
            n = next((c.n for c in citations.values() if c.hit == hit), len(citations) + 1)
            citations[n] = Citation(n, hit)
            evidence.append(Evidence(n, unit, span))
            yield evidence[-1]
        yield replace(
            answer,
            text=" ".join(f"{e.text} [{e.n}]" for e in evidence),
            citations=tuple(citations.values()),
            mode="pointed",
            span=evidence[0].span,
            evidence=tuple(evidence),
            dropped=(),
            reason="",
        )
