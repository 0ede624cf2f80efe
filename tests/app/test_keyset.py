"""The keyset cursor codec: what it writes reads back, and nothing else does."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import pytest

from dashboard import keyset
from dashboard.keyset import CURSOR_MAX, InvalidCursor, Keyset

WHEN = dt.datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=dt.UTC)
ROW = uuid.UUID("0190f0c4-5c1e-7000-8000-000000000001")
ONE_ORDER = Keyset("Older", {None: (keyset.TIMESTAMP, keyset.ROW_ID)})
TWO_ORDERS = Keyset(
    "Load more",
    {"name": (keyset.text(100), keyset.ROW_ID), "newest": (keyset.TIMESTAMP, keyset.ROW_ID)},
)


def token(payload: object) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_cursor_round_trips_and_is_url_safe_base64_of_compact_json():
    written = ONE_ORDER.encode((WHEN, ROW))
    assert written == token(b'{"k":["2026-03-04T05:06:07.890123+00:00","%s"]}' % ROW.hex.encode())
    assert ONE_ORDER.decode(written) == (WHEN, ROW)
    named = TWO_ORDERS.encode(("Zoë “quoted” / ünïcode", ROW), "name")
    assert set(named) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert TWO_ORDERS.decode(named, "name") == ("Zoë “quoted” / ünïcode", ROW)
    assert TWO_ORDERS.decode(TWO_ORDERS.encode((WHEN, ROW), "newest"), "newest") == (WHEN, ROW)


def test_timestamps_come_back_in_utc():
    plus_two = WHEN.astimezone(dt.timezone(dt.timedelta(hours=2)))
    (when, _row) = ONE_ORDER.decode(ONE_ORDER.encode((plus_two, ROW)))
    assert when == WHEN and when.tzinfo == dt.UTC


def test_no_token_is_no_cursor():
    assert ONE_ORDER.decode(None) is None and ONE_ORDER.decode("") is None


def test_an_order_without_a_key_has_no_cursor():
    with pytest.raises(ValueError, match="best order has no cursor"):
        TWO_ORDERS.encode(("Voice", ROW), "best")


def test_the_longest_cursor_a_list_writes_fits():
    longest = TWO_ORDERS.encode(("\x01" * 100, ROW), "name")  # every character escaped
    assert len(longest) <= CURSOR_MAX
    assert TWO_ORDERS.decode(longest, "name") == ("\x01" * 100, ROW)


GOOD = [WHEN.isoformat(), ROW.hex]


@pytest.mark.parametrize(
    "damaged",
    [
        pytest.param(ONE_ORDER.encode((WHEN, ROW)) + "A" * CURSOR_MAX, id="too long"),
        pytest.param(token({"k": GOOD, "pad": "x" * CURSOR_MAX}), id="too long before JSON"),
        pytest.param("not base64!", id="outside the alphabet"),
        pytest.param(token({"k": GOOD}) + "=", id="padding"),
        pytest.param(token({"k": GOOD}) + "+/", id="not url-safe"),
        pytest.param("A", id="impossible length"),
        pytest.param(token(b"\xff\xfe"), id="not UTF-8"),
        pytest.param(token(repr({"k": GOOD}).encode()), id="not JSON"),
        pytest.param(token(b"[" * 700), id="deep nesting"),
        pytest.param(token([1, 2]), id="not an object"),
        pytest.param(token({}), id="no fields"),
        pytest.param(token({"k": GOOD, "x": 1}), id="an extra field"),
        pytest.param(token({"o": None, "k": GOOD}), id="an order field it never writes"),
        pytest.param(token({"key": GOOD}), id="another field"),
        pytest.param(token({"k": GOOD[:1]}), id="too few parts"),
        pytest.param(token({"k": [*GOOD, "x"]}), id="too many parts"),
        pytest.param(token({"k": {"a": 1, "b": 2}}), id="key not a list"),
        pytest.param(token({"k": [WHEN.timestamp(), ROW.hex]}), id="a number"),
        pytest.param(token({"k": [None, ROW.hex]}), id="a null"),
        pytest.param(token({"k": ["2026-01-01T00:00:00", ROW.hex]}), id="naive timestamp"),
        pytest.param(token({"k": ["soon", ROW.hex]}), id="not a timestamp"),
        pytest.param(token({"k": [GOOD[0], "xyz"]}), id="not an id"),
        pytest.param(token({"k": [GOOD[0], str(ROW)]}), id="id with hyphens"),
        pytest.param(token({"k": [GOOD[0], ROW.hex.upper()]}), id="id in capitals"),
        pytest.param(token({"k": [GOOD[0], "0000_000" + ROW.hex[8:]]}), id="id with underscores"),
    ],
)
def test_anything_else_is_a_damaged_link(damaged):
    with pytest.raises(InvalidCursor) as refused:
        ONE_ORDER.decode(damaged)
    assert str(refused.value) == "This “Older” link is damaged."


@pytest.mark.parametrize(
    ("payload", "order"),
    [
        ({"k": GOOD}, "newest"),  # no order
        ({"o": 1, "k": GOOD}, "newest"),
        ({"o": ["newest"], "k": GOOD}, "newest"),
        ({"o": "best", "k": ["Voice", ROW.hex]}, "best"),  # an order without cursors
        ({"o": "name", "k": ["", ROW.hex]}, "name"),  # a name is 1 to 100 characters
        ({"o": "name", "k": ["x" * 101, ROW.hex]}, "name"),
        ({"o": "newest", "k": ["Voice", ROW.hex]}, "newest"),  # the other order's key
    ],
)
def test_orders_and_their_keys_are_checked(payload, order):
    with pytest.raises(InvalidCursor) as refused:
        TWO_ORDERS.decode(token(payload), order)
    assert str(refused.value) == "This “Load more” link is damaged."


def test_a_sound_cursor_of_another_order_says_so():
    with pytest.raises(InvalidCursor) as refused:
        TWO_ORDERS.decode(TWO_ORDERS.encode(("Voice", ROW), "name"), "newest")
    assert str(refused.value) == "This “Load more” link belongs to another sort order."
