"""A long job's progress in the reply that started it: its place in the host's job queue,
then its step and bytes (core.jobs), edited in as it moves.

Any command that submits a job (a backup, a restore, a download) passes a `JobProgress`
as the job's `on_update` and sends its own summary once `job.result()` returns: the queue
delivers the last update before the result, so a late progress edit never overwrites it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import discord

from bot.embeds import format_bytes
from bot.i18n import tr
from core.jobs import JobState, JobUpdate

__all__ = ["PROGRESS_EVERY", "JobProgress", "progress_text"]

_log = logging.getLogger(__name__)

PROGRESS_EVERY = 1.5
"""Seconds between two edits of the same step, so a big copy does not spend the rate limit."""
_FINISHED = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})


def progress_text(
    locale: str | discord.Locale | None, update: JobUpdate, *, percent_only: bool = False
) -> str:
    """Where a job stands, on one line: its place in the queue, or its step and bytes. A
    job's steps are fixed words (core.backups.layout.Step), each in the catalogue.
    `percent_only`: `done`/`total` are not bytes (a SteamCMD job counts thousandths)."""
    if update.state is JobState.QUEUED:
        return tr(locale, "⏳ waiting in the job queue (place {place})", place=update.place)
    step = tr(locale, update.step) if update.step else tr(locale, "under way")
    text = f"⏳ {step}…"
    if update.total > 0:
        percent = int(100 * (update.fraction or 0.0))
        if percent_only:
            return f"{text} {percent} %"
        text += f" {format_bytes(update.done)} / {format_bytes(update.total)} ({percent} %)"
    return text


class JobProgress:
    """Edits the (deferred or confirmed) reply under a bold `title`: at each new place or
    step, and within a step at most every PROGRESS_EVERY s. A failed edit is let go."""

    def __init__(
        self, interaction: discord.Interaction[Any], title: str, *, percent_only: bool = False
    ) -> None:
        self.interaction = interaction
        self.title = title
        self.percent_only = percent_only
        self.shown: tuple[JobState, int, str] | None = None
        self.last = 0.0

    async def __call__(self, update: JobUpdate) -> None:
        if update.state in _FINISHED:
            return
        key = (update.state, update.place, update.step)
        now = time.monotonic()
        if key == self.shown and now - self.last < PROGRESS_EVERY:
            return
        self.shown, self.last = key, now
        line = progress_text(self.interaction.locale, update, percent_only=self.percent_only)
        text = f"**{self.title}**\n{line}"
        try:
            await self.interaction.edit_original_response(content=text, embed=None, view=None)
        except discord.HTTPException as exc:  # progress is a courtesy; the job goes on
            _log.debug("job progress edit failed: %s", exc)
