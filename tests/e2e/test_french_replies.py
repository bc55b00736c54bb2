"""A French member reads French: pages, totals, refusals and confirmations; English stays English.

The real bot on the fake Discord; each command goes in with the member's Discord locale
(`fr` or `en-US`), the way Discord sends it on every interaction. The bans are made with
`/bans add`; nothing is seeded behind the bot's back. Tests run in file order: the first
makes the 45 bans the paging tests count.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.fake_discord import FakeMember, FakeMessage, FakeUser, InteractionHandle
from tests.e2e.product import Product, is_error, open_product, text_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

BANS = 45


def guid(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("french")) as opened:
        yield opened


async def run(
    product: Product,
    name: str,
    options: Mapping[str, Any] | None = None,
    *,
    user: FakeUser | FakeMember,
    locale: str,
) -> InteractionHandle:
    """`/name` as `user`, whose Discord client is set to `locale`."""
    return await product.fake.invoke_slash(name, options or {}, user=user, locale=locale)


def footer(msg: FakeMessage) -> str:
    return str((msg.embeds[0].get("footer") or {}).get("text", ""))


def buttons(msg: FakeMessage) -> dict[str, bool]:
    """Label → disabled, for every button on the message."""
    return {
        str(c.get("label")): bool(c.get("disabled"))
        for c in msg.iter_components()
        if c.get("type") == 2
    }


async def test_45_bans_page_in_french(product: Product) -> None:
    moderator = product.cast.moderator
    for n in range(BANS):
        handle = await run(
            product,
            "bans add",
            {"id": guid(f"pest{n}"), "duration": "7d"},
            user=moderator,
            locale="fr" if n % 2 else "en-US",
        )
        added = text_of(await handle.message(10))
        assert ("Ban ajouté" if n % 2 else "Ban added") in added, added

    handle = await run(product, "bans list", user=moderator, locale="fr")
    first = await handle.message(10)
    assert first.ephemeral
    assert first.embeds[0].get("title") == "Bans"
    assert footer(first) == f"{BANS} bans · page 1 sur 2"
    assert buttons(first) == {"Précédent": True, "page 1 sur 2": True, "Suivant": False}
    lines = str(first.embeds[0].get("description", "")).splitlines()
    assert len(lines) == 25
    assert all("jusqu'au <t:" in line and "tous les serveurs" in line for line in lines), lines[0]
    assert all("posé par Languard (mona)" in line for line in lines), lines[0]

    # the page turns in French although the click itself carries no locale of its own
    pressed = await product.press(handle, "Suivant")
    await pressed.response()
    second = await handle.message(10, until=lambda m: "page 2 sur 2" in footer(m))
    assert footer(second) == f"{BANS} bans · page 2 sur 2"
    assert buttons(second) == {"Précédent": False, "page 2 sur 2": True, "Suivant": True}
    assert len(str(second.embeds[0].get("description", "")).splitlines()) == BANS - 25


async def test_the_same_list_stays_english_for_an_english_member(product: Product) -> None:
    handle = await run(product, "bans list", user=product.cast.moderator, locale="en-US")
    first = await handle.message(10)
    assert footer(first) == f"{BANS} bans · page 1 of 2"
    assert buttons(first) == {"Previous": True, "page 1 of 2": True, "Next": False}
    text = text_of(first)
    assert "until <t:" in text and "all servers" in text and "made by Languard" in text
    assert "jusqu" not in text and "tous les serveurs" not in text


async def test_french_counts_use_the_singular_for_zero(product: Product) -> None:
    """French says "0 entrée" where English says "0 entries"."""
    viewer = product.cast.viewer
    french = await (await run(product, "schedule list", user=viewer, locale="fr")).message(10)
    assert footer(french) == "0 entrée"
    assert "Rien de planifié." in text_of(french) and french.embeds[0]["title"] == "Planning"
    english = await (await run(product, "schedule list", user=viewer, locale="en-US")).message(10)
    assert footer(english) == "0 entries" and "Nothing scheduled." in text_of(english)

    grants = await (await run(product, "perms list", user=viewer, locale="fr")).message(10)
    text = text_of(grants)
    assert footer(grants) == "4 attributions"
    assert "**observateur**" in text and "**modérateur**" in text and "**opérateur**" in text
    assert "membres avec la permission Administrateur : **admin** partout" in text


async def test_a_level_too_low_is_refused_in_french(product: Product) -> None:
    handle = await run(product, "bans list", user=product.cast.viewer, locale="fr")
    refusal = await handle.message(10)
    assert is_error(refusal) and refusal.ephemeral
    assert "Il vous faut le niveau **modérateur** pour cela (vous avez observateur)." in (
        text_of(refusal)
    )
    assert "`/perms grant`" in text_of(refusal)

    handle = await run(product, "bans list", user=product.cast.viewer, locale="en-US")
    english = await handle.message(10)
    assert is_error(english)
    assert "You need the **moderator** level for this (you have viewer)." in text_of(english)


async def test_a_permanent_ban_is_confirmed_in_french(product: Product) -> None:
    moderator = product.cast.moderator
    target = guid("cheater")
    handle = await run(
        product, "bans add", {"id": target, "duration": "perm"}, user=moderator, locale="fr"
    )
    question = await handle.message(10)
    assert question.ephemeral
    assert question.content == f"Bannir `{target}` **définitivement** ?"
    assert buttons(question) == {"Bannir définitivement": False, "Annuler": False}

    await (await product.press(handle, "Annuler")).response()
    cancelled = await handle.message(10, until=lambda m: m.content == "Annulé.")
    assert all(buttons(cancelled).values()), "the buttons are disabled once answered"
    listed = await (await run(product, "bans list", user=moderator, locale="fr")).message(10)
    assert footer(listed).startswith(f"{BANS} bans"), "nothing was banned"

    handle = await run(
        product, "bans add", {"id": target, "duration": "perm"}, user=moderator, locale="fr"
    )
    await handle.message(10)
    await (await product.press(handle, "Bannir définitivement")).response()
    done = await handle.message(10, until=lambda m: bool(m.embeds))
    assert done.embeds[0].get("title") == "Ban ajouté"
    assert "(tous les serveurs, définitif)" in text_of(done)


async def test_the_confirmation_stays_english_for_an_english_member(product: Product) -> None:
    handle = await run(
        product,
        "bans add",
        {"id": guid("smurf"), "duration": "perm"},
        user=product.cast.moderator,
        locale="en-US",
    )
    question = await handle.message(10)
    assert question.content == f"Ban `{guid('smurf')}` **permanently**?"
    assert buttons(question) == {"Ban permanently": False, "Cancel": False}
    await (await product.press(handle, "Cancel")).response()
    cancelled = await handle.message(10, until=lambda m: m.content == "Cancelled.")
    assert cancelled.ephemeral
