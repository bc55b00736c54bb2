"""A French member runs the server commands in French; an American one still reads English.

The real bot and discord.py on the fake Discord, a real fake Arma 3 process behind it. Each
command goes in with the member's client language (`fr` or `en-US`), as Discord sends it on
every interaction; a channel's status message follows its guild's language instead, since
everyone reads it. Tests run in file order and follow server "fr-alpha": listed and shown
while stopped, started with its progress, stopped with a player on it (the question and its
button), then its logs and the host; last, its status message in a French guild.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.fake_discord import FakeMember, FakeMessage, FakeUser, InteractionHandle
from tests.e2e.product import (
    GAME_TIMEOUT,
    REPLY_TIMEOUT,
    Product,
    button_id,
    open_product,
    text_of,
    until,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = "fr-alpha"
GUID = "00112233445566778899aabbccddeeff"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("french-servers")) as opened:
        await opened.create_server(SERVER)
        yield opened


async def run(
    product: Product,
    name: str,
    options: Mapping[str, Any] | None = None,
    *,
    user: FakeUser | FakeMember | None = None,
    locale: str,
) -> InteractionHandle:
    """`/name` as `user` (default: the owner), whose Discord client is set to `locale`."""
    who = user or product.cast.owner
    return await product.fake.invoke_slash(name, options or {}, user=who, locale=locale)


async def answer(product: Product, name: str, locale: str, **options: Any) -> FakeMessage:
    handle = await run(product, name, options, user=product.cast.viewer, locale=locale)
    return await handle.message(REPLY_TIMEOUT)


def field_names(msg: FakeMessage) -> list[str]:
    return [str(f.get("name")) for f in msg.embeds[0].get("fields") or []]


def labels(msg: FakeMessage) -> dict[str, bool]:
    """Label → disabled, for every button on the message."""
    return {
        str(c.get("label")): bool(c.get("disabled"))
        for c in msg.iter_components()
        if c.get("type") == 2
    }


def progress(msg: FakeMessage) -> list[str]:
    return [snap.content for snap in msg.history if snap.content]


async def test_server_list_in_french_and_in_english(product: Product) -> None:
    french = await answer(product, "server list", "fr")
    assert french.embeds[0].get("title") == "Serveurs"
    assert f"**{SERVER}** (arma3) — arrêté" in text_of(french)
    assert "1 serveur" in text_of(french) and "stopped" not in text_of(french)

    english = await answer(product, "server list", "en-US")
    assert english.embeds[0].get("title") == "Servers"
    assert f"**{SERVER}** (arma3) — stopped" in text_of(english)
    assert "1 server" in text_of(english)


async def test_server_status_in_french_and_in_english(product: Product) -> None:
    french = await answer(product, "server status", "fr", server=SERVER)
    assert french.embeds[0].get("description") == "**arrêté**"
    assert field_names(french)[:3] == ["Jeu", "Adresse", "En marche depuis"]

    english = await answer(product, "server status", "en-US", server=SERVER)
    assert english.embeds[0].get("description") == "**stopped**"
    assert field_names(english)[:3] == ["Game", "Address", "Uptime"]


async def test_start_shows_its_progress_in_french(product: Product) -> None:
    assert product.server(SERVER).state.value == "stopped"
    handle = await run(
        product, "server start", {"server": SERVER}, user=product.cast.operator, locale="fr"
    )
    final = await handle.message(GAME_TIMEOUT, until=lambda m: bool(m.embeds))
    product.note_pids()

    steps = progress(final)
    assert steps[0] == f"**Démarrage de {SERVER}**: ⏳ en cours de démarrage…"
    assert steps[-1] == f"**Démarrage de {SERVER}**: ⏳ en cours de démarrage… → ✅ en marche"
    assert f"✅ **{SERVER}** est **en marche**" in text_of(final)

    running = await answer(product, "server status", "fr", server=SERVER)
    # the reason after the state ("— ready") is the supervisor's own English text for now
    assert str(running.embeds[0].get("description")).startswith("**en marche**")


async def test_stop_with_a_player_online_asks_in_each_members_language(product: Product) -> None:
    await product.join(SERVER, "Frodo", GUID, "10.0.0.7")
    operator = product.cast.operator

    asked = await run(product, "server stop", {"server": SERVER}, user=operator, locale="en-US")
    question = await asked.message(REPLY_TIMEOUT)
    assert question.content == f"**{SERVER}** has 1 player(s) online. Stop it anyway?"
    assert "Stop" in labels(question)
    cancel = await product.fake.click_button(question, button_id(question, "Cancel"), user=operator)
    await cancel.response(REPLY_TIMEOUT)  # answered: the English stop is called off

    handle = await run(product, "server stop", {"server": SERVER}, user=operator, locale="fr")
    question = await handle.message(REPLY_TIMEOUT)
    assert question.ephemeral
    assert question.content == f"**{SERVER}** a 1 joueur(s) en ligne. L'arrêter quand même ?"
    assert "Arrêter" in labels(question) and "Stop" not in labels(question)
    await product.press(handle, "Arrêter")
    final = await handle.message(GAME_TIMEOUT, until=lambda m: bool(m.embeds))

    assert f"✅ **{SERVER}** est **arrêté**" in text_of(final)
    assert progress(final)[-1] == (f"**Arrêt de {SERVER}**: ⏳ en cours d'arrêt… → ⏹️ arrêté"), (
        progress(final)
    )
    assert product.server(SERVER).state.value == "stopped"


async def test_logs_and_host_in_french_and_in_english(product: Product) -> None:
    operator = product.cast.operator
    handle = await run(
        product, "logs tail", {"server": SERVER, "lines": 3}, user=operator, locale="fr"
    )
    french = await handle.message(REPLY_TIMEOUT)
    assert french.content.startswith(f"**{SERVER} : ") and "dernières lignes**" in french.content
    handle = await run(
        product, "logs tail", {"server": SERVER, "lines": 3}, user=operator, locale="en-US"
    )
    english = await handle.message(REPLY_TIMEOUT)
    assert english.content.startswith(f"**{SERVER}: last ") and "lines**" in english.content

    host = await answer(product, "host", "fr")
    assert {"Disque (données)", "Bot en marche depuis", "Serveurs"} <= set(field_names(host))
    assert "0 en marche / 1" in text_of(host)
    host = await answer(product, "host", "en-US")
    assert {"Disk (data)", "Bot uptime", "Servers"} <= set(field_names(host))


async def test_status_message_follows_the_guild_language(product: Product) -> None:
    fake = product.fake
    channel = fake.add_channel("statut")
    fake.guild.preferred_locale = "fr"
    await fake.resync_guild()
    try:
        bound = await run(
            product, "server channels", {"server": SERVER, "status": channel}, locale="fr"
        )
        assert f"**statut** → <#{channel.id}>" in text_of(await bound.message(REPLY_TIMEOUT))

        def posted() -> FakeMessage | None:
            found = [m for m in fake.messages(channel) if not m.deleted and m.custom_ids()]
            return found[0] if found else None

        board = await until(posted, REPLY_TIMEOUT, "status message")
        assert board.embeds[0].get("description") == "**arrêté**"
        assert "Adresse" in field_names(board)
        assert board.embeds[0]["footer"]["text"] == "arma3 · dernier changement"
        assert labels(board) == {"Démarrer": False, "Arrêter": True, "Redémarrer": True}

        # the reply to a press is in the language of whoever pressed
        pressed = await fake.click_button(
            board, button_id(board, "Démarrer"), user=product.cast.viewer, locale="en-US"
        )
        refused = text_of(await pressed.message(REPLY_TIMEOUT))
        assert "You need the **operator** level" in refused
        pressed = await fake.click_button(
            board, button_id(board, "Démarrer"), user=product.cast.moderator, locale="fr"
        )
        refused = text_of(await pressed.message(REPLY_TIMEOUT))
        assert "Il vous faut le niveau **opérateur**" in refused
    finally:
        fake.guild.preferred_locale = "en-US"
        await fake.resync_guild()
