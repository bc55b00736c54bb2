"""Per-server backup settings: how many to keep, how old, and what to leave out.

The backups themselves live on disk (a folder with its manifest is the truth), so only
the settings are stored here. A missing row or a NULL value means the operator's default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from data.db import Database

__all__ = ["BackupPolicyRepository", "StoredBackupPolicy"]


@dataclass(frozen=True, slots=True)
class StoredBackupPolicy:
    keep: int | None = None
    max_age: float | None = None
    excludes: tuple[str, ...] = ()


def _globs(raw: Any) -> tuple[str, ...]:
    try:
        value = json.loads(raw or "[]")
    except (TypeError, ValueError):
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


class BackupPolicyRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, server_id: int) -> StoredBackupPolicy:
        row = await self._db.fetchone(
            "SELECT keep, max_age, excludes FROM backup_policies WHERE server_id = ?",
            (server_id,),
        )
        if row is None:
            return StoredBackupPolicy()
        return StoredBackupPolicy(
            None if row["keep"] is None else int(row["keep"]),
            None if row["max_age"] is None else float(row["max_age"]),
            _globs(row["excludes"]),
        )

    async def set(self, server_id: int, policy: StoredBackupPolicy) -> None:
        await self._db.execute(
            "INSERT INTO backup_policies(server_id, keep, max_age, excludes) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(server_id) DO UPDATE SET keep = excluded.keep,"
            " max_age = excluded.max_age, excludes = excluded.excludes",
            (server_id, policy.keep, policy.max_age, json.dumps(list(policy.excludes))),
        )
