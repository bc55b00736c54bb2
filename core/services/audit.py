"""The audit trail: who did what, on which server, with what result. Secrets never enter it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from core.errors import LanguardError
from core.events import AuditRecorded, EventBus
from core.paging import Page, window
from data.repositories.history import AuditEntry, AuditRepository

__all__ = ["SYSTEM", "Actor", "AuditLog", "AuditScope", "mask_secrets"]

_SECRET_KEY = re.compile(r"pass(word)?|secret|token|api_?key|private_?key", re.IGNORECASE)
MASK = "••••••"
MAX_ARGUMENT_CHARS = 500


@dataclass
class AuditScope:
    """What the audit records for one command, filled in as the command goes."""

    arguments: dict[str, Any]
    server_id: int | None = None
    result: str = "ok"
    ok: bool = True


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked: a Discord user (id, display name) or the system itself (id None)."""

    id: int | None
    name: str


SYSTEM = Actor(None, "languard")


def mask_secrets(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Replace the value of any argument whose name smells of a secret; cap long values."""
    masked: dict[str, Any] = {}
    for key, value in arguments.items():
        if _SECRET_KEY.search(key) or (
            key == "value" and _SECRET_KEY.search(str(arguments.get("key", "")))
        ):
            masked[key] = MASK
        elif isinstance(value, str) and len(value) > MAX_ARGUMENT_CHARS:
            masked[key] = value[:MAX_ARGUMENT_CHARS] + "…"
        else:
            masked[key] = value
    return masked


class AuditLog:
    def __init__(self, repository: AuditRepository, bus: EventBus | None = None) -> None:
        self._repo = repository
        self._bus = bus
        """Hears an `AuditRecorded` per row, so a front end can mirror the audit live."""

    async def record(
        self,
        actor: Actor,
        action: str,
        *,
        server_id: int | None = None,
        arguments: Mapping[str, Any] | None = None,
        result: str = "ok",
        ok: bool = True,
    ) -> int:
        masked = mask_secrets(arguments or {})
        entry_id = await self._repo.add(
            actor_id=actor.id,
            actor_name=actor.name,
            action=action,
            server_id=server_id,
            arguments=masked,
            result=result[:1000],
            ok=ok,
        )
        if self._bus is not None:
            self._bus.publish(
                AuditRecorded(
                    server_id=server_id or 0,
                    server="",
                    entry_id=entry_id,
                    actor_id=actor.id,
                    actor_name=actor.name,
                    action=action,
                    arguments=tuple((str(k), str(v)) for k, v in masked.items()),
                    result=result[:1000],
                    ok=ok,
                )
            )
        return entry_id

    @asynccontextmanager
    async def scope(
        self,
        actor: Actor,
        action: str,
        arguments: Mapping[str, Any],
        server_id: int | None = None,
    ) -> AsyncIterator[AuditScope]:
        """Audit a block's outcome: what it filled in, or the error's user-safe message
        (a refusal is recorded too; a bug only as "internal error")."""
        scope = AuditScope(dict(arguments), server_id)
        try:
            yield scope
        except Exception as exc:
            scope.result = str(exc) if isinstance(exc, LanguardError) else "internal error"
            scope.ok = False
            await self._record_scope(actor, action, scope)
            raise
        await self._record_scope(actor, action, scope)

    async def _record_scope(self, actor: Actor, action: str, scope: AuditScope) -> None:
        await self.record(
            actor,
            action,
            server_id=scope.server_id,
            arguments=scope.arguments,
            result=scope.result,
            ok=scope.ok,
        )

    async def recent(self, limit: int = 20, server_id: int | None = None) -> list[AuditEntry]:
        return await self._repo.recent(max(1, min(limit, 100)), server_id)

    async def page(self, offset: int, limit: int, server_id: int | None = None) -> Page[AuditEntry]:
        """One page of the trail, newest first, and how many entries there are in all."""
        offset, limit = window(offset, limit)
        total = await self._repo.count(server_id)
        return Page(total, offset, await self._repo.recent(limit, server_id, offset))
