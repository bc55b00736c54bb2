"""The two long jobs, as the job queue runs them: take a backup, restore one.

This is where the game meets the files: a running Minecraft server has its saving paused
around the copy, a cold backup stops the server and starts it again (however the copy
ended), a restore refuses a server that runs and keeps it from starting until the files
are swapped and checked. Everything on disk happens on worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.backups import restore as restoring
from core.backups.archive import FileKeptChanging, verify_archive
from core.backups.layout import DATABASE_FOLDER, RESTORE_DIR, BackupKind, Step, stamp_of
from core.backups.manifest import Manifest, ManifestError
from core.backups.quiesce import saving_paused
from core.backups.retention import RetentionPolicy
from core.backups.store import BackupInfo, BackupStore, is_disk_full, prune_database_snapshots
from core.backups.take import Staged, TakeRequest, copy_files, publish
from core.errors import InvalidInput, LanguardError, NotFound, NotRunning, StartRefused
from core.events import EventBus
from core.jobs import JobCancelled, JobContext
from core.supervisor.server import ManagedServer
from core.supervisor.states import ACTIVE_STATES, ServerState
from data.backup import BackupError, create_backup

__all__ = ["BackupResult", "BackupRuns", "RestoreResult", "TakeOptions"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TakeOptions:
    kind: BackupKind = BackupKind.MANUAL
    note: str = ""
    cold: bool = False
    excludes: tuple[str, ...] = ()
    retention: RetentionPolicy | None = None
    """None: no pruning in this run (a restore's own backup)."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    backup: BackupInfo
    pruned: tuple[str, ...]
    mirror: str
    """`off`, `copied`, `unavailable` (not mounted), `full` or `failed`."""
    paused_saves: bool
    """The game's saving was paused around the copy (a running Minecraft server)."""
    restarted: bool | None
    """A cold backup stopped the server: whether it runs again (None: it was not running)."""


@dataclass(frozen=True, slots=True)
class RestoreResult:
    server: str
    backup: str
    saved_as: str
    """The backup of the state the restore replaced."""
    files: int
    removed: int


def _running(server: ManagedServer) -> bool:
    return server.state in ACTIVE_STATES or server.handle is not None


def _step(ctx: JobContext, step: Step, done: int = 0, total: int = 0) -> None:
    """Progress from the event loop, where a cancellation arrives as CancelledError."""
    with contextlib.suppress(JobCancelled):
        ctx.progress(step.value, done, total)


def explain(exc: BaseException) -> LanguardError | None:
    """A user-safe error for what the disk or the files said, or None."""
    if isinstance(exc, FileKeptChanging):
        return LanguardError(
            "`{path}` kept changing while it was read; try again, or take a cold backup",
            path=exc.path,
        )
    if is_disk_full(exc) or (isinstance(exc, BackupError) and "disk is full" in str(exc)):
        return LanguardError(
            "the backup disk is full; free some space and try again (nothing was kept)"
        )
    if isinstance(exc, BackupError):
        return LanguardError("the database could not be backed up: {reason}", reason=str(exc))
    if isinstance(exc, OSError):
        return LanguardError(
            "the backup could not be written: {reason}",
            reason=exc.strerror or type(exc).__name__,
        )
    return None


class BackupRuns:
    def __init__(
        self,
        store: BackupStore,
        *,
        folder_for: Callable[[str], Path],
        bus: EventBus,
        database: Path | None,
        extra_files: Sequence[Path],
        database_policy: RetentionPolicy,
        compression: str,
        flush_timeout: float,
        supervised: Callable[[ManagedServer], bool],
    ) -> None:
        self.store = store
        self._folder_for = folder_for
        self._bus = bus
        self._database = database
        self._extra_files = tuple(extra_files)
        self._database_policy = database_policy
        self._compression = compression
        self._flush_timeout = flush_timeout
        self._supervised = supervised

    # -- backup ----------------------------------------------------------------------------

    async def backup(
        self, ctx: JobContext, server: ManagedServer, options: TakeOptions
    ) -> BackupResult:
        try:
            return await self._backup(ctx, server, options)
        except (OSError, BackupError, FileKeptChanging) as exc:
            error = explain(exc)
            if error is None:
                raise
            raise error from None

    async def _backup(
        self, ctx: JobContext, server: ManagedServer, options: TakeOptions
    ) -> BackupResult:
        await ctx.in_thread(self.store.clean_leftovers, server.name)
        database = await self._snapshot_database(ctx)
        created = time.time()
        stamp = stamp_of()
        request = TakeRequest(
            server=server.name,
            game=server.game,
            folder=self._folder_for(server.name),
            stamp=stamp,
            created=created,
            kind=options.kind,
            note=options.note,
            cold=options.cold,
            excludes=options.excludes,
            database=database,
            compression=self._compression,
        )
        staged, paused, restarted = await self._copy(ctx, server, request)
        name = await ctx.in_thread(publish, self.store, staged, stamp)
        mirror = await self._mirror(ctx, server.name, name)
        pruned: list[str] = []
        if options.retention is not None:
            _step(ctx, Step.PRUNING)
            pruned = await ctx.in_thread(
                self.store.prune, server.name, options.retention, time.time(), frozenset({name})
            )
        listed = await ctx.in_thread(self.store.list, server.name)
        info = next(b for b in listed if b.name == name)
        return BackupResult(info, tuple(pruned), mirror, paused, restarted)

    async def _snapshot_database(self, ctx: JobContext) -> str | None:
        if self._database is None:
            return None
        _step(ctx, Step.DATABASE)
        root = self.store.root / DATABASE_FOLDER
        folder = await ctx.in_thread(
            create_backup, self._database, root, extra_files=self._extra_files
        )
        await ctx.in_thread(prune_database_snapshots, root, self._database_policy, time.time())
        return f"{DATABASE_FOLDER}/{folder.name}"

    async def _copy(
        self, ctx: JobContext, server: ManagedServer, request: TakeRequest
    ) -> tuple[Staged, bool, bool | None]:
        def progress(done: int, total: int) -> None:
            ctx.progress(Step.COPYING.value, done, total)

        running = _running(server)
        if running and request.cold:
            _step(ctx, Step.STOPPING)
            with contextlib.suppress(NotRunning):
                await server.stop(reason="stopped for a cold backup")
            try:
                staged = await ctx.in_thread(copy_files, self.store, request, progress)
            finally:
                restarted = await self._start_again(ctx, server)
            return staged, False, restarted
        if running and server.game == "minecraft":
            link = server.link
            if link is None or server.state is not ServerState.RUNNING:
                raise LanguardError(
                    "`{server}` cannot be asked to pause saving right now; try again in a "
                    "moment, or take a cold backup",
                    server=server.name,
                )
            _step(ctx, Step.PAUSING)
            async with saving_paused(link, self._bus, server.id, server.name, self._flush_timeout):
                staged = await ctx.in_thread(copy_files, self.store, request, progress)
                _step(ctx, Step.RESUMING)
            return staged, True, None
        staged = await ctx.in_thread(copy_files, self.store, request, progress)
        return staged, False, None

    async def _start_again(self, ctx: JobContext, server: ManagedServer) -> bool:
        if not self._supervised(server) or _running(server):
            return _running(server)
        _step(ctx, Step.STARTING)
        try:
            state = await server.start(reason="started again after a cold backup")
        except StartRefused as exc:
            _log.warning("%s did not start again after a cold backup: %s", server.name, exc)
            return False
        return state is ServerState.RUNNING

    async def _mirror(self, ctx: JobContext, server: str, name: str) -> str:
        if self.store.mirror is None:
            return "off"
        _step(ctx, Step.MIRRORING)
        try:
            await ctx.in_thread(self.store.copy_to_mirror, server, name)
        except FileNotFoundError:
            _log.warning("backup %s of %s: the second destination is not mounted", name, server)
            return "unavailable"
        except OSError as exc:
            _log.warning(
                "backup %s of %s was not copied to the second destination: %s", name, server, exc
            )
            return "full" if is_disk_full(exc) else "failed"
        return "copied"

    # -- restore ---------------------------------------------------------------------------

    def load(self, server: str, name: str) -> tuple[Path, Manifest]:
        """A listed backup and its manifest, or NotFound / LanguardError (damaged)."""
        try:
            return self.store.load(server, name)
        except FileNotFoundError:
            raise NotFound(
                "there is no backup named `{name}` for `{server}`", name=name, server=server
            ) from None
        except (OSError, ManifestError):
            raise LanguardError(
                "the backup `{name}` is damaged: its manifest cannot be read", name=name
            ) from None

    def require_stopped(self, server: ManagedServer) -> None:
        if not self._supervised(server):
            raise NotFound("`{name}` was just deleted", name=server.name)
        if _running(server):
            raise InvalidInput(
                "`{server}` is {state}; stop it before restoring a backup",
                server=server.name,
                state=server.state,
            )

    async def restore(
        self, ctx: JobContext, server: ManagedServer, name: str, excludes: tuple[str, ...]
    ) -> RestoreResult:
        self.require_stopped(server)
        backup, manifest = await ctx.in_thread(self.load, server.name, name)
        if manifest.game != server.game:
            raise InvalidInput(
                "the backup `{name}` is of a {other} server, not {game}",
                name=name,
                other=manifest.game,
                game=server.game,
            )
        _step(ctx, Step.CHECKING)
        try:
            await ctx.in_thread(
                verify_archive,
                backup,
                manifest,
                lambda d, t: ctx.progress(Step.CHECKING.value, d, t),
            )
        except ManifestError:
            raise LanguardError(
                "the backup `{name}` is damaged: its archive does not match its manifest",
                name=name,
            ) from None
        folder = self._folder_for(server.name)
        await ctx.in_thread(restoring.recover, folder)
        self.require_stopped(server)  # no await between this check and the marker
        folder.mkdir(parents=True, exist_ok=True)
        (folder / RESTORE_DIR).mkdir(mode=0o700)
        try:
            return await self._swap_in(ctx, server, folder, backup, manifest, name, excludes)
        except (OSError, BackupError, FileKeptChanging) as exc:
            error = explain(exc)
            if error is None:
                raise
            raise error from None

    async def _swap_in(
        self,
        ctx: JobContext,
        server: ManagedServer,
        folder: Path,
        backup: Path,
        manifest: Manifest,
        name: str,
        excludes: tuple[str, ...],
    ) -> RestoreResult:
        swapping = False
        try:
            _step(ctx, Step.EXTRACTING)
            try:
                await ctx.in_thread(
                    restoring.stage,
                    folder,
                    backup,
                    manifest,
                    lambda d, t: ctx.progress(Step.EXTRACTING.value, d, t),
                )
            except ManifestError as exc:
                raise LanguardError(
                    "the backup `{name}` is refused: {problem}", name=name, problem=str(exc)
                ) from None
            _step(ctx, Step.SAVING_CURRENT)
            options = TakeOptions(
                kind=BackupKind.PRE_RESTORE, note=f"before restoring {name}", excludes=excludes
            )
            saved = await self._backup(ctx, server, options)
            self.require_stopped(server)
            plan = await ctx.in_thread(restoring.plan, folder, manifest, name)
            _step(ctx, Step.REPLACING)
            swapping = True
            # a cancel waits for the whole swap: its progress never raises in the thread
            await ctx.in_thread(restoring.apply, folder, plan, lambda d, t: None)
            _step(ctx, Step.VERIFYING)
            bad = await ctx.in_thread(
                restoring.verify_restored,
                folder,
                manifest,
                lambda d, t: ctx.progress(Step.VERIFYING.value, d, t),
            )
            if bad is not None:
                raise LanguardError(
                    "the restored `{path}` differs from the backup; the state before the "
                    "restore is kept as backup `{saved}`",
                    path=bad,
                    saved=saved.backup.name,
                )
        except BaseException:
            cleanup = restoring.recover if swapping else restoring.finish
            try:
                await asyncio.to_thread(cleanup, folder)
            except OSError:
                _log.exception("cleaning up the restore of %s failed", server.name)
            raise
        await asyncio.to_thread(restoring.finish, folder)
        return RestoreResult(
            server.name, name, saved.backup.name, len(manifest.files), len(plan.deletes)
        )
