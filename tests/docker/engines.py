"""Real Docker engines for the tests: two dockerd on this machine stand for two hosts.

Engine A listens on a unix socket (the bot's own machine: bind mounts), engine B on TCP
127.0.0.1 with mutual TLS (a remote host: named volumes). Each has its own --data-root,
--exec-root, --pidfile and containerd namespaces, no bridge and no iptables rules, so the
two never meet [ref §2 of ../shared/reference/docker-engine.md]. Images come from a tar of
an almost empty root filesystem (`images/create?fromSrc=-`, no registry [ref §3]); the
host's /usr, Python and this repository are bind-mounted read-only at run time.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.docker.client import EngineEndpoint
from tests.docker.tls import make_tls

START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
IMAGE = "languard-test/fake:1"
REPO = Path(__file__).resolve().parents[2]
PYTHON = Path(sys.executable)
"""The venv's interpreter: its path is the same inside the containers."""


class EngineDidNotStart(RuntimeError):
    pass


# -- installing ---------------------------------------------------------------------------


def ensure_dockerd() -> str:
    """The dockerd binary; installs Debian's docker.io first when it is missing (root)."""
    found = shutil.which("dockerd")
    if found:
        return found
    if os.geteuid() != 0:
        raise EngineDidNotStart("dockerd is missing and only root can install docker.io")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "docker.io"]):
        done = subprocess.run(command, env=env, capture_output=True, timeout=900, check=False)
        if done.returncode != 0:
            raise EngineDidNotStart(f"{' '.join(command)} failed: {done.stderr[-500:]!r}")
    found = shutil.which("dockerd")
    if not found:
        raise EngineDidNotStart("docker.io installed no dockerd")
    return found


# -- talking to an engine without the code under test ---------------------------------------


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


@dataclass
class DockerDaemon:
    """One dockerd of ours: how to reach it, and how to stop it."""

    name: str
    root: Path
    endpoint: EngineEndpoint
    process: subprocess.Popen[bytes] | None = None
    socket_path: Path | None = None
    port: int | None = None
    tls: dict[str, Path] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    started_in: float = 0.0
    driver: str = ""
    live_restore: bool = False

    def connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        if self.socket_path is not None:
            return _UnixConnection(str(self.socket_path), timeout)
        context = ssl.create_default_context(cafile=str(self.tls["ca"]))
        context.load_cert_chain(str(self.tls["cert"]), str(self.tls["key"]))
        assert self.port is not None
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=context)

    def call(
        self, method: str, path: str, body: bytes | None = None, *, content_type: str = ""
    ) -> tuple[int, bytes]:
        conn = self.connection(timeout=60.0)
        try:
            headers = {"Content-Type": content_type} if content_type else {}
            conn.request(method, "/v1.41" + path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def ping(self) -> bool:
        try:
            status, body = self.call("GET", "/_ping")
        except (OSError, http.client.HTTPException):
            return False
        return status == 200 and body == b"OK"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def cgroup(self) -> str:
        return f"/{self.root.name}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_engine(engine: DockerDaemon, dockerd: str, *, live_restore: bool = False) -> None:
    """Start dockerd for `engine`; overlay2 first, vfs when overlay cannot work here."""
    engine.live_restore = live_restore
    errors = []
    for driver in ("overlay2", "vfs"):
        try:
            _start(engine, dockerd, driver, live_restore)
            return
        except EngineDidNotStart as exc:
            errors.append(f"{driver}: {exc}")
            stop_engine(engine)
    raise EngineDidNotStart("; ".join(errors))


def _start(engine: DockerDaemon, dockerd: str, driver: str, live_restore: bool) -> None:
    root = engine.root
    args = [
        dockerd,
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'x'}",  # short: containerd's socket lives under it
        f"--pidfile={root / 'dockerd.pid'}",
        f"--storage-driver={driver}",
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
        # a system containerd, when there is one, is shared: keep each engine in its own
        # namespaces [ref §2 containerd conflict]
        f"--containerd-namespace=languard-{engine.name}",
        f"--containerd-plugins-namespace=languard-{engine.name}-plugins",
        f"--cgroup-parent={engine.cgroup}",  # finds its containers' processes at the end
    ]
    if live_restore:
        args.append("--live-restore")
    if engine.socket_path is not None:
        args.append(f"--host=unix://{engine.socket_path}")
    else:
        tls = engine.tls
        args += [
            "--tlsverify",
            f"--tlscacert={tls['ca']}",
            f"--tlscert={tls['server_cert']}",
            f"--tlskey={tls['server_key']}",
            f"--host=tcp://127.0.0.1:{engine.port}",
        ]
    engine.args = args
    began = time.monotonic()
    with open(engine.log, "ab") as log:
        engine.process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = began + START_TIMEOUT
    while time.monotonic() < deadline:
        if not engine.alive():
            raise EngineDidNotStart(f"dockerd exited: {_log_tail(engine)}")
        if engine.ping():
            engine.started_in = time.monotonic() - began
            engine.driver = driver
            return
        time.sleep(0.05)
    raise EngineDidNotStart(f"no answer in {START_TIMEOUT:.0f} s: {_log_tail(engine)}")


