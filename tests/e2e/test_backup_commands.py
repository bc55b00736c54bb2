"""/backup end to end: the real discord.py bot on the fake Discord backs up a running fake
Arma 3 server's profile through the job queue, refuses to restore while the server runs,
restores it once stopped (after a confirmation) and lists, deletes and configures backups.

One bot and one server ("delta") for the module; the tests run in file order and build on
each other (the backup taken first is the one restored later).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from core.jobs import JobContext
from tests.e2e.fake_discord import FakeMessage
from tests.e2e.product import GAME_TIMEOUT, Product, is_error, open_product, text_of, until

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = "delta"
PROFILE = "profiles/Users/server/server.vars.Arma3Profile"
"""Where Arma keeps mission persistence: what an admin backs up before anything else."""
BEFORE = b"class Persistence { money = 1000; };\n"
AFTER = b"class Persistence { money = 0; };  // a bad update wiped it\n"
BACKUP_NAME = re.compile(r"\b[0-9]{8}T[0-9]{6}Z(?:-[0-9]{1,2})?\b")
JOB_TIMEOUT = 60.0

taken: dict[str, str] = {}
"""Names of the backups the tests made, by role (`manual`, `pre-restore`)."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("backups")) as opened:
        await opened.create_server(SERVER, start=True)
        yield opened


def profile(product: Product) -> Path:
    return product.server_folder(SERVER) / PROFILE


def seen(msg: FakeMessage, text: str) -> bool:
    """`text` was on the message at some point (its edits included)."""
    return any(text in snap.content for snap in msg.history) or text in text_of(msg)


async def backup_list(product: Product) -> str:
    msg = await product.reply("backup list", {"server": SERVER}, user=product.cast.operator)
    assert msg.ephemeral
    return text_of(msg)


async def test_backup_now_waits_its_turn_shows_progress_and_a_summary(product: Product) -> None:
    path = profile(product)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(BEFORE)
    jobs = product.running.services.jobs
    gate = asyncio.Event()

    async def another_long_job(ctx: JobContext) -> None:
        await gate.wait()

    blocker = jobs.submit("another long job", another_long_job)
    try:
        handle = await product.run(
            "backup now",
            {"server": SERVER, "note": "before the update"},
            user=product.cast.operator,
        )
        await handle.message(
            JOB_TIMEOUT, until=lambda m: "waiting in the job queue (place 1)" in m.content
        )
    finally:
        gate.set()
    await blocker.result()
    done = await handle.message(JOB_TIMEOUT, until=lambda m: bool(m.embeds))
    text = text_of(done)
    assert not done.ephemeral and not is_error(done), text
    assert "Backup of delta taken" in text and "Note: before the update" in text
    assert seen(done, "**Backing up delta**") and seen(done, "copying files")
    steps = [snap.content for snap in done.history if snap.content]
    assert steps.index(next(s for s in steps if "place 1" in s)) < steps.index(
        next(s for s in steps if "copying files" in s)
    ), steps
    found = BACKUP_NAME.search(text)
    assert found, text
    taken["manual"] = found[0]
    listed = await backup_list(product)
    assert taken["manual"] in listed and "manual" in listed and "“before the update”" in listed


async def test_a_restore_needs_admin_and_a_stopped_server(product: Product) -> None:
    profile(product).write_bytes(AFTER)
    options = {"server": SERVER, "backup": taken["manual"]}
    refused = await product.error("backup restore", options, user=product.cast.operator)
    assert "You need the **admin** level" in refused

    running = await product.error("backup restore", options, user=product.cast.admin)
    assert "`delta` is running; stop it before restoring a backup" in running
    assert profile(product).read_bytes() == AFTER  # nothing was asked, nothing was touched


async def test_a_stopped_server_is_restored_after_confirmation(product: Product) -> None:
    admin = product.cast.admin
    stop = await product.run("server stop", {"server": SERVER})
    stopped = await stop.message(GAME_TIMEOUT, until=lambda m: bool(m.embeds))
    assert "**delta** is **stopped**" in text_of(stopped), text_of(stopped)
    unknown = await product.error(
        "backup restore", {"server": SERVER, "backup": "20000101T000000Z"}, user=admin
    )
    assert "there is no backup named `20000101T000000Z` for `delta`" in unknown

    choices = await product.choices(
        "backup restore", {"server": SERVER, "backup": ""}, "backup", user=admin
    )
    assert [c["value"] for c in choices] == [taken["manual"]]

    handle = await product.run(
        "backup restore", {"server": SERVER, "backup": taken["manual"]}, user=admin
    )
    question = await handle.message()
    assert question.ephemeral and f"to backup `{taken['manual']}`?" in question.content
    assert profile(product).read_bytes() == AFTER  # not before the answer
    await product.press(handle, "Restore")
    done = await handle.message(JOB_TIMEOUT, until=lambda m: bool(m.embeds))
    text = text_of(done)
    assert "delta restored" in text and not is_error(done), text
    assert "each checked against its manifest" in text
    assert seen(done, "**Restoring delta**") and seen(done, "verifying the restored files")
    assert profile(product).read_bytes() == BEFORE  # the persistence is back
    saved = re.search(r"kept as backup `([^`]+)`", text)
    assert saved and saved[1] != taken["manual"], text
    taken["pre-restore"] = saved[1]


