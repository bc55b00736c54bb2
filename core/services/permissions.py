"""Who may do what: role grants per guild, cached, audited when changed."""

from __future__ import annotations

from collections.abc import Iterable

from core.permissions import Grant, Level, resolve_level
from core.services.audit import Actor, AuditLog
from data.repositories.grants import GrantRepository

__all__ = ["PermissionService"]


class PermissionService:
    def __init__(self, grants: GrantRepository, audit: AuditLog) -> None:
        self._grants = grants
        self._audit = audit
        self._cache: dict[int, list[Grant]] = {}

    async def grants(self, guild_id: int) -> list[Grant]:
        cached = self._cache.get(guild_id)
        if cached is None:
            cached = await self._grants.for_guild(guild_id)
            self._cache[guild_id] = cached
        return cached

    async def level_for(
        self,
        guild_id: int,
        role_ids: Iterable[int],
        *,
        server_id: int | None = None,
        is_owner: bool = False,
        is_administrator: bool = False,
    ) -> Level:
        return resolve_level(
            role_ids,
            await self.grants(guild_id),
            server_id=server_id,
            is_owner=is_owner,
            is_administrator=is_administrator,
        )

    async def grant(
        self, actor: Actor, guild_id: int, role_id: int, level: Level, server_id: int | None
    ) -> None:
        await self._grants.set(guild_id, role_id, level, server_id, actor.id or 0)
        self._cache.pop(guild_id, None)
        await self._audit.record(
            actor,
            "perms.grant",
            server_id=server_id,
            arguments={"role_id": role_id, "level": level.label},
        )

    async def revoke(
        self, actor: Actor, guild_id: int, role_id: int, server_id: int | None
    ) -> bool:
        removed = await self._grants.delete(guild_id, role_id, server_id)
        self._cache.pop(guild_id, None)
        await self._audit.record(
            actor,
            "perms.revoke",
            server_id=server_id,
            arguments={"role_id": role_id},
            result="removed" if removed else "no such grant",
            ok=removed,
        )
        return removed
