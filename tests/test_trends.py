"""What is rising: terms, bursts and topics on small hand-made frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from hnlab import analysis
from hnlab.analysis.trends import terms_of

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def hourly(hours: int, per_hour: int, make: object) -> pd.DataFrame:
    """``per_hour`` documents each hour, their text ``make(hour, i)``."""
    rows = []
    for h in range(hours):
        for i in range(per_hour):
            rows.append(
                {
                    "id": h * 1000 + i,
                    "time": T0 + timedelta(hours=h, minutes=i),
                    "text": make(h, i),  # type: ignore[operator]
                }
            )
    return pd.DataFrame(rows)


FILLER = [
    "postgres index tuning",
    "kernel scheduler notes",
    "browser engine history",
    "climate model data",
    "compiler design patterns",
    "startup pricing lessons",
    "satellite battery life",
    "terminal editor tips",
    "protein folding physics",
    "privacy encryption guide",
]


def test_terms_drop_hn_boilerplate_and_stop_words_and_keep_phrases() -> None:
    assert terms_of("Show HN: The Rust compiler (2019) [pdf]") == {
        "rust",
        "compiler",
        "rust compiler",
    }
    assert terms_of("Ask HN: Is &amp; C++ dead? (YC S24)") == {"c++", "dead", "c++ dead"}
    assert terms_of("Launch HN: Acme \u2013 databases in the browser") == {
        "acme",
        "databases",
        "browser",
    }


def test_term_trends_counts_documents_and_normalises_by_volume() -> None:
    docs = pd.DataFrame(
        {
            "time": [T0, T0 + timedelta(minutes=5), T0 + timedelta(hours=1)],
            "text": ["Rust rust Rust in the kernel", "Show HN: Rust", "Kernel news"],
        }
    )
    out = analysis.term_trends(docs, min_count=2)
    assert out.dtypes.astype(str).to_dict() == {
        "period": "datetime64[us, UTC]",
        "term": "string",
        "count": "int64",
        "share": "float64",
    }
    assert [tuple(r) for r in out.itertuples(index=False)] == [
        (pd.Timestamp(T0), "rust", 2, 1.0),
        (pd.Timestamp(T0), "kernel", 1, 0.5),
        (pd.Timestamp(T0 + timedelta(hours=1)), "kernel", 1, 1.0),
    ]
    with pytest.raises(ValueError, match=r"docs needs 'time' and 'text' columns, got \['title'"):
        analysis.term_trends(pd.DataFrame({"title": ["x"], "when": [T0]}))


def test_a_steadily_common_term_is_not_a_burst_but_a_new_one_is() -> None:
    def make(h: int, i: int) -> str:
        text = FILLER[(h + i) % len(FILLER)]
        if i % 2 == 0:
            text = f"Rust {text}"  # half of every hour, for two days
        if 30 <= h < 33 and i < 8:
            text = f"Zig {text}"  # 8 of 20 in hours 30-32 only
        return text

    docs = hourly(48, 20, make)
    found = analysis.bursts(docs)
    assert list(found["term"]) == ["zig"]
    burst = found.iloc[0]
    assert (burst["start"], burst["end"]) == (
        pd.Timestamp(T0 + timedelta(hours=30)),
        pd.Timestamp(T0 + timedelta(hours=33)),
    )
    assert burst["detected"] <= pd.Timestamp(T0 + timedelta(hours=31))
    assert burst["count"] == 24
    assert burst["peak_share"] == pytest.approx(0.4)
    assert burst["stories"] == sorted(h * 1000 + i for h in (30, 31, 32) for i in range(8))
    rust = analysis.term_trends(docs)
    assert rust.loc[rust["term"] == "rust", "share"].min() == pytest.approx(0.5)


def test_a_common_term_that_rises_over_its_own_baseline_is_a_burst() -> None:
    def make(h: int, i: int) -> str:
        share = 14 if 40 <= h < 42 else 2  # 10 % of the hour, then 70 % for two hours
        return f"{'GPU ' if i < share else ''}{FILLER[(h + i) % len(FILLER)]}"

    found = analysis.bursts(hourly(48, 20, make))
    assert list(found["term"]) == ["gpu"]
    assert found.iloc[0]["baseline_share"] == pytest.approx(0.1, rel=0.2)
    assert found.iloc[0]["start"] == pd.Timestamp(T0 + timedelta(hours=40))


def test_a_phrase_that_carries_its_words_is_one_burst() -> None:
    def make(h: int, i: int) -> str:
        text = FILLER[(h + i) % len(FILLER)]
        return f"Vision Pro {text}" if 20 <= h < 22 and i < 10 else text

    found = analysis.bursts(hourly(36, 20, make))
    assert list(found["term"]) == ["vision pro"]


def test_topics_separate_two_vocabularies_and_name_them() -> None:
    space = ["rocket launch orbit", "orbit satellite rocket", "launch satellite orbit"]
    food = ["bread recipe oven", "oven sourdough bread", "recipe sourdough oven"]
    docs = pd.DataFrame(
        {
            "id": range(60),
            "time": [T0 + timedelta(hours=n) for n in range(60)],
            "text": [(space if n % 2 else food)[n % 3] for n in range(60)],
        }
    )
    model = analysis.topics(docs, n_topics=2)
    assert sorted(model.topics["size"]) == [30, 30]
    by_doc = model.stories.set_index("id")["topic"]
    assert by_doc[docs["id"][docs.index % 2 == 1]].nunique() == 1
    assert by_doc[docs["id"][docs.index % 2 == 0]].nunique() == 1
    assert by_doc[1] != by_doc[0]
    names = dict(zip(model.topics["topic"], model.topics["terms"], strict=True))
    assert {"orbit", "rocket"} <= set(names[by_doc[1]])
    assert {"oven", "bread"} <= set(names[by_doc[0]])
    assert model.over_time["count"].sum() == 60
