"""The host registry: states from probes, one event per change (never one per probe), a
hanging probe bounded by its timeout, reasons without secrets, and placement snapshots."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import NotFound
from core.events import EventBus, HostReachable, HostUnreachable
from core.hosts import HostSpec, HostTable, StartQueue
from core.services.hosts import (
    HostDown,
    HostFacts,
    HostRegistry,
    HostState,
    LocalProbe,
)

G = 1024**3


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeProbe:
    """Answers per host what the test says: facts, an exception, or a hang."""

    def __init__(self) -> None:
        self.answers: dict[str, HostFacts | BaseException | None] = {}
        self.calls: list[str] = []

    async def __call__(self, host: HostSpec) -> HostFacts:
        self.calls.append(host.name)
        answer = self.answers.get(host.name)
        if answer is None:
            await asyncio.Event().wait()  # hangs until the registry's timeout
        if isinstance(answer, BaseException):
            raise answer
        assert isinstance(answer, HostFacts)
        return answer


def facts(free: int = 8 * G, running: int = 0) -> HostFacts:
    return HostFacts(
        cpus=8,
        memory_total=32 * G,
        memory_available=free,
        disk_total=100 * G,
        disk_free=50 * G,
        running_servers=running,
        engine_version="20.10.24",
        api_version="1.41",
    )


def table() -> HostTable:
    return HostTable(
        (
            HostSpec(name="local"),
            HostSpec(
                name="b",
                endpoint="ssh://deploy@b.example.org",
                images={"arma3": "languard/arma3"},
                capacity={"servers": 2, "memory": "16G"},
            ),
            HostSpec(name="c", endpoint="tcp://10.0.0.3:2376", images={"arma3": "x/arma3"}),
        )
    )


def make(misses: int = 2, timeout: float = 5.0) -> tuple[HostRegistry, FakeProbe, EventBus, Clock]:
    probe, bus, clock = FakeProbe(), EventBus(), Clock()
    local = FakeProbe()
    local.answers["local"] = facts(free=4 * G)
    registry = HostRegistry(
        table(), probe, bus, local_probe=local, clock=clock, timeout=timeout, misses=misses
    )
    return registry, probe, bus, clock


def drain(sub: object) -> list[object]:
    out = []
    while (event := sub.get_nowait()) is not None:  # type: ignore[attr-defined]
        out.append(event)
    return out


async def test_first_probe_sets_states_and_only_an_unreachable_host_is_announced() -> None:
    registry, probe, bus, _ = make()
    probe.answers["b"] = facts()
    probe.answers["c"] = HostDown("cannot connect to {endpoint}", endpoint="tcp://10.0.0.3:2376")
    with bus.subscribe(HostUnreachable, HostReachable) as sub:
        statuses = await registry.refresh()
        events = drain(sub)
    assert [s.state for s in statuses] == [
        HostState.REACHABLE,
        HostState.REACHABLE,
        HostState.UNREACHABLE,
    ]
    assert registry.status("b").facts == facts()
    assert registry.status("c").problem is not None
    assert events == [
        HostUnreachable(
            server_id=0, server="", host="c", reason="cannot connect to tcp://10.0.0.3:2376"
        )
    ]
    assert registry.unreachable() == ["c"]


async def test_going_away_and_coming_back_is_one_event_each() -> None:
    registry, probe, bus, clock = make(misses=2)
    probe.answers["b"] = facts()
    probe.answers["c"] = facts()
    await registry.refresh()
    with bus.subscribe(HostUnreachable, HostReachable) as sub:
        probe.answers["b"] = ConnectionRefusedError("refused by ssh://deploy:pw@b")
        await registry.refresh()
        # one miss is a blip: still reachable, nothing said
        assert registry.status("b").state is HostState.REACHABLE and drain(sub) == []
        clock.now = 130.0
        await registry.refresh()
        clock.now = 160.0
        await registry.refresh()
        await registry.refresh()
        down = drain(sub)
        assert down == [
            HostUnreachable(
                server_id=0, server="", host="b", reason="the probe failed (ConnectionRefusedError)"
            )
        ]
        assert registry.status("b").facts == facts()  # the last report is kept for /host
        probe.answers["b"] = facts(free=2 * G)
        clock.now = 400.0
        await registry.refresh()
        await registry.refresh()
        back = drain(sub)
    assert back == [HostReachable(server_id=0, server="", host="b", down_for_s=270.0)]
    assert registry.status("b").facts == facts(free=2 * G)
    assert registry.status("b").since == 400.0


async def test_a_hanging_probe_is_bounded_by_the_timeout() -> None:
    registry, probe, bus, _ = make(timeout=0.05)
    probe.answers["b"] = facts()
    probe.answers["c"] = None  # hangs
    with bus.subscribe(HostUnreachable) as sub:
        await asyncio.wait_for(registry.refresh(), 5.0)
        (event,) = drain(sub)
    assert isinstance(event, HostUnreachable) and event.host == "c"
    assert event.reason == "no answer within 0.05 s"
    assert registry.status("b").reachable


async def test_refresh_can_target_some_hosts() -> None:
    registry, probe, _, _ = make()
    probe.answers["b"] = facts()
    await registry.refresh({"b"})
    assert probe.calls == ["b"]
    assert registry.status("c").state is HostState.UNKNOWN


async def test_names_for_autocomplete_and_unknown_host() -> None:
    registry, _, _, _ = make()
    assert registry.names() == ["local", "b", "c"]
    assert registry.names(" B") == ["b"]
    with pytest.raises(NotFound):
        registry.status("nope")


async def test_rooms_combine_capacity_queue_and_report_for_placement() -> None:
    registry, probe, _, _ = make()
    probe.answers["b"] = facts(free=12 * G)
    probe.answers["c"] = facts(free=6 * G)
    await registry.refresh()
    queue = StartQueue()
    for spec in registry.table:
        queue.configure_from(spec)
    queue.request("b", 1, "alpha", 10 * G)
    rooms = {room.name: room for room in registry.rooms(queue, {"minecraft"})}
    assert rooms["b"].servers == 1 and rooms["b"].memory_reserved == 10 * G
    assert rooms["b"].free_memory == 6 * G  # capacity 16 - 10, below the 12 reported
    assert rooms["local"].games == frozenset({"minecraft"})
    # b and c tie at 6 GiB: the one declared first wins
    assert registry.place("arma3", queue, {"minecraft"}).host == "b"
    queue.request("b", 2, "beta", 1 * G)
    assert registry.place("arma3", queue, {"minecraft"}, 2 * G).host == "c"
    probe.answers["c"] = HostDown("gone")
    await registry.refresh()
    await registry.refresh()  # the second miss in a row: c is away
    placement = registry.place("arma3", queue, {"minecraft"})
    assert (placement.host, placement.has_room) == ("b", False)


async def test_the_run_loop_probes_then_stops_when_asked() -> None:
    registry, probe, bus, _ = make()
    probe.answers["b"] = facts()
    probe.answers["c"] = HostDown("gone")
    stop = asyncio.Event()
    with bus.subscribe(HostUnreachable) as sub:
        task = asyncio.create_task(registry.run(3600.0, stop))
        event = await sub.get(timeout=5.0)  # the first round ran
        stop.set()
        await asyncio.wait_for(task, 5.0)
    assert isinstance(event, HostUnreachable) and event.host == "c"
    assert probe.calls.count("b") == 1  # one round: the hour-long interval was cut short


async def test_the_local_probe_reads_this_machine(tmp_path: Path) -> None:
    report = await LocalProbe(tmp_path, running=lambda: 3)(HostSpec(name="local"))
    assert report.cpus >= 1 and report.memory_total > 0
    assert (
        report.memory_available is not None and 0 < report.memory_available <= report.memory_total
    )
    assert report.disk_total is not None and report.disk_total > 0
    assert report.running_servers == 3 and report.engine_version is None


async def test_an_engine_that_reports_only_its_total_is_placed_by_what_is_not_reserved() -> None:
    registry, probe, _, _ = make()
    # a Docker engine's /info has MemTotal, no free memory
    probe.answers["b"] = replace(facts(), memory_total=32 * G, memory_available=None)
    probe.answers["c"] = replace(facts(), memory_total=8 * G, memory_available=None)
    await registry.refresh()
    queue = StartQueue()
    for spec in registry.table:
        queue.configure_from(spec)
    rooms = {room.name: room for room in registry.rooms(queue, set())}
    assert rooms["c"].free_memory == 8 * G  # nothing reserved yet: the whole machine
    queue.request("c", 1, "alpha", 6 * G)
    rooms = {room.name: room for room in registry.rooms(queue, set())}
    assert rooms["c"].free_memory == 2 * G
    assert registry.place("arma3", queue, set()).host == "b"
