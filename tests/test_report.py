"""``hnlab demo`` then the reports, as a user opens them: the index page in a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from hnlab.config import Settings
from hnlab.store import db

from .helpers import hnlab_cli, settings_env

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Demo:
    out: Path
    stdout: str
    runs: tuple[int, bool]
    posts: int
    snapshots: int
    ticks: tuple[int, int]


@pytest.fixture(scope="module")
def demo(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """Three simulated hours collected by ``hnlab demo``, then its reports."""
    root = tmp_path_factory.mktemp("demo")
    settings = Settings.from_env(
        environ={}, overrides={"data_dir": root / "data", "database_url": database_url}
    )
    out = root / "reports"
    result = hnlab_cli(
        "demo",
        "--hours",
        "3",
        "--start",
        "2026-03-01T00:00",
        "--out",
        str(out),
        env=settings_env(settings),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    eng = db.make_engine(database_url)
    try:
        with eng.connect() as conn:
            runs = conn.execute(
                sa.text(
                    "SELECT count(*), bool_and(trigger = 'demo' AND status = 'succeeded') "
                    "FROM collection_runs"
                )
            ).one()
            posts = conn.execute(sa.text("SELECT count(*) FROM posts")).scalar_one()
            snapshots = conn.execute(sa.text("SELECT count(*) FROM post_snapshots")).scalar_one()
            ticks = conn.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM track_ticks WHERE status = 'succeeded'), "
                    "(SELECT count(*) FROM rank_minutes)"
                )
            ).one()
    finally:
        eng.dispose()
    return Demo(out, result.stdout, tuple(runs), posts, snapshots, tuple(ticks))  # type: ignore[arg-type]


def test_demo_then_report_writes_html_with_embedded_charts(demo: Demo) -> None:
    assert demo.stdout.startswith(
        "collected 3 simulated hours (2026-03-01 00:00:00Z to 2026-03-01 02:00:00Z)"
    )
    assert demo.runs == (3, True)
    # every simulated minute from 00:00 to 02:00 is tracked: 121 ticks, one row each
    assert demo.ticks == (121, 121)
    assert re.search(r"; tracked 121 minutes \(\d+ observations\)", demo.stdout)
    index = (demo.out / "index.html").read_text()
    for name in ("scores", "churn", "story_paths", "attention", "trends", "runs_and_cache"):
        assert f'href="{name}.html"' in index
        page = (demo.out / f"{name}.html").read_text()
        assert page.count("data:image/png;base64,") >= 1
        assert "Traceback" not in page
    assert re.search(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d UTC", index)


def test_the_index_summarises_the_data_with_a_thumbnail_per_report(demo: Demo) -> None:
    text = re.sub(r"<[^>]+>", "", (demo.out / "index.html").read_text())
    assert "collected2026-03-01 00:00 UTC to 2026-03-01 02:00 UTC" in text
    assert "runs3: 3 succeeded, 0 failed, 0 skipped" in text
    assert f"stored{demo.posts} posts, {demo.snapshots} snapshots" in text
    assert re.search(r"last runrun #\d+ \(demo\) at 2026-03-01 02:00 UTC: succeeded, ", text)
    links = Links.of(demo.out / "index.html")
    assert [href for href, _ in links.cards] == [
        "scores.html",
        "churn.html",
        "story_paths.html",
        "attention.html",
        "trends.html",
        "discussions.html",
        "content.html",
        "runs_and_cache.html",
    ]
    assert all(thumb.startswith("data:image/png;base64,") for _, thumb in links.cards)


class Links(HTMLParser):
    """Every href and src of a page; ``cards`` pairs each link with the image inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.cards: list[tuple[str, str]] = []
        self._href: str | None = None

    @classmethod
    def of(cls, page: Path) -> Links:
        parser = cls()
        parser.feed(page.read_text())
        return parser

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("href", "src"):
            if found.get(name):
                self.targets.append(str(found[name]))
        if tag == "a":
            self._href = found.get("href")
        if tag == "img" and self._href:
            self.cards.append((self._href, str(found.get("src"))))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._href = None


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")
def test_the_index_loads_in_headless_chromium_without_errors_or_network(demo: Demo) -> None:
    assert CHROMIUM is not None
    index = demo.out / "index.html"
    shot = demo.out / "index.png"
    browser = subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",  # as root, as in containers and CI
            "--disable-gpu",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: it must not need any
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,1000",
            f"--screenshot={shot}",
            index.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert browser.returncode == 0, browser.stderr[-2000:]
    console = [line for line in browser.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    assert shot.stat().st_size > 10_000  # it drew the page
    links = Links.of(index)
    assert len(links.targets) >= 6
    for target in links.targets:
        parts = urlsplit(target)
        if parts.scheme == "data":
            continue
        assert parts.scheme == "" and not parts.netloc, f"{target} leaves the page's folder"
        assert (demo.out / parts.path).is_file(), f"{target} does not resolve"


def test_attention_on_a_three_hour_demo_is_regular_and_its_chart_readable(
    demo: Demo, database_url: str
) -> None:
    """A short window leaves deep ranks with few observations: the curve borrows from
    its neighbours (it never rises with rank) instead of running towards 1e-54, and the
    chart's log axis spans a few decades, not sixty."""
    import matplotlib

    matplotlib.use("Agg")
    from hnlab import analysis, plots

    eng = db.make_engine(database_url)
    try:
        ranks = analysis.load_ranks(None, None, eng)
    finally:
        eng.dispose()
    attention = analysis.attention_by_rank(ranks, "top")
    assert len(attention) >= 60
    per_min = attention["upvotes_per_min"].to_numpy()
    assert (per_min[1:] <= per_min[:-1] * (1 + 1e-9)).all()
    shares = attention.loc[attention["share"] > 0, "share"]
    assert shares.min() >= shares.max() * 1e-6  # it reached 1e-54 before
    ax = plots.plot_attention(attention)
    bottom, top = ax.get_ylim()
    assert top / bottom <= 1e5
    import matplotlib.pyplot as plt

    plt.close(ax.figure)
