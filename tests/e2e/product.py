"""The product under test: the real `LanguardBot` on the fake Discord, the fake Arma 3 behind it.

Everything a user does goes in as a gateway interaction (`Product.run`, `press`, `choices`)
and every answer comes back as an HTTP call discord.py made. The game's side (players
joining, what the game believes) goes through the test-only RCon commands of the fake Arma 3
server (`fake.join`, `fake.state`), sent over the bot's own RCon link. Tests read the bot's
services directly only to wait for something Discord does not show (a join seen) or to
check what no reply shows (an audit row's masked arguments).

A test module opens one product for all its tests (starting a bot and a game server is the
slow part), so each test uses its own server or player names where state could leak:

    @pytest_asyncio.fixture(scope="module", loop_scope="module")
    async def product(tmp_path_factory):
        async with open_product(tmp_path_factory.mktemp("servers")) as opened:
            yield opened

Settings come from the environment the way an operator gives them: `LANGUARD_ARMA3_EXECUTABLE`
points at the fake's `arma3server_x64`, `LANGUARD_DATA_DIR` at a temporary folder.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from bot.checks import RATE_RULES, RateRule
from bot.client import COGS, LanguardBot
from core.config import Settings, load_settings
from core.supervisor.ports import port_is_free
from core.supervisor.server import ManagedServer
from tests.e2e.fake_discord import (
    FakeDiscord,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
    InteractionHandle,
    route_discord_to,
    running_client,
)
from tests.fakes.arma3_bin import write_fake_arma3
from tests.integration.supervision import kill_groups
from tests.ports import random_port_block

__all__ = [
    "BOT_COGS",
    "GAME_TIMEOUT",
    "Cast",
    "Product",
    "button_id",
    "is_error",
    "open_product",
    "text_of",
    "until",
]

BOT_COGS = tuple(name for name in COGS if name != "cogs.status")
"""Every cog but /status (another engineer's work in progress; not part of these tests)."""
RELAXED_RATES = tuple(RateRule(rule.name, 1000, rule.per) for rule in RATE_RULES)
"""Tests that are not about per-member rates run many lifecycle commands in a row as one
member; tests/e2e/test_cooldowns.py opens the product with the real rates."""
REPLY_TIMEOUT = 10.0
GAME_TIMEOUT = 30.0
"""A fake Arma 3 server becomes ready in about a second; this bounds it on a loaded host."""
Principal = FakeUser | FakeMember
LEVEL_NAMES = ("admin", "operator", "moderator", "viewer")


@dataclass
class Cast:
    """One person per level. `admin` holds a role granted admin with `/perms grant`; the
    owner is admin by owning the guild; `nobody` has no granted role at all."""

    owner: FakeUser
    admin: FakeMember
    operator: FakeMember
    moderator: FakeMember
    viewer: FakeMember
    nobody: FakeMember
    roles: dict[str, FakeRole]


def text_of(msg: FakeMessage) -> str:
    """Everything a user reads in a message: content, embed titles, texts, fields, footers."""
    parts = [msg.content]
    for embed in msg.embeds:
        parts += [embed.get("title", ""), embed.get("description", "")]
        for item in embed.get("fields") or []:
            parts += [item.get("name", ""), item.get("value", "")]
        parts.append((embed.get("footer") or {}).get("text", ""))
    return "\n".join(part for part in parts if part)


def is_error(msg: FakeMessage) -> bool:
    """An answer of the tree's error policy: one red embed starting with ⚠️."""
    return bool(msg.embeds) and str(msg.embeds[0].get("description", "")).startswith("⚠️")


def button_id(msg: FakeMessage, label: str) -> str:
    """The custom id of the button labelled `label` (discord.py generates random ids)."""
    for comp in msg.iter_components():
        if comp.get("type") == 2 and comp.get("label") == label:
            return str(comp["custom_id"])
    labels = [c.get("label") for c in msg.iter_components() if c.get("type") == 2]
    raise AssertionError(f"no button {label!r} on the message (buttons: {labels})")


def synced(product: Product) -> list[dict[str, Any]]:
    """The chat commands the fake received (and accepted) at sync for the served guild:
    what a member's client shows, not the bot's own tree."""
    stored = product.fake.state.commands.get(product.fake.guild.id, {})
    commands = [c.data for c in stored.values() if c.type == 1]
    assert len(commands) >= 10, sorted(c["name"] for c in commands)
    return commands


async def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `check` until it returns something truthy; TimeoutError names `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f} s")
        await asyncio.sleep(0.02)


_HANDED_OUT: collections.deque[int] = collections.deque(maxlen=64)
"""Bases given lately: a server created but not started holds its block in the bot's plan
though the ports are free, so a second server of the same test must not draw it again."""


def free_arma_port() -> int:
    """A game port P with P..P+4 and the RCon port P+10 free (UDP), picked at random so
    parallel test runs on the host do not collide on Arma's default 2302."""

    def free(base: int) -> bool:
        if base in _HANDED_OUT:
            return False
        ports = [*range(base, base + 5), base + 10]
        return all(port_is_free(p, "udp") and port_is_free(p, "tcp") for p in ports)

    base = random_port_block(100, free)
    _HANDED_OUT.append(base)
    return base


class Product:
    """The fake Discord, the bot's settings, the running bot, and the people using it."""

    def __init__(
        self,
        fake: FakeDiscord,
        settings: Settings,
        cast: Cast,
        rate_overrides: tuple[RateRule, ...] = RELAXED_RATES,
    ) -> None:
        self.fake = fake
        self.settings = settings
        self.cast = cast
        self.rate_overrides = rate_overrides
        self.bot: LanguardBot | None = None
        self.pids: set[int] = set()
        self._stack: contextlib.AsyncExitStack | None = None

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @property
    def running(self) -> LanguardBot:
        assert self.bot is not None, "the bot is not running"
        return self.bot

    # -- users doing things ------------------------------------------------------------------

    async def run(
        self, name: str, options: Mapping[str, Any] | None = None, *, user: Principal | None = None
    ) -> InteractionHandle:
        """`/name sub option:value...` as `user` (default: the guild owner)."""
        return await self.fake.invoke_slash(name, options or {}, user=user or self.cast.owner)

    async def reply(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: Principal | None = None,
        timeout: float = REPLY_TIMEOUT,
    ) -> FakeMessage:
        """Run a command and return its answer once filled in (not "thinking")."""
        handle = await self.run(name, options, user=user)
        return await handle.message(timeout)

    async def error(
        self, name: str, options: Mapping[str, Any] | None = None, *, user: Principal | None = None
    ) -> str:
        """Run a command that must be refused: its answer is one ephemeral error embed, and
        nothing of it stays visible to others (a public "thinking" message is removed)."""
        handle = await self.run(name, options, user=user)

        def answered() -> FakeMessage | None:
            found = [m for m in (handle.original, *handle.followups) if m is not None]
            return next((m for m in found if not m.deleted and is_error(m)), None)

        msg = await self.fake.state.notifier.wait_for(answered, REPLY_TIMEOUT, "error answer")
        assert msg.ephemeral, f"the error is visible to everyone: {text_of(msg)!r}"
        visible = [m for m in (handle.original, *handle.followups) if m and not m.deleted]
        assert all(m.ephemeral for m in visible), [text_of(m) for m in visible]
        return text_of(msg)

    async def choices(
        self,
        name: str,
        options: Mapping[str, Any],
        focused: str,
        *,
        user: Principal | None = None,
    ) -> list[dict[str, Any]]:
        handle = await self.fake.invoke_autocomplete(
            name, options, focused=focused, user=user or self.cast.owner
        )
        return await handle.choices(REPLY_TIMEOUT)

    async def press(
        self, handle: InteractionHandle, label: str, *, user: Principal | None = None
    ) -> InteractionHandle:
        """Press a button on the command's (ephemeral) answer, as its invoker by default."""
        msg = await handle.message(REPLY_TIMEOUT)
        who = user or handle.inter.user
        return await self.fake.click_button(msg, button_id(msg, label), user=who)

    async def press_as_other(
        self, handle: InteractionHandle, label: str, user: Principal
    ) -> InteractionHandle:
        """A press on someone else's confirmation, as a forged or stale client would send it.

        Discord itself never shows an ephemeral message to anyone but its invoker (the fake
        refuses `click_button` for that), so this builds the component interaction by hand:
        it proves the bot's own guard, not a path a normal client can take.
        """
        msg = await handle.message(REPLY_TIMEOUT)
        return await self.fake.forge_press(msg, button_id(msg, label), user)

    # -- servers -----------------------------------------------------------------------------

    def server(self, name: str) -> ManagedServer:
        return self.running.services.supervisor.by_name(name)

    async def create_server(self, name: str, *, start: bool = False) -> ManagedServer:
        """`/server create` (and `/server start`) as the owner, on a random free port."""
        msg = await self.reply(
            "server create", {"name": name, "game": "arma3", "port": free_arma_port()}
        )
        assert "Server created" in text_of(msg), text_of(msg)
        if start:
            handle = await self.run("server start", {"server": name})
            final = await handle.message(GAME_TIMEOUT, until=lambda m: bool(m.embeds))
            assert "is **running**" in text_of(final), text_of(final)
        return self.server(name)

    def note_pids(self) -> None:
        """Remember every game process seen, so the end of the module can kill them all
        (a container has no pid here: its engine's owner removes it)."""
        if self.bot is not None and self.bot.runtime is not None:
            handles = [s.handle for s in self.bot.runtime.supervisor.all() if s.handle]
            self.pids |= {h.pid for h in handles if h.pid is not None}

    async def game(self, name: str, command: str) -> str:
        """A raw RCon command to the fake game (the test playing the game's world)."""
        server = self.server(name)
        self.note_pids()
        await until(lambda: server.link is not None and server.link.connected, 10, "RCon link")
        assert server.link is not None
        return await server.link.command(command)

    async def game_state(self, name: str) -> dict[str, Any]:
        """What the fake game believes: mission, players, bans (`fake.state`)."""
        return dict(json.loads(await self.game(name, "fake.state")))

    async def join(self, name: str, player: str, guid: str, ip: str) -> None:
        """A player joins the game; returns once the bot's live list knows them."""
        await self.game(name, f"fake.join {player} {guid} {ip}")
        players = self.running.services.players
        await until(
            lambda: any(p.name == player for p in players.known_online(name)), 10, f"{player}"
        )

    def server_folder(self, name: str) -> Path:
        return self.running.services.supervisor.folder_for(name)

    async def audit_text(self, *, server: str | None = None, limit: int = 50) -> str:
        options: dict[str, Any] = {"limit": limit}
        if server:
            options["server"] = server
        msg = await self.reply("audit", options)
        assert msg.ephemeral
        return text_of(msg)

    # -- the bot process ---------------------------------------------------------------------

    async def start_bot(self, cogs: tuple[str, ...] = BOT_COGS) -> LanguardBot:
        """A LanguardBot on this data folder, logged in and synced (if its tree changed)."""
        assert self._stack is None, "a bot is already running"
        bot = LanguardBot(
            self.settings,
            cogs=cogs,
            rate_overrides=self.rate_overrides,
            guild_ready_timeout=0.05,
        )
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(running_client(self.fake, bot, timeout=20.0))
        self._stack, self.bot = stack, bot
        return bot

    async def stop_bot(self) -> None:
        """Close the bot as an operator would; the game servers keep running."""
        self.note_pids()
        stack, self._stack, self.bot = self._stack, None, None
        if stack is not None:
            await stack.aclose()


async def _grant(product: Product, role: FakeRole, level: str) -> None:
    msg = await product.reply("perms grant", {"role": role, "level": level})
    assert f"now **{level}**" in text_of(msg), text_of(msg)


@contextlib.asynccontextmanager
async def open_product(
    tmp: Path,
    *,
    real_rates: bool = False,
    hosts_toml: str | None = None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Product]:
    """A fake Discord with people at every level, the bot on it (serving the fake's guild),
    grants made with `/perms grant`; at the end the bot stops and every fake game process is
    killed. Per-member rates are relaxed unless `real_rates`. `hosts_toml` is written as the
    data folder's hosts.toml before the bot starts (as an operator would); `env` adds
    settings as an operator gives them (LANGUARD_HOST_PROBE_INTERVAL...)."""
    async with FakeDiscord() as fake:
        with route_discord_to(fake):
            roles = {level: fake.add_role(level.capitalize() + "s") for level in LEVEL_NAMES}
            cast = Cast(
                owner=fake.owner,
                admin=fake.add_user("ada", roles=[roles["admin"]]),
                operator=fake.add_user("otto", roles=[roles["operator"]]),
                moderator=fake.add_user("mona", roles=[roles["moderator"]]),
                viewer=fake.add_user("vic", roles=[roles["viewer"]]),
                nobody=fake.add_user("nemo"),
                roles=roles,
            )
            environment = {
                "DISCORD_TOKEN": fake.token,
                "LANGUARD_GUILD_ID": str(fake.guild.id),
                "LANGUARD_DATA_DIR": str(tmp / "data"),
                "LANGUARD_ARMA3_EXECUTABLE": str(write_fake_arma3(tmp / "bin")),
                "LANGUARD_PUBLIC_HOST": "127.0.0.1",
                **(env or {}),
            }
            with mock.patch.dict(os.environ, environment):
                settings = load_settings(_env_file=None)
            if hosts_toml is not None:
                settings.data_dir.mkdir(parents=True, exist_ok=True)
                (settings.data_dir / "hosts.toml").write_text(hosts_toml, encoding="utf-8")
            product = Product(fake, settings, cast, () if real_rates else RELAXED_RATES)
            try:
                await product.start_bot()
                for level, role in roles.items():
                    await _grant(product, role, level)
                yield product
            finally:
                try:
                    await product.stop_bot()
                finally:
                    kill_groups(sorted(product.pids))
        fake.assert_clean()
