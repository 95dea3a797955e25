"""Post, and tolerant parsing of HN API items into it. Pure: no I/O.

The real API returns ``null`` bodies, deleted items carrying only ``id``, ``time``
and ``type``, dead items, jobs inside topstories, self-posts without ``url``,
items without ``by``, ``score`` or ``descendants``, and HTML entities in titles.
``parse_item`` turns each of those into a ``Post`` or a reason it is not one.
"""

from __future__ import annotations

import enum
import html
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

_POST_NAMESPACE = uuid.UUID("6f0c5c3e-6a61-4b8e-9b3a-2f0e2a1b7c11")
_SEED_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


class Skip(enum.StrEnum):
    """Why an item is not a post."""

    NULL = "null"  # the API answered null
    UNAVAILABLE = "unavailable"  # deleted, or carries no title
    NOT_A_STORY = "not_a_story"  # a comment or a pollopt
    MALFORMED = "malformed"  # not a JSON object, or an id/time of the wrong type


def post_uuid(hn_id: int) -> uuid.UUID:
    """The stable primary key of the post with ``hn_id`` (the same on every machine)."""
    return uuid.uuid5(_POST_NAMESPACE, str(hn_id))


def extract_domain(url: str | None) -> str | None:
    """The URL's host, lower-cased, without port or a leading ``www.``; None for none."""
    if not url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.lower().rstrip(".")
    return host.removeprefix("www.") or None


def classify(item_type: str, title: str) -> str:
    """Seed's post type: job, poll, ask (``Ask HN:``), show (``Show HN:``) or story."""
    if item_type in ("job", "poll"):
        return item_type
    lowered = title.lower()
    if lowered.startswith("ask hn:"):
        return "ask"
    if lowered.startswith("show hn:"):
        return "show"
    return "story"


def to_seed_time(moment: datetime) -> str:
    """The seed's timestamp format: UTC, microseconds, no offset."""
    return moment.astimezone(UTC).strftime(_SEED_TIME_FORMAT)


@dataclass(slots=True)
class Post:
    """A story as hnlab stores it: the seed's fields, times in UTC."""

    hn_id: int
    title: str
    author: str | None
    url: str | None
    domain: str | None
    score: int
    comment_count: int
    created_at: datetime
    collected_at: datetime
    type: str
    is_dead: bool = False
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    def __post_init__(self) -> None:
        self.id = post_uuid(self.hn_id)

    def to_metadata(self) -> dict[str, Any]:
        """The RocksDB value, with the seed's keys exactly."""
        return {
            "hn_id": self.hn_id,
            "title": self.title,
            "author": self.author,
            "url": self.url,
            "points": self.score,
            "num_comments": self.comment_count,
            "post_type": self.type,
            "created_at": to_seed_time(self.created_at),
            "collected_at": to_seed_time(self.collected_at),
        }

    def to_row(self) -> dict[str, Any]:
        """Column values for the ``posts`` table."""
        return {
            "id": self.id,
            "hn_id": self.hn_id,
            "title": self.title,
            "author": self.author,
            "url": self.url,
            "domain": self.domain,
            "score": self.score,
            "comment_count": self.comment_count,
            "created_at": self.created_at,
            "collected_at": self.collected_at,
            "type": self.type,
            "is_dead": self.is_dead,
            "last_seen_at": self.collected_at,
        }


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


def parse_item(raw: Any, *, collected_at: datetime) -> Post | Skip:
    """Turn one API item into a ``Post``, or say why it is not one.

    Unknown fields are ignored. ``comment_count`` is ``descendants`` (jobs have
    none: 0), which can be smaller than ``len(kids)``; the API's count is kept.
    """
    if raw is None:
        return Skip.NULL
    if not isinstance(raw, dict):
        return Skip.MALFORMED
    hn_id = raw.get("id")
    if isinstance(hn_id, bool) or not isinstance(hn_id, int):
        return Skip.MALFORMED
    item_type = raw.get("type")
    if item_type in ("comment", "pollopt"):
        return Skip.NOT_A_STORY
    if item_type not in (None, "story", "job", "poll"):
        return Skip.NOT_A_STORY
    title = raw.get("title")
    if raw.get("deleted") or not isinstance(title, str) or not title.strip():
        return Skip.UNAVAILABLE
    stamp = raw.get("time")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        return Skip.MALFORMED
    title = html.unescape(title).strip()
    url = raw.get("url") if isinstance(raw.get("url"), str) and raw.get("url") else None
    author = raw.get("by") if isinstance(raw.get("by"), str) else None
    return Post(
        hn_id=hn_id,
        title=title,
        author=author,
        url=url,
        domain=extract_domain(url),
        score=_int(raw.get("score")),
        comment_count=_int(raw.get("descendants")),
        created_at=datetime.fromtimestamp(stamp, tz=UTC),
        collected_at=collected_at,
        type=classify(item_type or "story", title),
        is_dead=bool(raw.get("dead")) or bool(raw.get("deleted")),
    )


_ITEM_FIELDS = frozenset(
    (
        "id",
        "type",
        "by",
        "time",
        "parent",
        "title",
        "url",
        "text",
        "score",
        "descendants",
        "dead",
        "deleted",
        "poll",
        "parts",
        "kids",
    )
)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


_INT4 = 2**31 - 1  # ids and counts are PostgreSQL integers


def _id(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _INT4
    return value if ok else None


def _count(value: Any) -> int | None:
    return None if value is None else max(-_INT4, min(_int(value), _INT4))


def item_row(raw: Any) -> dict[str, Any] | Skip:
    """One API item as an ``items`` row (``time`` in epoch seconds, without the times
    hnlab adds), or why not.

    Any type is kept, unknown fields go to ``extra``, a missing field is None; the
    title is plain text (entities decoded), ``text`` HN's HTML as given. ``kids`` is
    not stored: each reply names its parent.
    """
    if raw is None:
        return Skip.NULL
    if not isinstance(raw, dict) or _id(raw.get("id")) is None:
        return Skip.MALFORMED
    stamp = raw.get("time")
    if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int | float)):
        return Skip.MALFORMED
    title = _str(raw.get("title"))
    url = _str(raw.get("url")) or None
    parts = raw.get("parts")
    extra = {k: v for k, v in raw.items() if k not in _ITEM_FIELDS}
    return {
        "id": raw["id"],
        "type": _str(raw.get("type")),
        "by": _str(raw.get("by")),
        "time": stamp,  # epoch seconds
        "parent": _id(raw.get("parent")),
        "title": html.unescape(title).strip() if title else None,
        "url": url,
        "domain": extract_domain(url),
        "text": _str(raw.get("text")),
        "score": _count(raw.get("score")),
        "descendants": _count(raw.get("descendants")),
        "dead": raw.get("dead") is True,
        "deleted": raw.get("deleted") is True,
        "poll": _id(raw.get("poll")),
        "parts": [p for p in parts if _id(p) is not None] if isinstance(parts, list) else None,
        "extra": extra or None,
    }


def post_row(post: Post) -> dict[str, Any]:
    """A ``Post`` as an ``items`` row: what a story's item says, without its text."""
    return {
        "id": post.hn_id,
        "type": post.type if post.type in ("job", "poll") else "story",
        "by": post.author,
        "time": post.created_at.timestamp(),
        "parent": None,
        "title": post.title,
        "url": post.url,
        "domain": post.domain,
        "text": None,
        "score": post.score,
        "descendants": post.comment_count,
        "dead": post.is_dead,
        "deleted": False,
        "poll": None,
        "parts": None,
        "extra": None,
    }
