"""The ``hnlab`` command: parse, call the package, print. No logic of its own.

An HnlabError prints ``Error: <message>`` on one line and exits 1.

Long because it is the whole command table, and nothing else: each command parses
its options, makes one call into the package and prints the result.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hnlab.config import Settings
from hnlab.errors import HnlabError
from hnlab.store.tables import STATISTICS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from hnlab.store.db import Row

T = TypeVar("T")

log = logging.getLogger("hnlab")


class Context:
    """What the group's options hand to each command."""

    def __init__(self, overrides: dict[str, Any], option_names: dict[str, str]) -> None:
        self.overrides = overrides
        self.option_names = option_names

    def settings(self, **overrides: Any) -> Settings:
        """Validated settings: environment, then the group's options, then the command's."""
        names = dict(self.option_names)
        names.update({k: v[1] for k, v in overrides.items() if isinstance(v, tuple)})
        values = {
            **self.overrides,
            **{k: v[0] if isinstance(v, tuple) else v for k, v in overrides.items()},
        }
        return Settings.from_env(overrides=values, option_names=names)


pass_ctx = click.make_pass_decorator(Context)


def _echo_table(rows: list[tuple[str, Any]]) -> None:
    width = max((len(k) for k, _ in rows), default=0)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


def _fmt_time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data directory (HNLAB_DATA_DIR, default ./data).",
)
@click.option("--hn-api-url", default=None, help="HN API base URL (HNLAB_HN_API_URL).")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.version_option(package_name="hnlab")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, hn_api_url: str | None, verbose: int) -> None:
    """hnlab: collect Hacker News top stories every hour, and study them in notebooks."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(
        {"data_dir": data_dir, "hn_api_url": hn_api_url},
        {"data_dir": "--data-dir", "hn_api_url": "--hn-api-url"},
    )


def _read_records(settings: Settings, read: Callable[[AsyncEngine], Awaitable[T]]) -> tuple[str, T]:
    """Prepare the database, run ``read`` on an async engine, dispose it; return where the
    database lives (safe to print) and what ``read`` returned."""
    from hnlab.run.factory import open_parts

    async def go() -> tuple[str, T]:
        async with open_parts(settings) as parts:
            return parts.database.location, await read(parts.engine)

    return asyncio.run(go())


# -- db ---------------------------------------------------------------------------------------
@cli.group()
def db() -> None:
    """The PostgreSQL schema and the embedded server."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(obj: Context) -> None:
    """Bring the database to the newest schema (safe to run again)."""
    from hnlab.store import db as dbm

    database = dbm.prepare(obj.settings().with_values(auto_migrate=True))
    if database.upgraded:
        click.echo(
            f"{database.location}: upgraded {database.previous_revision or 'empty'} "
            f"-> {database.revision}"
        )
    else:
        click.echo(f"{database.location}: already at {database.revision}")


@db.command("status")
@pass_ctx
def db_status(obj: Context) -> None:
    """Print where the database lives and its current and head schema revisions."""
    from hnlab.store import db as dbm

    database = dbm.prepare(obj.settings(), migrate=False)
    head = dbm.head_revision()
    _echo_table(
        [
            ("database", database.location),
            ("current", database.revision or "empty"),
            ("head", head),
            (
                "state",
                "up to date" if database.revision == head else "behind: run 'hnlab db upgrade'",
            ),
        ]
    )


@db.command("shell", context_settings={"ignore_unknown_options": True})
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def db_shell(obj: Context, psql_args: tuple[str, ...]) -> None:
    """Open psql on the configured database (extra arguments go to psql, e.g. -c 'SQL')."""
    from hnlab.store import access

    sys.exit(access.shell(obj.settings(), list(psql_args)))


