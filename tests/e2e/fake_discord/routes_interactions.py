"""Interaction callbacks and the interaction webhook (follow-ups, @original edits).

Discord's timing rules are enforced with the fake's clock: the first response must
arrive within `config.interaction_deadline` (3 s) of the INTERACTION_CREATE or it gets
404 10062; a second first response gets 400 40060; the token (follow-ups, edits) works
for `config.token_lifetime` (15 min), then 404 10015.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .bodies import Upload, json_object
from .errors import (
    ALREADY_ACKNOWLEDGED,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    ApiError,
    invalid_form,
    not_found,
)
from .messages import EPHEMERAL, LOADING, FakeMessage, StoredFile, apply_message_payload
from .records import CallbackRecord
from .state import FakeState, InteractionState
from .web_common import API, body_of, no_content, ok, snowflake, state_of

PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
PONG = 1
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9
LABEL, TEXT_INPUT = 18, 4  # component types inside a modal

# Which interaction types may answer with which callback type.
ALLOWED: dict[int, set[int]] = {
    PONG: {PING},
    CHANNEL_MESSAGE: {APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT},
    DEFERRED_CHANNEL_MESSAGE: {APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT},
    DEFERRED_UPDATE_MESSAGE: {MESSAGE_COMPONENT, MODAL_SUBMIT},
    UPDATE_MESSAGE: {MESSAGE_COMPONENT, MODAL_SUBMIT},
    AUTOCOMPLETE_RESULT: {AUTOCOMPLETE},
    MODAL: {APPLICATION_COMMAND, MESSAGE_COMPONENT},
}


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post(f"{API}/interactions/{{interaction_id}}/{{token}}/callback", callback)
    hook = f"{API}/webhooks/{{app_id}}/{{token}}"
    r.add_post(hook, followup)
    r.add_get(f"{hook}/messages/{{message_id}}", get_hook_message)
    r.add_patch(f"{hook}/messages/{{message_id}}", edit_hook_message)
    r.add_delete(f"{hook}/messages/{{message_id}}", delete_hook_message)


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


def _storer(state: FakeState, inter: InteractionState) -> Any:
    def store(upload: Upload, filename: str | None, description: str | None) -> StoredFile:
        return state.store_file(upload, filename, description, inter.channel.id)

    return store


def _interaction_message(state: FakeState, inter: InteractionState, flags: int) -> FakeMessage:
    msg = state.new_message(inter.channel, state.world.bot)
    msg.webhook_id = msg.application_id = state.world.application_id
    msg.interaction_id = inter.id
    msg.interaction_user = inter.user
    msg.interaction_type = inter.type
    msg.interaction_name = inter.command_name
    msg.type = 20 if inter.type == APPLICATION_COMMAND else 0
    msg.flags = flags
    return msg


# ----- callback ----------------------------------------------------------------------------


async def callback(request: web.Request) -> web.Response:
    state = state_of(request)
    iid = snowflake(request, "interaction_id", UNKNOWN_INTERACTION, "interaction")
    inter = state.interactions.get(iid)
    payload = json_object(body_of(request))
    now = state.clock.now()
    record = CallbackRecord(
        interaction_id=iid,
        type=int(payload.get("type", 0)),
        data=payload.get("data") or {},
        uploads=body_of(request).uploads,
        arrived_at=now,
        age=now - inter.created_at if inter else 0.0,
    )
    state.callbacks.append(record)
    try:
        if inter is None or inter.token != request.match_info["token"]:
            raise not_found(UNKNOWN_INTERACTION, "interaction")
        inter.callbacks.append(record)
        if inter.acknowledged:
            raise ApiError(400, ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged.")
        if record.age > state.config.interaction_deadline:
            raise not_found(UNKNOWN_INTERACTION, "interaction")
        body = await _respond(state, inter, record, body_of(request).uploads)
    except ApiError as exc:
        record.status, record.error_code = exc.status, exc.code
        state.notifier.notify()
        raise
    record.status = 200
    state.notifier.notify()
    if not _truthy(request.query.get("with_response")):
        record.status = 204
        return no_content()
    return ok(body)


async def _respond(
    state: FakeState, inter: InteractionState, record: CallbackRecord, uploads: dict[int, Upload]
) -> dict[str, Any]:
    kind, data = record.type, record.data
    if inter.type not in ALLOWED.get(kind, set()):
        raise invalid_form(
            "type", f"Callback type {kind} is not valid for interaction type {inter.type}"
        )
    message: FakeMessage | None = None
    if kind == CHANNEL_MESSAGE:
        message = _interaction_message(state, inter, int(data.get("flags") or 0) & EPHEMERAL)
        apply_message_payload(
            message, data, uploads, _storer(state, inter), editing=False, at=record.arrived_at
        )
        state.commit_message(message)
        inter.original_message_id = message.id
    elif kind == DEFERRED_CHANNEL_MESSAGE:
        message = _interaction_message(
            state, inter, LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
        )
        message.snapshot(record.arrived_at)
        state.commit_message(message)
        inter.original_message_id = message.id
        inter.thinking_pending = True
    elif kind in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
        if inter.message_id is None:
            raise invalid_form("type", "This interaction has no message to update")
        inter.original_message_id = inter.message_id
        if kind == UPDATE_MESSAGE:
            message = state.messages[inter.message_id]
            apply_message_payload(
                message, data, uploads, _storer(state, inter), editing=True, at=record.arrived_at
            )
            message.edited_timestamp = state.clock.iso()
    elif kind == AUTOCOMPLETE_RESULT:
        _validate_choices(data.get("choices") or [])
    elif kind == MODAL:
        _validate_modal(data)
    inter.response_type = kind
    record.message_id = message.id if message else None
    if message is not None:
        await state.announce(
            "MESSAGE_UPDATE" if kind == UPDATE_MESSAGE else "MESSAGE_CREATE", message
        )
    result: dict[str, Any] = {"interaction": {"id": str(inter.id), "type": inter.type}}
    if message is not None:
        result["interaction"].update(
            response_message_id=str(message.id),
            response_message_loading=message.loading,
            response_message_ephemeral=message.ephemeral,
        )
        result["resource"] = {"type": kind, "message": message.payload(state.user)}
    return result


def _validate_choices(choices: list[dict[str, Any]]) -> None:
    if len(choices) > 25:
        raise invalid_form("data.choices", "Must be 25 or fewer in length.", "BASE_TYPE_MAX_LENGTH")
    for i, choice in enumerate(choices):
        if not 1 <= len(str(choice.get("name", ""))) <= 100:
            raise invalid_form(f"data.choices.{i}.name", "Must be between 1 and 100 in length.")
        if "value" not in choice:
            raise invalid_form(f"data.choices.{i}.value", "This field is required")


def _validate_modal(data: dict[str, Any]) -> None:
    if not data.get("custom_id"):
        raise invalid_form("data.custom_id", "This field is required")
    if not 1 <= len(str(data.get("title", ""))) <= 45:
        raise invalid_form("data.title", "Must be between 1 and 45 in length.")
    if not 1 <= len(data.get("components") or []) <= 5:
        raise invalid_form("data.components", "Must be between 1 and 5 in length.")
    for i, comp in enumerate(data["components"]):
        if isinstance(comp, dict) and comp.get("type") == LABEL:
            _validate_label(f"data.components.{i}", comp)


def _too_long(value: Any, limit: int) -> bool:
    return value is not None and len(str(value)) > limit


def _validate_label(where: str, label: dict[str, Any]) -> None:
    """A Label (type 18) and the text input in it, with the limits of Discord's component
    reference (docs.discord.com/developers/components/reference, "Label" and "Text Input"):
    label <= 45, description <= 100; custom_id 1-100, style 1 (short) or 2 (paragraph),
    min_length 0-4000, max_length 1-4000, value (prefill) <= 4000, placeholder <= 100."""
    if not 1 <= len(str(label.get("label") or "")) <= 45:
        raise invalid_form(f"{where}.label", "Must be between 1 and 45 in length.")
    if _too_long(label.get("description"), 100):
        raise invalid_form(f"{where}.description", "Must be 100 or fewer in length.")
    inner = label.get("component")
    if not isinstance(inner, dict):
        raise invalid_form(f"{where}.component", "This field is required")
    if inner.get("type") != TEXT_INPUT:
        return
    at = f"{where}.component"
    if not 1 <= len(str(inner.get("custom_id") or "")) <= 100:
        raise invalid_form(f"{at}.custom_id", "Must be between 1 and 100 in length.")
    if inner.get("style") not in (1, 2):
        raise invalid_form(f"{at}.style", "Value must be one of {1, 2}.")
    low, high = inner.get("min_length"), inner.get("max_length")
    if low is not None and not 0 <= int(low) <= 4000:
        raise invalid_form(f"{at}.min_length", "int value should be between 0 and 4000.")
    if high is not None and not 1 <= int(high) <= 4000:
        raise invalid_form(f"{at}.max_length", "int value should be between 1 and 4000.")
    if _too_long(inner.get("value"), 4000):
        raise invalid_form(f"{at}.value", "Must be 4000 or fewer in length.")
    if _too_long(inner.get("placeholder"), 100):
        raise invalid_form(f"{at}.placeholder", "Must be 100 or fewer in length.")


# ----- interaction webhook -----------------------------------------------------------------


def _hook(request: web.Request) -> tuple[FakeState, InteractionState]:
    state = state_of(request)
    app_id = snowflake(request, "app_id", UNKNOWN_WEBHOOK, "Webhook")
    inter = state.interactions_by_token.get(request.match_info["token"])
    if inter is None or app_id != state.world.application_id:
        raise not_found(UNKNOWN_WEBHOOK, "Webhook")
    if state.clock.now() - inter.created_at > state.config.token_lifetime:
        raise not_found(UNKNOWN_WEBHOOK, "Webhook")
    return state, inter


def _hook_message(request: web.Request) -> tuple[FakeState, InteractionState, FakeMessage]:
    state, inter = _hook(request)
    raw = request.match_info["message_id"]
    if raw == "@original":
        message_id = inter.original_message_id
    elif raw.isdigit() and (
        int(raw) == inter.original_message_id or int(raw) in inter.followup_ids
    ):
        message_id = int(raw)
    else:
        message_id = None
    msg = state.messages.get(message_id) if message_id is not None else None
    if msg is None or msg.deleted:
        raise ApiError(404, UNKNOWN_MESSAGE, "Unknown Message")
    return state, inter, msg


async def followup(request: web.Request) -> web.Response:
    state, inter = _hook(request)
    if not inter.acknowledged:
        raise not_found(UNKNOWN_WEBHOOK, "Webhook")
    body = body_of(request)
    payload = json_object(body)
    at = state.clock.now()
    if inter.thinking_pending and inter.original_message_id is not None:
        # The first follow-up after a thinking defer fills in the "thinking" message.
        msg = state.messages[inter.original_message_id]
        apply_message_payload(
            msg, payload, body.uploads, _storer(state, inter), editing=True, at=at
        )
        msg.flags &= ~LOADING
        inter.thinking_pending = False
        event = "MESSAGE_UPDATE"
    else:
        msg = _interaction_message(state, inter, int(payload.get("flags") or 0) & EPHEMERAL)
        apply_message_payload(
            msg, payload, body.uploads, _storer(state, inter), editing=False, at=at
        )
        state.commit_message(msg)
        event = "MESSAGE_CREATE"
    inter.followup_ids.append(msg.id)
    state.notifier.notify()
    await state.announce(event, msg)
    if not _truthy(request.query.get("wait")):
        return no_content()
    return ok(msg.payload(state.user))


async def get_hook_message(request: web.Request) -> web.Response:
    state, _, msg = _hook_message(request)
    return ok(msg.payload(state.user))


async def edit_hook_message(request: web.Request) -> web.Response:
    state, inter, msg = _hook_message(request)
    body = body_of(request)
    was_loading = msg.loading
    apply_message_payload(
        msg,
        json_object(body),
        body.uploads,
        _storer(state, inter),
        editing=True,
        at=state.clock.now(),
    )
    if was_loading:
        msg.flags &= ~LOADING
        inter.thinking_pending = False
    else:
        msg.edited_timestamp = state.clock.iso()
    state.notifier.notify()
    await state.announce("MESSAGE_UPDATE", msg)
    return ok(msg.payload(state.user))


async def delete_hook_message(request: web.Request) -> web.Response:
    state, _, msg = _hook_message(request)
    msg.deleted = True
    state.notifier.notify()
    await state.announce("MESSAGE_DELETE", msg)
    return no_content()
