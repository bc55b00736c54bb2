"""Reading `hosts.toml` at start: every problem at once, one line each, nothing secret.

Why: an operator fixing a hand-written file wants the whole list in one go, and a wrong
file must stop the start (a server placed on a host that half-parsed is worse than no
start). The TLS material is checked here too, by loading it the way the client will, so a
key that does not match its certificate is a line at start and not a handshake error later.
A file that holds a key or a password is never echoed: lines carry key names, paths and
positions, never values of secrets.
"""

from __future__ import annotations

import logging
import os
import stat
import tomllib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.errors import LanguardError, NotFound
from core.hosts.model import LOCAL, EndpointKind, HostProblem, HostSpec
from core.hosts.tls import tls_problems

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_HOSTS",
    "HostTable",
    "HostsFileError",
    "load_hosts",
]

_log = logging.getLogger(__name__)

MAX_FILE_BYTES = 256 * 1024
MAX_HOSTS = 64
_MAX_LINES = 40


class HostsFileError(LanguardError):
    """The hosts file cannot be used; `problems` holds one line each (the header says
    which file), so a start-up can print them all and stop."""

    def __init__(self, path: Path, problems: Sequence[LanguardError]) -> None:
        super().__init__(
            "the hosts file {path} has {count} problem(s); the bot does not start until "
            "they are fixed",
            path=str(path),
            count=len(problems),
        )
        self.path = path
        self.problems = tuple(problems)

    def lines(self) -> list[str]:
        """The header, then one line per problem (at most 40, then how many more)."""
        shown = [f"  - {problem}" for problem in self.problems[:_MAX_LINES]]
        if len(self.problems) > _MAX_LINES:
            shown.append(f"  - … and {len(self.problems) - _MAX_LINES} more")
        return [str(self), *shown]


@dataclass(frozen=True)
class HostTable:
    """The declared hosts, `local` first; `warnings` are worth a log line, not a refusal."""

    hosts: tuple[HostSpec, ...]
    path: Path | None = None
    warnings: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.hosts or not self.hosts[0].is_local:
            raise ValueError("the first host of a table is local")

    @classmethod
    def local_only(cls) -> HostTable:
        return cls((HostSpec(name=LOCAL),))

    def get(self, name: str) -> HostSpec:
        for host in self.hosts:
            if host.name == name:
                return host
        raise NotFound("no host named {name}", name=name)

    def names(self) -> list[str]:
        return [host.name for host in self.hosts]

    def __iter__(self) -> Iterator[HostSpec]:
        return iter(self.hosts)

    def __len__(self) -> int:
        return len(self.hosts)


def _label(raw: Any, index: int) -> str:
    """How a line names an entry: its name when it has a usable one, else its position."""
    name = raw.get("name") if isinstance(raw, dict) else None
    if isinstance(name, str) and 0 < len(name) <= 32 and name.isprintable():
        return name
    return f"#{index + 1}"


def _field_path(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc) or "(entry)"


def _pydantic_problems(host: str, exc: ValidationError) -> list[LanguardError]:
    problems: list[LanguardError] = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = tuple(error.get("loc", ()))
        key = _field_path(loc)
        cause = (error.get("ctx") or {}).get("error")
        kind = error.get("type", "")
        if kind == "extra_forbidden":
            problems.append(HostProblem("host {host}: unknown key {key!r}", host=host, key=key))
        elif kind == "missing":
            problems.append(HostProblem("host {host}: {key} is missing", host=host, key=key))
        elif isinstance(cause, LanguardError):
            problems.append(
                HostProblem("host {host}: {key} {reason}", host=host, key=key, reason=cause)
            )
        else:
            detail = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
            problems.append(
                HostProblem("host {host}: {key}: {detail}", host=host, key=key, detail=detail)
            )
    return problems


def _cross_problems(spec: HostSpec, games: Collection[str] | None) -> list[LanguardError]:
    """Rules that tie keys of one entry together."""
    host = spec.name
    out: list[LanguardError] = []
    if spec.is_local:
        if spec.endpoint is not None or spec.tls is not None or spec.images:
            out.append(
                HostProblem(
                    "host local runs servers as local processes: it takes no endpoint, "
                    "tls or images",
                )
            )
        return out
    if spec.endpoint is None:
        out.append(
            HostProblem("host {host}: endpoint is missing (unix://, tcp:// or ssh://)", host=host)
        )
        return out
    if spec.endpoint.kind is EndpointKind.TCP and spec.tls is None:
        out.append(
            HostProblem(
                "host {host}: a tcp endpoint needs a tls table with ca, cert and key: "
                "without it anyone who reaches the port is root on that machine",
                host=host,
            )
        )
    if spec.endpoint.kind is not EndpointKind.TCP and spec.tls is not None:
        out.append(HostProblem("host {host}: tls only applies to a tcp endpoint", host=host))
    if games is not None:
        for game in spec.images:
            if game not in games:
                out.append(
                    HostProblem(
                        "host {host}: images has no game {game!r} (known: {known})",
                        host=host,
                        game=game,
                        known=", ".join(sorted(games)),
                    )
                )
    return out


