"""Download a user-supplied https link into a temp file, without becoming an SSRF proxy.

A Discord user can point the bot at any URL, so every hop is vetted: https only, no
credentials, the host resolved first and refused when any address is private, loopback,
link-local, multicast, reserved or unspecified (unless the operator allows private
addresses), and the connection pinned to the vetted addresses so a second DNS answer
cannot swap them (DNS rebinding). Redirects are followed by hand, vetted the same way.
The body streams under a size cap and a total timeout; on any failure the temp file is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import socket
import ssl as ssl_module
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from core.errors import InvalidInput

__all__ = [
    "AddressResolver",
    "IPAddress",
    "IPNetwork",
    "ProgressCallback",
    "address_refusal",
    "download_https",
    "parse_download_url",
]

_log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ProgressCallback = Callable[[int, int | None], Awaitable[None] | None]
"""Called with (bytes received, total announced or None), at most every `progress_interval`."""
AddressResolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""host, port -> IP address strings (the system resolver by default)."""

MAX_URL_LENGTH = 2048
MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_HEADERS = {"Accept-Encoding": "identity", "User-Agent": "Languard-mission-fetch/1"}


def parse_download_url(url: str, *, allow_http: bool = False) -> URL:
    """Check a link's shape (scheme, credentials, host) before anything touches the network."""
    url = url.strip()
    if not url:
        raise InvalidInput("the link is empty")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(
            "the link is longer than {MAX_URL_LENGTH} characters", MAX_URL_LENGTH=MAX_URL_LENGTH
        )
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidInput("the link contains spaces or control characters")
    try:
        parsed = URL(url)
        scheme = parsed.scheme.lower()
        host = parsed.raw_host
        port = parsed.port
        has_credentials = bool(parsed.raw_user or parsed.raw_password) or "@" in (
            parsed.raw_authority
        )
    except (ValueError, TypeError):
        raise InvalidInput("that is not a valid link") from None
    allowed = ("https", "http") if allow_http else ("https",)
    if scheme not in allowed:
        raise InvalidInput("only https:// links are accepted")
    if has_credentials:
        raise InvalidInput(
            "links with a user name or password are not accepted; use a link that needs no login"
        )
    if not host or port is None or not 0 < port < 65536:
        raise InvalidInput("the link has no valid host")
    return parsed.with_fragment(None)


_UNSPECIFIED = "an unspecified or multicast address"
_LOOPBACK = "a loopback address"
_LINK_LOCAL = "a link-local address"
_PRIVATE = "a private or reserved address"


def address_refusal(
    ip: IPAddress, *, allow_private: bool = False, allowed: Sequence[IPNetwork] = ()
) -> str | None:
    """Why the bot must not connect to `ip` (None when it may)."""
    if any(ip.version == net.version and ip in net for net in allowed):
        return None
    if ip.is_unspecified or ip.is_multicast:
        return _UNSPECIFIED
    if allow_private:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_refusal(embedded, allow_private=False, allowed=allowed)
    if ip.is_loopback:
        return _LOOPBACK
    if ip.is_link_local:
        return _LINK_LOCAL
    if ip.is_private or ip.is_reserved or not ip.is_global:
        return _PRIVATE
    return None


