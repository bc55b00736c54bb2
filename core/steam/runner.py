"""SteamCMD jobs: download Workshop items or update the server, retrying until done.

Each public method is one job: a coroutine that takes a progress callback, so a job queue
(core/jobs.py) can run it, cancel it and show its progress. Jobs of one `SteamCmd` never
overlap (a Steam account cannot be logged in twice at once, reference §1.2).

Retries are what every tool does (§1.7): SteamCMD gives a Workshop item up about five
minutes after it starts and keeps the partial data, so running it again resumes; a 10 GB
mod needs several runs. Partial downloads are never deleted between attempts. What retrying
cannot fix stops the job at once with a message that says what to change: a refused login,
a Steam Guard question, `Missing decryption key` (the login does not own Arma 3, §2),
`No subscription`, a full disk. A record that says "installed" for a folder that is gone
is repaired first (§1.8).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.backoff import Backoff
from core.config import Settings
from core.fsutil import private_dir
from core.steam import acf, commands
from core.steam import output as out
from core.steam.errors import SteamCmdError, SteamCmdUnavailable
from core.steam.failures import app_failure, raise_exhausted, raise_fatal
from core.steam.model import (
    AppUpdated,
    DownloadedItem,
    RetryPolicy,
    RunReport,
    SteamAccount,
    session_reason,
)
from core.steam.progress import ProgressCallback, ProgressReporter
from core.steam.session import SessionResult, run_session
from core.steam.tracking import (
    AppProgress,
    WorkshopProgress,
    has_files,
    log_marks,
    partial_bytes,
    recent_log_text,
    workshop_logs,
)

__all__ = ["AppUpdated", "DownloadedItem", "RetryPolicy", "SteamAccount", "SteamCmd"]

_log = logging.getLogger(__name__)

_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "USER", "TMPDIR")
"""The only parts of the bot's environment SteamCMD sees: never the token or secret key."""


