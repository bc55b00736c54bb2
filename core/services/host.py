"""What `/host` shows: the machine the bot runs on, the bot itself, and recent trouble.

Everything is read fresh on each call (psutil and /proc are cheap); only the bot's own
error counter lives here, bumped by the front end when a command fails unexpectedly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import platform
import socket
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import psutil

from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor

__all__ = ["ERROR_WINDOW", "HostInfo", "HostService", "host_addresses", "primary_address"]

_log = logging.getLogger(__name__)

ERROR_WINDOW = 86400.0
"""`errors recorded` counts the last 24 hours."""
_ERROR_KINDS = ("crash", "failed")
_TRANSITIONS_SCANNED = 500
_VIRTUAL_INTERFACES = ("docker", "br-", "veth", "virbr", "lxcbr", "cni")


@dataclass(frozen=True, slots=True)
class HostInfo:
    hostname: str
    os_name: str
    kernel: str
    cpu_model: str
    cpu_count: int
    """Logical CPUs."""
    load_average: tuple[float, float, float]
    ram_used: int
    ram_total: int
    disk_used: int
    disk_free: int
    disk_total: int
    """Of the filesystem holding the data folder, in bytes."""
    addresses: tuple[str, ...]
    """Non-loopback, non-link-local IP addresses, IPv4 first."""
    host_uptime: float
    bot_uptime: float
    servers_running: int
    servers_total: int
    errors_recorded: int
    """Crashes and failures of servers, plus the bot's own errors, in the last 24 h."""


def host_addresses() -> tuple[str, ...]:
    """The host's IP addresses a player could reach, from psutil: IPv4 before IPv6, public
    before private; loopback, link-local and container bridges left out."""
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    try:
        interfaces = psutil.net_if_addrs()
    except OSError as exc:
        _log.warning("cannot list network interfaces: %s", exc)
        return ()
    for interface, addresses in interfaces.items():
        if interface.startswith(_VIRTUAL_INTERFACES):
            continue
        for address in addresses:
            if address.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(address.address.split("%", 1)[0])
            except ValueError:
                continue
            if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip in found:
                continue
            found.append(ip)
    found.sort(key=lambda ip: (ip.version, not ip.is_global, ip.packed))
    return tuple(str(ip) for ip in found)


def primary_address() -> str | None:
    """The IPv4 address of the default route (no packet is sent), or None when offline."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks a route
            address = probe.getsockname()[0]
        except OSError:
            return None
    return str(address) if address and not address.startswith(("0.", "127.")) else None


def _os_name() -> str:
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        return f"{platform.system()} {platform.release()}".strip()
    return release.get("PRETTY_NAME") or release.get("NAME") or platform.system()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                name, _, value = line.partition(":")
                if name.strip() in ("model name", "Hardware", "Processor") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@dataclass(frozen=True, slots=True)
class _Machine:
    hostname: str
    os_name: str
    kernel: str
    cpu_model: str
    cpu_count: int
    load_average: tuple[float, float, float]
    ram_used: int
    ram_total: int
    disk_used: int
    disk_free: int
    disk_total: int
    addresses: tuple[str, ...]
    host_uptime: float


def _machine(data_dir: Path) -> _Machine:
    """The blocking reads, done in a worker thread."""
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(data_dir))
    one, five, fifteen = os.getloadavg()
    return _Machine(
        hostname=socket.gethostname(),
        os_name=_os_name(),
        kernel=platform.release(),
        cpu_model=_cpu_model(),
        cpu_count=psutil.cpu_count(logical=True) or os.cpu_count() or 1,
        load_average=(one, five, fifteen),
        ram_used=int(memory.total - memory.available),
        ram_total=int(memory.total),
        disk_used=int(disk.used),
        disk_free=int(disk.free),
        disk_total=int(disk.total),
        addresses=host_addresses(),
        host_uptime=max(0.0, time.time() - psutil.boot_time()),
    )


class HostService:
    """`started_at` is the bot's start as wall-clock time (`time.time()`)."""

    def __init__(self, supervisor: Supervisor, *, started_at: float, data_dir: Path) -> None:
        self._supervisor = supervisor
        self._started_at = started_at
        self._data_dir = data_dir
        self._errors: deque[float] = deque(maxlen=10_000)

    def record_error(self) -> None:
        """Count one unexpected error of the bot (the front end calls this)."""
        self._errors.append(time.time())

    async def info(self) -> HostInfo:
        machine = await asyncio.to_thread(_machine, self._data_dir)
        servers = self._supervisor.all()
        running = sum(1 for server in servers if server.state is ServerState.RUNNING)
        return HostInfo(
            hostname=machine.hostname,
            os_name=machine.os_name,
            kernel=machine.kernel,
            cpu_model=machine.cpu_model,
            cpu_count=machine.cpu_count,
            load_average=machine.load_average,
            ram_used=machine.ram_used,
            ram_total=machine.ram_total,
            disk_used=machine.disk_used,
            disk_free=machine.disk_free,
            disk_total=machine.disk_total,
            addresses=machine.addresses,
            host_uptime=machine.host_uptime,
            bot_uptime=max(0.0, time.time() - self._started_at),
            servers_running=running,
            servers_total=len(servers),
            errors_recorded=await self.errors_recorded(),
        )

    async def errors_recorded(self, window: float = ERROR_WINDOW) -> int:
        """Crash and failed rows plus transitions into `failed`, and the bot's own errors."""
        since = time.time() - window
        total = sum(1 for ts in self._errors if ts >= since)
        history = self._supervisor.history
        for server in self._supervisor.all():
            for kind in _ERROR_KINDS:
                total += await history.count_since(server.id, kind, since)
            transitions = await history.recent(server.id, _TRANSITIONS_SCANNED, "transition")
            total += sum(
                1
                for entry in transitions
                if entry.ts >= since and entry.data.get("new") == ServerState.FAILED.value
            )
        return total
