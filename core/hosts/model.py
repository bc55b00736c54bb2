"""What one host of `hosts.toml` declares, as validated values.

Why a model of its own: the operator writes this file by hand, and a typo must stop the
bot at start with a line that names the host and the key, not show up later as a server
that cannot start. Validators raise `InvalidValue` (a core error with a literal template),
so the loader can hand every refusal on in the reader's language. Nothing here touches
the disk: the TLS files are checked by the loader.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from core.errors import InvalidInput, InvalidValue

__all__ = [
    "HIGHEST_PORT",
    "LOCAL",
    "LOWEST_PORT",
    "Capacity",
    "Endpoint",
    "EndpointKind",
    "HostMount",
    "HostProblem",
    "HostSpec",
    "PortRange",
    "TlsFiles",
    "format_size",
    "parse_size",
]

LOCAL = "local"
"""The host the bot runs on, whose servers are local processes; always declared."""
LOWEST_PORT = 1024
HIGHEST_PORT = 65535
_MIN_MEMORY = 16 * 1024**2
_MAX_MEMORY = 64 * 1024**4
_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*")
_SSH_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
_IMAGE_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_IMAGE_PART}(?:/{_IMAGE_PART})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?"
)
_GAME = re.compile(r"[a-z0-9_]{1,32}")


class HostProblem(InvalidInput):
    """One thing wrong in the hosts file, as one line."""


class EndpointKind(StrEnum):
    UNIX = "unix"
    TCP = "tcp"
    SSH = "ssh"


def _host_part(value: str) -> str:
    """A host name or IP address (IPv6 in brackets in URLs, bare here)."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(value):
        raise InvalidValue("{value!r} is not a host name or IP address", value=value[:80])
    return value.lower()


class Endpoint(BaseModel):
    """Where a host's Docker engine answers; `url` is what the client library is given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: EndpointKind
    host: str = ""
    port: int = 0
    path: str = ""
    user: str = ""

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """`unix:///run/docker.sock`, `tcp://host:2376` or `ssh://user@host[:22]`."""
        text = text.strip()
        if len(text) > 300 or any(ord(ch) < 32 for ch in text):
            raise InvalidValue("is not an endpoint URL")
        scheme = text.partition("://")[0].lower() if "://" in text else ""
        if scheme not in {kind.value for kind in EndpointKind}:
            raise InvalidValue(
                "must start with unix://, tcp:// or ssh:// (e.g. tcp://203.0.113.7:2376)"
            )
        parts = urlsplit(text)
        if parts.query or parts.fragment:
            raise InvalidValue("takes no ?query or #fragment")
        if scheme == EndpointKind.UNIX:
            if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
                raise InvalidValue(
                    "a unix endpoint names an absolute socket path: unix:///var/run/docker.sock"
                )
            return cls(kind=EndpointKind.UNIX, path=parts.path)
        if parts.password is not None:
            # never repeat the password: the file holds it, the log must not
            raise InvalidValue("holds a password; use a TLS certificate or an SSH key instead")
        try:
            port = parts.port
        except ValueError:
            raise InvalidValue("has a port that is not a number from 1 to 65535") from None
        host = parts.hostname or ""
        if not host:
            raise InvalidValue("names no host")
        host = _host_part(host)
        if scheme == EndpointKind.TCP:
            if parts.username is not None:
                raise InvalidValue("a tcp endpoint takes no user name")
            if parts.path not in {"", "/"}:
                raise InvalidValue("a tcp endpoint takes no path")
            if port is None:
                raise InvalidValue("a tcp endpoint needs a port: tcp://{host}:2376", host=host)
            return cls(kind=EndpointKind.TCP, host=host, port=port)
        if parts.path not in {"", "/"}:
            raise InvalidValue("an ssh endpoint takes no socket path (the client ignores it)")
        user = parts.username or ""
        if user and not _SSH_USER.fullmatch(user):
            raise InvalidValue("{user!r} is not an SSH user name", user=user[:40])
        return cls(kind=EndpointKind.SSH, host=host, port=port or 22, user=user)

    @property
    def url(self) -> str:
        """The address for aiodocker: `https://` for TCP, since the bot always gives its own
        TLS context and aiodocker speaks plain HTTP to `tcp://` when it is given one."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.kind is EndpointKind.UNIX:
            return f"unix://{self.path}"
        if self.kind is EndpointKind.TCP:
            return f"https://{host}:{self.port}"
        user = f"{self.user}@" if self.user else ""
        return f"ssh://{user}{host}:{self.port}"

    def __str__(self) -> str:
        if self.kind is EndpointKind.TCP:
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"tcp://{host}:{self.port}"
        return self.url


class TlsFiles(BaseModel):
    """The client's CA, certificate and key (relative paths: from the hosts file's folder)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    ca: Path = Field(strict=False)
    cert: Path = Field(strict=False)
    key: Path = Field(strict=False)

    @field_validator("ca", "cert", "key", mode="before")
    @classmethod
    def _path(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or not value.strip() or "\0" in value:
            raise InvalidValue("must be the path of a PEM file")
        path = Path(value.strip()).expanduser()
        base = (info.context or {}).get("base")
        if not path.is_absolute() and isinstance(base, Path):
            path = base / path
        return path


class PortRange(BaseModel):
    """The ports servers on this host are planned in, both ends included."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    low: int = LOWEST_PORT
    high: int = HIGHEST_PORT

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


