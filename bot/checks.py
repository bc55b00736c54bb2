"""Who may do what, checked in one place each: the guild lock, the level, the per-member rate.

- `guard_guild`: the bot serves only the guilds the operator configured (`LANGUARD_GUILD_ID`);
  an interaction from any other guild, or a DM, is refused with one line and audited (at most
  once a minute per user and guild). The tree and every View call it first.
- `require(level)`: every command carries it; the level is resolved by
  `core.permissions.resolve_level` from the member's roles, for the server named in the
  command's `server` option when there is one. It also records the level on the command, so
  autocomplete (which discord.py runs without the command's checks) applies the same rule.
- `limit(rule)`: a per-member rate for commands that are costly or disruptive.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol, TypeVar, cast

import discord
from discord import app_commands

from bot.i18n import tr
from bot.services_access import HasServices, front_end
from core.errors import NotFound
from core.permissions import Level
from core.services.audit import Actor
from core.services.servers import NAME_PATTERN

__all__ = [
    "BACKUP_RATE",
    "LIFECYCLE_RATE",
    "MISSION_CHANGE_RATE",
    "MISSION_UPLOAD_RATE",
    "RATE_RULES",
    "RCON_RATE",
    "AuditThrottle",
    "LevelTooLow",
    "MemberRates",
    "RateRule",
    "UnknownServer",
    "actor_of",
    "chosen_server",
    "command_level",
    "guard_guild",
    "limit",
    "member_level",
    "require",
    "server_id_of",
]

T = TypeVar("T")
LEVEL_KEY = "languard.level"
"""Where `require` records a command's level (in `Command.extras`, or on the callback)."""


class LevelTooLow(app_commands.CheckFailure):
    def __init__(self, needed: Level, has: Level) -> None:
        super().__init__(f"needs {needed.label}")
        self.needed = needed
        self.has = has


class UnknownServer(app_commands.CheckFailure):
    """The `server` option names no server: refused before the command answers, so the
    error stays ephemeral even for commands that defer publicly."""

    def __init__(self, name: str) -> None:
        wanted = name.strip().lower()
        self.wanted = wanted if NAME_PATTERN.fullmatch(wanted) else None
        super().__init__(self.text(None))

    def text(self, locale: discord.Locale | None) -> str:
        if self.wanted is None:
            return tr(locale, "there is no server by that name; `/server list` shows them")
        return tr(
            locale, "there is no server named `{name}`; `/server list` shows them", name=self.wanted
        )


class _ChecksHost(HasServices, Protocol):
    """What the checks need of the client (bot.client.LanguardBot), without importing it."""

    audit_throttle: AuditThrottle
    member_rates: MemberRates


def _bot(interaction: discord.Interaction[Any]) -> _ChecksHost:
    return cast(_ChecksHost, front_end(interaction.client))


def actor_of(interaction: discord.Interaction[Any]) -> Actor:
    """The audit actor for this interaction's user."""
    return Actor(interaction.user.id, str(interaction.user))


def chosen_server(interaction: discord.Interaction[Any]) -> str | None:
    """The `server` option typed so far, for checks and autocompletes that depend on it."""
    server = getattr(interaction.namespace, "server", None)
    return server if isinstance(server, str) and server else None


# ----- the guild lock -------------------------------------------------------------------------