def _read(path: Path, required: bool) -> tuple[dict[str, Any] | None, list[LanguardError]]:
    try:
        info = path.stat()
    except FileNotFoundError:
        if required:
            return None, [HostProblem("the hosts file {path} does not exist", path=str(path))]
        return {}, []
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return None, [
            HostProblem(
                "the hosts file {path} cannot be read ({reason})", path=str(path), reason=reason
            )
        ]
    if not stat.S_ISREG(info.st_mode):
        return None, [HostProblem("the hosts file {path} is not a file", path=str(path))]
    if info.st_size > MAX_FILE_BYTES:
        return None, [
            HostProblem(
                "the hosts file is larger than {limit} KiB; it declares a few hosts, not data",
                limit=MAX_FILE_BYTES // 1024,
            )
        ]
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return None, [
            HostProblem(
                "the hosts file {path} cannot be read ({reason})", path=str(path), reason=reason
            )
        ]
    if len(raw) > MAX_FILE_BYTES:
        return None, [
            HostProblem(
                "the hosts file is larger than {limit} KiB; it declares a few hosts, not data",
                limit=MAX_FILE_BYTES // 1024,
            )
        ]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, [HostProblem("the hosts file is not UTF-8 text")]
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as exc:
        # tomllib names the line and column and what it expected, never the value
        return None, [HostProblem("the hosts file is not valid TOML: {reason}", reason=str(exc))]


def _entries(document: dict[str, Any]) -> tuple[list[Any], list[LanguardError]]:
    problems: list[LanguardError] = [
        HostProblem(
            "unknown key {key!r} at the top of the hosts file (hosts are [[hosts]] tables)",
            key=key[:40],
        )
        for key in document
        if key != "hosts"
    ]
    entries = document.get("hosts", [])
    if not isinstance(entries, list):
        problems.append(HostProblem("hosts must be written as [[hosts]] tables"))
        return [], problems
    if len(entries) > MAX_HOSTS:
        problems.append(
            HostProblem(
                "the hosts file declares {count} hosts; at most {limit} are allowed",
                count=len(entries),
                limit=MAX_HOSTS,
            )
        )
        return [], problems
    return entries, problems


def load_hosts(
    path: Path, *, required: bool = False, games: Collection[str] | None = None
) -> HostTable:
    """The hosts of `path`, `local` first; raises HostsFileError listing every problem.

    A missing file is only `local` unless `required` (the operator named it). `games`, when
    given, is the set of game names an `images` key may use.
    """
    document, problems = _read(path, required)
    if document is None:
        raise HostsFileError(path, problems)
    entries, problems = _entries(document)
    base = path.parent.resolve()
    specs: list[HostSpec] = []
    warnings: list[str] = []
    for index, raw in enumerate(entries):
        label = _label(raw, index)
        if not isinstance(raw, dict):
            problems.append(HostProblem("host {host}: is not a table", host=label))
            continue
        try:
            spec = HostSpec.model_validate(raw, context={"base": base})
        except ValidationError as exc:
            problems.extend(_pydantic_problems(label, exc))
            continue
        cross = _cross_problems(spec, games)
        tls, tls_warnings = tls_problems(spec) if not cross else ([], [])
        problems.extend(cross + tls)
        warnings.extend(tls_warnings)
        if not cross and not tls:
            specs.append(spec)
    problems.extend(_duplicates(entries, specs))
    if problems:
        raise HostsFileError(path, problems)
    for spec in specs:
        if not spec.is_local and not spec.images:
            warnings.append(f"host {spec.name} declares no images: it can run no server yet")
    local = next((spec for spec in specs if spec.is_local), HostSpec(name=LOCAL))
    others = tuple(spec for spec in specs if not spec.is_local)
    for line in warnings:
        _log.warning("%s", line)
    return HostTable((local, *others), path=path, warnings=tuple(warnings))


def _duplicates(entries: Sequence[Any], specs: Sequence[HostSpec]) -> list[LanguardError]:
    """Two entries with one name, or two names for one engine (capacity counted twice)."""
    problems: list[LanguardError] = []
    seen: set[str] = set()
    for raw in entries:
        name = raw.get("name") if isinstance(raw, dict) else None
        if isinstance(name, str) and name in seen:
            problems.append(HostProblem("host {host} is declared more than once", host=name[:32]))
        if isinstance(name, str):
            seen.add(name)
    engines: dict[str, str] = {}
    for spec in specs:
        if spec.endpoint is None:
            continue
        key = os.path.normpath(spec.endpoint.url)
        if key in engines and engines[key] != spec.name:
            problems.append(
                HostProblem(
                    "hosts {first} and {second} use the same endpoint {endpoint}",
                    first=engines[key],
                    second=spec.name,
                    endpoint=str(spec.endpoint),
                )
            )
        engines.setdefault(key, spec.name)
    return problems
