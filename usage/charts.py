"""Daily bar charts of the reports as SVG geometry, drawn by the server (no script: the
Content-Security-Policy allows none inline, and the page works without JavaScript).

A chart is one bar per day, stacked by series (a call type, a payer...), each series in its
own colour, with a y axis of round ticks, a few date ticks on the x axis and a legend. The
numbers are the template's to place; the SVG's coordinates are never localized.

The viewBox is small (360 wide) and scales uniformly with the card, so the tick labels keep
a readable size from a 390 px phone to a wide screen.
"""

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from babel.dates import format_date

# Distinct hues of the admin center's palette, each at least 3:1 against white.
PALETTE = ("#0f6cbd", "#c239b3", "#107c10", "#ca5010", "#5c2e91", "#038387", "#986f0b",
           "#d13438", "#4f6bed", "#69797e")
WIDTH, HEIGHT = 360, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 10, 24
Y_TICKS = 4


@dataclass(frozen=True)
class Series:
    key: str
    name: str
    values: list  # one per day, numbers (int or Decimal)


def _value_scale(peak: float, length: float, integer: bool, tick_fmt):
    """(units of length per unit of value, [(distance from the axis's origin, tick label)])
    of a value axis `length` long that shows 0 to `peak` in round steps."""
    step = _nice_step(peak, integer)
    top_value = step * max(1, math.ceil(peak / step)) if peak else step * Y_TICKS
    scale = length / top_value
    marks = []
    value = 0.0
    while value <= top_value + step / 1000:
        marks.append((value * scale, tick_fmt(_as_number(value, integer))))
        value += step
    return scale, marks


def _nice_step(peak: float, integer: bool) -> float:
    raw = peak / Y_TICKS if peak > 0 else 1
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        step = m * magnitude
        if step >= raw:
            break
    if integer:
        step = max(1, math.ceil(step))
    return step


def _x_tick_indexes(n: int) -> list[int]:
    """At most 7 ticks: every day for a week, else evenly spread, first and last included."""
    if n <= 7:
        return list(range(n))
    count = 5
    return sorted({round(i * (n - 1) / (count - 1)) for i in range(count)})


def daily_chart(*, key: str, days: list[date], series: list[Series], label: str,
                description: str, fmt, tick_fmt, locale: str, integer: bool = False) -> dict:
    """The template's data for one chart (usage/reports/_chart.html). `fmt` formats a value
    for people (titles, the data table), `tick_fmt` an axis tick."""
    n = len(days)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    totals = [sum((s.values[i] for s in series), start=0) for i in range(n)]
    peak = float(max(totals)) if totals else 0.0
    scale, marks = _value_scale(peak, plot_h, integer, tick_fmt)
    y_ticks = [{"y": round(TOP + plot_h - at, 2), "label": label} for at, label in marks]
    slot = plot_w / max(n, 1)
    bar_w = max(slot * 0.7, 1)
    colours = {s.key: PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}
    bars = []
    for i, day in enumerate(days):
        base = TOP + plot_h
        x = LEFT + i * slot + (slot - bar_w) / 2
        day_text = format_date(day, "d MMM y", locale=locale)
        for s in series:
            v = s.values[i]
            if not v:
                continue
            h = float(v) * scale
            base -= h
            bars.append({"x": round(x, 2), "y": round(base, 2), "w": round(bar_w, 2),
                         "h": round(h, 2), "fill": colours[s.key],
                         "title": f"{day_text} · {s.name}: {fmt(v)} "
                                  f"({fmt(totals[i])})" if len(series) > 1
                         else f"{day_text}: {fmt(v)}"})
    x_ticks = [{"x": round(LEFT + i * slot + slot / 2, 2),
                "label": format_date(days[i], "d MMM", locale=locale)}
               for i in _x_tick_indexes(n)]
    return {
        "key": key, "label": label, "description": description,
        "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT,
        "top": TOP, "bottom": TOP + plot_h, "x_label_y": HEIGHT - 6,
        "y_ticks": y_ticks, "x_ticks": x_ticks, "bars": bars,
        "legend": [{"name": s.name, "fill": colours[s.key]} for s in series],
        "peak": fmt(max(totals) if totals else 0),
        "first": days[0] if days else None, "last": days[-1] if days else None,
        "series_names": [s.name for s in series],
        "table": [(day, [fmt(s.values[i]) for s in series], fmt(totals[i]))
                  for i, day in enumerate(days)],
    }


def _as_number(value: float, integer: bool):
    if integer:
        return int(round(value))
    return Decimal(str(round(value, 6))).normalize()


# Horizontal bars, one per category (a country...), for the charts whose categories are
# names too long for a date axis: the names sit left of the bars, the value ticks below.
H_LEFT, H_ROW, H_BAR, H_TOP, H_BOTTOM = 104, 26, 14, 6, 22


@dataclass(frozen=True)
class Category:
    key: str
    name: str
    capacity: int | Decimal | None = None  # drawn as a light track behind the bar


def category_chart(*, key: str, categories: list[Category], series: list[Series], label: str,
                   description: str, fmt, tick_fmt, capacity_name: str = "",
                   integer: bool = True) -> dict:
    """The template's data for one horizontal chart (usage/_category_chart.html): per
    category, the series' values stacked left to right in their colours, over a light track
    of the category's capacity when it has one. `series[i].values` follow `categories`."""
    n = len(categories)
    plot_w = WIDTH - H_LEFT - RIGHT
    plot_h = max(n, 1) * H_ROW
    height = H_TOP + plot_h + H_BOTTOM
    totals = [sum((s.values[i] for s in series), start=0) for i in range(n)]
    peak = float(max([*totals, *(c.capacity or 0 for c in categories)], default=0))
    scale, marks = _value_scale(peak, plot_w, integer, tick_fmt)
    ticks = [{"x": round(H_LEFT + at, 2), "label": label} for at, label in marks]
    colours = {s.key: PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}
    rows = []
    for i, cat in enumerate(categories):
        y = H_TOP + i * H_ROW + (H_ROW - H_BAR) / 2
        track = None
        if cat.capacity:
            track = {"w": round(float(cat.capacity) * scale, 2),
                     "title": f"{cat.name} · {capacity_name}: {fmt(cat.capacity)}"}
        bars, x = [], float(H_LEFT)
        for s in series:
            v = s.values[i]
            if not v:
                continue
            w = float(v) * scale
            bars.append({"x": round(x, 2), "w": round(w, 2), "fill": colours[s.key],
                         "title": f"{cat.name} · {s.name}: {fmt(v)}"})
            x += w
        rows.append({"name": cat.name, "y": round(y, 2), "h": H_BAR,
                     "label_y": round(y + H_BAR / 2, 2), "track": track, "bars": bars})
    legend = [{"name": s.name, "fill": colours[s.key]} for s in series]
    has_capacity = any(c.capacity for c in categories)
    return {
        "key": key, "label": label, "description": description,
        "width": WIDTH, "height": height, "left": H_LEFT, "right": WIDTH - RIGHT,
        "top": H_TOP, "bottom": H_TOP + plot_h, "x_label_y": height - 6,
        "x_ticks": ticks, "rows": rows, "legend": legend,
        "capacity_name": capacity_name if has_capacity else "",
        "peak": fmt(max(totals) if totals else 0),
        "series_names": [s.name for s in series],
        "table": [(cat.name, [fmt(s.values[i]) for s in series], fmt(totals[i]),
                   fmt(cat.capacity) if cat.capacity is not None else "")
                  for i, cat in enumerate(categories)],
    }