@db.command("serve")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5433,
    show_default=True,
    help="Loopback TCP port (0: any free one).",
)
@pass_ctx
def db_serve(obj: Context, port: int) -> None:
    """Keep the embedded server up on 127.0.0.1:PORT for psql, DBeaver or pandas, until Ctrl-C."""
    from hnlab.store import access

    access.serve(obj.settings(), port, announce=lambda line: click.echo(line, nl=True))
    click.echo("stopped serving")


@db.command("dump")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Archive to write.")
@pass_ctx
def db_dump(obj: Context, out: Path) -> None:
    """Back up the database to one file (consistent, even while a run collects)."""
    from hnlab.store import access

    size = access.dump(obj.settings(), out)
    shown = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{max(1, round(size / 1e3))} kB"
    click.echo(f"wrote {out} ({shown}); restore it with 'hnlab db restore {out}'")


@db.command("restore")
@click.argument("archive", type=click.Path(path_type=Path))
@pass_ctx
def db_restore(obj: Context, archive: Path) -> None:
    """Load a backup from 'hnlab db dump' into an empty database."""
    from hnlab.store import access

    database = access.restore(obj.settings(), archive)
    click.echo(
        f"restored {archive} into {database.location} (schema {database.revision}); "
        "rebuild the RocksDB cache with 'hnlab cache rebuild'"
    )


@db.command("stop")
@pass_ctx
def db_stop(obj: Context) -> None:
    """Stop the embedded PostgreSQL server now."""
    from hnlab.store.embedded import EmbeddedPostgres

    settings = obj.settings()
    if not settings.uses_embedded:
        raise HnlabError("HNLAB_DATABASE_URL is set; hnlab does not stop servers it did not start")
    EmbeddedPostgres(settings.postgres_dir, settings.shared_dir).stop()
    click.echo(f"stopped the embedded PostgreSQL in {settings.postgres_dir}")


# -- collect ----------------------------------------------------------------------------------
def _print_stats(stats: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(stats, default=str, sort_keys=True))
    else:
        _echo_table([(k, v) for k, v in stats.items() if k != "error_samples"])


