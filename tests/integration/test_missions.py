"""Missions end to end: a real database and supervisor, real files, real HTTPS servers."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import os
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.errors import InvalidInput, NotFound, NotRunning, NotSupported
from core.games.mission_names import MISSION_FOLDER
from core.net.download import address_refusal, download_https, parse_download_url
from core.services.audit import Actor, AuditLog
from core.services.mission_types import DuplicateMission, MissionProgress
from core.services.missions import ROTATION_KEY, MissionService
from core.supervisor.server import ManagedServer
from core.supervisor.states import ServerState
from data.repositories.history import AuditEntry, AuditRepository
from data.repositories.missions import MissionRepository
from data.repositories.servers import ServerRepository
from data.repositories.settings import SettingsRepository
from tests.fakes.fake_profile import FakeProfile
from tests.fakes.memory_link import MemoryProfile
from tests.fakes.pbo_factory import build_pbo, mission_pbo, padded_mission_pbo
from tests.integration.supervision import FAST, Env, supervised

ALICE = Actor(42, "alice")
CAP = 256 * 1024
LOOPBACK = [ipaddress.ip_network("127.0.0.1/32")]


@dataclass
class World:
    env: Env
    service: MissionService
    server: ManagedServer
    profile: MemoryProfile
    folder: Path
    stages: list[MissionProgress] = field(default_factory=list)

    def record(self, event: MissionProgress) -> None:
        self.stages.append(event)

    def files(self) -> list[str]:
        """Everything in the mission folder, temp files included."""
        return sorted(os.listdir(self.folder)) if self.folder.exists() else []

    async def audit(self, limit: int = 5) -> list[AuditEntry]:
        return await AuditRepository(self.env.db).recent(limit, self.server.id)


@asynccontextmanager
async def world(tmp_path: Path, **service_kwargs: Any) -> AsyncIterator[World]:
    profile = MemoryProfile("arma3", missions=True)  # a stand-in for the real Arma 3 profile
    async with supervised(tmp_path, [FakeProfile(), profile]) as env:
        record = await ServerRepository(env.db).create("alpha", "arma3")
        await SettingsRepository(env.db).set_many(
            record.id, {**FAST, "args": [], "liveness_interval": 0}
        )
        server = await env.supervisor.add(record)
        kwargs: dict[str, Any] = {"max_bytes": CAP, **service_kwargs}
        service = MissionService(
            env.supervisor, env.db, AuditLog(AuditRepository(env.db)), **kwargs
        )
        folder = env.supervisor.folder_for("alpha") / MISSION_FOLDER
        yield World(env, service, server, profile, folder)


# -- TLS and HTTPS servers on 127.0.0.1 ---------------------------------------------------


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for localhost, mission.test and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "languard test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("mission.test"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return Tls(server, client)


@asynccontextmanager
async def https_site(tls: Tls, files: dict[str, bytes]) -> AsyncIterator[str]:
    """An honest HTTPS server: /files/<name>, redirects, errors. Yields its base URL."""

    async def serve(request: web.Request) -> web.StreamResponse:
        data = files.get(request.match_info["name"])
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data, content_type="application/octet-stream")

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(request.query["to"])

    async def hops(request: web.Request) -> web.StreamResponse:
        left, name = int(request.match_info["n"]), request.match_info["name"]
        raise web.HTTPFound(f"/hops/{left - 1}/{name}" if left > 0 else f"/files/{name}")

    app = web.Application()
    app.router.add_get("/files/{name}", serve)
    app.router.add_get("/redirect/{name}", redirect)
    app.router.add_get("/hops/{n}/{name}", hops)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def lying_server(
    tls: Tls, head: bytes, body_size: int, hold: float = 0.0
) -> AsyncIterator[str]:
    """Answers every request with `head`, `body_size` bytes, waits `hold` s, hangs up."""
    writers: list[asyncio.StreamWriter] = []
    tasks: list[asyncio.Task[Any]] = []
    stop = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
            async with asyncio.timeout(5):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(head)
                sent = 0
                while sent < body_size:
                    chunk = b"\x00" * min(64 * 1024, body_size - sent)
                    writer.write(chunk)
                    await writer.drain()
                    sent += len(chunk)
                async with asyncio.timeout(hold):
                    await stop.wait()
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
            async with asyncio.timeout(2):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls.server)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.close()
        stop.set()
        for writer in writers:
            writer.close()
        async with asyncio.timeout(5):
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()


# -- uploads from Discord attachments ----------------------------------------------------------


async def test_an_uploaded_mission_is_stored_listed_and_audited(tmp_path: Path) -> None:
    data = mission_pbo("co10_Escape")
    async with world(tmp_path) as w:
        result = await w.service.upload_bytes(
            ALICE, "alpha", "co10_Escape.Altis.PBO", data, w.record
        )
        assert (result.filename, result.template, result.terrain) == (
            "co10_Escape.Altis.pbo",
            "co10_Escape.Altis",
            "Altis",
        )
        assert result.size == len(data) and not result.replaced
        assert w.files() == ["co10_Escape.Altis.pbo"]
        assert (w.folder / "co10_Escape.Altis.pbo").read_bytes() == data
        assert [s.stage for s in w.stages] == ["validating", "stored"]
        [info] = await w.service.list("alpha")
        assert info.terrain == "Altis" and info.template == "co10_Escape.Altis"
        assert info.sha256 == result.sha256 and info.size == len(data)
        assert info.uploaded_by == "alice" and not info.in_rotation
        rows = await MissionRepository(w.env.db).list(w.server.id)
        assert [r.filename for r in rows] == ["co10_Escape.Altis.pbo"]
        [entry] = await w.audit()
        assert entry.action == "missions.upload" and entry.ok and entry.actor_id == 42
        assert entry.arguments["sha256"] == result.sha256


async def test_the_same_content_under_another_name_is_refused(tmp_path: Path) -> None:
    data = mission_pbo()
    async with world(tmp_path) as w:
        await w.service.upload_bytes(ALICE, "alpha", "first.Altis.pbo", data)
        with pytest.raises(DuplicateMission, match=r"first\.Altis\.pbo") as caught:
            await w.service.upload_bytes(ALICE, "alpha", "second.Stratis.pbo", data)
        assert caught.value.existing == "first.Altis.pbo"
        assert w.files() == ["first.Altis.pbo"]
        refusal = (await w.audit())[0]
        assert not refusal.ok and "first.Altis.pbo" in refusal.result


async def test_a_new_version_under_the_same_name_needs_replace(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.service.upload_bytes(ALICE, "alpha", "m.Altis.pbo", mission_pbo(seed=1))
        newer = mission_pbo(seed=2)
        with pytest.raises(InvalidInput, match="already exists"):
            await w.service.upload_bytes(ALICE, "alpha", "m.Altis.pbo", newer)
        with pytest.raises(InvalidInput, match="letter case"):
            await w.service.upload_bytes(ALICE, "alpha", "M.altis.pbo", newer, replace=True)
        result = await w.service.upload_bytes(ALICE, "alpha", "m.Altis.pbo", newer, replace=True)
        assert result.replaced
        assert (w.folder / "m.Altis.pbo").read_bytes() == newer
        assert w.files() == ["m.Altis.pbo"]


def _exists(path: str) -> bool:
    return os.path.exists(path)


def _files_named_like(part: str, folder: Path) -> list[str]:
    return [name for _, _, names in os.walk(folder) for name in names if part in name]


async def test_two_uploads_of_the_same_mission_at_once_store_one(tmp_path: Path) -> None:
    data = mission_pbo()
    async with world(tmp_path) as w:
        results = await asyncio.gather(
            w.service.upload_bytes(ALICE, "alpha", "a.Altis.pbo", data),
            w.service.upload_bytes(ALICE, "alpha", "b.Altis.pbo", data),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["DuplicateMission", "UploadResult"]
        assert len(w.files()) == 1


HOSTILE_NAMES = [
    "../x.Altis.pbo",
    "../../etc/x.Altis.pbo",
    "/etc/x.Altis.pbo",
    "a\\b.Altis.pbo",
    "..\\x.Altis.pbo",
    "C:x.Altis.pbo",
    "x\0.Altis.pbo",
    "x.Altis.pbo\0.txt",
    "x\n.Altis.pbo",
    "CON.Altis.pbo",
    "con.altis.pbo",
    "LPT1.Altis.pbo",
    "\uff58.Altis.pbo",  # fullwidth x
    "x.\u0410ltis.pbo",  # Cyrillic A
    "x\u202e.Altis.pbo",  # right-to-left override
    "x.Altis.pbo\u200b",  # zero-width space
    "x.pbo",
    "x.Altis.txt",
    "x.Altis.pbo.exe",
    ".hidden.Altis.pbo",
    "-rf.Altis.pbo",
    "x .Altis.pbo",
    "x..Altis.pbo",
    "a" * 200 + ".Altis.pbo",
    "",
]


async def test_hostile_file_names_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    data = mission_pbo()
    async with world(tmp_path) as w:
        for name in HOSTILE_NAMES:
            with pytest.raises(InvalidInput):
                await w.service.upload_bytes(ALICE, "alpha", name, data)
        assert w.files() == []
        assert _files_named_like("Altis", tmp_path) == []
        assert not _exists("/etc/x.Altis.pbo")
        assert all(not e.ok for e in await w.audit(limit=len(HOSTILE_NAMES)))


async def test_a_text_file_named_pbo_is_refused_and_removed(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        with pytest.raises(InvalidInput, match="not a PBO"):
            await w.service.upload_bytes(ALICE, "alpha", "x.Altis.pbo", b"hello\n" * 50)
        with pytest.raises(InvalidInput, match=r"mission\.sqm"):
            addon = build_pbo([("config.cpp", b"class CfgPatches {};")])
            await w.service.upload_bytes(ALICE, "alpha", "x.Altis.pbo", addon)
        with pytest.raises(InvalidInput, match="empty"):
            await w.service.upload_bytes(ALICE, "alpha", "x.Altis.pbo", b"")
        assert w.files() == []


async def test_an_oversized_upload_is_refused(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        with pytest.raises(InvalidInput, match="limit"):
            await w.service.upload_bytes(
                ALICE, "alpha", "big.Altis.pbo", padded_mission_pbo(CAP + 1024)
            )
        assert w.files() == []


async def test_missions_exist_only_on_arma_servers(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.env.add_server("mc")
        with pytest.raises(NotSupported, match="Arma 3"):
            await w.service.upload_bytes(ALICE, "mc", "x.Altis.pbo", mission_pbo())
        with pytest.raises(NotSupported):
            await w.service.list("mc")
        with pytest.raises(NotFound):
            await w.service.list("nope")
        assert not (w.env.supervisor.folder_for("mc") / MISSION_FOLDER).exists()


async def test_the_folder_is_the_truth(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.service.upload_bytes(ALICE, "alpha", "a.Altis.pbo", mission_pbo(seed=1))
        (w.folder / "b.Tanoa.pbo").write_bytes(mission_pbo(seed=2))  # copied in by hand
        (w.folder / "a.Altis.pbo").unlink()  # deleted by hand
        stale = w.folder / ".upload-old.part"
        stale.write_bytes(b"x")
        os.utime(stale, (time.time() - 2 * 86400, time.time() - 2 * 86400))
        fresh = w.folder / ".download-now.part"
        fresh.write_bytes(b"x")
        (w.folder / "notes.txt").write_text("ignored")
        [info] = await w.service.list("alpha")
        assert (info.filename, info.terrain, info.uploaded_by) == ("b.Tanoa.pbo", "Tanoa", "")
        rows = await MissionRepository(w.env.db).list(w.server.id)
        assert [r.filename for r in rows] == ["b.Tanoa.pbo"]
        assert not stale.exists() and fresh.exists()


# -- rotation, delete, load -----------------------------------------------------------------


async def test_rotation_is_stored_in_order_and_guards_delete(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        for seed, name in enumerate(["a.Altis.pbo", "b.Stratis.pbo", "c.Tanoa.pbo"]):
            await w.service.upload_bytes(ALICE, "alpha", name, mission_pbo(seed=seed))
        result = await w.service.set_rotation(
            ALICE, "alpha", "b.Stratis, a.Altis.pbo ,B.STRATIS", "veteran"
        )
        assert [e.template for e in result.entries] == ["b.Stratis", "a.Altis", "b.Stratis"]
        assert "next start" in result.note
        settings = await w.env.supervisor.settings_repo.get_all(w.server.id)
        assert settings[ROTATION_KEY] == [
            {"template": "b.Stratis", "difficulty": "Veteran"},
            {"template": "a.Altis", "difficulty": "Veteran"},
            {"template": "b.Stratis", "difficulty": "Veteran"},
        ]
        listed = {m.filename: m.in_rotation for m in await w.service.list("alpha")}
        assert listed == {"a.Altis.pbo": True, "b.Stratis.pbo": True, "c.Tanoa.pbo": False}

        with pytest.raises(NotFound, match="nope"):
            await w.service.set_rotation(ALICE, "alpha", "a.Altis, nope")
        with pytest.raises(InvalidInput, match="difficulty"):
            await w.service.set_rotation(ALICE, "alpha", "a.Altis", "Hardcore")
        settings = await w.env.supervisor.settings_repo.get_all(w.server.id)
        assert len(settings[ROTATION_KEY]) == 3, "a refused rotation changes nothing"

        with pytest.raises(InvalidInput, match="rotation"):
            await w.service.delete(ALICE, "alpha", "a.Altis")
        assert (w.folder / "a.Altis.pbo").exists()
        assert await w.service.delete(ALICE, "alpha", "c.Tanoa.pbo") == "c.Tanoa.pbo"
        assert w.files() == ["a.Altis.pbo", "b.Stratis.pbo"]
        with pytest.raises(NotFound):
            await w.service.delete(ALICE, "alpha", "c.Tanoa.pbo")

        cleared = await w.service.set_rotation(ALICE, "alpha", "")
        assert cleared.entries == () and "empty" in cleared.note
        await w.service.delete(ALICE, "alpha", "a.Altis")
        actions = [(e.action, e.ok) for e in await w.audit(limit=20)]
        assert ("missions.rotation", True) in actions
        assert ("missions.delete", False) in actions and ("missions.delete", True) in actions


async def test_load_needs_a_running_server_then_calls_the_link(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.service.upload_bytes(ALICE, "alpha", "co10_Test.Altis.pbo", mission_pbo())
        with pytest.raises(NotRunning, match="start it first"):
            await w.service.load(ALICE, "alpha", "co10_Test.Altis")
        assert await w.server.start() is ServerState.RUNNING
        async with asyncio.timeout(10):
            while w.server.link is None:
                await asyncio.sleep(0.02)
        with pytest.raises(NotFound):
            await w.service.load(ALICE, "alpha", "other.Altis")
        with pytest.raises(InvalidInput, match="difficulty"):
            await w.service.load(ALICE, "alpha", "co10_Test.Altis", "nightmare")
        loaded = await w.service.load(ALICE, "alpha", "co10_test.altis.pbo", "regular")
        assert (loaded.template, loaded.difficulty) == ("co10_Test.Altis", "Regular")
        assert w.profile.link("alpha").of("load_mission") == [("co10_Test.Altis", "Regular")]
        latest = (await w.audit())[0]
        assert (latest.action, latest.ok, latest.result) == (
            "missions.load",
            True,
            "loaded co10_Test.Altis",
        )
        await w.server.stop()


# -- uploads from links ---------------------------------------------------------------------


async def test_a_link_upload_from_a_local_https_server(tls: Tls, tmp_path: Path) -> None:
    data = mission_pbo("co10_Url")
    async with (
        https_site(tls, {"co10_Url.Altis.pbo": data}) as base,
        world(tmp_path, allow_private_urls=True, ssl=tls.client) as w,
    ):
        url = f"{base}/files/co10_Url.Altis.pbo"
        result = await w.service.upload_url(ALICE, "alpha", url, w.record)
        assert result.filename == "co10_Url.Altis.pbo" and result.terrain == "Altis"
        assert (w.folder / result.filename).read_bytes() == data
        assert w.files() == [result.filename]
        stages = [s.stage for s in w.stages]
        assert stages[0] == "downloading" and stages[-2:] == ["validating", "stored"]
        assert w.stages[-3] == MissionProgress("downloading", len(data), len(data))
        [entry] = await w.audit()
        assert entry.ok and entry.arguments["url"] == "127.0.0.1/…/co10_Url.Altis.pbo"


async def test_a_private_address_is_refused_without_the_operator_setting(
    tls: Tls, tmp_path: Path
) -> None:
    async with (
        https_site(tls, {"co10_Url.Altis.pbo": mission_pbo()}) as base,
        world(tmp_path, ssl=tls.client) as w,
    ):
        with pytest.raises(InvalidInput, match="loopback"):
            await w.service.upload_url(ALICE, "alpha", f"{base}/files/co10_Url.Altis.pbo")
        localhost = base.replace("127.0.0.1", "localhost")
        with pytest.raises(InvalidInput, match="public server"):
            await w.service.upload_url(ALICE, "alpha", f"{localhost}/files/co10_Url.Altis.pbo")
        assert w.files() == []


async def test_links_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    async with world(tmp_path, allow_private_urls=True) as w:
        with pytest.raises(InvalidInput, match="https"):
            await w.service.upload_url(ALICE, "alpha", "http://127.0.0.1:9/x.Altis.pbo")
        with pytest.raises(InvalidInput, match="https"):
            await w.service.upload_url(ALICE, "alpha", "file:///etc/x.Altis.pbo")
        with pytest.raises(InvalidInput) as caught:
            await w.service.upload_url(
                ALICE, "alpha", "https://bob:hunter2@127.0.0.1:9/x.Altis.pbo"
            )
        assert "hunter2" not in str(caught.value) and "password" in str(caught.value)
        with pytest.raises(InvalidInput, match="file name"):
            await w.service.upload_url(ALICE, "alpha", "https://127.0.0.1:9/download?id=3")
        with pytest.raises(InvalidInput, match="file name"):
            await w.service.upload_url(ALICE, "alpha", "https://127.0.0.1:9/%2e%2e%2fx.Altis.pbo")
        entries = await w.audit(limit=10)
        assert all("hunter2" not in repr(e.arguments) + e.result for e in entries)
        assert w.files() == []


@pytest.mark.parametrize(
    ("head", "body", "reason"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (CAP + 1), 0, "limit"),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", CAP * 3, "limit"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", 5000, "cut short"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", CAP * 3, r"malformed|not a PBO"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\n", 10, "compr"),
        (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0, "HTTP 404"),
    ],
    ids=["announced-too-big", "streams-past-cap", "short-body", "longer-body", "gzip", "404"],
)
async def test_a_lying_server_is_cut_off_and_nothing_remains(
    tls: Tls, tmp_path: Path, head: bytes, body: int, reason: str
) -> None:
    async with (
        lying_server(tls, head, body) as base,
        world(tmp_path, allow_private_urls=True, ssl=tls.client) as w,
    ):
        with pytest.raises(InvalidInput, match=reason):
            await w.service.upload_url(ALICE, "alpha", f"{base}/x.Altis.pbo")
        assert w.files() == []
        assert not (await w.audit())[0].ok


async def test_redirects_are_vetted_at_every_hop(tls: Tls, tmp_path: Path) -> None:
    data = mission_pbo("co10_Url")
    async with (
        https_site(tls, {"co10_Url.Altis.pbo": data}) as base,
        world(tmp_path, allowed_networks=LOOPBACK, ssl=tls.client) as w,
    ):
        metadata = "https://169.254.169.254/latest/x.Altis.pbo"
        with pytest.raises(InvalidInput, match="link-local"):
            await w.service.upload_url(ALICE, "alpha", f"{base}/redirect/x.Altis.pbo?to={metadata}")
        ten = "https://10.0.0.1/x.Altis.pbo"
        with pytest.raises(InvalidInput, match="private"):
            await w.service.upload_url(ALICE, "alpha", f"{base}/redirect/x.Altis.pbo?to={ten}")
        plain = base.replace("https", "http") + "/files/co10_Url.Altis.pbo"
        with pytest.raises(InvalidInput, match="https"):
            await w.service.upload_url(ALICE, "alpha", f"{base}/redirect/x.Altis.pbo?to={plain}")
        with pytest.raises(InvalidInput, match="redirects more than 3"):
            await w.service.upload_url(ALICE, "alpha", f"{base}/hops/4/co10_Url.Altis.pbo")
        assert w.files() == []
        result = await w.service.upload_url(ALICE, "alpha", f"{base}/hops/2/co10_Url.Altis.pbo")
        assert result.filename == "co10_Url.Altis.pbo"


async def test_the_connection_goes_to_the_vetted_address(tls: Tls, tmp_path: Path) -> None:
    """A name the system cannot resolve works when our resolver vets it: the IP is pinned."""
    data = mission_pbo("co10_Url")
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return {"mission.test": ["127.0.0.1"], "mixed.test": ["127.0.0.1", "10.1.2.3"]}[host]

    async with https_site(tls, {"co10_Url.Altis.pbo": data}) as base:
        port = base.rsplit(":", 1)[1]
        dest = tmp_path / "dl"
        dest.mkdir()
        path = await download_https(
            f"https://mission.test:{port}/files/co10_Url.Altis.pbo",
            dest,
            max_bytes=CAP,
            timeout=10,
            allowed_networks=LOOPBACK,
            ssl=tls.client,
            resolve=resolve,
        )
        assert path.read_bytes() == data and path.parent == dest
        assert calls == ["mission.test"], "resolved once, then pinned"
        with pytest.raises(InvalidInput, match="private"):
            await download_https(
                f"https://mixed.test:{port}/files/co10_Url.Altis.pbo",
                dest,
                max_bytes=CAP,
                timeout=10,
                allowed_networks=LOOPBACK,
                ssl=tls.client,
                resolve=resolve,
            )
        with pytest.raises(InvalidInput, match="certificate"):
            await download_https(
                f"{base}/files/co10_Url.Altis.pbo",
                dest,
                max_bytes=CAP,
                timeout=10,
                allow_private=True,
            )
        assert sorted(os.listdir(dest)) == [path.name]


async def test_a_stalled_download_times_out_and_leaves_nothing(tls: Tls, tmp_path: Path) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n"
    async with lying_server(tls, head, 100, hold=4.0) as base:
        dest = tmp_path / "dl"
        dest.mkdir()
        started = time.monotonic()
        with pytest.raises(InvalidInput, match="did not finish"):
            await download_https(
                f"{base}/x.Altis.pbo",
                dest,
                max_bytes=CAP,
                timeout=0.5,
                allow_private=True,
                ssl=tls.client,
            )
        assert time.monotonic() - started < 3
        assert os.listdir(dest) == []


async def test_a_cancelled_link_upload_leaves_nothing(tls: Tls, tmp_path: Path) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n"
    async with (
        lying_server(tls, head, 100, hold=4.0) as base,
        world(tmp_path, allow_private_urls=True, ssl=tls.client) as w,
    ):
        task = asyncio.create_task(w.service.upload_url(ALICE, "alpha", f"{base}/x.Altis.pbo"))
        async with asyncio.timeout(5):
            while not w.files():  # the temp file of the download exists
                await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert w.files() == []


# -- address and link rules (pure) -----------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.1",
        "::1", "::", "fe80::1", "fc00::1", "ff02::1", "2001:db8::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
        "2002:7f00:1::1", "64:ff9b::7f00:1",
    ],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_the_operator_setting_allows_private_but_never_unspecified() -> None:
    assert address_refusal(ipaddress.ip_address("10.0.0.1"), allow_private=True) is None
    assert address_refusal(ipaddress.ip_address("0.0.0.0"), allow_private=True) is not None
    assert address_refusal(ipaddress.ip_address("127.0.0.1"), allowed=LOOPBACK) is None
    assert address_refusal(ipaddress.ip_address("127.0.0.2"), allowed=LOOPBACK) is not None


@pytest.mark.parametrize(
    "url",
    ["", "ftp://x/y.Altis.pbo", "https:///x.Altis.pbo", "https://a b/x", "https://x:99999/a",
     "https://u@x/a", "https://:p@x/a", "javascript:alert(1)", "https://x/" + "a" * 3000],
)  # fmt: skip
def test_malformed_links_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        parse_download_url(url)


def test_http_only_with_the_test_flag() -> None:
    assert parse_download_url("http://x.test/a.Altis.pbo", allow_http=True).host == "x.test"
    with pytest.raises(InvalidInput):
        parse_download_url("http://x.test/a.Altis.pbo")
