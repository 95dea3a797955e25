"""Article extraction: ``extract(body, url=None, content_type=None) -> Extracted``.

* **HTML** goes through trafilatura once (``bare_extraction``); its tree gives both the
  Markdown (headings, lists, links, code blocks and tables) and the plain text (links
  as their words). Comment sections are left out: on HN the discussion is the thread,
  and a page's own comments are not the article.
* **PDF** goes through pypdf (text of each page, title, author and creation date).
* **text/plain** is kept as it is.
* **Charsets:** the declared one (HTTP header, byte-order mark, ``<meta>``) when it
  decodes; otherwise UTF-8 when it decodes strictly; otherwise charset-normalizer's
  guess. ``iso-8859-1`` and ``us-ascii`` are read as windows-1252, as browsers do.
* ``not_article`` names why a page is no article even though it was fetched: a
  ``paywall``, a ``login`` wall, a ``bot_block`` or an ``empty`` extraction.

Pure and synchronous: the content job runs it in a process pool.
"""

from __future__ import annotations

import codecs
import functools
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from unicodedata import normalize

EMPTY_WORDS = 40  # fewer words than this is an empty extraction
STUB_WORDS = 250  # a wall counts only on a page with fewer words than this
PDF_MAX_PAGES = 300
LANGUAGE_SAMPLE = 1200  # characters py3langid reads: enough to tell, a fifth of the time

_WORD = re.compile(r"\w+")
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.I)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_AS_BROWSERS_DO = dict.fromkeys(("iso8859-1", "latin-1", "latin_1", "ascii"), "cp1252")

# Walls. Their wording is looked for in the extracted text and the title, never in the
# markup (real articles carry captcha scripts and subscription widgets); the markers
# that only walls carry are looked for in the markup. Either counts only on a short page.
_WALLS = (
    (
        "bot_block",
        re.compile(
            r"just a moment\.\.\.|checking your browser|attention required|"
            r"are you a (?:robot|human)|verify (?:that )?you are (?:a )?human|"
            r"access (?:to this page has been )?denied|unusual traffic from your|"
            r"enable javascript and cookies to continue",
            re.I,
        ),
        re.compile(r"cf-browser-verification|cf-chl-|challenge-platform|px-captcha", re.I),
    ),
    (
        "paywall",
        re.compile(
            r"subscribe (?:now )?to (?:continue|read|keep)|"
            r"(?:to )?(?:continue|keep) reading,? (?:subscribe|sign up|become a|start)|"
            r"(?:for|available to|only available to|exclusive to) (?:paid )?subscribers|"
            r"already a subscriber|subscribers only",
            re.I,
        ),
        re.compile(r'"isAccessibleForFree"\s*:\s*"?false', re.I),
    ),
    (
        "login",
        re.compile(
            r"(?:sign|log) ?in to (?:continue|read|view|see)|you must be logged in|"
            r"(?:create|register for) (?:a free|an) account to (?:continue|read)",
            re.I,
        ),
        None,
    ),
)


@dataclass(frozen=True, slots=True)
class Extracted:
    """What a page says: Markdown and plain text, its metadata, and a verdict."""

    markdown: str
    text: str
    title: str | None
    author: str | None
    published: date | None
    language: str | None
    kind: str  # html, pdf or text
    not_article: str | None  # paywall, login, bot_block, empty; None for an article
    word_count: int  # words in ``text`` (counted where it was extracted, off the loop)


@functools.cache
def extractor_version() -> str:
    """The name and version recorded on each extracted row (read once: looking up an
    installed distribution scans sys.path)."""
    from importlib.metadata import version

    return f"hnlab-extract/2 trafilatura {version('trafilatura')} pypdf {version('pypdf')}"