@cli.command()
@click.option(
    "--list",
    "story_list",
    default=None,
    help="Story list: top, new, best, ask, show or job (HNLAB_STORY_LIST).",
)
@click.option(
    "--limit", type=str, default=None, help="Stories to fetch, 1-500 (HNLAB_POSTS_LIMIT)."
)
@click.option(
    "--threshold", type=str, default=None, help="Minimum score to save (HNLAB_SCORE_THRESHOLD)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@pass_ctx
def collect(
    obj: Context, story_list: str | None, limit: str | None, threshold: str | None, as_json: bool
) -> None:
    """Run one collection now and print its statistics."""
    from hnlab.run.factory import collect_once

    settings = obj.settings(
        story_list=(story_list, "--list"),
        posts_limit=(limit, "--limit"),
        score_threshold=(threshold, "--threshold"),
    )
    stats = asyncio.run(collect_once(settings, trigger="manual"))
    _print_stats(stats, as_json)


# -- run, status, runs ------------------------------------------------------------------------
@cli.command()
@click.option("--direct", is_flag=True, help="Run the collector in-process, not the notebook.")
@click.option(
    "--notebook",
    type=click.Path(path_type=Path),
    default=None,
    help="Collection notebook (HNLAB_NOTEBOOK, default notebooks/collect.ipynb).",
)
@click.option("--cron", default=None, help="Cron expression in UTC (HNLAB_CRON, '0 * * * *').")
@click.option("--once", is_flag=True, help="Claim the current slot, run once, and exit.")
@pass_ctx
def run(obj: Context, direct: bool, notebook: Path | None, cron: str | None, once: bool) -> None:
    """Run the hourly collection in the foreground (Ctrl-C drains and stops)."""
    from hnlab.run.service import RunnerService

    settings = obj.settings(cron=(cron, "--cron"), notebook=(notebook, "--notebook"))
    service = RunnerService(settings, mode="direct" if direct else "notebook")
    if once:
        outcome = asyncio.run(service.run_once())
        if outcome.status == "skipped":
            when = f"{outcome.slot:%Y-%m-%d %H:%M}Z " if outcome.slot else ""
            click.echo(f"slot {when}already claimed; nothing to do")
            return
        if not outcome.ok:
            raise HnlabError(
                f"run {outcome.run_id} failed: {outcome.error}"
                + (f" (notebook: {outcome.notebook_path})" if outcome.notebook_path else "")
            )
        click.echo(
            f"run {outcome.run_id} succeeded"
            + (f"; notebook: {outcome.notebook_path}" if outcome.notebook_path else "")
        )
        return
    click.echo(
        f"hnlab runner: cron '{settings.cron}' UTC, mode "
        f"{'direct' if direct else 'notebook'}, database: {service.database.location}"
    )
    asyncio.run(service.serve(say=click.echo))
    click.echo("hnlab runner stopped")


@cli.group(invoke_without_command=True)
@click.option("--once", is_flag=True, help="Record one tick now (or --at a minute) and exit.")
@click.option(
    "--at",
    type=click.DateTime(["%Y-%m-%dT%H:%M"]),
    default=None,
    help="With --once: the minute to record, UTC (for replays).",
)
@click.option("--lists", default=None, help="Lists, e.g. top,new (HNLAB_TRACK_LISTS).")
@click.option(
    "--depth", default=None, help="Ranks per list: N, or top=90,new=30 (HNLAB_TRACK_DEPTH)."
)
@click.option("--json", "as_json", is_flag=True, help="With --once: the tick as JSON.")
@click.pass_context
def track(
    ctx: click.Context,
    once: bool,
    at: datetime | None,
    lists: str | None,
    depth: str | None,
    as_json: bool,
) -> None:
    """Record every list's ranks each minute (in the foreground), or one tick with --once."""
    from hnlab.run.factory import open_parts
    from hnlab.run.service import RunnerService

    if ctx.invoked_subcommand is not None:
        return
    obj = ctx.find_object(Context)
    assert obj is not None
    settings = obj.settings(track_lists=(lists, "--lists"), track_depth=(depth, "--depth"))
    if at is not None and not once:
        raise HnlabError("--at records one tick: use it with --once")
    if not once:
        every = settings.track_every or 1
        service = RunnerService(
            settings.with_values(track_every=every), mode="direct", collect=False
        )
        click.echo(f"hnlab tracker: database: {service.database.location}")
        asyncio.run(service.serve(say=click.echo))
        click.echo("hnlab tracker stopped")
        return

    async def tick() -> Any:
        async with open_parts(settings) as parts:
            return await parts.tracker().tick(at.replace(tzinfo=UTC) if at else None)

    result = asyncio.run(tick())
    if as_json:
        click.echo(json.dumps(result.as_dict(), sort_keys=True))
    elif result.status == "skipped":
        click.echo(f"tick {result.slot:%Y-%m-%d %H:%M}Z is recorded already; nothing to do")
    else:
        _echo_table([(k, v) for k, v in result.as_dict().items() if v is not None])
    if result.status in ("failed", "missed"):
        raise HnlabError(f"tick {result.slot:%Y-%m-%d %H:%M}Z {result.status}: {result.error}")


@track.command("prune")
@click.option(
    "--keep-days",
    type=click.IntRange(1),
    default=None,
    help="Keep full resolution this many days (HNLAB_TRACK_KEEP_DAYS).",
)
@pass_ctx
def track_prune(obj: Context, keep_days: int | None) -> None:
    """Downsample minute ranks older than the retention to hourly (each hour's :00 stays)."""
    from hnlab.run.factory import open_parts

    settings = obj.settings(track_keep_days=(keep_days, "--keep-days"))
    if not settings.track_keep_days:
        raise HnlabError(
            "HNLAB_TRACK_KEEP_DAYS is 0 (keep everything); set it or pass --keep-days N"
        )

    async def prune() -> int:
        async with open_parts(settings) as parts:
            return await parts.tracker().prune(settings.track_keep_days)

    deleted = asyncio.run(prune())
    click.echo(
        f"kept full resolution for {settings.track_keep_days} days; "
        f"{deleted} older minute rows deleted, each hour's :00 kept"
    )


@cli.group()
def export() -> None:
    """Data out of hnlab, for other tools."""


@export.command("ranks")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M"]), required=True)
@click.option("--until", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M"]), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write.")
@pass_ctx
def export_ranks(obj: Context, since: datetime, until: datetime, out: Path) -> None:
    """Minute ranks in [since, until) (UTC) as Parquet, one folder per month."""
    from hnlab.store.export import export_ranks as write

    done = write(obj.settings(), since.replace(tzinfo=UTC), until.replace(tzinfo=UTC), out)
    click.echo(f"wrote {done.rows} observations in {len(done.files)} file(s) under {out}")


@cli.command()
@pass_ctx
def status(obj: Context) -> None:
    """Show the live runners, each job's last outcome, and the last collection run."""
    from hnlab.store import records

    settings = obj.settings()

    async def read(engine: AsyncEngine) -> tuple[list[Row], list[Row], list[Row]]:
        alive = await records.live_runners(engine, datetime.now(UTC) - timedelta(minutes=3))
        return alive, await records.job_outcome_rows(engine), await records.recent_runs(engine, 1)

    where, (alive, outcomes, last) = _read_records(settings, read)
    click.echo(f"database: {where}")
    if alive:
        for r in alive:
            click.echo(
                f"runner {r['host']} pid {r['pid']} ({r['mode']}), last beat "
                f"{_fmt_time(r['last_beat'])}, next run {_fmt_time(r['next_run_at'])}"
            )
    else:
        click.echo("runners: none alive (start one with 'hnlab run')")
    for o in outcomes:
        line = f"job {o['job_id']}: {o['outcome']} at {_fmt_time(o['at'])}"
        if o["outcome"] == "failed":
            line += (
                f" ({o['failures']} in a row since {_fmt_time(o['failing_since'])}): {o['error']}"
            )
        click.echo(line)
    if not last:
        click.echo("last run: none yet")
        return
    r = last[0]
    click.echo(
        f"last run: #{r['id']} {r['status']} ({r['trigger']}) started "
        f"{_fmt_time(r['started_at'])}" + (f": {r['error']}" if r["error"] else "")
    )
    _echo_table([(k, r[k]) for k in STATISTICS] + [("duration_s", r["duration_s"])])


@cli.command()
@click.option(
    "--last",
    "last",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    help="How many runs to show.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_ctx
def runs(obj: Context, last: int, as_json: bool) -> None:
    """Show the run history, newest first, one run per line."""
    from hnlab.store import records

    since = datetime.now(UTC) - timedelta(hours=24)

    async def read(engine: AsyncEngine) -> tuple[list[dict[str, Any]], dict[str, int]]:
        return await records.recent_runs(engine, last), await records.tick_summary(engine, since)

    _, (rows, ticks) = _read_records(obj.settings(), read)
    for r in rows:
        if as_json:
            r = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in r.items()}
            click.echo(json.dumps(r, default=str, sort_keys=True))
            continue
        stats = "/".join("-" if r[k] is None else str(r[k]) for k in STATISTICS)
        click.echo(
            f"#{r['id']:<5} {_fmt_time(r['slot'] or r['started_at'])} {r['trigger']:<9} "
            f"{r['status']:<9} fetched/saved/cached/dups/errors {stats:<16} "
            f"{r['notebook_path'] or '-'}" + (f"  {r['error']}" if r["error"] else "")
        )
    if not rows and not as_json:
        click.echo("no runs yet")
    if ticks and not as_json:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(ticks.items()))
        click.echo(f"minute tracker, last 24 h: {sum(ticks.values())} ticks ({counts})")


