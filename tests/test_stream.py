"""The item stream against the simulator and a real PostgreSQL: every id once, across
runners and a kill -9; settling against the simulator's truth; a shared backfill."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from hnlab.collect.items import ItemStream, PassStats
from hnlab.config import Settings
from hnlab.run.factory import open_parts
from hnlab.sim.server import Faults, SimulatedHN
from tests.helpers import eventually, hnlab_cli, hnlab_process, rows, settings_env


def passes(settings: Settings, sim: SimulatedHN, steps: list[timedelta]) -> list[PassStats]:
    """A sync pass now, then one after each step of the simulator's clock."""

    async def go() -> list[PassStats]:
        out = []
        async with open_parts(settings) as parts:
            stream: ItemStream = parts.items(clock=sim.clock)
            out.append(await stream.sync())
            for step in steps:
                sim.advance(seconds=step.total_seconds())
                out.append(await stream.sync())
        return out

    return asyncio.run(go())


def stored(engine: sa.Engine) -> list[int]:
    return [r[0] for r in rows(engine, "SELECT id FROM items ORDER BY id")]


def served(sim: SimulatedHN, lo: int, hi: int) -> list[int]:
    """The ids in lo..hi the simulator answers with an item now."""
    return [i for i in range(lo, hi + 1) if sim.item(i) is not None]


def test_sync_passes_store_every_id_once_and_give_up_on_nulls_after_the_retries(
    settings: Settings, sim: SimulatedHN, engine: sa.Engine
) -> None:
    first = sim.max_item()
    done = passes(settings, sim, [timedelta(minutes=15)] * 6)  # inside the edit window
    assert done[0].max_item == first and done[0].stored == 1  # a new database starts here
    last = done[-1].max_item
    assert last is not None and last > first + 300
    ids = stored(engine)
    assert ids == served(sim, first, last)
    for hn_id in ids:
        assert sim.requests_for(f"item/{hn_id}.json") == 1, hn_id
    nulls = sorted(set(range(first, last + 1)) - set(ids))
    assert nulls  # the simulator's null stories never propagate
    gaps = rows(engine, "SELECT id, tries, missing FROM item_gaps ORDER BY id")
    assert [g[0] for g in gaps] == nulls
    # each pass tried each null once more; those seen in the first passes are given up
    oldest = next(g for g in gaps if g[0] == nulls[0])
    assert oldest[1] == 5 and oldest[2] is True
    assert sum(p.missing for p in done) == sum(1 for g in gaps if g[2])
    assert all(p.left == 0 for p in done)


def test_a_malformed_answer_is_retried_and_counted_without_stopping_the_pass(
    settings: Settings, sim: SimulatedHN, engine: sa.Engine
) -> None:
    first = sim.max_item()
    passes(settings, sim, [])
    sim.advance(minutes=10)
    target = served(sim, first + 1, sim.max_item())[0]
    sim.serve_items({target: {"id": "not an id", "type": "comment"}})
    sim.script(f"item/{target + 1}.json", 503, 503, 503)  # gives up after 3 tries this pass
    done = passes(settings, sim, [timedelta(seconds=0)])
    assert done[0].errors == 2 and done[0].stored > 10
    assert rows(engine, f"SELECT tries, reason FROM item_gaps WHERE id = {target}") == [
        (1, "malformed item")
    ]
    sim.forget_items(target)  # the API heals; the next pass a minute later tries again
    passes(settings, sim, [timedelta(minutes=1)])
    assert target in stored(engine) and target + 1 in stored(engine)
    assert rows(engine, f"SELECT count(*) FROM item_gaps WHERE id IN ({target}, {target + 1})") == [
        (0,)
    ]


