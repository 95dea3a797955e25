"""``hnlab.content.extract`` on small pages of its own: Markdown with structure kept,
the text without boilerplate, PDFs, charsets declared, mislabelled and undeclared, and
the verdicts on walls."""

from __future__ import annotations

import codecs
from datetime import date
from pathlib import Path

from hnlab.content.evaluate import shingle_prf
from hnlab.content.extract import decode, extract
from hnlab.sim.web import Page, make_pdf

BODY = " ".join(
    f"Paragraph {n} explains how the scheduler keeps latency low while the cache warms "
    f"and the database answers queries from many users at once, sentence {n}."
    for n in range(3)
)

PAGE = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>How the scheduler works | Example</title>
<meta name="author" content="Grace Hopper">
<meta property="article:published_time" content="2025-06-02T10:00:00Z"></head>
<body><div class="cookie-banner">We use cookies. Accept all cookies</div>
<nav><ul><li><a href="/">Home</a></li><li><a href="/jobs">Jobs</a></li></ul></nav>
<article><h1>How the scheduler works</h1>
<p>{BODY}</p>
<h2>Design choices</h2>
<p>The design has three parts, and <a href="https://example.org/paper">the paper</a>
explains each one of them at length with benchmarks and measurements.</p>
<ul><li>a run queue per core with its own lock</li><li>work stealing between idle cores</li></ul>
<pre><code>def pick(queue):
    return queue.pop()</code></pre>
<table><tr><th>cores</th><th>latency</th></tr><tr><td>2</td><td>40 ms</td></tr></table>
<p>{BODY}</p>
</article>
<aside><h3>Related</h3><ul><li><a href="/a">Ten tips for your garden</a></li></ul></aside>
<section class="comments"><p>great post lol, first comment here</p></section>
<footer>Copyright 2026 Example. All rights reserved.</footer></body></html>"""


def test_html_gives_markdown_with_structure_and_text_without_boilerplate() -> None:
    found = extract(PAGE.encode(), url="https://example.org/scheduler")
    assert found.kind == "html" and found.not_article is None
    assert found.title == "How the scheduler works"
    assert found.author == "Grace Hopper"
    assert found.published == date(2025, 6, 2)
    assert found.language == "en"
    md = found.markdown
    assert "## Design choices" in md
    assert "[the paper](https://example.org/paper)" in md
    assert "- a run queue per core" in md
    assert "```" in md and "return queue.pop()" in md
    assert "| cores | latency |" in md
    text = found.text
    assert "the paper explains each one" in text  # a link is its words in the text
    assert "](" not in text
    for boilerplate in ("Accept all cookies", "Ten tips", "All rights reserved", "first comment"):
        assert boilerplate not in text and boilerplate not in md
    precision, recall, _ = shingle_prf(text, BODY)
    assert recall == 1.0 and precision > 0.3
    assert found.word_count > 100


GERMAN = (
    "Die Größe der Lösung ist für die Bürger natürlich schön, und der Ärger über die "
    "Straße wurde früh über das Netzwerk gemeldet, sagte der Entwickler."
)
FRENCH = (
    "Le réseau a été déjà très sûr, où les données du système sont à côté de la mémoire "
    "et le développeur français vérifie la sécurité chaque événement."
)


def _page(paragraph: str, head: str = "") -> str:
    return (
        f"<html><head>{head}<title>Un titre</title></head><body><article>"
        + "".join(f"<p>{paragraph} {n}</p>" for n in range(6))
        + "</article></body></html>"
    )


def test_charsets_declared_mislabelled_and_undeclared() -> None:
    # iso-8859-1 declared in <meta>, windows-1252 bytes (read as browsers do)
    meta = _page(GERMAN + " „Zitat“", '<meta charset="iso-8859-1">').encode("cp1252")
    found = extract(meta)
    assert "Größe der Lösung" in found.text
    assert "„Zitat“" in decode(meta)  # 0x84 and 0x93 are windows-1252's quotes
    assert found.language == "de"
    # declared nowhere: not UTF-8, so guessed
    bare = _page(FRENCH).encode("cp1252")
    assert "développeur français" in extract(bare).text
    assert extract(bare).language == "fr"
    # the header's charset wins over the guess; a wrong utf-8 label falls back
    assert decode(GERMAN.encode("latin-1"), "text/html; charset=ISO-8859-1") == GERMAN
    assert "Größe" in decode(GERMAN.encode("cp1252"), "text/html; charset=utf-8")
    assert "Größe" in decode(codecs.BOM_UTF8 + GERMAN.encode(), "text/html; charset=latin-1")
    utf16 = _page(GERMAN).encode("utf-16")
    assert "Größe der Lösung" in extract(utf16).text


def test_pdf_and_plain_text() -> None:
    paper = Page(
        "ok",
        "Attention is all you need",
        [
            "We propose a new simple network architecture based solely on attention.",
            "Experiments on two machine translation tasks show these models are superior.",
        ],
    )
    found = extract(make_pdf(paper), content_type="application/pdf")
    assert found.kind == "pdf"
    assert found.title == "Attention is all you need"
    assert found.author == "Ada Writer"
    assert "network architecture based solely on attention" in " ".join(found.text.split())
    # sniffed without a content type, too
    assert extract(make_pdf(paper)).kind == "pdf"
    assert extract(b"%PDF-1.4 broken").text == ""

    plain = "Line one.\r\nLine two, kept as it is.\n"
    found = extract(plain.encode(), content_type="text/plain; charset=utf-8")
    assert found.kind == "text" and found.text == "Line one.\nLine two, kept as it is."


def test_walls_and_empty_pages_are_not_articles() -> None:
    paywall = (
        '<html><head><script type="application/ld+json">{"isAccessibleForFree": false}'
        "</script><title>Big story</title></head><body><h1>Big story</h1>"
        "<p>The first lines of a story that continues behind the wall.</p>"
        "<p>Subscribe to continue reading.</p></body></html>"
    )
    login = "<html><body><p>Please sign in to continue reading this post.</p></body></html>"
    bot = "<html><head><title>Just a moment...</title></head><body>Checking your browser</body>"
    assert extract(paywall).not_article == "paywall"
    assert extract(login).not_article == "login"
    assert extract(bot).not_article == "bot_block"
    assert extract("<html><body><div></div></body></html>").not_article == "empty"
    # an article that mentions subscribing, and carries a captcha script, is an article
    long = _page(
        BODY + " Subscribe to continue reading our newsletter if you like it.",
        '<script src="https://www.google.com/recaptcha/api.js"></script>',
    )
    assert extract(long).not_article is None


def test_hand_labelled_pages_score_high() -> None:
    """tests/data/extraction: pages written in the shapes real sites take, each with its
    article body; the word-shingle F1 of the extracted text against it."""
    folder = Path(__file__).parent / "data" / "extraction"
    scores = {}
    for page in sorted(folder.glob("*.html")):
        found = extract(page.read_bytes())
        scores[page.stem] = shingle_prf(found.text, page.with_suffix(".txt").read_text())[2]
    assert len(scores) >= 6
    assert min(scores.values()) >= 0.95, scores
    assert sum(scores.values()) / len(scores) >= 0.98, scores