# -- notify -----------------------------------------------------------------------------------
@cli.group()
def notify() -> None:
    """Notifications (HNLAB_NOTIFY_URLS): a test message and the daily digest."""


def _notify_urls(settings: Settings) -> tuple[str, ...]:
    if not settings.notify_urls:
        raise HnlabError(
            "HNLAB_NOTIFY_URLS is not set; set it to one or more apprise URLs, "
            "e.g. 'tgram://BOT_TOKEN/CHAT_ID' or 'ntfy://ntfy.sh/TOPIC'"
        )
    return settings.notify_urls


@notify.command("test")
@pass_ctx
def notify_test(obj: Context) -> None:
    """Send a test message to every URL; say which arrived and why the others did not."""
    from hnlab.run.notify import send

    deliveries = send(
        _notify_urls(obj.settings()),
        "hnlab test notification",
        "If you can read this, hnlab can reach you here.",
    )
    for d in deliveries:
        click.echo(f"{'sent  ' if d.ok else 'FAILED'} {d.url}" + ("" if d.ok else f": {d.reason}"))
    failed = [d for d in deliveries if not d.ok]
    if failed:
        raise HnlabError(f"{len(failed)} of {len(deliveries)} notification URL(s) failed")


@notify.command("digest")
@click.option("--send/--no-send", default=True, show_default=True, help="Also send it.")
@pass_ctx
def notify_digest(obj: Context, send: bool) -> None:
    """Print the digest of the last 24 hours (and send it to HNLAB_NOTIFY_URLS)."""
    from hnlab.config import cron_trigger
    from hnlab.run.factory import open_parts
    from hnlab.run.notify import Notifier

    settings = obj.settings()
    urls = _notify_urls(settings) if send else ()
    trigger = cron_trigger(settings.cron, settings.label("cron"))

    async def build() -> tuple[str, str, bool]:
        async with open_parts(settings) as parts:
            notifier = Notifier(urls, parts.engine, trigger=trigger)
            title, body = await notifier.digest(datetime.now(UTC))
            delivered = await notifier.deliver("digest", title, body, "info") if urls else True
            return title, body, delivered

    title, body, delivered = asyncio.run(build())
    click.echo(f"{title}\n\n{body}")
    if not delivered:
        raise HnlabError("the digest could not be delivered to every URL; see the log above")


