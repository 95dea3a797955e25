"""``hnlab report``: run the analysis notebooks and write self-contained HTML reports.

Each notebook is executed with papermill (a child process and a real kernel,
like collection runs), then converted with nbconvert; matplotlib's PNG outputs
are embedded in the HTML as data URIs, so a report is one file to share.

``index.html`` is the page a person opens first: what the database holds (when
it was collected, runs that succeeded and failed, posts and snapshots, the last
run's outcome) and one thumbnail per report, the report's first chart, linking to
it. Like the reports it loads nothing from the network.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hnlab.analysis.execute import execute
from hnlab.config import NOTEBOOKS_DIR, Settings, make_dir
from hnlab.errors import HnlabError
from hnlab.jobs import Body, Job, Runtime, register

log = logging.getLogger(__name__)

ANALYSIS_NOTEBOOKS = (
    "scores",
    "churn",
    "story_paths",
    "attention",
    "trends",
    "discussions",
    "content",
    "runs_and_cache",
)


@dataclass
class Report:
    """One generated report page."""

    name: str
    html_path: Path
    ok: bool
    error: str | None = None


def build_reports(
    settings: Settings,
    out_dir: Path,
    *,
    hours: int = 48,
    notebooks_dir: Path | None = None,
    now: datetime | None = None,
) -> tuple[Path, list[Report]]:
    """Execute each analysis notebook, write ``<name>.html`` and ``index.html``."""
    notebooks_dir = notebooks_dir or NOTEBOOKS_DIR
    make_dir(out_dir, "--out directory")
    reports = []
    for name in ANALYSIS_NOTEBOOKS:
        source = notebooks_dir / f"{name}.ipynb"
        if not source.exists():
            raise HnlabError(f"notebook {source} is missing; run hnlab from its checkout")
        executed = out_dir / f"{name}.ipynb"
        outcome = execute(
            source,
            executed,
            {"hours": hours},
            env=settings.to_env(),
            cell_timeout=settings.cell_timeout,
            run_timeout=settings.run_timeout,
        )
        target = out_dir / f"{name}.html"
        if executed.exists():
            _to_html(executed, target)
        reports.append(Report(name, target, outcome.ok, outcome.error))
        if not outcome.ok:
            log.error("report %s failed: %s", name, outcome.error)
    from hnlab import analysis
    from hnlab.store import db

    summary = analysis.collection_summary(db.prepare(settings).url)
    index = out_dir / "index.html"
    page = _index(reports, summary, now or datetime.now(UTC), hours)
    index.write_text(page, encoding="utf-8")
    return index, reports


def _to_html(notebook: Path, target: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(  # type: ignore[no-untyped-call]
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    # nbconvert warns that matplotlib's images carry no alt text; that is not the user's to fix.
    quiet = log.getChild("nbconvert")
    quiet.setLevel(logging.ERROR)
    exporter.log = quiet
    node = nbformat.read(notebook, as_version=4)  # type: ignore[no-untyped-call]
    body, _ = exporter.from_notebook_node(node)
    target.write_text(body, encoding="utf-8")


def _thumbnail(notebook: Path) -> str | None:
    """The first PNG chart of an executed notebook, base64, or None."""
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                return "".join(png).replace("\n", "")
    return None


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _index(reports: list[Report], summary: dict[str, Any], now: datetime, hours: int) -> str:
    esc = html.escape
    last = summary["last_run"]
    if last is None:
        outcome = "no runs yet: start one with <code>hnlab run</code> or <code>hnlab demo</code>"
    else:
        outcome = (
            f"run #{last['id']} ({esc(last['trigger'])}) at {_when(last['at'])}: "
            f'<span class="{esc(last["status"])}">{esc(last["status"])}</span>'
            + (f", {last['posts_saved']} posts saved" if last["posts_saved"] is not None else "")
            + (f" &mdash; {esc(last['error'])}" if last["error"] else "")
        )
    facts = [
        ("collected", f"{_when(summary['first_run_at'])} to {_when(summary['last_run_at'])}"),
        (
            "runs",
            f"{summary['runs']}: {summary['succeeded']} succeeded, "
            f'<span class="{"failed" if summary["failed"] else ""}">'
            f"{summary['failed']} failed</span>, {summary['skipped']} skipped",
        ),
        ("stored", f"{summary['posts']} posts, {summary['snapshots']} snapshots"),
        ("last run", outcome),
    ]
    rows = "\n".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
    cards = []
    for r in reports:
        title = esc(r.name.replace("_", " ").capitalize())
        thumb = _thumbnail(r.html_path.with_suffix(".ipynb")) if r.ok else None
        picture = (
            f'<img src="data:image/png;base64,{thumb}" alt="first chart of the {title} report">'
            if thumb
            else ""
        )
        failure = "" if r.ok else f'<p class="failed">failed: {esc(r.error or "")}</p>'
        link = f'<a href="{esc(r.html_path.name)}">' if r.html_path.exists() else "<a>"
        cards.append(
            f"<figure>{link}{picture}<figcaption>{title}</figcaption></a>{failure}</figure>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hnlab reports</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;max-width:62em;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}
th{{text-align:left;padding:.2em 1.2em .2em 0;color:#555;font-weight:600}}
td{{padding:.2em 0}}
.failed{{color:#b00020}} .succeeded{{color:#1b7f3b}} .skipped{{color:#8a6d00}}
.cards{{display:grid;grid-template-columns:repeat(auto-fill,minmax(18em,1fr));gap:1.2em}}
figure{{margin:0;border:1px solid #ddd;border-radius:6px;padding:.6em;background:#fafafa}}
figure img{{width:100%;height:auto;display:block}}
figcaption{{font-weight:600;margin-top:.4em}}
a{{color:inherit;text-decoration:none}}
</style></head>
<body><h1>hnlab</h1>
<table>
{rows}
</table>
<h2>Reports: the last {hours} hours</h2>
<div class="cards">
{chr(10).join(cards)}
</div>
<p><small>Generated {now:%Y-%m-%d %H:%M} UTC. Each report is one self-contained file.</small></p>
</body></html>
"""


REPORT_JOB_ID = "report_generation"


def _reports_job(runtime: Runtime) -> Body:
    settings = runtime.settings

    async def reports() -> str | None:
        """Regenerate the HTML reports (papermill in a worker thread)."""
        try:
            index, built = await asyncio.to_thread(build_reports, settings, settings.reports_dir)
        except Exception as exc:  # a report must never stop the runner
            return f"reports not written: {exc}"
        log.info("reports written to %s (%s ok of %s)", index, sum(r.ok for r in built), len(built))
        failed = [r.name for r in built if not r.ok]
        return (
            f"{len(failed)} of {len(built)} reports failed: {', '.join(failed)}" if failed else None
        )

    return reports


register(
    Job(
        REPORT_JOB_ID,
        "HTML reports",
        "report_cron",
        trigger=lambda s: s.report_cron,
        build=_reports_job,
        group="collect",
    )
)
