"""The analytics page's charts: pygal SVG, rendered on the server, clean for a strict CSP.

pygal always embeds a `<style>` element (its base CSS), a `<script>` with its config,
a tooltip group with `style="opacity: 0"`, and links a remote tooltip script by
default. `js=[]` and `css=[]` drop the remote script and the theme CSS; the rest is
not configurable, so an XML filter (`Graph.add_xml_filter`, run on the tree just
before serialising) removes every `<style>`, `<script>` and `style` attribute, the
JavaScript tooltip machinery and ids that would repeat across charts. What remains is
shapes and text with pygal's classes (`.axis`, `.guide`, `.color-N`, …), which
`static/css/analytics.css` styles with Pico's variables and a colour-blind-safe palette.

Tooltips are native: a `<title>` in each bar, dot or slice. Every chart is an image to
assistive technology (`role="img"` and an `aria-label` summing it up); its numbers are
in a table under it. Each chart is drawn for wide and for phone-sized screens (CSS
shows one), because an SVG scaled down to a phone would shrink its text with it; the
donut has no text and is drawn once.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pygal
from markupsafe import Markup
from pygal.style import Style

from dashboard import tenancy
from dashboard.analytics.figures import Analytics, Share, minutes

TOP_VOICES = 10
TOP_MEMBERS = 10
TOP_CATEGORIES = 6  # and "Other": more slices than that can't be told apart
FONT_SIZE = 14  # must match analytics.css: pygal sizes its margins from it
CACHE_SIZE = 128  # rendered SVGs kept in each process (a few tens of kB each)


@dataclass(frozen=True, slots=True)
class Size:
    """A rendering's size in SVG units (CSS scales it to the container's width)."""

    width: int
    height: int
    labels: int  # at most this many labels along the x axis
    truncate: int  # category labels longer than this are cut (full text in the tooltip)


FULL = Size(1120, 340, 16, 24)
HALF = Size(560, 340, 8, 20)
PHONE = Size(360, 300, 5, 14)
DONUT = Size(300, 300, 0, 0)  # no text in it: one rendering fits every screen

STYLE = Style(
    # Only sizes matter: pygal lays out from them. Colours and fonts come from CSS.
    font_family="inherit",
    label_font_size=FONT_SIZE,
    major_label_font_size=FONT_SIZE,
    legend_font_size=FONT_SIZE,
    value_font_size=FONT_SIZE,
    tooltip_font_size=FONT_SIZE,
    title_font_size=FONT_SIZE + 2,
    no_data_font_size=FONT_SIZE + 3,
)

COMMON: dict[str, Any] = {
    "style": STYLE,
    "js": [],
    "css": [],
    "no_prefix": True,
    "disable_xml_declaration": True,
    "explicit_size": False,
    "legend_at_bottom": True,
    "legend_box_size": 12,
    "truncate_legend": -1,
    "margin": 12,
    "spacing": 12,
    "tooltip_fancy_mode": False,
    "print_values": False,
}


@dataclass(frozen=True, slots=True)
class Table:
    """A chart's numbers, for the "Show the numbers" table."""

    caption: str
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    numeric_from: int = 1  # columns from this one on are right-aligned numbers


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart card: its heading, two renderings (or none when empty) and its table."""

    name: str
    title: str
    summary: str
    table: Table
    renderings: list[Markup] = field(default_factory=list)
    empty_message: str = ""
    full_width: bool = False
    notes: list[str] = field(default_factory=list)
    # HTML legends (label, colour index): pygal's own would not fit (the donut's, beside
    # it) or would float apart under a wide chart (the key, above it).
    legend: list[tuple[str, int]] = field(default_factory=list)
    key: list[tuple[str, int]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.renderings


def charts(data: Analytics) -> list[Chart]:
    """Return the page's charts, in the order they appear."""
    return [
        generations_chart(data),
        characters_chart(data),
        categories_chart(data),
        voices_chart(data),
        members_chart(data),
        sources_chart(data),
    ]


# --------------------------------------------------------------------- the charts


