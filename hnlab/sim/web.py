"""The simulator's web: an article page for every simulated story, on loopback.

Each domain the simulator links to (``github.com``, ``www.nytimes.com``, …) is one
site on its own port of 127.0.0.1, so the fetcher's per-host rules apply per site.
``rewrite(url)`` maps a story's URL to its site (the content job's ``rewrite``).
Pages are a function of the seed and the URL, with realistic boilerplate around the
article (navigation, a cookie banner, ads, related links, a comment section, a
footer), and each site misbehaves in its own way:

================  ============================================================
github.com        articles with lists and code blocks
www.nytimes.com   paywall stubs for 40 % of stories (``isAccessibleForFree``)
arxiv.org         PDFs
Blog.Example.COM  German, windows-1252 declared as iso-8859-1 in ``<meta>``
example.org:8080  French, windows-1252 declared nowhere
lwn.net           gzip-encoded answers
www.bbc.co.uk     a redirect to the article's canonical path
news.ycombinator  robots.txt disallows everything
medium.com        403 for half, a bot-block challenge for the other half
en.wikipedia.org  long articles with tables; 10 % 404
www.theverge.com  a slow host (0.15 s an answer); 15 % never answer in time
substack.com      429 with ``Retry-After: 120`` for 30 %; 10 % a login wall
================  ============================================================

and on any site 2 % of stories each hit a planted fault: a page over 6 MB, a gzip bomb,
a redirect loop, ``application/zip``, or a redirect to 169.254.169.254.

``truth()`` (``GET /_sim/web/truth`` on any site) gives each story's expected
outcome and, for articles, the article's text: ``hnlab demo --web`` scores the
extraction against it (word-shingle F1, ``hnlab.content.evaluate``).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import html
import random
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from hnlab.sim.serving import Background

SITES = (
    "github.com",
    "www.nytimes.com",
    "arxiv.org",
    "blog.example.com",
    "lwn.net",
    "www.bbc.co.uk",
    "example.org",
    "news.ycombinator.com",
    "medium.com",
    "en.wikipedia.org",
    "www.theverge.com",
    "substack.com",
)
SLOW_S = 0.15
HANG_S = 30.0
BIG_BYTES = 6_500_000

_EN = [
    "the",
    "system",
    "memory",
    "compiler",
    "latency",
    "database",
    "network",
    "kernel",
    "model",
    "data",
    "users",
    "engineers",
    "cache",
    "query",
    "server",
    "scheduler",
    "protocol",
    "design",
    "team",
    "release",
    "version",
    "performance",
    "storage",
    "index",
    "thread",
    "process",
    "browser",
    "language",
    "runtime",
    "library",
    "code",
    "paper",
    "results",
    "benchmark",
    "hardware",
    "chip",
    "battery",
    "energy",
    "market",
    "company",
    "startup",
    "research",
    "open",
    "source",
    "security",
    "patch",
    "bug",
    "feature",
    "interface",
    "api",
    "developer",
    "tool",
]
_EN_GLUE = [
    "is",
    "was",
    "can",
    "will",
    "should",
    "might",
    "often",
    "rarely",
    "now",
    "then",
    "because",
    "although",
    "while",
    "when",
    "that",
    "which",
    "with",
    "without",
    "for",
    "from",
    "into",
    "over",
    "under",
    "between",
    "after",
    "before",
]
_DE = [
    "der",
    "die",
    "das",
    "und",
    "ist",
    "nicht",
    "mit",
    "auf",
    "für",
    "eine",
    "einen",
    "dem",
    "den",
    "von",
    "sich",
    "auch",
    "noch",
    "über",
    "können",
    "wurde",
    "werden",
    "Speicher",
    "Rechner",
    "Netzwerk",
    "Entwickler",
    "Größe",
    "Lösung",
    "Übersetzung",
    "Straße",
    "Maßnahme",
    "Bürger",
    "Ärger",
    "schön",
    "früh",
    "natürlich",
]
_FR = [
    "le",
    "la",
    "les",
    "et",
    "est",
    "pas",
    "avec",
    "sur",
    "pour",
    "une",
    "des",
    "du",
    "que",
    "qui",
    "dans",
    "plus",
    "très",
    "été",
    "réseau",
    "mémoire",
    "développeur",
    "sécurité",
    "données",
    "système",
    "événement",
    "première",
    "déjà",
    "où",
    "français",
    "côté",
    "élève",
]


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def _sentence(rng: random.Random, words: tuple[str, ...] | list[str], glue: list[str]) -> str:
    n = rng.randint(9, 22)
    out = [rng.choice(words if i % 3 else glue or words) for i in range(n)]
    return f"{out[0].capitalize()} {' '.join(out[1:])}."


@dataclass
class Page:
    """What a story's URL leads to, and what a good fetch and extraction make of it."""

    outcome: str  # the outcome a correct fetcher records
    title: str = ""
    paragraphs: list[str] = field(default_factory=list)
    language: str = "en"
    detail: str | None = None

    @property
    def text(self) -> str:
        """The article's body, as a reader would copy it (the headline is ``title``)."""
        return "\n\n".join(self.paragraphs)


