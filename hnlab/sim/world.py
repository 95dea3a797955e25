"""The simulated HN's world, one minute at a time: arrivals, attention, votes, ranking.

``SimulatedHN`` serves this world over HTTP; ``/v0/_sim/truth`` serves its hidden
facts. The rules below are the world's, each with the reason it is so. The
estimators in ``hnlab.analysis.ranking`` know none of them: they see only what the API
shows (lists, scores, comment counts, submission times).

Arrivals
    Stories arrive as a Poisson process, ``stories_per_hour`` on average (default
    40, about 960 a day: /newest shows roughly a thousand submissions a day), more
    by day than by night: the rate follows the *diurnal* curve below. Each draws a
    kind (story 75 %, Show HN 8 %, Ask HN 7 %, job 3 %, poll 1 %, and the API's
    oddities: 2 % dead, 2 % deleted, 1 % bare, 1 % null) and a hidden *quality*
    ``q ~ lognormal(-s^2/2, s)``, ``s = 0.6``: mean 1, so ``q`` is how many times an
    average story's upvotes the story earns at the same rank and minute.

Attention
    Upvotes come from the pages people read. A story at rank ``r`` of ``top``
    receives, per minute, Poisson(``V_top * D(t) * a_top(r) * q``) upvotes, where
    ``a_top(r) = r^-0.5 * page(r)`` normalized so ranks 1-30 sum to 1. With the
    exponent 0.5, rank 1 takes 10.4 % of the front page's attention, the figure
    widely reported for HN's top slot. ``page(r)`` is 1 on page 1 (ranks 1-30),
    0.15 on page 2, 0.03 on page 3 and 0.01 deeper: few readers press "More".
    ``/newest`` adds ``V_new * D(t) * a_new(r) * q`` for ranks 1-30 of ``new``
    with a flatter ``r^-0.3`` (people scan the new page top to bottom). ``V_top =
    6`` and ``V_new = 2`` upvotes a minute: about a hundred stories a day reach the
    front page, most with tens of points and a few with thousands, as on HN. There
    is no other source of votes: a story off both pages gains none.
    ``D(t) = 1 + 0.45 cos(2 pi (hour - 16) / 24)``: the site is busiest around
    16:00 UTC (the US morning, Europe's afternoon) and quietest at 04:00 UTC.

Ranking
    ``top`` follows the public gravity formula ``(points - 1)^0.8 / (age_h + 2)^1.8``
    times the story's penalty factor and an *unexplained* factor
    ``lognormal(0, 0.15)`` fixed per story, which stands for what the public formula
    leaves out (vote weighting, second-chance boosts). Jobs take no votes; they are
    ranked as if they had 20 points, so they sit on the front page for a few hours,
    as YC's job posts do. ``new`` is newest first; ``best`` is most points in the
    window; ``ask`` and ``show`` keep ``top``'s order. Dead stories are on no list.
    Stories leave every list 72 hours after they arrive.

Penalties (each applied once; a penalty multiplies the ranking score)
    * The flamewar rule: once a story has 40 comments or more and more comments
      than points, its score is multiplied by 0.2. HN's moderators describe an
      automatic penalty for "overheated" threads with more comments than upvotes.
    * Flags and moderation: 10 % of stories are the kind readers flag. Such a story
      is penalized after it has been on the front page (rank <= 30) for a delay
      drawn from an exponential distribution with mean 40 minutes, by a factor
      drawn log-uniformly from 0.05 to 0.4.
    What the world leaves out: mild penalties (domain weights), penalties lifted
    later, and boosts. A penalty that the data cannot see is no test of anything.

Score corrections
    2 % of stories draw a voting ring: 5-12 extra upvotes within their first 20
    minutes, which HN's ring detection removes 30-120 minutes later, so the score
    goes down once. These votes are in ``ring`` in the truth, and not in ``quality``.

Comments
    Each story draws a discussiveness ``talk ~ lognormal(0, 0.8)``; its comments
    follow ``0.4 * talk * kind * peak_points^0.95``, reached with a one-hour lag
    (Ask HN x2.2, polls x2.5, Show HN x0.7, jobs none), so two stories of one score
    can differ several-fold in comments, as on HN. Each minute the comments a story
    is due are written (jobs, dead, deleted, bare and null stories take none): a third answer
    the story, the rest a comment already in its thread, chosen uniformly, so
    threads grow deep where they are busy, and some replies answer comments that are
    deleted later. Authors are Zipf-distributed over 3,000 names, so a few
    commenters are everywhere. Within HN's two-hour edit window 8 % of comments
    are edited (1-100 minutes in) and 3 % deleted (2-110 minutes in); 2 % are
    killed later (30-115 minutes in, before the window closes, so a re-fetch after
    it sees every change). A deleted comment keeps its place and its replies.

Ids
    Stories and comments take ids from one counter in creation order, as HN's
    do, so a story's id says nothing of its index and ``maxitem`` is the newest.

Everything is drawn from one generator seeded by ``seed``, stepping one minute at
a time, so a seed and a start give the same world however it is queried. The 72
hours before the start are simulated in 10-minute steps, so the lists are full at
the start.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
FIRST_ID = 40_000_000
WINDOW_MINUTES = 72 * 60
WARMUP_STEP = 10  # minutes per step before the start

KINDS = ("story", "show", "ask", "job", "poll", "dead", "deleted", "bare", "null")
_KIND_SHARES = (0.75, 0.08, 0.07, 0.03, 0.01, 0.02, 0.02, 0.01, 0.01)
JOB, DEAD = KINDS.index("job"), KINDS.index("dead")
_TALK_BY_KIND = np.array([1.0, 0.7, 2.2, 0.0, 2.5, 1.0, 1.0, 1.0, 1.0])
_SILENT = np.array([k in ("job", "dead", "deleted", "bare", "null") for k in KINDS])
EDIT_WINDOW = 120  # minutes
NAMED = ("pg", "dang", "tptacek", "patio11", "jacquesm", "simonw", "rayiner", "dragonwriter")
COMMENTERS = 3000


@dataclass(frozen=True)
class Rules:
    """The world's parameters; their reasons are in the module docstring."""

    stories_per_hour: float = 40.0
    top_upvotes_per_minute: float = 6.0
    new_upvotes_per_minute: float = 2.0
    top_exponent: float = 0.5
    new_exponent: float = 0.3
    page_factors: tuple[float, float, float, float] = (1.0, 0.15, 0.03, 0.01)
    diurnal_amplitude: float = 0.45
    diurnal_peak_hour: float = 16.0
    gravity: float = 1.8
    quality_sigma: float = 0.6
    unexplained_sigma: float = 0.15
    job_points: float = 20.0
    flamewar_comments: int = 40
    flamewar_factor: float = 0.2
    flaggable_share: float = 0.10
    flag_delay_minutes: float = 40.0
    flag_factors: tuple[float, float] = (0.05, 0.4)
    ring_share: float = 0.02


