"""One connection to one host's Docker engine: unix socket, TCP with mutual TLS, or SSH.

`Engine` wraps an `aiodocker.Docker` pinned to API v1.41 (what Debian's dockerd 20.10 speaks,
[ref §1 Versions]) and turns every way a call can fail into one of two typed errors: the
engine does not answer (`EngineUnreachable`: connection refused, TLS handshake refused, a
stream cut because the daemon died) or it answered no (`EngineRefused`, with Docker's own
message and status). Callers never see aiohttp or aiodocker exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import json
import logging
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp
from aiodocker.exceptions import DockerError

from core.errors import InvalidInput, LanguardError

__all__ = [
    "API_VERSION",
    "Engine",
    "EngineEndpoint",
    "EngineRefused",
    "EngineUnreachable",
    "tls_context",
]

_log = logging.getLogger(__name__)

API_VERSION = "v1.41"
"""Pinned: `auto` costs one unversioned /version call per client [ref §1 Versions]."""
CONNECT_TIMEOUT = 10.0
REQUEST_TIMEOUT = 60.0
"""Seconds for one ordinary call; streams (logs, wait, attach) set their own bounds."""


class EngineUnreachable(LanguardError):
    """The engine did not answer (down, refused the connection or our certificate)."""

    def __init__(self, host: str) -> None:
        super().__init__("the Docker engine of host {host} does not answer", host=host)
        self.host = host


class EngineRefused(LanguardError):
    """The engine answered with an error; `status` is its HTTP status."""

    def __init__(self, host: str, status: int, message: str) -> None:
        super().__init__(
            "the Docker engine of host {host} refused: {message}", host=host, message=message
        )
        self.host = host
        self.status = status


@dataclass(frozen=True, slots=True)
class EngineEndpoint:
    """Where a host's engine listens. TLS files are needed for `tcp://` / `https://`
    (mutual TLS: the engine runs with --tlsverify)."""

    url: str
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0] if "://" in self.url else ""


def tls_context(endpoint: EngineEndpoint) -> ssl.SSLContext:
    """Verify the engine against our CA (hostname included) and present our client cert.

    The server certificate must name the address we dial in its subjectAltName [ref §1 TCP].
    """
    if endpoint.ca is None or endpoint.cert is None or endpoint.key is None:
        raise InvalidInput(
            "the Docker endpoint {url} needs ca, cert and key files for TLS", url=endpoint.url
        )
    context = ssl.create_default_context(cafile=str(endpoint.ca))
    context.load_cert_chain(str(endpoint.cert), str(endpoint.key))
    return context


def _client(endpoint: EngineEndpoint) -> aiodocker.Docker:
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT, connect=CONNECT_TIMEOUT)
    scheme = endpoint.scheme
    if scheme == "unix":
        return aiodocker.Docker(url=endpoint.url, timeout=timeout, api_version=API_VERSION)
    if scheme in ("tcp", "https"):
        # with our own ssl_context aiodocker keeps tcp:// as plain HTTP: dial https:// [ref §1]
        url = "https://" + endpoint.url.split("://", 1)[1]
        return aiodocker.Docker(
            url=url, timeout=timeout, ssl_context=tls_context(endpoint), api_version=API_VERSION
        )
    if scheme == "ssh":
        # aiodocker >= 0.25 runs `docker system dial-stdio` on the host over asyncssh [ref §1 ssh]
        if importlib.util.find_spec("asyncssh") is None:
            raise InvalidInput(
                "the Docker endpoint {url} uses ssh://, which needs the asyncssh package "
                "(pip install 'aiodocker[ssh]')",
                url=endpoint.url,
            )
        return aiodocker.Docker(url=endpoint.url, timeout=timeout, api_version=API_VERSION)
    raise InvalidInput(
        "the Docker endpoint {url} must start with unix://, tcp:// or ssh://", url=endpoint.url
    )


class Engine:
    """A host's engine. Typed requests; failures become EngineUnreachable / EngineRefused."""

    def __init__(self, host: str, endpoint: EngineEndpoint) -> None:
        self.host = host
        self.endpoint = endpoint
        self.docker = _client(endpoint)

    async def close(self) -> None:
        # after the engine died, close() can re-raise a stream's error [ref §8 Gotcha]
        with contextlib.suppress(Exception):
            await self.docker.close()

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- requests --------------------------------------------------------------------------

    def unreachable(self) -> EngineUnreachable:
        return EngineUnreachable(self.host)

    def _translate(self, exc: BaseException) -> LanguardError:
        if isinstance(exc, DockerError) and exc.status != 900:
            return EngineRefused(self.host, exc.status, exc.message.strip())
        _log.info("Docker engine %s: %s", self.host, exc)
        return self.unreachable()

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """An open response whose body the caller reads (no read timeout: bound it yourself).

        A body cut short (the daemon died mid-stream) surfaces as EngineUnreachable.
        """
        try:
            response = await self.docker._do_query(
                path,
                method,
                params=dict(params or {}),
                data=data,
                headers=dict(headers or {}),
                timeout=aiohttp.ClientTimeout(connect=CONNECT_TIMEOUT),
            )
        except (DockerError, aiohttp.ClientError, OSError) as exc:
            raise self._translate(exc) from None
        try:
            yield response
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            raise self._translate(exc) from None
        finally:
            response.release()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        raw: bool = False,
    ) -> Any:
        """One bounded call; the decoded JSON answer (None when the body is empty), or the
        body's bytes with `raw`."""
        # aiohttp warns that a big bytes body blocks the loop: a file object is streamed
        payload: Any = io.BytesIO(data) if data is not None and len(data) > 65536 else data
        if body is not None:
            payload = json.dumps(body)
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                async with self.docker._query(
                    path,
                    method,
                    params=dict(params or {}),
                    data=payload,
                    headers=dict(headers or {}),
                ) as response:
                    body_bytes = await response.read()
        except TimeoutError:
            _log.info("Docker engine %s: %s %s timed out", self.host, method, path)
            raise self.unreachable() from None
        except (DockerError, aiohttp.ClientError, OSError) as exc:
            raise self._translate(exc) from None
        if raw:
            return body_bytes
        if not body_bytes.strip():
            return None
        try:
            return json.loads(body_bytes)
        except ValueError:
            return body_bytes.decode("utf-8", "replace")

    async def status(self, method: str, path: str, params: Mapping[str, str]) -> int:
        """Only the HTTP status of a call (HEAD: aiodocker would parse the empty body)."""
        url = self.docker._canonicalize_url(path)
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                async with self.docker.session.request(method, url, params=params) as response:
                    return response.status
        except TimeoutError:
            raise self.unreachable() from None
        except (aiohttp.ClientError, OSError) as exc:
            raise self._translate(exc) from None

    async def ping(self) -> bool:
        """True when the engine answers `/_ping` [ref §2 Startup check]."""
        try:
            await self.request("GET", "_ping")
        except EngineUnreachable:
            return False
        return True

    async def version(self) -> dict[str, Any]:
        answer = await self.request("GET", "version")
        return answer if isinstance(answer, dict) else {}

    async def info(self) -> dict[str, Any]:
        answer = await self.request("GET", "info")
        return answer if isinstance(answer, dict) else {}
