"""The report's three charts as PNG files, drawn with Pillow (matplotlib's own image library).

matplotlib took longer to import and lay out three small charts (about 1.2 s of CPU) than DuckDB takes to compare a
million records, so the charts are drawn here: matplotlib's look (its default font, DejaVu Sans, sizes, colours, tick
placement) on a canvas drawn at twice the size and scaled down, which smooths lines and text.

The font ships with the package (``fonts/``: DejaVu Sans cut to Latin-1, Latin Extended-A and the punctuation and
minus sign the labels use; its licence beside it), so the charts look the same, glyph for glyph, with or without
matplotlib; Pillow's own default font has no U+2212 MINUS SIGN and would draw every minus as a box.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, TypeVar

DPI = 100
SUPERSAMPLE = 2
BLUE, ORANGE, GREEN, GREY = (31, 119, 180), (255, 127, 14), (44, 160, 44), (128, 128, 128)
_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)
Target = TypeVar("Target", str, BinaryIO)
"""Where a chart is written: a file name, or a binary file (PNG bytes in memory)."""
_HOUR_STEPS = (1, 2, 3, 4, 6, 12, 24, 48, 72, 96, 168, 336, 672, 24 * 61, 24 * 183, 24 * 366, 24 * 731, 24 * 1827)
FONT = Path(__file__).parent / "fonts" / "DejaVuSans-subset.ttf"
"""The charts' font: DejaVu Sans (matplotlib's default) with the glyphs labels use, shipped as package data."""


def _pt(points: float) -> int:
    """Points to pixels of the supersampled canvas."""
    return max(1, round(points * DPI / 72 * SUPERSAMPLE))


_fonts = threading.local()


def _font(points: float):
    """DejaVu Sans at ``points``, read once per size and thread (charts are drawn side by side, and a FreeType face
    must not be used by two threads at once)."""
    loaded = _fonts.__dict__.setdefault("by_size", {})
    if points not in loaded:
        loaded[points] = _load_font(points)
    return loaded[points]


def _load_font(points: float):
    from PIL import ImageFont

    return ImageFont.truetype(FONT, _pt(points))


def nice_ticks(low: float, high: float, most: int) -> tuple[list[float], int]:
    """At most ``most`` round tick values in [low, high] (steps of 1, 2, 2.5 or 5 times a power of ten) and the
    decimals that show them."""
    span = high - low
    magnitude = 10 ** math.floor(math.log10(span / max(most - 1, 1)))
    for factor in _STEPS:
        step = factor * magnitude
        first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
        if last - first + 1 <= most or factor == _STEPS[-1]:  # the largest step when none fits
            break
    else:
        raise ValueError("no tick steps")  # unreachable: _STEPS is not empty
    decimals = max(0, -math.floor(math.log10(step) + 1e-9) + (1 if factor == 2.5 else 0))
    return [round(i * step, decimals + 2) for i in range(first, last + 1)], decimals


def _label(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", "\u2212")  # matplotlib's minus sign


class Chart:
    """One axes in a figure of ``width`` × ``height`` inches: linear axes (or hours on x), a frame, ticks, labels."""

    def __init__(self, width: float, height: float, x: tuple[float, float], y: tuple[float, float], *, title: str,
                 xlabel: str, ylabel: str, hours: bool = False) -> None:
        from PIL import Image, ImageDraw

        self.size = (round(width * DPI * SUPERSAMPLE), round(height * DPI * SUPERSAMPLE))
        self.image = Image.new("RGB", self.size, "white")
        self.draw = ImageDraw.Draw(self.image)
        self.font, self.title_font = _font(10), _font(12)
        self.x, self.y = _widen(*x, hours), _widen(*y)
        self.hours = hours
        self.yticks, ydecimals = nice_ticks(*self.y, 9)
        self.ytick_labels = [_label(v, ydecimals) for v in self.yticks]
        text_height = self._height()
        pad, tick = _pt(1.08 * 10), _pt(3.5)
        left = pad + text_height + _pt(4) + max(self._width(t) for t in self.ytick_labels) + _pt(3.5) + tick
        guess = (left, self.size[0] - pad)
        self.xticks, self.xtick_labels, self.offset = self._x_ticks(guess[1] - guess[0])
        bottom = pad + text_height + _pt(4) + text_height + _pt(3.5) + tick + (text_height + _pt(2) if self.offset else 0)
        right = pad + (self._width(self.xtick_labels[-1]) // 2 if self.xtick_labels else 0)
        top = pad + self._height(self.title_font) + _pt(6)
        self.box = (left, top, self.size[0] - right, self.size[1] - bottom)
        self._frame(title, xlabel, ylabel)

    def _x_ticks(self, pixels: float) -> tuple[list[float], list[str], str]:
        most = max(3, min(9, int(pixels / (self._width("0.000") * 1.8))))
        if not self.hours:
            ticks, decimals = nice_ticks(*self.x, most)
            return ticks, [_label(v, decimals) for v in ticks], ""
        low, high = self.x  # hours since the epoch
        step = next((s for s in _HOUR_STEPS if math.floor(high / s) - math.ceil(low / s) + 1 <= most), _HOUR_STEPS[-1])
        ticks = [float(h * step) for h in range(math.ceil(low / step), math.floor(high / step) + 1)]
        moments = [datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=t) for t in ticks]
        labels = [m.strftime("%b-%d") if m.hour == 0 else m.strftime("%H:%M") for m in moments]
        last = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=high)
        return ticks, labels, last.strftime("%Y-%b-%d") if step < 24 else last.strftime("%Y")

    def _width(self, text: str, font=None) -> int:
        box = (font or self.font).getbbox(text)  # whole pixels from these fonts; Pillow types them float
        return math.ceil(box[2] - box[0])

    def _height(self, font=None) -> int:
        """The height of a line of text (ascenders and descenders)."""
        box = (font or self.font).getbbox("Ag")
        return math.ceil(box[3] - box[1])

    def px(self, x: float, y: float) -> tuple[float, float]:
        left, top, right, bottom = self.box
        return (left + (x - self.x[0]) / (self.x[1] - self.x[0]) * (right - left),
                bottom - (y - self.y[0]) / (self.y[1] - self.y[0]) * (bottom - top))

    def _frame(self, title: str, xlabel: str, ylabel: str) -> None:
        from PIL import Image, ImageDraw

        left, top, right, bottom = self.box
        tick, ink = _pt(3.5), "black"
        for value, text in zip(self.xticks, self.xtick_labels, strict=True):
            x = self.px(value, self.y[0])[0]
            self.draw.line([(x, bottom), (x, bottom + tick)], fill=ink, width=_pt(0.8))
            self.draw.text((x, bottom + tick + _pt(3.5)), text, font=self.font, fill=ink, anchor="mt")
        for value, text in zip(self.yticks, self.ytick_labels, strict=True):
            y = self.px(self.x[0], value)[1]
            self.draw.line([(left - tick, y), (left, y)], fill=ink, width=_pt(0.8))
            self.draw.text((left - tick - _pt(3.5), y), text, font=self.font, fill=ink, anchor="rm")
        label_top = bottom + tick + _pt(3.5) + self._height()
        if self.offset:
            self.draw.text((right, label_top + _pt(2)), self.offset, font=self.font, fill=ink, anchor="rt")
        self.draw.text(((left + right) / 2, label_top + _pt(4)), xlabel, font=self.font, fill=ink, anchor="mt")
        self.draw.text(((left + right) / 2, top - _pt(6)), title, font=self.title_font, fill=ink, anchor="mb")
        width = max(1, self._width(ylabel))
        rotated = Image.new("L", (width + 4, self._height() + 8), 0)
        ImageDraw.Draw(rotated).text((2, 4), ylabel, font=self.font, fill=255, anchor="lt")
        rotated = rotated.rotate(90, expand=True)
        ytick_width = max(self._width(t) for t in self.ytick_labels)
        x = left - tick - _pt(3.5) - ytick_width - _pt(4) - rotated.size[0]
        self.image.paste(Image.new("RGB", rotated.size, ink), (round(x), round((top + bottom - rotated.size[1]) / 2)), rotated)

    def clip(self, draw: Callable[[object], None], opacity: float = 1.0) -> None:
        """Draw with ``draw(ImageDraw)`` on a layer, kept inside the axes box and laid over at ``opacity``."""
        from PIL import Image, ImageDraw

        layer = Image.new("RGBA", self.size, (0, 0, 0, 0))
        draw(ImageDraw.Draw(layer))
        left, top, right, bottom = (round(v) for v in self.box)
        inside = layer.crop((left, top, right, bottom))  # only the axes box is laid over: the rest stays as it is
        alpha = inside.getchannel("A")
        if opacity < 1:
            def faded(value: int) -> int:
                return round(value * opacity)
            alpha = alpha.point(faded)
        self.image.paste(inside.convert("RGB"), (left, top), alpha)

    def save(self, path: Target) -> Target:
        """Write the chart as a PNG to ``path`` (a file name or a binary file); returns ``path``."""
        self.draw.rectangle(self.box, outline="black", width=_pt(0.8))
        # reduce: each pixel the mean of 2 × 2
        self.image.reduce(SUPERSAMPLE).save(path, format="PNG", dpi=(DPI, DPI), compress_level=1)
        return path


def _widen(low: float, high: float, hours: bool = False) -> tuple[float, float]:
    """[low, high], or around the one value it holds: 5% of it (at least 0.01), or an hour each side."""
    if high - low > 1e-9 * max(1.0, abs(low), abs(high)):
        return low, high
    margin = 1.0 if hours else max(abs(low) * 0.05, 0.01)
    return low - margin, high + margin


def _margins(low: float, high: float, share: float = 0.05) -> tuple[float, float]:
    pad = (high - low) * share
    return low - pad, high + pad


def histogram(path: Target, bins: Sequence[tuple[float, float, int]], *, title: str, xlabel: str) -> Target:
    """Bars of (start, end, count), as matplotlib's ``bar`` with white edges."""
    low, high = bins[0][0], bins[-1][1]
    top = max(b[2] for b in bins) or 1
    chart = Chart(8, 4.5, _margins(low, high), (0, top * 1.05), title=title, xlabel=xlabel, ylabel="predictions")

    def bars(draw) -> None:
        for start, end, count in bins:
            if count:
                x0, y0 = chart.px(start, count)
                x1, y1 = chart.px(end, 0)
                x0, x1 = min(x0, x1 - _pt(3)), max(x1, x0 + _pt(3))  # one value only: a thin bar, not none
                draw.rectangle((x0, y0, x1, y1), fill=ORANGE + (255,), outline=(255, 255, 255, 255), width=_pt(0.8))

    chart.clip(bars)
    return chart.save(path)


