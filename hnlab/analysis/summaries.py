"""Summaries of a story's article and of its thread that cite their sources and can be
checked: ``summarize(story_id)``.

Two ways to make one:

* **A model** (``HNLAB_LLM_URL`` and ``HNLAB_LLM_MODEL``): any OpenAI-compatible
  ``/chat/completions`` endpoint (Ollama, vLLM, a llama.cpp server, OpenAI). The
  thread is sent as lines ``[c<ID>] (by NAME) text``, and the model is asked to end
  every sentence with the ids it draws on. ``check_citations`` then keeps only the
  sentences that cite at least one id and only ids of the thread: an invented id, or
  a sentence that cites nothing, is dropped and counted.
* **Extractive** (the default, offline, no model): the article's lead sentences;
  for the thread, the first sentence of each of the most-replied top-level comments,
  each cited.

A call that fails (a timeout after ``HNLAB_LLM_TIMEOUT`` seconds, an HTTP error, an
answer that is not a chat completion, or one whose every sentence fails the check)
falls back to the extractive summary, whose ``note`` says why in one line.

The article is summarised only when its content outcome is ``ok``: a paywall, a
login wall, a bot block or a failed fetch gets no article summary, never a summary
of the stub. A text post (Ask HN) is its own article.

Every summary is stored in ``summaries`` with its method, model, prompt version,
the SHA-256 of its input and the time; the same input asked again returns the
stored summary (``refresh=True`` makes it again). Erasing a deleted comment erases
the summaries that cite it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hnlab.analysis.loaders import _connection
from hnlab.errors import SummaryError
from hnlab.hn.text import plain_text

if TYPE_CHECKING:
    import pandas as pd

    from hnlab.config import Settings

log = logging.getLogger(__name__)

EXTRACTIVE = "extractive"
PROMPT_VERSIONS = {"article": "article-v1", "thread": "thread-v1"}
"""Bumped whenever a prompt, or what is sent with it, changes."""
MAX_INPUT_CHARS = 24_000
"""At most this much of an article or a thread goes into one prompt."""
MAX_ANSWER_BYTES = 1_000_000
LEAD_WORDS = 60
THREAD_POINTS = 3

_PROMPTS = {
    "article": (
        "You summarise web articles for researchers. Write 2 to 4 plain sentences on what "
        "the article says. Use only the article. No preamble, no lists."
    ),
    "thread": (
        "You summarise Hacker News discussions for researchers. Each comment is given as "
        "[c<ID>] (by NAME) text. Write 3 to 6 plain sentences on the main points and "
        "disagreements. End every sentence with the ids of the comments it draws on, "
        "written exactly as [c<ID>], for example [c123] [c456]. Cite only ids given "
        "below. No preamble, no lists."
    ),
}
_CITATION = re.compile(r"\[c(\d+)((?:\s*,\s*c?\d+)*)\]")
_TRAILING = re.compile(r"([.!?])((?:\s*\[c\d+(?:\s*,\s*c?\d+)*\])+)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


@dataclass(frozen=True)
class Summary:
    """One summary and what reproduces it."""

    story_id: int
    kind: str
    """``article`` or ``thread``."""
    method: str
    """``llm`` or ``extractive``."""
    model: str
    """The model's name, or ``extractive``."""
    prompt_version: str
    input_hash: str
    """SHA-256 (hex) of the prompt version and the input text."""
    text: str
    cited: tuple[int, ...]
    """The comment ids the text cites, each once, in order."""
    dropped: int
    """Sentences the citation check dropped."""
    note: str | None
    """Why the extractive summary stands in for the model's, when it does."""
    created_at: datetime


@dataclass(frozen=True)
class Summaries:
    """A story's article and thread summaries; a ``None`` one has its reason in ``*_note``."""

    story_id: int
    title: str | None
    article: Summary | None
    article_note: str | None
    thread: Summary | None
    thread_note: str | None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for kind in ("article", "thread"):
            if out[kind] is not None:
                out[kind]["cited"] = list(out[kind]["cited"])
                out[kind]["created_at"] = out[kind]["created_at"].isoformat()
        return out


def check_citations(text: str, thread_ids: set[int]) -> tuple[str, tuple[int, ...], int]:
    """Keep the sentences of ``text`` that cite at least one comment, all of them in
    ``thread_ids``; return (kept text, cited ids, sentences dropped).

    A citation is ``[c<ID>]`` (``[c1, c2]`` is read too), before or after the
    sentence's full stop. Lists and line breaks count as sentence ends."""
    kept: list[str] = []
    cited: list[int] = []
    dropped = 0
    for line in text.splitlines():
        line = _TRAILING.sub(lambda m: f"{m.group(2)}{m.group(1)}", _BULLET.sub("", line))
        for sentence in _SENTENCE_END.split(line.strip()):
            if not sentence.strip():
                continue
            ids = [int(i) for m in _CITATION.finditer(sentence) for i in _ids(m)]
            if ids and all(i in thread_ids for i in ids):
                kept.append(sentence.strip())
                cited.extend(i for i in ids if i not in cited)
            else:
                dropped += 1
    return " ".join(kept), tuple(cited), dropped