def pause_engine(engine: DockerDaemon) -> None:
    """Stop dockerd alone (TERM to it, not its session): with live-restore its containers
    keep running [ref §10 live-restore], as when a host's engine is restarted."""
    process = engine.process
    assert process is not None
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=STOP_TIMEOUT)


def resume_engine(engine: DockerDaemon, dockerd: str) -> None:
    """Start the same dockerd again, with the very same options (live restore needs it)."""
    _start(engine, dockerd, engine.driver, engine.live_restore)


def _log_tail(engine: DockerDaemon) -> str:
    with contextlib.suppress(OSError):
        return engine.log.read_text(errors="replace")[-800:]
    return ""


def remove_containers(engine: DockerDaemon) -> None:
    """Force-remove every container (dockerd would stop them anyway; this is quicker)."""
    with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
        status, body = engine.call("GET", "/containers/json?all=1")
        for item in json.loads(body) if status == 200 else []:
            engine.call("DELETE", f"/containers/{item['Id']}?force=1&v=1")
        status, body = engine.call("GET", "/volumes")
        for volume in json.loads(body).get("Volumes") or [] if status == 200 else []:
            engine.call("DELETE", f"/volumes/{volume['Name']}?force=1")


def _sweep(engine: DockerDaemon) -> None:
    """Kill what a dockerd killed hard may leave: shims and containerd (their command lines
    name its exec-root) and container processes (in its cgroup parent)."""
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == me:
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            cgroups = (proc / "cgroup").read_text()
        except OSError:
            continue
        if str(engine.root).encode() in cmdline or f":{engine.cgroup}/" in cgroups:
            with contextlib.suppress(OSError):
                os.kill(int(proc.name), signal.SIGKILL)


def stop_engine(engine: DockerDaemon) -> None:
    """TERM, then KILL the whole session (dockerd, its containerd and shims), bounded."""
    process = engine.process
    if process is None:
        _sweep(engine)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)
    # containerd and shims are in dockerd's session: nothing of ours may outlive the tests
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    engine.process = None
    _sweep(engine)


def new_engine(name: str, *, tcp: bool) -> DockerDaemon:
    root = Path(tempfile.mkdtemp(prefix=f"lgd-{name}-", dir="/tmp"))
    if tcp:
        tls = make_tls(root / "tls")
        port = _free_port()
        endpoint = EngineEndpoint(
            f"tcp://127.0.0.1:{port}", ca=tls["ca"], cert=tls["cert"], key=tls["key"]
        )
        return DockerDaemon(name, root, endpoint, port=port, tls=tls)
    sock = root / "d.sock"
    return DockerDaemon(name, root, EngineEndpoint(f"unix://{sock}"), socket_path=sock)


def remove_root(engine: DockerDaemon) -> None:
    """Unmount what dockerd left mounted (it should leave nothing), then delete its files."""
    with contextlib.suppress(OSError):
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        inside = [m.split()[1] for m in mounts if m.split()[1].startswith(str(engine.root))]
        for point in sorted(inside, reverse=True):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True, timeout=10)
    shutil.rmtree(engine.root, ignore_errors=True)


# -- the test image ----------------------------------------------------------------------


def rootfs_tar() -> bytes:
    """bin, lib and lib64 link into /usr, which the containers get read-only from the host;
    sbin stays a folder: the engine mounts its init (tini) at /sbin/docker-init."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in ("usr", "tmp", "proc", "sys", "dev", "etc", "root", "work", "run", "sbin"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        for link in ("bin", "lib", "lib64"):
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, f"usr/{link}"
            tar.addfile(info)
    return buffer.getvalue()


def import_image(engine: DockerDaemon, image: str = IMAGE) -> None:
    repo, _, tag = image.partition(":")
    status, body = engine.call(
        "POST",
        f"/images/create?fromSrc=-&repo={repo}&tag={tag}",
        rootfs_tar(),
        content_type="application/x-tar",
    )
    # errors come inside a 200 progress stream too [ref §3]
    if status != 200 or b"errorDetail" in body:
        raise EngineDidNotStart(f"image import failed: {status} {body[-300:]!r}")


def python_mounts() -> list[dict[str, object]]:
    """Read-only binds that make the venv's Python and this repository work inside."""
    paths = {Path("/usr"), REPO, Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    keep = sorted(p for p in paths if not any(o != p and o in p.parents for o in paths))
    return [{"Type": "bind", "Source": str(p), "Target": str(p), "ReadOnly": True} for p in keep]


@contextlib.contextmanager
def running_engines(dockerd: str) -> Iterator[tuple[DockerDaemon, DockerDaemon]]:
    a, b = new_engine("a", tcp=False), new_engine("b", tcp=True)
    try:
        start_engine(a, dockerd)
        start_engine(b, dockerd)
        for engine in (a, b):
            import_image(engine)
        yield a, b
    finally:
        for engine in (a, b):
            if engine.alive():
                remove_containers(engine)
            stop_engine(engine)
            remove_root(engine)


def engine_version(engine: DockerDaemon) -> dict[str, object]:
    status, body = engine.call("GET", "/version")
    assert status == 200, body
    answer = json.loads(body)
    assert isinstance(answer, dict)
    return answer
