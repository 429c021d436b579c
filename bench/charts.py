"""The benchmark's charts (issue 17): line charts drawn with matplotlib, written as SVG to
``docs/`` so the README can show a curve where a curve says more than a number.

One function, one look: every chart is a few named series against one x axis, with an
optional second y axis and horizontal reference lines (an aim, a baseline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on the bench machine or in CI

import matplotlib.pyplot as plt  # after the backend is chosen


@dataclass
class Series:
    label: str
    x: Sequence[float]
    y: Sequence[float]
    right: bool = False  # drawn against the second (right-hand) y axis
    style: str = "-o"


@dataclass
class Line:
    """A horizontal reference: an aim or a baseline."""

    label: str
    y: float
    right: bool = False


@dataclass
class Chart:
    title: str
    x_label: str
    y_label: str
    series: list[Series]
    y2_label: str = ""
    lines: list[Line] = field(default_factory=list)
    log_x: bool = False
    note: str = ""  # a line under the chart: the run it is from


def draw(chart: Chart, path: Path) -> Path:
    """Write ``chart`` as an SVG to ``path`` (parents created) and return the path."""
    plt.rcParams["svg.hashsalt"] = "dvr"  # stable ids: a re-run with the same figures is the same file
    plt.rcParams["svg.fonttype"] = "none"  # text stays text (smaller, searchable)
    figure, left = plt.subplots(figsize=(8, 4.5), dpi=100)
    right = left.twinx() if any(s.right for s in chart.series) or any(line.right for line in chart.lines) else None
    colours = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4)
    handles = []
    for s in chart.series:
        axis = right if s.right and right is not None else left
        (handle,) = axis.plot(list(s.x), list(s.y), s.style, label=s.label, color=next(colours), markersize=4)
        handles.append(handle)
    for line in chart.lines:
        axis = right if line.right and right is not None else left
        handles.append(axis.axhline(line.y, linestyle="--", linewidth=1, color=next(colours), label=line.label))
    left.set_title(chart.title)
    left.set_xlabel(chart.x_label)
    left.set_ylabel(chart.y_label)
    left.set_ylim(bottom=0)
    left.grid(True, alpha=0.3)
    if chart.log_x:
        left.set_xscale("log")
    if right is not None:
        right.set_ylabel(chart.y2_label)
        right.set_ylim(bottom=0)
    left.legend(handles=handles, loc="best", fontsize="small")
    if chart.note:
        figure.text(0.01, 0.01, chart.note, fontsize="x-small", color="#555")
    figure.tight_layout(rect=(0, 0.04 if chart.note else 0, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="svg", metadata={"Date": None})
    plt.close(figure)
    return path