def _ids(match: re.Match[str]) -> list[str]:
    rest = re.findall(r"\d+", match.group(2) or "")
    return [match.group(1), *rest]


def summarize(
    story_id: int,
    *,
    engine: sa.Engine | str | None = None,
    settings: Settings | None = None,
    refresh: bool = False,
) -> Summaries:
    """Summaries of ``story_id``'s article and thread (see the module's docstring), stored.

    ``settings`` defaults to the environment's (``HNLAB_LLM_*``). Raises SummaryError
    when the story is not stored."""
    from hnlab import analysis
    from hnlab.config import Settings

    settings = settings or Settings.from_env()
    with _connection(engine) as conn:
        story = (
            conn.execute(
                sa.text("SELECT id, type, title, url, text, deleted FROM items WHERE id = :id"),
                {"id": int(story_id)},
            )
            .mappings()
            .first()
        )
        if story is None:
            raise SummaryError(
                f"story {story_id} is not stored; run 'hnlab items sync' or "
                f"'hnlab items backfill' first"
            )
        article_input, article_note = _article_input(conn, dict(story))
    comments = analysis.thread(int(story_id), engine=engine)
    thread_input, thread_ids, thread_note = _thread_input(comments)
    article = thread = None
    if article_input is not None:
        article = _summary(engine, settings, int(story_id), "article", article_input, refresh)
    if thread_input is not None:
        thread = _summary(
            engine, settings, int(story_id), "thread", thread_input, refresh, comments, thread_ids
        )
    return Summaries(int(story_id), story["title"], article, article_note, thread, thread_note)


def _article_input(conn: sa.Connection, story: dict[str, Any]) -> tuple[str | None, str | None]:
    """The article's text, or None and why there is none."""
    if story["deleted"]:
        return None, "the story is deleted"
    if not story["url"]:
        text = plain_text(story["text"])
        return (text, None) if text else (None, "the story has no link and no text")
    content = (
        conn.execute(
            sa.text("SELECT outcome, detail, text FROM contents WHERE hn_id = :id"),
            {"id": story["id"]},
        )
        .mappings()
        .first()
    )
    if content is None:
        return None, "its link has not been fetched yet ('hnlab content fetch')"
    if content["outcome"] != "ok":
        detail = f" ({content['detail']})" if content["detail"] else ""
        return None, f"its link's content outcome is {content['outcome']}{detail}, not ok"
    if not content["text"]:
        return None, "its page gave no text"
    return str(content["text"])[:MAX_INPUT_CHARS], None


def _thread_input(comments: pd.DataFrame) -> tuple[str | None, set[int], str | None]:
    """The visible comments as ``[c<ID>] (by NAME) text`` lines in reading order."""
    visible = comments[~comments["deleted"] & ~comments["dead"] & comments["text"].notna()]
    lines: list[str] = []
    ids: set[int] = set()
    used = 0
    for cid, by, body in zip(
        visible["id"].tolist(), visible["by"].tolist(), visible["text"].tolist(), strict=True
    ):
        text = " ".join(str(body).split())[:1200]
        line = f"[c{cid}] (by {by}) {text}"
        if used + len(line) > MAX_INPUT_CHARS:
            break
        lines.append(line)
        ids.add(int(cid))
        used += len(line) + 1
    if not lines:
        return None, ids, "no visible comments yet"
    return "\n".join(lines), ids, None


def _summary(
    engine: sa.Engine | str | None,
    settings: Settings,
    story_id: int,
    kind: str,
    source: str,
    refresh: bool,
    comments: pd.DataFrame | None = None,
    thread_ids: set[int] | None = None,
) -> Summary:
    """The stored summary of this input, or a new one (the model's, else extractive)."""
    from hnlab.store import summaries as store

    version = PROMPT_VERSIONS[kind]
    digest = hashlib.sha256(f"{version}\n{source}".encode()).hexdigest()
    model = settings.llm_model if settings.llm_url and settings.llm_model else EXTRACTIVE
    key = {
        "story_id": story_id,
        "kind": kind,
        "model": model,
        "prompt_version": version,
        "input_hash": digest,
    }
    with _connection(engine) as conn:
        found = None if refresh else store.find(conn, key)
    if found is not None:
        return _from_row(found)
    text, dropped, note, method = "", 0, None, EXTRACTIVE
    cited: tuple[int, ...] = ()
    if model != EXTRACTIVE:
        try:
            answer = chat(settings, _PROMPTS[kind], source)
            if kind == "thread":
                text, cited, dropped = check_citations(answer, thread_ids or set())
                if not text:
                    raise SummaryError(
                        f"the model's thread summary cited no comment of the thread "
                        f"({dropped} sentences dropped)"
                    )
            else:
                text = " ".join(answer.split())
            method = "llm"
        except SummaryError as exc:
            note = f"{exc}; the extractive summary stands in"
            log.warning("story %s, %s summary: %s", story_id, kind, note)
    if method == EXTRACTIVE:
        if kind == "article":
            text, cited = lead(source), ()
        else:
            assert comments is not None
            text, cited = most_replied(comments)
        key["model"] = EXTRACTIVE
    row = {
        **key,
        "method": method,
        "text": text,
        "cited": list(cited),
        "dropped": dropped,
        "note": note,
        "created_at": datetime.now(UTC),
    }
    with _connection(engine) as conn:
        store.save(conn, row)
        conn.commit()
    return _from_row(row)


