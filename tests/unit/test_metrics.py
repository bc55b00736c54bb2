"""The Prometheus text renderer and the counting of events (no loop, no sockets)."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from core.events import EventBus, LogLines, ServerCrashed, ServerStateChanged, StorageTrouble
from core.logs.lines import LogLine
from core.metrics import MetricFamily, Metrics, escape_label_value, format_value, render
from core.supervisor.states import ServerState

S = ServerState

# One sample line of the text format 0.0.4: name, optional {label="value",...}, value.
_SAMPLE = re.compile(
    r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? '
    r"(NaN|[+-]Inf|-?[0-9.]+(e[+-]?[0-9]+)?)"
)


def assert_valid_exposition(text: str) -> None:
    assert text.endswith("\n")
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in {"counter", "gauge"}
            assert name not in typed, f"TYPE twice for {name}"
            typed.add(name)
            continue
        assert _SAMPLE.fullmatch(line), line
        assert line.split("{")[0].split(" ")[0] in typed


def test_render_help_type_and_samples() -> None:
    family = MetricFamily("languard_servers", "gauge", "Servers in each state.")
    family.add(2, state="running").add(0, state="stopped")
    counter = MetricFamily("languard_x_total", "counter", "A help with a \\ and a\nnewline.")
    counter.add(7)
    text = render([family, counter])
    assert text == (
        "# HELP languard_servers Servers in each state.\n"
        "# TYPE languard_servers gauge\n"
        'languard_servers{state="running"} 2\n'
        'languard_servers{state="stopped"} 0\n'
        "# HELP languard_x_total A help with a \\\\ and a\\nnewline.\n"
        "# TYPE languard_x_total counter\n"
        "languard_x_total 7\n"
    )
    assert_valid_exposition(text)


def test_label_values_are_escaped() -> None:
    hostile = 'a"b\\c\nd} 1\nlanguard_fake 9'
    assert escape_label_value(hostile) == 'a\\"b\\\\c\\nd} 1\\nlanguard_fake 9'
    text = render([MetricFamily("m", "gauge", "h").add(1, server=hostile)])
    assert text.count("\n") == 3  # the value cannot start a line of its own
    assert "\nlanguard_fake" not in text
    assert_valid_exposition(text)


def test_values() -> None:
    assert format_value(3.0) == "3"
    assert format_value(0.25) == "0.25"
    assert format_value(math.nan) == "NaN"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(1e-7) == "1e-07"


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a b"])
def test_bad_metric_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        render([MetricFamily(name, "gauge", "h")])


def test_bad_label_names_are_refused() -> None:
    with pytest.raises(ValueError):
        render([MetricFamily("m", "gauge", "h").add(1, __name__="x")])


# -- counting ----------------------------------------------------------------------------


@dataclass
class FakeServer:
    id: int
    name: str
    state: ServerState = S.STOPPED
    round_trip: float | None = None
    link: Any = None


@dataclass
class FakeSupervisor:
    servers: list[FakeServer] = field(default_factory=list)
    heartbeat: float | None = None

    def all(self) -> list[FakeServer]:
        return list(self.servers)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def moved(sid: int, old: ServerState, new: ServerState, reason: str = "") -> ServerStateChanged:
    return ServerStateChanged(server_id=sid, server=f"s{sid}", old=old, new=new, reason=reason)


def crashed(sid: int) -> ServerCrashed:
    return ServerCrashed(
        server_id=sid,
        server=f"s{sid}",
        exit_code=3,
        signal=None,
        uptime_s=1.0,
        last_lines=(),
        attempt=1,
        max_attempts=3,
        restart_in_s=0.1,
    )


def lines(sid: int, n: int) -> LogLines:
    batch = [LogLine(f"line {i}", end=i + 1) for i in range(n)]
    return LogLines(
        server_id=sid,
        server=f"s{sid}",
        source="console",
        file_id="f",
        lines=batch,
        start_offset=0,
        end_offset=n,
    )


def sample(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {prefix!r} in:\n{text}")


def make(servers: list[FakeServer], clock: Clock | None = None) -> tuple[Metrics, FakeSupervisor]:
    sup = FakeSupervisor(servers)
    metrics = Metrics(EventBus(), sup, clock=clock or Clock())  # type: ignore[arg-type]
    return metrics, sup


def test_crashes_restarts_and_lines_are_counted_per_server() -> None:
    clock = Clock()
    metrics, _ = make([FakeServer(1, "alpha", S.RUNNING), FakeServer(2, "beta")], clock)
    for event in (
        moved(1, S.STOPPED, S.STARTING, "started by a"),
        moved(1, S.STARTING, S.RUNNING),
        crashed(1),
        moved(1, S.RUNNING, S.CRASHED, "exit 3"),
        moved(1, S.CRASHED, S.STARTING, "automatic restart after a crash"),
        moved(1, S.STARTING, S.RUNNING),
        # /server restart: stop and start with one reason
        moved(1, S.RUNNING, S.STOPPING, "restarted by a"),
        moved(1, S.STOPPING, S.STOPPED, "restarted by a"),
        moved(1, S.STOPPED, S.STARTING, "restarted by a"),
        # a stop and a later start are not a restart
        moved(1, S.RUNNING, S.STOPPING, "stopped by a"),
        moved(1, S.STOPPING, S.STOPPED, "stopped by a"),
        moved(1, S.STOPPED, S.STARTING, "started by a"),
        lines(1, 30),
        lines(2, 5),
    ):
        metrics.observe(event)
    clock.now += 1
    metrics.observe(lines(1, 30))
    text = metrics.render()
    assert_valid_exposition(text)
    assert sample(text, 'languard_servers{state="running"}') == 1
    assert sample(text, 'languard_servers{state="stopped"}') == 1
    assert sample(text, 'languard_servers{state="failed"}') == 0
    assert sample(text, 'languard_server_state{server="alpha",state="running"}') == 1
    assert sample(text, 'languard_server_crashes_total{server="alpha"}') == 1
    assert sample(text, 'languard_server_crashes_total{server="beta"}') == 0
    assert sample(text, 'languard_server_restarts_total{server="alpha",kind="crash"}') == 1
    assert sample(text, 'languard_server_restarts_total{server="alpha",kind="requested"}') == 1
    assert sample(text, 'languard_log_lines_total{server="alpha"}') == 60
    assert sample(text, 'languard_log_lines_total{server="beta"}') == 5
    assert sample(text, 'languard_log_lines_per_second{server="alpha"}') == 1.0
    clock.now += 120  # the window moved past every bucket: the rate falls, the total stays
    text = metrics.render()
    assert sample(text, 'languard_log_lines_per_second{server="alpha"}') == 0
    assert sample(text, 'languard_log_lines_total{server="alpha"}') == 60


async def test_deleted_servers_are_forgotten() -> None:
    metrics, sup = make([FakeServer(1, "alpha"), FakeServer(2, "beta")])
    metrics.observe(crashed(1))
    metrics.observe(crashed(2))
    await metrics.forget_server(1)
    sup.servers = [s for s in sup.servers if s.id != 2]  # gone without the hook
    text = metrics.render()
    assert "beta" not in text
    assert sample(text, 'languard_server_crashes_total{server="alpha"}') == 0
    assert metrics._counts == {}


def test_rcon_round_trip_link_heartbeat_and_storage() -> None:
    class Link:
        connected = True

    metrics, sup = make([FakeServer(1, "alpha", S.RUNNING, round_trip=0.012, link=Link())])
    text = metrics.render()
    assert sample(text, 'languard_rcon_round_trip_seconds{server="alpha"}') == 0.012
    assert sample(text, 'languard_rcon_connected{server="alpha"}') == 1
    assert sample(text, "languard_supervisor_heartbeat_age_seconds") == math.inf
    assert not metrics.supervisor_alive()
    sup.heartbeat = time.monotonic()
    assert metrics.supervisor_alive()
    metrics.observe(StorageTrouble(server_id=1, server="alpha", reason="disk full"))
    assert not metrics.storage_ok
    assert sample(metrics.render(), "languard_storage_trouble") == 1
    metrics.observe(StorageTrouble(server_id=1, server="alpha", reason="", recovered=True))
    assert metrics.storage_ok


def test_a_failing_collector_does_not_take_the_others_down() -> None:
    metrics, _ = make([])

    def broken() -> list[MetricFamily]:
        raise RuntimeError("boom")

    metrics.add_collector(broken)
    metrics.add_collector(lambda: [MetricFamily("languard_extra", "gauge", "x").add(4)])
    text = metrics.render()
    assert sample(text, "languard_extra") == 4
    assert_valid_exposition(text)
