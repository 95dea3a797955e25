"""``hnlab report``: run the analysis notebooks and write self-contained HTML reports.

Each notebook is executed with papermill (a child process and a real kernel,
like collection runs), then converted with nbconvert; matplotlib's PNG outputs
are embedded in the HTML as data URIs, so a report is one file to share.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hnlab.config import NOTEBOOKS_DIR, Settings, make_dir
from hnlab.errors import HnlabError
from hnlab.execute import execute

log = logging.getLogger(__name__)

ANALYSIS_NOTEBOOKS = ("scores", "churn", "runs_and_cache")


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
    index = out_dir / "index.html"
    index.write_text(_index(reports, now or datetime.now(UTC), hours), encoding="utf-8")
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


def _index(reports: list[Report], now: datetime, hours: int) -> str:
    items = "\n".join(
        f'<li><a href="{r.html_path.name}">{html.escape(r.name.replace("_", " "))}</a>'
        + ("" if r.ok else f" <strong>failed:</strong> {html.escape(r.error or '')}")
        + "</li>"
        for r in reports
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hnlab reports</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}</style></head>
<body><h1>hnlab reports</h1>
<p>The last {hours} hours of collected data. Generated {now:%Y-%m-%d %H:%M} UTC.</p>
<ul>
{items}
</ul></body></html>
"""
