"""The hosts in /metrics: whether each answers, the servers holding a place there, and the
starts waiting in its queue. An operator's alerting sees a host go away without Discord."""

from __future__ import annotations

from core.metrics import MetricFamily
from core.services.fleet import Fleet
from core.services.hosts import HostState

__all__ = ["host_families"]


def host_families(fleet: Fleet) -> list[MetricFamily]:
    up = MetricFamily(
        "languard_host_up", "gauge", "1 when the host answered its last probe, 0 when away."
    )
    held = MetricFamily(
        "languard_host_servers", "gauge", "Servers holding a place on the host (running, starting)."
    )
    queued = MetricFamily(
        "languard_host_queued_starts", "gauge", "Starts waiting for room on the host."
    )
    for status in fleet.statuses():
        name = status.name
        if status.state is not HostState.UNKNOWN:
            up.add(1.0 if status.reachable else 0.0, host=name)
        usage = fleet.queue.usage(name)
        held.add(float(usage.servers), host=name)
        queued.add(float(usage.queued), host=name)
    return [up, held, queued]
