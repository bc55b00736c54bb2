"""Login, application, gateway discovery, application commands, guilds and users."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .bodies import json_object
from .errors import (
    MISSING_ACCESS,
    UNKNOWN_APPLICATION_COMMAND,
    UNKNOWN_GUILD,
    UNKNOWN_MEMBER,
    UNKNOWN_ROLE,
    UNKNOWN_USER,
    ApiError,
    invalid_form,
    not_found,
)
from .localizations import check_localizations, valid_name
from .models import FakeGuild
from .records import SyncRecord
from .state import GUILD_MEMBERS_INTENT, FakeState, StoredCommand
from .web_common import API, body_of, no_content, ok, snowflake, state_of

CHAT_INPUT = 1
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{API}/users/@me", me)
    r.add_get(f"{API}/oauth2/applications/@me", application)
    r.add_get(f"{API}/applications/@me", application)
    r.add_get(f"{API}/gateway", gateway)
    r.add_get(f"{API}/gateway/bot", gateway_bot)
    r.add_post(f"{API}/users/@me/channels", create_dm)
    r.add_get(f"{API}/users/{{user_id}}", get_user)
    for prefix in ("/applications/{app_id}", "/applications/{app_id}/guilds/{guild_id}"):
        r.add_get(f"{API}{prefix}/commands", list_commands)
        r.add_put(f"{API}{prefix}/commands", overwrite_commands)
        r.add_post(f"{API}{prefix}/commands", upsert_command)
        r.add_get(f"{API}{prefix}/commands/{{command_id}}", get_command)
        r.add_patch(f"{API}{prefix}/commands/{{command_id}}", edit_command)
        r.add_delete(f"{API}{prefix}/commands/{{command_id}}", delete_command)
    r.add_get(f"{API}/guilds/{{guild_id}}", get_guild)
    r.add_get(f"{API}/guilds/{{guild_id}}/roles", guild_roles)
    r.add_get(f"{API}/guilds/{{guild_id}}/channels", guild_channels)
    r.add_get(f"{API}/guilds/{{guild_id}}/members", guild_members)
    r.add_get(f"{API}/guilds/{{guild_id}}/members/{{user_id}}", guild_member)
    r.add_put(f"{API}/guilds/{{guild_id}}/members/{{user_id}}/roles/{{role_id}}", add_role)
    r.add_delete(f"{API}/guilds/{{guild_id}}/members/{{user_id}}/roles/{{role_id}}", remove_role)


# ----- login and discovery -----------------------------------------------------------------


async def me(request: web.Request) -> web.Response:
    return ok(state_of(request).world.bot.payload())


async def application(request: web.Request) -> web.Response:
    world = state_of(request).world
    return ok(
        {
            "id": str(world.application_id),
            "name": world.bot.name,
            "icon": None,
            "description": "",
            "summary": "",
            "rpc_origins": [],
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": world.app_owner.payload(),
            "team": None,
            "verify_key": "0" * 64,
            "flags": world.application_flags,
            "interactions_endpoint_url": None,
            "bot": world.bot.payload(),
            "tags": [],
        }
    )


def _gateway_url(request: web.Request) -> str:
    return state_of(request).base_url.replace("http://", "ws://", 1) + "/gateway"


async def gateway(request: web.Request) -> web.Response:
    return ok({"url": _gateway_url(request)})


async def gateway_bot(request: web.Request) -> web.Response:
    limit = {"total": 1000, "remaining": 999, "reset_after": 86_400_000, "max_concurrency": 1}
    return ok({"url": _gateway_url(request), "shards": 1, "session_start_limit": limit})


# ----- users -------------------------------------------------------------------------------


async def get_user(request: web.Request) -> web.Response:
    user = state_of(request).user(snowflake(request, "user_id", UNKNOWN_USER, "User"))
    if user is None:
        raise not_found(UNKNOWN_USER, "User")
    return ok(user.payload())


async def create_dm(request: web.Request) -> web.Response:
    state = state_of(request)
    body = json_object(body_of(request))
    user = state.user(int(body.get("recipient_id", 0)))
    if user is None:
        raise invalid_form("recipient_id", "Unknown user")
    return ok(state.dm_channel(user).payload())


# ----- application commands ----------------------------------------------------------------


def _scope(request: web.Request) -> tuple[FakeState, int | None]:
    state = state_of(request)
    if snowflake(request, "app_id", MISSING_ACCESS, "Application") != state.world.application_id:
        raise ApiError(403, MISSING_ACCESS, "Missing Access")
    if "guild_id" not in request.match_info:
        return state, None
    guild_id = snowflake(request, "guild_id", MISSING_ACCESS, "Guild")
    guild = state.world.guilds.get(guild_id)
    # Discord answers 403 {"message": "Missing Access", "code": 50001} when the bot is not in
    # the guild (e.g. PUT /applications/{app}/guilds/{guild}/commands before the invite);
    # https://discord.com/developers/docs/topics/opcodes-and-status-codes#json-json-error-codes
    if guild is None or state.world.bot.id not in guild.members:
        raise ApiError(403, MISSING_ACCESS, "Missing Access")
    return state, guild_id


def _validate_options(options: list[dict[str, Any]], path: str, depth: int = 0) -> None:
    if len(options) > 25:
        raise invalid_form(path, "Must be 25 or fewer in length.")
    seen: set[str] = set()
    optional_seen = False
    for i, opt in enumerate(options):
        where = f"{path}.{i}"
        name = str(opt.get("name", ""))
        if not valid_name(name):
            raise invalid_form(
                f"{where}.name", "Command name is invalid", "APPLICATION_COMMAND_INVALID_NAME"
            )
        if name in seen:
            raise invalid_form(f"{where}.name", "Option names must be unique")
        seen.add(name)
        if not 1 <= len(str(opt.get("description", ""))) <= 100:
            raise invalid_form(f"{where}.description", "Must be between 1 and 100 in length.")
        check_localizations(opt, where, name_rule=True)
        if len(opt.get("choices") or []) > 25:
            raise invalid_form(f"{where}.choices", "Must be 25 or fewer in length.")
        for c, choice in enumerate(opt.get("choices") or []):
            check_localizations(choice, f"{where}.choices.{c}", name_rule=False)
        kind = int(opt.get("type", 0))
        if kind in (SUB_COMMAND, SUB_COMMAND_GROUP):
            if depth >= 2 or (kind == SUB_COMMAND_GROUP and depth >= 1):
                raise invalid_form(f"{where}.type", "Sub-commands nested too deeply")
            _validate_options(opt.get("options") or [], f"{where}.options", depth + 1)
            continue
        if opt.get("required"):
            if optional_seen:
                raise invalid_form(
                    f"{where}.required",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True


def _validate_command(data: dict[str, Any], index: int) -> None:
    kind = int(data.get("type", CHAT_INPUT))
    name = str(data.get("name", ""))
    if kind == CHAT_INPUT:
        if not valid_name(name):
            raise invalid_form(
                f"{index}.name", "Command name is invalid", "APPLICATION_COMMAND_INVALID_NAME"
            )
        if not 1 <= len(str(data.get("description", ""))) <= 100:
            raise invalid_form(f"{index}.description", "Must be between 1 and 100 in length.")
        # translations follow the same rules, checked by Discord only ([D2][D4])
        check_localizations(data, str(index), name_rule=True, top_level=True)
        _validate_options(data.get("options") or [], f"{index}.options")
    elif not 1 <= len(name) <= 32:
        raise invalid_form(f"{index}.name", "Must be between 1 and 32 in length.")


def _store(
    state: FakeState, guild_id: int | None, data: dict[str, Any], old: StoredCommand | None
) -> StoredCommand:
    if old is not None:
        version = old.version if old.data == data else state.ids.next()
        return StoredCommand(old.id, guild_id, version, data)
    return StoredCommand(state.ids.next(), guild_id, state.ids.next(), data)


async def list_commands(request: web.Request) -> web.Response:
    state, guild_id = _scope(request)
    app_id = state.world.application_id
    return ok([c.payload(app_id) for c in state.commands.get(guild_id, {}).values()])


async def overwrite_commands(request: web.Request) -> web.Response:
    """Bulk overwrite (`tree.sync()`): replaces the whole set, keeping ids of same names."""
    state, guild_id = _scope(request)
    payload = body_of(request).payload
    if not isinstance(payload, list):
        raise invalid_form("_root", "Must be an array")
    if len(payload) > 100:
        raise invalid_form("_root", "Must be 100 or fewer in length.")
    keys: set[tuple[str, int]] = set()
    for i, data in enumerate(payload):
        _validate_command(data, i)
        key = (str(data["name"]), int(data.get("type", CHAT_INPUT)))
        if key in keys:
            raise invalid_form(f"{i}.name", "Application command names must be unique")
        keys.add(key)
    old = state.commands.get(guild_id, {})
    new: dict[tuple[str, int], StoredCommand] = {}
    for data in payload:
        key = (str(data["name"]), int(data.get("type", CHAT_INPUT)))
        new[key] = _store(state, guild_id, data, old.get(key))
    state.commands[guild_id] = new
    state.syncs.append(SyncRecord(guild_id, tuple(k[0] for k in new), state.clock.now()))
    state.notifier.notify()
    app_id = state.world.application_id
    return ok([c.payload(app_id) for c in new.values()])


async def upsert_command(request: web.Request) -> web.Response:
    state, guild_id = _scope(request)
    data = json_object(body_of(request))
    _validate_command(data, 0)
    key = (str(data["name"]), int(data.get("type", CHAT_INPUT)))
    scope = state.commands.setdefault(guild_id, {})
    existed = key in scope
    scope[key] = _store(state, guild_id, data, scope.get(key))
    state.notifier.notify()
    return ok(scope[key].payload(state.world.application_id), status=200 if existed else 201)


def _find_command(
    request: web.Request,
) -> tuple[FakeState, int | None, tuple[str, int], StoredCommand]:
    state, guild_id = _scope(request)
    command_id = snowflake(
        request, "command_id", UNKNOWN_APPLICATION_COMMAND, "application command"
    )
    for key, cmd in state.commands.get(guild_id, {}).items():
        if cmd.id == command_id:
            return state, guild_id, key, cmd
    raise not_found(UNKNOWN_APPLICATION_COMMAND, "application command")


async def get_command(request: web.Request) -> web.Response:
    state, _, _, cmd = _find_command(request)
    return ok(cmd.payload(state.world.application_id))


async def edit_command(request: web.Request) -> web.Response:
    state, guild_id, key, cmd = _find_command(request)
    data = {**cmd.data, **json_object(body_of(request))}
    _validate_command(data, 0)
    state.commands[guild_id][key] = _store(state, guild_id, data, cmd)
    return ok(state.commands[guild_id][key].payload(state.world.application_id))


async def delete_command(request: web.Request) -> web.Response:
    state, guild_id, key, _ = _find_command(request)
    del state.commands[guild_id][key]
    return no_content()


# ----- guilds ------------------------------------------------------------------------------


def _guild(request: web.Request) -> tuple[FakeState, FakeGuild]:
    state = state_of(request)
    guild = state.world.guilds.get(snowflake(request, "guild_id", UNKNOWN_GUILD, "Guild"))
    if guild is None:
        raise not_found(UNKNOWN_GUILD, "Guild")
    if state.world.bot.id not in guild.members:
        raise ApiError(403, MISSING_ACCESS, "Missing Access")
    return state, guild


async def get_guild(request: web.Request) -> web.Response:
    state, guild = _guild(request)
    data = guild.payload(for_gateway=False, bot_user_id=state.world.bot.id)
    data.update(approximate_member_count=len(guild.members), approximate_presence_count=0)
    return ok(data)


async def guild_roles(request: web.Request) -> web.Response:
    _, guild = _guild(request)
    return ok([r.payload() for r in guild.roles.values()])


async def guild_channels(request: web.Request) -> web.Response:
    _, guild = _guild(request)
    return ok([c.payload() for c in guild.channels.values()])


async def guild_members(request: web.Request) -> web.Response:
    _, guild = _guild(request)
    limit = min(int(request.query.get("limit", "1")), 1000)
    after = int(request.query.get("after", "0"))
    members = sorted((m for m in guild.members.values() if m.id > after), key=lambda m: m.id)
    return ok([m.payload() for m in members[:limit]])


async def guild_member(request: web.Request) -> web.Response:
    _, guild = _guild(request)
    member = guild.members.get(snowflake(request, "user_id", UNKNOWN_MEMBER, "Member"))
    if member is None:
        raise not_found(UNKNOWN_MEMBER, "Member")
    return ok(member.payload())


async def _change_role(request: web.Request, add: bool) -> web.Response:
    state, guild = _guild(request)
    member = guild.members.get(snowflake(request, "user_id", UNKNOWN_MEMBER, "Member"))
    if member is None:
        raise not_found(UNKNOWN_MEMBER, "Member")
    role_id = snowflake(request, "role_id", UNKNOWN_ROLE, "Role")
    if role_id not in guild.roles:
        raise not_found(UNKNOWN_ROLE, "Role")
    if add and role_id not in member.role_ids:
        member.role_ids.append(role_id)
    elif not add and role_id in member.role_ids:
        member.role_ids.remove(role_id)
    if state.broadcast is not None:
        event = {"guild_id": str(guild.id), **member.payload()}
        await state.broadcast("GUILD_MEMBER_UPDATE", event, GUILD_MEMBERS_INTENT)
    state.notifier.notify()
    return no_content()


async def add_role(request: web.Request) -> web.Response:
    return await _change_role(request, add=True)


async def remove_role(request: web.Request) -> web.Response:
    return await _change_role(request, add=False)