async def test_the_list_shows_both_backups_and_the_state_a_restore_replaced(
    product: Product,
) -> None:
    listed = await backup_list(product)
    assert "delta: backups" in listed and "2 backups" in listed and "on disk in all" in listed
    assert taken["manual"] in listed and taken["pre-restore"] in listed
    assert "pre-restore" in listed and f"before restoring `{taken['manual']}`" in listed
    # the newest first
    assert listed.index(f"`{taken['pre-restore']}`") < listed.index(f"`{taken['manual']}`")

    french = await product.fake.invoke_slash(
        "backup list", {"server": SERVER}, user=product.cast.operator, locale="fr"
    )
    text = text_of(await french.message())
    assert "delta : sauvegardes" in text and "2 sauvegardes" in text, text
    assert "avant restauration" in text and "manuelle" in text and "sur le disque au total" in text


async def test_delete_asks_first_and_removes_one_backup(product: Product) -> None:
    admin = product.cast.admin
    options = {"server": SERVER, "backup": taken["pre-restore"]}
    refused = await product.error("backup delete", options, user=product.cast.operator)
    assert "You need the **admin** level" in refused

    cancelled = await product.run("backup delete", options, user=admin)
    await product.press(cancelled, "Cancel")
    await cancelled.message(until=lambda m: m.content == "Cancelled.")
    assert taken["pre-restore"] in await backup_list(product)

    handle = await product.run("backup delete", options, user=admin)
    question = await handle.message()
    assert "This cannot be undone." in question.content
    await product.press(handle, "Delete")
    done = await handle.message(until=lambda m: m.content.startswith("🗑️"))
    assert f"Backup `{taken['pre-restore']}` of delta deleted" in done.content
    listed = await backup_list(product)
    assert taken["pre-restore"] not in listed and taken["manual"] in listed
    assert "1 backup" in listed
    backups = product.data_dir / "backups" / SERVER
    assert await until(lambda: not (backups / taken["pre-restore"]).exists(), 5, "folder gone")


async def test_settings_show_the_defaults_and_change_per_server(product: Product) -> None:
    admin = product.cast.admin
    shown = await product.reply("backup settings", {"server": SERVER}, user=admin)
    text = text_of(shown)
    assert shown.ephemeral and "Backup settings of delta" in text
    assert "at most **10** (default)" in text and "**30 days** (default)" in text
    assert "nothing beyond the game's own rules" in text

    changed = await product.reply(
        "backup settings",
        {"server": SERVER, "keep": 3, "max_age_days": 7, "exclude": "*.bak, /mpmissions/old"},
        user=admin,
    )
    text = text_of(changed)
    assert "Backup settings of delta changed" in text and not changed.ephemeral
    assert "at most **3**" in text and "**7 days**" in text and "(default)" not in text
    assert "`*.bak`, `/mpmissions/old`" in text

    bad = await product.error(
        "backup settings", {"server": SERVER, "exclude": "../outside"}, user=admin
    )
    assert "without `..`" in bad
    refused = await product.error("backup settings", {"server": SERVER}, user=product.cast.operator)
    assert "You need the **admin** level" in refused

    reset = await product.reply("backup settings", {"server": SERVER, "reset": True}, user=admin)
    assert "at most **10** (default)" in text_of(reset) and "*.bak" not in text_of(reset)


async def test_a_backup_is_scheduled_with_the_existing_scheduler(product: Product) -> None:
    operator = product.cast.operator
    too_often = await product.error(
        "schedule backup", {"server": SERVER, "when": "*/10 * * * *"}, user=operator
    )
    assert "backups would come 10 minute(s) apart; leave at least 60 minutes" in too_often

    msg = await product.reply("schedule backup", {"server": SERVER, "when": "04:30"}, user=operator)
    text = text_of(msg)
    assert "Backup scheduled" in text and "delta · backup daily at 04:30" in text, text
    listed = text_of(await product.reply("schedule list", {"server": SERVER}))
    assert "backup daily at 04:30" in listed
    entry = re.search(r"`#(\d+)`", text)
    assert entry, text
    removed = await product.reply("schedule remove", {"entry": entry[1]}, user=operator)
    assert "Removed" in text_of(removed)
