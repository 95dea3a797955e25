"""``hnlab content``: fetch the stories' links politely, read them, re-extract from the
archive; ``hnlab search``: full-text search over what they say."""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
from datetime import UTC, datetime
from typing import Any

import click

from hnlab.cli.base import Context, _echo_table, _fmt_time, cli, pass_ctx
from hnlab.errors import HnlabError

# C0 and C1 controls but tab and newline: a page's text never drives the terminal
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """Untrusted text made safe to print: escape sequences and other controls removed."""
    return _CONTROLS.sub("", text)


@cli.group()
def content() -> None:
    """What the stories link to: fetched politely, archived as WARC, extracted."""


@content.command("fetch")
@click.option("--once", is_flag=True, help="Run one pass and exit.")
@click.option(
    "--hn-id", "hn_ids", type=click.IntRange(1), multiple=True, help="Fetch this story (again)."
)
@click.option("--json", "as_json", is_flag=True, help="What the pass did, as JSON.")
@pass_ctx
def content_fetch(obj: Context, once: bool, hn_ids: tuple[int, ...], as_json: bool) -> None:
    """Fetch the links of stories that reached rank <= HNLAB_CONTENT_TOP on top or were
    saved as posts, once each; without --once (or --hn-id), a pass every
    HNLAB_CONTENT_EVERY minutes until interrupted."""
    from hnlab.content.job import ContentJob
    from hnlab.run.factory import open_parts

    settings = obj.settings()
    once = once or bool(hn_ids)
    if not once and not settings.content_every:
        raise HnlabError("HNLAB_CONTENT_EVERY is 0 (off); set it to minutes, or pass --once")

    async def run() -> dict[str, Any]:
        async with open_parts(settings) as parts:
            job = ContentJob(settings, parts.engine)
            while True:
                stats = (await job.run(list(hn_ids) or None)).as_dict()
                if once:
                    return stats
                click.echo(
                    f"{datetime.now(UTC):%H:%M:%S} fetched {stats['fetched']} of "
                    f"{stats['due']} due: {_outcomes(stats['outcomes'])}"
                )
                await asyncio.sleep(settings.content_every * 60)

    try:
        stats = asyncio.run(run())
    except KeyboardInterrupt:
        click.echo("hnlab content fetch stopped")
        return
    if as_json:
        click.echo(json.dumps(stats, sort_keys=True))
        return
    _echo_table(
        [
            ("due", stats["due"]),
            ("fetched", stats["fetched"]),
            ("outcomes", _outcomes(stats["outcomes"])),
            ("archived", stats["archived"]),
            ("extracted", stats["extracted"]),
            ("loop lag", f"{stats['loop_lag_ms']} ms"),
            ("took", f"{stats['duration_s']} s"),
        ]
    )


