"""Minute data out to Parquet, for engines beyond one machine (DuckDB, Polars, Spark).

``export_ranks`` writes ``load_ranks``' rows and ``export_items`` ``load_items``'
month by month, so memory holds one month at a time, into Hive-style folders::

    OUT/month=2026-03/ranks.parquet    (or items.parquet)

which ``pandas.read_parquet(OUT)``, DuckDB's ``read_parquet('OUT/**/*.parquet',
hive_partitioning = true)``, Polars' ``scan_parquet`` and Spark all read, with
``month`` as a column. Each file is written beside its target and renamed when
complete; exporting a month again replaces it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from hnlab import analysis
from hnlab.config import Settings, make_dir
from hnlab.errors import ConfigError
from hnlab.store import db

log = logging.getLogger(__name__)


@dataclass
class Exported:
    """What an export wrote: one file per month that had data."""

    rows: int = 0
    files: list[Path] = field(default_factory=list)


def _months(since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    spans = []
    month = date(since.year, since.month, 1)
    while datetime(month.year, month.month, 1, tzinfo=UTC) < until:
        nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        start = max(since, datetime(month.year, month.month, 1, tzinfo=UTC))
        end = min(until, datetime(nxt.year, nxt.month, 1, tzinfo=UTC))
        spans.append((start, end))
        month = nxt
    return spans


def export_ranks(settings: Settings, since: datetime, until: datetime, out: Path) -> Exported:
    """Write the observations in ``[since, until)`` to ``out`` as Parquet, one file a month."""
    return _export(settings, since, until, out, "ranks", analysis.load_ranks)


def export_items(settings: Settings, since: datetime, until: datetime, out: Path) -> Exported:
    """Write the items created in ``[since, until)`` to ``out`` as Parquet, one file a month."""
    return _export(
        settings,
        since,
        until,
        out,
        "items",
        lambda a, b, url: analysis.load_items(a, b, engine=url),
    )


def _export(
    settings: Settings,
    since: datetime,
    until: datetime,
    out: Path,
    name: str,
    load: Callable[[datetime, datetime, str], pd.DataFrame],
) -> Exported:
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    if since >= until:
        raise ConfigError(
            f"--since {since:%Y-%m-%d %H:%M} must be before --until {until:%Y-%m-%d %H:%M}"
        )
    make_dir(out, "--out directory")
    url = db.prepare(settings).url
    exported = Exported()
    for start, end in _months(since, until):
        frame = load(start, end, url)
        if frame.empty:
            continue
        folder = out / f"month={start:%Y-%m}"
        folder.mkdir(exist_ok=True)
        target = folder / f"{name}.parquet"
        partial = folder / f".{name}.parquet.partial"
        frame.to_parquet(partial, index=False)
        partial.replace(target)
        exported.rows += len(frame)
        exported.files.append(target)
        log.info("wrote %s rows to %s", len(frame), target)
    return exported
