"""The audit trail: who did what, on which server, with what result. Secrets never enter it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from data.repositories.history import AuditEntry, AuditRepository

__all__ = ["SYSTEM", "Actor", "AuditLog", "mask_secrets"]

_SECRET_KEY = re.compile(r"pass(word)?|secret|token|api_?key|private_?key", re.IGNORECASE)
MASK = "••••••"
MAX_ARGUMENT_CHARS = 500


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
    def __init__(self, repository: AuditRepository) -> None:
        self._repo = repository

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
        return await self._repo.add(
            actor_id=actor.id,
            actor_name=actor.name,
            action=action,
            server_id=server_id,
            arguments=mask_secrets(arguments or {}),
            result=result[:1000],
            ok=ok,
        )

    async def recent(self, limit: int = 20, server_id: int | None = None) -> list[AuditEntry]:
        return await self._repo.recent(max(1, min(limit, 100)), server_id)