def _from_row(row: dict[str, Any]) -> Summary:
    values = {f.name: row[f.name] for f in fields(Summary)}
    return Summary(**{**values, "cited": tuple(int(i) for i in values["cited"])})


def _sentences(text: str) -> list[str]:
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n|\n(?=[-*#])", text):
        out.extend(s for s in _SENTENCE_END.split(" ".join(paragraph.split())) if s)
    return out


def lead(text: str, words: int = LEAD_WORDS) -> str:
    """The article's lead: its first sentences of four words or more, about ``words`` long."""
    kept: list[str] = []
    count = 0
    for sentence in _sentences(text):
        size = len(sentence.split())
        if size < 4:
            continue
        kept.append(sentence)
        count += size
        if count >= words or len(kept) >= 3:
            break
    return " ".join(kept)


def most_replied(comments: pd.DataFrame, n: int = THREAD_POINTS) -> tuple[str, tuple[int, ...]]:
    """The first sentence of each of the ``n`` top-level comments with the most replies
    below them (visible ones; ties: the earlier), each cited as ``[c<ID>]``."""
    parent = dict(zip(comments["id"].astype(int), comments["parent"].astype(int), strict=True))
    replies: dict[int, int] = {}
    for cid in parent:
        up = parent[cid]
        while up in parent:  # every ancestor comment gains a reply
            replies[up] = replies.get(up, 0) + 1
            up = parent[up]
    top = comments[
        (comments["depth"] == 1)
        & ~comments["deleted"]
        & ~comments["dead"]
        & comments["text"].notna()
    ]
    pairs = zip(top["id"].tolist(), top["text"].tolist(), strict=True)
    ranked = sorted(pairs, key=lambda pair: (-replies.get(pair[0], 0), pair[0]))
    parts: list[str] = []
    cited: list[int] = []
    for cid, body in ranked[:n]:
        first = (_sentences(str(body)) or [""])[0]
        cut = first.split()
        sentence = " ".join(cut[:35]) + (" …" if len(cut) > 35 else "")
        parts.append(f"{sentence} [c{cid}]")
        cited.append(int(cid))
    return " ".join(parts), tuple(cited)


def chat(settings: Settings, system: str, user: str) -> str:
    """One chat completion from ``HNLAB_LLM_URL``: the answer's text. The whole call,
    reading included, is bounded by ``HNLAB_LLM_TIMEOUT``; any failure raises
    SummaryError in one line (the key never appears in it)."""
    import httpx

    from hnlab.config import mask_url

    assert settings.llm_url is not None
    url = f"{settings.llm_url}/chat/completions"
    shown = mask_url(url)
    limit = settings.llm_timeout
    headers = {"Authorization": f"Bearer {settings.llm_api_key}"} if settings.llm_api_key else {}
    body = {
        "model": settings.llm_model,
        "temperature": 0,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
    }
    deadline = time.monotonic() + limit
    try:
        with (
            httpx.Client(timeout=limit) as client,
            client.stream("POST", url, json=body, headers=headers) as response,
        ):
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the answer took too long")
                if len(data) > MAX_ANSWER_BYTES:
                    raise SummaryError(f"the model at {shown} answered over 1 MB; check it")
    except httpx.TimeoutException:
        raise SummaryError(
            f"the model at {shown} did not answer within HNLAB_LLM_TIMEOUT={limit:g} s"
        ) from None
    except httpx.HTTPError as exc:
        raise SummaryError(
            f"the model at {shown} could not be reached ({type(exc).__name__}); check HNLAB_LLM_URL"
        ) from None
    if response.status_code != 200:
        raise SummaryError(
            f"the model at {shown} answered HTTP {response.status_code}; "
            "check HNLAB_LLM_URL, HNLAB_LLM_MODEL and HNLAB_LLM_API_KEY"
        )
    try:
        answer = json.loads(bytes(data))["choices"][0]["message"]["content"]
    except (ValueError, LookupError, TypeError):
        answer = None
    if not isinstance(answer, str) or not answer.strip():
        raise SummaryError(f"the model at {shown} gave no chat completion text")
    return answer
