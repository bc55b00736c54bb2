"""What Discord shows for every command and option is written for a player, and the bounds
Discord enforces while typing are the service's own rules.

Read from the commands the fake Discord received at sync (not from the bot's tree), so the
test sees exactly what a member's client shows: a command or option without a description
reaches Discord as "…" (discord.py's default), and a declared `min_length`/`max_length` or
`min_value`/`max_value` that differs from the service refuses valid input in the client, or
lets through input the service then refuses. Each bound is compared with the rule it stands
for, read from the service where the rule is a constant or probed from the service's
validator; a new bounded option without an entry here fails the test, saying which.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from bot.client import COGS
from core.backups.layout import NAME_PATTERN as BACKUP_NAME_PATTERN
from core.backups.manifest import MAX_NOTE_CHARS
from core.backups.retention import DAY, MAX_AGE, MAX_KEEP, MIN_AGE
from core.cron import MAX_TEXT as MAX_SCHEDULE_TEXT
from core.errors import InvalidInput
from core.games.arma3_link import _COMMAND_LIMIT as ARMA3_COMMAND_LIMIT
from core.hosts.model import _NAME as HOST_NAME
from core.net.download import MAX_URL_LENGTH
from core.parsing import parse_duration
from core.services.ban_targets import MAX_TEXT as MAX_REASON
from core.services.maintenance import MAX_MAINTENANCE_MINUTES
from core.services.player_identity import MAX_NAME as MAX_PLAYER_NAME
from core.services.port_plan import HIGHEST_PORT, LOWEST_PORT
from core.services.schedule_rules import MAX_MESSAGE_CHARS
from core.services.servers import NAME_PATTERN
from core.services.settings_schema import _SAFE_KEY
from core.services.settings_values import MAX_VALUE_CHARS
from tests.e2e.product import Product, free_arma_port, open_product, synced

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
DISCORD_DEFAULT = "…"
"""What discord.py sends when a command or option has no description."""
DISCORD_MAX_STRING = 6000
"""Discord's largest `max_length` for a string option."""


def _accepted_lengths(accepts: Callable[[int], bool], up_to: int = 200) -> tuple[int, int]:
    """The shortest and longest lengths (0..up_to) a validator accepts, by trying each."""
    accepted = [n for n in range(0, up_to + 1) if accepts(n)]
    assert accepted, "the validator accepts no length at all"
    return min(accepted), max(accepted)


def _name_rule() -> tuple[int, int]:
    return _accepted_lengths(lambda n: NAME_PATTERN.fullmatch("a" * n) is not None)


def _key_rule() -> tuple[int, int]:
    return _accepted_lengths(lambda n: _SAFE_KEY.fullmatch("a" * n) is not None)


def _backup_name_rule() -> tuple[int, int]:
    longest = "20240131T120000Z-12"
    return _accepted_lengths(
        lambda n: BACKUP_NAME_PATTERN.fullmatch(longest[:n]) is not None, len(longest)
    )


def _duration_rule() -> tuple[int, int]:
    def accepts(n: int) -> bool:
        text = "1s" + " " * (n - 4) + "1s" if n >= 4 else "1s"[:n]  # `1s   1s` is valid
        try:
            parse_duration(text)
        except InvalidInput:
            return False
        return True

    # its length check is 1..32 (the shortest valid duration, `7d`, has two characters)
    return 1, _accepted_lengths(accepts)[1]


