"""Assertion helpers over what the fake recorded (messages, requests, syncs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .clock import Clock
from .dispatch import Principal, user_of
from .messages import FakeMessage
from .models import FakeChannel, FakeGuild
from .ratelimit import RateLimits
from .records import CallbackRecord, RequestRecord, SyncRecord
from .state import FakeConfig, FakeState


class RecordQueries:
    """Read-only views and bounded waits over the records; nothing here changes the fake."""

    state: FakeState
    config: FakeConfig
    clock: Clock

    # ----- records ------------------------------------------------------------------------

    @property
    def ratelimits(self) -> RateLimits:
        """Knobs (`limit_channel_messages`, `random_429`, `send_via`) and 429 records."""
        return self.state.ratelimits

    @property
    def requests(self) -> list[RequestRecord]:
        """Every /api request in arrival order (with status, body, uploads, arrival time)."""
        return self.state.requests

    @property
    def callbacks(self) -> list[CallbackRecord]:
        """Every interaction callback attempt, across interactions, accepted or not."""
        return self.state.callbacks

    @property
    def syncs(self) -> list[SyncRecord]:
        """Every bulk command overwrite (`tree.sync()`), in order."""
        return self.state.syncs

    def requests_to(self, method: str, path_contains: str = "") -> list[RequestRecord]:
        return [r for r in self.state.requests if r.method == method and path_contains in r.path]

    def messages(
        self,
        channel: FakeChannel | int,
        *,
        include_ephemeral: bool = False,
        include_deleted: bool = False,
    ) -> list[FakeMessage]:
        """Messages in a channel, oldest first (by default what other users would see)."""
        cid = channel if isinstance(channel, int) else channel.id
        return [
            m
            for m in self.state.channel_messages(cid)
            if (include_ephemeral or not m.ephemeral) and (include_deleted or not m.deleted)
        ]

    def dm_messages(self, user: Principal) -> list[FakeMessage]:
        return self.messages(self.state.dm_channel(user_of(user)))

    async def wait_for_messages(
        self,
        channel: FakeChannel | int,
        count: int,
        *,
        timeout: float = 5.0,
        include_ephemeral: bool = False,
    ) -> list[FakeMessage]:
        """Until the channel holds at least `count` (visible) messages."""

        def enough() -> list[FakeMessage] | None:
            found = self.messages(channel, include_ephemeral=include_ephemeral)
            return found if len(found) >= count else None

        return await self.state.notifier.wait_for(enough, timeout, f"{count} message(s) in channel")

    async def wait_for_message(
        self,
        channel: FakeChannel | int,
        predicate: Callable[[FakeMessage], bool],
        *,
        timeout: float = 5.0,
    ) -> FakeMessage:
        """Until some message in the channel (as it is now, edits included) matches."""

        def match() -> FakeMessage | None:
            return next(
                (m for m in self.messages(channel, include_ephemeral=True) if predicate(m)), None
            )

        return await self.state.notifier.wait_for(match, timeout, "matching message")

    def sync_count(self, guild: FakeGuild | bool | None = False) -> int:
        """How many bulk overwrites: all (default), one guild's, or global (`guild=None`)."""
        if guild is False:
            return len(self.state.syncs)
        gid = guild.id if isinstance(guild, FakeGuild) else None
        return sum(1 for s in self.state.syncs if s.guild_id == gid)

    def commands(self, guild: FakeGuild | None = None) -> dict[str, dict[str, Any]]:
        """Synced commands by name (global when `guild` is None), as Discord stores them."""
        app_id = self.state.world.application_id
        scope = guild.id if guild else None
        return {c.name: c.payload(app_id) for c in self.state.commands.get(scope, {}).values()}

    async def wait_for_sync(self, guild: FakeGuild | None = None, *, timeout: float = 5.0) -> None:
        gid = guild.id if guild else None
        await self.state.notifier.wait_for(
            lambda: any(s.guild_id == gid for s in self.state.syncs), timeout, "command sync"
        )

    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def assert_clean(self) -> None:
        """Fail on fake bugs, and (if strict) on routes the bot used that the fake lacks."""
        problems = list(self.state.internal_errors)
        if self.config.strict_routes:
            problems += [
                f"route not implemented by fake_discord: {r.method} {r.path}"
                for r in self.state.unhandled
            ]
        if problems:
            raise AssertionError("\n".join(problems))
