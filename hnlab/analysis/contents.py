"""What the stories link to: ``load_contents`` (the ``contents`` table as a DataFrame)
and ``search`` (full-text search over the articles, ranked by PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from hnlab.analysis.loaders import _read, _typed, _window

CONTENT_COLUMNS = [
    "hn_id",
    "title",
    "url",
    "final_url",
    "domain",
    "outcome",
    "detail",
    "http_status",
    "content_type",
    "fetched_at",
    "attempts",
    "language",
    "author",
    "published",
    "word_count",
    "reading_minutes",
    "extractor_version",
    "story_title",
    "score",
    "comments",
]
CONTENT_TYPES = {
    "hn_id": "int64",
    "http_status": "Int64",
    "attempts": "int64",
    "word_count": "Int64",
    "score": "Int64",
    "comments": "Int64",
    "outcome": "category",
    "language": "string",
    "domain": "string",
}
READING_WPM = 238
"""Words a minute an adult reads non-fiction silently (Brysbaert, 2019)."""

_SEARCH_SQL = """
SELECT c.hn_id, coalesce(i.title, c.title) AS title, c.url,
       ts_rank_cd(c.search, q) AS rank,
       ts_headline('english', coalesce(c.text, ''), q,
                   'MaxWords=30, MinWords=12, MaxFragments=2, StartSel=«, StopSel=»') AS snippet,
       c.fetched_at, i.time AS submitted_at, i.score, i.descendants AS comments
  FROM contents c
  CROSS JOIN websearch_to_tsquery('english', :query) AS q
  LEFT JOIN items i ON i.id = c.hn_id
  CROSS JOIN LATERAL (SELECT coalesce(i.time, c.fetched_at) AS at) w
 WHERE c.search @@ q
   AND (CAST(:since AS timestamptz) IS NULL OR w.at >= CAST(:since AS timestamptz))
   AND (CAST(:until AS timestamptz) IS NULL OR w.at < CAST(:until AS timestamptz))
 ORDER BY rank DESC, c.hn_id DESC
 LIMIT :limit
"""


def load_contents(
    ids: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    text: bool = False,
    engine: sa.Engine | str | None = None,
) -> pd.DataFrame:
    """One row per story whose link was fetched (``fetched_at`` in [since, until), UTC).

    Columns: ``hn_id``, ``title`` (the page's), ``url``, ``final_url``, ``domain`` (the
    story URL's, as ``posts.domain``), ``outcome`` (category), ``detail``,
    ``http_status``, ``content_type``, ``fetched_at`` (UTC), ``attempts``, ``language``,
    ``author``, ``published``, ``word_count``, ``reading_minutes`` (at 238 words a
    minute), ``extractor_version``, and the story's ``story_title``, ``score`` and
    ``comments``; with ``text=True`` also ``text`` and ``markdown`` (plain strings:
    render them as text, never as HTML).
    """
    from hnlab.hn.items import extract_domain
    from hnlab.store.tables import contents as c
    from hnlab.store.tables import items as i

    columns = [col for col in c.c if col.name in CONTENT_COLUMNS]
    if text:
        columns += [c.c.text, c.c.markdown]
    stmt = (
        sa.select(
            *columns,
            i.c.title.label("story_title"),
            i.c.score,
            i.c.descendants.label("comments"),
        )
        .select_from(c.outerjoin(i, i.c.id == c.c.hn_id))
        .where(*_window(c.c.fetched_at, since, until))
        .order_by(c.c.hn_id)
    )
    if ids is not None:
        stmt = stmt.where(c.c.hn_id.in_([int(n) for n in ids]))
    df = _read(engine, stmt)
    df["domain"] = df["url"].map(extract_domain)
    df["reading_minutes"] = (df["word_count"].astype("float64") / READING_WPM).round(1)
    df = _typed(df, CONTENT_TYPES, ("fetched_at",))
    return df[CONTENT_COLUMNS + (["text", "markdown"] if text else [])]


def search(
    query: str,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    limit: int = 20,
    engine: sa.Engine | str | None = None,
) -> pd.DataFrame:
    """Stories whose article (title weighted above body) matches ``query`` (web-search
    syntax: words, ``"a phrase"``, ``or``, ``-word``), best first by ``ts_rank_cd``,
    submitted in [since, until) (UTC). ``snippet`` marks the matches with « ».

    Columns: ``hn_id``, ``title``, ``url``, ``rank``, ``snippet``, ``fetched_at``,
    ``submitted_at``, ``score``, ``comments``.
    """
    if not query.strip():
        from hnlab.errors import HnlabError

        raise HnlabError("the search query is empty; give words or a quoted phrase")
    params = {"query": query, "since": since, "until": until, "limit": limit}
    df = _read(engine, sa.text(_SEARCH_SQL).bindparams(**params))
    return _typed(
        df,
        {"hn_id": "int64", "rank": "float64", "score": "Int64", "comments": "Int64"},
        ("fetched_at", "submitted_at"),
    )


def outcomes_by_domain(contents: pd.DataFrame, top: int = 15) -> pd.DataFrame:
    """Fetches per domain and outcome (``load_contents``' rows): one row per domain, the
    ``top`` domains with most fetches, a column per outcome and ``ok_share``."""
    if contents.empty:
        return pd.DataFrame(columns=["ok_share"])
    table = pd.crosstab(contents["domain"].fillna("?"), contents["outcome"].astype(str))
    totals = table.sum(axis=1)
    order = sorted(table.index, key=lambda d: (-totals[d], d))[:top]
    table = table.loc[order]
    table["ok_share"] = (table.get("ok", 0) / totals[order]).round(3)
    table.columns.name = None
    return table


def reading_vs_engagement(contents: pd.DataFrame) -> pd.DataFrame:
    """For the articles extracted (``outcome`` ok): how reading time relates to the
    story's score and comments. One row per measure, with the articles counted, the
    median reading time, and Spearman's rank correlation with score and comments."""
    ok = contents[contents["outcome"] == "ok"].dropna(subset=["reading_minutes"])
    rows = []
    for what, column in (("score", "score"), ("comments", "comments")):
        pair = ok[["reading_minutes", column]].dropna().astype("float64")
        rho = (
            pair["reading_minutes"].corr(pair[column], method="spearman") if len(pair) > 2 else None
        )
        rows.append(
            {
                "against": what,
                "articles": len(pair),
                "median_minutes": round(float(pair["reading_minutes"].median()), 1)
                if len(pair)
                else None,
                "spearman": round(float(rho), 3) if rho is not None else None,
            }
        )
    return pd.DataFrame(rows).set_index("against")
