"""What a game server's container looks like: labels, name, network, limits, its files.

One container per server, labelled `languard.server=<id>` and `languard.instance=<id of this
installation>` (adoption lists by these labels), named after the server, on the host's
network so UDP game ports and BattlEye behave as on bare metal (publishing each port as
udp+tcp is the fallback). The server's files live in a bind mount for the engine on the
bot's own machine, in a named volume elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "INSTANCE_LABEL",
    "SERVER_LABEL",
    "ContainerSpec",
    "Limits",
    "Mount",
    "container_name",
    "create_body",
    "label_filters",
]

SERVER_LABEL = "languard.server"
INSTANCE_LABEL = "languard.instance"
STARTED_LABEL = "languard.started"
"""Wall-clock time the bot asked for the start (the record's started_at)."""
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_.-]+")
LOG_OPTS = {"max-size": "20m", "max-file": "5"}
"""json-file keeps everything by default [ref §5 Log drivers]: bound it (100 MB per server)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits from the server's settings; None = no limit."""

    cpus: float | None = None
    memory: int | None = None
    """Bytes; swap is not added on top (MemorySwap = Memory)."""
    pids: int | None = None


@dataclass(frozen=True, slots=True)
class Mount:
    """A bind mount (`source` is a host path) or a named volume (`source` is its name)."""

    source: str
    target: str
    bind: bool = False
    read_only: bool = False

    def body(self) -> dict[str, Any]:
        mount: dict[str, Any] = {
            "Type": "bind" if self.bind else "volume",
            "Source": self.source,
            "Target": self.target,
            "ReadOnly": self.read_only,
        }
        if not self.bind:
            mount["VolumeOptions"] = {"Labels": {"languard.volume": "1"}}
        return mount


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    server_id: int
    instance: str
    name: str
    """The server's name (the container's is derived from it)."""
    image: str
    argv: Sequence[str]
    workdir: str
    data: Mount
    """The server's files; `workdir` and every file written through the engine live here."""
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: Sequence[Mount] = ()
    limits: Limits = field(default_factory=Limits)
    console: bool = False
    """Keep stdin open for console commands (attach) [ref §6]."""
    host_network: bool = True
    ports: Sequence[tuple[int, str]] = ()
    """(port, "udp"|"tcp") published on the host when `host_network` is off."""
    user: str | None = None
    stop_signal: str = "SIGTERM"
    started_at: float = 0.0
    init: bool = True
    """Run the engine's init (tini) as PID 1: a game as PID 1 would ignore TERM and INT
    (the kernel drops default-handled signals to a namespace's init) and never reap."""


def container_name(name: str, server_id: int) -> str:
    """`languard-<name>-<id>`: readable in `docker ps`, unique per installation and server."""
    slug = _NAME_CHARS.sub("-", name).strip("-._")[:40] or "server"
    return f"languard-{slug}-{server_id}"


def label_filters(instance: str, server_id: int | None = None) -> dict[str, list[str]]:
    """The `filters` of a list call that finds this installation's containers [ref §4]."""
    labels = [f"{INSTANCE_LABEL}={instance}"]
    labels.append(SERVER_LABEL if server_id is None else f"{SERVER_LABEL}={server_id}")
    return {"label": labels}


def create_body(spec: ContainerSpec) -> dict[str, Any]:
    """The body of `POST /containers/create` for `spec`."""
    host: dict[str, Any] = {
        "Mounts": [spec.data.body(), *(m.body() for m in spec.mounts)],
        "RestartPolicy": {"Name": "no"},  # the supervisor restarts, with its own backoff
        "Init": spec.init,
        "LogConfig": {"Type": "json-file", "Config": dict(LOG_OPTS)},
    }
    if spec.host_network:
        host["NetworkMode"] = "host"
    else:
        host["PortBindings"] = {
            f"{port}/{proto}": [{"HostPort": str(port)}] for port, proto in spec.ports
        }
    limits = spec.limits
    if limits.cpus is not None:
        host["NanoCpus"] = round(limits.cpus * 1e9)
    if limits.memory is not None:
        host["Memory"] = limits.memory
        host["MemorySwap"] = limits.memory
    if limits.pids is not None:
        host["PidsLimit"] = limits.pids
    body: dict[str, Any] = {
        "Image": spec.image,
        # the profile's argv is the whole command: never appended to an image's entrypoint
        "Entrypoint": list(spec.argv[:1]),
        "Cmd": list(spec.argv[1:]),
        "WorkingDir": spec.workdir,
        "Env": [f"{key}={value}" for key, value in spec.env.items()],
        "Labels": {
            SERVER_LABEL: str(spec.server_id),
            INSTANCE_LABEL: spec.instance,
            STARTED_LABEL: repr(spec.started_at),
        },
        "Tty": False,
        "OpenStdin": spec.console,
        "StdinOnce": False,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "StopSignal": spec.stop_signal,
        "HostConfig": host,
    }
    if not spec.host_network:
        body["ExposedPorts"] = {f"{port}/{proto}": {} for port, proto in spec.ports}
    if spec.user is not None:
        body["User"] = spec.user
    return body