def minute_of(moment: datetime) -> int:
    """Whole minutes since the world's epoch (floored)."""
    return int((moment - EPOCH).total_seconds() // 60)


def time_of(minute: float) -> datetime:
    return EPOCH + timedelta(minutes=minute)


def attention(rules: Rules, list_name: str, ranks: int) -> np.ndarray:
    """Each rank's share (index 0 is rank 1), scaled so ranks 1-30 sum to 1."""
    r = np.arange(1, ranks + 1, dtype=float)
    if list_name == "new":
        w = np.where(r <= 30, r**-rules.new_exponent, 0.0)
    else:
        page = np.minimum((r - 1) // 30, 3).astype(int)
        w = r**-rules.top_exponent * np.asarray(rules.page_factors)[page]
    shares: np.ndarray = w / w[:30].sum()
    return shares


def diurnal(rules: Rules, minute: float) -> float:
    hour = (minute / 60) % 24
    return 1 + rules.diurnal_amplitude * math.cos(
        2 * math.pi * (hour - rules.diurnal_peak_hour) / 24
    )


class World:
    """The state of every story since the warm-up began; ``step_to`` moves it forward."""

    _FIELDS = (
        "created",  # minutes since EPOCH, fractional
        "kind",
        "quality",
        "talk",
        "unexplained",
        "votes",  # upvotes held now (points - 1)
        "peak",  # most upvotes ever held (comments follow it)
        "penalty",
        "front_at",  # first minute at rank <= 30 on top, or -1
        "front_minutes",  # minutes spent at rank <= 30 (for flags)
        "flag_after",  # front-page minutes before a flag penalty, or inf
        "flag_factor",
        "ring_votes",
        "ring_add",  # minute the ring votes arrive, or -1
        "ring_undo",  # minute they are removed, or -1
        "hn_id",
        "said",  # comments written so far
    )

    def __init__(self, seed: int, start: datetime, rules: Rules | None = None) -> None:
        self.rules = rules or Rules()
        self.seed = seed
        self.start = minute_of(start)
        self.rng = np.random.default_rng(seed)
        self.top_share = attention(self.rules, "top", 500)
        self.new_share = attention(self.rules, "new", 30)
        self.n = 0
        self.lo = 0  # first story still in the window
        cap = 8192
        self.a: dict[str, np.ndarray] = {
            name: np.zeros(cap, dtype=_DTYPES.get(name, float)) for name in self._FIELDS
        }
        self.crng = np.random.default_rng([seed, 7])  # comments: the stories' draws stay
        self.refs: list[int] = []  # id - FIRST_ID -> story index, or -1 - comment index
        self.c = Comments()
        self.kids: dict[int, list[int]] = {}  # hn id -> its replies' ids, oldest first
        self.threads: dict[int, list[int]] = {}  # story index -> its comments' indices
        self.removals: dict[int, list[float]] = {}  # story index -> deletion and kill times
        self.events: list[dict[str, Any]] = []  # penalties and rings, in order
        self.minute = self.start - WINDOW_MINUTES
        self.top = np.zeros(0, dtype=int)  # story indices, best first
        self.new = np.zeros(0, dtype=int)
        while self.minute < self.start:
            self._step(min(WARMUP_STEP, self.start - self.minute))

    def copy(self) -> World:
        other = object.__new__(World)
        other.__dict__.update(self.__dict__)
        other.rng = np.random.default_rng()
        other.rng.bit_generator.state = self.rng.bit_generator.state
        other.a = {k: v.copy() for k, v in self.a.items()}
        other.events = list(self.events)
        other.crng = np.random.default_rng()
        other.crng.bit_generator.state = self.crng.bit_generator.state
        other.refs = list(self.refs)
        other.c = self.c.copy()
        other.kids = {k: list(v) for k, v in self.kids.items()}
        other.threads = {k: list(v) for k, v in self.threads.items()}
        other.removals = {k: list(v) for k, v in self.removals.items()}
        return other

    # -- stepping -----------------------------------------------------------------------
    def step_to(self, minute: int) -> None:
        """Advance minute by minute until the world is at ``minute`` (never backwards)."""
        while self.minute < minute:
            self._step(1)

    def _grow(self, need: int) -> None:
        cap = len(self.a["created"])
        if need <= cap:
            return
        size = max(need, cap * 2)
        for name, arr in self.a.items():
            grown = np.zeros(size, dtype=arr.dtype)
            grown[:cap] = arr
            self.a[name] = grown

    def _arrive(self, dt: int) -> None:
        rules, rng = self.rules, self.rng
        mean = rules.stories_per_hour / 60 * dt * diurnal(rules, self.minute)
        k = int(rng.poisson(mean))
        if not k:
            return
        i, j = self.n, self.n + k
        self._grow(j)
        a = self.a
        # arrivals fall in the step just ended, (minute - dt, minute]: nothing from the future
        a["created"][i:j] = self.minute - np.sort(rng.uniform(0, dt, k))[::-1]
        a["kind"][i:j] = rng.choice(len(KINDS), size=k, p=_KIND_SHARES)
        s = rules.quality_sigma
        a["quality"][i:j] = rng.lognormal(-(s**2) / 2, s, k)
        a["talk"][i:j] = rng.lognormal(0.0, 0.8, k)
        a["unexplained"][i:j] = rng.lognormal(0.0, rules.unexplained_sigma, k)
        a["penalty"][i:j] = 1.0
        a["front_at"][i:j] = -1
        flaggable = rng.random(k) < rules.flaggable_share
        a["flag_after"][i:j] = np.where(
            flaggable, rng.exponential(rules.flag_delay_minutes, k), np.inf
        )
        lo_f, hi_f = np.log(rules.flag_factors)
        a["flag_factor"][i:j] = np.exp(rng.uniform(lo_f, hi_f, k))
        ring = rng.random(k) < rules.ring_share
        a["ring_votes"][i:j] = np.where(ring, rng.integers(5, 13, k), 0)
        add = a["created"][i:j] + rng.uniform(1, 20, k)
        a["ring_add"][i:j] = np.where(ring, np.ceil(add), -1)
        a["ring_undo"][i:j] = np.where(ring, np.ceil(add + rng.uniform(30, 120, k)), -1)
        self.n = j

    def _vote(self, dt: int) -> None:
        """Upvotes over the last ``dt`` minutes, by the ranks held at their start."""
        a, rules = self.a, self.rules
        d = diurnal(self.rules, self.minute) * dt
        if len(self.top):
            rate = rules.top_upvotes_per_minute * d * self.top_share[: len(self.top)]
            lam = rate * a["quality"][self.top] * (a["kind"][self.top] != JOB)
            a["votes"][self.top] += self.rng.poisson(lam)
        if len(self.new):
            shown = self.new[:30]
            rate = rules.new_upvotes_per_minute * d * self.new_share[: len(shown)]
            a["votes"][shown] += self.rng.poisson(rate * a["quality"][shown])

    def _rings(self, live: slice, dt: int) -> None:
        a = self.a
        idx = np.arange(live.start, live.stop)
        ring = idx[a["ring_votes"][live] > 0]

        def due(when: np.ndarray) -> np.ndarray:
            return ring[(when[ring] > self.minute - dt) & (when[ring] <= self.minute)]

        for i in due(a["ring_add"]):
            a["votes"][i] += a["ring_votes"][i]
            self.events.append(self._event(i, "ring", votes=int(a["ring_votes"][i])))
        for i in due(a["ring_undo"]):
            a["votes"][i] = max(0.0, a["votes"][i] - a["ring_votes"][i])
            self.events.append(self._event(i, "ring removed", votes=-int(a["ring_votes"][i])))

    def comments(self, idx: np.ndarray | int, minute: float) -> np.ndarray:
        a = self.a
        age_h = np.maximum(0.0, (minute - a["created"][idx]) / 60)
        talk = 0.4 * a["talk"][idx] * _TALK_BY_KIND[a["kind"][idx]]
        counts: np.ndarray = np.floor(talk * (1 + a["peak"][idx]) ** 0.95 * (1 - np.exp(-age_h)))
        return counts.astype(int)

    def _penalize(self, live: slice, dt: int) -> None:
        a, rules = self.a, self.rules
        idx = np.arange(live.start, live.stop)
        unpenalized = idx[a["penalty"][live] == 1.0]
        comments = self.comments(unpenalized, self.minute)
        points = 1 + a["votes"][unpenalized]
        hot = (comments >= rules.flamewar_comments) & (comments > points)
        for i in unpenalized[hot]:
            a["penalty"][i] = rules.flamewar_factor
            self.events.append(self._event(i, "flamewar", factor=rules.flamewar_factor))
        front = self.top[:30]
        a["front_minutes"][front] += dt
        due = front[
            (a["penalty"][front] == 1.0) & (a["front_minutes"][front] >= a["flag_after"][front])
        ]
        for i in due:
            a["penalty"][i] = a["flag_factor"][i]
            self.events.append(self._event(i, "flags", factor=float(a["flag_factor"][i])))

    def _event(self, i: int, reason: str, **values: Any) -> dict[str, Any]:
        return {"hn_id": self.hn_id(int(i)), "at": self.minute, "reason": reason, **values}

    def _discuss(self, dt: int, arrived: int) -> None:
        """Write the comments due this step, then give this step's comments and stories
        their ids in creation order (both fall in ``(minute - dt, minute]``)."""
        a, rng, c = self.a, self.crng, self.c
        idx = np.arange(self.lo, arrived)
        idx = idx[~_SILENT[a["kind"][idx]]]
        due = self.comments(idx, self.minute) - a["said"][idx].astype(int)
        writers = idx[due > 0]
        counts = due[due > 0]
        a["said"][writers] += counts
        stories = np.repeat(writers, counts)
        times = self.minute - rng.uniform(0, dt, len(stories))
        order = np.argsort(times, kind="stable")
        stories, times = stories[order], times[order]
        m = len(stories)
        top = rng.random(m) < 1 / 3
        picks = rng.random(m)
        authors = (rng.zipf(1.5, m) - 1) % COMMENTERS
        fate = rng.random(m)
        after = rng.uniform(0, 1, m)
        first = len(c.time)
        for k in range(m):
            s = int(stories[k])
            thread = self.threads.setdefault(s, [])
            # the story (-1 - s, until it has its id below), or a comment in its thread
            parent = -1 - s if top[k] or not thread else thread[int(picks[k] * len(thread))]
            thread.append(first + k)
            c.story.append(s)
            c.parent.append(parent)
            c.time.append(float(times[k]))
            c.author.append(int(authors[k]))
            t, f, u = float(times[k]), fate[k], after[k]
            c.edit_at.append(t + 1 + 99 * u if f < 0.08 else math.inf)
            c.delete_at.append(t + 2 + 108 * u if 0.08 <= f < 0.11 else math.inf)
            c.kill_at.append(t + 30 + 85 * u if 0.11 <= f < 0.13 else math.inf)
            gone = min(c.delete_at[-1], c.kill_at[-1])
            if gone < math.inf:
                bisect.insort(self.removals.setdefault(s, []), gone)
        # ids in creation order: this step's comments and arrivals, merged by time
        new_stories = np.arange(arrived, self.n)
        merged = sorted(
            [(float(times[k]), k, -1 - (first + k)) for k in range(m)]
            + [(float(a["created"][i]), m + int(i), int(i)) for i in new_stories]
        )
        for _, _, ref in merged:
            hn_id = FIRST_ID + len(self.refs)
            self.refs.append(ref)
            if ref >= 0:
                a["hn_id"][ref] = hn_id
            else:
                c.hn_id.append(hn_id)  # comments are appended in time order, as here
        for k in range(first, first + m):
            parent = c.parent[k]
            if parent < 0:
                parent = c.parent[k] = self.hn_id(-1 - parent)
            else:
                parent = c.parent[k] = c.hn_id[parent]
            self.kids.setdefault(parent, []).append(c.hn_id[k])

    def _rank(self) -> None:
        a, rules = self.a, self.rules
        idx = np.arange(self.lo, self.n)
        kind = a["kind"][idx]
        listed = idx[kind != DEAD]
        kind = a["kind"][listed]
        age_h = (self.minute - a["created"][listed]) / 60
        points = np.where(kind == JOB, rules.job_points, a["votes"][listed])
        key = (
            points**0.8
            / (age_h + 2) ** rules.gravity
            * a["penalty"][listed]
            * a["unexplained"][listed]
        )
        # best first; ties (no votes yet) newest first
        order = np.lexsort((-a["created"][listed], -key))
        self.top = listed[order][:500]
        fresh = listed[kind != JOB]
        self.new = fresh[::-1][:500]
        front = self.top[:30]
        first = front[a["front_at"][front] < 0]
        a["front_at"][first] = self.minute

    def _step(self, dt: int) -> None:
        self._vote(dt)
        self.minute += dt
        arrived = self.n
        self._arrive(dt)
        cutoff = self.minute - WINDOW_MINUTES
        created = self.a["created"]
        while self.lo < self.n and created[self.lo] < cutoff:
            self.lo += 1
        live = slice(self.lo, self.n)
        self._rings(live, dt)
        a = self.a
        a["peak"][live] = np.maximum(a["peak"][live], a["votes"][live])
        self._discuss(dt, arrived)
        self._penalize(live, dt)
        self._rank()

    # -- reading ------------------------------------------------------------------------
    def hn_id(self, index: int) -> int:
        """The id of the story at ``index``."""
        return int(self.a["hn_id"][index])

    def ref(self, hn_id: int) -> int | None:
        """What ``hn_id`` is: a story's index (>= 0), ``-1 - k`` for comment ``k``, or
        None for an id not given out yet."""
        offset = hn_id - FIRST_ID
        return self.refs[offset] if 0 <= offset < len(self.refs) else None

    @property
    def max_item(self) -> int:
        return FIRST_ID + len(self.refs) - 1

    def descendants(self, index: int) -> int:
        """Comments on story ``index`` that a reader sees: neither deleted nor dead."""
        thread = self.threads.get(index, ())
        return len(thread) - bisect.bisect_right(self.removals.get(index, ()), self.minute)

    def changes(self) -> list[dict[str, Any]]:
        """Every comment edit, deletion and kill so far, in time order."""
        c, now = self.c, self.minute
        out: list[dict[str, Any]] = []
        for what, when in (
            ("edited", c.edit_at),
            ("deleted", c.delete_at),
            ("killed", c.kill_at),
        ):
            for k, at in enumerate(when):
                if at <= now:
                    out.append({"id": c.hn_id[k], "change": what, "at": at})
        out.sort(key=lambda e: (e["at"], e["id"]))
        for e in out:
            e["at"] = time_of(e["at"]).isoformat()
        return out

    def listing(self, name: str) -> list[int]:
        a = self.a
        if name == "top":
            chosen = self.top
        elif name == "new":
            chosen = self.new
        elif name in ("ask", "show"):
            chosen = self.top[a["kind"][self.top] == KINDS.index(name)]
        elif name == "job":
            idx = np.arange(self.lo, self.n)
            chosen = idx[a["kind"][idx] == JOB][::-1]
        else:  # best
            idx = np.arange(self.lo, self.n)
            idx = idx[(a["kind"][idx] != DEAD) & (a["kind"][idx] != JOB)]
            chosen = idx[np.argsort(-a["votes"][idx], kind="stable")]
        return [self.hn_id(int(i)) for i in chosen[:500]]

    def truth(self) -> dict[str, Any]:
        """The hidden facts: rules, attention curves and every story (those that arrived
        before the start, in the warm-up, have ``warmup`` true)."""
        a = self.a
        penalties: dict[int, list[dict[str, Any]]] = {}
        rings: dict[int, list[dict[str, Any]]] = {}
        for event in self.events:
            target = rings if event["reason"].startswith("ring") else penalties
            entry = {k: v for k, v in event.items() if k != "hn_id"}
            entry["at"] = time_of(entry["at"]).isoformat()
            target.setdefault(event["hn_id"], []).append(entry)
        stories = []
        for i in range(self.n):
            hn_id = self.hn_id(i)
            front = a["front_at"][i]
            stories.append(
                {
                    "hn_id": hn_id,
                    "kind": KINDS[a["kind"][i]],
                    "warmup": bool(a["created"][i] < self.start),
                    "arrived": time_of(a["created"][i]).isoformat(),
                    "quality": round(float(a["quality"][i]), 6),
                    "points": int(1 + a["votes"][i]),
                    "front_page_at": time_of(front).isoformat() if front >= 0 else None,
                    "penalties": penalties.get(hn_id, []),
                    "ring": rings.get(hn_id, []),
                }
            )
        rules = self.rules
        return {
            "seed": self.seed,
            "start": time_of(self.start).isoformat(),
            "now": time_of(self.minute).isoformat(),
            "rules": asdict(rules),
            "attention": {
                "top": [round(float(s), 6) for s in self.top_share[:90]],
                "new": [round(float(s), 6) for s in self.new_share],
            },
            "diurnal": [round(diurnal(rules, h * 60), 6) for h in range(24)],
            "stories": stories,
            "max_item": self.max_item,
            "comments": len(self.c.time),
            "changes": self.changes(),
        }


_DTYPES = {"kind": np.int8, "hn_id": np.int64}


@dataclass
class Comments:
    """Every comment written, in creation (and so id) order; times in world minutes,
    ``inf`` for a change that never comes. ``parent`` is an id."""

    story: list[int] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    author: list[int] = field(default_factory=list)
    edit_at: list[float] = field(default_factory=list)
    delete_at: list[float] = field(default_factory=list)
    kill_at: list[float] = field(default_factory=list)
    hn_id: list[int] = field(default_factory=list)

    def copy(self) -> Comments:
        return Comments(**{f.name: list(getattr(self, f.name)) for f in fields(self)})


def commenter(k: int) -> str:
    """The name of commenter ``k`` (0 is the busiest)."""
    return NAMED[k] if k < len(NAMED) else f"user{k:04d}"


@functools.lru_cache(maxsize=8)
def _warmed(seed: int, start: datetime, rules: Rules) -> World:
    return World(seed, start, rules)


def world(seed: int, start: datetime, rules: Rules | None = None) -> World:
    """A world at ``start`` (its warm-up is computed once per seed and start)."""
    return _warmed(seed, start, rules or Rules()).copy()