def kind_of(body: bytes | str, content_type: str | None = None) -> str:
    """``html``, ``pdf`` or ``text``: from the content type, else sniffed."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime == "application/pdf":
        return "pdf"
    if mime == "text/plain":
        return "text"
    if mime in ("text/html", "application/xhtml+xml"):
        return "html"
    head = body[:1024] if isinstance(body, bytes) else body[:1024].encode("utf-8", "replace")
    if head.lstrip().startswith(b"%PDF-"):
        return "pdf"
    if re.search(rb"<(?:!doctype html|html|head|body|p|div|article)\b", head, re.I):
        return "html"
    return "text"


def decode(body: bytes, content_type: str | None = None, *, sniff_meta: bool = True) -> str:
    """Bytes to text: BOM, the declared charset (header, ``<meta>``) when it decodes,
    UTF-8 when it decodes, else a guess (windows-1252 when nearly as likely)."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body.decode(encoding, "replace")
    declared: list[str] = []
    if content_type and (found := _HEADER_CHARSET.search(content_type)):
        declared.append(found.group(1))
    if sniff_meta and (meta := _META_CHARSET.search(body[:4096])):
        declared.append(meta.group(1).decode("ascii", "replace"))
    for label in declared:
        try:
            name = codecs.lookup(label).name
        except LookupError:
            continue
        name = _AS_BROWSERS_DO.get(name, name)
        try:
            return body.decode(name)
        except UnicodeDecodeError:
            continue  # declared wrongly: fall through to UTF-8 and the guess
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    # The guess is shaky between the single-byte Latin code pages (a French page reads
    # as Baltic cp1257 with nearly as little "chaos"); windows-1252, the web's most
    # common of them, wins when it is nearly as good.
    matches = list(from_bytes(body[:200_000]))
    encoding = matches[0].encoding if matches else "cp1252"
    if any(m.encoding == "cp1252" and m.chaos <= matches[0].chaos + 0.05 for m in matches):
        encoding = "cp1252"
    return body.decode(_AS_BROWSERS_DO.get(encoding, encoding), "replace")


def extract(
    body: bytes | str, url: str | None = None, content_type: str | None = None
) -> Extracted:
    """Extract the article from a page's body (bytes or text)."""
    kind = kind_of(body, content_type)
    if kind == "pdf":
        return _pdf(body if isinstance(body, bytes) else body.encode("latin-1", "replace"))
    text = body if isinstance(body, str) else decode(body, content_type, sniff_meta=kind == "html")
    if kind == "text":
        text = text.replace("\r\n", "\n").strip()
        return _verdict(text, text, None, None, None, kind, text)
    return _html(text, url)


def _html(html: str, url: str | None) -> Extracted:
    from trafilatura import bare_extraction
    from trafilatura.utils import load_html
    from trafilatura.xml import xmltotxt

    tree = load_html(html)
    if tree is None:
        return _verdict("", "", None, None, None, "html", html)
    # Asking trafilatura for links or emphasis changes what it keeps (link-dense and
    # emphasised parts can go, and links would print as Markdown inside the text), and a
    # second pass costs as much again. So one plain pass gives the text, the metadata
    # and the Markdown's structure (headings, lists, code, tables), and the links are
    # put back from the page's own anchors (``_with_links``).
    targets = _anchors(tree, url)  # before trafilatura prunes the tree in place
    document: Any = bare_extraction(
        tree, url=url, include_comments=False, include_tables=True, with_metadata=True
    )
    if document is None or getattr(document, "body", None) is None:
        return _verdict("", "", None, None, None, "html", html)
    title = (document.title or "").strip() or None
    text = normalize("NFC", xmltotxt(document.body, include_formatting=False)).strip()
    markdown = _with_links(xmltotxt(document.body, include_formatting=True).strip(), targets)
    text = _trim(text, title)
    if title and not markdown.startswith("#"):
        markdown = f"# {title}\n\n{markdown}"
    return _verdict(
        markdown,
        text,
        title,
        document.author or None,
        _date(document.date),
        "html",
        html,
    )


_NOT_CONTENT = {"nav", "header", "footer", "aside", "form", "button"}
_FENCE = re.compile(r"^(```|~~~)")


