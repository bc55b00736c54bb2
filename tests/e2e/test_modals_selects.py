"""Forms and menus end to end, through the real discord.py on the fake Discord: `/server set`
without a value opens a form (modal) for the MOTD, `/missions rotation` without `missions`
offers a menu (select) of the stored missions.

One bot for the module; two Arma 3 servers that are never started (settings and missions do
not need a running game): "echo" with three missions, "golf" with more than a menu can list.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

import bot.selects
from tests.e2e.fake_discord import FakeMessage
from tests.e2e.fake_discord.dispatch import InteractionHandle
from tests.e2e.product import REPLY_TIMEOUT, Product, is_error, open_product, text_of
from tests.fakes.pbo_factory import mission_pbo

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = "echo"
CROWDED = "golf"
MISSIONS = ("co10_escape.altis.pbo", "tvt20_assault.stratis.pbo", "co40_domination.tanoa.pbo")
SECRET = "Hunter2-never-shown"
MODAL, UPDATE_MESSAGE, TEXT_INPUT, SELECT = 9, 7, 4, 3


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("forms")) as opened:
        await opened.create_server(SERVER)
        await opened.create_server(CROWDED)
        yield opened


def put_missions(product: Product, server: str, names: list[str] | tuple[str, ...]) -> None:
    """Missions copied into the server's folder by hand (the bot lists them all the same)."""
    folder = product.server_folder(server) / "mpmissions"
    folder.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(names):
        (folder / name).write_bytes(mission_pbo(name.split(".")[0], seed=seed))


def text_input(modal: dict[str, Any]) -> dict[str, Any]:
    (label,) = modal["components"]
    assert label["type"] == 18 and label["component"]["type"] == TEXT_INPUT
    return dict(label["component"])


async def stored(product: Product, key: str) -> str:
    views = await product.running.services.servers.get_settings(SERVER)
    return next(v.value for v in views if v.key == key)


async def open_form(product: Product, key: str, user: Any) -> tuple[InteractionHandle, dict]:
    handle = await product.run("server set", {"server": SERVER, "key": key}, user=user)
    record = await handle.response(REPLY_TIMEOUT)
    assert record.type == MODAL, record.data
    return handle, dict(record.data)


async def answer(handle: InteractionHandle) -> FakeMessage:
    return await handle.message(REPLY_TIMEOUT)


# -- /server set: the form --------------------------------------------------------------------


async def test_form_prefilled_with_the_motd_changes_it(product: Product) -> None:
    admin = product.cast.admin
    first = await product.reply(
        "server set", {"server": SERVER, "key": "motd", "value": "Welcome|Be nice"}, user=admin
    )
    assert "Setting changed" in text_of(first)

    opened, modal = await open_form(product, "motd", admin)
    assert 1 <= len(modal["title"]) <= 45 and "motd" in modal["title"]
    box = text_input(modal)
    assert box["style"] == 2  # paragraph: one MOTD line per line
    assert box["value"] == "Welcome\nBe nice"

    lines = "Welcome to Echo\n\n  No team killing  \r\nTeamSpeak: ts.example.org"
    submitted = await product.fake.submit_modal(opened, {box["custom_id"]: lines})
    msg = await answer(submitted)
    assert "Setting changed" in text_of(msg) and msg.ephemeral and not is_error(msg)
    assert await stored(product, "motd") == (
        "Welcome to Echo|No team killing|TeamSpeak: ts.example.org"
    )
    audit = await product.audit_text(server=SERVER)
    assert audit.count("**ada** `server.set` on echo") == 2  # the option, then the form


async def test_emptied_form_clears_the_motd(product: Product) -> None:
    opened, modal = await open_form(product, "motd", product.cast.owner)
    box = text_input(modal)
    assert box["required"] is False
    submitted = await product.fake.submit_modal(opened, {box["custom_id"]: ""})
    assert "Setting changed" in text_of(await answer(submitted))
    assert await stored(product, "motd") == "(none)"


async def test_submit_refused_when_the_level_was_revoked_meanwhile(product: Product) -> None:
    admin, role = product.cast.admin, product.cast.roles["admin"]
    opened, modal = await open_form(product, "motd", admin)
    product.fake.set_roles(admin, [])  # the admin role is taken away while the form is open
    try:
        box = text_input(modal)
        submitted = await product.fake.submit_modal(opened, {box["custom_id"]: "Hijacked"})
        msg = await answer(submitted)
    finally:
        product.fake.set_roles(admin, [role])
    assert is_error(msg) and msg.ephemeral
    assert "You need the **admin** level" in text_of(msg)
    assert await stored(product, "motd") == "(none)"
    assert "denied:server set" in await product.audit_text(server=SERVER)


async def test_a_form_is_offered_only_for_long_keys(product: Product) -> None:
    _, modal = await open_form(product, "hostname", product.cast.owner)
    box = text_input(modal)
    assert box["style"] == 1 and box["value"] == "Languard Arma 3 server"
    refused = await product.error("server set", {"server": SERVER, "key": "max_players"})
    assert "`value` option" in refused and "now: 64" in refused