class AuditThrottle:
    """One audit row per key per `window` seconds, remembering at most `capacity` keys, so
    someone hammering a refused action cannot flood the audit log (or the bot's memory)."""

    def __init__(
        self,
        window: float = 60.0,
        capacity: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.capacity = capacity
        self._clock = clock
        self._seen: OrderedDict[Hashable, float] = OrderedDict()

    def allow(self, key: Hashable) -> bool:
        now = self._clock()
        while self._seen:  # oldest first: drop what has expired
            oldest_key, oldest = next(iter(self._seen.items()))
            if now - oldest < self.window:
                break
            del self._seen[oldest_key]
        if key in self._seen:
            return False
        self._seen[key] = now
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True


def serves(bot: HasServices, guild_id: int | None) -> bool:
    """True for the guilds the operator configured; never for a DM."""
    return guild_id is not None and guild_id in bot.settings.guild_ids


def refusal_text(
    bot: HasServices, guild_id: int | None, locale: discord.Locale | str | None = None
) -> str:
    """The one line a refused guild (or DM) gets, in the reader's language: what is wrong
    and who can change it."""
    if guild_id is None:
        return tr(
            locale,
            "Languard works only inside the Discord server it serves, not in direct messages.",
        )
    if not bot.settings.guild_ids:
        return tr(
            locale,
            "This bot is not set up yet: whoever runs it must set LANGUARD_GUILD_ID to this "
            "server's id (`{guild_id}`) and restart it.",
            guild_id=guild_id,
        )
    return tr(
        locale,
        "This bot serves another community and does nothing here. Whoever runs it can add "
        "this server's id (`{guild_id}`) to LANGUARD_GUILD_ID, or you can remove the bot.",
        guild_id=guild_id,
    )


async def guard_guild(interaction: discord.Interaction[Any]) -> bool:
    """True when the interaction comes from a served guild. Otherwise answer it (one ephemeral
    line; no choices for an autocomplete), audit it (throttled) and return False.

    Called first by `LanguardTree.interaction_check` (slash commands and autocomplete) and by
    every View's and Modal's `interaction_check` (components and modal submits: discord.py
    hands those to the View, never to the tree)."""
    bot = _bot(interaction)
    guild_id = interaction.guild_id
    if serves(bot, guild_id):
        return True
    if not interaction.response.is_done():
        try:
            if interaction.type is discord.InteractionType.autocomplete:
                await interaction.response.autocomplete([])
            else:
                refusal = refusal_text(bot, guild_id, interaction.locale)
                await interaction.response.send_message(refusal, ephemeral=True)
        except discord.HTTPException:  # expired or already answered: nothing more to say
            pass
    key = ("guild", interaction.user.id, guild_id)
    if bot.runtime is not None and bot.audit_throttle.allow(key):
        await bot.runtime.audit.record(
            actor_of(interaction),
            "denied:guild",
            arguments={"guild_id": str(guild_id) if guild_id else "DM"},
            result="refused: guild not served",
            ok=False,
        )
    return False


# ----- levels ---------------------------------------------------------------------------------


async def member_level(interaction: discord.Interaction[Any], server_id: int | None) -> Level:
    """The member's level, for `server_id` when given. Nothing outside a served guild: the
    owner/Administrator rule holds only in the guilds the operator configured."""
    user = interaction.user
    guild = interaction.guild
    bot = _bot(interaction)
    if guild is None or not isinstance(user, discord.Member) or not serves(bot, guild.id):
        return Level.NONE
    return await bot.services.permissions.level_for(
        guild.id,
        [role.id for role in user.roles],
        server_id=server_id,
        is_owner=guild.owner_id == user.id,
        is_administrator=user.guild_permissions.administrator,
    )


def server_id_of(interaction: discord.Interaction[Any], name: str | None) -> int | None:
    """The id of the server `name` (as ServerService matches names), or None."""
    if name is None:
        return None
    try:
        return _bot(interaction).services.servers.ref(name).id
    except NotFound:
        return None


def command_level(command: object) -> Level:
    """The level `require` recorded on a command; ADMIN when none was (fail closed: a
    command without a recorded level shows nothing to anyone below admin)."""
    extras = getattr(command, "extras", None)
    recorded = extras.get(LEVEL_KEY) if isinstance(extras, dict) else None
    if isinstance(recorded, Level):
        return recorded
    level = getattr(getattr(command, "callback", None), "__languard_level__", None)
    return level if isinstance(level, Level) else Level.ADMIN


async def refuse_level(
    interaction: discord.Interaction[Any],
    command: str,
    server_id: int | None,
    level: Level,
    has: Level,
) -> NoReturn:
    """Audit a refusal for a too-low level and raise it. One row a minute per member,
    command and server: a member with no level can't flood the audit log by repeating it."""
    bot = _bot(interaction)
    if bot.audit_throttle.allow(("level", interaction.user.id, command, server_id)):
        await bot.services.audit.record(
            actor_of(interaction),
            f"denied:{command}",
            server_id=server_id,
            arguments={"needed": level.label, "has": has.label},
            result="refused: level too low",
            ok=False,
        )
    raise LevelTooLow(level, has)


def require(level: Level) -> Callable[[T], T]:
    """Allow the command only to members whose level is at least `level`."""

    async def predicate(interaction: discord.Interaction[Any]) -> bool:
        name = chosen_server(interaction)
        server_id = server_id_of(interaction, name)
        has = await member_level(interaction, server_id)
        if has >= level:
            if name is not None and server_id is None:
                raise UnknownServer(name)
            return True
        command = interaction.command.qualified_name if interaction.command else "?"
        await refuse_level(interaction, command, server_id, level, has)

    check = app_commands.check(predicate)

    def decorator(func: T) -> T:
        if isinstance(func, app_commands.Command):
            func.extras[LEVEL_KEY] = level
        else:
            func.__languard_level__ = level  # type: ignore[attr-defined]
        return check(func)

    return decorator


# ----- per-member rates -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateRule:
    """At most `rate` calls per `per` seconds per member, shared by every command that
    carries the same rule."""

    name: str
    rate: int
    per: float


LIFECYCLE_RATE = RateRule("lifecycle", 3, 30.0)
"""/server start, stop, restart and kill, together: a game server takes tens of seconds to
start or stop, so more than three in half a minute is a mistake or a prank, not operating."""
RCON_RATE = RateRule("rcon", 5, 30.0)
"""/rcon: a few commands in a row are normal; a stream of them is a script."""
MISSION_UPLOAD_RATE = RateRule("mission upload", 2, 60.0)
"""/missions upload: each one downloads and writes up to the size cap to disk."""
MISSION_CHANGE_RATE = RateRule("mission change", 5, 60.0)
"""/missions rotation, load and delete: each rewrites config or interrupts the game."""
BACKUP_RATE = RateRule("backup", 3, 300.0)
"""/backup now and restore, together: each reads (and a restore rewrites) a server's whole
folder and waits in the one job queue; more than three in five minutes only fills both."""
RATE_RULES = (LIFECYCLE_RATE, RCON_RATE, MISSION_UPLOAD_RATE, MISSION_CHANGE_RATE, BACKUP_RATE)


class MemberRates:
    """The buckets of every rule, per member; at most `capacity` members are remembered
    (the least recently seen is forgotten first). `overrides` replaces rules by name (a test
    that is not about rates runs with generous ones)."""

    def __init__(self, overrides: Iterable[RateRule] = (), capacity: int = 4096) -> None:
        self.capacity = capacity
        self.overrides = {rule.name: rule for rule in overrides}
        self._buckets: OrderedDict[tuple[str, int], app_commands.Cooldown] = OrderedDict()

    def hit(self, rule: RateRule, user_id: int) -> app_commands.Cooldown | None:
        """Count one call; the bucket when it is over the rate (the call is refused)."""
        rule = self.overrides.get(rule.name, rule)
        key = (rule.name, user_id)
        bucket = self._buckets.pop(key, None) or app_commands.Cooldown(rule.rate, rule.per)
        self._buckets[key] = bucket
        while len(self._buckets) > self.capacity:
            self._buckets.popitem(last=False)
        return bucket if bucket.update_rate_limit() is not None else None


def limit(rule: RateRule) -> Callable[[T], T]:
    """Refuse a member's call over `rule`'s rate with CommandOnCooldown (the tree says when
    to retry). Put it above `require`, so only calls the member may make are counted. A
    refusal is audited at most once a minute per member and rule, never as the mutation."""

    async def predicate(interaction: discord.Interaction[Any]) -> bool:
        bot = _bot(interaction)
        bucket = bot.member_rates.hit(rule, interaction.user.id)
        if bucket is None:
            return True
        retry_after = bucket.get_retry_after()
        shown = f"{bucket.rate} per {bucket.per:.0f} s ({rule.name})"
        if bot.audit_throttle.allow(("rate", interaction.user.id, rule.name)):
            command = interaction.command.qualified_name if interaction.command else "?"
            await bot.services.audit.record(
                actor_of(interaction),
                f"denied:{command}",
                server_id=server_id_of(interaction, chosen_server(interaction)),
                arguments={"rate": shown},
                result="refused: too many calls",
                ok=False,
            )
        raise app_commands.CommandOnCooldown(bucket, retry_after)

    return app_commands.check(predicate)