def _anchors(tree: Any, url: str | None) -> dict[str, str]:
    """The page's links that may be the article's: words (two or more, outside
    navigation, headers, footers, asides and forms) to absolute URL, first one kept."""
    from urllib.parse import urljoin

    targets: dict[str, str] = {}
    for anchor in tree.iter("a"):
        href = (anchor.get("href") or "").strip()
        if not href or href.startswith(("#", "javascript:", "mailto:", "data:")):
            continue
        words = " ".join(anchor.text_content().split())
        if len(words.split()) < 2 or len(words) > 200 or words in targets:
            continue
        if any(a.tag in _NOT_CONTENT for a in anchor.iterancestors()):
            continue
        targets[words] = urljoin(url or "", href)
    return targets


def _with_links(markdown: str, targets: dict[str, str]) -> str:
    """Put the page's links back into the Markdown: the first time an anchor's words
    appear in a line outside code, they become ``[words](URL)``."""
    if not targets:
        return markdown
    pattern = re.compile(
        r"(?<![\w\[])("
        + "|".join(re.escape(w) for w in sorted(targets, key=len, reverse=True))
        + r")(?![\w\]])"
    )
    linked: set[str] = set()

    def link(match: re.Match[str]) -> str:
        words = match.group(1)
        if words in linked:
            return words
        linked.add(words)
        return f"[{words}]({targets[words].replace(')', '%29').replace(' ', '%20')})"

    lines, in_code = [], False
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
        lines.append(line if in_code else pattern.sub(link, line))
    return "\n".join(lines)


_READ_MORE = re.compile(
    r"^(?:read (?:more|also|next)|see also|related|more on this|also read|"
    r"lesen sie (?:auch|mehr)|mehr zum thema|lire aussi|à lire aussi)\b\s*:?",
    re.I,
)
_BYLINE = re.compile(r"^(?:By|Von|Par|Por|Di)\s+[A-ZÀ-Þ]")


def _trim(text: str, title: str | None) -> str:
    """The body without what is not the article's own prose: the headline repeated as
    its first line (it is ``title``), a byline just under it, and short "Read more:"
    lines pointing elsewhere."""
    paragraphs = [p for p in text.split("\n") if p.strip()]
    if title and paragraphs and " ".join(paragraphs[0].split()) == " ".join(title.split()):
        paragraphs = paragraphs[1:]
    if paragraphs and _BYLINE.match(paragraphs[0]) and len(paragraphs[0].split()) <= 12:
        paragraphs = paragraphs[1:]
    kept = [p for p in paragraphs if not (_READ_MORE.match(p) and len(p.split()) <= 25)]
    return "\n".join(kept)


def _pdf(body: bytes) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(body))
        pages = [page.extract_text() or "" for page in reader.pages[:PDF_MAX_PAGES]]
        meta = reader.metadata
    except (PdfReadError, ValueError, KeyError, TypeError, OSError):
        return _verdict("", "", None, None, None, "pdf", "")
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    title = (meta.title or None) if meta else None
    author = (meta.author or None) if meta else None
    created = meta.creation_date if meta else None
    published = created.date() if isinstance(created, datetime) else None
    return _verdict(text, text, _clean(title), _clean(author), published, "pdf", "")


def _clean(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _verdict(
    markdown: str,
    text: str,
    title: str | None,
    author: str | None,
    published: date | None,
    kind: str,
    page: str,
) -> Extracted:
    words = len(_WORD.findall(text))
    reason: str | None = None
    if words < STUB_WORDS and kind == "html":
        said = f"{title or ''}\n{text}"
        markup = page[:200_000]
        reason = next(
            (
                name
                for name, wording, marker in _WALLS
                if wording.search(said) or (marker is not None and marker.search(markup))
            ),
            None,
        )
    if reason is None and words < EMPTY_WORDS:
        reason = "empty"
    return Extracted(markdown, text, title, author, published, _language(text), kind, reason, words)


def _language(text: str) -> str | None:
    """ISO 639-1 code of the text's language (py3langid's bundled model), or None."""
    if len(text) < 20:
        return None
    import py3langid

    code, _ = py3langid.classify(text[:LANGUAGE_SAMPLE])
    return str(code)
