"""Charts decode as PNGs of the promised size, draw the data and the lifecycle marks."""

from __future__ import annotations

import io
import math
import sys
from datetime import UTC

import numpy as np
import pytest
from matplotlib import image as mpimg

from core.charts import (
    DPI,
    HEIGHT_PX,
    HOST_HEIGHT_PX,
    WIDTH_PX,
    ChartLabels,
    _with_gaps,
    render_host_chart,
    render_server_chart,
)
from data.repositories.host_metrics import HostPoint
from data.repositories.telemetry import LifecycleMark, SeriesPoint

NOW = 1_700_000_000.0
WEEK = 7 * 86400.0
STEP = 300
CRASH_RED = (0xED, 0x42, 0x45)
PLAYERS_BLUE = (0x58, 0x65, 0xF2)


def week(hole: tuple[float, float] | None = None) -> list[SeriesPoint]:
    """A busy week in 5-minute bins: players follow the day, CPU and RAM follow players."""
    points = []
    for i in range(int(WEEK // STEP)):
        ts = NOW - WEEK + i * STEP
        if hole and hole[0] <= ts < hole[1]:
            continue
        players = round(30 * math.sin(ts / 86400 * math.pi) ** 2)
        points.append(
            SeriesPoint(
                ts, 20, 30 + players, 45 + players, 3e9 + players * 1e7, 3.2e9, players, players
            )
        )
    return points


def decode(png: bytes) -> np.ndarray:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return mpimg.imread(io.BytesIO(png), format="png")


def pixels_near(img: np.ndarray, rgb: tuple[int, int, int], tolerance: float = 0.06) -> int:
    target = np.asarray(rgb, dtype=float) / 255.0
    return int(np.sum(np.all(np.abs(img[:, :, :3] - target) < tolerance, axis=2)))


def reddish(img: np.ndarray) -> int:
    r, g, b = img[:, :, 0], img[:, :, 1], img[:, :, 2]
    return int(np.sum((r > 0.7) & (g < 0.4) & (b < 0.4)))


def test_a_week_chart_decodes_at_its_size_and_is_not_blank() -> None:
    png = render_server_chart(
        week(),
        [LifecycleMark(NOW - 3 * 86400, "start")],
        since=NOW - WEEK,
        until=NOW,
        step=STEP,
        tz=UTC,
        labels=ChartLabels(title="alpha, last 7 days"),
    )
    img = decode(png)
    assert img.shape[:2] == (HEIGHT_PX, WIDTH_PX)
    assert (WIDTH_PX, HEIGHT_PX) == (8 * DPI, 6 * DPI)
    colours = np.unique(img[:, :, :3].reshape(-1, 3), axis=0)
    assert len(colours) > 50, "a real drawing has many colours (lines, fills, text)"
    assert pixels_near(img, PLAYERS_BLUE) > 2000, "the players line is drawn"


def test_a_crash_is_marked_in_red_and_nothing_red_without_one() -> None:
    def draw(marks: list[LifecycleMark]) -> np.ndarray:
        return decode(
            render_server_chart(week(), marks, since=NOW - WEEK, until=NOW, step=STEP, tz=UTC)
        )

    plain, crashed = draw([]), draw([LifecycleMark(NOW - 2 * 86400, "crash")])
    assert reddish(plain) == 0
    # one line through three panels of ~150 px each, and the legend's sample
    assert reddish(crashed) > 300
    assert pixels_near(crashed, CRASH_RED) > 100


def test_an_empty_period_still_renders() -> None:
    img = decode(render_server_chart([], [], since=NOW - 3600, until=NOW, step=15, tz=UTC))
    assert img.shape[:2] == (HEIGHT_PX, WIDTH_PX)
    assert len(np.unique(img[:, :, :3].reshape(-1, 3), axis=0)) > 5  # panels and the notice


def test_a_stopped_server_is_a_hole_not_a_line() -> None:
    hole = (NOW - 4 * 86400, NOW - 3 * 86400)
    points = week(hole)
    x = _with_gaps([p.ts for p in points], STEP)
    assert int(np.isnan(x).sum()) == 1
    gap_at = int(np.flatnonzero(np.isnan(x))[0])
    assert x[gap_at - 1] * 86400 < hole[0] <= hole[1] <= x[gap_at + 1] * 86400
    # a regular series gets no hole, even with jitter below the threshold
    jittered = [NOW + i * 15 + (i % 3) for i in range(100)]
    assert not np.isnan(_with_gaps(jittered, 15)).any()


def test_the_host_chart_decodes() -> None:
    points = [HostPoint(p.ts, p.cpu_avg / 2, p.cpu_max / 2, 8e9, 9e9, 16 * 1024**3) for p in week()]
    img = decode(render_host_chart(points, since=NOW - WEEK, until=NOW, step=STEP, tz=UTC))
    assert img.shape[:2] == (HOST_HEIGHT_PX, WIDTH_PX)
    assert len(np.unique(img[:, :, :3].reshape(-1, 3), axis=0)) > 50


def test_no_display_and_no_pyplot() -> None:
    """Agg through the object API: nothing opens a window or touches pyplot's globals."""
    render_server_chart(week()[:10], [], since=NOW - WEEK, until=NOW, step=STEP, tz=UTC)
    assert "matplotlib.pyplot" not in sys.modules


@pytest.mark.parametrize("period_points", [1, 2])
def test_one_or_two_points(period_points: int) -> None:
    points = week()[:period_points]
    img = decode(render_server_chart(points, [], since=NOW - WEEK, until=NOW, step=STEP, tz=UTC))
    assert img.shape[:2] == (HEIGHT_PX, WIDTH_PX)
