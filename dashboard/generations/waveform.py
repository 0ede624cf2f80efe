"""Draw a generation's waveform as inline SVG, on the server, from its stored peaks.

The SVG holds the bars once (in `<defs>`) and shows them twice through `<use>`: an
"unplayed" layer, and a "played" layer clipped by a `<clipPath>` rectangle whose
`width` attribute the player script moves. Changing an SVG attribute is not a style,
so this works under a CSP without `'unsafe-inline'`. The bars have no fill of their own:
each `<use>` colours them by inheritance, from a CSS class (static/css/player.css).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from markupsafe import Markup, escape

# Bars are never thinner than this (viewBox units), so silence reads as a dotted line.
MIN_BAR_HEIGHT = 1.5
FLAT_LINE_HEIGHT = 2.0


def waveform_svg(
    peaks: Sequence[int] | None,
    *,
    width: float = 640,
    height: float = 96,
    bar_gap: float = 1,
    label: str = "Waveform",
    dom_id: str | None = None,
) -> Markup:
    """Return a responsive SVG of `peaks` (0–100): one rounded bar per peak, mirrored.

    `width` and `height` set the viewBox (the SVG stretches to its box); `dom_id`
    prefixes the ids the two layers share, so several waveforms can sit on one page.
    No peaks (old rows, empty audio) draw a flat line the player can still colour.
    """
    prefix = escape(dom_id or f"waveform-{uuid.uuid4().hex[:12]}")
    bars_id, clip_id = f"{prefix}-bars", f"{prefix}-clip"
    middle = height / 2
    if peaks:
        slot = width / len(peaks)
        bar = max(slot - bar_gap, slot / 2)
        shapes = []
        for index, peak in enumerate(peaks):
            level = min(max(peak, 0), 100) / 100
            bar_height = max(level * height, MIN_BAR_HEIGHT)
            shapes.append(
                f'<rect x="{_n(index * slot + (slot - bar) / 2)}" y="{_n(middle - bar_height / 2)}"'
                f' width="{_n(bar)}" height="{_n(bar_height)}" rx="{_n(bar / 2)}"/>'
            )
        body = "".join(shapes)
    else:
        half = FLAT_LINE_HEIGHT / 2
        body = (
            f'<rect class="waveform-flat" x="0" y="{_n(middle - half)}" width="{_n(width)}"'
            f' height="{_n(FLAT_LINE_HEIGHT)}" rx="{_n(half)}"/>'
        )
    return Markup(
        f'<svg class="waveform" viewBox="0 0 {_n(width)} {_n(height)}" preserveAspectRatio="none"'
        f' role="img" aria-label="{escape(label)}" focusable="false"'
        ' xmlns="http://www.w3.org/2000/svg">'
        f'<defs><g id="{bars_id}" class="waveform-bars">{body}</g>'
        f'<clipPath id="{clip_id}"><rect data-waveform-progress="" x="0" y="0" width="0"'
        f' height="{_n(height)}"/></clipPath></defs>'
        f'<use href="#{bars_id}" class="waveform-unplayed"/>'
        f'<use href="#{bars_id}" class="waveform-played" clip-path="url(#{clip_id})"/>'
        "</svg>"
    )


def _n(value: float) -> str:
    """Format a coordinate compactly: at most two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
