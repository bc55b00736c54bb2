"""/server ... end to end: the real bot on the fake Discord, a real fake Arma 3 process behind it.

One bot and one game server ("alpha") for the module; the tests run in file order and follow
alpha through its life: created, started (with progress), configured, restarted, killed,
started again, stopped with a player online, deleted. Each test states what it expects of
alpha when it begins, so a failure earlier shows up as a clear precondition failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.views import Confirm
from core.services.audit import MASK
from tests.e2e.fake_discord import FakeMessage
from tests.e2e.product import (
    GAME_TIMEOUT,
    Product,
    free_arma_port,
    open_product,
    text_of,
    until,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

GUID = "0123456789abcdef0123456789abcdef"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("servers")) as opened:
        yield opened


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_list_and_create_at_their_levels(product: Product) -> None:
    cast = product.cast
    empty = await product.reply("server list", user=cast.viewer)
    assert "No servers yet" in text_of(empty) and not empty.ephemeral

    refused = await product.error(
        "server create", {"name": "alpha", "game": "arma3"}, user=cast.operator
    )
    assert "You need the **admin** level" in refused and "you have operator" in refused

    await product.create_server("alpha")  # as the owner: admin by owning the guild
    listed = await product.reply("server list", user=cast.viewer)
    assert "**alpha** (arma3) — stopped" in text_of(listed)

    status = await product.reply("server status", {"server": "alpha"}, user=cast.viewer)
    assert "**stopped**" in text_of(status) and not status.ephemeral

    taken = await product.error("server create", {"name": "alpha", "game": "arma3"})
    assert "already exists" in taken


async def test_admin_role_member_creates_a_server(product: Product) -> None:
    admins = product.cast.roles["admin"]
    await product.reply("perms revoke", {"role": admins})
    without = await product.error(
        "server create", {"name": "spare", "game": "arma3"}, user=product.cast.admin
    )
    assert "(you have none)" in without  # ada is admin only through the granted role
    await product.reply("perms grant", {"role": admins, "level": "admin"})
    # a random free port: two test runs at once would both start "spare" on Arma's 2302,
    # and the second start is (rightly) refused with the pid that holds the port
    msg = await product.reply(
        "server create",
        {"name": "spare", "game": "arma3", "port": free_arma_port()},
        user=product.cast.admin,
    )
    assert "Server created" in text_of(msg) and "**spare** (arma3)" in text_of(msg)
    assert "`rcon_password`" in text_of(msg)  # generated, named, never shown


async def test_start_edits_its_reply_with_progress(product: Product) -> None:
    assert product.server("alpha").state.value == "stopped"
    handle = await product.run("server start", {"server": "alpha"}, user=product.cast.operator)
    final = await handle.message(GAME_TIMEOUT, until=lambda m: bool(m.embeds))
    product.note_pids()

    assert (await handle.response()).type == 5  # deferred within the deadline
    assert "✅ **alpha** is **running**" in text_of(final)
    contents = [snap.content for snap in final.history if snap.content]
    assert contents[0] == "**Starting alpha**: ⏳ starting…"
    assert contents[-1] == "**Starting alpha**: ⏳ starting… → ✅ running"
    state = await product.game_state("alpha")
    assert state["hostname"] == "Languard Arma 3 server"


async def test_config_masks_secrets_and_set_validates_keys(product: Product) -> None:
    config = await product.reply("server config", {"server": "alpha"})
    text = text_of(config)
    assert config.ephemeral
    assert f"`rcon_password` = {MASK}" in text and "`hostname` =" in text

    keys = await product.choices("server set", {"server": "alpha", "key": "host"}, "key")
    assert keys and keys[0]["value"] == "hostname" and len(keys) <= 25

    changed = await product.reply(
        "server set", {"server": "alpha", "key": "hostname", "value": "E2E Host"}
    )
    assert changed.ephemeral and "takes effect at the next start" in text_of(changed)

    bad_key = await product.error("server set", {"server": "alpha", "key": "pasword", "value": "x"})
    assert "`pasword` is not a setting of arma3 servers; did you mean `password`" in bad_key
    bad_value = await product.error(
        "server set", {"server": "alpha", "key": "max_players", "value": "lots"}
    )
    assert "max_players must be a whole number from 1 to 256" in bad_value

    refused = await product.error("server config", {"server": "alpha"}, user=product.cast.operator)
    assert "**admin**" in refused


async def test_channels_and_maintenance(product: Product) -> None:
    general = product.fake.general
    bound = await product.reply("server channels", {"server": "alpha", "logs": general})
    assert f"**logs** → <#{general.id}>" in text_of(bound)

    window = await product.reply(
        "server maintenance", {"server": "alpha", "minutes": 30}, user=product.cast.operator
    )
    assert "alerts muted and auto-restart paused" in text_of(window)
    status = await product.reply("server status", {"server": "alpha"})
    assert "Maintenance" in text_of(status)


async def test_restart_gives_a_new_process(product: Product) -> None:
    before = (await product.game_state("alpha"))["pid"]
    handle = await product.run("server restart", {"server": "alpha"}, user=product.cast.operator)
    final = await handle.message(GAME_TIMEOUT, until=lambda m: bool(m.embeds))
    product.note_pids()
    assert "✅ **alpha** is **running**" in text_of(final)
    after = await product.game_state("alpha")
    assert after["pid"] != before and after["hostname"] == "E2E Host"  # the set took effect


async def test_kill_confirmation_expires_then_is_confirmed(
    product: Product, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = (await product.game_state("alpha"))["pid"]
    monkeypatch.setitem(Confirm.__init__.__kwdefaults__, "timeout", 0.3)
    handle = await product.run("server kill", {"server": "alpha"})
    expired = await handle.message(5, until=lambda m: "Expired" in m.content)
    assert expired.ephemeral and expired.content == "Expired: nothing was done."
    assert not expired.components and alive(pid)
    assert product.server("alpha").state.value == "running"

    monkeypatch.setitem(Confirm.__init__.__kwdefaults__, "timeout", 60.0)
    refused = await product.error("server kill", {"server": "alpha"}, user=product.cast.operator)
    assert "**admin**" in refused
    handle = await product.run("server kill", {"server": "alpha"})
    question = await handle.message()
    assert question.ephemeral and "Kill **alpha** now?" in question.content
    await product.press(handle, "Kill")
    done = await handle.message(GAME_TIMEOUT, until=lambda m: bool(m.embeds))
    assert "**alpha** is **stopped**" in text_of(done) and not done.components
    await until(lambda: not alive(pid), 5, "the killed process to be gone")


async def test_start_ends_maintenance_early(product: Product) -> None:
    assert product.running.services.schedule.in_maintenance(product.server("alpha").id)
    handle = await product.run("server start", {"server": "alpha"}, user=product.cast.operator)
    final = await handle.message(GAME_TIMEOUT, until=lambda m: bool(m.embeds))
    product.note_pids()
    assert "is **running**" in text_of(final)
    assert not product.running.services.schedule.in_maintenance(product.server("alpha").id)


async def test_delete_of_a_running_server_is_refused_after_confirming(product: Product) -> None:
    handle = await product.run("server delete", {"server": "alpha"})
    await product.press(handle, "Delete")
    error = await handle.followup(0)
    assert error.ephemeral and "stop it first" in text_of(error)
    assert product.server("alpha").state.value == "running"


async def test_stop_with_players_online_asks_only_the_invoker(product: Product) -> None:
    cast = product.cast
    await product.join("alpha", "Rook", GUID, "198.51.100.7")
    handle = await product.run("server stop", {"server": "alpha"}, user=cast.operator)
    question = await handle.message()
    assert question.ephemeral and "1 player(s) online" in question.content

    other = await product.press_as_other(handle, "Stop", cast.moderator)
    refusal = await other.message()
    assert refusal.ephemeral and "Only the person who ran the command" in refusal.content
    assert product.server("alpha").state.value == "running"
    assert button_present(await handle.message(), "Stop")

    await product.press(handle, "Stop")
    done = await handle.message(GAME_TIMEOUT, until=lambda m: bool(m.embeds))
    assert "**alpha** is **stopped**" in text_of(done)
    assert "⏳ stopping… → ⏹️ stopped" in done.content


def button_present(msg: FakeMessage, label: str) -> bool:
    return any(c.get("label") == label and not c.get("disabled") for c in msg.iter_components())


async def test_stop_of_a_frozen_server_is_answered_at_once(product: Product) -> None:
    """Seen: /server stop asked a hung game for its player count before answering, got no
    answer past Discord's 3 s, and the stop never happened."""
    await product.reply("server set", {"server": "spare", "key": "stop_timeout", "value": "2s"})
    handle = await product.run("server start", {"server": "spare"}, user=product.cast.operator)
    final = await handle.message(GAME_TIMEOUT, until=lambda m: bool(m.embeds))
    product.note_pids()
    assert "is **running**" in text_of(final)
    server = product.server("spare")
    assert server.handle is not None
    pid = server.handle.pid
    os.kill(pid, signal.SIGSTOP)  # hung: RCon, console, everything silent
    try:
        asked = time.monotonic()
        handle = await product.run("server stop", {"server": "spare"}, user=product.cast.operator)
        await handle.response(5.0)
        assert time.monotonic() - asked < 3.0, "the first response must beat Discord's 3 s"
        done = await handle.message(GAME_TIMEOUT * 2, until=lambda m: bool(m.embeds))
        assert "**spare** is **stopped**" in text_of(done)
        await until(lambda: not alive(pid), 10, "the frozen process to be gone")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


