"""PNG charts: a server's players, CPU and RAM with its starts, stops and crashes; the host's
CPU and RAM. Drawn with matplotlib's Agg canvas: no display, no pyplot global state.

Each call makes its own Figure and drops it. matplotlib is not thread-safe, and the
services render in worker threads (`asyncio.to_thread`), so renders take turns on a lock.
The words on a chart come in `ChartLabels`, so the front end can pass them translated.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Literal, TypeVar

import numpy as np
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, MaxNLocator

from data.repositories.host_metrics import HostPoint
from data.repositories.telemetry import LifecycleMark, SeriesPoint

__all__ = ["ChartLabels", "render_host_chart", "render_server_chart"]

WIDTH_PX, HEIGHT_PX, DPI = 800, 600, 100
HOST_HEIGHT_PX = 400
GAP_FACTOR = 2.5
"""A hole longer than this many bins is a gap in the line (the server was down)."""

# Discord's dark theme, so the image sits well in an embed
_BACKGROUND = "#2b2d31"
_PANEL = "#313338"
_TEXT = "#dbdee1"
_GRID = "#3f4147"
_PLAYERS = "#5865f2"
_CPU = "#faa61a"
_RAM = "#3ba55c"
_MARKS = {"start": "#57f287", "stop": "#b5bac1", "crash": "#ed4245"}
_GIB = 1024.0**3
_MIB = 1024.0**2

_lock = threading.Lock()
_P = TypeVar("_P", SeriesPoint, HostPoint)


@dataclass(frozen=True, slots=True)
class ChartLabels:
    """The words drawn on a chart (English unless the caller passes translations)."""

    title: str = ""
    players: str = "Players"
    cpu: str = "CPU %"
    ram: str = "RAM"
    ram_total: str = "total"
    start: str = "start"
    stop: str = "stop"
    crash: str = "crash"
    no_data: str = "No data for this period"


def render_server_chart(
    points: Sequence[SeriesPoint],
    marks: Sequence[LifecycleMark],
    *,
    since: float,
    until: float,
    step: int,
    tz: tzinfo,
    labels: ChartLabels | None = None,
) -> bytes:
    """Players (peak per bin), CPU and RAM (average, with the peak as a band), and a
    vertical line for each start, stop and crash; PNG bytes."""
    words = labels or ChartLabels()
    with _lock:
        figure, axes = _figure(3, HEIGHT_PX, words.title)
        players_ax, cpu_ax, ram_ax = axes
        x = _with_gaps([p.ts for p in points], step)
        if points:
            peak_players = _values(points, x, lambda p: p.players_max)
            players_ax.plot(x, peak_players, color=_PLAYERS, drawstyle="steps-post", lw=1.4)
            players_ax.fill_between(
                x, 0, np.nan_to_num(peak_players), step="post", color=_PLAYERS, alpha=0.25
            )
            cpu = _values(points, x, lambda p: p.cpu_avg)
            _band(cpu_ax, x, cpu, _values(points, x, lambda p: p.cpu_max), _CPU)
            scale, unit = (_GIB, "GiB") if max(p.rss_max for p in points) >= _GIB else (_MIB, "MiB")
            ram_avg = _values(points, x, lambda p: p.rss_avg) / scale
            _band(ram_ax, x, ram_avg, _values(points, x, lambda p: p.rss_max) / scale, _RAM)
            ram_ax.set_ylabel(f"{words.ram} ({unit})")
        else:
            cpu_ax.text(
                0.5, 0.5, words.no_data, transform=cpu_ax.transAxes, ha="center", color=_TEXT
            )
            ram_ax.set_ylabel(words.ram)
        players_ax.set_ylabel(words.players)
        players_ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True, min_n_ticks=1))
        cpu_ax.set_ylabel(words.cpu)
        for ax in axes:
            ax.set_ylim(bottom=0)
            ax.set_ylim(top=max(ax.get_ylim()[1], 1))
        _draw_marks(axes, marks, words)
        _time_axis(axes, since, until, tz)
        return _png(figure)


def render_host_chart(
    points: Sequence[HostPoint],
    *,
    since: float,
    until: float,
    step: int,
    tz: tzinfo,
    labels: ChartLabels | None = None,
) -> bytes:
    """The machine's CPU (0-100 %) and used RAM against its total; PNG bytes."""
    words = labels or ChartLabels()
    with _lock:
        figure, axes = _figure(2, HOST_HEIGHT_PX, words.title)
        cpu_ax, ram_ax = axes
        x = _with_gaps([p.ts for p in points], step)
        if points:
            cpu = _values(points, x, lambda p: p.cpu_avg)
            _band(cpu_ax, x, cpu, _values(points, x, lambda p: p.cpu_max), _CPU)
            ram_ax.plot(x, _values(points, x, lambda p: p.ram_avg) / _GIB, color=_RAM, lw=1.2)
            total = max(p.ram_total for p in points) / _GIB
            ram_ax.axhline(total, color=_TEXT, lw=0.8, ls="--", label=words.ram_total)
            ram_ax.set_ylim(0, total * 1.05)
            ram_ax.legend(loc="lower left", fontsize=8, facecolor=_PANEL, labelcolor=_TEXT)
        else:
            cpu_ax.text(
                0.5, 0.5, words.no_data, transform=cpu_ax.transAxes, ha="center", color=_TEXT
            )
        cpu_ax.set_ylim(0, 100)
        cpu_ax.set_ylabel(words.cpu)
        ram_ax.set_ylabel(f"{words.ram} (GiB)")
        _time_axis(axes, since, until, tz)
        return _png(figure)


