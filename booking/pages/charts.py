"""Charts drawn on the server as SVG: no script, no outside assets, and each one readable by a
screen reader (role="img" with a title and a description); the page adds a data table.

Only presentation attributes are used (fill, stroke…), never `style`, so the strict CSP holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

BAR = "#0b4f8a"
AXIS = "#4a4a4a"
TEXT = "#1b1b1b"
# From light to dark blue; the darkest step still reads against white text-free cells.
RAMP = ("#f2f6fa", "#d3e2f0", "#a9c6e2", "#74a3cf", "#3f7fba", "#0b4f8a")


@dataclass(frozen=True)
class Point:
    label: str
    value: float | None  # 0..1 for utilisation; None when the premises was closed


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{round(value * 100)} %"


def _open(width: int, height: int, chart_id: str, title: str, description: str) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>'
    )


# Axis labels: 12 px text is about 7 px a character; a rotated label needs about 16 px of
# width whatever its length. Rotation and thinning are chosen from these, so labels never
# overlap however many columns there are (12 weeks at desktop width used to run together).
CHAR_WIDTH, LABEL_GAP, ROTATED_PITCH = 7.0, 8.0, 16.0


def axis_labels(labels: Sequence[str], step: float) -> tuple[bool, int]:
    """(rotate the labels?, label every n-th column) for columns `step` px apart."""
    longest = max((len(label) for label in labels), default=0) * CHAR_WIDTH
    if longest + LABEL_GAP <= step:
        return False, 1
    return True, max(1, math.ceil(ROTATED_PITCH / step))


def column_chart(chart_id: str, title: str, description: str, points: Sequence[Point]) -> Markup:
    """Vertical bars of 0..100 % with a labelled axis; long labels are turned 45 degrees
    and, where columns are narrow, only every n-th is written (each bar keeps its title)."""
    width, left, top, plot_h = 720, 44, 12, 208
    step = (width - left - 8) / max(len(points), 1)
    rotate, label_every = axis_labels([p.label for p in points], step)
    longest = max((len(p.label) for p in points), default=0) * CHAR_WIDTH
    bottom = round(longest * 0.71 + 24) if rotate else 40  # sin 45° of the longest label
    height = top + plot_h + bottom
    parts = [_open(width, height, chart_id, title, description)]
    for pct in (0, 25, 50, 75, 100):
        y = top + plot_h * (1 - pct / 100)
        parts.append(
            f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c9ced4" '
            f'stroke-width="1"/><text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="12" fill="{TEXT}">{pct} %</text>'
        )
    for n, point in enumerate(points):
        x = left + n * step
        value = point.value or 0.0
        bar_h = plot_h * min(max(value, 0.0), 1.0)
        parts.append(
            f'<rect x="{x + step * 0.15:.1f}" y="{top + plot_h - bar_h:.1f}" '
            f'width="{step * 0.7:.1f}" height="{bar_h:.1f}" fill="{BAR}">'
            f"<title>{escape(point.label)}: {_percent(point.value)}</title></rect>"
        )
        if n % label_every:
            continue
        cx, y = x + step / 2, top + plot_h + 16
        if rotate:
            parts.append(
                f'<text class="axis-label" x="{cx + 4:.1f}" y="{y:.1f}" text-anchor="end" '
                f'transform="rotate(-45 {cx + 4:.1f} {y:.1f})" font-size="12" fill="{TEXT}">'
                f"{escape(point.label)}</text>"
            )
        else:
            parts.append(
                f'<text class="axis-label" x="{cx:.1f}" y="{y:.1f}" text-anchor="middle" '
                f'font-size="12" fill="{TEXT}">{escape(point.label)}</text>'
            )
    parts.append(
        f'<line x1="{left}" x2="{width - 8}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="{AXIS}" stroke-width="1.5"/></svg>'
    )
    return Markup("".join(parts))


def bar_chart(chart_id: str, title: str, description: str, points: Sequence[Point]) -> Markup:
    """Horizontal bars with the label on the left and the value on the right."""
    row_h, left, width = 30, 150, 720
    height = row_h * max(len(points), 1) + 10
    plot_w = width - left - 70
    parts = [_open(width, height, chart_id, title, description)]
    for n, point in enumerate(points):
        y = 5 + n * row_h
        bar_w = plot_w * min(max(point.value or 0.0, 0.0), 1.0)
        parts.append(
            f'<text x="{left - 8}" y="{y + 19}" text-anchor="end" font-size="13" '
            f'fill="{TEXT}">{escape(point.label)}</text>'
            f'<rect x="{left}" y="{y + 4}" width="{bar_w:.1f}" height="{row_h - 10}" '
            f'fill="{BAR}"/><text x="{left + bar_w + 6:.1f}" y="{y + 19}" font-size="13" '
            f'fill="{TEXT}">{_percent(point.value)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def heatmap(
    chart_id: str,
    title: str,
    description: str,
    rows: Sequence[str],
    columns: Sequence[int],
    values: dict[tuple[str, int], float | None],
    row_names: dict[str, str],
) -> Markup:
    """Weekdays × hours, darker for busier; cells carry their value as a tooltip title."""
    cell_w, cell_h, left, top = 26, 26, 110, 24
    width = left + cell_w * max(len(columns), 1) + 8
    height = top + cell_h * len(rows) + 8
    parts = [_open(width, height, chart_id, title, description)]
    for m, hour in enumerate(columns):
        parts.append(
            f'<text x="{left + m * cell_w + cell_w / 2:.1f}" y="{top - 8}" text-anchor="middle" '
            f'font-size="11" fill="{TEXT}">{hour:02d}</text>'
        )
    for n, row in enumerate(rows):
        y = top + n * cell_h
        parts.append(
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" font-size="12" '
            f'fill="{TEXT}">{escape(row_names.get(row, row))}</text>'
        )
        for m, hour in enumerate(columns):
            value = values.get((row, hour))
            if value is None:
                fill = "#ffffff"
            else:
                fill = RAMP[min(int(value * (len(RAMP) - 1) + 0.5), len(RAMP) - 1)]
            parts.append(
                f'<rect x="{left + m * cell_w}" y="{y}" width="{cell_w - 2}" '
                f'height="{cell_h - 2}" fill="{fill}" stroke="#c9ced4" stroke-width="1">'
                f"<title>{escape(row_names.get(row, row))} {hour:02d}: "
                f"{_percent(value)}</title></rect>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))
