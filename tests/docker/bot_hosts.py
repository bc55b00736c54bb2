"""What tests/docker/test_bot_on_hosts.py needs besides the bot: the hosts.toml an operator
would write for the test engines, and the engines' own API (not the code under test) to
see where containers run and what their volumes hold.

Every engine call here blocks (http.client): the tests run them in a thread, since the
bot shares their event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import tarfile
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from core.docker.spec import INSTANCE_LABEL, SERVER_LABEL
from tests.docker.engines import IMAGE, DockerDaemon, python_mounts
from tests.e2e.fake_discord import FakeChannel, FakeMessage
from tests.e2e.product import Product

__all__ = [
    "containers_on",
    "data_mount",
    "file_in_container",
    "hosts_toml",
    "inspect_container",
    "numbers",
    "posted_lines",
    "remove_instance",
    "titled",
]


def _toml(value: str) -> str:
    """A TOML basic string: JSON's escaping is TOML's for these paths and names."""
    return json.dumps(value)


def hosts_toml(engines: Sequence[tuple[str, DockerDaemon]], install: Path) -> str:
    """hosts.toml declaring each engine under its name, the test image for Arma 3, and
    read-only mounts of this machine's Python, this repository and the fake game's folder
    (as an operator mounts a game install)."""
    sources = [str(m["Source"]) for m in python_mounts()] + [str(install)]
    mounts = ", ".join(f"{{ source = {_toml(source)} }}" for source in sources)
    lines: list[str] = ['[[hosts]]\nname = "local"\n']
    for name, engine in engines:
        point = engine.endpoint
        lines += [
            "[[hosts]]",
            f"name = {_toml(name)}",
            f"endpoint = {_toml(point.url)}",
            f"images = {{ arma3 = {_toml(IMAGE)} }}",
            f"mounts = [{mounts}]",
        ]
        if point.ca is not None and point.cert is not None and point.key is not None:
            ca, cert, key = (_toml(str(p)) for p in (point.ca, point.cert, point.key))
            lines.append(f"tls = {{ ca = {ca}, cert = {cert}, key = {key} }}")
        lines.append("")
    return "\n".join(lines)


def _get(engine: DockerDaemon, path: str) -> tuple[int, bytes]:
    return engine.call("GET", path)


async def containers_on(
    engine: DockerDaemon, instance: str, server_id: int, *, every: bool = False
) -> list[dict[str, Any]]:
    """The containers of one server of this installation on `engine` (running ones unless
    `every`), as `GET /containers/json` lists them."""
    filters = json.dumps({"label": [f"{INSTANCE_LABEL}={instance}", f"{SERVER_LABEL}={server_id}"]})
    query = urllib.parse.urlencode({"all": "1" if every else "0", "filters": filters})
    status, body = await asyncio.to_thread(_get, engine, f"/containers/json?{query}")
    assert status == 200, body
    listed = json.loads(body)
    assert isinstance(listed, list)
    return listed


async def inspect_container(engine: DockerDaemon, container: str) -> dict[str, Any] | None:
    status, body = await asyncio.to_thread(_get, engine, f"/containers/{container}/json")
    if status == 404:
        return None
    assert status == 200, body
    answer = json.loads(body)
    assert isinstance(answer, dict)
    return answer


async def file_in_container(engine: DockerDaemon, container: str, path: Path) -> bytes | None:
    """A file as the container sees it (its volume), read through the archive endpoint;
    None when it is not there."""
    query = urllib.parse.urlencode({"path": str(path)})
    status, body = await asyncio.to_thread(_get, engine, f"/containers/{container}/archive?{query}")
    if status == 404:
        return None
    assert status == 200, body
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        member = tar.extractfile(path.name)
        assert member is not None
        return member.read()


def numbers(lines: Iterable[str], tag: str) -> list[int]:
    """The n of each line `... Flood <tag> <n>` (the fake Arma 3's `fake.flood`), in order."""
    marker = f"Flood {tag} "
    found: list[int] = []
    for line in lines:
        at = line.find(marker)
        if at >= 0:
            found.append(int(line[at + len(marker) :].split()[0]))
    return found


def remove_instance(engines: Iterable[DockerDaemon], instance: str) -> None:
    """Remove every container and volume of one installation (the end of the module)."""
    filters = json.dumps({"label": [f"{INSTANCE_LABEL}={instance}"]})
    query = urllib.parse.urlencode({"all": "1", "filters": filters})
    for engine in engines:
        if not engine.alive():
            continue
        with contextlib.suppress(Exception):
            status, body = engine.call("GET", f"/containers/json?{query}")
            for item in json.loads(body) if status == 200 else []:
                engine.call("DELETE", f"/containers/{item['Id']}?force=1")
            status, body = engine.call("GET", "/volumes")
            for volume in (json.loads(body).get("Volumes") or []) if status == 200 else []:
                if instance in volume["Name"]:
                    engine.call("DELETE", f"/volumes/{volume['Name']}")


# -- what Discord and the containers show --------------------------------------------------


def titled(product: Product, channel: FakeChannel, words: str) -> list[FakeMessage]:
    return [
        m
        for m in product.fake.messages(channel)
        if m.embeds and words in str(m.embeds[0].get("title", ""))
    ]


def posted_lines(product: Product, channel: FakeChannel) -> list[str]:
    """Every log line a channel received: code blocks, and .log files on overflow."""
    lines: list[str] = []
    for message in product.fake.messages(channel):
        for attachment in message.attachments:
            lines += attachment.data.decode().splitlines()
        if not message.attachments and "```" in message.content:
            body = message.content.split("```\n", 1)[1].rsplit("\n```", 1)[0]
            lines += body.split("\n")
    return lines


def data_mount(container: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The mount holding the server's folder in an inspected container."""
    return next(m for m in container["Mounts"] if m["Destination"] == str(folder))
