"""Docker hosts from hosts.toml (core.hosts): their runtimes, and what `/host` shows of them.

`runtime_for` turns one declared host into a `DockerRuntime`: its endpoint and TLS files,
the image of each game, bind mounts for an engine on this machine (a unix socket) and named
volumes elsewhere. `DockerProbe` is the `HostProbe` (core.services.hosts) of those hosts:
engine and API version from `/version`, CPUs and memory from `/info`, and how many Languard
servers run there (containers labelled `languard.server`, companions left out). The engine
reports neither free memory nor disk, so those stay None.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

from core.docker.client import Engine, EngineEndpoint
from core.docker.runtime import COMPANION_LABEL, DockerRuntime
from core.docker.spec import SERVER_LABEL, Mount
from core.hosts.facts import HostFacts
from core.hosts.model import HostSpec
from core.supervisor.runtime_api import UnitRef

__all__ = ["DockerProbe", "endpoint_of", "probe_engine", "runtime_for"]


def endpoint_of(spec: HostSpec) -> EngineEndpoint:
    """The engine address of a Docker host (hosts.toml has validated it and its TLS files)."""
    if spec.endpoint is None:
        raise ValueError(f"host {spec.name} runs local processes, not a Docker engine")
    tls = spec.tls
    return EngineEndpoint(
        spec.endpoint.url,
        ca=None if tls is None else tls.ca,
        cert=None if tls is None else tls.cert,
        key=None if tls is None else tls.key,
    )


def runtime_for(
    spec: HostSpec,
    game_of: Callable[[int], str | None],
    mounts: Sequence[Mount] = (),
    stale_of: Callable[[str], Sequence[str]] | None = None,
) -> DockerRuntime:
    """The runtime of one Docker host; `game_of` names a server's game by its id, and
    `stale_of` a game's stale files (globs its profile declares). The host's declared
    `mounts` come first, then `mounts`."""
    images: Mapping[str, str] = dict(spec.images)
    declared = [Mount(m.source, m.inside, bind=True, read_only=m.read_only) for m in spec.mounts]
    mounts = (*declared, *mounts)

    def image_for(unit: UnitRef) -> str | None:
        game = game_of(unit.server_id)
        return None if game is None else images.get(game)

    def stale_for(unit: UnitRef) -> Sequence[str]:
        game = game_of(unit.server_id)
        return () if game is None or stale_of is None else stale_of(game)

    return DockerRuntime(
        spec.name, endpoint_of(spec), image_for=image_for, mounts=mounts, stale_for=stale_for
    )


async def probe_engine(engine: Engine) -> HostFacts:
    """Raises EngineUnreachable (a LanguardError fit to show) when the engine is away."""
    version = await engine.version()
    info = await engine.info()
    listed = await engine.request(
        "GET", "containers/json", params={"filters": json.dumps({"label": [SERVER_LABEL]})}
    )
    running = sum(1 for item in listed or [] if COMPANION_LABEL not in (item.get("Labels") or {}))
    return HostFacts(
        cpus=int(info.get("NCPU") or 1),
        memory_total=int(info.get("MemTotal") or 0),
        memory_available=None,
        disk_total=None,
        disk_free=None,
        running_servers=running,
        engine_version=str(version.get("Version") or "") or None,
        api_version=str(version.get("ApiVersion") or "") or None,
    )


class DockerProbe:
    """A HostProbe over the runtimes of the Docker hosts, by host name."""

    def __init__(self, runtimes: Mapping[str, DockerRuntime]) -> None:
        self.runtimes = runtimes

    async def __call__(self, host: HostSpec) -> HostFacts:
        return await probe_engine(self.runtimes[host.name].engine)
