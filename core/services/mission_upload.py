"""The plumbing around a mission upload: the temp file written off the event loop, progress
callbacks that never fail an upload, a link as the audit keeps it, sizes in MiB, and the
mission folder kept the same where the game runs (a volume on another host).

Apart from the service so its methods read as the steps of an upload, not their care.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from yarl import URL

from core.errors import ConfigWriteError
from core.services.mission_types import MissionProgress, MissionProgressCallback
from data.repositories.missions import MissionFiles

if TYPE_CHECKING:
    from core.supervisor.supervisor import Supervisor

__all__ = ["emit_progress", "mib", "push_or_undo", "safe_url", "write_temp"]

_log = logging.getLogger(__name__)


async def write_temp(files: MissionFiles, data: bytes) -> Path:
    """Write in a thread; if we are cancelled meanwhile, the file is removed once written."""
    future = asyncio.ensure_future(asyncio.to_thread(files.write_temp, data))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(
            lambda done: (
                None if done.cancelled() or done.exception() else files.discard(done.result())
            )
        )
        raise


async def emit_progress(progress: MissionProgressCallback | None, event: MissionProgress) -> None:
    """Progress is cosmetic: a failing callback (an expired interaction) never fails the upload."""
    if progress is None:
        return
    try:
        result = progress(event)
        if inspect.isawaitable(result):
            await result
    except Exception:
        _log.warning("a mission progress callback failed", exc_info=True)


def safe_url(url: str) -> str:
    """What the audit keeps of a link: host and file name, never credentials or query."""
    try:
        parsed = URL(url.strip())
        return f"{parsed.host}/…/{parsed.name}"[:200]
    except (ValueError, TypeError):
        return "<invalid link>"


def mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


async def push_or_undo(sup: Supervisor, server_id: int, files: MissionFiles, name: str) -> None:
    """Copy a mission just stored (or take one just deleted away) where the game runs. An
    upload the host did not take is removed here too: the list never shows a mission the
    game cannot load. ConfigWriteError."""
    path = files.folder / name
    present = await asyncio.to_thread(path.exists)
    try:
        await sup.push_files(server_id, [path])
    except ConfigWriteError:
        if present:
            await asyncio.to_thread(files.remove, name)
        raise