def _outcomes(outcomes: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "none"


@content.command("show")
@click.argument("hn_id", type=click.IntRange(1))
@click.option("--text", "plain", is_flag=True, help="The plain text instead of the Markdown.")
@click.option("--width", type=click.IntRange(40), default=100, help="Wrap text at this width.")
@pass_ctx
def content_show(obj: Context, hn_id: int, plain: bool, width: int) -> None:
    """A story's article as Markdown (or plain text), with its outcome and source."""
    from hnlab import analysis
    from hnlab.store import db

    url = db.prepare(obj.settings()).url
    found = analysis.load_contents([hn_id], text=True, engine=url)
    if found.empty:
        raise HnlabError(
            f"story {hn_id} has no fetched content; run 'hnlab content fetch --hn-id {hn_id}'"
        )
    row = found.iloc[0]
    head = [
        ("url", row["url"]),
        ("final url", row["final_url"]),
        ("outcome", f"{row['outcome']}" + (f" ({row['detail']})" if row["detail"] else "")),
        ("fetched", _fmt_time(row["fetched_at"])),
    ]
    if row["word_count"] is not None and str(row["word_count"]) != "<NA>":
        head += [
            ("title", row["title"]),
            ("author", row["author"]),
            ("published", row["published"]),
            ("language", row["language"]),
            ("words", f"{row['word_count']} ({row['reading_minutes']} min)"),
        ]
    _echo_table([(k, terminal_safe(str(v))) for k, v in head if v is not None and str(v)])
    body = row["text"] if plain else row["markdown"]
    if isinstance(body, str) and body:
        click.echo("")
        for line in terminal_safe(body).splitlines():
            click.echo("\n".join(textwrap.wrap(line, width)) if len(line) > width else line)


@content.command("status")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@pass_ctx
def content_status(obj: Context, as_json: bool) -> None:
    """Counts by outcome, and the domains that fail most."""
    from hnlab.run.factory import open_parts
    from hnlab.store.contents import ContentRepository

    settings = obj.settings()

    async def run() -> dict[str, Any]:
        async with open_parts(settings) as parts:
            return await ContentRepository(parts.engine).status()

    found = asyncio.run(run())
    if as_json:
        click.echo(json.dumps(found, sort_keys=True))
        return
    outcomes = found["outcomes"]
    if not outcomes:
        click.echo("no content fetched yet; run 'hnlab content fetch --once'")
        return
    _echo_table([(k, v) for k, v in outcomes.items()] + [("total", sum(outcomes.values()))])
    if found["failing_domains"]:
        click.echo("\nfailing most:")
        for d in found["failing_domains"]:
            click.echo(f"  {terminal_safe(str(d['domain']))}  {d['failed']} of {d['total']}")


@content.command("reextract")
@click.option(
    "--since", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Fetched on or after (UTC)."
)
@click.option("--json", "as_json", is_flag=True, help="What it did, as JSON.")
@pass_ctx
def content_reextract(obj: Context, since: datetime | None, as_json: bool) -> None:
    """Extract every archived page again from the WARC files (no network), recording
    the extractor's name and version on each row."""
    from hnlab.content.job import ContentJob
    from hnlab.run.factory import open_parts

    settings = obj.settings()

    async def run() -> dict[str, Any]:
        async with open_parts(settings) as parts:
            return await ContentJob(settings, parts.engine).reextract(
                since.replace(tzinfo=UTC) if since else None
            )

    stats = asyncio.run(run())
    if as_json:
        click.echo(json.dumps(stats, sort_keys=True))
        return
    changed = ", ".join(f"{k} {v}" for k, v in stats["changed"].items()) or "none"
    _echo_table(
        [
            ("re-extracted", stats["reextracted"]),
            ("missing records", stats["missing_records"]),
            ("outcome changes", changed),
            ("extractor", stats["extractor_version"]),
        ]
    )


@cli.command("search")
@click.argument("query")
@click.option(
    "--since", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Submitted on or after."
)
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Before this day.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="As JSON lines.")
@pass_ctx
def search(
    obj: Context,
    query: str,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """Stories whose linked article matches QUERY (words, "a phrase", or, -word), best
    first by PostgreSQL's text ranking, with the matches marked « »."""
    from hnlab import analysis
    from hnlab.store import db

    url = db.prepare(obj.settings()).url
    found = analysis.search(
        query,
        since.replace(tzinfo=UTC) if since else None,
        until.replace(tzinfo=UTC) if until else None,
        limit=limit,
        engine=url,
    )
    if as_json:
        for row in found.to_dict("records"):
            click.echo(json.dumps({k: _plain(v) for k, v in row.items()}, sort_keys=True))
        return
    if found.empty:
        click.echo(f"no article matches {query!r}")
        return
    for hit in found.to_dict("records"):
        click.echo(f"{hit['hn_id']}  {terminal_safe(str(hit['title']))}  ({hit['rank']:.3f})")
        click.echo(f"    {terminal_safe(str(hit['url']))}")
        snippet = " ".join(terminal_safe(str(hit["snippet"])).split())
        for line in textwrap.wrap(snippet, 96):
            click.echo(f"    {line}")


def _plain(value: Any) -> Any:
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value
