"""Find the game processes Languard started, even when the database does not know them.

Every game gets one environment variable, `LANGUARD_SERVER=<instance>/<server id>`. It
survives every exec (an `env` shebang, a wrapper's `exec java`, a shim) and is readable in
`/proc/<pid>/environ` by the same user. It is the safety net behind the recorded identity:
if a write of the pid failed (disk full) or the bot died between spawn and that write, the
next bot still finds the game instead of calling it stopped and starting a second copy.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import signal
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from core.games.base import PortNeed
from core.supervisor.process import ProcessIdentity, adopt, identity_of, wait_exit

__all__ = [
    "COMPANION_ENV",
    "MARKER_ENV",
    "PortHolder",
    "find_marked",
    "instance_of",
    "marker_value",
    "port_holders",
    "scan_companions",
    "scan_marked",
    "sweep_marked",
]

_log = logging.getLogger(__name__)

MARKER_ENV = "LANGUARD_SERVER"
COMPANION_ENV = "LANGUARD_COMPANION"
"""`<instance>/<server id>/<key>` on a companion (an Arma 3 headless client): a marker of
its own, so a server's adoption and stray sweep never take a companion for its game."""
_KEY = re.compile(rb"[a-z0-9][a-z0-9-]{0,31}")
_PROC = Path("/proc")
_ENVIRON_CAP = 1 << 20
"""Bytes read of one process's environment at most: a process can make it huge."""


def instance_of(data_dir: Path) -> str:
    """A short id of this installation, so two bots on one host never claim each other's games."""
    return hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]


def marker_value(instance: str, server_id: int) -> str:
    return f"{instance}/{server_id}"


def scan_marked(instance: str) -> dict[int, list[ProcessIdentity]]:
    """Live processes carrying this installation's marker, by server id.

    Per server, session leaders come first (the process Languard spawned stays the leader
    across execs), then the rest oldest first (a wrapper's game, a worker).
    """
    prefix = f"{MARKER_ENV}={instance}/".encode()
    found: dict[int, list[tuple[bool, float, ProcessIdentity]]] = {}
    for pid, tail in _marked(prefix):
        if not (tail.isdigit() and len(tail) < 12):
            continue
        server_id = int(tail)
        identity = identity_of(pid)
        if identity is None:
            continue
        try:
            leader = os.getsid(pid) == pid
        except OSError:
            continue
        found.setdefault(server_id, []).append((not leader, identity.create_time, identity))
    return {
        server_id: [identity for _, _, identity in sorted(items, key=lambda i: (i[0], i[1]))]
        for server_id, items in found.items()
    }


def scan_companions(instance: str) -> dict[int, dict[str, list[ProcessIdentity]]]:
    """Live companions carrying this installation's marker: by server id, then key; for one
    key the oldest comes first (a duplicate is the younger one)."""
    prefix = f"{COMPANION_ENV}={instance}/".encode()
    found: dict[int, dict[str, list[ProcessIdentity]]] = {}
    for pid, tail in _marked(prefix):
        server, _, key = tail.partition(b"/")
        if not (server.isdigit() and len(server) < 12 and _KEY.fullmatch(key)):
            continue
        identity = identity_of(pid)
        if identity is not None:
            found.setdefault(int(server), {}).setdefault(key.decode(), []).append(identity)
    for keys in found.values():
        for identities in keys.values():
            identities.sort(key=lambda i: i.create_time)
    return found


def _marked(prefix: bytes) -> list[tuple[int, bytes]]:
    """(pid, what follows `prefix`) of every process whose environment has it."""
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return []
    me = os.getpid()
    marked = []
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        tail = _environ_item(int(entry), prefix)
        if tail is not None:
            marked.append((int(entry), tail))
    return marked


def _environ_item(pid: int, prefix: bytes) -> bytes | None:
    try:
        with open(_PROC / str(pid) / "environ", "rb") as environ:
            raw = environ.read(_ENVIRON_CAP)
    except OSError:
        return None
    for item in raw.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :]
    return None


def find_marked(instance: str, server_id: int) -> list[ProcessIdentity]:
    """The live processes Languard started for one server (see `scan_marked`)."""
    return scan_marked(instance).get(server_id, [])


async def sweep_marked(instance: str, server_id: int, server: str) -> None:
    """Kill processes of a server that outlived its main one (they hold its ports)."""
    for identity in await asyncio.to_thread(find_marked, instance, server_id):
        handle = adopt(identity, console_path=None, started_at=time.time())
        if handle is not None and handle.signal_group(signal.SIGKILL):
            _log.warning("%s: killed pid %d left behind by its game", server, handle.pid)
            await wait_exit(handle, 5.0)
            handle.close()


@dataclass(frozen=True, slots=True)
class PortHolder:
    port: int
    protocol: str
    pid: int | None
    name: str

    def describe(self) -> str:
        """Who holds the port, as a user can act on it (`kill <pid>`)."""
        if self.pid is None:
            return "a process of another user"
        return f"pid {self.pid} ({self.name})"


def port_holders(needs: Iterable[PortNeed]) -> list[PortHolder]:
    """Which process holds each of these local ports (None when it is not ours to see)."""
    wanted = {(need.port, need.protocol) for need in needs}
    if not wanted:
        return []
    holders: list[PortHolder] = []
    try:
        connections: Sequence[object] = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError) as exc:
        _log.debug("cannot list sockets: %s", exc)
        return []
    seen: set[tuple[int, str]] = set()
    for conn in connections:
        laddr = getattr(conn, "laddr", None)
        if not laddr:
            continue
        proto = "udp" if getattr(conn, "type", None) == socket.SOCK_DGRAM else "tcp"
        if proto == "tcp" and getattr(conn, "status", "") != psutil.CONN_LISTEN:
            continue
        key = (int(laddr.port), proto)
        if key not in wanted or key in seen:
            continue
        seen.add(key)
        pid = getattr(conn, "pid", None)
        name = ""
        if pid is not None:
            try:
                name = psutil.Process(pid).name()
            except psutil.Error:
                name = "?"
        holders.append(PortHolder(key[0], proto, pid, name))
    return holders
