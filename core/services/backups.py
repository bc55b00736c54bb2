"""Backups as users see them: take one, list, restore, delete, and each server's settings.

What a front end calls; it only renders the results. Taking and restoring are long jobs:
they go through the host's job queue (one at a time) and return a `Job` at once, whose
updates tell the caller its place in the queue, then the job's step and progress, and
whose `result()` is a `BackupResult` or `RestoreResult`. Every action is audited. Inputs
are checked here, before a job is queued, so a mistake is refused at once.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.backups import restore as restoring
from core.backups.archive import available_compression
from core.backups.layout import NAME_PATTERN, RESTORE_DIR, BackupKind
from core.backups.manifest import MAX_NOTE_CHARS
from core.backups.retention import DAY, MAX_AGE, MAX_KEEP, MIN_AGE, RetentionPolicy
from core.backups.runs import BackupResult, BackupRuns, RestoreResult, TakeOptions
from core.backups.selection import check_excludes
from core.backups.store import BackupInfo, BackupStore
from core.errors import InvalidInput, NotFound
from core.jobs import Job, JobContext, JobQueue, UpdateListener
from core.paging import Page, window
from core.services.audit import Actor, AuditLog
from core.services.servers import ServerService
from core.supervisor.server import ManagedServer
from core.supervisor.supervisor import Supervisor
from data.repositories.backups import BackupPolicyRepository, StoredBackupPolicy

__all__ = [
    "BackupInfo",
    "BackupKind",
    "BackupPolicyView",
    "BackupResult",
    "BackupService",
    "RestoreResult",
]

_log = logging.getLogger(__name__)

MAX_CHOICES = 25
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


@dataclass(frozen=True, slots=True)
class BackupPolicyView:
    keep: int
    max_age_days: float
    excludes: tuple[str, ...]
    keep_is_default: bool
    age_is_default: bool


def _clean_note(note: str) -> str:
    text = " ".join(_CONTROL.sub(" ", note or "").split())
    if len(text) > MAX_NOTE_CHARS:
        raise InvalidInput("a backup note is at most {most} characters", most=MAX_NOTE_CHARS)
    return text


def _backup_name(name: str) -> str:
    wanted = (name or "").strip()
    if not NAME_PATTERN.fullmatch(wanted):
        raise InvalidInput("a backup is named by its time, like `20240131T120000Z`")
    return wanted


class BackupService:
    """What the `/backup` commands (and scheduled backups) call."""

    def __init__(
        self,
        supervisor: Supervisor,
        servers: ServerService,
        audit: AuditLog,
        jobs: JobQueue,
        policies: BackupPolicyRepository,
        *,
        root: Path,
        mirror: Path | None = None,
        defaults: RetentionPolicy | None = None,
        database: Path | None = None,
        extra_files: Sequence[Path] = (),
        compression: str | None = None,
        flush_timeout: float = 120.0,
    ) -> None:
        self._sup = supervisor
        self._servers = servers
        self._audit = audit
        self._jobs = jobs
        self._policies = policies
        self.defaults = defaults or RetentionPolicy()
        self.store = BackupStore(root, mirror)
        self._runs = BackupRuns(
            self.store,
            folder_for=supervisor.folder_for,
            bus=supervisor.bus,
            database=database,
            extra_files=extra_files,
            database_policy=self.defaults,
            compression=compression or available_compression(),
            flush_timeout=flush_timeout,
            supervised=self._supervised,
        )

    def _supervised(self, server: ManagedServer) -> bool:
        try:
            return self._sup.get(server.id) is server
        except NotFound:
            return False

    def _server(self, name: str) -> ManagedServer:
        return self._sup.get(self._servers.ref(name).id)

    def _copyable(self, name: str) -> ManagedServer:
        """The server, when its files are on this machine: a backup of a server on another
        host would copy the bot's side only and miss the game's own files."""
        managed = self._server(name)
        if not managed.runtime.files_here:
            raise InvalidInput(
                "`{name}` runs on host {host}, whose files live in a volume there: back up "
                "that volume on the host (backups here cover servers on this machine)",
                name=managed.name,
                host=managed.runtime.name,
            )
        return managed

    async def recover(self) -> builtins.list[str]:
        """Finish or drop the restores a crash interrupted (before any server starts)."""
        root = self._sup.data_dir / "servers"
        done: builtins.list[str] = []
        folders = await asyncio.to_thread(
            lambda: [p for p in root.glob(f"*/{RESTORE_DIR}")] if root.is_dir() else []
        )
        for staging in folders:
            outcome = await asyncio.to_thread(restoring.recover, staging.parent)
            if outcome:
                _log.warning("server folder %s: %s", staging.parent.name, outcome)
                done.append(f"{staging.parent.name}: {outcome}")
        return done

    # -- jobs ------------------------------------------------------------------------------

    def backup(
        self,
        actor: Actor,
        server: str,
        *,
        note: str = "",
        cold: bool = False,
        kind: BackupKind = BackupKind.MANUAL,
        on_update: UpdateListener | None = None,
    ) -> Job[BackupResult]:
        """Queue a backup of `server`; a cold one stops it for the copy and starts it again."""
        managed = self._copyable(server)
        text = _clean_note(note)

        async def run(ctx: JobContext) -> BackupResult:
            arguments = {"server": managed.name, "note": text, "cold": cold, "kind": kind.value}
            async with self._audit.scope(actor, "backup.create", arguments, managed.id) as out:
                if not self._supervised(managed):
                    raise NotFound("`{name}` was just deleted", name=managed.name)
                stored = await self._policies.get(managed.id)
                options = TakeOptions(kind, text, cold, stored.excludes, self._retention(stored))
                result = await self._runs.backup(ctx, managed, options)
                out.result = f"backup {result.backup.name} ({result.backup.size} bytes)"
            return result

        return self._jobs.submit(
            f"backup {managed.name}", run, on_update=on_update, key=f"backup:{managed.name}"
        )

    def restore(
        self, actor: Actor, server: str, backup: str, *, on_update: UpdateListener | None = None
    ) -> Job[RestoreResult]:
        """Queue a restore; refused at once while the server runs or the name is unknown."""
        managed, name = self._restorable(server, backup)

        async def run(ctx: JobContext) -> RestoreResult:
            arguments = {"server": managed.name, "backup": name}
            async with self._audit.scope(actor, "backup.restore", arguments, managed.id) as out:
                stored = await self._policies.get(managed.id)
                result = await self._runs.restore(ctx, managed, name, stored.excludes)
                out.result = f"restored {name}; the state before is backup {result.saved_as}"
            return result

        return self._jobs.submit(
            f"restore {managed.name}", run, on_update=on_update, key=f"restore:{managed.name}"
        )

    def check_restore(self, server: str, backup: str) -> None:
        """Refuse now what `restore` would refuse at once (a running server, an unknown
        backup), so a front end asks for confirmation only when the restore can go ahead."""
        self._restorable(server, backup)

    def _restorable(self, server: str, backup: str) -> tuple[ManagedServer, str]:
        managed = self._copyable(server)
        name = _backup_name(backup)
        self._runs.require_stopped(managed)
        if not (self.store.folder(managed.name) / name).is_dir():
            raise NotFound(
                "there is no backup named `{name}` for `{server}`", name=name, server=managed.name
            )
        return managed, name

    # -- listing and deleting --------------------------------------------------------------

    async def list(self, server: str, offset: int = 0, limit: int = 10) -> Page[BackupInfo]:
        """A page of `server`'s backups, newest first."""
        managed = self._server(server)
        offset, limit = window(offset, limit)
        every = await asyncio.to_thread(self.store.list, managed.name)
        return Page(len(every), offset, every[offset : offset + limit])

    async def names(self, server: str, prefix: str = "") -> builtins.list[str]:
        """Backup names for autocomplete ([] while no known server is chosen)."""
        try:
            managed = self._server(server)
        except NotFound:
            return []
        wanted = (prefix or "").strip()[:32]
        every = await asyncio.to_thread(self.store.list, managed.name)
        return [b.name for b in every if b.name.startswith(wanted)][:MAX_CHOICES]

    async def delete(self, actor: Actor, server: str, backup: str) -> BackupInfo:
        """Delete one backup (from the second destination too)."""
        managed = self._server(server)
        name = _backup_name(backup)
        arguments = {"server": managed.name, "backup": name}
        async with self._audit.scope(actor, "backup.delete", arguments, managed.id) as outcome:
            if self._jobs.busy(f"restore:{managed.name}"):
                raise InvalidInput(
                    "a restore of `{server}` is waiting or running; delete backups once it is done",
                    server=managed.name,
                )
            every = await asyncio.to_thread(self.store.list, managed.name)
            found = next((b for b in every if b.name == name), None)
            if found is None:
                raise NotFound(
                    "there is no backup named `{name}` for `{server}`",
                    name=name,
                    server=managed.name,
                )
            await asyncio.to_thread(self.store.delete, managed.name, name)
            outcome.result = f"deleted {name}"
        return found

    # -- settings --------------------------------------------------------------------------

    def _retention(self, stored: StoredBackupPolicy) -> RetentionPolicy:
        return RetentionPolicy(
            stored.keep if stored.keep is not None else self.defaults.keep,
            stored.max_age if stored.max_age is not None else self.defaults.max_age,
        )

    def _view(self, stored: StoredBackupPolicy) -> BackupPolicyView:
        policy = self._retention(stored)
        return BackupPolicyView(
            policy.keep,
            policy.max_age / DAY,
            stored.excludes,
            stored.keep is None,
            stored.max_age is None,
        )

    async def get_policy(self, server: str) -> BackupPolicyView:
        managed = self._server(server)
        return self._view(await self._policies.get(managed.id))

    async def set_policy(
        self,
        actor: Actor,
        server: str,
        *,
        keep: int | None = None,
        max_age_days: float | None = None,
        excludes: Sequence[str] | None = None,
        reset: bool = False,
    ) -> BackupPolicyView:
        """Change what is given (None leaves a value as it is; `reset` returns to defaults)."""
        managed = self._server(server)
        if keep is not None and not 1 <= keep <= MAX_KEEP:
            raise InvalidInput("keep is a whole number from 1 to {most}", most=MAX_KEEP)
        max_age = None if max_age_days is None else max_age_days * DAY
        if max_age is not None and not MIN_AGE <= max_age <= MAX_AGE:
            raise InvalidInput("the age limit is from 1 hour to 3650 days")
        globs = None if excludes is None else check_excludes(excludes)
        arguments = {
            "server": managed.name,
            "keep": keep,
            "max_age_days": max_age_days,
            "excludes": None if globs is None else list(globs),
            "reset": reset,
        }
        async with self._audit.scope(actor, "backup.settings", arguments, managed.id):
            current = StoredBackupPolicy() if reset else await self._policies.get(managed.id)
            updated = StoredBackupPolicy(
                keep if keep is not None else current.keep,
                max_age if max_age is not None else current.max_age,
                globs if globs is not None else current.excludes,
            )
            await self._policies.set(managed.id, updated)
        return self._view(updated)