def generations_chart(data: Analytics) -> Chart:
    """Succeeded and failed generations per bucket, stacked."""
    grouping = data.period.grouping
    labels = [b.bucket.label(grouping) for b in data.buckets]
    when = _when(data)
    succeeded = [b.totals.succeeded for b in data.buckets]
    failed = [b.totals.failed for b in data.buckets]
    title = f"Generations per {grouping}"
    summary = (
        f"{title}, {data.period.describe()}: {data.current.succeeded:,} succeeded "
        f"and {data.current.failed:,} failed."
    )

    def build(size: Size) -> pygal.Graph:
        top = max((s + f for s, f in zip(succeeded, failed, strict=True)), default=0)
        chart = pygal.StackedBar(
            **_value_axis(top), **_bucket_axis(labels, size), **_box(size), show_legend=False
        )
        chart.add("Succeeded", _points(succeeded, when, "succeeded"))
        chart.add("Failed", _points(failed, when, "failed"))
        return chart

    table = Table(
        caption=f"{title}, {data.period.describe()}",
        headers=[grouping.capitalize(), "Succeeded", "Failed"],
        rows=[[w, f"{s:,}", f"{f:,}"] for w, s, f in zip(when, succeeded, failed, strict=True)],
    )
    drawn = (tuple(labels), tuple(when), tuple(succeeded), tuple(failed))
    chart = _chart("generations", title, summary, table, build, drawn, data.empty, full_width=True)
    chart.key.extend([("Succeeded", 0), ("Failed", 1)])
    return chart


def characters_chart(data: Analytics) -> Chart:
    """Billed characters per bucket (what the quota counts), as a filled line."""
    grouping = data.period.grouping
    labels = [b.bucket.label(grouping) for b in data.buckets]
    when = _when(data)
    characters = [b.totals.billed for b in data.buckets]
    title = f"Characters per {grouping}"
    summary = f"{title}, {data.period.describe()}: {data.current.billed:,} in all."

    def build(size: Size) -> pygal.Graph:
        chart_type = pygal.Line if len(characters) > 1 else pygal.Bar
        chart = chart_type(
            **_value_axis(max(characters, default=0)),
            **_bucket_axis(labels, size),
            **_box(size),
            show_legend=False,
            fill=True,
            show_dots=len(characters) <= 45,
            dots_size=3,
        )
        chart.add("Characters", _points(characters, when, "characters"))
        return chart

    table = Table(
        caption=f"{title}, {data.period.describe()}",
        headers=[
            grouping.capitalize(),
            "Characters billed",
            "In succeeded generations",
            "Audio minutes",
        ],
        rows=[
            [w, f"{b.totals.billed:,}", f"{b.totals.characters:,}", minutes(b.totals.audio_ms)]
            for w, b in zip(when, data.buckets, strict=True)
        ],
    )
    drawn = (tuple(labels), tuple(when), tuple(characters))
    return _chart("characters", title, summary, table, build, drawn, not data.current.billed)


def categories_chart(data: Analytics) -> Chart:
    """Succeeded generations by voice category, as a donut (small categories as "Other")."""
    shares = [s for s in data.categories if s.generations]
    total = sum(s.generations for s in shares)
    slices: list[tuple[str, int]] = [(s.name, s.generations) for s in shares[:TOP_CATEGORIES]]
    rest = shares[TOP_CATEGORIES:]
    if len(rest) == 1:
        slices.append((rest[0].name, rest[0].generations))
    elif rest:
        slices.append((f"Other ({len(rest)} categories)", sum(s.generations for s in rest)))
    title = "Category mix"
    summary = f"{title}, generations by voice category: " + (
        "; ".join(f"{name} {_percent(value, total)}" for name, value in slices) or "none"
    )

    def build(size: Size) -> pygal.Graph:
        chart = pygal.Pie(**{**_box(size), "margin": 4}, inner_radius=0.55, show_legend=False)
        for name, value in slices:
            chart.add(name, [{"value": value, "tooltip": f"{name}: {value:,} generations"}])
        return chart

    table = Table(
        caption="Generations by voice category",
        headers=["Category", "Generations", "Share", "Characters"],
        rows=[
            [s.name, f"{s.generations:,}", _percent(s.generations, total), f"{s.characters:,}"]
            for s in shares
        ],
    )
    if not total:
        return _chart("categories", title, summary, table, build, (), True)
    return Chart(
        "categories",
        title,
        summary,
        table,
        renderings=[_rendered(build, DONUT, tuple(slices), summary, "categories", "any")],
        legend=[
            (f"{name} · {_percent(value, total)}", index)
            for index, (name, value) in enumerate(slices)
        ],
    )


def voices_chart(data: Analytics) -> Chart:
    """The ten voices with the most succeeded generations."""
    top = [s for s in data.voices if s.generations][:TOP_VOICES]
    title = "Top voices"
    summary = f"{title} by generations: " + (
        "; ".join(f"{s.label} {s.generations:,}" for s in top) or "none"
    )
    table = Table(
        caption=f"Top {len(top)} voices by generations",
        headers=["Voice", "Type", "Generations", "Characters", "Audio minutes"],
        rows=[
            [s.label, s.kind, f"{s.generations:,}", f"{s.characters:,}", minutes(s.audio_ms)]
            for s in top
        ],
        numeric_from=2,
    )
    chart = _ranking(
        "voices", title, summary, table, top, "generations", lambda s: f"{s.generations:,}"
    )
    more = sum(1 for s in data.voices if s.generations) - len(top)
    if more > 0:
        chart.notes.append(f"{more:,} more voice{'' if more == 1 else 's'} in the voices CSV.")
    return chart