# -- cache ------------------------------------------------------------------------------------
@cli.group()
def cache() -> None:
    """The RocksDB metadata cache."""


@cache.command("check")
@pass_ctx
def cache_check(obj: Context) -> None:
    """Scan the cache for corruption and compare it with PostgreSQL."""
    from hnlab.store.maintenance import check_cache

    report = check_cache(obj.settings())
    _echo_table(list(report.items()))
    if report["state"] != "ok":
        raise HnlabError(f"cache check failed: {report['state']}")


@cache.command("rebuild")
@pass_ctx
def cache_rebuild(obj: Context) -> None:
    """Rebuild the cache from PostgreSQL (a damaged one is moved aside, not deleted)."""
    from hnlab.store.maintenance import rebuild_cache

    written, moved = rebuild_cache(obj.settings())
    if moved:
        click.echo(f"moved the old cache to {moved}")
    click.echo(f"rebuilt the cache with {written} posts")


OUT_OPTION = click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Where the reports go.",
)


# -- demo and report --------------------------------------------------------------------------
@cli.command()
@click.option(
    "--hours",
    type=click.IntRange(1, 24 * 366),
    default=48,
    show_default=True,
    help="Simulated hours to collect.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Simulator seed.")
@click.option(
    "--start",
    type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%d"]),
    default=None,
    help="First simulated hour, UTC (default: so the last one is now).",
)
@click.option(
    "--report/--no-report",
    default=True,
    show_default=True,
    help="Write the HTML reports afterwards.",
)
@OUT_OPTION
@pass_ctx
def demo(
    obj: Context, hours: int, seed: int, start: datetime | None, report: bool, out: Path
) -> None:
    """Collect simulated hours offline (no network needed), then write the reports.

    Every simulated hour is collected once, and every HNLAB_TRACK_EVERY simulated
    minutes (default 1; 0 turns it off) the tracker records a tick."""
    from hnlab.sim.demo import run_demo

    settings = obj.settings()
    settings.ensure_dirs()
    begin = start.replace(tzinfo=UTC) if start else None
    result = asyncio.run(
        run_demo(settings, hours=hours, seed=seed, start=begin, progress=sys.stderr.isatty())
    )
    tracked = (
        f"; tracked {result.ticks} minutes ({result.observations} observations)"
        if result.ticks
        else ""
    )
    click.echo(
        f"collected {result.runs} simulated hours ({_fmt_time(result.start)} to "
        f"{_fmt_time(result.end)}): {result.posts_saved} posts saved{tracked}"
    )
    if report:
        _write_reports(settings, out, hours)
    click.echo("open the notebooks with: jupyter lab notebooks/")


