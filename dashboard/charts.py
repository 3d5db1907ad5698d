"""Bar charts drawn as inline SVG on the server, with no script and no network.

Horizontal positions are percentages of the chart's width and vertical ones
are pixels, so a chart fills a phone or a wide screen and its text keeps its
size. Colours come from CSS classes (static/css/dashboard.css), which follow
the page's light or dark scheme; the page's CSP allows no inline styles.
"""

import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.utils import formats
from django.utils.translation import gettext, pgettext

PLOT_TOP = 16
PLOT_HEIGHT = 150
AXIS_HEIGHT = 26
HEIGHT = PLOT_TOP + PLOT_HEIGHT + AXIS_HEIGHT
MAX_AXIS_LABELS = 5
GRID_LINES = 4
SERIES_CLASSES = 6


@dataclass(frozen=True)
class Series:
    name: str
    values: list
    decimals: int = 0


@dataclass(frozen=True)
class Bar:
    series: int
    series_name: str
    bucket: str
    value: str
    raw: float
    x: float
    width: float
    y: float
    height: float


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class AxisLabel:
    x: float
    label: str
    anchor: str


@dataclass
class Chart:
    """A bar chart (stacked when it has several series) and the table that stands in for it."""

    slug: str
    title: str
    labels: list[str]
    series: list[Series]
    summary: str = ""
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    axis: list[AxisLabel] = field(default_factory=list)
    height: int = HEIGHT
    plot_bottom: int = PLOT_TOP + PLOT_HEIGHT

    @property
    def legend(self):
        return [(index % SERIES_CLASSES, item.name) for index, item in enumerate(self.series)]

    @property
    def table_rows(self):
        """Return (label, [formatted value per series]) per bucket, for the fallback table."""
        return [
            (label, [number(item.values[index], item.decimals) for item in self.series])
            for index, label in enumerate(self.labels)
        ]

    @property
    def is_empty(self):
        return not any(value for item in self.series for value in item.values)


def number(value, decimals=0) -> str:
    """Format a figure in the active language, with digit grouping."""
    if value is None:
        return "–"
    if isinstance(value, Decimal | float) and decimals:
        return formats.number_format(value, decimals, use_l10n=True, force_grouping=True)
    return formats.number_format(round(value), 0, use_l10n=True, force_grouping=True)


def bucket_label(bucket, *, short=True) -> str:
    """Return a day as "Nov 28" (in the active language) or an hour as "14:00"."""
    if isinstance(bucket, datetime):
        return formats.date_format(bucket, "H:i")
    if short:
        return formats.date_format(bucket, pgettext("chart axis date", "M j"))
    return formats.date_format(bucket, "SHORT_DATE_FORMAT")


def nice_step(value: float, *, whole: bool) -> float:
    """Return the smallest 1, 2, 2.5 or 5 times a power of ten that is at least `value`.

    With `whole`, for counts, the step is a whole number and never 2.5 times one.
    """
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    steps = (1, 2, 5, 10) if whole else (1, 2, 2.5, 5, 10)
    for step in steps:
        if value <= step * power:
            chosen = step * power
            return max(1, round(chosen)) if whole else chosen
    return 10 * power


def step_decimals(step: float) -> int:
    """Return how many decimals show every multiple of `step` exactly, such as 3 for 0.025."""
    decimals = 0
    while decimals < 8 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-9:
        decimals += 1
    return decimals


def build(slug, title, buckets, series: list[Series], *, decimals=0) -> Chart:
    """Lay out the bars of `series` over `buckets`; several series stack in order.

    `decimals` is 0 for counts, whose grid lines then fall on whole numbers.
    """
    labels = [bucket_label(bucket) for bucket in buckets]
    full_labels = [bucket_label(bucket, short=False) for bucket in buckets]
    chart = Chart(slug=slug, title=title, labels=full_labels, series=series)
    count = len(buckets)
    if count == 0:
        return chart
    totals = [sum(float(item.values[index] or 0) for item in series) for index in range(count)]
    step = nice_step(max(totals) / GRID_LINES, whole=decimals == 0)
    top = step * GRID_LINES
    scale = PLOT_HEIGHT / top
    slot = 100 / count
    width = slot * 0.7

    for index in range(count):
        stacked = 0.0
        for series_index, item in enumerate(series):
            raw = float(item.values[index] or 0)
            if raw <= 0:
                continue
            height = max(1.0, raw * scale)
            y = PLOT_TOP + PLOT_HEIGHT - stacked - height
            stacked += height
            chart.bars.append(
                Bar(
                    series=series_index % SERIES_CLASSES,
                    series_name=item.name,
                    bucket=full_labels[index],
                    value=number(item.values[index], item.decimals),
                    raw=raw,
                    x=round(slot * index + (slot - width) / 2, 3),
                    width=round(width, 3),
                    y=round(y, 2),
                    height=round(height, 2),
                )
            )

    tick_decimals = step_decimals(step)
    for line in range(GRID_LINES + 1):
        value = step * line
        chart.ticks.append(
            Tick(
                y=round(PLOT_TOP + PLOT_HEIGHT - value * scale, 2),
                label=number(Decimal(repr(value)), tick_decimals)
                if tick_decimals
                else number(value),
            )
        )

    peak = max(range(count), key=lambda index: totals[index])
    chart.summary = gettext("%(total)s in all; the highest is %(peak)s, on %(label)s.") % {
        "total": number(sum(totals), decimals),
        "peak": number(totals[peak], decimals),
        "label": full_labels[peak],
    }

    every = max(1, math.ceil(count / MAX_AXIS_LABELS))
    shown = list(range(0, count, every))
    for index in shown:
        anchor = "start" if index == 0 else "middle"
        x = 0 if index == 0 else slot * (index + 0.5)
        chart.axis.append(AxisLabel(x=round(x, 3), label=labels[index], anchor=anchor))
    return chart