def members_chart(data: Analytics) -> Chart:
    """Characters generated by each member (people who left: one "Former members" bar)."""
    shares = [s for s in data.members if s.generations]
    former = [s for s in shares if s.name == "Former members"]
    current = [s for s in shares if s not in former]
    shown = current[:TOP_MEMBERS]
    rest = current[TOP_MEMBERS:]
    if rest:
        others = Share("others", f"{len(rest)} other members")
        for s in rest:
            others.add(
                {"generations": s.generations, "characters": s.characters, "audio_ms": s.audio_ms}
            )
        shown.append(others)
    shown += former
    title = "Characters by member"
    summary = f"{title}: " + ("; ".join(f"{s.name} {s.characters:,}" for s in shown) or "none")
    table = Table(
        caption="Characters generated by each member",
        headers=["Member", "Generations", "Characters", "Audio minutes"],
        rows=[
            [s.name, f"{s.generations:,}", f"{s.characters:,}", minutes(s.audio_ms)] for s in shown
        ],
    )
    return _ranking(
        "members", title, summary, table, shown, "characters", lambda s: f"{s.characters:,}"
    )


def sources_chart(data: Analytics) -> Chart:
    """Billed characters by source: the dashboard, and each API key by name."""
    shares = data.sources
    total = sum(s.characters for s in shares)
    title = "Characters by source"
    summary = f"{title}: " + ("; ".join(f"{s.label} {s.characters:,}" for s in shares) or "none")
    table = Table(
        caption="Billed characters by source (the usage ledger: what the quota counts)",
        headers=["Source", "Submissions", "Characters billed", "Share"],
        rows=[
            [s.label, f"{s.submissions:,}", f"{s.characters:,}", _percent(s.characters, total)]
            for s in shares
        ],
    )
    chart = _ranking(
        "sources", title, summary, table, shares, "characters", lambda s: f"{s.characters:,}"
    )
    chart.notes.append(
        "Every accepted submission less those that finally failed, whether or not the "
        "generation still exists."
    )
    return chart


def _ranking(
    name: str,
    title: str,
    summary: str,
    table: Table,
    shares: Sequence[Any],
    metric: str,
    say: Callable[[Any], str],
) -> Chart:
    """A horizontal bar per share, largest at the top."""

    def build(size: Size) -> pygal.Graph:
        # pygal draws the first label at the bottom: reverse, so the largest is on top.
        ordered = list(reversed(shares))
        values = [getattr(s, metric) for s in ordered]
        height = 56 + 34 * len(ordered)
        chart = pygal.HorizontalBar(
            **_value_axis(max(values, default=0), most=4 if size is PHONE else 6),
            **_box(Size(size.width, height, size.labels, size.truncate)),
            show_legend=False,
            truncate_label=size.truncate,
        )
        chart.x_labels = [s.label for s in ordered]
        chart.add(
            title,
            [
                {"value": v, "tooltip": f"{s.label}: {say(s)} {metric}"}
                for s, v in zip(ordered, values, strict=True)
            ],
        )
        return chart

    empty = not any(getattr(s, metric) for s in shares)
    drawn = (metric, title, tuple((s.label, getattr(s, metric), say(s)) for s in shares))
    return _chart(name, title, summary, table, build, drawn, empty)


# ----------------------------------------------------------------------- helpers


def _chart(
    name: str,
    title: str,
    summary: str,
    table: Table,
    build: Callable[[Size], pygal.Graph],
    drawn: Hashable,
    empty: bool,
    full_width: bool = False,
) -> Chart:
    """Return a chart card; `drawn` is everything `build` reads besides the size."""
    if empty:
        return Chart(
            name,
            title,
            summary,
            table,
            empty_message="Nothing to chart in this period.",
            full_width=full_width,
        )
    # A full-width chart also gets a half-width rendering for mid-sized screens, where
    # the cards stack and the full one would shrink its text.
    sizes = [(FULL, "full")] if full_width else []
    sizes += [(HALF, "wide"), (PHONE, "phone")]
    return Chart(
        name,
        title,
        summary,
        table,
        renderings=[_rendered(build, size, drawn, summary, name, label) for size, label in sizes],
        full_width=full_width,
    )


def _when(data: Analytics) -> list[str]:
    """Describe each bucket in words; the one with today in it is still growing."""
    when = [b.bucket.describe(data.period.grouping) for b in data.buckets]
    if data.live and when:
        when[-1] += " (so far)"
    return when


def _box(size: Size) -> dict[str, Any]:
    return {**COMMON, "width": size.width, "height": size.height}