def parse_size(value: Any) -> int:
    """`"16G"`, `"512 MiB"`, `"1.5g"` → bytes (binary units, as Docker's own `-m`)."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise InvalidValue('must be a size with a unit in quotes, e.g. "16G" or "512M"')
    match = re.fullmatch(r"\s*(\d{1,9}(?:\.\d{1,3})?)\s*([KMGT]?)(?:I?B)?\s*", value.upper())
    if match is None or not match.group(2):
        raise InvalidValue('must be a size with a unit in quotes, e.g. "16G" or "512M"')
    size = int(float(match.group(1)) * _UNITS[match.group(2)])
    if not _MIN_MEMORY <= size <= _MAX_MEMORY:
        raise InvalidValue("must be from 16M to 64T")
    return size


def format_size(size: int) -> str:
    """Bytes for a reader: `16 GiB`, `1.5 GiB`, `512 MiB`."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} B"


class Capacity(BaseModel):
    """How much a host may run at once; a start beyond it waits in the host's queue."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    servers: int | None = Field(default=None, ge=1, le=1000)
    """Servers running at once (None: no limit)."""
    memory: int | None = Field(default=None, strict=False)
    """Bytes the running servers may reserve in all (None: no limit)."""

    @field_validator("memory", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        return None if value is None else parse_size(value)


class HostMount(BaseModel):
    """A folder of the host bound into every container there (the game install, the mods),
    at the same path unless `target` says; read-only unless `read_only = false`."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    source: str
    target: str = ""
    read_only: bool = True

    @field_validator("source", "target")
    @classmethod
    def _absolute(cls, value: str, info: ValidationInfo) -> str:
        if info.field_name == "target" and value == "":
            return value
        if (
            len(value) > 1024
            or not value.startswith("/")
            or any(ord(ch) < 32 for ch in value)
            or ".." in value.split("/")
            or ":" in value
        ):
            raise InvalidValue("must be an absolute path without `..` or `:`")
        return value.rstrip("/") or "/"

    @property
    def inside(self) -> str:
        """The path inside the container."""
        return self.target or self.source


class HostSpec(BaseModel):
    """One `[[hosts]]` entry. `local` has no endpoint: its servers are local processes."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    name: str
    endpoint: Endpoint | None = Field(default=None, strict=False)
    tls: TlsFiles | None = None
    public_address: str | None = None
    """What players type to connect (None: the endpoint's host, or the bot's own for local)."""
    ports: PortRange = Field(default_factory=PortRange, strict=False)
    images: dict[str, str] = Field(default_factory=dict)
    """Game name → image reference, e.g. `arma3 = "languard/arma3:2.18"`."""
    capacity: Capacity = Field(default_factory=Capacity)
    mounts: tuple[HostMount, ...] = Field(default=(), strict=False)
    """Folders of the host bound into every container there (read-only by default)."""

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        if not isinstance(value, str) or not _NAME.fullmatch(value):
            raise InvalidValue(
                "a host name is 1 to 32 lowercase letters, digits, - or _ (e.g. box-2)"
            )
        return value

    @field_validator("endpoint", mode="before")
    @classmethod
    def _endpoint(cls, value: Any) -> Any:
        if value is None or isinstance(value, Endpoint):
            return value
        if not isinstance(value, str):
            raise InvalidValue('must be a string such as "tcp://203.0.113.7:2376"')
        return Endpoint.parse(value)

    @field_validator("public_address", mode="before")
    @classmethod
    def _address(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise InvalidValue("must be a host name or IP address players can reach")
        return _host_part(value.strip().strip("[]"))

    @field_validator("ports", mode="before")
    @classmethod
    def _ports(cls, value: Any) -> Any:
        if isinstance(value, PortRange):
            return value
        ends: list[Any]
        if isinstance(value, str) and re.fullmatch(r"\s*\d{1,5}\s*-\s*\d{1,5}\s*", value):
            ends = [int(part) for part in value.split("-")]
        elif isinstance(value, list) and len(value) == 2:
            ends = value
        else:
            raise InvalidValue('must be a range such as "2302-2702" or [2302, 2702]')
        if not all(isinstance(end, int) and not isinstance(end, bool) for end in ends):
            raise InvalidValue('must be a range such as "2302-2702" or [2302, 2702]')
        low, high = ends
        if not LOWEST_PORT <= low <= high <= HIGHEST_PORT:
            raise InvalidValue(
                "must go from a low port to a higher one, within {low}-{high}",
                low=LOWEST_PORT,
                high=HIGHEST_PORT,
            )
        return PortRange(low=low, high=high)

    @field_validator("images")
    @classmethod
    def _images(cls, value: dict[str, str]) -> dict[str, str]:
        for game, image in value.items():
            if not _GAME.fullmatch(game):
                raise InvalidValue("{game!r} is not a game name", game=game[:40])
            if len(image) > 255 or not _IMAGE.fullmatch(image):
                raise InvalidValue(
                    "the image of {game} is not an image reference (e.g. languard/{game}:1)",
                    game=game,
                )
        return value

    @property
    def is_local(self) -> bool:
        return self.name == LOCAL

    @property
    def address(self) -> str | None:
        """The address players use: declared, else the engine's host (None for local)."""
        if self.public_address is not None:
            return self.public_address
        if self.endpoint is not None and self.endpoint.kind is not EndpointKind.UNIX:
            return self.endpoint.host
        return None

    def can_run(self, game: str) -> bool:
        """A Docker host runs the games it has an image for; the loader never says so for
        `local`, whose games depend on what the operator installed (the caller knows)."""
        return game in self.images
