"""Everything the bot runs below Discord, assembled in one place a test or CLI can reuse."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.config import Settings
from core.events import EventBus
from core.games.base import GameProfile, ProfileRegistry
from core.secrets import SecretBox, load_or_create_key
from core.supervisor.supervisor import Supervisor
from data.db import Database

__all__ = ["DATABASE_FILE", "Runtime"]

_log = logging.getLogger(__name__)

DATABASE_FILE = "languard.db"


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: EventBus
    secret_box: SecretBox
    supervisor: Supervisor

    @classmethod
    async def open(cls, settings: Settings, profiles: list[GameProfile] | None = None) -> Runtime:
        """Open the database, then start the supervisor (which re-adopts live servers)."""
        data_dir = settings.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        configured = settings.secret_key.get_secret_value() if settings.secret_key else None
        box = SecretBox(load_or_create_key(data_dir, configured))
        db = await Database.open(data_dir / DATABASE_FILE)
        bus = EventBus()
        supervisor = Supervisor(
            db=db,
            bus=bus,
            data_dir=data_dir,
            profiles=ProfileRegistry(profiles or []),
            secret_box=box,
        )
        try:
            await supervisor.start()
        except BaseException:
            await db.close()
            raise
        _log.info("runtime up: data in %s, %d servers", data_dir, len(supervisor.all()))
        return cls(settings, db, bus, box, supervisor)

    async def close(self) -> None:
        """Let go of everything; game servers keep running."""
        await self.supervisor.close()
        await self.db.close()