RULES: dict[tuple[str, str], tuple[float, float]] = {
    ("server create", "name"): _name_rule(),
    # the union over games (Arma 3's own schema stops at 65000; the service says so)
    ("server create", "port"): (LOWEST_PORT, HIGHEST_PORT),
    ("server create", "host"): _accepted_lengths(lambda n: bool(HOST_NAME.fullmatch("a" * n))),
    ("server set", "key"): (1, _key_rule()[1]),
    ("server set", "value"): (1, MAX_VALUE_CHARS),
    ("server maintenance", "minutes"): (1, MAX_MAINTENANCE_MINUTES),
    ("rcon", "command"): (1, ARMA3_COMMAND_LIMIT),  # Minecraft's console takes as much
    ("players kick", "player"): (1, MAX_PLAYER_NAME),
    ("players kick", "reason"): (0, MAX_REASON),
    ("players ban", "player"): (1, MAX_PLAYER_NAME),
    ("players ban", "duration"): _duration_rule(),
    ("players ban", "reason"): (0, MAX_REASON),
    ("players say", "message"): (1, MAX_REASON),  # clean_text keeps MAX_TEXT characters
    ("players history", "query"): (1, 64),  # PlayerService.history
    ("bans add", "id"): (1, 64),  # ban_targets.parse_target
    ("bans add", "duration"): _duration_rule(),
    ("bans add", "reason"): (0, MAX_REASON),
    ("missions upload", "url"): (1, MAX_URL_LENGTH),
    # the service caps the count (MAX_ROTATION), not the text: Discord's own cap applies
    ("missions rotation", "missions"): (0, DISCORD_MAX_STRING),
    # rules of the cog itself (the log reader takes any count)
    ("logs tail", "lines"): (1, 500),
    ("logs search", "text"): (1, 100),
    ("logs search", "limit"): (1, 200),
    ("schedule restart", "at"): (1, MAX_SCHEDULE_TEXT),
    ("schedule restart", "warn"): (1, 64),  # cog rule: up to 10 minutes, comma-separated
    ("schedule message", "every"): _duration_rule(),
    ("schedule message", "message"): (1, MAX_MESSAGE_CHARS),
    ("audit", "limit"): (1, 100),  # AuditService.recent reads at most 100
    ("schedule backup", "when"): (1, MAX_SCHEDULE_TEXT),
    ("backup now", "note"): (0, MAX_NOTE_CHARS),
    ("backup restore", "backup"): _backup_name_rule(),
    ("backup delete", "backup"): _backup_name_rule(),
    ("backup settings", "keep"): (1, MAX_KEEP),
    ("backup settings", "max_age_days"): (MIN_AGE / DAY, MAX_AGE / DAY),
    # the service counts the globs (50 of 200 characters), not the text: Discord's cap applies
    ("backup settings", "exclude"): (1, DISCORD_MAX_STRING),
    ("mods add", "id_or_url"): (1, 300),  # core.mods.model.parse_workshop_id reads 300 at most
    # the service counts the mods (at most 200 in a set), not the text: Discord's cap applies
    ("mods order", "mods"): (1, DISCORD_MAX_STRING),
    ("server mods", "set"): (1, DISCORD_MAX_STRING),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    async with open_product(tmp_path_factory.mktemp("descriptions")) as opened:
        await opened.stop_bot()  # every cog, /status too
        await opened.start_bot(COGS)
        yield opened


def walk(items: list[dict[str, Any]], path: str = "") -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(command path, option name or "", item) for every command, subcommand and option."""
    for item in items:
        kind = int(item.get("type", SUB_COMMAND))
        if not path or kind in (SUB_COMMAND, SUB_COMMAND_GROUP):
            here = f"{path} {item['name']}".strip()
            yield here, "", item
            yield from walk(item.get("options") or [], here)
        else:
            yield path, str(item["name"]), item


def bounds(item: dict[str, Any]) -> tuple[int | None, int | None] | None:
    """(min, max) as declared (length for strings, value for numbers), None if neither."""
    low = item.get("min_length", item.get("min_value"))
    high = item.get("max_length", item.get("max_value"))
    return None if low is None and high is None else (low, high)


async def test_every_command_and_option_has_a_description(product: Product) -> None:
    found = list(walk(synced(product)))
    assert len(found) > 100, len(found)
    missing = [
        f"/{command} {option}".strip()
        for command, option, item in found
        if not str(item.get("description", "")).strip()
        or item.get("description") == DISCORD_DEFAULT
    ]
    assert not missing, f"no description (Discord shows '…'): {missing}"
    too_long = [f"/{c} {o}" for c, o, item in found if len(item["description"]) > 100]
    assert not too_long, too_long
    help_command = next(item for command, _, item in found if command == "help")
    assert "version" in help_command["description"]


async def test_declared_bounds_are_the_services_rules(product: Product) -> None:
    declared = {
        (command, option): found
        for command, option, item in walk(synced(product))
        if option and (found := bounds(item)) is not None
    }
    unknown = sorted(set(declared) - set(RULES))
    assert not unknown, f"add the service's rule for these bounded options: {unknown}"
    gone = sorted(set(RULES) - set(declared))
    assert not gone, f"these options lost their declared bounds: {gone}"
    wrong = {key: (declared[key], RULES[key]) for key in RULES if declared[key] != RULES[key]}
    assert not wrong, f"declared (min, max) vs the service's rule: {wrong}"
    assert declared[("server create", "name")] == (3, 32)


async def test_a_range_written_in_a_description_is_the_declared_one(product: Product) -> None:
    """ "1-500" in an option's description must be what the client enforces."""
    mismatched = []
    for command, option, item in walk(synced(product)):
        declared = bounds(item)
        written = re.search(r"\b(\d+)-(\d+)\b", str(item.get("description", "")))
        if option and declared and written and (int(written[1]), int(written[2])) != declared:
            mismatched.append(f"/{command} {option}: says {written[0]}, declares {declared}")
    assert not mismatched, mismatched


async def test_names_outside_the_bounds_are_refused_and_the_edges_accepted(
    product: Product,
) -> None:
    """The fake Discord does not enforce option bounds (the real client does), so a name the
    client would not send is sent anyway: the service refuses it with the same rule the
    client states, and the shortest and longest names the client allows are created."""
    low, high = RULES[("server create", "name")]
    for name in ("d" * (low - 1), "d" * (high + 1)):
        options = {"name": name, "game": "arma3", "port": free_arma_port()}
        refused = await product.error("server create", options)
        assert f"{low} to {high}" in refused, refused
    for name in ("d" * low, "e" * high):
        created = await product.create_server(name)
        assert created.name == name
