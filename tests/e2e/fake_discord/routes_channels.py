"""Channel routes: messages (JSON and multipart), edits, deletes, history, typing, reactions."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .bodies import Upload, json_object
from .errors import (
    CANNOT_EDIT_OTHERS_MESSAGE,
    MISSING_ACCESS,
    MISSING_PERMISSIONS,
    UNKNOWN_CHANNEL,
    UNKNOWN_MESSAGE,
    ApiError,
)
from .messages import FakeMessage, StoredFile, apply_message_payload
from .models import ATTACH_FILES, EMBED_LINKS, SEND_MESSAGES, VIEW_CHANNEL, FakeChannel
from .state import FakeState
from .web_common import API, RECORD, body_of, no_content, ok, snowflake, state_of


def add_routes(app: web.Application) -> None:
    r = app.router
    base = f"{API}/channels/{{channel_id}}"
    r.add_get(base, get_channel)
    r.add_get(f"{base}/messages", list_messages)
    r.add_post(f"{base}/messages", create_message)
    r.add_get(f"{base}/messages/{{message_id}}", get_message)
    r.add_patch(f"{base}/messages/{{message_id}}", edit_message)
    r.add_delete(f"{base}/messages/{{message_id}}", delete_message)
    r.add_post(f"{base}/typing", typing)
    r.add_put(f"{base}/messages/{{message_id}}/reactions/{{emoji}}/@me", add_reaction)
    r.add_delete(f"{base}/messages/{{message_id}}/reactions/{{emoji}}/@me", remove_reaction)


def _channel(request: web.Request) -> tuple[FakeState, FakeChannel]:
    state = state_of(request)
    channel = state.channel(snowflake(request, "channel_id", UNKNOWN_CHANNEL, "Channel"))
    request[RECORD].channel_id = channel.id
    if channel.bot_denied & VIEW_CHANNEL:
        raise ApiError(403, MISSING_ACCESS, "Missing Access")
    return state, channel


def _message(request: web.Request) -> tuple[FakeState, FakeChannel, FakeMessage]:
    state, channel = _channel(request)
    msg = state.message(channel.id, snowflake(request, "message_id", UNKNOWN_MESSAGE, "Message"))
    if msg.ephemeral:  # ephemeral messages exist only behind the interaction token
        raise ApiError(404, UNKNOWN_MESSAGE, "Unknown Message")
    return state, channel, msg


def _storer(state: FakeState, channel: FakeChannel) -> Any:
    def store(upload: Upload, filename: str | None, description: str | None) -> StoredFile:
        return state.store_file(upload, filename, description, channel.id)

    return store


def _permitted(channel: FakeChannel, body_uploads: bool, payload: dict[str, Any]) -> dict[str, Any]:
    """The bot's own message as Discord takes it in a channel where it is denied something.

    Attachments without Attach Files are refused (403 Missing Permissions). Embeds without
    Embed Links are not refused: Discord drops them silently, and a message left with nothing
    else is refused as empty (400 50006). Sources: discord/discord-api-docs#5648 (an edit
    adding an embed without the permission: the embed is ignored, and the request is called
    empty when it carries nothing else) and #2601 (embeds silently left out rather than a
    403 Missing Permissions).
    """
    if body_uploads and channel.bot_denied & ATTACH_FILES:
        raise ApiError(403, MISSING_PERMISSIONS, "Missing Permissions")
    if channel.bot_denied & EMBED_LINKS and payload.get("embeds"):
        return {**payload, "embeds": []}
    return payload


async def get_channel(request: web.Request) -> web.Response:
    state, channel = _channel(request)
    return ok(channel.payload(bot_user_id=state.world.bot.id))


async def create_message(request: web.Request) -> web.Response:
    state, channel = _channel(request)
    if channel.bot_denied & SEND_MESSAGES:
        raise ApiError(403, MISSING_PERMISSIONS, "Missing Permissions")
    record = request[RECORD]
    decision = state.ratelimits.check_message_create(channel.id, record)
    if not decision.allowed:
        record.rate_limited = True
        state.notifier.notify()
        limited = {
            "message": "You are being rate limited.",
            "retry_after": decision.retry_after,
            "global": False,
        }
        return ok(limited, status=429, headers=decision.headers)
    body = body_of(request)
    payload = _permitted(channel, bool(body.uploads), json_object(body))
    msg = state.new_message(channel, state.world.bot)
    apply_message_payload(
        msg, payload, body.uploads, _storer(state, channel), editing=False, at=state.clock.now()
    )
    state.commit_message(msg)
    await state.announce("MESSAGE_CREATE", msg)
    return ok(msg.payload(state.user), headers=decision.headers)


async def get_message(request: web.Request) -> web.Response:
    state, _, msg = _message(request)
    return ok(msg.payload(state.user))


async def edit_message(request: web.Request) -> web.Response:
    state, channel, msg = _message(request)
    if msg.author.id != state.world.bot.id:
        raise ApiError(
            403, CANNOT_EDIT_OTHERS_MESSAGE, "Cannot edit a message authored by another user"
        )
    body = body_of(request)
    apply_message_payload(
        msg,
        _permitted(channel, bool(body.uploads), json_object(body)),
        body.uploads,
        _storer(state, channel),
        editing=True,
        at=state.clock.now(),
    )
    msg.edited_timestamp = state.clock.iso()
    state.notifier.notify()
    await state.announce("MESSAGE_UPDATE", msg)
    return ok(msg.payload(state.user))


async def delete_message(request: web.Request) -> web.Response:
    state, _, msg = _message(request)
    msg.deleted = True
    state.notifier.notify()
    await state.announce("MESSAGE_DELETE", msg)
    return no_content()


async def list_messages(request: web.Request) -> web.Response:
    """Newest first, like Discord; `before`/`after`/`limit` only (no `around`)."""
    state, channel = _channel(request)
    limit = max(1, min(int(request.query.get("limit", "50")), 100))
    before = int(request.query.get("before", "0")) or None
    after = int(request.query.get("after", "0")) or None
    visible = [m for m in state.channel_messages(channel.id) if not m.deleted and not m.ephemeral]
    if before is not None:
        visible = [m for m in visible if m.id < before]
    if after is not None:
        visible = [m for m in visible if m.id > after]
        visible = visible[:limit]
    newest_first = sorted(visible, key=lambda m: m.id, reverse=True)[:limit]
    return ok([m.payload(state.user) for m in newest_first])


async def typing(request: web.Request) -> web.Response:
    _channel(request)
    return no_content()


async def add_reaction(request: web.Request) -> web.Response:
    state, _, msg = _message(request)
    msg.reactions.append(request.match_info["emoji"])
    state.notifier.notify()
    return no_content()


async def remove_reaction(request: web.Request) -> web.Response:
    state, _, msg = _message(request)
    emoji = request.match_info["emoji"]
    if emoji in msg.reactions:
        msg.reactions.remove(emoji)
    state.notifier.notify()
    return no_content()
