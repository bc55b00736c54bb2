"""What the bot posts in channels is in the guild's language: the real LanguardBot and
discord.py against the fake Discord, real game server processes, real SQLite.

Two guilds share one bot: "Test Guild" (preferred locale en-US, as Discord sends it in
GUILD_CREATE) and a French one (`fr`). Each has an alerts channel and an audit channel; the
same crash kind and the same audit rows come out in English in one and in French in the
other. The outbox's own words (a flood file's summary, the note after a refusal) and the
channel-permission refusal are checked as pure functions at the end.
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from bot.alerts import AlertConfig
from bot.audit_feed import AUDIT_ACTIONS, FIXED_RESULTS
from bot.channel_permissions import PERMISSION_NAMES, REQUIRED, ChannelProblem, refusal_text
from bot.channels import HubConfig
from bot.client import LanguardBot
from bot.i18n import catalogue
from bot.outbox_plan import file_summary, gap_note
from bot.outbox_types import OutboxConfig
from core.config import Settings
from core.services.audit import Actor
from core.supervisor.server import ManagedServer
from data.repositories.servers import ServerRepository
from data.repositories.settings import SettingsRepository
from tests.e2e.fake_discord import FakeChannel, FakeDiscord, FakeMessage, running_client
from tests.e2e.product import until
from tests.fakes.fake_profile import FakeProfile
from tests.integration.supervision import FAST, kill_groups

ADMIN = Actor(1, "ada")
WAIT = 20.0
CRASH = ["--crash-after", "1.0", "--exit-code", "7", "--interval", "0.02"]
CONFIG = HubConfig(
    outbox=OutboxConfig(linger=0.3, mark_linger=0.5),
    alerts=AlertConfig(disk_min_free_bytes=0, disk_min_free_ratio=0.0),
    status_interval=60.0,
    close_timeout=8.0,
)
NNBSP = "\u202f"
"""French groups thousands with a narrow no-break space."""


class Bot(LanguardBot):
    """The product bot with no command cog: only what it posts by itself is under test."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            settings, cogs=(), profiles=[FakeProfile()], hub_config=CONFIG, guild_ready_timeout=0.1
        )


@contextlib.asynccontextmanager
async def running(
    fake: FakeDiscord, data_dir: Path, guild_ids: tuple[int, ...]
) -> AsyncIterator[Bot]:
    bot = Bot(Settings(discord_token=fake.token, data_dir=data_dir, guild_ids=guild_ids))
    pids: set[int] = set()
    try:
        async with running_client(fake, bot, timeout=15.0):
            yield bot
            pids |= {s.handle.pid for s in bot.services.supervisor.all() if s.handle}
    finally:
        kill_groups(sorted(pids))


async def add_server(bot: Bot, name: str, args: list[str], **settings: Any) -> ManagedServer:
    db = bot.services.db
    record = await ServerRepository(db).create(name, "fake")
    await SettingsRepository(db).set_many(record.id, {**FAST, "args": args, **settings})
    return await bot.services.supervisor.add(record)


def titled(fake: FakeDiscord, channel: FakeChannel, word: str) -> list[FakeMessage]:
    return [m for m in fake.messages(channel) if m.embeds and word in m.embeds[0].get("title", "")]


def lines_with(fake: FakeDiscord, channel: FakeChannel, *needles: str) -> list[str]:
    return [
        line
        for message in fake.messages(channel)
        for line in message.content.splitlines()
        if all(needle in line for needle in needles)
    ]


def field_names(message: FakeMessage) -> list[str]:
    return [field["name"] for field in message.embeds[0].get("fields", [])]


