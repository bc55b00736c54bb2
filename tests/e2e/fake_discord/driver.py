"""Driving the bot like users do: slash commands, autocomplete, buttons, selects, modals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .dispatch import (
    InteractionHandle,
    Principal,
    Resolved,
    build_options,
    convert_value,
    find_command,
    interaction_payload,
    resolve_place,
    user_of,
)
from .messages import FakeMessage
from .models import FakeChannel, FakeGuild
from .state import InteractionState
from .world_api import WorldAPI

APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5
BUTTON, TEXT_INPUT, LABEL, ACTION_ROW = 2, 4, 18, 1
SELECT_TYPES = {3, 5, 6, 7, 8}


class InteractionDriver(WorldAPI):
    """Each helper builds a real INTERACTION_CREATE, sends it over the gateway, and returns
    an `InteractionHandle` to await the bot's answers. Misuse a user could not commit
    (unknown option, disabled button, someone else's ephemeral) raises ValueError."""

    async def _send(self, inter: InteractionState) -> InteractionHandle:
        await self.dispatch("INTERACTION_CREATE", inter.payload)
        return InteractionHandle(self.state, inter)

    async def invoke_slash(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        subcommand: Sequence[str] = (),
        user: Principal | None = None,
        guild: FakeGuild | None = None,
        channel: FakeChannel | None = None,
        dm: bool = False,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """Run `/name [group] [sub] opt:value...` as `user` (default: guild owner).

        `name` may carry the path ("server start"); or pass `subcommand=("start",)`.
        Option values: str/int/float/bool, FakeUser/FakeMember, FakeRole, FakeChannel,
        or a StoredFile from `add_attachment`.
        """
        return await self._command(
            name, options or {}, subcommand, user, guild, channel, dm, locale, None
        )

    async def invoke_autocomplete(
        self,
        name: str,
        options: Mapping[str, Any],
        *,
        focused: str,
        subcommand: Sequence[str] = (),
        user: Principal | None = None,
        guild: FakeGuild | None = None,
        channel: FakeChannel | None = None,
        dm: bool = False,
    ) -> InteractionHandle:
        """An autocomplete request (type 4) while the user types into `focused`."""
        return await self._command(
            name, options, subcommand, user, guild, channel, dm, "en-US", focused
        )

    async def _command(
        self,
        name: str,
        options: Mapping[str, Any],
        subcommand: Sequence[str],
        who: Principal | None,
        guild: FakeGuild | None,
        channel: FakeChannel | None,
        dm: bool,
        locale: str,
        focused: str | None,
    ) -> InteractionHandle:
        head, *rest = name.split()
        path = [*rest, *subcommand]
        user, guild, channel = resolve_place(self.state, who or self.owner, guild, channel, dm)
        command = find_command(self.state, head, guild)
        resolved = Resolved(self.state, guild, user) if focused is None else None
        built = build_options(command.data.get("options") or [], path, options, resolved, focused)
        data: dict[str, Any] = {
            "id": str(command.id),
            "name": command.name,
            "type": command.type,
            "options": built,
        }
        if command.guild_id is not None:
            data["guild_id"] = str(command.guild_id)
        if resolved is not None and resolved.data:
            data["resolved"] = resolved.data
        kind = APPLICATION_COMMAND if focused is None else AUTOCOMPLETE

        def build(iid: int, token: str) -> dict[str, Any]:
            return interaction_payload(
                self.state,
                iid=iid,
                token=token,
                kind=kind,
                user=user,
                guild=guild,
                channel=channel,
                data=data,
                locale=locale,
            )

        inter = self.state.new_interaction(
            kind, user, channel, guild.id if guild else None, build, command_name=head
        )
        return await self._send(inter)

    def _message_of(self, target: FakeMessage | InteractionHandle) -> FakeMessage:
        msg = target.original if isinstance(target, InteractionHandle) else target
        if msg is None or msg.deleted:
            raise ValueError("that message does not exist (any more)")
        return self.state.messages[msg.id]

    async def click_button(
        self,
        message: FakeMessage | InteractionHandle,
        custom_id: str,
        *,
        user: Principal | None = None,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """Click a button on a message the bot sent (type 3 interaction); `locale` is the
        clicking user's client language, sent with every interaction as for commands."""
        return await self._component(message, custom_id, user, None, locale)

    async def forge_press(
        self, msg: FakeMessage, custom_id: str, user: Principal
    ) -> InteractionHandle:
        """A button press as a modified or stale client sends it: no check that the user may
        see the message or that the button is on it (`click_button` refuses both, as
        Discord's own client never offers them). For tests of the bot's own guards."""
        who, guild, channel = resolve_place(
            self.state, user, None, self.state.channel(msg.channel_id), False
        )
        data = {"custom_id": custom_id, "component_type": BUTTON}
        return await self._press(msg, who, guild, channel, data, "en-US")

    async def select_option(
        self,
        message: FakeMessage | InteractionHandle,
        custom_id: str,
        values: Sequence[Any],
        *,
        user: Principal | None = None,
    ) -> InteractionHandle:
        """Pick values in a select menu (strings; users/roles/channels for entity selects)."""
        return await self._component(message, custom_id, user, list(values))

    async def _component(
        self,
        target: FakeMessage | InteractionHandle,
        custom_id: str,
        who: Principal | None,
        values: list[Any] | None,
        locale: str = "en-US",
    ) -> InteractionHandle:
        msg = self._message_of(target)
        comp = msg.component(custom_id)
        kind = int(comp.get("type", 0))
        if comp.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled; a user cannot use it")
        if (values is None) != (kind == BUTTON):
            raise ValueError(f"component {custom_id!r} is type {kind}; use the matching helper")
        channel = self.state.channel(msg.channel_id)
        who = who or self.owner
        if (
            msg.ephemeral
            and msg.interaction_user is not None
            and user_of(who).id != msg.interaction_user.id
        ):
            raise ValueError("only the invoking user can see (and click) an ephemeral message")
        user, guild, channel = resolve_place(self.state, who, None, channel, False)
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": kind}
        if values is not None:
            resolved = Resolved(self.state, guild, user)
            if kind == 3:
                allowed = [o["value"] for o in comp.get("options") or []]
                bad = [v for v in values if v not in allowed]
                if bad:
                    raise ValueError(f"{bad} are not options of {custom_id!r}")
                data["values"] = [str(v) for v in values]
            else:
                entity = {5: 6, 6: 8, 7: 9, 8: 7}[kind]
                data["values"] = [convert_value(entity, v, resolved, custom_id) for v in values]
                data["resolved"] = resolved.data

        return await self._press(msg, user, guild, channel, data, locale)

    async def _press(
        self,
        msg: FakeMessage,
        user: Any,
        guild: Any,
        channel: Any,
        data: dict[str, Any],
        locale: str,
    ) -> InteractionHandle:
        """The component interaction Discord sends for a press or a pick on `msg`."""

        def build(iid: int, token: str) -> dict[str, Any]:
            return interaction_payload(
                self.state,
                iid=iid,
                token=token,
                kind=MESSAGE_COMPONENT,
                user=user,
                guild=guild,
                channel=channel,
                data=data,
                message=msg,
                locale=locale,
            )

        inter = self.state.new_interaction(
            MESSAGE_COMPONENT, user, channel, guild.id if guild else None, build, message_id=msg.id
        )
        return await self._send(inter)

    async def submit_modal(
        self,
        opened_by: InteractionHandle,
        values: Mapping[str, str | Sequence[str]],
        *,
        user: Principal | None = None,
    ) -> InteractionHandle:
        """Submit the modal the bot opened in answer to `opened_by` (type 5 interaction)."""
        modal = await opened_by.modal(timeout=0.1)
        src = opened_by.inter
        components = [
            c for c in (_submitted(comp, values) for comp in modal.get("components") or []) if c
        ]
        unknown = set(values) - _modal_ids(modal.get("components") or [])
        if unknown:
            raise ValueError(f"the modal has no inputs {sorted(unknown)}")
        data = {"custom_id": modal["custom_id"], "components": components}
        who = user or src.user
        user_, guild, channel = resolve_place(self.state, who, None, src.channel, False)
        message = self.state.messages.get(src.message_id) if src.message_id else None

        def build(iid: int, token: str) -> dict[str, Any]:
            return interaction_payload(
                self.state,
                iid=iid,
                token=token,
                kind=MODAL_SUBMIT,
                user=user_,
                guild=guild,
                channel=channel,
                data=data,
                message=message,
            )

        inter = self.state.new_interaction(
            MODAL_SUBMIT,
            user_,
            channel,
            guild.id if guild else None,
            build,
            message_id=src.message_id,
        )
        return await self._send(inter)


def _modal_ids(components: list[dict[str, Any]]) -> set[str]:
    ids: set[str] = set()
    for comp in components:
        inner = comp.get("components") or ([comp["component"]] if "component" in comp else [])
        ids |= {c["custom_id"] for c in inner if "custom_id" in c}
    return ids


def _submitted(
    comp: dict[str, Any], values: Mapping[str, str | Sequence[str]]
) -> dict[str, Any] | None:
    """Mirror one top-level modal component as Discord submits it, with the user's values."""

    def fill(item: dict[str, Any]) -> dict[str, Any] | None:
        cid = item.get("custom_id")
        if cid is None:
            return None
        kind = int(item["type"])
        if kind == TEXT_INPUT:
            value = values.get(cid, "")
            if not value and item.get("required", True):
                raise ValueError(f"modal input {cid!r} is required")
            # Discord's client will not submit more or less than the input allows
            high, low = item.get("max_length"), item.get("min_length")
            if high is not None and len(str(value)) > int(high):
                raise ValueError(f"modal input {cid!r} takes at most {high} characters")
            if value and low is not None and len(str(value)) < int(low):
                raise ValueError(f"modal input {cid!r} takes at least {low} characters")
            return {"type": kind, "id": item.get("id"), "custom_id": cid, "value": str(value)}
        if kind in SELECT_TYPES:
            chosen = values.get(cid, [])
            picked = [chosen] if isinstance(chosen, str) else list(chosen)
            return {"type": kind, "id": item.get("id"), "custom_id": cid, "values": picked}
        return None

    kind = int(comp.get("type", 0))
    if kind == ACTION_ROW:
        inner = [f for f in (fill(c) for c in comp.get("components") or []) if f]
        return {"type": ACTION_ROW, "components": inner} if inner else None
    if kind == LABEL and isinstance(comp.get("component"), dict):
        filled = fill(comp["component"])
        return {"type": LABEL, "id": comp.get("id"), "component": filled} if filled else None
    return None
