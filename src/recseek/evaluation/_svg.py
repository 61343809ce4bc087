"""Small inline-SVG charts for reports: lines, horizontal bars with intervals, box plots.

Each function returns one ``<svg>`` element as text, with ``role="img"``, a
``<title>`` and a ``<desc>`` naming what it shows (screen readers read them), and
no external reference of any kind, so a report stays one self-contained file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha1
from html import escape

__all__ = ["BoxStats", "PALETTE", "bar_chart", "box_chart", "line_chart", "nice_ticks"]

#: Series colours (Okabe & Ito's colour-blind-safe palette, then greys).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#8C6D00", "#000000",
           "#777777", "#B0B0B0")

_FONT = 12
_CHAR = 7.4  # generous width of one character at _FONT px (legends must not be cut)


def colour(i: int) -> str:
    """Colour of the i-th series."""
    return PALETTE[i % len(PALETTE)]


def nice_ticks(low: float, high: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering ``[low, high]`` (steps of 1, 2 or 5 x 10^e)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) if low else 1.0)
    raw = (high - low) / max(1, n)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(low / step) * step
    ticks = []
    v = start
    while v <= high + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    if ticks[-1] < high:
        ticks.append(round(v, 12))
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
    return f"{v:.3g}"


class _Canvas:
    """An SVG under construction with a plot area and linear axes."""

    def __init__(self, title: str, desc: str, width: int, height: int, left: int, right: int = 16,
                 top: int = 30, bottom: int = 44) -> None:
        # the same chart gets the same ids in every rendering (reports are reproducible)
        self.uid = "svg" + sha1(f"{title}\n{desc}".encode()).hexdigest()[:12]
        self.w, self.h = width, height
        self.x0, self.x1 = left, width - right
        self.y0, self.y1 = top, height - bottom
        self.parts: list[str] = [
            f'<svg class="panel" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-labelledby="{self.uid}t {self.uid}d">',
            f'<title id="{self.uid}t">{escape(title)}</title><desc id="{self.uid}d">{escape(desc)}</desc>',
            f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
            f'<text x="{width / 2:.1f}" y="18" text-anchor="middle" font-size="13" font-weight="600">'
            f"{escape(title)}</text>",
        ]

    def add(self, s: str) -> None:
        self.parts.append(s)

    def text(self, x: float, y: float, s: str, anchor: str = "middle", size: int = _FONT, extra: str = "") -> None:
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"{extra}>{escape(s)}</text>')

    def finish(self) -> str:
        return "".join(self.parts) + "</svg>"


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _legend(c: _Canvas, labels: Sequence[str], x: float, y: float) -> None:
    for i, label in enumerate(labels):
        yy = y + i * 16
        c.add(f'<rect x="{x:.1f}" y="{yy - 9:.1f}" width="12" height="12" fill="{colour(i)}"/>')
        c.text(x + 17, yy + 1, label, anchor="start")


def _y_axis(c: _Canvas, ticks: Sequence[float], sy, label: str) -> None:
    for t in ticks:
        y = sy(t)
        c.add(f'<line x1="{c.x0}" x2="{c.x1}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        c.text(c.x0 - 6, y + 4, _fmt(t), anchor="end")
    c.add(f'<line x1="{c.x0}" x2="{c.x0}" y1="{c.y0}" y2="{c.y1}" stroke="#333"/>')
    cy = (c.y0 + c.y1) / 2
    c.text(14, cy, label, extra=f' transform="rotate(-90 14 {cy:.1f})"')


def line_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str,
    desc: str,
    reference: tuple[str, Sequence[float], Sequence[float]] | None = None,
    width: int = 560,
    height: int = 330,
    markers: bool = True,
) -> str:
    """Lines of ``(label, xs, ys)``, with an optional dashed grey ``reference`` line."""
    every = list(series) + ([reference] if reference else [])
    xs = [x for _, sx, _ in every for x in sx]
    ys = [y for _, _, sy in every for y in sy if math.isfinite(y)]
    labels = [s[0] for s in series]
    legend_w = int(min(220, 24 + _CHAR * max([len(s) for s in labels + ([reference[0]] if reference else [])] + [4])))
    c = _Canvas(title, desc, width + legend_w, height, left=58, right=legend_w + 14)
    xt = nice_ticks(min(xs), max(xs)) if max(xs) - min(xs) > 20 else sorted(set(xs))
    yt = nice_ticks(min(0.0, min(ys, default=0.0)), max(ys, default=1.0))
    sx = _scale(min(xt[0], min(xs)), max(xt[-1], max(xs)), c.x0, c.x1)
    sy = _scale(yt[0], yt[-1], c.y1, c.y0)
    _y_axis(c, yt, sy, ylabel)
    c.add(f'<line x1="{c.x0}" x2="{c.x1}" y1="{c.y1}" y2="{c.y1}" stroke="#333"/>')
    for t in xt:
        c.text(sx(t), c.y1 + 16, _fmt(t))
    c.text((c.x0 + c.x1) / 2, c.y1 + 34, xlabel)
    if reference:
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(reference[1], reference[2], strict=True))
        c.add(f'<polyline points="{pts}" fill="none" stroke="#888" stroke-width="1.5" stroke-dasharray="5 4"/>')
    for i, (label, sxs, sys_) in enumerate(series):
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(sxs, sys_, strict=True) if math.isfinite(y))
        c.add(f'<polyline class="series" points="{pts}" fill="none" stroke="{colour(i)}" stroke-width="2">'
              f"<title>{escape(label)}</title></polyline>")
        if markers:
            for x, y in zip(sxs, sys_, strict=True):
                if math.isfinite(y):
                    c.add(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.8" fill="{colour(i)}">'
                          f"<title>{escape(label)}: {_fmt(x)} → {y:.4f}</title></circle>")
    _legend(c, labels, c.x1 + 14, c.y0 + 8)
    if reference:
        ly = c.y0 + 8 + len(labels) * 16
        c.add(f'<line x1="{c.x1 + 14}" x2="{c.x1 + 26}" y1="{ly - 3}" y2="{ly - 3}" stroke="#888" '
              'stroke-width="1.5" stroke-dasharray="4 3"/>')
        c.text(c.x1 + 31, ly + 1, reference[0], anchor="start")
    return c.finish()


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    xlabel: str,
    desc: str,
    intervals: Sequence[tuple[float, float]] | None = None,
    highlight: int | None = None,
    width: int = 420,
) -> str:
    """Horizontal bars, one per label, with optional interval whiskers (e.g. a 95% CI)."""
    bar_h, gap = 18, 8
    left = int(min(170, 16 + _CHAR * max(len(s) for s in labels)))
    height = 30 + 44 + len(labels) * (bar_h + gap)
    c = _Canvas(title, desc, width, height, left=left, right=44)
    top = max([v for v in values if math.isfinite(v)] + [hi for _, hi in (intervals or [])] + [0.0])
    ticks = nice_ticks(0.0, top if top > 0 else 1.0, 4)
    sx = _scale(ticks[0], ticks[-1], c.x0, c.x1)
    for t in ticks:
        x = sx(t)
        c.add(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{c.y0}" y2="{c.y1}" stroke="#e3e3e3"/>')
        c.text(x, c.y1 + 16, _fmt(t))
    c.text((c.x0 + c.x1) / 2, c.y1 + 34, xlabel)
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = c.y0 + gap / 2 + i * (bar_h + gap)
        weight = ' font-weight="600"' if i == highlight else ""
        c.text(c.x0 - 6, y + bar_h * 0.7, label, anchor="end", extra=weight)
        if not math.isfinite(v):
            c.text(c.x0 + 4, y + bar_h * 0.7, "n/a", anchor="start")
            continue
        c.add(f'<rect class="bar" x="{c.x0}" y="{y:.1f}" width="{max(0.5, sx(v) - c.x0):.1f}" height="{bar_h}" '
              f'fill="{colour(i)}"><title>{escape(label)}: {v:.4g}</title></rect>')
        if intervals is not None:
            lo, hi = intervals[i]
            ym = y + bar_h / 2
            c.add(f'<path d="M{sx(lo):.1f} {ym:.1f}H{sx(hi):.1f}M{sx(lo):.1f} {ym - 5:.1f}V{ym + 5:.1f}'
                  f'M{sx(hi):.1f} {ym - 5:.1f}V{ym + 5:.1f}" stroke="#222" stroke-width="1.4" fill="none"/>')
        c.text(max(sx(v), sx(intervals[i][1]) if intervals else 0) + 4, y + bar_h * 0.7, f"{v:.3g}", anchor="start",
               size=11)
    c.add(f'<line x1="{c.x0}" x2="{c.x0}" y1="{c.y0}" y2="{c.y1}" stroke="#333"/>')
    return c.finish()


@dataclass(frozen=True)
class BoxStats:
    """Five-number summary (whiskers at the 5th and 95th percentiles) and the mean."""

    low: float
    q1: float
    median: float
    q3: float
    high: float
    mean: float


def box_chart(
    title: str,
    groups: Sequence[str],
    series: Sequence[tuple[str, Sequence[BoxStats | None]]],
    ylabel: str,
    desc: str,
    width: int = 760,
    height: int = 340,
) -> str:
    """Side-by-side box plots: one cluster per group, one box per series (``None`` = empty)."""
    labels = [s[0] for s in series]
    legend_w = int(min(220, 24 + _CHAR * max(len(s) for s in labels)))
    c = _Canvas(title, desc, width + legend_w, height, left=58, right=legend_w + 14, bottom=52)
    boxes = [b for _, bs in series for b in bs if b is not None]
    top = max([b.high for b in boxes] + [b.mean for b in boxes] + [1e-9])
    yt = nice_ticks(min([0.0] + [b.low for b in boxes]), top)
    sy = _scale(yt[0], yt[-1], c.y1, c.y0)
    _y_axis(c, yt, sy, ylabel)
    c.add(f'<line x1="{c.x0}" x2="{c.x1}" y1="{c.y1}" y2="{c.y1}" stroke="#333"/>')
    slot = (c.x1 - c.x0) / max(1, len(groups))
    bw = min(26.0, slot * 0.8 / max(1, len(series)))
    for g, group in enumerate(groups):
        gx = c.x0 + g * slot
        c.text(gx + slot / 2, c.y1 + 18, group)
        for s, (label, stats) in enumerate(series):
            b = stats[g]
            if b is None:
                continue
            x = gx + slot * 0.1 + s * (slot * 0.8 / len(series)) + (slot * 0.8 / len(series) - bw) / 2
            xm = x + bw / 2
            col = colour(s)
            tip = (f"{label}, {group}: median {b.median:.3g}, quartiles {b.q1:.3g}–{b.q3:.3g}, "
                   f"mean {b.mean:.3g}")
            c.add(f'<g class="box"><title>{escape(tip)}</title>'
                  f'<path d="M{xm:.1f} {sy(b.low):.1f}V{sy(b.q1):.1f}M{xm:.1f} {sy(b.q3):.1f}V{sy(b.high):.1f}'
                  f'M{x + bw * 0.25:.1f} {sy(b.low):.1f}H{x + bw * 0.75:.1f}M{x + bw * 0.25:.1f} {sy(b.high):.1f}'
                  f'H{x + bw * 0.75:.1f}" stroke="{col}" stroke-width="1.4" fill="none"/>'
                  f'<rect x="{x:.1f}" y="{sy(b.q3):.1f}" width="{bw:.1f}" '
                  f'height="{max(1.0, sy(b.q1) - sy(b.q3)):.1f}" fill="{col}" fill-opacity="0.35" stroke="{col}"/>'
                  f'<line x1="{x:.1f}" x2="{x + bw:.1f}" y1="{sy(b.median):.1f}" y2="{sy(b.median):.1f}" '
                  f'stroke="{col}" stroke-width="2.5"/>'
                  f'<circle cx="{xm:.1f}" cy="{sy(b.mean):.1f}" r="3" fill="#fff" stroke="#222"/></g>')
    c.text((c.x0 + c.x1) / 2, c.y1 + 40, "users grouped by number of training interactions (quartiles)")
    _legend(c, labels, c.x1 + 14, c.y0 + 8)
    ly = c.y0 + 8 + len(labels) * 16 + 6
    c.add(f'<circle cx="{c.x1 + 20}" cy="{ly - 3}" r="3" fill="#fff" stroke="#222"/>')
    c.text(c.x1 + 31, ly + 1, "mean", anchor="start")
    return c.finish()