async def _system_resolve(host: str, port: int) -> Sequence[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


class _PinnedResolver(AbstractResolver):
    """Answers only with the addresses vetted for each host; never asks DNS again."""

    def __init__(self) -> None:
        self._pins: dict[str, list[IPAddress]] = {}

    def pin(self, host: str, addresses: list[IPAddress]) -> None:
        self._pins[host] = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results: list[ResolveResult] = []
        for ip in self._pins.get(host, []):
            ip_family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            if family in (socket.AF_UNSPEC, ip_family):
                results.append(
                    ResolveResult(
                        hostname=host,
                        host=str(ip),
                        port=port,
                        family=ip_family,
                        proto=0,
                        flags=socket.AI_NUMERICHOST,
                    )
                )
        if not results:
            raise OSError(f"no vetted address for {host}")
        return results

    async def close(self) -> None:
        return None


class _TempFile:
    """The download's temp file (created in the event loop; writes go to a thread)."""

    def __init__(self, dest_dir: Path) -> None:
        fd, name = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=dest_dir)
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)

    def finish(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


async def download_https(
    url: str,
    dest_dir: Path,
    *,
    max_bytes: int,
    timeout: float,
    allow_private: bool = False,
    allowed_networks: Sequence[IPNetwork] = (),
    ssl: ssl_module.SSLContext | None = None,
    progress: ProgressCallback | None = None,
    progress_interval: float = 0.5,
    allow_http: bool = False,
    resolve: AddressResolver | None = None,
    max_redirects: int = MAX_REDIRECTS,
) -> Path:
    """Fetch `url` into a new temp file in `dest_dir` and return its path (the caller owns it).

    `allow_http` exists for tests only; `resolve` replaces the system resolver (tests,
    custom DNS). Raises InvalidInput with a message that names at most the host.
    """
    current = parse_download_url(url, allow_http=allow_http)
    sink = _TempFile(dest_dir)  # not in a thread: a cancelled hop could orphan the file
    resolver = _PinnedResolver()
    host = current.host or "?"
    try:
        async with asyncio.timeout(timeout):
            connector = aiohttp.TCPConnector(
                resolver=resolver, use_dns_cache=False, force_close=True
            )
            async with aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                trust_env=False,
                headers=_HEADERS,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as session:
                for _hop in range(max_redirects + 1):
                    host = current.host or "?"
                    addresses = await _vet(current, resolve, allow_private, allowed_networks)
                    resolver.pin(str(current.raw_host), addresses)
                    target = await _fetch(
                        session, current, sink, max_bytes, ssl, progress, progress_interval
                    )
                    if target is None:
                        await asyncio.to_thread(sink.finish)
                        return sink.path
                    current = parse_download_url(str(target), allow_http=allow_http)
                raise InvalidInput(
                    "the link redirects more than {max_redirects} times",
                    max_redirects=max_redirects,
                )
    except BaseException as exc:
        sink.discard()
        explained = _explain(exc, host, timeout)
        if explained is None:
            raise
        raise explained from exc


async def _vet(
    url: URL,
    resolve: AddressResolver | None,
    allow_private: bool,
    allowed: Sequence[IPNetwork],
) -> list[IPAddress]:
    """The host's addresses, all of them acceptable, or InvalidInput."""
    host = str(url.raw_host)
    port = url.port or 443
    try:
        addresses = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            answers = await (resolve or _system_resolve)(host, port)
        except OSError:
            raise InvalidInput("could not find the host {host}", host=url.host) from None
        addresses = []
        for answer in answers:
            with contextlib.suppress(ValueError):
                ip = ipaddress.ip_address(answer)
                if ip not in addresses:
                    addresses.append(ip)
        if not addresses:
            raise InvalidInput("could not find the host {host}", host=url.host) from None
    for ip in addresses:
        reason = address_refusal(ip, allow_private=allow_private, allowed=allowed)
        if reason is not None:
            _log.info("refused a download from %s: %s is %s", url.host, ip, reason)
            raise _refused_address(str(url.host), reason)
    return addresses


async def _fetch(
    session: aiohttp.ClientSession,
    url: URL,
    sink: _TempFile,
    max_bytes: int,
    ssl: ssl_module.SSLContext | None,
    progress: ProgressCallback | None,
    interval: float,
) -> URL | None:
    """One hop: the redirect target, or None once the body is in `sink`."""
    async with session.get(
        url, allow_redirects=False, ssl=ssl if ssl is not None else True
    ) as resp:
        if resp.status in _REDIRECTS:
            location = resp.headers.get("Location")
            if not location:
                raise InvalidInput("{host} redirected without saying where to", host=url.host)
            try:
                return url.join(URL(location))
            except (ValueError, TypeError):
                raise InvalidInput("{host} redirected to an invalid link", host=url.host) from None
        if resp.status != 200:
            raise InvalidInput(
                "{host} answered HTTP {status} instead of the file",
                host=url.host,
                status=resp.status,
            )
        if resp.headers.get("Content-Encoding", "identity").lower() not in ("identity", ""):
            raise InvalidInput("{host} sent the file compressed; use a direct link", host=url.host)
        total = resp.content_length
        if total is not None and total > max_bytes:
            raise InvalidInput(
                "the file is {mib}, over the {limit} limit", mib=_mib(total), limit=_mib(max_bytes)
            )
        await _stream(resp, sink, max_bytes, total, progress, interval)
        return None


async def _stream(
    resp: aiohttp.ClientResponse,
    sink: _TempFile,
    max_bytes: int,
    total: int | None,
    progress: ProgressCallback | None,
    interval: float,
) -> None:
    received = 0
    last_report = time.monotonic()
    await _report(progress, 0, total)
    async for chunk in resp.content.iter_chunked(_CHUNK):
        received += len(chunk)
        if received > max_bytes:
            raise InvalidInput(
                "the download passed the {mib} limit and was stopped", mib=_mib(max_bytes)
            )
        await asyncio.to_thread(sink.write, chunk)
        if time.monotonic() - last_report >= interval:
            last_report = time.monotonic()
            await _report(progress, received, total)
    if total is not None and received != total:
        raise InvalidInput("the download from {host} was cut short", host=resp.url.host)
    await _report(progress, received, total)


async def _report(progress: ProgressCallback | None, received: int, total: int | None) -> None:
    if progress is not None:
        result = progress(received, total)
        if result is not None:
            await result


def _explain(exc: BaseException, host: str, timeout: float) -> InvalidInput | None:
    """A user-safe message for a failure (None: re-raise as is); the detail is logged."""
    if isinstance(exc, InvalidInput) or not isinstance(exc, Exception):
        return None
    _log.info("download from %s failed: %s: %.300s", host, type(exc).__name__, exc)
    if isinstance(exc, TimeoutError):
        return InvalidInput(
            "the download did not finish within {timeout:.0f} seconds", timeout=timeout
        )
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return InvalidInput("could not verify the TLS certificate of {host}", host=host)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return InvalidInput("could not connect to {host}", host=host)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return InvalidInput("the download from {host} was cut short", host=host)
    if isinstance(exc, aiohttp.ClientResponseError):
        return InvalidInput("{host} sent a malformed HTTP answer", host=host)
    if not isinstance(exc, aiohttp.ClientError | OSError):
        return None
    if not isinstance(exc, aiohttp.ClientError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InvalidInput("there is not enough disk space for this mission")
    return InvalidInput("the download from {host} failed", host=host)


def _refused_address(host: str, reason: str) -> InvalidInput:
    """The refusal of a host whose address is not public (`reason` from address_refusal)."""
    if reason == _LOOPBACK:
        return InvalidInput(
            "{host} points to a loopback address; links must lead to a public server", host=host
        )
    if reason == _LINK_LOCAL:
        return InvalidInput(
            "{host} points to a link-local address; links must lead to a public server",
            host=host,
        )
    if reason == _UNSPECIFIED:
        return InvalidInput(
            "{host} points to an unspecified or multicast address; "
            "links must lead to a public server",
            host=host,
        )
    return InvalidInput(
        "{host} points to a private or reserved address; links must lead to a public server",
        host=host,
    )


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
