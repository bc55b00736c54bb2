"""Small facts the front end keeps between starts (which command tree each guild has).

Why a service: the bot reads and writes these, and the front end talks to services only;
the key names live here so no caller builds them by hand.
"""

from __future__ import annotations

from data.db import Database
from data.repositories.grants import BotStateRepository

__all__ = ["BotStateService"]


class BotStateService:
    """The fingerprints of the command trees last pushed to Discord, per guild and globally."""

    def __init__(self, repository: BotStateRepository) -> None:
        self._repo = repository

    @classmethod
    def of(cls, db: Database) -> BotStateService:
        return cls(BotStateRepository(db))

    @staticmethod
    def _key(application_id: int | None, guild_id: int | None) -> str:
        scope = "global" if guild_id is None else f"guild:{guild_id}"
        return f"command_tree:{scope}:{application_id}"

    async def tree_fingerprint(
        self, application_id: int | None, guild_id: int | None
    ) -> str | None:
        """The fingerprint of the tree last pushed (`guild_id` None: the global commands)."""
        return await self._repo.get(self._key(application_id, guild_id))

    async def remember_tree(
        self, application_id: int | None, guild_id: int | None, fingerprint: str
    ) -> None:
        await self._repo.set(self._key(application_id, guild_id), fingerprint)