def _bucket_axis(labels: list[str], size: Size) -> dict[str, Any]:
    """Label at most `size.labels` buckets along the x axis, evenly spaced."""
    every = max(1, math.ceil(len(labels) / size.labels))
    return {
        "x_labels": labels,
        "x_labels_major": labels[::every],
        "show_minor_x_labels": False,
        "truncate_label": -1,
    }


def _value_axis(top: int, most: int = 5) -> dict[str, Any]:
    """Whole-number ticks from zero (counts are never fractional), compactly labelled."""
    ticks = integer_ticks(top, most)
    return {
        "range": (0, ticks[-1]),
        "y_labels": ticks,
        "value_formatter": compact_for(ticks[-1]),
        "show_minor_y_labels": True,
    }


def integer_ticks(top: int, most: int = 5) -> list[int]:
    """Return about `most` evenly spaced whole numbers from 0 covering `top`."""
    if top <= 0:
        return [0, 1]
    raw = top / most
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw and m * magnitude >= 1)
    count = math.ceil(top / step)
    return [int(n * step) for n in range(count + 1)]


def compact_for(top: int) -> Callable[[float | None], str]:
    """Return a formatter for an axis reaching `top`: 950 and 9,500, or 5k … 950k, or 1.5M."""

    def compact(value: float | None) -> str:
        if value is None:
            return ""
        if top < 10_000 or not value:
            return f"{value:,.0f}"
        if top < 1_000_000:
            return f"{value / 1000:,.0f}k"
        return f"{value / 1_000_000:,.1f}M".replace(".0M", "M")

    return compact


def _points(values: list[int], when: list[str], noun: str) -> list[dict[str, Any]]:
    return [
        {"value": v, "tooltip": f"{w}: {v:,} {noun}"} for v, w in zip(values, when, strict=True)
    ]


def _percent(part: int, whole: int) -> str:
    if not whole:
        return "0 %"
    share = part / whole * 100
    return "<1 %" if 0 < share < 1 else f"{share:.0f} %"


# ------------------------------------------------------------------- the cache

_cache: OrderedDict[str, str] = OrderedDict()
_cache_lock = threading.Lock()


def _rendered(
    build: Callable[[Size], pygal.Graph],
    size: Size,
    drawn: Hashable,
    label: str,
    name: str,
    size_name: str,
) -> Markup:
    """Return `render(build(size), …)`, from an in-process LRU cache when drawn before.

    pygal takes milliseconds per chart; an SVG depends only on what is drawn, so the
    key is exactly that (`drawn`: the values, labels and tooltips `build` reads), the
    size, the label and the chart's name, and the organisation in scope: two orgs never
    share an entry, even for identical figures.
    """
    key = repr((tenancy.current_org_id(), name, size_name, size, label, drawn))
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    with _cache_lock:
        svg = _cache.get(digest)
        if svg is not None:
            _cache.move_to_end(digest)
            return Markup(svg)
    rendered = render(build(size), label, name, size_name)
    with _cache_lock:
        _cache[digest] = str(rendered)
        _cache.move_to_end(digest)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return rendered


def clear_cache() -> None:
    """Forget every rendered chart (tests)."""
    with _cache_lock:
        _cache.clear()


# ----------------------------------------------------------- the CSP-clean filter


def render(chart: pygal.Graph, label: str, name: str, size: str) -> Markup:
    """Render `chart` as inline SVG without style, script or ids; label it for AT."""
    chart.config.classes = ["vx-chart", f"chart-{name}", f"chart-{size}"]
    chart.add_xml_filter(lambda root: clean_svg(root, label))
    return Markup(chart.render(is_unicode=True))


def clean_svg(root: Any, label: str) -> Any:
    """Strip what a strict CSP refuses, and what only pygal's JavaScript would use.

    Works on xml.etree and lxml trees alike (pygal uses lxml when it is installed).
    """
    parents = {child: parent for parent in root.iter() for child in parent}
    doomed = []
    for element in root.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        classes = set((element.get("class") or "").split()) if tag else set()
        if not tag:  # comments ("Generated with pygal … on <date>") and processing instructions
            doomed.append(element)
        elif tag in ("style", "script", "desc") or "tooltip-overlay" in classes:
            doomed.append(element)
        else:
            element.attrib.pop("style", None)
            element.attrib.pop("id", None)
            if "tooltip-trigger" in classes:
                element.set("class", " ".join(sorted(classes - {"tooltip-trigger"})))
    for element in doomed:
        parent = parents.get(element)
        if parent is not None:
            parent.remove(element)
    for element in root:
        if element.tag == "title":
            element.text = label
            break
    root.set("role", "img")
    root.set("aria-label", label)
    root.attrib.pop("id", None)
    return root
