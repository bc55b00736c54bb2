"""Arma 3's log of record per start: stdout when the start prints there, else its RPT."""

from __future__ import annotations

from pathlib import Path

from core.games.arma3_layout import Arma3Layout
from core.games.arma3_logs import LogChoice


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(folder: Path, clock: Clock) -> tuple[LogChoice, Arma3Layout]:
    layout = Arma3Layout.of(folder)
    layout.profiles.mkdir(parents=True, exist_ok=True)
    return LogChoice(layout.folder, layout.newest_rpt, grace=3.0, clock=clock), layout


def rpt(layout: Arma3Layout, stamp: str, text: str) -> Path:
    path = layout.profiles / f"arma3server_x64_2024-05-01_{stamp}.rpt"
    path.write_text(text)
    return path


def test_linux_has_no_rpt_and_stdout_is_the_log(tmp_path: Path) -> None:
    choice, layout = make(tmp_path, Clock())
    assert choice.console() is None
    choice.mark_start()
    layout.console_log.write_text("== header\n")
    assert choice.console() == layout.console_log
    assert choice.rpt() is None


def test_a_start_that_prints_to_stdout_leaves_its_rpt_alone(tmp_path: Path) -> None:
    clock = Clock()
    choice, layout = make(tmp_path, clock)
    layout.console_log.write_text("an older start\n")
    choice.mark_start()
    rpt(layout, "10-00-00", "== header\n")
    assert choice.rpt() is None, "undecided: within the grace"
    with layout.console_log.open("a") as f:
        f.write("== header\n")
    clock.now += 10
    assert choice.rpt() is None
    again, _ = make(tmp_path, clock)  # a restarted bot keeps the choice
    assert again.rpt() is None


def test_a_start_silent_on_stdout_uses_its_rpt_after_the_grace(tmp_path: Path) -> None:
    clock = Clock()
    choice, layout = make(tmp_path, clock)
    old = rpt(layout, "09-00-00", "an older start's RPT\n")
    layout.console_log.write_text("older stdout\n")
    choice.mark_start()
    assert choice.rpt() is None, "an RPT from before the start is not this start's"
    new = rpt(layout, "10-00-00", "== header\n")
    assert choice.rpt() is None
    clock.now += 2.9
    assert choice.rpt() is None
    clock.now += 0.2
    assert choice.rpt() == new
    with layout.console_log.open("a") as f:
        f.write("wine noise later\n")
    assert choice.rpt() == new, "the choice holds for the whole start"
    again, _ = make(tmp_path, clock)
    assert again.rpt() == new
    assert old.exists()
