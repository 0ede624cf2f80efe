"""The server-drawn waveform: one bar per peak, CSP-safe markup, and peaks from real audio."""

from __future__ import annotations

import io
import wave
import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from dashboard.audio import PEAK_COUNT, InvalidAudio, waveform_peaks
from dashboard.generations.waveform import MIN_BAR_HEIGHT, waveform_svg
from tests import factories

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: Markup) -> ET.Element:
    return ET.fromstring(str(svg))


def bars(root: ET.Element) -> list[ET.Element]:
    group = root.find(f"{SVG}defs/{SVG}g")
    assert group is not None
    return [r for r in group.findall(f"{SVG}rect") if r.get("class") != "waveform-flat"]


def test_one_rounded_bar_per_peak_mirrored_around_the_middle():
    peaks = [(i * 7) % 101 for i in range(PEAK_COUNT)]
    root = parse(waveform_svg(peaks, width=640, height=100, bar_gap=1))
    drawn = bars(root)
    assert len(drawn) == PEAK_COUNT
    assert root.get("viewBox") == "0 0 640 100"
    assert root.get("preserveAspectRatio") == "none"
    for peak, rect in zip(peaks, drawn, strict=True):
        height, y = float(rect.get("height")), float(rect.get("y"))
        assert height == pytest.approx(max(peak, MIN_BAR_HEIGHT), abs=0.01)
        assert y + height / 2 == pytest.approx(50, abs=0.01)  # centred: mirrored
        assert float(rect.get("rx")) == pytest.approx(float(rect.get("width")) / 2, abs=0.01)
    # Bars sit left to right in order, each inside its slot, with a gap between them.
    xs = [float(r.get("x")) for r in drawn]
    assert xs == sorted(xs) and xs[0] >= 0
    assert xs[-1] + float(drawn[-1].get("width")) <= 640
    assert float(drawn[0].get("width")) == pytest.approx(3)


def test_heights_are_proportional_to_the_peaks():
    drawn = bars(parse(waveform_svg([100, 50, 25, 10], height=80)))
    heights = [float(r.get("height")) for r in drawn]
    assert heights == pytest.approx([80, 40, 20, 8])


def test_out_of_range_peaks_are_clamped():
    heights = [float(r.get("height")) for r in bars(parse(waveform_svg([-5, 250], height=50)))]
    assert heights == pytest.approx([MIN_BAR_HEIGHT, 50])


def test_two_layers_share_the_bars_and_progress_is_an_attribute():
    svg = waveform_svg([10, 90, 40], dom_id="wave-1")
    root = parse(svg)
    uses = root.findall(f"{SVG}use")
    assert [u.get("class") for u in uses] == ["waveform-unplayed", "waveform-played"]
    assert {u.get("href") for u in uses} == {"#wave-1-bars"}
    assert uses[1].get("clip-path") == "url(#wave-1-clip)"
    clip = root.find(f"{SVG}defs/{SVG}clipPath[@id='wave-1-clip']/{SVG}rect")
    assert clip is not None and clip.get("data-waveform-progress") == ""
    assert clip.get("width") == "0"


def test_markup_is_safe_under_a_strict_csp_and_accessible():
    svg = waveform_svg([50] * PEAK_COUNT, label="Speech")
    assert isinstance(svg, Markup)
    assert "style=" not in svg and "<style" not in svg and "<script" not in svg
    root = parse(svg)
    assert root.get("role") == "img" and root.get("aria-label") == "Speech"
    assert root.get("focusable") == "false"


def test_label_and_id_are_escaped():
    svg = waveform_svg([1, 2], label='Ann <b>"&"</b>', dom_id='x" onload="alert(1)')
    assert 'aria-label="Ann &lt;b&gt;&#34;&amp;&#34;&lt;/b&gt;"' in svg
    assert 'onload="' not in svg
    assert parse(svg).get("aria-label") == 'Ann <b>"&"</b>'


def test_ids_differ_between_waveforms_unless_given():
    first, second = (parse(waveform_svg([1])) for _ in range(2))
    ids = [r.find(f"{SVG}defs/{SVG}g").get("id") for r in (first, second)]
    assert ids[0] != ids[1]


@pytest.mark.parametrize("peaks", [None, []], ids=["none", "empty"])
def test_missing_peaks_draw_a_flat_line_the_player_can_still_colour(peaks):
    root = parse(waveform_svg(peaks, width=640, height=96))
    assert bars(root) == []
    flat = root.find(f"{SVG}defs/{SVG}g/{SVG}rect[@class='waveform-flat']")
    assert flat is not None
    assert float(flat.get("width")) == 640
    assert float(flat.get("y")) + float(flat.get("height")) / 2 == pytest.approx(48)
    assert len(root.findall(f"{SVG}use")) == 2


def test_peaks_of_real_speech():
    wav, _duration_ms = factories.speech_sample("Peaks from real speech, then a pause.")
    peaks = waveform_peaks(wav)
    assert len(peaks) == PEAK_COUNT
    assert all(isinstance(p, int) and 0 <= p <= 100 for p in peaks)
    assert max(peaks) == 100
    assert min(peaks) < 20  # the gaps between words are quiet
    assert len(bars(parse(waveform_svg(peaks)))) == PEAK_COUNT


def silence(frames: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * frames)
    return buffer.getvalue()


def test_peaks_of_silence_are_zero():
    assert waveform_peaks(silence(8000)) == [0] * PEAK_COUNT


def test_peaks_of_garbage_are_refused():
    with pytest.raises(InvalidAudio):
        waveform_peaks(b"not audio at all")