async def test_a_french_guild_reads_alerts_and_audit_in_french(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    fake = fake_discord
    english = fake.guild
    assert english.preferred_locale == "en-US"  # what Discord sends for most guilds
    french = fake.add_guild("Guilde FR")
    french.preferred_locale = "fr"
    alerts_en = fake.add_channel("alerts")
    audit_en = fake.add_channel("audit")
    alerts_fr = fake.add_channel("alertes", guild=french)
    audit_fr = fake.add_channel("journal-audit", guild=french)

    async with running(fake, tmp_path / "data", (english.id, french.id)) as bot:
        services = bot.services
        await services.channels.set_audit_channel(ADMIN, english.id, audit_en.id)
        await services.channels.set_audit_channel(ADMIN, french.id, audit_fr.id)
        for name, alerts in (("alpha", alerts_en), ("bravo", alerts_fr)):
            server = await add_server(bot, name, CRASH, max_crashes=5, backoff_base=30.0)
            await services.channels.set_channels(ADMIN, name, alerts=alerts.id)
            await server.start()

        # a crash alert, worded in each alerts channel's language
        [crash_en] = await until(lambda: titled(fake, alerts_en, "crashed"), WAIT, "alpha")
        [crash_fr] = await until(lambda: titled(fake, alerts_fr, "a planté"), WAIT, "bravo")
        assert crash_en.embeds[0]["title"] == "💥 alpha crashed"
        assert field_names(crash_en) == ["Exit", "Ran for", "Auto-restart"]
        english_text = crash_en.embed_text()
        assert "exit code 7" in english_text and "attempt 1 of 5" in english_text
        assert "Last log lines:" in english_text

        assert crash_fr.embeds[0]["title"] == "💥 bravo a planté"
        assert field_names(crash_fr) == ["Sortie", "A tourné pendant", "Redémarrage auto"]
        french_text = crash_fr.embed_text()
        assert "code de sortie 7" in french_text and "tentative 1 sur 5" in french_text
        assert "Dernières lignes du journal :" in french_text
        assert "FATAL: something went wrong" in french_text  # the game's lines stay as they are
        assert "exit code" not in french_text and "attempt" not in french_text

        # audit rows: the same rows, each channel in its own language; names stay as data
        row_en = await until(
            lambda: lines_with(fake, audit_en, "**ada** server.channels on **bravo** — ok"),
            WAIT,
            "the English audit row",
        )
        row_fr = await until(
            lambda: lines_with(fake, audit_fr, "**ada** : salons du serveur sur **bravo** — ok"),
            WAIT,
            "the French audit row",
        )
        assert row_en[0].startswith("✅") and row_fr[0].startswith("✅")
        channel_fr = lines_with(fake, audit_fr, "**ada** : salon d'audit — ok")
        assert channel_fr, "the French audit channel's own binding, in French"
        assert lines_with(fake, audit_en, "**ada** audit.channel — ok")
        posted_fr = "\n".join(m.content for m in fake.messages(audit_fr))
        assert "server.channels" not in posted_fr and " on **" not in posted_fr


def test_the_outbox_words_follow_the_channel_language() -> None:
    english = file_summary("**alpha · console**", 12345, "lines", [20, 30, 40, 40], 0.0, 61.0)
    assert english == (
        "**alpha · console** 📄 12,345 lines (2 errors, 1 warnings), 00:00:00 to 00:01:01 UTC"
        " — too many to post as messages, attached as a file"
    )
    french = file_summary("**alpha · console**", 12345, "lines", [20, 30, 40, 40], 0.0, 61.0, "fr")
    assert french == (
        f"**alpha · console** 📄 12{NNBSP}345 lignes (erreurs : 2, avertissements : 1), "
        "de 00:00:00 à 00:01:01 UTC — trop nombreuses pour être publiées en messages, "
        "jointes en fichier"
    )
    assert file_summary("", 1, "entries", None, None, None, "fr").startswith("📄 1 entrée —")
    note = gap_note({"lines": 451, "messages": 2}, "fr")
    assert "451 lignes, 2 messages" in note and "abandonnés" in note
    assert "451 lines, 2 messages" in gap_note({"lines": 451, "messages": 2}, "en-US")


def test_a_refused_binding_is_worded_for_the_member() -> None:
    problems = [ChannelProblem(1, "logs", ("logs", "chat"), ("Send Messages", "Attach Files"))]
    french = refusal_text(problems, "Languard", "fr")
    assert "rien n'a été modifié" in french
    assert "#logs : Envoyer des messages, Joindre des fichiers (pour journaux, chat)" in french
    assert "le rôle **Languard**" in french and "`/server channels`" in french
    assert "#logs: Send Messages, Attach Files (for logs, chat)" in refusal_text(problems)


ROOT = Path(__file__).resolve().parents[2]
AUDITING_CALLS = frozenset({"record", "scope", "_tell_game"})
LIFECYCLE = {"server.start", "server.stop", "server.kill", "server.restart"}
"""`ServerService._lifecycle` audits `server.<command>`, an f-string the scan cannot read."""


def audited_actions() -> Iterator[str]:
    """Every action name the code gives the audit log as a literal: the second argument of
    `record`/`scope`/`_tell_game`, an `action=` keyword, an `action` parameter's default,
    `AUDIT_ACTION = ...`."""
    for folder in ("core", "bot", "cogs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                found: list[ast.expr] = []
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.attr if isinstance(func, ast.Attribute) else None
                    if name in AUDITING_CALLS and len(node.args) >= 2:
                        found.append(node.args[1])
                    if name != "add_argument":  # argparse's action= is no audit action
                        found += [kw.value for kw in node.keywords if kw.arg == "action"]
                elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    positional = node.args.posonlyargs + node.args.args
                    with_default = positional[len(positional) - len(node.args.defaults) :]
                    pairs = [*zip(with_default, node.args.defaults, strict=True)]
                    pairs += zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True)
                    found += [d for a, d in pairs if a.arg == "action" and d is not None]
                elif isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "AUDIT_ACTION" for t in node.targets
                ):
                    found.append(node.value)
                for value in found:
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        yield value.value


def test_every_fixed_word_of_a_channel_post_has_french() -> None:
    """Actions, fixed results, channel kinds and permission names are looked up by value,
    so test_i18n's scan of literal messages cannot see them."""
    actions = set(audited_actions())
    assert {"server.create", "players.ban", "bans.add", "chat.from_discord"} <= actions
    assert actions | LIFECYCLE <= AUDIT_ACTIONS, "an audited action missing from AUDIT_ACTIONS"
    french = catalogue().languages["fr"].text
    words = AUDIT_ACTIONS | FIXED_RESULTS | set(PERMISSION_NAMES.values()) | set(REQUIRED)
    assert sorted(word for word in words if word not in french) == []
