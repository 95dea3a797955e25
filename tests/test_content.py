"""The content job against the simulator's web: every outcome, politeness seen from the
sites' side, Retry-After honoured, the WARC record holding the bytes served,
re-extraction with the web stopped, and search by a phrase only in an article."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from hnlab import analysis
from hnlab.config import Settings
from hnlab.content.archive import read
from hnlab.content.fetcher import OUTCOMES
from hnlab.content.job import ContentJob
from hnlab.run.factory import open_parts
from hnlab.sim.demo import run_demo
from hnlab.sim.server import SimulatedHN
from hnlab.sim.web import SimulatedWeb
from tests.conftest import START
from tests.helpers import hnlab_cli, rows, settings_env

DELAY = 0.2


@pytest.fixture
def web() -> Iterator[SimulatedWeb]:
    with SimulatedWeb(seed=1) as site:
        yield site


@pytest.fixture
def world(
    engine: sa.Engine, make_settings: Callable[..., Settings], web: SimulatedWeb
) -> tuple[Settings, SimulatedHN, Any]:
    """Four simulated hours collected, tracked and their links fetched from the web."""
    settings = make_settings(
        track_every=5, content_host_delay=DELAY, read_timeout=1, content_allow="127.0.0.1/32"
    )
    sim = SimulatedHN(seed=1, start=START)
    result = asyncio.run(run_demo(settings, hours=4, start=START, sim=sim, web=web))
    return settings, sim, result


def _url_for(web: SimulatedWeb, site: str, outcome: str) -> str:
    """A URL on ``site`` whose page comes to ``outcome``."""
    path = next(
        f"/planted/{n}" for n in range(5000) if web.page(site, f"/planted/{n}").outcome == outcome
    )
    return f"https://{site}{path}"


def test_every_outcome_politely_with_archive_retry_and_search(
    world: tuple[Settings, SimulatedHN, Any], web: SimulatedWeb, engine: sa.Engine
) -> None:
    settings, sim, result = world
    score = result.web_score
    assert score["outcome_accuracy"] == 1.0, score["confusions"]
    assert score["f1"] >= 0.9 and score["language_accuracy"] == 1.0

    demo_hits = list(web.hits)  # five passes of one job

    # Retry-After: the 429s wait their 120 s, then are fetched once more
    limited = rows(
        engine,
        "SELECT hn_id, fetched_at, retry_at, final_url FROM contents WHERE http_status = 429",
    )
    assert limited and all(r[2] - r[1] == timedelta(seconds=120) for r in limited)
    waiting = {urlsplit(r[3]).path for r in limited}
    asked = len(web.hits)
    asyncio.run(_pass(settings, sim, web))
    assert not waiting & {h.path for h in web.hits[asked:]}  # not due yet
    sim.advance(minutes=3)
    asyncio.run(_pass(settings, sim, web))
    again = rows(
        engine,
        "SELECT attempts FROM contents WHERE http_status = 429 OR hn_id = ANY("
        f"ARRAY[{','.join(str(r[0]) for r in limited)}])",
    )
    assert all(a == 2 for (a,) in again)

    # planted stories, fetched by id: a page that hangs, a redirect to 169.254.169.254
    sim.advance(minutes=30)
    planted = {
        sim.max_item(): _url_for(web, "www.theverge.com", "timeout"),
        sim.max_item() - 1: _url_for(web, "github.com", "blocked_address"),
    }
    stamp = int(sim.now.timestamp())
    sim.serve_items(
        {
            i: {"id": i, "type": "story", "title": "P", "url": u, "time": stamp, "score": 5}
            for i, u in planted.items()
        }
    )

    async def sync_and_fetch() -> None:
        offline = settings.with_values(hn_api_url="http://simulated-hn.invalid/v0")
        async with open_parts(offline, transport=sim.transport()) as parts:
            await parts.items(clock=sim.clock).sync()
            job = ContentJob(settings, parts.engine, clock=sim.clock, rewrite=web.rewrite)
            await job.run(list(planted))

    asyncio.run(sync_and_fetch())
    outcomes = dict(rows(engine, "SELECT outcome, count(*) FROM contents GROUP BY 1"))
    assert set(outcomes) == set(OUTCOMES), outcomes

    # politeness, as the sites saw it: one request at a time, DELAY apart, robots obeyed
    by_site: dict[str, list[Any]] = {}
    for hit in demo_hits:
        by_site.setdefault(hit.site, []).append(hit)
    for site, hits in by_site.items():
        hits.sort(key=lambda h: h.arrived)
        assert hits[0].path == "/robots.txt"
        assert sum(h.path == "/robots.txt" for h in hits) == 1, site
        for before, after in itertools.pairwise(hits):
            assert after.arrived >= before.done + DELAY - 0.005, (site, before, after)
    for site in by_site:  # and the planted pass's requests too
        hits = sorted((h for h in web.hits if h.site == site), key=lambda h: h.arrived)
        assert all(b.arrived >= a.done + DELAY - 0.005 for a, b in itertools.pairwise(hits))
    assert [h.path for h in by_site["news.ycombinator.com"]] == ["/robots.txt"]

    # the archive holds the exact bytes served: gzip as sent by lwn.net, plain elsewhere
    data = Path(settings.data_dir)
    for site in ("lwn.net", "github.com"):
        _, final, file, offset = rows(
            engine,
            "SELECT hn_id, final_url, warc_file, warc_offset FROM contents "
            f"WHERE outcome = 'ok' AND url LIKE 'https://{site}/%' LIMIT 1",
        )[0]
        _, _, body, _ = web.answer(site, urlsplit(final).path)
        with (data / file).open("rb") as stream:
            from warcio.archiveiterator import ArchiveIterator

            stream.seek(offset)
            record = next(iter(ArchiveIterator(stream)))
            assert record.rec_type == "response"
            assert record.raw_stream.read() == body  # not decoded: as it came
            stream.seek(0)
            asked = [r for r in ArchiveIterator(stream) if r.rec_type == "request"]
            lines = asked[-1].http_headers.headers
            assert [k.lower() for k, _ in lines].count("host") == 1
            assert ("User-Agent", settings.content_user_agent) in lines
        assert read(data / file, offset).status == 200

    # re-extraction from the archive with the web stopped gives the same text
    before = dict(rows(engine, "SELECT hn_id, text FROM contents WHERE outcome = 'ok'"))
    web.stop()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE contents SET text = NULL, markdown = NULL, word_count = NULL"))
    out = hnlab_cli("content", "reextract", "--json", env=settings_env(settings))
    assert out.returncode == 0, out.stderr
    done = json.loads(out.stdout)
    assert done["reextracted"] >= len(before) and done["missing_records"] == 0
    after = dict(rows(engine, "SELECT hn_id, text FROM contents WHERE outcome = 'ok'"))
    assert after == before
    assert rows(engine, "SELECT DISTINCT extractor_version FROM contents WHERE outcome = 'ok'")[0][
        0
    ]

    # search: a phrase only in one story's article finds it
    story, text = next(iter(sorted(before.items())))
    words = text.split("\n\n")[-1].split()[3:9]
    phrase = " ".join(w.strip(".,") for w in words)
    out = hnlab_cli("search", f'"{phrase}"', "--json", env=settings_env(settings))
    assert out.returncode == 0, out.stderr
    found = [json.loads(line) for line in out.stdout.splitlines()]
    assert story in [f["hn_id"] for f in found]
    assert "«" in found[0]["snippet"]
    assert analysis.search(f'"{phrase}"', engine=settings.database_url)["hn_id"].iloc[0] in {
        f["hn_id"] for f in found
    }

    # show prints the Markdown; status counts outcomes and names failing domains
    out = hnlab_cli("content", "show", str(story), env=settings_env(settings))
    assert out.returncode == 0 and re.search(r"^outcome +ok$", out.stdout, re.M)
    status = json.loads(hnlab_cli("content", "status", "--json", env=settings_env(settings)).stdout)
    assert sum(status["outcomes"].values()) == len(rows(engine, "SELECT 1 FROM contents"))
    assert any(d["domain"] == "medium.com" for d in status["failing_domains"])


async def _pass(settings: Settings, sim: SimulatedHN, web: SimulatedWeb) -> None:
    async with open_parts(settings) as parts:
        await ContentJob(settings, parts.engine, clock=sim.clock, rewrite=web.rewrite).run()


def test_bad_input_gives_one_line(
    make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    settings = make_settings()
    env = settings_env(settings)
    out = hnlab_cli("content", "fetch", "--hn-id", "999999", env=env)
    assert out.returncode != 0 and out.stderr.count("\n") == 1 and "999999" in out.stderr
    out = hnlab_cli("content", "show", "5", env=env)
    assert out.returncode != 0 and "content fetch --hn-id 5" in out.stderr
    out = hnlab_cli("content", "status", env={**env, "HNLAB_CONTENT_ALLOW": "10.0.0.0/99"})
    assert out.returncode != 0 and "HNLAB_CONTENT_ALLOW" in out.stderr
    out = hnlab_cli("search", "  ", env=env)
    assert out.returncode != 0 and "empty" in out.stderr
