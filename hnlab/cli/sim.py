"""``hnlab demo``, ``hnlab report`` and ``hnlab simulate``: the offline world and the reports."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hnlab.cli.base import Context, _fmt_time, cli, pass_ctx
from hnlab.config import Settings
from hnlab.errors import HnlabError

if TYPE_CHECKING:
    pass


OUT_OPTION = click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Where the reports go.",
)


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
@click.option(
    "--web/--no-web",
    default=False,
    show_default=True,
    help="Then fetch the stories' links from the simulator's web and score the extraction.",
)
@OUT_OPTION
@pass_ctx
def demo(
    obj: Context,
    hours: int,
    seed: int,
    start: datetime | None,
    report: bool,
    web: bool,
    out: Path,
) -> None:
    """Collect simulated hours offline (no network needed), then write the reports.

    Every simulated hour is collected once, and every HNLAB_TRACK_EVERY simulated
    minutes (default 1; 0 turns it off) the tracker records a tick; every 10
    simulated minutes the item stream syncs (HNLAB_ITEMS_EVERY=0 turns it off). With
    --web, the content job then fetches the stories' links from the simulator's web
    on loopback, and the extraction is scored against the web's truth."""
    from hnlab.sim.demo import run_demo

    settings = obj.settings()
    settings.ensure_dirs()
    begin = start.replace(tzinfo=UTC) if start else None
    result = asyncio.run(
        run_demo(
            settings,
            hours=hours,
            seed=seed,
            start=begin,
            progress=sys.stderr.isatty(),
            web=web,
        )
    )
    tracked = (
        f"; tracked {result.ticks} minutes ({result.observations} observations)"
        if result.ticks
        else ""
    )
    items = f"; {result.items} items (stories and comments)" if result.items else ""
    click.echo(
        f"collected {result.runs} simulated hours ({_fmt_time(result.start)} to "
        f"{_fmt_time(result.end)}): {result.posts_saved} posts saved{tracked}{items}"
    )
    if result.web_score is not None:
        score = result.web_score
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(result.content.items()))
        click.echo(f"fetched the links from the simulated web: {outcomes}")
        click.echo(
            f"extraction against the web's truth: outcome right for "
            f"{score['outcome_accuracy']:.1%} of {score['pages']} pages; on its "
            f"{score['articles']} articles word-shingle F1 {score['f1']:.3f} (precision "
            f"{score['precision']:.3f}, recall {score['recall']:.3f}), language right for "
            f"{score['language_accuracy']:.1%}; event loop's worst lag {result.loop_lag_ms} ms"
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
