"""What the history test modules share: fetching a page and reading its rows."""

from __future__ import annotations

import re
from urllib.parse import urlencode


def history_url(slug: str = "acme", **params: str) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"/o/{slug}/history/" + (f"?{query}" if query else "")


def get_page(client, url: str, **headers: str) -> str:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def row_ids(fragment: str) -> list[str]:
    return re.findall(r'<tr id="generation-([0-9a-f-]{36})"', fragment)
