"""Proof that the fake Discord is faithful enough: a real discord.py bot runs against it.

The bot here is a small stand-in defined in this file (the product bot lives elsewhere).
Every interaction arrives as a gateway INTERACTION_CREATE and every answer leaves as an
HTTP call made by discord.py itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.e2e.fake_discord import FakeDiscord, FakeMember, FakeRole
from tests.e2e.fake_discord.ratelimit import RESET_TOLERANCE

MAPS = [f"map{i:02d}" for i in range(40)]


# ----- the stand-in bot ------------------------------------------------------------------------


class Panel(discord.ui.View):
    """A button only the invoker may press; others get an ephemeral refusal."""

    def __init__(self, owner_id: int) -> None:
        super().__init__(timeout=30)
        self.owner_id = owner_id

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message("not your panel", ephemeral=True)
            return False
        return True

    @discord.ui.button(label="Confirm", custom_id="panel:confirm", style=discord.ButtonStyle.green)
    async def confirm(
        self, interaction: discord.Interaction, button: discord.ui.Button[Panel]
    ) -> None:
        button.disabled = True
        await interaction.response.edit_message(
            content=f"confirmed by {interaction.user.name}", view=self
        )
        self.stop()


class Picker(discord.ui.View):
    """A select whose callback acknowledges silently (type 6), then edits @original."""

    def __init__(self) -> None:
        super().__init__(timeout=30)

    @discord.ui.select(
        custom_id="pick:map",
        options=[discord.SelectOption(label=m, value=m) for m in ("altis", "stratis", "tanoa")],
    )
    async def pick(
        self, interaction: discord.Interaction, select: discord.ui.Select[Picker]
    ) -> None:
        await interaction.response.defer()
        await interaction.edit_original_response(content=f"picked {select.values[0]}", view=None)


class NameForm(discord.ui.Modal, title="Rename server"):
    name: discord.ui.Label[NameForm] = discord.ui.Label(
        text="New name", component=discord.ui.TextInput(custom_id="form:name")
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        assert isinstance(self.name.component, discord.ui.TextInput)
        await interaction.response.send_message(f"renamed to {self.name.component.value}")


class Server(app_commands.Group):
    """/lg server ... (a subcommand group inside the /lg command)."""

    @app_commands.command(description="Start a server")
    @app_commands.describe(map="Mission map", slots="Player slots")
    async def start(
        self,
        interaction: discord.Interaction,
        map: str,
        slots: app_commands.Range[int, 1, 128],
        admin: discord.Member | None = None,
        notify: discord.Role | None = None,
        channel: discord.TextChannel | None = None,
    ) -> None:
        parts = [f"map={map}", f"slots={slots}"]
        if admin is not None:
            parts.append(f"admin={admin.name}")
        if notify is not None:
            parts.append(f"notify={notify.name}")
        if channel is not None:
            parts.append(f"channel={channel.name}")
        await interaction.response.send_message(" ".join(parts))

    @start.autocomplete("map")
    async def map_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=m, value=m) for m in MAPS if current in m][:25]

    @app_commands.command(description="Stop a server")
    async def stop(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await asyncio.sleep(0.05)
        await interaction.edit_original_response(content="stopped")
        await interaction.followup.send("see you")


class E2EBot(commands.Bot):
    def __init__(self, guild_id: int, *, members_intent: bool = False) -> None:
        intents = discord.Intents.default()
        intents.members = members_intent
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            guild_ready_timeout=0.05,
        )
        self.guild = discord.Object(guild_id)
        self.errors: list[BaseException] = []
        self.release = asyncio.Event()
        self.slow_delay = 0.0

    async def setup_hook(self) -> None:
        lg = app_commands.Group(name="lg", description="Languard")
        lg.add_command(Server(name="server", description="Game servers"))
        self.tree.add_command(lg, guild=self.guild)
        singles: list[app_commands.Command[Any, ..., None]] = [
            secret,
            panel,
            pick,
            upload,
            files,
            announce,
            slow,
            wait,
            form,
        ]
        for command in singles:
            self.tree.add_command(command, guild=self.guild)
        self.tree.on_error = self.on_tree_error  # type: ignore[method-assign]
        await self.tree.sync(guild=self.guild)

    async def on_tree_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        self.errors.append(getattr(error, "original", error))


def bot_of(interaction: discord.Interaction) -> E2EBot:
    assert isinstance(interaction.client, E2EBot)
    return interaction.client


@app_commands.command(description="An ephemeral reply")
async def secret(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("only you can see this", ephemeral=True)


@app_commands.command(description="A button panel")
async def panel(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("press confirm", view=Panel(interaction.user.id))


@app_commands.command(description="A select menu")
async def pick(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("choose a map", view=Picker())


@app_commands.command(description="Files through the interaction routes")
async def files(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("log", file=discord.File(io.BytesIO(b"a\n"), "a.log"))
    original = await interaction.original_response()
    await interaction.followup.send("more", file=discord.File(io.BytesIO(b"b\n"), "b.log"))
    await original.edit(content=f"log {original.attachments[0].filename}", attachments=[])


@app_commands.command(description="Read an uploaded file")
async def upload(interaction: discord.Interaction, file: discord.Attachment) -> None:
    data = await file.read()
    digest = hashlib.sha256(data).hexdigest()[:12]
    await interaction.response.send_message(f"{file.filename} {len(data)} {digest}")


@app_commands.command(description="Post an embed and a file to the channel")
async def announce(interaction: discord.Interaction) -> None:
    assert isinstance(interaction.channel, discord.TextChannel)
    embed = discord.Embed(title="Server up", description="altis, 10 slots")
    embed.add_field(name="players", value="0/10")
    report = discord.File(io.BytesIO(b"line one\nline two\n"), filename="report.txt")
    await interaction.channel.send(embed=embed, file=report)
    await interaction.response.send_message("posted", ephemeral=True)


@app_commands.command(description="Answers late")
async def slow(interaction: discord.Interaction) -> None:
    await asyncio.sleep(bot_of(interaction).slow_delay)
    try:
        await interaction.response.send_message("finally")
    except discord.HTTPException as exc:
        bot_of(interaction).errors.append(exc)


@app_commands.command(description="Defers, then follows up when released")
async def wait(interaction: discord.Interaction) -> None:
    await interaction.response.defer()
    bot = bot_of(interaction)
    await interaction.followup.send("working")
    await bot.release.wait()
    try:
        await interaction.followup.send("done")
    except discord.HTTPException as exc:
        bot.errors.append(exc)


@app_commands.command(description="Opens a modal")
async def form(interaction: discord.Interaction) -> None:
    await interaction.response.send_modal(NameForm())


# ----- helpers ---------------------------------------------------------------------------------


def cast(fake: FakeDiscord) -> tuple[FakeMember, FakeMember, FakeRole]:
    """alice (an operator) and bob (nobody), plus the Operators role."""
    operators = fake.add_role("Operators")
    alice = fake.add_user("alice", roles=[operators])
    bob = fake.add_user("bob")
    return alice, bob, operators


# ----- tests -----------------------------------------------------------------------------------


async def test_login_ready_guild_create_and_sync(fake_discord: FakeDiscord, start_bot: Any) -> None:
    fake = fake_discord
    alice, _, operators = cast(fake)
    bot = await start_bot(E2EBot(fake.guild.id, members_intent=True), wait_ready=True)

    assert bot.user is not None and bot.user.id == fake.bot_user.id
    assert bot.application_id == fake.world.application_id
    guild = bot.get_guild(fake.guild.id)
    assert guild is not None and guild.owner_id == fake.owner.id
    assert guild.get_role(operators.id) is not None
    assert guild.get_channel(fake.general.id) is not None
    member = guild.get_member(alice.id)
    assert member is not None and [r.id for r in member.roles[1:]] == [operators.id]

    assert fake.sync_count(fake.guild) == 1 and fake.sync_count(None) == 0
    stored = fake.commands(fake.guild)
    names = {"lg", "secret", "panel", "pick", "upload", "files", "announce", "slow", "wait", "form"}
    assert set(stored) == names
    fetched = await bot.tree.fetch_commands(guild=bot.guild)
    assert {c.name: c.id for c in fetched} == {n: int(c["id"]) for n, c in stored.items()}
    # discord.py asked for compression (zstd when `zstandard` is installed, else zlib); the
    # fake answered in plain text and it still worked.
    assert fake.state.gateway_connections[0].query["compress"] in ("zlib-stream", "zstd-stream")


async def test_slash_subcommand_group_with_options(
    fake_discord: FakeDiscord, start_bot: Any
) -> None:
    fake = fake_discord
    alice, bob, operators = cast(fake)
    await start_bot(E2EBot(fake.guild.id))

    handle = await fake.invoke_slash(
        "lg server start",
        {"map": "altis", "slots": 10, "admin": bob, "notify": operators, "channel": fake.general},
        user=alice,
    )
    reply = await handle.message()
    assert reply.content == "map=altis slots=10 admin=bob notify=Operators channel=general"
    response = await handle.response()
    assert response.type == 4 and response.age < 3.0 and not response.ephemeral
    # The wire format: group -> subcommand -> options, with resolved entities.
    data = handle.payload["data"]
    group = data["options"][0]
    assert (group["type"], group["name"]) == (2, "server")
    assert (group["options"][0]["type"], group["options"][0]["name"]) == (1, "start")
    assert set(data["resolved"]) == {"users", "members", "roles", "channels"}
    assert handle.payload["member"]["roles"] == [str(operators.id)]
    assert fake.messages(fake.general) == [reply]


async def test_deferred_reply_then_edit_and_followup(
    fake_discord: FakeDiscord, start_bot: Any
) -> None:
    fake = fake_discord
    await start_bot(E2EBot(fake.guild.id))

    handle = await fake.invoke_slash("lg", subcommand=("server", "stop"))
    assert (await handle.response()).type == 5
    original = await handle.message()
    assert original.content == "stopped" and not original.loading
    followup = await handle.followup(0)
    assert followup.content == "see you" and followup.id != original.id
    assert [snap.content for snap in original.history] == ["", "stopped"]


async def test_ephemeral_reply(fake_discord: FakeDiscord, start_bot: Any) -> None:
    fake = fake_discord
    await start_bot(E2EBot(fake.guild.id))

    handle = await fake.invoke_slash("secret")
    reply = await handle.message()
    assert reply.ephemeral and reply.flags & 64
    assert (await handle.response()).ephemeral
    assert fake.messages(fake.general) == []
    assert fake.messages(fake.general, include_ephemeral=True) == [reply]


async def test_autocomplete_returns_at_most_25_choices(
    fake_discord: FakeDiscord, start_bot: Any
) -> None:
    fake = fake_discord
    await start_bot(E2EBot(fake.guild.id))

    everything = await fake.invoke_autocomplete("lg server start", {"map": "map"}, focused="map")
    choices = await everything.choices()
    assert len(choices) == 25 and choices[0] == {"name": "map00", "value": "map00"}
    narrow = await fake.invoke_autocomplete("lg server start", {"map": "map3"}, focused="map")
    assert [c["value"] for c in await narrow.choices()] == [f"map3{i}" for i in range(10)]
    focused = narrow.payload["data"]["options"][0]["options"][0]["options"][0]
    assert focused == {"type": 3, "name": "map", "value": "map3", "focused": True}


async def test_button_clicked_by_invoker_and_by_someone_else(
    fake_discord: FakeDiscord, start_bot: Any
) -> None:
    fake = fake_discord
    alice, bob, _ = cast(fake)
    await start_bot(E2EBot(fake.guild.id))

    handle = await fake.invoke_slash("panel", user=alice)
    message = await handle.message()
    assert message.custom_ids() == ["panel:confirm"]

    refused = await fake.click_button(message, "panel:confirm", user=bob)
    refusal = await refused.message()
    assert refusal.content == "not your panel" and refusal.ephemeral
    assert message.content == "press confirm"

    accepted = await fake.click_button(message, "panel:confirm", user=alice)
    assert (await accepted.response()).type == 7
    assert message.content == "confirmed by alice" and message.edited
    assert message.component("panel:confirm")["disabled"] is True
    with pytest.raises(ValueError, match="disabled"):
        await fake.click_button(message, "panel:confirm", user=alice)


async def test_select_then_deferred_update_edits_the_message(
    fake_discord: FakeDiscord, start_bot: Any
) -> None:
    fake = fake_discord
    alice, _, _ = cast(fake)
    await start_bot(E2EBot(fake.guild.id))

    handle = await fake.invoke_slash("pick", user=alice)
    message = await handle.message()
    with pytest.raises(ValueError, match="not options"):
        await fake.select_option(message, "pick:map", ["malden"], user=alice)
    chosen = await fake.select_option(message, "pick:map", ["tanoa"], user=alice)
    assert (await chosen.response()).type == 6
    edited = await chosen.message(until=lambda m: m.content == "picked tanoa")
    assert edited is message and message.components == []


async def test_files_via_interaction_callback_and_followup(
    fake_discord: FakeDiscord, start_bot: Any
) -> None:
    fake = fake_discord
    await start_bot(E2EBot(fake.guild.id))

    handle = await fake.invoke_slash("files")
    response = await handle.response()
    assert response.uploads[0].data == b"a\n"  # multipart callback (payload_json + files[0])
    followup = await handle.followup(0)
    assert followup.file("b.log").data == b"b\n"
    original = await handle.message(until=lambda m: m.content == "log a.log")
    assert original.attachments == [] and [s.content for s in original.history] == [
        "log",
        "log a.log",
    ]


async def test_attachment_option_is_read_through_the_cdn(
    fake_discord: FakeDiscord, start_bot: Any
) -> None:
    fake = fake_discord
    await start_bot(E2EBot(fake.guild.id))
    data = bytes(range(256)) * 40
    pbo = fake.add_attachment("mission.altis.pbo", data)

    handle = await fake.invoke_slash("upload", {"file": pbo})
    reply = await handle.message()
    assert reply.content == f"mission.altis.pbo {len(data)} {hashlib.sha256(data).hexdigest()[:12]}"
    assert handle.payload["data"]["resolved"]["attachments"][str(pbo.id)]["url"].startswith(
        fake.base_url
    )
    assert [path for path, _ in fake.state.cdn_fetches] == [
        f"/attachments/0/{pbo.id}/mission.altis.pbo"
    ]


async def test_channel_message_with_embed_and_file(
    fake_discord: FakeDiscord, start_bot: Any
) -> None:
    fake = fake_discord
    bot = await start_bot(E2EBot(fake.guild.id))

    handle = await fake.invoke_slash("announce")
    assert (await handle.message()).content == "posted"
    [posted] = fake.messages(fake.general)
    assert posted.embeds[0]["title"] == "Server up" and "0/10" in posted.embed_text()
    assert posted.file("report.txt").data == b"line one\nline two\n"
    create = fake.requests_to("POST", f"/channels/{fake.general.id}/messages")[0]
    assert create.uploads[0].filename == "report.txt"  # it went out as multipart

    # Editing with attachments=[] replaces the whole file set.
    channel = bot.get_channel(fake.general.id)
    sent = await channel.fetch_message(posted.id)
    assert (await sent.attachments[0].read()) == b"line one\nline two\n"
    await sent.edit(content="no files now", attachments=[])
    assert posted.attachments == [] and posted.content == "no files now"


async def test_channel_rate_limit_429_is_waited_out(
    fake_discord: FakeDiscord, start_bot: Any
) -> None:
    fake = fake_discord
    bot = await start_bot(E2EBot(fake.guild.id))
    general = fake.general
    # Hidden limit (no headers on success): discord.py only learns it from the 429.
    fake.ratelimits.limit_channel_messages(general.id, limit=2, per=5.0, announce=False)

    channel = bot.get_channel(general.id)
    for i in range(4):
        await channel.send(f"line {i}")

    assert [m.content for m in fake.messages(general)] == [f"line {i}" for i in range(4)]
    [hit] = fake.ratelimits.limited_hits(general.id)
    assert hit.request.status == 429 and hit.retry_after > 4.0
    assert fake.ratelimits.violations(general.id) == []
    creates = fake.requests_to("POST", f"/channels/{general.id}/messages")
    assert [r.status for r in creates] == [200, 200, 429, 200, 200]
    during = [r for r in creates if hit.arrived_at < r.arrived_at < hit.reset_at - RESET_TOLERANCE]
    assert during == []
    assert creates[3].arrived_at >= hit.reset_at - RESET_TOLERANCE


async def test_announced_limit_is_respected_without_429(
    fake_discord: FakeDiscord, start_bot: Any
) -> None:
    fake = fake_discord
    bot = await start_bot(E2EBot(fake.guild.id))
    fake.ratelimits.limit_channel_messages(fake.general.id, limit=2, per=0.5, announce=True)

    channel = bot.get_channel(fake.general.id)
    for i in range(3):
        await channel.send(f"line {i}")
    assert len(fake.messages(fake.general)) == 3
    assert fake.ratelimits.limited_hits() == []
    first, _, third = fake.requests_to("POST", f"/channels/{fake.general.id}/messages")
    assert third.arrived_at - first.arrived_at >= 0.5 - RESET_TOLERANCE  # discord.py waited


async def test_random_429s_are_retried(fake_discord: FakeDiscord, start_bot: Any) -> None:
    fake = fake_discord
    bot = await start_bot(E2EBot(fake.guild.id))
    fake.ratelimits.random_429(0.5, retry_after=0.02, seed=3)

    channel = bot.get_channel(fake.general.id)
    for i in range(6):
        await channel.send(f"line {i}")
    fake.ratelimits.random_429(0)
    assert [m.content for m in fake.messages(fake.general)] == [f"line {i}" for i in range(6)]
    chaos = fake.ratelimits.chaos_hits
    assert chaos and all(r.status == 429 for r in chaos)


async def test_429_without_via_is_not_retried(fake_discord: FakeDiscord, start_bot: Any) -> None:
    fake = fake_discord
    bot = await start_bot(E2EBot(fake.guild.id))
    fake.ratelimits.limit_channel_messages(fake.general.id, limit=1, per=5.0, announce=False)
    fake.ratelimits.send_via = False

    channel = bot.get_channel(fake.general.id)
    await channel.send("one")
    with pytest.raises(discord.HTTPException) as caught:
        await channel.send("two")
    assert caught.value.status == 429


async def test_late_first_response_gets_10062(fake_discord: FakeDiscord, start_bot: Any) -> None:
    fake = fake_discord
    fake.config.interaction_deadline = 0.2
    bot = await start_bot(E2EBot(fake.guild.id))
    bot.slow_delay = 0.35

    handle = await fake.invoke_slash("slow")
    attempt = await handle.first_attempt()
    assert (attempt.status, attempt.error_code) == (404, 10062)
    assert attempt.age > 0.2
    await fake.state.notifier.wait_for(lambda: bot.errors, 2.0, "bot error")
    assert isinstance(bot.errors[0], discord.NotFound) and bot.errors[0].code == 10062
    assert await handle.unanswered(0.05)


async def test_second_first_response_gets_40060(fake_discord: FakeDiscord, start_bot: Any) -> None:
    fake = fake_discord
    await start_bot(E2EBot(fake.guild.id))

    handle = await fake.invoke_slash("secret")
    await handle.response()
    url = f"{fake.api_base}/interactions/{handle.id}/{handle.token}/callback"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json={"type": 4, "data": {"content": "again"}}) as r,
    ):
        assert r.status == 400
        assert (await r.json())["code"] == 40060


async def test_followup_after_token_expiry_gets_404(
    fake_discord: FakeDiscord, start_bot: Any
) -> None:
    fake = fake_discord
    bot = await start_bot(E2EBot(fake.guild.id))

    handle = await fake.invoke_slash("wait")
    assert (await handle.followup(0)).content == "working"  # fills the deferred message
    fake.advance_clock(15 * 60 + 1)
    bot.release.set()
    await fake.state.notifier.wait_for(lambda: bot.errors, 2.0, "bot error")
    error = bot.errors[0]
    assert isinstance(error, discord.NotFound) and error.code == 10015
    assert len(handle.followups) == 1


async def test_modal_submit(fake_discord: FakeDiscord, start_bot: Any) -> None:
    fake = fake_discord
    await start_bot(E2EBot(fake.guild.id))

    opened = await fake.invoke_slash("form")
    modal = await opened.modal()
    assert modal["title"] == "Rename server"
    submitted = await fake.submit_modal(opened, {"form:name": "Altis Life"})
    assert (await submitted.message()).content == "renamed to Altis Life"


async def test_gateway_drop_resumes(fake_discord: FakeDiscord, start_bot: Any) -> None:
    fake = fake_discord
    await start_bot(E2EBot(fake.guild.id))

    await fake.drop_gateway()
    await fake.state.notifier.wait_for(
        lambda: any(f.get("op") == 6 for f in fake.state.gateway_received), 5.0, "RESUME"
    )
    await fake.wait_until_connected()
    handle = await fake.invoke_slash("secret")
    assert (await handle.message()).content == "only you can see this"


async def test_direct_message_to_a_user(fake_discord: FakeDiscord, start_bot: Any) -> None:
    fake = fake_discord
    alice, _, _ = cast(fake)
    bot = await start_bot(E2EBot(fake.guild.id))

    user = await bot.fetch_user(alice.id)
    await user.send("your server is up")
    assert [m.content for m in fake.dm_messages(alice)] == ["your server is up"]
    assert fake.messages(fake.general) == []


async def test_wrong_token_raises_login_failure(fake_discord: FakeDiscord) -> None:
    client = discord.Client(intents=discord.Intents.default())
    try:
        with pytest.raises(discord.LoginFailure):
            await client.login("not-the-token")
    finally:
        await client.close()
    [attempt] = fake_discord.requests_to("GET", "/users/@me")
    assert attempt.status == 401


# ----- localized command names (Discord checks them; discord.py does not) ----------------------


class Translations(app_commands.Translator):
    """Translations from a table, one locale only, so each test sends what it means to."""

    def __init__(self, table: dict[str, str], locale: discord.Locale) -> None:
        self.table, self.locale = table, locale

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        return self.table.get(string.message) if locale is self.locale else None


class LocalizedBot(commands.Bot):
    """/server start mode:<choice>, synced by the test itself (to see the fake's answer)."""

    def __init__(self, guild_id: int, table: dict[str, str], locale: discord.Locale) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned, intents=discord.Intents(guilds=True)
        )
        self.guild = discord.Object(guild_id)
        self.translations = Translations(table, locale)

    async def setup_hook(self) -> None:
        await self.tree.set_translator(self.translations)
        group = app_commands.Group(name="server", description="Game servers")

        @group.command(name="start", description="Start a server")
        @app_commands.describe(mode="How to start it")
        @app_commands.choices(mode=[app_commands.Choice(name="Quick", value="quick")])
        async def start(interaction: discord.Interaction, mode: str) -> None:
            await interaction.response.send_message(mode)

        self.tree.add_command(group, guild=self.guild)


