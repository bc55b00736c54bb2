"""Fixtures for tests against real Docker engines (run by `make test-docker`).

The two engines start once per session and are always stopped at its end, the session's
failures included (a context manager's finally, driven by the fixture). Each test gets its
own installation id, so containers of one test never meet another's, and its containers are
removed when it ends.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from core.docker.client import Engine
from core.docker.spec import INSTANCE_LABEL, Mount
from core.supervisor.runtime_api import UnitRef
from tests.docker.engines import (
    IMAGE,
    DockerDaemon,
    EngineDidNotStart,
    ensure_dockerd,
    import_image,
    new_engine,
    python_mounts,
    remove_containers,
    remove_root,
    running_engines,
    start_engine,
    stop_engine,
)

HERE = Path(__file__).resolve().parent


def _asked_for(config: pytest.Config) -> bool:
    """True when the command line names this folder or something in it."""
    for arg in config.args:
        path = Path(arg.split("::", 1)[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


# A TLS connection to an engine that aiohttp drops without waiting for connection_lost is
# closed only when the garbage collector finalises it, in whatever test runs then (aiohttp
# #1925, CPython #90476): about one run in three here, after the scenarios that stop an
# engine mid-connection. Only that finaliser is let through, and only in these tests.
_TLS_FINALISER = [
    pytest.mark.filterwarnings(
        r"ignore:Exception ignored in. <function _SelectorTransport.__del__"
        r":pytest.PytestUnraisableExceptionWarning"
    ),
    pytest.mark.filterwarnings(
        r"ignore:Exception ignored in. <socket.socket fd=\d+, family=2, type=1, proto=6, "
        r"laddr=\('127.0.0.1':pytest.PytestUnraisableExceptionWarning"
    ),
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A plain `pytest` of the whole suite does not start engines: `make test-docker` does."""
    if _asked_for(config):
        for item in items:
            if HERE in Path(str(item.fspath)).resolve().parents:
                for mark in _TLS_FINALISER:
                    item.add_marker(mark)
        return
    skip = pytest.mark.skip(reason="Docker tests run with `make test-docker`")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def dockerd() -> str:
    try:
        return ensure_dockerd()
    except EngineDidNotStart as exc:
        pytest.fail(f"no Docker engine can be started here: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def engines(dockerd: str) -> Iterator[tuple[DockerDaemon, DockerDaemon]]:
    try:
        manager = running_engines(dockerd)
        pair = manager.__enter__()
    except EngineDidNotStart as exc:
        pytest.fail(f"no Docker engine can be started here: {exc}", pytrace=False)
    try:
        a, b = pair
        print(
            f"\ndockerd A ({a.driver}) answered in {a.started_in:.2f} s, "
            f"B ({b.driver}, TLS) in {b.started_in:.2f} s"
        )
        yield pair
    finally:
        manager.__exit__(None, None, None)


@contextlib.contextmanager
def live_restore_engine(dockerd: str, name: str, *, tcp: bool) -> Iterator[DockerDaemon]:
    """An engine of its own with --live-restore (its containers outlive a stop of dockerd),
    for tests that stop and restart it; stopped and removed at the end, failures included."""
    engine = new_engine(name, tcp=tcp)
    try:
        start_engine(engine, dockerd, live_restore=True)
        import_image(engine)
        yield engine
    except EngineDidNotStart as exc:
        pytest.fail(f"no Docker engine can be started here: {exc}", pytrace=False)
    finally:
        if engine.alive():
            remove_containers(engine)
        stop_engine(engine)
        remove_root(engine)


@pytest.fixture
def live_engine(dockerd: str) -> Iterator[DockerDaemon]:
    """A third engine of its own, on a unix socket, for tests that stop and restart it."""
    with live_restore_engine(dockerd, "c", tcp=False) as engine:
        yield engine


@pytest.fixture
def engine_a(engines: tuple[DockerDaemon, DockerDaemon]) -> DockerDaemon:
    return engines[0]


@pytest.fixture
def engine_b(engines: tuple[DockerDaemon, DockerDaemon]) -> DockerDaemon:
    return engines[1]


@pytest.fixture
def instance(engines: tuple[DockerDaemon, DockerDaemon]) -> Iterator[str]:
    """A fresh installation id; its containers on both engines are removed at the end."""
    value = uuid.uuid4().hex[:12]
    yield value
    filters = json.dumps({"label": [f"{INSTANCE_LABEL}={value}"]})
    for engine in engines:
        if not engine.alive():
            continue
        with contextlib.suppress(Exception):
            query = urllib.parse.urlencode({"all": "1", "filters": filters})
            status, body = engine.call("GET", f"/containers/json?{query}")
            for item in json.loads(body) if status == 200 else []:
                engine.call("DELETE", f"/containers/{item['Id']}?force=1&v=1")
            status, body = engine.call("GET", "/volumes")
            for volume in (json.loads(body).get("Volumes") or []) if status == 200 else []:
                if value in volume["Name"]:
                    engine.call("DELETE", f"/volumes/{volume['Name']}")


@pytest.fixture
async def client_a(engine_a: DockerDaemon) -> AsyncIterator[Engine]:
    async with Engine("a", engine_a.endpoint) as engine:
        yield engine


@pytest.fixture
async def client_b(engine_b: DockerDaemon) -> AsyncIterator[Engine]:
    async with Engine("b", engine_b.endpoint) as engine:
        yield engine


@pytest.fixture
def extra_mounts() -> list[Mount]:
    return [
        Mount(str(m["Source"]), str(m["Target"]), bind=True, read_only=True)
        for m in python_mounts()
    ]


def unit_for(instance: str, folder: Path, server_id: int = 1, name: str = "alpha") -> UnitRef:
    folder.mkdir(parents=True, exist_ok=True)
    return UnitRef(instance, server_id, name, folder)


def image_for(unit: UnitRef) -> str:
    return IMAGE
