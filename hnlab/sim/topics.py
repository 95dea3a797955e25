"""What the simulated stories are about: steady topics, and bursts planted at known times.

Each story's title draws its words from one topic's vocabulary, chosen by the
topic's weight. Some topics are steadily large (``ai``, ``rust``): their words
are common every hour and never burst. Bursts are planted on top: from a burst's
onset to its end, a ``strength`` share of new stories carries the burst's term
(a word no topic uses), as when a launch or an outage takes over the front page.
``GET /v0/_sim/truth`` lists them, so ``scripts/eval_trends.py`` can score a
detector against them.

The schedule is drawn from the seed and the world's start: one burst every 5 to 8
hours from the start's fourth hour on, each lasting 2 to 4 hours at a strength of
0.08 to 0.35. Two bursts in three are of a new term (each used once); the third
is of a word a small topic already uses every hour, so it must rise over its own
baseline to be seen. Every title also carries a word of ``GENERAL``: chance
co-occurrences a detector must not take for bursts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

TOPICS: dict[str, tuple[str, ...]] = {
    "ai": ("LLM", "model", "GPU", "inference", "training", "agents", "transformer", "tokens"),
    "rust": ("Rust", "compiler", "borrow", "checker", "cargo", "memory", "safety", "async"),
    "databases": ("Postgres", "database", "index", "query", "SQLite", "replication", "storage"),
    "web": ("browser", "JavaScript", "CSS", "React", "server", "HTTP", "WebAssembly", "framework"),
    "science": ("physics", "biology", "telescope", "climate", "protein", "satellite", "energy"),
    "startups": ("startup", "founders", "funding", "pricing", "SaaS", "growth", "remote", "equity"),
    "security": ("privacy", "encryption", "vulnerability", "exploit", "password", "breach", "TLS"),
    "systems": ("kernel", "Linux", "scheduler", "terminal", "editor", "filesystem", "shell"),
}
WEIGHTS: dict[str, float] = {
    "ai": 0.24,
    "rust": 0.16,
    "databases": 0.1,
    "web": 0.1,
    "science": 0.1,
    "startups": 0.1,
    "security": 0.1,
    "systems": 0.1,
}
GENERAL = tuple(
    [
        "why",
        "how",
        "what",
        "when",
        "building",
        "lessons",
        "learned",
        "notes",
        "guide",
        "introduction",
        "deep",
        "dive",
        "fast",
        "simple",
        "tiny",
        "better",
        "faster",
        "open",
        "source",
        "free",
        "release",
        "announcing",
        "version",
        "years",
        "later",
        "history",
        "future",
        "design",
        "patterns",
        "mistakes",
        "tools",
        "tips",
        "scaling",
        "debugging",
        "testing",
        "writing",
        "reading",
        "thinking",
        "learning",
        "teaching",
        "hiring",
        "working",
        "home",
        "office",
        "team",
        "culture",
        "rewrite",
        "migration",
        "performance",
        "benchmark",
        "cost",
        "price",
        "review",
        "case",
        "study",
        "story",
        "journey",
        "experiment",
        "prototype",
        "project",
        "library",
        "toolkit",
        "platform",
        "service",
        "api",
        "cloud",
        "local",
        "first",
        "offline",
        "sync",
        "data",
        "code",
        "software",
        "hardware",
        "engineer",
        "developer",
        "manager",
        "users",
        "customers",
        "problem",
        "solution",
        "approach",
        "alternative",
        "comparison",
        "tradeoffs",
        "limits",
        "secrets",
        "myths",
    ]
)
"""Words any title may carry, whatever its topic: the noise a detector must ignore."""

BURST_TERMS = (
    "Heartbleed",
    "Starship",
    "Ladybird",
    "Ghostty",
    "htmx",
    "CrowdStrike",
    "Bluesky",
    "Mastodon",
    "Figma",
    "Framework",
    "Zig",
    "Deno",
    "Tailscale",
    "Raspberry",
    "Voyager",
    "Fediverse",
    "Kagi",
    "Asahi",
    "NixOS",
    "Helix",
    "Svelte",
    "Kotlin",
    "Unicode",
    "Bitcoin",
    "Wikipedia",
    "Firefox",
    "OpenBSD",
    "Ubuntu",
    "Arduino",
    "Mozilla",
)


@dataclass(frozen=True)
class Burst:
    """A planted burst: from ``start`` to ``end``, ``strength`` of new stories say ``term``."""

    term: str
    start: datetime
    end: datetime
    strength: float

    def as_dict(self) -> dict[str, object]:
        return {
            "term": self.term,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "strength": self.strength,
        }


def schedule(seed: int, start: datetime) -> tuple[Burst, ...]:
    """Every burst of the world that starts at ``start``, in time order."""
    rng = random.Random(f"bursts:{seed}")
    terms = list(BURST_TERMS)
    rng.shuffle(terms)
    small = [w for name, words in TOPICS.items() if WEIGHTS[name] <= 0.1 for w in words]
    out = []
    onset = start + timedelta(hours=3)
    for n, novel in enumerate(terms):
        term = rng.choice(small) if n % 3 == 2 else novel
        onset += timedelta(minutes=rng.randint(5 * 60, 8 * 60))
        length = timedelta(minutes=rng.randint(2 * 60, 4 * 60))
        out.append(Burst(term, onset, onset + length, round(rng.uniform(0.08, 0.35), 3)))
    return tuple(out)


def title_words(rng: random.Random, created: datetime, bursts: tuple[Burst, ...]) -> list[str]:
    """Four words for a story created at ``created``: a topic's, and a burst's term while
    one is on (with its strength's probability)."""
    topic = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    words = [*rng.sample(TOPICS[topic], 3), rng.choice(GENERAL)]
    rng.shuffle(words)
    for burst in bursts:
        on = burst.start <= created < burst.end and rng.random() < burst.strength
        if on and burst.term not in words:
            words[0] = burst.term
    return words