# -- drawing helpers ---------------------------------------------------------------------


def _figure(rows: int, height_px: int, title: str) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(WIDTH_PX / DPI, height_px / DPI), dpi=DPI, facecolor=_BACKGROUND)
    FigureCanvasAgg(figure)
    grid = figure.subplots(rows, 1, sharex=True, squeeze=False)
    axes = [row[0] for row in grid]
    top = 1 - (44 if title else 16) / height_px  # margins in pixels: room for the title,
    bottom = 52 / height_px  # the marks' legend and the date labels at any height
    figure.subplots_adjust(left=0.09, right=0.98, top=top, bottom=bottom, hspace=0.12)
    if title:
        figure.suptitle(title, color=_TEXT, fontsize=12, x=0.09, ha="left")
    for ax in axes:
        ax.set_facecolor(_PANEL)
        ax.grid(True, color=_GRID, lw=0.6)
        ax.tick_params(colors=_TEXT, labelsize=8)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4))  # fewer ticks: each costs a few ms
        ax.yaxis.label.set_color(_TEXT)
        ax.yaxis.label.set_fontsize(9)
        for spine in ax.spines.values():
            spine.set_color(_GRID)
    return figure, axes


def _with_gaps(stamps: Sequence[float], step: int) -> np.ndarray:
    """Matplotlib date numbers, with a NaN wherever no sample came for a while, so a
    stopped server shows as a hole rather than a line drawn across it."""
    days = np.asarray(stamps, dtype=float) / 86400.0
    if len(days) < 2:
        return days
    holes = np.flatnonzero(np.diff(days) > GAP_FACTOR * step / 86400.0) + 1
    return np.insert(days, holes, np.nan)


def _values(points: Sequence[_P], x: np.ndarray, pick: Callable[[_P], float | None]) -> np.ndarray:
    """One value per point, aligned with `x` (a NaN where `_with_gaps` put one)."""
    values = np.asarray([math.nan if (v := pick(p)) is None else v for p in points], float)
    if len(x) == len(values):
        return values
    out = np.full(len(x), np.nan)
    out[~np.isnan(x)] = values
    return out


def _band(ax: Axes, x: np.ndarray, avg: np.ndarray, peaks: np.ndarray, colour: str) -> None:
    ax.plot(x, avg, color=colour, lw=1.2)
    ax.fill_between(x, avg, peaks, color=colour, alpha=0.25, lw=0)


def _draw_marks(axes: Sequence[Axes], marks: Sequence[LifecycleMark], words: ChartLabels) -> None:
    if not marks:
        return
    names = {"start": words.start, "stop": words.stop, "crash": words.crash}
    for kind, colour in _MARKS.items():
        stamps = [m.ts / 86400.0 for m in marks if m.kind == kind]
        if not stamps:
            continue
        style: Literal["-", "--"] = "-" if kind == "crash" else "--"
        for ax in axes:  # one collection per kind and axes, however many marks
            ax.vlines(
                stamps,
                0,
                1,
                transform=ax.get_xaxis_transform(),
                colors=colour,
                lw=1.5 if kind == "crash" else 1.0,
                linestyles=style,
            )
    shown = [k for k in _MARKS if any(m.kind == k for m in marks)]
    handles = [
        Line2D([], [], color=_MARKS[k], ls="-" if k == "crash" else "--", label=names[k])
        for k in shown
    ]
    axes[0].figure.legend(
        handles=handles,
        loc="upper right",
        ncols=len(handles),
        fontsize=8,
        frameon=False,
        labelcolor=_TEXT,
    )


def _time_axis(axes: Sequence[Axes], since: float, until: float, tz: tzinfo) -> None:
    """Date ticks in the chart's zone, worked out once: the axes share them, and a
    locator left to itself is asked again by every axes at every draw."""
    start, end = since / 86400.0, until / 86400.0
    auto = mdates.AutoDateLocator(tz=tz, minticks=4, maxticks=9)  # type: ignore[no-untyped-call]
    first, last = datetime.fromtimestamp(since, tz), datetime.fromtimestamp(until, tz)
    found: Sequence[float] = auto.tick_values(first, last)  # type: ignore[no-untyped-call]
    ticks = [float(t) for t in found if start <= t <= end]
    bottom = axes[-1]
    bottom.xaxis.set_major_locator(FixedLocator(ticks))
    # numeric dates (ISO order): matplotlib's month names are English whatever the reader's
    # language, and numbers read the same in every language
    formatter = mdates.ConciseDateFormatter(  # type: ignore[no-untyped-call]
        auto,
        tz=tz,
        formats=["%Y", "%Y-%m", "%d", "%H:%M", "%H:%M", "%S.%f"],
        zero_formats=["", "%Y", "%Y-%m", "%m-%d", "%H:%M", "%H:%M"],
        offset_formats=["", "%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d %H:%M"],
    )
    bottom.xaxis.set_major_formatter(formatter)
    bottom.set_xlim(start, end)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(
        buffer,
        format="png",
        facecolor=figure.get_facecolor(),
        pil_kwargs={"compress_level": 4},  # 6 (the default) takes ~10 ms more for 1% less
    )
    return buffer.getvalue()