GOOD_FR = {
    "server": "serveur",
    "start": "démarrer",
    "mode": "l'allure",
    "Game servers": "Serveurs de jeu",
    "Start a server": "Démarrer un serveur",
    "How to start it": "Comment le démarrer",
    "Quick": "Rapide",
}


async def test_valid_localizations_are_stored(fake_discord: FakeDiscord, start_bot: Any) -> None:
    fake = fake_discord
    bot = await start_bot(LocalizedBot(fake.guild.id, GOOD_FR, discord.Locale.french))
    await bot.tree.sync(guild=bot.guild)
    server = fake.commands(fake.guild)["server"]
    assert server["name_localizations"] == {"fr": "serveur"}
    [start] = server["options"]
    assert start["name_localizations"] == {"fr": "démarrer"}
    assert start["description_localizations"] == {"fr": "Démarrer un serveur"}
    [mode] = start["options"]
    assert mode["name_localizations"] == {"fr": "l'allure"}
    assert mode["choices"][0]["name_localizations"] == {"fr": "Rapide"}


async def test_hindi_names_keep_their_vowel_signs(
    fake_discord: FakeDiscord, start_bot: Any
) -> None:
    """Devanagari vowel signs and viramas are marks, not letters; Discord's rule allows the
    whole script (`\\p{sc=Deva}`) [D2]."""
    fake = fake_discord
    hindi = {"server": "सर्वर", "start": "शुरू"}
    bot = await start_bot(LocalizedBot(fake.guild.id, hindi, discord.Locale.hindi))
    await bot.tree.sync(guild=bot.guild)
    server = fake.commands(fake.guild)["server"]
    assert server["name_localizations"] == {"hi": "सर्वर"}
    assert server["options"][0]["name_localizations"] == {"hi": "शुरू"}


