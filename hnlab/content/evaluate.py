"""Scoring extraction against known article text.

``shingle_f1`` is the article-extraction benchmark's measure: the text is lowered and
cut into words, the words into overlapping 4-word shingles, and precision and recall
are the shared shingles (as multisets) over the extracted and the true ones.
``score_web`` scores what the content job stored against the simulator's web.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from hnlab.sim.web import SimulatedWeb

SHINGLE = 4
_WORD = re.compile(r"\w+")


def shingles(text: str, n: int = SHINGLE) -> Counter[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return Counter([tuple(words)]) if words else Counter()
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def shingle_prf(predicted: str, truth: str, n: int = SHINGLE) -> tuple[float, float, float]:
    """Precision, recall and F1 of ``predicted`` against ``truth``."""
    got, want = shingles(predicted, n), shingles(truth, n)
    if not got and not want:
        return 1.0, 1.0, 1.0
    shared = sum((got & want).values())
    precision = shared / sum(got.values()) if got else 0.0
    recall = shared / sum(want.values()) if want else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@dataclass
class WebScore:
    """How the stored contents compare with the simulator's web."""

    pages: int
    outcome_accuracy: float
    articles: int
    precision: float
    recall: float
    f1: float
    language_accuracy: float
    confusions: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def score_web(contents: pd.DataFrame, web: SimulatedWeb) -> WebScore:
    """Score ``contents`` (``analysis.load_contents(text=True)``) against ``web``'s truth:
    the outcome of every page, and the mean shingle P/R/F1 and the language of every
    true article the job extracted."""
    right, scores, languages = 0, [], []
    confusions: Counter[str] = Counter()
    for row in contents.to_dict("records"):
        page = web.truth_for(str(row["url"]))
        got = str(row["outcome"])
        if got == page.outcome:
            right += 1
        else:
            confusions[f"{page.outcome}->{got}"] += 1
        if page.outcome == "ok":
            text = row.get("text")
            scores.append(shingle_prf(text if isinstance(text, str) else "", page.text))
            languages.append(row.get("language") == page.language)
    n = len(contents)

    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 4) if values else 0.0

    return WebScore(
        pages=n,
        outcome_accuracy=round(right / n, 4) if n else 0.0,
        articles=len(scores),
        precision=mean([s[0] for s in scores]),
        recall=mean([s[1] for s in scores]),
        f1=mean([s[2] for s in scores]),
        language_accuracy=mean([float(x) for x in languages]),
        confusions=dict(confusions),
    )
