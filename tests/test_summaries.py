"""Summaries that cite their sources: the citation check, the extractive default, a
stand-in of the chat-completions API (one that answers well, one that invents a
citation, one that never answers), what is stored, and erasure of what a deleted
comment's summary quoted."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa

from hnlab import analysis
from hnlab.config import Settings
from hnlab.run.factory import open_parts
from hnlab.sim.server import SimulatedHN
from tests.helpers import hnlab_cli, rows, settings_env
from tests.test_discussions import plant

KEY = "sk-test-0123456789abcdef"

ASK = [
    {
        "type": "story",
        "title": "Ask HN: How do you test summaries?",
        "by": "pg",
        "score": 40,
        "descendants": 6,
        "text": "I keep a labelled set.<p>It has three hundred threads. How do you do it?",
    },
    {"type": "comment", "by": "a", "parent": 0, "text": "We use golden files. They rot."},
    {"type": "comment", "by": "b", "parent": 1, "text": "Golden files work if you regenerate."},
    {"type": "comment", "by": "c", "parent": 2, "text": "Only with review."},
    {"type": "comment", "by": "d", "parent": 0, "text": "Property tests on citations. Cheap."},
    {"type": "comment", "by": "e", "parent": 4, "text": "Agreed."},
    {"type": "comment", "by": "f", "parent": 0, "text": "Nobody tests them at all."},
    {"type": "comment", "by": "x", "parent": 0, "text": "spam", "dead": True},
]


class ChatStandIn:
    """A local OpenAI-compatible ``/v1/chat/completions`` whose answer a test sets:
    ``article`` (to a prompt with no comment ids), ``answer`` (a function of the
    thread's comment ids), or ``hang`` (never answers until the test ends). It records
    every request body and Authorization header."""

    def __init__(self) -> None:
        self.article = "The post asks how to test summaries."
        self.answer: Any = lambda ids: "Fine."
        self.hang = False
        self.requests: list[dict[str, Any]] = []
        self.released = threading.Event()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), **body}
                )
                if stand_in.hang:
                    stand_in.released.wait(60)
                    return
                user = body["messages"][-1]["content"]
                ids = [int(i) for i in re.findall(r"^\[c(\d+)\]", user, re.MULTILINE)]
                content = stand_in.answer(ids) if ids else stand_in.article
                data = json.dumps({"choices": [{"message": {"content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def chat() -> Iterator[ChatStandIn]:
    stand_in = ChatStandIn()
    yield stand_in
    stand_in.close()


def with_llm(settings: Settings, chat: ChatStandIn, **values: Any) -> Settings:
    return settings.with_values(
        llm_url=chat.url, llm_model="stand-in-7b", llm_api_key=KEY, **values
    )


def test_check_citations_keeps_only_sentences_citing_ids_of_the_thread() -> None:
    text = (
        "Most prefer golden files [c1]. Some disagree. [c2]\n"
        "- An invented point [c99].\n"
        "* Both sides, at once [c1, c2]! Nothing cited here.\n"
        "A half-invented one [c1][c98]."
    )
    kept, cited, dropped = analysis.check_citations(text, {1, 2, 3})
    assert (
        kept == "Most prefer golden files [c1]. Some disagree [c2]. Both sides, at once [c1, c2]!"
    )
    assert cited == (1, 2)
    assert dropped == 3


def test_offline_summaries_are_extractive_cited_and_stored(
    settings: Settings, sim: SimulatedHN, engine: sa.Engine
) -> None:
    story, a, b, c, d, e, f, _dead = plant(sim, settings, ASK)
    found = analysis.summarize(story, engine=engine, settings=settings)
    assert found.article is not None and found.thread is not None
    assert found.article.method == "extractive" and found.article.model == "extractive"
    # the lead: sentences of four words or more ("I keep a labelled set." is five)
    assert found.article.text == (
        "I keep a labelled set. It has three hundred threads. How do you do it?"
    )
    # the most-replied top-level comments first (a: two below it; d: one; f: none), cited
    assert found.thread.text == (
        f"We use golden files. [c{a}] Property tests on citations. [c{d}] "
        f"Nobody tests them at all. [c{f}]"
    )
    assert found.thread.cited == (a, d, f) and found.thread.dropped == 0
    source = "\n".join(
        f"[c{i}] (by {by}) {text}"
        for i, by, text in [
            (a, "a", "We use golden files. They rot."),
            (b, "b", "Golden files work if you regenerate."),
            (c, "c", "Only with review."),
            (d, "d", "Property tests on citations. Cheap."),
            (e, "e", "Agreed."),
            (f, "f", "Nobody tests them at all."),
        ]
    )
    digest = hashlib.sha256(f"thread-v1\n{source}".encode()).hexdigest()
    assert found.thread.input_hash == digest
    stored = rows(
        engine,
        "SELECT kind, method, model, prompt_version, input_hash, cited FROM summaries "
        "ORDER BY kind",
    )
    assert stored == [
        ("article", "extractive", "extractive", "article-v1", found.article.input_hash, []),
        ("thread", "extractive", "extractive", "thread-v1", digest, [a, d, f]),
    ]


def test_a_models_invented_citation_is_dropped_and_the_summary_stored_with_its_provenance(
    settings: Settings, sim: SimulatedHN, engine: sa.Engine, chat: ChatStandIn
) -> None:
    story, a, b, _c, d, _e, _f, x = plant(sim, settings, ASK)
    chat.answer = lambda ids: (
        f"Golden files are popular but rot [c{ids[0]}] [c{ids[1]}]. People agree on it. "
        f"Citations can be property-tested [c{d}]. The spammer was right [c{x}]. "
        f"Everyone uses snapshot tests [c{ids[-1] + 1000}]."
    )
    found = analysis.summarize(story, engine=engine, settings=with_llm(settings, chat))
    thread = found.thread
    assert thread is not None and thread.method == "llm" and thread.model == "stand-in-7b"
    # the uncited sentence, the dead comment's id (not in what was sent) and an
    # invented id are dropped
    assert thread.text == (
        f"Golden files are popular but rot [c{a}] [c{b}]. Citations can be property-tested [c{d}]."
    )
    assert thread.cited == (a, b, d) and thread.dropped == 3 and thread.note is None
    sent = next(r for r in chat.requests if "[c" in r["messages"][-1]["content"])
    assert sent["path"] == "/v1/chat/completions" and sent["model"] == "stand-in-7b"
    assert sent["auth"] == f"Bearer {KEY}"
    assert f"[c{x}]" not in sent["messages"][-1]["content"]  # dead comments are not sent
    assert rows(
        engine,
        "SELECT method, model, prompt_version, dropped, cited FROM summaries WHERE kind = 'thread'",
    ) == [("llm", "stand-in-7b", "thread-v1", 3, [a, b, d])]

    # the same input again: the stored summary, the model not asked
    asked = len(chat.requests)
    again = analysis.summarize(story, engine=engine, settings=with_llm(settings, chat))
    assert again.thread == thread and len(chat.requests) == asked


def test_a_model_that_times_out_gives_one_line_and_the_extractive_summary(
    settings: Settings, sim: SimulatedHN, engine: sa.Engine, chat: ChatStandIn
) -> None:
    story, a, *_ = plant(sim, settings, ASK)
    chat.hang = True
    llm = with_llm(settings, chat, llm_timeout=0.5)
    out = hnlab_cli("summarize", str(story), "--json", env=settings_env(llm))
    assert out.returncode == 0, out.stderr
    warnings = out.stderr.strip().splitlines()
    expected = (
        f"Warning: the model at {chat.url}/chat/completions did not answer within "
        "HNLAB_LLM_TIMEOUT=0.5 s; the extractive summary stands in"
    )
    assert warnings == [expected, expected]  # the article's call, then the thread's
    assert KEY not in out.stdout + out.stderr
    found = json.loads(out.stdout)
    assert found["thread"]["method"] == "extractive"
    assert found["thread"]["text"].startswith(f"We use golden files. [c{a}]")
    assert found["thread"]["note"] == expected.removeprefix("Warning: ")


def test_a_story_whose_content_is_not_ok_gets_no_article_summary(
    settings: Settings, sim: SimulatedHN, engine: sa.Engine, chat: ChatStandIn
) -> None:
    link = {"type": "story", "title": "A paywalled scoop", "url": "https://news.example/scoop"}
    story, comment = plant(
        sim, settings, [link, {"type": "comment", "by": "a", "parent": 0, "text": "Paywalled."}]
    )
    at = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO contents (hn_id, url, outcome, detail, fetched_at, text) "
                "VALUES (:id, :url, 'not_article', 'paywall', :at, 'Subscribe to read.')"
            ),
            {"id": story, "url": link["url"], "at": at},
        )
    chat.answer = lambda ids: f"The commenter notes the paywall [c{ids[0]}]."
    found = analysis.summarize(story, engine=engine, settings=with_llm(settings, chat))
    assert found.article is None
    assert found.article_note == "its link's content outcome is not_article (paywall), not ok"
    assert all("Subscribe" not in r["messages"][-1]["content"] for r in chat.requests)
    assert (
        found.thread is not None
        and found.thread.text == f"The commenter notes the paywall [c{comment}]."
    )

    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE contents SET outcome = 'ok', detail = NULL, "
                "text = 'The scoop, in full. It has two sentences of four words.' WHERE hn_id = :id"
            ),
            {"id": story},
        )
    chat.article = "The article reports a scoop."
    found = analysis.summarize(story, engine=engine, settings=with_llm(settings, chat))
    assert found.article is not None and found.article.text == "The article reports a scoop."
    assert found.article.method == "llm"
    assert chat.requests[-1]["messages"][-1]["content"] == (
        "The scoop, in full. It has two sentences of four words."
    )


def test_erasing_a_deleted_comment_erases_the_summaries_that_cite_it(
    make_settings: Any, sim: SimulatedHN, engine: sa.Engine
) -> None:
    settings = make_settings(hn_api_url=sim.base_url, items_settle_hours=0.5)
    story, *_, d, _e, _f, _x = plant(sim, settings, ASK)
    analysis.summarize(story, engine=engine, settings=settings)
    assert rows(engine, "SELECT kind FROM summaries ORDER BY kind") == [("article",), ("thread",)]
    sim.serve_items({d: {"id": d, "type": "comment", "deleted": True, "parent": story, "time": 1}})
    sim.advance(minutes=40)  # past the planted items' edit window: they settle

    async def sync() -> None:
        async with open_parts(settings) as parts:
            await parts.items(clock=sim.clock).sync()

    asyncio.run(sync())
    assert rows(engine, f"SELECT deleted, text FROM items WHERE id = {d}") == [(True, None)]
    # the thread summary quoted d; the article's did not
    assert rows(engine, "SELECT kind FROM summaries") == [("article",)]
    again = analysis.summarize(story, engine=engine, settings=settings)
    assert again.thread is not None and d not in again.thread.cited


def test_the_api_key_is_shown_masked(settings: Settings, chat: ChatStandIn) -> None:
    shown = with_llm(settings, chat).as_dict()
    assert shown["llm_api_key"] == "****cdef" and KEY not in repr(with_llm(settings, chat))
    out = hnlab_cli("summarize", "1", env={**settings_env(settings), "HNLAB_LLM_TIMEOUT": "soon"})
    assert out.returncode != 0
    assert out.stderr.strip().splitlines()[-1] == (
        "Error: HNLAB_LLM_TIMEOUT must be a number of seconds > 0, got 'soon'"
    )


def test_a_story_that_is_not_stored_is_one_line(settings: Settings, engine: sa.Engine) -> None:
    out = hnlab_cli("summarize", "424242", env=settings_env(settings))
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        "Error: story 424242 is not stored; run 'hnlab items sync' or 'hnlab items backfill' first"
    ]