@dataclass
class Hit:
    """One request a site received: when it arrived and when its answer was done."""

    site: str
    path: str
    arrived: float
    done: float = 0.0


class SimulatedWeb:
    """``with SimulatedWeb(seed=1) as web: job = ContentJob(..., rewrite=web.rewrite)``."""

    def __init__(self, seed: int = 1) -> None:
        self.seed = seed
        self.ports: dict[str, int] = {}
        self.hits: list[Hit] = []
        self._pages: dict[str, Page] = {}
        self._background = Background("simulated-web")
        self._lock = threading.Lock()

    # -- the world --------------------------------------------------------------------------
    def site_of(self, url: str) -> str:
        host = (urlsplit(url).hostname or "").lower()
        return (
            host if host in SITES else SITES[int(hashlib.md5(host.encode()).hexdigest(), 16) % 12]
        )

    def rewrite(self, url: str) -> str:
        """The story URL's page on its loopback site."""
        parts = urlsplit(url)
        site = self.site_of(url)
        path = parts.path or "/"
        return f"http://127.0.0.1:{self.ports[site]}{path}" + (
            f"?{parts.query}" if parts.query else ""
        )

    def page(self, site: str, path: str) -> Page:
        """The page at ``path`` on ``site`` (a function of the seed, site and path)."""
        key = f"{site}{path}"
        if key in self._pages:
            return self._pages[key]
        rng = _rng(self.seed, site, path)
        fault = rng.random()
        page: Page
        if site == "news.ycombinator.com" or path.startswith("/private/"):
            page = Page("robots_disallowed")  # robots.txt is read before anything else
        elif fault < 0.02:
            page = Page("too_large")
        elif fault < 0.04:
            page = Page("too_large", detail="bomb")
        elif fault < 0.06:
            page = Page("error", detail="loop")
        elif fault < 0.08:
            page = Page("unsupported_type", detail="application/zip")
        elif fault < 0.10:
            page = Page("blocked_address", detail="metadata")
        else:
            page = self._article(site, path, rng)
        self._pages[key] = page
        return page

    def _article(self, site: str, path: str, rng: random.Random) -> Page:
        roll = rng.random()
        if site == "www.nytimes.com" and roll < 0.4:
            return Page("not_article", title=self._title(rng, _EN), detail="paywall")
        if site == "medium.com":
            if roll < 0.5:
                return Page("http_error", detail="403")
            return Page("not_article", detail="bot_block")
        if site == "en.wikipedia.org" and roll < 0.1:
            return Page("http_error", detail="404")
        if site == "www.theverge.com" and roll < 0.15:
            return Page("timeout")
        if site == "substack.com":
            if roll < 0.3:
                return Page("http_error", detail="429")
            if roll < 0.4:
                return Page("not_article", detail="login")
        words, glue, language = list(_EN), _EN_GLUE, "en"
        if site == "blog.example.com":
            words, glue, language = _DE, [], "de"
        elif site == "example.org":
            words, glue, language = _FR, [], "fr"
        count = rng.randint(4, 9) * (3 if site == "en.wikipedia.org" else 1)
        paragraphs = [
            " ".join(_sentence(rng, words, glue) for _ in range(rng.randint(2, 5)))
            for _ in range(count)
        ]
        return Page("ok", self._title(rng, words), paragraphs, language)

    @staticmethod
    def _title(rng: random.Random, words: list[str] | tuple[str, ...]) -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(4, 8))).capitalize()

    def truth(self) -> dict[str, Any]:
        """Every page asked for so far: its site, path, outcome, language and text."""
        with self._lock:
            pages = dict(self._pages)
        return {
            "pages": [
                {
                    "url": key,
                    "outcome": page.outcome,
                    "detail": page.detail,
                    "language": page.language if page.outcome == "ok" else None,
                    "text": page.text if page.outcome == "ok" else None,
                }
                for key, page in sorted(pages.items())
            ]
        }

    def truth_for(self, url: str) -> Page:
        """The page a story URL (or its loopback rewrite) leads to."""
        parts = urlsplit(url)
        if parts.hostname == "127.0.0.1":
            site = next(s for s, p in self.ports.items() if p == parts.port)
        else:
            site = self.site_of(url)
        return self.page(site, parts.path or "/")

    # -- rendering -------------------------------------------------------------------------
    def _html(self, site: str, page: Page, rng: random.Random) -> str:
        e = html.escape
        nav = "".join(f'<li><a href="/{w}/">{e(w.title())}</a></li>' for w in _EN[:9])
        related = "".join(
            f'<li><a href="/related/{i}">{e(self._title(rng, _EN))}</a></li>' for i in range(6)
        )
        comments = "".join(
            f'<div class="comment"><span class="user">reader{i}</span><p>'
            f"{e(_sentence(rng, _EN, _EN_GLUE))}</p></div>"
            for i in range(rng.randint(2, 6))
        )
        body = "".join(f"<p>{e(p)}</p>" for p in page.paragraphs)
        if site == "github.com" and page.paragraphs:
            body += "<pre><code>make install\nmake test</code></pre>"
        if site == "en.wikipedia.org" and page.paragraphs:
            body += (
                "<table><tr><th>Year</th><th>Value</th></tr>"
                "<tr><td>2024</td><td>42</td></tr></table>"
            )
        charset = '<meta charset="iso-8859-1">' if site == "blog.example.com" else ""
        if site not in ("blog.example.com", "example.org"):
            charset = '<meta charset="utf-8">'
        return f"""<!DOCTYPE html>
<html lang="{page.language}"><head>{charset}<title>{e(page.title)} | {e(site)}</title>
<meta name="author" content="Ada Writer">
<meta property="article:published_time" content="2026-03-01T09:00:00Z">
</head><body>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience.
<button>Accept all cookies</button> <a href="/privacy">Privacy settings</a></div>
<header><nav class="menu"><ul>{nav}</ul></nav><form class="search"><input name="q"></form></header>
<div class="ad-banner advertisement">Advertisement: Buy the new widget today, 20% off!</div>
<main><article><h1>{e(page.title)}</h1><p class="byline">By Ada Writer, 1 March 2026</p>
{body}
</article>
<aside class="related"><h3>Related stories</h3><ul>{related}</ul></aside>
<section id="comments" class="comments"><h3>Comments</h3>{comments}</section>
</main>
<footer><p>Copyright 2026 {e(site)}. All rights reserved.</p><ul><li><a href="/about">About</a></li>
<li><a href="/contact">Contact</a></li><li><a href="/jobs">Jobs</a></li></ul></footer>
</body></html>"""

    def _stub(self, page: Page) -> str:
        words = {
            "paywall": (
                '<script type="application/ld+json">{"@type":"NewsArticle",'
                '"isAccessibleForFree":false}</script>',
                "<p>Subscribe to continue reading. Already a subscriber? Log in.</p>",
            ),
            "login": ("", "<p>Sign in to continue reading this post.</p>"),
            "bot_block": ("", "<h1>Just a moment...</h1><p>Checking your browser.</p>"),
        }[page.detail or "paywall"]
        teaser = html.escape(page.title)
        return (
            f"<!DOCTYPE html><html><head><title>{teaser or 'Just a moment...'}</title>"
            f"{words[0]}</head><body><h1>{teaser}</h1>{words[1]}</body></html>"
        )

    def answer(self, site: str, path: str) -> tuple[int, dict[str, str], bytes, float]:
        """Status, headers, body and delay for a request on ``site``."""
        if path == "/robots.txt":
            rules = "User-agent: *\nDisallow: /private/\n"
            if site == "news.ycombinator.com":
                rules = "User-agent: *\nDisallow: /\n"
            return 200, {"Content-Type": "text/plain"}, rules.encode(), 0.0
        if path.startswith("/canonical/"):
            path = "/" + path[len("/canonical/") :]
        elif site == "www.bbc.co.uk" and not path.startswith("/loop"):
            return 301, {"Location": f"/canonical{path}"}, b"", 0.0
        if path.startswith("/loop/"):
            nxt = "/loop/b" if path.endswith("/a") else "/loop/a"
            return 302, {"Location": nxt}, b"", 0.0
        with self._lock:
            page = self.page(site, path)
        rng = _rng(self.seed, "render", site, path)
        delay = SLOW_S if site == "www.theverge.com" else 0.0
        html_type = {"Content-Type": "text/html; charset=utf-8"}
        if page.outcome == "too_large" and page.detail == "bomb":
            bomb = _bomb()
            return 200, {**html_type, "Content-Encoding": "gzip"}, bomb, delay
        if page.outcome == "too_large":
            return 200, html_type, b"<html><body>" + b"x" * BIG_BYTES + b"</body></html>", delay
        if page.outcome == "error":
            return 302, {"Location": "/loop/a"}, b"", delay
        if page.outcome == "unsupported_type":
            return 200, {"Content-Type": "application/zip"}, b"PK\x03\x04" + b"\0" * 64, delay
        if page.outcome == "blocked_address":
            return 302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"", delay
        if page.outcome == "robots_disallowed":
            return 200, html_type, self._html(site, page, rng).encode(), delay
        if page.outcome == "timeout":
            return 200, html_type, b"", HANG_S
        if page.outcome == "http_error":
            code = int(page.detail or 500)
            headers = {"Content-Type": "text/html"}
            if code == 429:
                headers["Retry-After"] = "120"
            return code, headers, f"<h1>{code}</h1>".encode(), delay
        if page.outcome == "not_article":
            return 200, html_type, self._stub(page).encode(), delay
        if site == "arxiv.org":
            return 200, {"Content-Type": "application/pdf"}, make_pdf(page), delay
        markup = self._html(site, page, rng)
        if site in ("blog.example.com", "example.org"):
            return 200, {"Content-Type": "text/html"}, markup.encode("cp1252"), delay
        if site == "lwn.net":
            return (
                200,
                {**html_type, "Content-Encoding": "gzip"},
                gzip.compress(markup.encode(), mtime=0),
                delay,
            )
        return 200, html_type, markup.encode(), delay

    # -- serving ---------------------------------------------------------------------------
    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        port = request.transport.get_extra_info("sockname")[1]
        site = next(s for s, p in self.ports.items() if p == port)
        if request.path == "/_sim/web/truth":
            return web.json_response(self.truth())
        hit = Hit(site, request.path_qs, time.monotonic())
        with self._lock:
            self.hits.append(hit)
        try:
            status, headers, body, delay = self.answer(site, request.path)
            if delay:
                await asyncio.sleep(delay)
            return web.Response(status=status, headers=headers, body=body)
        finally:
            hit.done = time.monotonic()

    async def _serve(self) -> Any:
        from aiohttp import web

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # a hanging page's handler is cancelled half a second into stop()
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        for site in SITES:
            tcp = web.TCPSite(runner, "127.0.0.1", 0, reuse_address=True)
            await tcp.start()
            sockets = getattr(tcp._server, "sockets", None) or []
            self.ports[site] = int(sockets[0].getsockname()[1])
        return runner

    def start(self) -> SimulatedWeb:
        """Serve every site on a background thread."""
        self._background.start(self._serve)
        return self

    def stop(self) -> None:
        """Stop serving (answers still pending are cut)."""
        self._background.stop()

    def __enter__(self) -> SimulatedWeb:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_BOMB: list[bytes] = []


def _bomb() -> bytes:
    """24 MB of spaces, gzipped to about 23 KB (made once)."""
    if not _BOMB:
        _BOMB.append(gzip.compress(b" " * 24_000_000, 9, mtime=0))
    return _BOMB[0]


def make_pdf(page: Page) -> bytes:
    """A small valid PDF whose pages hold the title and paragraphs (Helvetica, wrapped)."""
    import textwrap

    lines: list[str] = [page.title, ""]
    for paragraph in page.paragraphs:
        lines += [*textwrap.wrap(paragraph, 90), ""]
    pages = [lines[i : i + 50] for i in range(0, len(lines), 50)] or [[""]]

    def esc(text: str) -> str:
        ascii_text = text.encode("latin-1", "replace").decode("latin-1")
        return ascii_text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    objects: list[bytes] = []
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, chunk in enumerate(pages):
        stream = "BT /F1 10 Tf 14 TL 56 780 Td " + " ".join(f"({esc(x)}) '" for x in chunk) + " ET"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        data = stream.encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream")
    info = len(objects) + 1
    objects.append(f"<< /Title ({esc(page.title)}) /Author (Ada Writer) >>".encode())
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {info} 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
