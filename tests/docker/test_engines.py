"""Connecting to the two engines: unix socket, TCP with mutual TLS, refusals, host facts."""

from __future__ import annotations

import dataclasses

import pytest

from core.docker.client import API_VERSION, Engine, EngineRefused, EngineUnreachable
from core.docker.probe import probe_engine
from tests.docker.engines import DockerDaemon, engine_version


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
    from tests.docker.engines import make_tls

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