async def test_a_secret_is_never_prefilled_nor_shown(product: Product) -> None:
    owner = product.cast.owner
    done = await product.reply(
        "server set", {"server": SERVER, "key": "password", "value": SECRET}, user=owner
    )
    assert "Setting changed" in text_of(done) and SECRET not in text_of(done)

    handle = await product.run("server set", {"server": SERVER, "key": "password"}, user=owner)
    record = await handle.response(REPLY_TIMEOUT)
    assert record.type != MODAL  # no form for a secret: Discord has no password field
    msg = await answer(handle)
    assert is_error(msg) and "secret" in text_of(msg) and "`value` option" in text_of(msg)

    # nothing the bot ever answered (messages, forms) carries the password
    everything = [json.dumps(r.data) for r in product.fake.state.callbacks]
    everything += [json.dumps(m.payload(product.fake.state.user)) for m in _messages(product)]
    assert not any(SECRET in text for text in everything)
    assert SECRET not in await product.audit_text(server=SERVER)


def _messages(product: Product) -> list[FakeMessage]:
    return list(product.fake.state.messages.values())


# -- /missions rotation: the menu -------------------------------------------------------------


def select_of(msg: FakeMessage) -> dict[str, Any]:
    found = [c for c in msg.iter_components() if c.get("type") == SELECT]
    assert len(found) == 1, msg.custom_ids()
    return found[0]


async def open_menu(product: Product, user: Any) -> tuple[FakeMessage, dict[str, Any]]:
    handle = await product.run("missions rotation", {"server": SERVER}, user=user)
    msg = await answer(handle)
    assert msg.ephemeral and not is_error(msg), text_of(msg)
    return msg, select_of(msg)


async def test_menu_sets_the_rotation(product: Product) -> None:
    put_missions(product, SERVER, MISSIONS)
    operator = product.cast.operator
    msg, menu = await open_menu(product, operator)
    labels = [o["label"] for o in menu["options"]]
    assert sorted(labels) == sorted(name.removesuffix(".pbo") for name in MISSIONS)
    assert menu["min_values"] == 0 and menu["max_values"] == len(MISSIONS)

    picked = [menu["options"][2], menu["options"][0]]  # clicked in this order...
    chosen = await product.fake.select_option(
        msg, menu["custom_id"], [o["value"] for o in picked], user=operator
    )
    assert (await chosen.response(REPLY_TIMEOUT)).type == UPDATE_MESSAGE
    public = await chosen.followup(0, REPLY_TIMEOUT)
    assert "Rotation set" in text_of(public) and not public.ephemeral
    assert select_of_or_none(product.fake.state.messages[msg.id]) is None  # menu is gone
    rotation = await product.running.services.missions.rotation(SERVER)
    # ...and saved in the order of the options, which is the order the menu announced
    assert [e.template for e in rotation] == [labels[0], labels[2]]
    assert "missions.rotation" in await product.audit_text(server=SERVER)

    # a second menu lists the current rotation first, pre-selected
    _, again = await open_menu(product, operator)
    assert [o["label"] for o in again["options"]][:2] == [labels[0], labels[2]]
    assert [bool(o.get("default")) for o in again["options"]] == [True, True, False]


def select_of_or_none(msg: FakeMessage) -> dict[str, Any] | None:
    return next((c for c in msg.iter_components() if c.get("type") == SELECT), None)


async def test_menu_refused_when_the_level_was_revoked_meanwhile(product: Product) -> None:
    operator, role = product.cast.operator, product.cast.roles["operator"]
    before = await product.running.services.missions.rotation(SERVER)
    msg, menu = await open_menu(product, operator)
    product.fake.set_roles(operator, [])
    try:
        chosen = await product.fake.select_option(
            msg, menu["custom_id"], [menu["options"][-1]["value"]], user=operator
        )
        refused = await answer(chosen)
    finally:
        product.fake.set_roles(operator, [role])
    assert is_error(refused) and "**operator** level" in text_of(refused)
    assert await product.running.services.missions.rotation(SERVER) == before


async def test_menu_expires_cleanly(product: Product, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.selects, "PICK_TIMEOUT", 0.5)
    handle = await product.run("missions rotation", {"server": SERVER}, user=product.cast.operator)
    expired = await handle.message(REPLY_TIMEOUT, until=lambda m: m.content.startswith("Expired"))
    assert select_of_or_none(expired) is None


async def test_more_than_25_missions_keeps_the_text_option(product: Product) -> None:
    names = [f"co{i:02d}_mission.altis.pbo" for i in range(26)]
    put_missions(product, CROWDED, names)
    refused = await product.error(
        "missions rotation", {"server": CROWDED}, user=product.cast.operator
    )
    assert "26 missions" in refused and "(25)" in refused and "`missions` option" in refused

    msg = await product.reply(
        "missions rotation",
        {"server": CROWDED, "missions": "co25_mission.altis, co03_mission.altis"},
        user=product.cast.operator,
    )
    assert "Rotation set" in text_of(msg) and select_of_or_none(msg) is None
    rotation = await product.running.services.missions.rotation(CROWDED)
    assert [e.template for e in rotation] == ["co25_mission.altis", "co03_mission.altis"]
