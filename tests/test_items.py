import json
from datetime import UTC, datetime

import pytest

from hnlab.hn.items import Post, Skip, classify, extract_domain, parse_item, post_uuid

from .conftest import SAMPLES

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def sample(name: str) -> object:
    return json.loads((SAMPLES / name).read_text())


def test_a_story_with_url_and_kids() -> None:
    post = parse_item(sample("story_41247023_show_hn.json"), collected_at=NOW)
    assert isinstance(post, Post)
    assert post.type == "show" and post.comment_count == 118
    assert post.created_at.tzinfo is UTC


def test_a_job_inside_topstories_has_no_descendants() -> None:
    post = parse_item(sample("job_41245073_in_topstories.json"), collected_at=NOW)
    assert isinstance(post, Post)
    assert (post.type, post.score, post.comment_count, post.domain) == (
        "job",
        1,
        0,
        "jobs.lever.co",
    )
    assert post.created_at == datetime.fromtimestamp(1723636835, tz=UTC)


def test_a_self_post_has_no_url_and_no_domain() -> None:
    post = parse_item(sample("story_41247211_launch_hn_text_no_url.json"), collected_at=NOW)
    assert isinstance(post, Post)
    assert (post.url, post.domain, post.comment_count, post.type) == (None, None, 0, "story")


def test_descendants_smaller_than_kids_keeps_the_api_count() -> None:
    post = parse_item(sample("story_40464529_descendants_lt_kids.json"), collected_at=NOW)
    assert isinstance(post, Post)
    assert post.comment_count == 2
    assert post.domain == "willowprotocol.org"


def test_no_kids_key_and_zero_descendants() -> None:
    post = parse_item(sample("story_41247275_no_kids_descendants0.json"), collected_at=NOW)
    assert isinstance(post, Post) and post.comment_count == 0


def test_a_poll_is_a_post_and_its_options_are_not() -> None:
    poll = parse_item(sample("poll_30239441.json"), collected_at=NOW)
    assert isinstance(poll, Post) and poll.type == "poll" and poll.url is None
    assert parse_item(sample("pollopt_30239444.json"), collected_at=NOW) is Skip.NOT_A_STORY


@pytest.mark.parametrize(
    "name", ["comment_40483424.json", "comment_40476894_dead.json", "comment_8952_pretty.json"]
)
def test_comments_are_never_posts(name: str) -> None:
    assert parse_item(sample(name), collected_at=NOW) is Skip.NOT_A_STORY


def test_null_deleted_and_bare_items() -> None:
    assert parse_item(None, collected_at=NOW) is Skip.NULL
    deleted = {"deleted": True, "id": 5, "time": 1716645062, "type": "story"}
    assert parse_item(deleted, collected_at=NOW) is Skip.UNAVAILABLE
    assert parse_item({"id": 6, "time": 1, "type": "story"}, collected_at=NOW) is Skip.UNAVAILABLE
    assert parse_item([1, 2], collected_at=NOW) is Skip.MALFORMED
    assert parse_item({"id": "7", "title": "x", "time": 1}, collected_at=NOW) is Skip.MALFORMED


def test_a_dead_story_without_by_or_score_or_descendants() -> None:
    raw = {
        "id": 9,
        "time": 1700000000,
        "type": "story",
        "title": "Gone",
        "dead": True,
        "brand_new_field": {"x": 1},
    }
    post = parse_item(raw, collected_at=NOW)
    assert isinstance(post, Post)
    assert (post.author, post.score, post.comment_count, post.is_dead) == (None, 0, 0, True)


def test_html_entities_in_titles_are_unescaped() -> None:
    raw = {"id": 1, "time": 1, "type": "story", "title": "Ask HN: C&amp;C &#x27;24 &quot;x&quot;"}
    post = parse_item(raw, collected_at=NOW)
    assert isinstance(post, Post)
    assert post.title == 'Ask HN: C&C \'24 "x"' and post.type == "ask"


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://www.Example.COM:8080/a?b", "example.com"),
        ("http://sub.www.example.org/", "sub.www.example.org"),
        ("https://WWW.bbc.co.uk", "bbc.co.uk"),
        ("", None),
        (None, None),
        ("not a url", None),
        ("http://[::1", None),
    ],
)
def test_domains(url: str | None, domain: str | None) -> None:
    assert extract_domain(url) == domain


def test_types_and_ids() -> None:
    assert classify("story", "Show HN: x") == "show"
    assert classify("story", "ask hn: y") == "ask"
    assert classify("job", "Ask HN: hiring") == "job"
    assert classify("story", "Tell HN: z") == "story"
    assert post_uuid(1) == post_uuid(1) != post_uuid(2)


def test_plain_text_renders_hn_html_as_inert_text() -> None:
    from hnlab.hn.text import plain_text

    link = '<a href="https://example.org/a/very/long/path" rel="nofollow">https://example.org/a/very/lo...</a>'
    assert (
        plain_text(f"Hi &amp; bye<p>see {link}")
        == "Hi & bye\n\nsee https://example.org/a/very/long/path"
    )
    assert plain_text('<a href="https:&#x2F;&#x2F;x.org">this</a> one') == "this one"
    assert plain_text("<script>alert(1)</script><img src=x onerror=alert(1)>ok") == "alert(1)ok"
    assert plain_text("&lt;script&gt;alert(1)&lt;/script&gt;") == "<script>alert(1)</script>"
    assert plain_text("line<br>next") == "line\nnext"
    assert plain_text("  plain  ") == "plain" and plain_text(None) is None
