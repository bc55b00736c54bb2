"""/mods and /server mods end to end: the real discord.py bot on the fake Discord, with the
fake SteamCMD (a real child process) and the fake Workshop API behind it, set up the way an
operator does (LANGUARD_STEAMCMD, LANGUARD_STEAM_USER/PASSWORD, LANGUARD_WORKSHOP_API_URL).

An admin imports a Launcher preset (an attachment) and watches the download; a text file
is refused; an operator gives a server its set with roles (autocompleted) and starts it
with the right `-mod=`/`-serverMod=`; the Workshop publishes a newer CBA and a French
operator runs `/mods update`: progress edits (in French) through the countdown, the stop,
the download and the start, then one summary; the player on the server was warned and
kicked. Last, an admin pins and orders mods, and removing a mod a running server loads is
asked first, then refused. The tests run in file order and build on each other.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from unittest import mock

import psutil
import pytest
import pytest_asyncio

from tests.e2e.fake_discord import FakeMessage
from tests.e2e.product import GAME_TIMEOUT, Product, is_error, open_product, text_of
from tests.fakes.steamcmd_bin import FakeSteamCmd, install_fake_steamcmd
from tests.fakes.workshop_api import FakeWorkshopApi, fake_workshop_api

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = "mike"
CBA, ACE = 450814997, 463939057
NAMES = {CBA: "CBA_A3", ACE: "ACE"}
PASSWORD = "Pa55 w0rd!xyzzy"
NEW = 1800000000
JOB_TIMEOUT = 90.0
GUID = "0123456789abcdef0123456789abcdef"


class Stack:
    fake: FakeSteamCmd
    api: FakeWorkshopApi


stack = Stack()


def preset_html() -> bytes:
    rows = "".join(
        f'<tr data-type="ModContainer"><td data-type="DisplayName">{name}</td>'
        '<td><span class="from-steam">Steam</span></td>'
        f'<td><a href="https://steamcommunity.com/sharedfiles/filedetails/?id={item_id}" '
        'data-type="Link">link</a></td></tr>'
        for item_id, name in NAMES.items()
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><html><!--Created by Arma 3 Launcher-->'
        '<head><meta name="arma:PresetName" content="Ops" /></head><body>'
        f'<div class="mod-list"><table>{rows}</table></div></body></html>'
    ).encode()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    tmp = tmp_path_factory.mktemp("mods")
    items = {str(i): {"name": name, "size": 30_000} for i, name in NAMES.items()}
    stack.fake = install_fake_steamcmd(
        tmp / "steamcmd", {"accounts": {"opsteam": {"password": PASSWORD}}, "items": items}
    )
    async with fake_workshop_api(
        {i: {"title": name, "size": 30_000} for i, name in NAMES.items()}
    ) as api:
        stack.api = api
        environment = {
            "LANGUARD_STEAMCMD": str(stack.fake.executable),
            "LANGUARD_STEAM_USER": "opsteam",
            "LANGUARD_STEAM_PASSWORD": PASSWORD,
            "LANGUARD_WORKSHOP_API_URL": api.url,
        }
        with mock.patch.dict(os.environ, environment):
            async with open_product(tmp) as opened:
                await opened.create_server(SERVER)
                yield opened


def seen(msg: FakeMessage, text: str) -> bool:
    """`text` was on the message at some point (its edits included)."""
    return any(text in snap.content for snap in msg.history) or text in text_of(msg)


def contents(msg: FakeMessage) -> list[str]:
    return [snap.content for snap in msg.history if snap.content]


async def test_an_admin_imports_a_preset_and_sees_its_download(product: Product) -> None:
    admin = product.cast.admin
    text_file = product.fake.add_attachment("modlist.txt", b"@cba_a3\n@ace\n", "text/plain")
    refused = await product.error("mods import", {"preset": text_file}, user=admin)
    assert "is not an Arma 3 Launcher preset" in refused and "Export" in refused
    preset = product.fake.add_attachment("ops.html", preset_html(), "text/html")
    below = await product.error("mods import", {"preset": preset}, user=product.cast.operator)
    assert "You need the **admin** level" in below

    handle = await product.run("mods import", {"preset": preset}, user=admin)
    done = await handle.message(JOB_TIMEOUT, until=lambda m: bool(m.embeds))
    text = text_of(done)
    assert not is_error(done) and not done.ephemeral, text
    assert "Preset Ops imported" in text and "Downloaded" in text, text
    assert "CBA\\_A3" in text and "ACE" in text
    assert seen(done, "**Downloading mods**"), contents(done)
    assert any("downloading" in c or "installing" in c for c in contents(done)), contents(done)
    assert [e["item"] for e in stack.fake.events("item_start")] == [CBA, ACE]

    listed = await product.reply("mods list", user=product.cast.viewer)
    text = text_of(listed)
    assert listed.ephemeral and "Mod library" in text and "2 mods" in text, text
    assert f"`{CBA}`" in text and "used by no server" in text


async def test_an_operator_sets_a_servers_mods_with_roles(product: Product) -> None:
    operator = product.cast.operator
    choices = await product.choices(
        "server mods", {"server": SERVER, "set": "@cba_a3, ac"}, "set", user=operator
    )
    assert [c["value"] for c in choices] == ["@cba_a3, @ace"], choices
    nothing = await product.choices(
        "server mods", {"server": SERVER, "set": ""}, "set", user=product.cast.viewer
    )
    assert nothing == []

    msg = await product.reply(
        "server mods", {"server": SERVER, "set": "@cba_a3, @ace:server-only"}, user=operator
    )
    text = text_of(msg)
    assert "Mods of mike set" in text and not msg.ephemeral, text
    assert "`1.` `@cba_a3`" in text and "`2.` `@ace`" in text and "server-only" in text
    shown = await product.reply("server mods", {"server": SERVER}, user=operator)
    assert shown.ephemeral and "Mods of mike" in text_of(shown)
    assert "server-only" in text_of(shown)

    handle = await product.run("server start", {"server": SERVER}, user=operator)
    final = await handle.message(GAME_TIMEOUT, until=lambda m: bool(m.embeds))
    assert "is **running**" in text_of(final), text_of(final)
    server = product.server(SERVER)
    assert server.handle is not None
    argv = psutil.Process(server.handle.pid).cmdline()
    assert "-mod=modset/@cba_a3" in argv and "-serverMod=modset/@ace" in argv, argv


async def test_a_french_operator_updates_with_progress_and_one_summary(product: Product) -> None:
    server = product.server(SERVER)
    assert server.handle is not None
    old_pid = server.handle.pid
    await product.join(SERVER, "Zed", GUID, "203.0.113.9")
    product.running.services.mod_updates.warnings = (1.5, 0.5)  # not 5 minutes in a test
    stack.api.items[CBA]["time_updated"] = NEW
    stack.fake.control["items"][str(CBA)]["time_updated"] = NEW
    stack.fake.write_control()

    handle = await product.fake.invoke_slash(
        "mods update", {}, user=product.cast.operator, locale="fr"
    )
    done = await handle.message(JOB_TIMEOUT, until=lambda m: bool(m.embeds))
    text = text_of(done)
    assert "Mise à jour des mods terminée" in text, text
    assert "**mike** tourne de nouveau" in text and "1 joueur expulsé" in text, text
    assert "2 avertissements envoyés" in text and "les 2 mods vus chargés" in text, text
    assert "Téléchargés" in text and "CBA\\_A3" in text
    steps = contents(done)
    assert all(s.startswith("**Mise à jour des mods**") for s in steps), steps
    order = ["avertissement des joueurs", "arrêt du serveur", "démarrage du serveur"]
    found = [next(i for i, s in enumerate(steps) if word in s) for word in order]
    assert found == sorted(found), steps

    chat = (product.server_folder(SERVER) / "chat.log").read_text(encoding="utf-8")
    assert chat.count("Global\tMod update: the server restarts in") == 2, chat
    assert server.handle is not None and server.handle.pid != old_pid
    product.note_pids()
    listed = await product.reply("mods list", user=product.cast.viewer)
    assert "update available" not in text_of(listed)

    again = await product.fake.invoke_slash(
        "mods update", {"server": SERVER}, user=product.cast.operator, locale="fr"
    )
    quiet = await again.message(JOB_TIMEOUT, until=lambda m: bool(m.embeds))
    assert "Les mods sont à jour" in text_of(quiet), text_of(quiet)
    audit = await product.audit_text(server=SERVER)
    assert "mods.maintenance.kick" in audit and "mods.maintenance.verify" in audit, audit


async def test_pin_order_and_a_refused_remove_of_a_loaded_mod(product: Product) -> None:
    admin = product.cast.admin
    bad = await product.error("mods add", {"id_or_url": "not a mod"}, user=admin)
    assert "is not a Workshop id or link" in bad
    choices = await product.choices("mods pin", {"mod": "ac"}, "mod", user=admin)
    assert [c["value"] for c in choices] == [str(ACE)], choices

    pinned = await product.reply("mods pin", {"mod": str(ACE), "pinned": True}, user=admin)
    assert "📌" in pinned.content and "held at its version" in pinned.content, pinned.content
    listed = await product.reply("mods list", user=product.cast.viewer)
    assert "📌 pinned" in text_of(listed)

    ordered = await product.reply("mods order", {"mods": "ACE, CBA_A3"}, user=admin)
    text = text_of(ordered)
    assert "Mod library, in order" in text, text
    assert text.index("`1.` **ACE**") < text.index("`2.` **CBA\\_A3**"), text

    handle = await product.run("mods remove", {"mod": str(ACE)}, user=admin)
    question = await handle.message()
    assert question.ephemeral and "Remove mod **ACE**" in question.content
    assert "It is in the mod sets of mike" in question.content, question.content
    await product.press(handle, "Remove")
    refused = await handle.message(until=lambda m: bool(m.embeds))
    assert is_error(refused), text_of(refused)
    assert "ACE is loaded by running servers (mike)" in text_of(refused)
    still = await product.reply("mods list", user=product.cast.viewer)
    assert "2 mods" in text_of(still)