def scatter(path: Target, points: Sequence[tuple[float, float]], *, title: str, xlabel: str, ylabel: str) -> Target:
    """Production (x) against shadow (y), translucent points, and the line of equal answers with its legend."""
    xs, ys = [p for p, _ in points], [s for _, s in points]
    low, high = min(xs + ys), max(xs + ys)
    chart = Chart(5.5, 5.5, _margins(min(xs), max(xs)), _margins(min(ys), max(ys)), title=title, xlabel=xlabel, ylabel=ylabel)
    radius = _pt(1)

    def line(draw) -> None:
        draw.line([chart.px(low, low), chart.px(high, high)], fill=GREY + (255,), width=_pt(1))

    def dots(draw) -> None:
        for x, y in points:
            cx, cy = chart.px(x, y)
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=BLUE + (255,))

    chart.clip(line)
    chart.clip(dots, opacity=0.75)  # matplotlib's alpha 0.4 where a few points overlap, as most do here
    left, top = chart.box[0] + _pt(5), chart.box[1] + _pt(5)
    text = "same answer"
    width, height = _pt(20) + _pt(6) + chart._width(text), chart._height() + _pt(8)
    chart.draw.rounded_rectangle((left, top, left + width + _pt(8), top + height), radius=_pt(2), fill="white",
                                 outline=(204, 204, 204), width=_pt(0.8))
    middle = top + height / 2
    chart.draw.line([(left + _pt(4), middle), (left + _pt(24), middle)], fill=GREY, width=_pt(1))
    chart.draw.text((left + _pt(30), middle), text, font=chart.font, fill="black", anchor="lm")
    return chart.save(path)


def hourly(path: Target, hours: Sequence[datetime], percents: Sequence[float], *, title: str) -> Target:
    """Agreement (%) per hour: a line with round markers, 0 to 105 %, hours (UTC) on x."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    xs = [(h - epoch).total_seconds() / 3600 for h in hours]
    chart = Chart(8, 4.5, _margins(min(xs), max(xs)), (0, 105), title=title, xlabel="hour (UTC)",
                  ylabel="label agreement (%)", hours=True)
    radius = _pt(1.5)

    def series(draw) -> None:
        corners = [chart.px(x, y) for x, y in zip(xs, percents, strict=True)]
        if len(corners) > 1:
            draw.line(corners, fill=GREEN + (255,), width=_pt(1.5), joint="curve")
        for cx, cy in corners:
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=GREEN + (255,))

    chart.clip(series)
    return chart.save(path)
