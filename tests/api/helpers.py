"""Reading the API area's pages: the text of one element, the ids a page has."""

from __future__ import annotations

from html.parser import HTMLParser

# Text inside these runs on; any other tag separates words (cells, items, paragraphs).
INLINE = {"a", "abbr", "b", "code", "em", "i", "kbd", "small", "span", "strong", "time"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class _Reader(HTMLParser):
    """Collect every id, and the text (spaces collapsed) inside the element with `target`."""

    def __init__(self, target: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.target = target
        self.ids: list[str] = []
        self.depth = 0  # > 0 while inside the target
        self.found = False
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element_id = dict(attrs).get("id")
        if element_id:
            self.ids.append(element_id)
        if self.depth and tag not in INLINE:
            self.parts.append(" ")
        if tag in VOID:
            return
        if self.depth:
            self.depth += 1
        elif element_id is not None and element_id == self.target and not self.found:
            self.found, self.depth = True, 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in VOID:
            if tag not in INLINE:
                self.parts.append(" ")
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def element_text(html: str, element_id: str) -> str | None:
    """Return the text inside the element whose id is `element_id` (None if there's none)."""
    reader = _Reader(element_id)
    reader.feed(html)
    return " ".join("".join(reader.parts).split()) if reader.found else None


def ids(html: str) -> list[str]:
    """Return every id on the page, in order."""
    reader = _Reader(None)
    reader.feed(html)
    return reader.ids