INVALID_NAME = "Command name is invalid"
BAD_LENGTH = "Must be between 1 and 100 in length."


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        ({"server": "Serveur"}, "0.name_localizations", INVALID_NAME),  # no locale [D4]
        ({"start": "mon démarrage"}, "0.options.0.name_localizations.fr", INVALID_NAME),
        ({"mode": "m" * 33}, "0.options.0.options.0.name_localizations.fr", INVALID_NAME),
        ({"Start a server": "d" * 101}, "0.options.0.description_localizations.fr", BAD_LENGTH),
        ({"Quick": "q" * 101}, "0.options.0.options.0.choices.0.name_localizations.fr", BAD_LENGTH),
    ],
    ids=["upper-case", "space", "too-long-name", "long-description", "long-choice"],
)
async def test_invalid_localizations_are_refused_like_discord(
    fake_discord: FakeDiscord, start_bot: Any, change: dict[str, str], where: str, message: str
) -> None:
    fake = fake_discord
    bot = await start_bot(LocalizedBot(fake.guild.id, GOOD_FR | change, discord.Locale.french))
    with pytest.raises(discord.HTTPException) as refused:
        await bot.tree.sync(guild=bot.guild)
    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert f"In {where}: {message}" in refused.value.text, refused.value.text
    assert fake.commands(fake.guild) == {}  # nothing of a refused sync is kept


async def test_unknown_locale_keys_are_refused(fake_discord: FakeDiscord, start_bot: Any) -> None:
    """discord.py only sends its own `Locale` values; a raw call can send any key."""
    fake = fake_discord
    bot = await start_bot(LocalizedBot(fake.guild.id, {}, discord.Locale.french))
    command = {"name": "ping", "description": "Ping", "type": 1}
    for key, value in (("name_localizations", "ping"), ("description_localizations", "Ping")):
        for locale in ("fr-FR", "en"):
            with pytest.raises(discord.HTTPException) as refused:
                await bot.http.bulk_upsert_guild_commands(
                    fake.world.application_id, fake.guild.id, [{**command, key: {locale: value}}]
                )
            assert refused.value.code == 50035
            assert f"In 0.{key}.{locale}: " in refused.value.text, refused.value.text
    await bot.http.bulk_upsert_guild_commands(
        fake.world.application_id, fake.guild.id, [{**command, "name_localizations": None}]
    )
    assert set(fake.commands(fake.guild)) == {"ping"}