async def test_delete_cancel_then_confirm_archives(product: Product) -> None:
    assert product.server("alpha").state.value == "stopped"
    handle = await product.run("server delete", {"server": "alpha"}, user=product.cast.admin)
    await product.press(handle, "Cancel")
    cancelled = await handle.message(until=lambda m: m.content == "Cancelled.")
    assert cancelled.ephemeral
    assert product.server("alpha") is not None

    handle = await product.run("server delete", {"server": "alpha"}, user=product.cast.admin)
    await product.press(handle, "Delete")
    done = await handle.message(until=lambda m: "deleted" in m.content)
    assert "🗑️ **alpha** deleted." in done.content and "archive/alpha-" in done.content
    assert not product.server_folder("alpha").exists()
    listed = await product.reply("server list")
    assert "alpha" not in text_of(listed)
    audit = await product.audit_text()
    assert "`server.delete`" in audit and "`server.kill`" in audit


async def test_refusals_are_ephemeral_name_the_level_and_are_audited(product: Product) -> None:
    cast = product.cast
    refused = await product.error("server start", {"server": "spare"}, user=cast.viewer)
    assert "You need the **operator** level for this (you have viewer)" in refused
    nobody = await product.error("server list", user=cast.nobody)
    assert "You need the **viewer** level for this (you have none)" in nobody
    assert product.server("spare").state.value == "stopped"

    audit = await product.audit_text(server="spare")
    assert "**vic** `denied:server start` on spare — refused: level too low" in audit
    everything = await product.audit_text()
    assert "**nemo** `denied:server list`" in everything


