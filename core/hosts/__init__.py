"""The machines servers run on: `hosts.toml`, placement of new servers, the start queue.

Pure core: nothing here talks to a Docker engine; the runtimes and the host registry
(core/services/hosts.py) do, using these values.
"""

from core.hosts.loading import HostsFileError, HostTable, load_hosts
from core.hosts.model import (
    LOCAL,
    Capacity,
    Endpoint,
    EndpointKind,
    HostProblem,
    HostSpec,
    PortRange,
    TlsFiles,
)
from core.hosts.placement import HostRoom, NoHostForGame, Placement, pick_host
from core.hosts.queue import StartCancelled, StartQueue, Ticket, TicketState
from core.hosts.tls import tls_context

__all__ = [
    "LOCAL",
    "Capacity",
    "Endpoint",
    "EndpointKind",
    "HostProblem",
    "HostRoom",
    "HostSpec",
    "HostTable",
    "HostsFileError",
    "NoHostForGame",
    "Placement",
    "PortRange",
    "StartCancelled",
    "StartQueue",
    "Ticket",
    "TicketState",
    "TlsFiles",
    "load_hosts",
    "pick_host",
    "tls_context",
]
