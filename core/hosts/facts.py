"""What a host reports when probed: pure values shared by the probes (the local machine,
each Docker engine) and the host registry that keeps them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HostFacts"]


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What a probe reports; sizes in bytes, None where the host cannot say."""

    cpus: int
    memory_total: int
    memory_available: int | None
    disk_total: int | None
    disk_free: int | None
    running_servers: int
    engine_version: str | None = None
    """The Docker engine's version (None for local processes)."""
    api_version: str | None = None
