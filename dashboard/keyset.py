"""Keyset cursors: the opaque `after=` token of a list paged by seek, written and read back.

A list paged by keyset hands out, with each page, a cursor saying where the next page
starts: the sort key of the page's last row (a sort value and the row's id, which breaks
ties) and, for a list with several orders, the order that key belongs to. On the wire it
is URL-safe base64, unpadded, of compact JSON: `{"k": [...]}`, or `{"o": order, "k":
[...]}`. Clients never look inside. Coming back it is read strictly, in this order: at
most CURSOR_MAX characters of the base64url alphabet, before anything is decoded; UTF-8
JSON; an object with exactly the fields its list writes; an order the list has; a key of
that order's parts, each a string that reads back as its type. Anything else raises
`InvalidCursor`, whose message names the link the person followed ("This “Older” link
is damaged."); pages answer it with 400, adding where to start again.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The longest cursor any list writes is the voice library's name order: a 100-character
# name of 4-byte characters comes to 608 (875 if every character needed a JSON escape).
# The bound keeps what is decoded small, so a forged token costs nothing to refuse.
CURSOR_MAX = 1024
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_HEX_ID = re.compile(r"[0-9a-f]{32}")


class InvalidCursor(ValueError):
    """A cursor this code didn't write; the message is for the person who followed it."""


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a sort key: how its value is written into a cursor and read back.

    `load` raises ValueError for a string that `dump` never writes.
    """

    dump: Callable[[Any], str]
    load: Callable[[str], Any]


def _load_timestamp(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError("naive timestamp")
    return when.astimezone(dt.UTC)


def _load_row_id(text: str) -> uuid.UUID:
    # uuid.UUID itself accepts braces, hyphens, a urn: prefix and int() leniencies.
    if not _HEX_ID.fullmatch(text):
        raise ValueError("not a 32-digit lower-case hex id")
    return uuid.UUID(hex=text)


# An aware timestamp, written in UTC (ISO 8601).
TIMESTAMP = Part(lambda when: when.astimezone(dt.UTC).isoformat(), _load_timestamp)
# A row id, as 32 lower-case hex digits.
ROW_ID = Part(lambda row_id: row_id.hex, _load_row_id)


def text(max_length: int) -> Part:
    """Return the part for a text of 1 to `max_length` characters (a name, say)."""

    def load(value: str) -> str:
        if not 1 <= len(value) <= max_length:
            raise ValueError("text of the wrong length")
        return value

    return Part(str, load)


@dataclass(frozen=True, slots=True)
class Keyset:
    """The cursors of one list: the link that carries them and the key of each order.

    `orders` maps each order a cursor can continue to its key's parts; a list with a
    single order maps None, and its cursors carry no order.
    """

    link: str
    orders: Mapping[str | None, tuple[Part, ...]]

    def encode(self, key: Sequence[Any], order: str | None = None) -> str:
        """Return the cursor for "the rows after `key`" in `order`."""
        parts = self.orders.get(order)
        if parts is None:
            raise ValueError(f"{order} order has no cursor")
        fields: dict[str, Any] = {} if order is None else {"o": str(order)}
        fields["k"] = [part.dump(value) for part, value in zip(parts, key, strict=True)]
        raw = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def decode(self, token: str | None, order: str | None = None) -> tuple[Any, ...] | None:
        """Return the key in `token` for `order` (None when there is no token).

        Raise InvalidCursor when this list never wrote `token`, or wrote it for another
        order.
        """
        if not token:
            return None
        try:
            found, key = self._read(token)
        except (ValueError, TypeError, RecursionError) as exc:
            raise InvalidCursor(f"This “{self.link}” link is damaged.") from exc
        if found != order:
            raise InvalidCursor(f"This “{self.link}” link belongs to another sort order.")
        return key

    def _read(self, token: str) -> tuple[str | None, tuple[Any, ...]]:
        """Return the order and key in `token`; raise ValueError or TypeError otherwise."""
        if len(token) > CURSOR_MAX or not _BASE64URL.fullmatch(token):
            raise ValueError("not a cursor's length or alphabet")
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        order = data.get("o")
        if set(data) != ({"k"} if order is None else {"o", "k"}):
            raise ValueError("unexpected cursor fields")
        if order is not None and not isinstance(order, str):
            raise TypeError("the order is not a string")
        parts = self.orders.get(order)
        if parts is None:
            raise ValueError("no key for this order")
        values = data["k"]
        if not isinstance(values, list) or len(values) != len(parts):
            raise TypeError("the key has the wrong number of parts")
        if not all(isinstance(value, str) for value in values):
            raise TypeError("key parts are strings")
        return order, tuple(part.load(value) for part, value in zip(parts, values, strict=True))