def _write_reports(settings: Settings, out: Path, hours: int) -> None:
    from hnlab.analysis.report import build_reports

    index, reports = build_reports(settings, out, hours=hours)
    for r in reports:
        click.echo(
            f"  {'ok    ' if r.ok else 'FAILED'} {r.html_path}" + ("" if r.ok else f": {r.error}")
        )
    click.echo(f"reports: {index}")
    if not all(r.ok for r in reports):
        raise HnlabError(f"{sum(not r.ok for r in reports)} report(s) failed; see {index}")


@cli.command()
@OUT_OPTION
@click.option(
    "--hours",
    type=click.IntRange(1),
    default=48,
    show_default=True,
    help="The last N hours of collected data.",
)
@pass_ctx
def report(obj: Context, out: Path, hours: int) -> None:
    """Run the analysis notebooks and write self-contained HTML reports with an index."""
    settings = obj.settings()
    settings.ensure_dirs()
    _write_reports(settings, out, hours)


# -- simulate ---------------------------------------------------------------------------------
@cli.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--latency-ms", type=click.FloatRange(0), default=0.0, show_default=True)
@click.option("--error-rate", type=click.FloatRange(0, 1), default=0.0, help="Share of 503s.")
@click.option(
    "--rate-limit-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of 429s (Retry-After 1).",
)
@click.option("--null-rate", type=click.FloatRange(0, 1), default=0.0)
@click.option("--truncated-rate", type=click.FloatRange(0, 1), default=0.0)
def simulate(
    port: int,
    seed: int,
    latency_ms: float,
    error_rate: float,
    rate_limit_rate: float,
    null_rate: float,
    truncated_rate: float,
) -> None:
    """Serve a simulated HN API on 127.0.0.1 until Ctrl-C (POST /v0/_sim/advance?minutes=N)."""
    import signal
    import threading

    from hnlab.sim.server import Faults, SimulatedHN

    faults = Faults(
        latency_ms=latency_ms,
        error_rate=error_rate,
        rate_limit_rate=rate_limit_rate,
        null_rate=null_rate,
        truncated_rate=truncated_rate,
    )
    sim = SimulatedHN(
        seed=seed, start=datetime.now(UTC).replace(minute=0, second=0, microsecond=0), faults=faults
    )
    try:
        url = sim.start(port=port)
    except OSError as exc:
        raise HnlabError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); choose another --port"
        ) from None
    click.echo(f"simulated HN API at {url} (seed {seed}); export HNLAB_HN_API_URL={url}")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point: HnlabError becomes ``Error: …`` and exit 1."""
    try:
        rc = cli.main(args=argv, prog_name="hnlab", standalone_mode=False)
    except HnlabError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(rc if isinstance(rc, int) else 0)
