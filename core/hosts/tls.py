"""The TLS material of a `tcp://` host: checked at start the way the client will load it.

Why apart from the loader: a key that does not match its certificate, a CA file that is a
key, or a key behind a passphrase must be a line at start, not a handshake error later (or
OpenSSL prompting on a terminal nobody watches). Nothing read here is ever echoed: lines
name the file, never its content.
"""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

from core.errors import LanguardError
from core.hosts.model import HostProblem, HostSpec, TlsFiles

__all__ = ["tls_context", "tls_problems"]

_MAX_PEM_BYTES = 1024 * 1024


def _pem_problem(host: str, what: str, path: Path) -> LanguardError | None:
    """Why a TLS file cannot be used, or None; never reads more than it must."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return HostProblem(
            "host {host}: tls.{what} {path} does not exist", host=host, what=what, path=str(path)
        )
    except OSError as exc:
        return HostProblem(
            "host {host}: tls.{what} {path} cannot be read ({reason})",
            host=host,
            what=what,
            path=str(path),
            reason=exc.strerror or type(exc).__name__,
        )
    if not stat.S_ISREG(info.st_mode):
        return HostProblem(
            "host {host}: tls.{what} {path} is not a file", host=host, what=what, path=str(path)
        )
    if info.st_size > _MAX_PEM_BYTES:
        return HostProblem(
            "host {host}: tls.{what} {path} is too large to be a PEM file",
            host=host,
            what=what,
            path=str(path),
        )
    try:
        head = path.read_bytes()
    except OSError as exc:
        return HostProblem(
            "host {host}: tls.{what} {path} cannot be read ({reason})",
            host=host,
            what=what,
            path=str(path),
            reason=exc.strerror or type(exc).__name__,
        )
    if b"-----BEGIN " not in head:
        return HostProblem(
            "host {host}: tls.{what} {path} is not a PEM file", host=host, what=what, path=str(path)
        )
    if what == "key" and b"ENCRYPTED" in head:
        return HostProblem(
            "host {host}: tls.key {path} is protected by a passphrase; the bot needs it "
            "unencrypted (keep it chmod 600)",
            host=host,
            path=str(path),
        )
    return None


def _no_passphrase() -> bytes:
    """Given to OpenSSL so an encrypted key fails instead of prompting on the terminal."""
    return b""


def tls_context(tls: TlsFiles) -> ssl.SSLContext:
    """The client context for a `tcp://` engine: verifies the engine's certificate against
    the CA (and its name) and presents our certificate. Raises ssl.SSLError or OSError."""
    context = ssl.create_default_context(cafile=str(tls.ca))
    context.load_cert_chain(str(tls.cert), str(tls.key), password=_no_passphrase)
    return context


def tls_problems(spec: HostSpec) -> tuple[list[LanguardError], list[str]]:
    """The problems with a host's TLS files (refusals), and warnings worth a log line."""
    tls = spec.tls
    if tls is None:
        return [], []
    host = spec.name
    problems = [
        problem
        for what, path in (("ca", tls.ca), ("cert", tls.cert), ("key", tls.key))
        if (problem := _pem_problem(host, what, path)) is not None
    ]
    if problems:
        return problems, []
    try:
        ssl.create_default_context(cafile=str(tls.ca))
    except (ssl.SSLError, OSError):
        return [
            HostProblem(
                "host {host}: tls.ca {path} holds no usable CA certificate",
                host=host,
                path=str(tls.ca),
            )
        ], []
    try:
        tls_context(tls)
    except (ssl.SSLError, OSError):
        # OpenSSL's text is not shown: it is terse, and the files are the operator's to
        # open; what matters is which two files disagree
        return [
            HostProblem(
                "host {host}: tls.cert {cert} and tls.key {key} do not load as a pair "
                "(a wrong file, or a key of another certificate)",
                host=host,
                cert=str(tls.cert),
                key=str(tls.key),
            )
        ], []
    warnings = []
    mode = tls.key.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.append(f"host {host}: tls.key {tls.key} is readable by other users; chmod 600 it")
    return [], warnings