def test_two_runners_never_fetch_an_id_twice(
    make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    with SimulatedHN(seed=4, faults=Faults(latency_ms=20)) as sim:
        settings = make_settings(hn_api_url=sim.base_url, concurrency=20)
        first = sim.max_item()
        passes(settings, sim, [])
        sim.advance(hours=4)  # ~1,300 new ids: three ranges
        env = {"HNLAB_ITEMS_EVERY": "1"}
        procs = [hnlab_process(settings, "items", "sync", "--once", "--json", **env) for _ in "ab"]
        outs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        ids = stored(engine)
        assert ids == served(sim, first, sim.max_item())
        # the first id was stored on the simulator's clock and is due to settle on the
        # real one: one of the runners settles it
        twice = [i for i in ids[1:] if sim.requests_for(f"item/{i}.json") != 1]
        assert twice == []
        reports = [json.loads(out) for out, _ in outs]
        assert sum(r["stored"] for r in reports) == len(ids) - 1  # between them, once each


def test_a_pass_killed_mid_range_is_finished_by_the_next_with_no_duplicates(
    make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    with SimulatedHN(seed=5, faults=Faults(latency_ms=200)) as sim:
        settings = make_settings(hn_api_url=sim.base_url, concurrency=10)
        first = sim.max_item()
        passes(settings, sim, [])
        sim.advance(hours=3)
        before = sim.stats.total
        proc = hnlab_process(settings, "items", "sync", "--once")
        eventually(lambda: sim.stats.total - before > 50)  # well into its ranges
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert rows(engine, "SELECT count(*) FROM items") == [(1,)]  # its ranges rolled back
        done = passes(settings, sim, [])
        ids = stored(engine)
        assert ids == served(sim, first, sim.max_item())
        assert done[0].stored == len(ids) - 1
        assert rows(engine, "SELECT count(*) FROM item_chunks WHERE done_at IS NULL") == [(0,)]


def test_settling_keeps_edits_flags_kills_and_erases_deletions(
    settings: Settings, sim: SimulatedHN, engine: sa.Engine
) -> None:
    """Synced every 5 simulated minutes for 5 hours: every change the simulator made to
    an item first fetched before it is in hnlab after the items settle."""
    first = sim.max_item()
    start = sim.now
    passes(settings, sim, [timedelta(minutes=5)] * 60)
    truth = sim.truth()
    settled_by = sim.now - timedelta(hours=2)
    fetched = {r[0]: r[1] for r in rows(engine, "SELECT id, first_fetched FROM items WHERE id > 0")}
    changes = [
        c
        for c in truth["changes"]
        if c["id"] > first
        and c["id"] in fetched
        and fetched[c["id"]] < datetime.fromisoformat(c["at"])
        and datetime.fromisoformat(c["at"]) < settled_by
    ]
    kinds = {c["change"] for c in changes}
    assert kinds == {"edited", "deleted", "killed"}, kinds
    deleted = {c["id"] for c in changes if c["change"] == "deleted"}
    edited = {c["id"] for c in changes if c["change"] == "edited"} - deleted
    killed = {c["id"] for c in changes if c["change"] == "killed"}
    revised = {r[0] for r in rows(engine, "SELECT id FROM item_revisions")}
    assert edited <= revised and killed <= revised
    for hn_id in edited:
        (now,), (then,) = (
            rows(engine, f"SELECT text FROM items WHERE id = {hn_id}"),
            rows(engine, f"SELECT text FROM item_revisions WHERE id = {hn_id}"),
        )
        assert "Edit:" in now[0] and "Edit:" not in then[0]
    for hn_id in killed:
        assert rows(engine, f"SELECT dead FROM items WHERE id = {hn_id}") == [(True,)]
    ids = ",".join(map(str, deleted))
    assert rows(
        engine,
        f'SELECT count(*) FROM items WHERE id IN ({ids}) AND deleted AND "by" IS NULL '
        "AND text IS NULL AND title IS NULL AND url IS NULL AND parent IS NOT NULL",
    ) == [(len(deleted),)]
    assert rows(engine, f"SELECT count(*) FROM item_revisions WHERE id IN ({ids})") == [(0,)]
    assert start < sim.now


def test_deletion_is_erased_everywhere_hnlab_holds_the_item(
    settings: Settings, sim: SimulatedHN, engine: sa.Engine
) -> None:
    """A story the hourly collection saved and the stream stored, edited, then deleted:
    its title, url and author leave items, revisions and the seed's posts."""
    first = sim.max_item()
    passes(settings, sim, [timedelta(minutes=5)])
    story = next(i for i in served(sim, first, sim.max_item()) if sim.item(i)["type"] == "story")
    body = dict(sim.item(story))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO posts (id, hn_id, title, author, url, domain, score, comment_count,"
                " created_at, collected_at, type, is_dead, last_seen_at) VALUES (gen_random_uuid(),"
                " :id, :title, 'pg', :url, 'x.org', 99, 0, now(), now(), 'story', false, now())"
            ),
            {"id": story, "title": body["title"], "url": body.get("url")},
        )
    sim.serve_items({story: {**body, "title": "Edited title"}})
    passes(settings, sim, [timedelta(hours=2, minutes=1)])  # settles: a revision
    assert rows(engine, f"SELECT count(*) FROM item_revisions WHERE id = {story}") == [(1,)]
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE items SET settled_at = NULL WHERE id = {story}"))
    sim.serve_items({story: {"deleted": True, "id": story, "time": body["time"], "type": "story"}})
    done = passes(settings, sim, [])
    assert done[0].erased == 1
    assert rows(
        engine, f'SELECT title, url, "by", text, deleted FROM items WHERE id = {story}'
    ) == [(None, None, None, None, True)]
    assert rows(engine, f"SELECT count(*) FROM item_revisions WHERE id = {story}") == [(0,)]
    assert rows(engine, f"SELECT title, author, url FROM posts WHERE hn_id = {story}") == [
        ("", None, None)
    ]


def test_the_search_finds_a_days_exact_id_bounds_in_a_few_round_trips(
    make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    def day_of(sim: SimulatedHN, i: int) -> float | None:
        item = sim.item(i)
        return item.get("time") if item else None

    def bounds(sim: SimulatedHN, since: datetime, until: datetime) -> tuple[int, int]:
        async def go() -> tuple[int, int]:
            settings = make_settings(hn_api_url=sim.base_url, concurrency=40)
            async with open_parts(settings) as parts:
                return await parts.items().bounds(since.date(), until.date())

        return asyncio.run(go())

    with SimulatedHN(seed=3) as sim:
        sim.advance(hours=30)
        since = datetime.combine(sim.now.date(), datetime.min.time(), sim.now.tzinfo)
        since -= timedelta(days=1)
        until = since + timedelta(days=1)
        requests = sim.stats.total
        lo, hi = bounds(sim, since, until)
        rounds = (sim.stats.total - requests - 1) / 40  # maxitem, then rounds of 40
        t = {i: day_of(sim, i) for i in (lo - 1, lo, hi, hi + 1)}
        assert t[lo - 1] is not None and t[lo - 1] < since.timestamp() <= t[lo]  # type: ignore[operator]
        assert t[hi] is not None and t[hi] < until.timestamp() <= t[hi + 1]  # type: ignore[operator]
        assert rounds <= 6

    # answers of null tell nothing: the search passes them over and misses no item of the day
    with SimulatedHN(seed=3, faults=Faults(null_rate=0.2)) as sim:
        sim.advance(hours=30)
        lo2, hi2 = bounds(sim, since, until)
        assert lo2 <= lo and hi2 >= hi and (lo - lo2) + (hi2 - hi) <= 10


def test_backfill_is_shared_by_two_processes_and_a_killed_ones_ranges_are_finished(
    make_settings: Callable[..., Settings], engine: sa.Engine
) -> None:
    with SimulatedHN(seed=6, faults=Faults(latency_ms=100)) as sim:
        sim.advance(hours=24)  # ~11,000 ids since midnight: six ranges
        settings = make_settings(hn_api_url=sim.base_url, concurrency=40, items_rate=1000)
        day = (sim.now - timedelta(hours=24)).date().isoformat()  # the simulator's first day
        args = ("items", "backfill", "--since", day)
        doomed = hnlab_process(settings, *args, "--no-progress")
        survivor = hnlab_process(settings, *args)
        eventually(lambda: sim.stats.total > 400)
        doomed.send_signal(signal.SIGKILL)
        doomed.communicate(timeout=30)
        out, err = survivor.communicate(timeout=300)
        assert survivor.returncode == 0, err
        assert " items/s" in err, (out, err)  # the progress bar: items, rate and time left
        assert "ids left" in out and "0 ids left" in out
        lo = rows(engine, "SELECT min(lo) FROM item_chunks")[0][0]
        ids = stored(engine)
        assert ids == served(sim, lo, sim.max_item())
        hi = sim.max_item()
        # the binary search for the day's bounds asks a few ids near each bound
        inner = [i for i in ids if lo + 100 < i < hi - 100]
        asked = {i: sim.requests_for(f"item/{i}.json") for i in inner}
        # only ids of the ranges the killed process held were asked again, once; and
        # each process's search asked at most a few rounds of 40 ids inside the day
        probed = 2 * 4 * 40
        assert sum(n > 2 for n in asked.values()) <= probed
        assert sum(n > 1 for n in asked.values()) <= 4 * 2000 + probed
        assert rows(engine, "SELECT count(*) FROM item_chunks WHERE done_at IS NULL") == [(0,)]


def test_comments_get_their_story_even_when_the_parent_arrives_later(
    make_settings: Callable[..., Settings], sim: SimulatedHN, engine: sa.Engine
) -> None:
    settings = make_settings(hn_api_url=sim.base_url, items_rate=5000)
    sim.advance(hours=6)
    day = sim.now.date().isoformat()
    out = hnlab_cli("items", "backfill", "--since", day, "--json", env=settings_env(settings))
    assert out.returncode == 0, out.stderr
    orphans = rows(
        engine,
        "SELECT count(*) FROM items c JOIN items p ON p.id = c.parent "
        "WHERE c.story_id IS NULL AND p.story_id IS NOT NULL",
    )
    assert orphans == [(0,)]
    resolved = rows(
        engine,
        "SELECT count(*) FROM items c JOIN items s ON s.id = c.story_id "
        "WHERE c.type = 'comment' AND s.type <> 'comment'",
    )[0][0]
    assert resolved > 1000
