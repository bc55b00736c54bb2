"""/missions end to end: a .pbo attached in Discord travels through the fake CDN into the server
folder, into the rotation (server.cfg's `class Missions`), and `#mission` reaches the game.

One bot and one running game server ("charlie") for the module. Tests run in file order:
the uploads come first, the rotation and loading use them, deletion comes last.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.e2e.fake_discord import StoredFile
from tests.e2e.product import GAME_TIMEOUT, Product, open_product, text_of
from tests.fakes.pbo_factory import mission_pbo

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = "charlie"
ESCAPE = "co10_escape.altis.pbo"
ASSAULT = "tvt20_assault.stratis.pbo"
DOMINATION = "co40_domination.tanoa.pbo"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("missions")) as opened:
        await opened.create_server(SERVER, start=True)
        yield opened


def attach(product: Product, filename: str, data: bytes) -> StoredFile:
    return product.fake.add_attachment(filename, data, "application/octet-stream")


async def upload(product: Product, filename: str, data: bytes) -> str:
    handle = await product.run(
        "missions upload",
        {"server": SERVER, "file": attach(product, filename, data)},
        user=product.cast.operator,
    )
    msg = await handle.message(until=lambda m: bool(m.embeds))
    return text_of(msg)


async def test_upload_an_attachment_through_the_cdn(product: Product) -> None:
    data = mission_pbo("co10_escape")
    stored = attach(product, ESCAPE, data)
    handle = await product.run(
        "missions upload", {"server": SERVER, "file": stored}, user=product.cast.operator
    )
    done = await handle.message(until=lambda m: bool(m.embeds))
    assert "Mission stored" in text_of(done) and r"co10\_escape.altis.pbo" in text_of(done)
    assert "terrain altis" in text_of(done) and not done.ephemeral
    assert any(snap.content.startswith("⏳ downloading") for snap in done.history)
    assert any(str(stored.id) in path for path, _ in product.fake.state.cdn_fetches)
    on_disk = product.server_folder(SERVER) / "mpmissions" / ESCAPE
    assert on_disk.read_bytes() == data
    missions = (await product.game(SERVER, "missions")).splitlines()
    assert ESCAPE in missions  # the game sees it in its mpmissions folder


async def test_list_and_mission_autocomplete(product: Product) -> None:
    assert "Mission stored" in await upload(product, ASSAULT, mission_pbo("tvt20_assault"))
    assert "Mission stored" in await upload(product, DOMINATION, mission_pbo("co40_domination"))

    listed = await product.reply("missions list", {"server": SERVER}, user=product.cast.viewer)
    text = text_of(listed)
    assert "charlie: missions" in text and not listed.ephemeral
    for template in (r"co10\_escape", r"tvt20\_assault", r"co40\_domination"):
        assert template in text

    options = {"server": SERVER, "mission": "co"}
    found = await product.choices("missions load", options, "mission", user=product.cast.operator)
    assert [c["value"] for c in found] == [ESCAPE, DOMINATION]
    options["mission"] = ""
    every = await product.choices("missions delete", options, "mission", user=product.cast.operator)
    assert sorted(c["value"] for c in every) == sorted([ESCAPE, ASSAULT, DOMINATION])


async def test_upload_refusals_are_clear_and_private(product: Product) -> None:
    operator = product.cast.operator
    # (Discord strips folders from attachment names; `..` and `:` still get through)
    traversal = await product.error(
        "missions upload",
        {"server": SERVER, "file": attach(product, "..evil.altis.pbo", mission_pbo("e"))},
        user=operator,
    )
    assert "without folders, '..' or ':'" in traversal

    expired = attach(product, "gone.altis.pbo", mission_pbo("gone"))
    del product.fake.state.cdn[expired.id]  # the CDN no longer serves it
    lost = await product.error(
        "missions upload", {"server": SERVER, "file": expired}, user=operator
    )
    assert "could not fetch 'gone.altis.pbo' from Discord (HTTP 404); attach it again" in lost

    garbage = await product.error(
        "missions upload",
        {"server": SERVER, "file": attach(product, "junk.altis.pbo", b"not a pbo at all")},
        user=operator,
    )
    assert not (product.server_folder(SERVER) / "mpmissions" / "junk.altis.pbo").exists()
    assert "this is not a PBO: 16 bytes is too small to be one" in garbage

    duplicate = await product.error(
        "missions upload",
        {"server": SERVER, "file": attach(product, "copy.altis.pbo", mission_pbo("co10_escape"))},
        user=operator,
    )
    assert ESCAPE in duplicate

    plain_http = await product.error(
        "missions upload",
        {"server": SERVER, "url": "http://example.com/a.altis.pbo"},
        user=operator,
    )
    assert "only https:// links are accepted" in plain_http
    loopback = await product.error(
        "missions upload",
        {"server": SERVER, "url": f"https://127.0.0.1:{product.fake.port}/a.altis.pbo"},
        user=operator,
    )
    assert "points to a loopback address; links must lead to a public server" in loopback
    neither = await product.error("missions upload", {"server": SERVER}, user=operator)
    assert "attach a .pbo file or give an https link" in neither

    refused = await product.error(
        "missions upload",
        {"server": SERVER, "file": attach(product, "x.altis.pbo", mission_pbo("x"))},
        user=product.cast.moderator,
    )
    assert "You need the **operator** level" in refused


async def test_rotation_then_load_reaches_the_game(product: Product) -> None:
    operator = product.cast.operator
    msg = await product.reply(
        "missions rotation",
        {"server": SERVER, "missions": f"{ESCAPE}, tvt20_assault.stratis", "difficulty": "Veteran"},
        user=operator,
    )
    text = text_of(msg)
    assert "Rotation set" in text and "takes effect at the next start" in text
    assert r"1. co10\_escape.altis (Veteran)" in text
    assert r"2. tvt20\_assault.stratis (Veteran)" in text
    listed = await product.reply("missions list", {"server": SERVER})
    assert r"🔁 **co10\_escape.altis**" in text_of(listed)

    unknown = await product.error(
        "missions rotation", {"server": SERVER, "missions": "nope.altis"}, user=operator
    )
    assert "not on charlie: 'nope.altis'; see /missions list" in unknown

    loaded = await product.reply(
        "missions load",
        {"server": SERVER, "mission": DOMINATION, "difficulty": "Recruit"},
        user=operator,
    )
    assert "Mission loading" in text_of(loaded)
    state = await product.game_state(SERVER)
    assert (state["mission"], state["difficulty"]) == ("co40_domination.tanoa", "Recruit")

    # the rotation is rendered into server.cfg: after a restart the game starts its first entry
    handle = await product.run("server restart", {"server": SERVER}, user=operator)
    await handle.message(GAME_TIMEOUT, until=lambda m: bool(m.embeds))
    product.note_pids()
    state = await product.game_state(SERVER)
    assert (state["mission"], state["difficulty"]) == ("co10_escape.altis", "Veteran")


async def test_delete_needs_confirmation_and_not_in_rotation(product: Product) -> None:
    operator = product.cast.operator
    handle = await product.run(
        "missions delete", {"server": SERVER, "mission": ESCAPE}, user=operator
    )
    await product.press(handle, "Delete")
    in_rotation = await handle.followup(0)
    assert in_rotation.ephemeral and "is in the mission rotation" in text_of(in_rotation)

    handle = await product.run(
        "missions delete", {"server": SERVER, "mission": DOMINATION}, user=operator
    )
    question = await handle.message()
    assert question.ephemeral and "Delete **co40\\_domination.tanoa.pbo**" in question.content
    other = await product.press_as_other(handle, "Delete", product.cast.admin)
    assert "Only the person who ran the command" in (await other.message()).content
    assert (product.server_folder(SERVER) / "mpmissions" / DOMINATION).exists()

    await product.press(handle, "Delete")
    done = await handle.message(until=lambda m: "deleted" in m.content)
    assert done.content == "🗑️ co40\\_domination.tanoa.pbo deleted."
    assert not (product.server_folder(SERVER) / "mpmissions" / DOMINATION).exists()

    huge = "m" * 6000
    handle = await product.run(
        "missions delete", {"server": SERVER, "mission": huge}, user=operator
    )
    await product.press(handle, "Delete")
    missing = await handle.followup(0)
    assert missing.ephemeral and "no mission" in text_of(missing)
    assert len(text_of(missing)) < 1100

    audit = await product.audit_text(server=SERVER)
    for action in ("missions.upload", "missions.rotation", "missions.load", "missions.delete"):
        assert f"`{action}`" in audit, action
