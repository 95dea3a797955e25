"""What is rising: terms per period, bursts found without being told the terms, and topics.

Each function takes ``docs``, a frame with a ``time`` column (UTC) and a ``text``
column (titles, article text or comments), and optionally an ``id`` column (the
story or comment id; the index is used when there is none). Terms are lower-cased
words and two-word phrases, with English stop words and HN's own boilerplate
("Show HN:", "Ask HN:", "(2019)", "[pdf]", "(YC S24)") removed first; a document
counts a term once, however often it repeats it.

No model and no download: the bursts are a statistical test on counts, the topics
scikit-learn's TF-IDF and NMF on the documents given.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["TopicModel", "bursts", "term_trends", "terms_of", "topics"]

_BOILERPLATE = re.compile(
    r"^\s*(show|ask|tell|launch)\s+hn\s*[:\-\u2013]?"  # Show HN:, Ask HN: ...
    r"|[\(\[]\s*(19|20)\d\d\s*[\)\]]"  # (2019)
    r"|[\(\[]\s*(pdf|video|audio|slides|paper|pdf, \d+ pages?)\s*[\)\]]"  # [pdf]
    r"|\(\s*yc\s+[swf]\d\d\s*\)",  # (YC S24)
    re.IGNORECASE,
)
_TOKEN = re.compile(r"[a-z0-9][a-z0-9+#]*(?:[.'-][a-z0-9+#]+)*")
_BREAKS = re.compile(r"[,:;!?()\[\]{}|/\"\u2013\u2014&]|\s-\s|\.(?:\s|$)")
_EXTRA_STOP = frozenset(
    {"hn", "new", "use", "using", "just", "like", "make", "way", "ways", "does", "don", "s", "t"}
)


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | _EXTRA_STOP


def terms_of(text: str, stop: frozenset[str] | None = None) -> set[str]:
    """The terms of one document: its words and adjacent word pairs, boilerplate and
    stop words removed (a pair spans neither a removed word nor punctuation),
    lower-cased."""
    stop = _stop_words() if stop is None else stop
    clean = _BOILERPLATE.sub(" ", html.unescape(str(text))).lower()
    out: set[str] = set()
    for segment in _BREAKS.split(clean):
        words = [w.strip("'") for w in _TOKEN.findall(segment)]
        keep = [bool(w) and w not in stop and not w.isdigit() and len(w) > 1 for w in words]
        out |= {w for w, k in zip(words, keep, strict=True) if k}
        out |= {
            f"{words[i]} {words[i + 1]}" for i in range(len(words) - 1) if keep[i] and keep[i + 1]
        }
    return out


def _exploded(docs: pd.DataFrame, freq: str) -> tuple[pd.DataFrame, pd.Series]:
    """One row per (document, term) with its period, and the documents per period."""
    if not {"time", "text"} <= set(docs.columns):
        raise ValueError(
            f"docs needs 'time' and 'text' columns, got {sorted(map(str, docs.columns))}"
        )
    stop = _stop_words()
    times = pd.to_datetime(docs["time"], utc=True)
    ids = docs["id"] if "id" in docs.columns else pd.Series(docs.index, index=docs.index)
    period = times.dt.floor(freq)
    rows = pd.DataFrame(
        {
            "period": period.to_numpy(),
            "id": ids.to_numpy(),
            "term": [sorted(terms_of(t, stop)) for t in docs["text"].fillna("")],
        }
    ).explode("term")
    rows = rows.dropna(subset=["term"])
    volume = period.value_counts().sort_index()
    return rows, volume


def term_trends(docs: pd.DataFrame, *, freq: str = "1h", min_count: int = 5) -> pd.DataFrame:
    """Per period and term: how many documents had it (``count``) and their share of the
    period's documents (``share``). Terms seen in fewer than ``min_count`` documents in
    all are left out.

    Columns: ``period`` (UTC, the period's start), ``term`` (string), ``count`` (int64),
    ``share`` (float64), sorted by period, then count, highest first.
    """
    rows, volume = _exploded(docs, freq)
    counts = rows.groupby(["period", "term"]).size().rename("count").reset_index()
    totals = counts.groupby("term")["count"].transform("sum")
    counts = counts[totals >= min_count]
    counts["share"] = counts["count"] / counts["period"].map(volume).to_numpy()
    counts = counts.sort_values(["period", "count", "term"], ascending=[True, False, True])
    out = counts.reset_index(drop=True).astype({"term": "string", "count": "int64"})
    return out[["period", "term", "count", "share"]]


def bursts(
    docs: pd.DataFrame,
    *,
    freq: str = "1h",
    window: int = 24,
    min_count: int = 4,
    min_ratio: float = 4.0,
    alpha: float = 0.01,
    max_gap: int = 1,
    scan: int = 3,
) -> pd.DataFrame:
    """Terms whose share rises well above their own baseline, with no list of terms given.

    The method is a volume-normalised Poisson test. For each term and period ``t`` the
    baseline share is the term's share over the ``window`` periods before ``t``, shrunk
    towards the term's share over all the data (with a weight of one window's worth of
    documents), so a term with no history is judged against its overall rate, not against
    zero. A run of 1 to ``scan`` periods is bursting when the term's count over it is at
    least ``min_count``, at least ``min_ratio`` times what the baseline share (at the run's
    first period) predicts for the run's documents, and a count that high has probability
    below ``alpha`` divided by the number of terms tested (Bonferroni: ``alpha`` is the
    chance of any false burst per run tested) under that Poisson; the periods of such a run
    that are raised themselves (at least 2 documents, half the ratio) are bursting. A term
    that is simply common is not a burst: its baseline is high. Bursting periods at most
    ``max_gap`` quiet periods apart are one burst. Where a phrase and one of its words burst
    together, the one that explains the other is kept: the phrase when it carries most of
    the word's documents, else the word.

    Columns: ``term``, ``start`` and ``end`` (UTC; the end is the last bursting period's
    end), ``detected`` (the end of the first period at which a run ending there passed: when
    a watcher of the live data would have known), ``weight`` (the sum over the burst of
    -log10 of the periods' p-values), ``count`` (documents with the term in the burst),
    ``baseline_share`` (at the burst's first period), ``peak_share`` (the highest period
    share) and ``stories`` (the ids of the documents that carried it, a list). Strongest
    first.
    """
    from scipy.stats import poisson

    rows, volume = _exploded(docs, freq)
    columns = [
        "term",
        "start",
        "end",
        "detected",
        "weight",
        "count",
        "baseline_share",
        "peak_share",
    ]
    if rows.empty:
        return pd.DataFrame(columns=[*columns, "stories"])
    periods = pd.date_range(volume.index.min(), volume.index.max(), freq=freq)
    vol = volume.reindex(periods, fill_value=0).to_numpy(dtype=float)
    step = periods[1] - periods[0] if len(periods) > 1 else pd.Timedelta(freq)
    totals = rows.groupby("term").size()
    candidates = totals[totals >= min_count].index
    rows = rows[rows["term"].isin(candidates)]
    position = pd.Series(np.arange(len(periods)), index=periods)
    rows = rows.assign(at=position.reindex(rows["period"]).to_numpy())
    grid = rows.groupby(["term", "at"]).size().unstack(fill_value=0)
    grid = grid.reindex(columns=range(len(periods)), fill_value=0)
    counts = grid.to_numpy(dtype=float)
    total_volume = vol.sum()
    overall = counts.sum(axis=1, keepdims=True) / max(total_volume, 1.0)
    # the ``window`` periods before each period (none before the first)
    past_c = np.roll(_trailing_sum(counts, window), 1, axis=1)
    past_v = np.roll(_trailing_sum(vol, window), 1)
    past_c[:, 0] = 0
    past_v[0] = 0
    prior = max(vol.mean() * window, 1.0)
    baseline = (past_c + overall * prior) / (past_v + prior)
    share = np.divide(counts, vol, out=np.zeros_like(counts), where=vol > 0)
    # Scan windows of 1..scan periods ending at each period: a burst of several
    # moderate periods is as clear as one loud one. Each window is judged against the
    # baseline at its first period, so the burst does not raise its own bar.
    per_test = alpha / max(len(counts), 1)  # Bonferroni over the terms tested
    hot = np.zeros(counts.shape, dtype=bool)
    fired = np.full(counts.shape, np.inf)  # smallest p-value of a window ending here
    p_best = np.ones(counts.shape)
    for width in range(1, scan + 1):
        c = _trailing_sum(counts, width)
        v = _trailing_sum(vol[None, :], width)[0]
        base = np.roll(baseline, width - 1, axis=1)
        base[:, : width - 1] = baseline[:, :1]
        p_value = poisson.sf(c - 1, np.maximum(base * v, 1e-12))
        ok = (c >= min_count) & (c >= min_ratio * base * v) & (p_value < per_test)
        ok[:, : width - 1] = False
        p_best = np.minimum(p_best, np.where(ok, p_value, 1.0))
        for lag in range(width):  # every period of a passing window is bursting
            hot[:, : hot.shape[1] - lag] |= ok[:, lag:]
        fired = np.minimum(fired, np.where(ok, np.arange(counts.shape[1]), np.inf))
    # a passing run may take in a quiet period before or after: only periods that are
    # themselves raised belong to the burst
    hot &= (counts >= 2) & (counts >= min_ratio / 2 * baseline * vol)

    found: list[dict[str, Any]] = []
    for ti, term in enumerate(grid.index):
        at = np.flatnonzero(hot[ti])
        if not len(at):
            continue
        runs = np.split(at, np.flatnonzero(np.diff(at) > max_gap + 1) + 1)
        for run in runs:
            first, last = int(run[0]), int(run[-1])
            span = slice(first, last + 1)
            detected = int(np.min(fired[ti, first:]))  # the first passing run's end
            found.append(
                {
                    "term": term,
                    "start": periods[first],
                    "end": periods[last] + step,
                    "detected": periods[detected] + step,
                    "weight": float(-np.log10(np.maximum(p_best[ti, span], 1e-300)).sum()),
                    "count": int(counts[ti, span].sum()),
                    "baseline_share": float(baseline[ti, first]),
                    "peak_share": float(share[ti, span].max()),
                }
            )
    out = pd.DataFrame(found, columns=columns)
    out = _explained(out)
    out["stories"] = [
        sorted(
            rows.loc[
                (rows["term"] == b.term) & (rows["period"] >= b.start) & (rows["period"] < b.end),
                "id",
            ].unique()
        )
        for b in out.itertuples()
    ]
    out = out.sort_values(["weight", "term"], ascending=[False, True]).reset_index(drop=True)
    return out.astype({"term": "string", "count": "int64"})


def _trailing_sum(values: np.ndarray, width: int) -> np.ndarray:
    """Along the last axis: the sum of the ``width`` values ending at each position."""
    total = np.cumsum(values, axis=-1)
    out = total.copy()
    out[..., width:] = total[..., width:] - total[..., :-width]
    return out


def _explained(found: pd.DataFrame) -> pd.DataFrame:
    """Drop a burst that an overlapping burst of a phrase or of its word explains."""
    if found.empty:
        return found
    drop: set[Any] = set()
    phrases = found[found["term"].str.contains(" ")]
    for pi, phrase in phrases.iterrows():
        for word in str(phrase["term"]).split(" "):
            same = found[
                (found["term"] == word)
                & (found["start"] < phrase["end"])
                & (found["end"] > phrase["start"])
            ]
            for wi, single in same.iterrows():
                if phrase["count"] >= 0.8 * single["count"]:
                    drop.add(wi)
                else:
                    drop.add(pi)
    return found.drop(index=list(drop)).reset_index(drop=True)


@dataclass(frozen=True)
class TopicModel:
    """What ``topics`` found: ``stories`` (each document's topic), ``topics`` (each
    topic's size and top terms) and ``over_time`` (documents per topic and period)."""

    stories: pd.DataFrame
    topics: pd.DataFrame
    over_time: pd.DataFrame


def topics(
    docs: pd.DataFrame,
    n_topics: int | None = None,
    *,
    freq: str = "1D",
    n_terms: int = 6,
    seed: int = 0,
) -> TopicModel:
    """Group the documents into topics: TF-IDF over their terms, then NMF.

    ``n_topics`` defaults to ``sqrt(len(docs) / 10)`` clamped to 3..20. A topic is
    named by its three top terms. ``stories``: ``id, time, topic, topic_name,
    weight`` (the document's loading on its topic; 0 and topic -1 when it has no
    known term). ``topics``: ``topic, name, size, terms`` (the top ``n_terms``).
    ``over_time``: ``period, topic, name, count``.
    """
    from sklearn.decomposition import NMF
    from sklearn.feature_extraction.text import TfidfVectorizer

    stop = _stop_words()
    terms = [sorted(terms_of(t, stop)) for t in docs["text"].fillna("")]
    if len(docs) < 2 or not any(terms):
        raise ValueError(f"topics needs at least 2 documents with terms, got {len(docs)}")
    k = n_topics or int(min(20, max(3, round(math.sqrt(len(docs) / 10)))))
    vectorizer = TfidfVectorizer(analyzer=_identity, min_df=2 if len(docs) >= 20 else 1)
    matrix = vectorizer.fit_transform(terms)
    k = max(1, min(k, matrix.shape[1], len(docs)))
    model = NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=400)
    loadings = model.fit_transform(matrix)
    vocabulary = np.asarray(vectorizer.get_feature_names_out())
    top = [vocabulary[np.argsort(row)[::-1][:n_terms]].tolist() for row in model.components_]
    names = [_name(words) for words in top]
    best = loadings.argmax(axis=1)
    weight = loadings.max(axis=1)
    topic = np.where(weight > 0, best, -1)
    ids = docs["id"] if "id" in docs.columns else pd.Series(docs.index, index=docs.index)
    stories = pd.DataFrame(
        {
            "id": ids.to_numpy(),
            "time": pd.to_datetime(docs["time"], utc=True).to_numpy(),
            "topic": topic.astype("int64"),
            "topic_name": [names[t] if t >= 0 else "" for t in topic],
            "weight": weight,
        }
    )
    stories["time"] = pd.to_datetime(stories["time"], utc=True)
    sizes = stories["topic"].value_counts()
    table = pd.DataFrame(
        {
            "topic": np.arange(k, dtype="int64"),
            "name": names,
            "size": [int(sizes.get(i, 0)) for i in range(k)],
            "terms": top,
        }
    ).sort_values(["size", "topic"], ascending=[False, True], ignore_index=True)
    known = stories[stories["topic"] >= 0]
    over_time = (
        known.assign(period=known["time"].dt.floor(freq))
        .groupby(["period", "topic", "topic_name"])
        .size()
        .rename("count")
        .reset_index()
        .rename(columns={"topic_name": "name"})
    )
    return TopicModel(stories, table, over_time)


def _name(terms: list[str], size: int = 3) -> str:
    """A topic's name: its top terms, skipping one whose words are already named."""
    chosen: list[str] = []
    for term in terms:
        named = {w for t in chosen for w in t.split(" ")}
        if not set(term.split(" ")) <= named:
            chosen.append(term)
        if len(chosen) == size:
            break
    return ", ".join(chosen)


def _identity(terms: Iterable[str]) -> Iterable[str]:
    return terms
