"""HN's HTML as plain text. Pure: no I/O.

Comment and self-post ``text`` is HN's small HTML: ``<p>`` between paragraphs,
``<i>``, ``<a href>`` (the shown text is often the URL cut short), ``<pre><code>``,
and entities. ``plain_text`` keeps the words, a paragraph break for ``<p>``, the
full URL of a link, and nothing that a browser would run: every tag is dropped,
and a ``<script>`` or ``<style>`` body that reaches it comes out as inert text.
"""

from __future__ import annotations

from html.parser import HTMLParser

_BLOCKS = frozenset(("p", "pre", "div", "blockquote", "li", "br"))


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._href: str | None = None
        self._shown: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS and self.parts:
            self.parts.append("\n\n" if tag != "br" else "\n")
        elif tag == "a":
            self._href = dict(attrs).get("href") or None
            self._shown = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            shown = "".join(self._shown)
            href = self._href
            # HN shows long URLs cut short ("https://example.org/a/very/lo..."): use the href
            cut = shown.rstrip(".").rstrip("…")
            keep = href if shown != href and href.startswith(cut) and cut else shown or href
            self.parts.append(keep)
            self._href = None

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._shown.append(data)
        else:
            self.parts.append(data)


def plain_text(value: str | None) -> str | None:
    """``value`` (HN's HTML) as plain text: entities decoded, paragraphs as blank lines."""
    if value is None:
        return None
    parser = _Text()
    parser.feed(value)
    parser.close()
    if parser._href is not None:  # an unclosed link: keep what it showed
        parser.parts.append("".join(parser._shown) or parser._href)
    return "".join(parser.parts).strip()
