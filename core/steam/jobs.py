"""SteamCMD work as jobs of the host's queue (core/jobs.py): one download at a time.

A member who asks while another download runs gets a place in the queue, then progress,
through the queue's `on_update` listener. The queue's `JobUpdate` carries a step word and a
done/total pair: the step is the SteamCMD stage (`downloading`, `retrying`...), and
done/total is the job's monotonic fraction in thousandths.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from core.jobs import Job, JobCancelled, JobContext, JobQueue, UpdateListener
from core.steam.commands import SERVER_APP_ID
from core.steam.model import AppUpdated, DownloadedItem
from core.steam.progress import ProgressCallback, SteamProgress
from core.steam.runner import SteamCmd

__all__ = ["PROGRESS_SCALE", "submit_app_update", "submit_workshop_download"]

PROGRESS_SCALE = 1000
"""`JobUpdate.total` of a SteamCMD job: `done` is the fraction in thousandths."""


def _forward(context: JobContext) -> ProgressCallback:
    def forward(progress: SteamProgress) -> None:
        with contextlib.suppress(JobCancelled):  # the task is being cancelled anyway
            context.progress(
                progress.stage, round(progress.fraction * PROGRESS_SCALE), PROGRESS_SCALE
            )

    return forward


def submit_workshop_download(
    queue: JobQueue,
    steam: SteamCmd,
    install_dir: Path,
    item_ids: Sequence[int],
    *,
    expected_sizes: Mapping[int, int] | None = None,
    on_update: UpdateListener | None = None,
) -> Job[list[DownloadedItem]]:
    """Queue a download of Workshop items; the same set of items is never queued twice."""
    ids = list(dict.fromkeys(int(i) for i in item_ids))

    async def run(context: JobContext) -> list[DownloadedItem]:
        return await steam.download_items(
            install_dir, ids, _forward(context), expected_sizes=expected_sizes
        )

    key = "workshop:" + ",".join(str(i) for i in sorted(ids))
    return queue.submit("workshop download", run, on_update=on_update, key=key)


def submit_app_update(
    queue: JobQueue,
    steam: SteamCmd,
    install_dir: Path,
    *,
    app_id: int = SERVER_APP_ID,
    beta: str | None = None,
    on_update: UpdateListener | None = None,
) -> Job[AppUpdated]:
    """Queue an install or update of a Steam app (the Arma 3 server by default)."""

    async def run(context: JobContext) -> AppUpdated:
        return await steam.update_app(install_dir, _forward(context), app_id=app_id, beta=beta)

    key = f"steam-app:{app_id}:{install_dir}"
    return queue.submit("server update", run, on_update=on_update, key=key)