async def test_a_repeated_refusal_is_audited_once_a_minute(product: Product) -> None:
    """A member with no level repeating a refused command must not flood the audit log."""
    for _ in range(4):
        refused = await product.error("host", user=product.cast.nobody)
        assert "You need the **viewer** level" in refused
    everything = await product.audit_text()
    assert everything.count("**nemo** `denied:host`") == 1


async def test_server_autocomplete_is_filtered_and_capped(product: Product) -> None:
    for n in range(28):
        msg = await product.reply("server create", {"name": f"bulk-{n:02d}", "game": "arma3"})
        assert "Server created" in text_of(msg)
    every = await product.choices("server status", {"server": ""}, "server")
    assert len(every) == 25
    some = await product.choices("server status", {"server": "bulk-1"}, "server")
    assert [c["value"] for c in some] == [f"bulk-{n}" for n in range(10, 20)]
    assert await product.choices("server status", {"server": "zzz"}, "server") == []
    games = await product.choices("server create", {"name": "x", "game": "arm"}, "game")
    assert [c["value"] for c in games] == ["arma3"]


async def test_hostile_input_gets_a_clear_ephemeral_error(product: Product) -> None:
    traversal = await product.error("server create", {"name": "../evil", "game": "arma3"})
    assert "lowercase letters, digits or hyphens" in traversal
    assert not (product.data_dir / "evil").exists()
    assert not (product.data_dir / "servers" / ".." / "evil").exists()

    lookup = await product.error("server status", {"server": "../../etc/passwd"})
    assert "no server" in lookup

    ping = await product.error("server create", {"name": "@everyone", "game": "arma3"})
    assert "lowercase letters" in ping
    assert not any(m.pinged_everyone for m in product.fake.state.messages.values())

    huge = await product.error("server status", {"server": "x" * 6000})
    assert "no server" in huge and len(huge) < 2000

    wrong_game = await product.error("server create", {"name": "gamma", "game": "doom"})
    assert "unknown game" in wrong_game
