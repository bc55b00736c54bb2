"""Connecting to the two engines: unix socket, TCP with mutual TLS, refusals, host facts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.docker.client import API_VERSION, Engine, EngineRefused, EngineUnreachable
from core.docker.hosts import DockerProbe, probe_engine, runtime_for
from core.docker.spec import Mount
from core.hosts.loading import load_hosts
from tests.docker.conftest import unit_for
from tests.docker.engines import IMAGE, DockerDaemon, engine_version
from tests.docker.helpers import game_argv, run_spec, wait_for_line
from tests.docker.tls import make_tls


async def test_both_engines_answer_through_their_own_transport(
    client_a: Engine, client_b: Engine, engine_a: DockerDaemon, engine_b: DockerDaemon
) -> None:
    for client, engine in ((client_a, engine_a), (client_b, engine_b)):
        assert await client.ping()
        version = await client.version()
        assert version["ApiVersion"] == engine_version(engine)["ApiVersion"]
        assert float(version["ApiVersion"]) >= float(API_VERSION.removeprefix("v"))
    # two engines, not one seen twice: each has its own data root
    info_a, info_b = await client_a.info(), await client_b.info()
    assert info_a["DockerRootDir"] != info_b["DockerRootDir"]
    assert str(engine_a.root) in info_a["DockerRootDir"]
    assert str(engine_b.root) in info_b["DockerRootDir"]


async def test_tls_engine_refuses_a_client_without_our_certificate(engine_b: DockerDaemon) -> None:
    stranger = dataclasses.replace(engine_b.endpoint, cert=None, key=None)
    with pytest.raises(Exception, match="needs ca, cert and key"):
        Engine("b", stranger)
    # a certificate from another CA: the handshake fails, reported as "does not answer"
    other = engine_b.root / "other-tls"
    files = make_tls(other)
    wrong = dataclasses.replace(engine_b.endpoint, cert=files["cert"], key=files["key"])
    async with Engine("b", wrong) as engine:
        assert not await engine.ping()
        with pytest.raises(EngineUnreachable, match="host b does not answer"):
            await engine.version()


async def test_refusal_carries_the_engines_message(client_a: Engine) -> None:
    with pytest.raises(EngineRefused) as caught:
        await client_a.request("GET", "containers/no-such-container/json")
    assert caught.value.status == 404
    assert "No such container" in str(caught.value)


async def test_an_engine_that_is_not_there_does_not_answer(engine_a: DockerDaemon) -> None:
    gone = dataclasses.replace(engine_a.endpoint, url=f"unix://{engine_a.root}/nothing.sock")
    async with Engine("ghost", gone) as engine:
        assert not await engine.ping()
        with pytest.raises(EngineUnreachable):
            await probe_engine(engine)


async def test_probe_reports_engine_version_cpus_and_memory(client_b: Engine) -> None:
    facts = await probe_engine(client_b)
    assert facts.engine_version and facts.engine_version[0].isdigit()
    assert facts.api_version is not None
    assert facts.cpus >= 1
    assert facts.memory_total > 0
    assert facts.running_servers == 0


async def test_hosts_declared_in_hosts_toml_become_runtimes_and_probes(
    engines: tuple[DockerDaemon, DockerDaemon],
    instance: str,
    extra_mounts: list[Mount],
    tmp_path: Path,
) -> None:
    """hosts.toml (core.hosts) → runtimes on both engines → a server started on each."""
    a, b = engines
    tls = b.tls
    (tmp_path / "hosts.toml").write_text(
        f"""
[[hosts]]
name = "box-a"
endpoint = "{a.endpoint.url}"
images = {{ fake = "{IMAGE}" }}

[[hosts]]
name = "box-b"
endpoint = "{b.endpoint.url}"
tls = {{ ca = "{tls["ca"]}", cert = "{tls["cert"]}", key = "{tls["key"]}" }}
images = {{ fake = "{IMAGE}" }}
"""
    )
    table = load_hosts(tmp_path / "hosts.toml")
    runtimes = {
        spec.name: runtime_for(spec, lambda server_id: "fake", extra_mounts)
        for spec in table
        if not spec.is_local
    }
    assert runtimes["box-a"].bind_mounts and not runtimes["box-b"].bind_mounts
    probe = DockerProbe(runtimes)
    handles = []
    try:
        for n, name in enumerate(("box-a", "box-b"), start=1):
            unit = unit_for(instance, tmp_path / name, server_id=n, name=name)
            handles.append(await runtimes[name].start(run_spec(unit, game_argv())))
            await wait_for_line(unit.folder / "console.log", "READY")
            facts = await probe(table.get(name))
            assert facts.running_servers >= 1 and facts.engine_version
        no_image = runtime_for(table.get("box-b"), lambda server_id: "arma3")
        with pytest.raises(OSError, match="no image for this game"):
            await no_image.start(run_spec(unit_for(instance, tmp_path / "x"), game_argv()))
        await no_image.close()
    finally:
        for handle in handles:
            await handle.aclose()
        for runtime in runtimes.values():
            await runtime.close()
