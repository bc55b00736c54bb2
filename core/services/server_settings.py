"""Server settings: shown masked, validated, saved; secrets encrypted, port clashes refused."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from core.errors import InvalidInput
from core.secrets import SecretBox, SecretError
from core.services.audit import Actor, AuditLog
from core.services.port_plan import busy_on_host, occupied_ports, overlapping_server
from core.services.server_views import SetResult, SettingView
from core.services.settings_keys import Effect, SettingKey
from core.services.settings_schema import MASK, NOT_SET, SettingsSchema, schema_for
from core.supervisor.server import ManagedServer
from core.supervisor.states import ACTIVE_STATES
from core.supervisor.supervisor import Supervisor

__all__ = ["ServerSettings"]

_log = logging.getLogger(__name__)


class ServerSettings:
    """`/server config` and `/server set` for one ServerService, sharing its lock."""

    def __init__(
        self, supervisor: Supervisor, audit: AuditLog, secret_box: SecretBox, lock: asyncio.Lock
    ) -> None:
        self._sup = supervisor
        self._audit = audit
        self._box = secret_box
        self._lock = lock
        """The ServerService's lock: create, delete and settings changes never overlap."""

    async def get_settings(self, server: ManagedServer) -> list[SettingView]:
        """Every key with its value as shown (secrets masked), for `/server config`."""
        schema = schema_for(server.profile)
        stored = await self._sup.settings_repo.get_all(server.id)
        secret_keys = set(await self._sup.secrets_repo.keys(server.id))
        views: list[SettingView] = []
        for key in schema.list_keys():
            if key.secret:
                is_set = key.name in secret_keys
                shown, is_default = (MASK if is_set else NOT_SET), not is_set
            else:
                is_default = key.name not in stored
                shown = schema.display(key.name, stored.get(key.name, key.default))
            views.append(
                SettingView(key.name, shown, key.description, key.effect, key.secret, is_default)
            )
        return views

    async def set_setting(
        self, actor: Actor, server: ManagedServer, key: str, value: str
    ) -> SetResult:
        """Validate and save one key; secrets are encrypted and masked in the audit."""
        schema = schema_for(server.profile)
        known = key.strip().lower()[:40] if isinstance(key, str) else ""
        # the value stays masked unless the key is known and not secret: a mistyped key
        # (`pasword`) must not put a password into the audit. (Named `setting`, because
        # mask_secrets hides any argument called `key`.)
        arguments = {"setting": known, "value": MASK}
        async with self._audit.scope(actor, "server.set", arguments, server.id) as outcome:
            spec = schema.key(key)
            if not spec.secret:
                outcome.arguments = {"setting": spec.name, "value": value}
            async with self._lock:
                result = await self._set(server, schema, spec, value)
            outcome.arguments = {"setting": spec.name, "value": result.value}
            outcome.result = result.message
        _log.info("%s set %s on %s", actor.name, spec.name, server.name)
        return result

    async def _set(
        self, server: ManagedServer, schema: SettingsSchema, spec: SettingKey, value: str
    ) -> SetResult:
        stored = await self._sup.settings_repo.get_all(server.id)
        current = {**stored, **await self._decrypted(server.id)}
        parsed = schema.parse(spec.name, value, current)
        if spec.secret:
            if parsed.value is None:
                await self._sup.secrets_repo.delete(server.id, spec.name)
            else:
                encrypted = self._box.encrypt(str(parsed.value))
                await self._sup.secrets_repo.put(server.id, spec.name, encrypted)
        else:
            if not spec.lifecycle:
                await self._check_changed_ports(server, stored, {**stored, spec.name: parsed.value})
            await self._sup.settings_repo.set(server.id, spec.name, parsed.value)
        active = server.state in ACTIVE_STATES
        next_start = active and spec.effect is Effect.NEXT_START
        if spec.name == "liveness_interval" and active:
            before = stored.get(spec.name, spec.default)
            next_start = isinstance(before, int | float) and before <= 0 < float(parsed.value)
        if next_start:
            message = "saved; takes effect at the next start (restart the server to apply it)"
        elif spec.effect is Effect.NEXT_START:
            message = "saved; used when the server starts"
        else:
            message = "saved; in effect now"
        return SetResult(spec.name, parsed.shown, spec.effect, next_start, message)

    async def _check_changed_ports(
        self, server: ManagedServer, before: Mapping[str, Any], after: Mapping[str, Any]
    ) -> None:
        folder = self._sup.folder_for(server.name)
        mine = occupied_ports(server.profile, server.name, folder, after)
        if mine == occupied_ports(server.profile, server.name, folder, before):
            return
        taken = await self.taken_ports(exclude=server.id, host=server.runtime.name)
        other = overlapping_server(mine, taken)
        if other is not None:
            raise InvalidInput("that would overlap the ports of server `{other}`", other=other)
        if server.state not in ACTIVE_STATES:
            busy = busy_on_host(server.profile, server.name, folder, after)
            if busy:
                raise InvalidInput("{busy} is already in use on this host", busy=busy)

    async def taken_ports(
        self, exclude: int | None, host: str | None = None
    ) -> dict[str, set[int]]:
        """The ports of every server but the one with id `exclude`, by server name (on
        `host` only, when given: two machines do not share ports)."""
        taken: dict[str, set[int]] = {}
        for server in self._sup.all():
            if host is not None and server.runtime.name != host:
                continue
            if server.id != exclude:
                settings = await self._sup.settings_repo.get_all(server.id)
                folder = self._sup.folder_for(server.name)
                taken[server.name] = occupied_ports(server.profile, server.name, folder, settings)
        return taken

    async def _decrypted(self, server_id: int) -> dict[str, str]:
        """The server's secrets in plain text, for validation only; never returned."""
        plain: dict[str, str] = {}
        for key in await self._sup.secrets_repo.keys(server_id):
            token = await self._sup.secrets_repo.get(server_id, key)
            if token is None:
                continue
            try:
                plain[key] = self._box.decrypt(token)
            except SecretError:
                _log.warning("secret %s of server %d cannot be decrypted", key, server_id)
        return plain
