"""Writing a QA evaluation's report: report.md (a table per config), metrics.json, each
config's answers-<config>.jsonl and coverage.png (accuracy against coverage)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kbqa.evals.qa import QaReport

_COLUMNS = {
    "answered": "answered",
    "em": "EM",
    "f1": "F1",
    "span_f1": "span F1",
    "contains": "has answer",
    "citation_precision": "cit. P",
    "citation_precision_answerable": "cit. P (answerable)",
    "citation_recall": "cit. R",
    "abstention_precision": "abst. P",
    "abstention_recall": "abst. R",
    "auroc": "AUROC",
    "auroc_cosine": "AUROC cos",
    "rejected_sentences": "rejected sent.",
}


def write(report: QaReport) -> None:
    def clean(value: float) -> float | None:
        return None if isinstance(value, float) and math.isnan(value) else round(value, 4)

    records = [r for found in report.records.values() for r in found]
    answerable = sum(r["answerable"] for r in records) // max(len(report.records), 1)
    data = {
        "dataset": report.dataset,
        "split": report.split,
        "questions": report.questions,
        "answerable": answerable,
        "min_confidence": report.gate.min_confidence,
        "min_hit_score": report.gate.min_hit_score,
        "min_quote_confidence": report.gate.min_quote_confidence,
        "gated": report.gated,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "configs": {k: {m: clean(v) for m, v in row.items()} for k, row in report.rows.items()},
        "support_check": {k: clean(v) for k, v in report.support.items()},
        "seconds": {k: round(v, 1) for k, v in report.seconds.items()},
    }
    folder = report.folder
    (folder / "metrics.json").write_text(json.dumps(data, indent=2) + "\n")
    for label, found in report.records.items():
        with open(folder / f"answers-{_slug(label)}.jsonl", "w", encoding="utf-8") as f:
            for record in found:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    lines = [
        f"# Answers on {report.dataset} ({report.split}: {report.questions} questions, "
        f"{report.questions - answerable} of them unanswerable)",
        "",
        f"Abstains below {report.gate.describe()}. F1, EM and 'has answer' are "
        "over the answerable questions (an abstention scores 0); citation precision is over "
        "delivered answers; AUROC is of the confidence for answerable vs not; 'rejected sent.' "
        "is the share of the generator's own sentences the support check removed. The plot moves "
        "min_confidence alone."
        + (
            " Gated run: nothing was generated below the gate, so below min_confidence the "
            "plot counts those questions as abstentions."
            if report.gated
            else ""
        ),
        "",
        "| config | " + " | ".join(_COLUMNS.values()) + " | seconds |",
        "|---" * (len(_COLUMNS) + 2) + "|",
    ]
    for label, row in report.rows.items():
        cells = " | ".join(_cell(row[k]) for k in _COLUMNS)
        took = report.seconds.get(label)
        lines.append(f"| {label} | {cells} | {'' if took is None else f'{took:.0f}'} |")
    s = report.support
    lines += [
        "",
        f"Support check on {s['pairs']} reference/hallucinated answer pairs, each against the "
        f"gold paragraph: accuracy {_cell(s['accuracy'])}, right answers passed "
        f"{_cell(s['right_passed'])}, hallucinated answers passed {_cell(s['wrong_passed'])}.",
        "",
        "![answered share vs accuracy](coverage.png)",
        "",
    ]
    (folder / "report.md").write_text("\n".join(lines))
    _plot(report)


def _cell(value: float) -> str:
    return "–" if isinstance(value, float) and math.isnan(value) else f"{value:.3f}"


def _slug(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in label).strip("-")


def _plot(report: QaReport) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: write a file
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, points in report.curves.items():
        ax.plot([p[1] for p in points], [p[2] for p in points], label=label)
    ax.set_xlabel("share of questions answered")
    ax.set_ylabel("accuracy of the answered")
    ax.set_title(f"{report.dataset} ({report.split}): moving the abstention threshold")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(report.folder / "coverage.png", dpi=100)
    plt.close(fig)