class SteamCmd:
    """Runs SteamCMD jobs for one Steam account, one at a time."""

    def __init__(
        self,
        executable: Path,
        account: SteamAccount | None = None,
        *,
        work_dir: Path,
        policy: RetryPolicy | None = None,
        steam_root: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        poll_interval: float = 2.0,
        max_line: int = 4096,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.executable = executable
        self.account = account or SteamAccount()
        self.work_dir = work_dir
        self.policy = policy or RetryPolicy()
        self.steam_root = steam_root
        self._extra_env = dict(extra_env or {})
        self._poll_interval = poll_interval
        self._max_line = max_line
        self._sleep = sleep
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> SteamCmd:
        """The operator's SteamCMD and account; runscripts go in `<data dir>/steam`."""
        if settings.steamcmd is None:
            raise SteamCmdUnavailable(
                "SteamCMD is not set up: set LANGUARD_STEAMCMD to the path of steamcmd.sh"
            )
        account = SteamAccount(settings.steam_user, settings.steam_password)
        return cls(settings.steamcmd, account, work_dir=settings.data_dir / "steam", **options)

    # -- jobs ----------------------------------------------------------------------------

    async def download_items(
        self,
        install_dir: Path,
        item_ids: Sequence[int],
        progress: ProgressCallback | None = None,
        *,
        expected_sizes: Mapping[int, int] | None = None,
        validate: bool = True,
    ) -> list[DownloadedItem]:
        """Download Workshop items of Arma 3 into `install_dir`; sizes (from the Workshop
        API) only make the progress finer."""
        ids = list(dict.fromkeys(int(i) for i in item_ids))
        actions = {i: commands.workshop_download_item(i, validate=validate) for i in ids}
        if not ids:
            return []
        reporter = ProgressReporter(progress, items_total=len(ids))
        tracker = WorkshopProgress(ids, expected_sizes or {})
        async with self._lock:
            try:
                return await self._download(install_dir, ids, actions, tracker, reporter)
            finally:
                await reporter.aclose()

    async def update_app(
        self,
        install_dir: Path,
        progress: ProgressCallback | None = None,
        *,
        app_id: int = commands.SERVER_APP_ID,
        beta: str | None = None,
        validate: bool = True,
    ) -> AppUpdated:
        """Install or update a Steam app (the Arma 3 server by default) into `install_dir`."""
        action = commands.app_update(app_id, beta=beta, validate=validate)
        reporter = ProgressReporter(progress)
        async with self._lock:
            try:
                return await self._update(install_dir, app_id, action, reporter)
            finally:
                await reporter.aclose()

    # -- Workshop ------------------------------------------------------------------------

    async def _download(
        self,
        install_dir: Path,
        ids: list[int],
        actions: dict[int, commands.Command],
        tracker: WorkshopProgress,
        reporter: ProgressReporter,
    ) -> list[DownloadedItem]:
        stale = await asyncio.to_thread(acf.stale_items, install_dir, ids)
        if stale:
            await asyncio.to_thread(acf.forget_items, install_dir, stale)
        done: dict[int, DownloadedItem] = {}
        reasons: dict[int, str] = {}
        backoff = Backoff(self.policy.backoff_base, self.policy.backoff_cap)
        hangs = 0
        for attempt in range(1, self.policy.max_attempts + 1):
            pending = [i for i in ids if i not in done]
            before = await asyncio.to_thread(partial_bytes, install_dir, pending)
            reporter.update(stage="downloading", attempt=attempt, retry_in=None)
            seen = RunReport()

            def on_event(event: out.SteamEvent, seen: RunReport = seen) -> None:
                seen.record(event)
                if isinstance(event, out.ItemStarted):
                    reporter.update(item_id=event.item_id)
                elif isinstance(event, out.ItemDownloaded):
                    tracker.finished(event.item_id)
                    reporter.update(items_done=tracker.items_done, fraction=tracker.fraction())

            poller = asyncio.create_task(self._poll(install_dir, seen, tracker, reporter))
            try:
                result, log_text = await self._run(
                    install_dir, [actions[i] for i in pending], on_event
                )
            finally:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            hangs += result.timed_out
            raise_fatal(seen, log_text, pending, self.account.user)
            for item_id in pending:
                folder = acf.content_dir(install_dir, item_id)
                got = seen.downloaded.get(item_id)
                if got is not None and await asyncio.to_thread(has_files, folder):
                    done[item_id] = DownloadedItem(item_id, folder, got.size)
                    tracker.finished(item_id)
                    continue
                tracker.unfinished(item_id)
                if got is not None:
                    reasons[item_id] = "the Workshop record said installed but the folder is gone"
                else:
                    reasons[item_id] = seen.failed.get(item_id) or session_reason(seen, result)
                if got is not None or "not found" in reasons[item_id].lower():
                    await asyncio.to_thread(acf.forget_items, install_dir, [item_id])
            reporter.update(items_done=len(done), item_id=None, fraction=tracker.fraction())
            if len(done) == len(ids):
                break
            _log.info("SteamCMD's last lines (attempt %d):\n%s", attempt, "\n".join(result.tail))
            if attempt == self.policy.max_attempts:
                break
            after = await asyncio.to_thread(partial_bytes, install_dir, pending)
            if len(done) > len(ids) - len(pending) or after > before:
                backoff.reset()  # it moved: retry soon
            await self._pause(backoff, reporter, [i for i in ids if i not in done], reasons)
        missing = [i for i in ids if i not in done]
        if missing:
            raise_exhausted(missing, reasons, len(ids), hangs)
        reporter.update(stage="done", fraction=1.0, items_done=len(ids))
        return [done[i] for i in ids]

    async def _poll(
        self,
        install_dir: Path,
        seen: RunReport,
        tracker: WorkshopProgress,
        reporter: ProgressReporter,
    ) -> None:
        """No per-item progress is printed (§1.4): measure the partial data on disk instead."""
        while True:
            await asyncio.sleep(self._poll_interval)
            item_id = seen.current_item
            if item_id is not None and tracker.knows_size(item_id):
                size = await asyncio.to_thread(partial_bytes, install_dir, [item_id])
                tracker.partial(item_id, size)
                reporter.update(fraction=tracker.fraction())

    async def _pause(
        self,
        backoff: Backoff,
        reporter: ProgressReporter,
        pending: list[int],
        reasons: Mapping[int, str],
    ) -> None:
        delay = backoff.next()
        _log.info(
            "SteamCMD: %d item(s) left (%s); retrying in %.1f s",
            len(pending),
            "; ".join(f"{i}: {reasons.get(i, '?')}" for i in pending[:5]),
            delay,
        )
        reporter.update(stage="retrying", retry_in=round(delay, 1), item_id=None)
        await self._sleep(delay)

    # -- the server ----------------------------------------------------------------------

    async def _update(
        self, install_dir: Path, app_id: int, action: commands.Command, reporter: ProgressReporter
    ) -> AppUpdated:
        backoff = Backoff(self.policy.backoff_base, self.policy.backoff_cap)
        tracker = AppProgress()
        reason = "no result from SteamCMD"
        for attempt in range(1, self.policy.max_attempts + 1):
            reporter.update(stage="downloading", attempt=attempt, retry_in=None)
            seen = RunReport()

            def on_event(event: out.SteamEvent, seen: RunReport = seen) -> None:
                seen.record(event)
                if isinstance(event, out.Progress):
                    stage, fraction = tracker.feed(event)
                    reporter.update(stage=stage, fraction=fraction)

            result, log_text = await self._run(install_dir, [action], on_event)
            raise_fatal(seen, log_text, [], self.account.user)
            if seen.app_ok is not None:
                reporter.update(stage="done", fraction=1.0)
                return AppUpdated(app_id, seen.app_ok.up_to_date)
            _log.info("SteamCMD's last lines (attempt %d):\n%s", attempt, "\n".join(result.tail))
            reason = app_failure(seen, result, app_id, self.account.user)
            if attempt < self.policy.max_attempts:
                await self._pause(backoff, reporter, [], {})
        raise SteamCmdError(
            "SteamCMD could not install app {app_id} after {attempts} attempts ({reason})",
            app_id=app_id,
            attempts=self.policy.max_attempts,
            reason=reason,
        )

    # -- one run -------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        env = {key: os.environ[key] for key in _PASSED_ENV if key in os.environ}
        env.update(self._extra_env)
        return env

    async def _run(
        self,
        install_dir: Path,
        actions: list[commands.Command],
        on_event: Callable[[out.SteamEvent], None],
    ) -> tuple[SessionResult, str]:
        """One SteamCMD run, and what it added to Steam's workshop log meanwhile."""
        if not (self.executable.is_file() and os.access(self.executable, os.X_OK)):
            raise SteamCmdUnavailable(
                "SteamCMD was not found or cannot be run: set LANGUARD_STEAMCMD to the path "
                "of steamcmd.sh"
            )
        account = self.account
        login = commands.login(
            account.user,
            account.password.get_secret_value() if account.password else None,
            account.guard_code.get_secret_value() if account.guard_code else None,
        )
        plan = commands.session(install_dir, login, actions)
        await asyncio.to_thread(install_dir.mkdir, parents=True, exist_ok=True)
        script = await asyncio.to_thread(self._write_script, commands.secret_script(plan))
        marks = await asyncio.to_thread(log_marks, workshop_logs(self.executable, self.steam_root))

        def handle(event: out.SteamEvent) -> None:
            if script is not None and isinstance(event, out.LoginOk | out.LoginFailed):
                script.unlink(missing_ok=True)  # read by now: keep the password on disk briefly
            on_event(event)

        try:
            result = await run_session(
                commands.build_argv(self.executable, plan, script=script),
                cwd=self.executable.parent,
                env=self._environment(),
                on_event=handle,
                secrets=account.secrets(),
                timeout=self.policy.session_timeout,
                stall_timeout=self.policy.stall_timeout,
                kill_grace=self.policy.kill_grace,
                max_line=self._max_line,
            )
        finally:
            if script is not None:
                script.unlink(missing_ok=True)
        return result, await asyncio.to_thread(recent_log_text, marks)

    def _write_script(self, text: str | None) -> Path | None:
        """The login runscript, readable by this user only, in a private folder."""
        if text is None:
            return None
        private_dir(self.work_dir)
        fd, name = tempfile.mkstemp(prefix="login-", suffix=".txt", dir=self.work_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as script:
            script.write(text)
        return Path(name).resolve()
