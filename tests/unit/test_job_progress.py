"""How a long job's progress reads in Discord: its place in the queue, then step and bytes."""

from __future__ import annotations

from bot.job_progress import progress_text
from core.jobs import JobState, JobUpdate


def test_a_waiting_job_shows_its_place_and_a_running_one_its_step_and_bytes() -> None:
    waiting = JobUpdate(7, "backup alpha", JobState.QUEUED, place=3)
    assert progress_text(None, waiting) == "⏳ waiting in the job queue (place 3)"
    copying = JobUpdate(7, "backup alpha", JobState.RUNNING, 0, "copying files", 512, 2048)
    assert progress_text(None, copying) == "⏳ copying files… 512 B / 2.0 KiB (25 %)"
    started = JobUpdate(7, "backup alpha", JobState.RUNNING, 0)
    assert progress_text(None, started) == "⏳ under way…"


def test_french_readers_get_the_queue_and_the_steps_in_french() -> None:
    waiting = JobUpdate(7, "backup alpha", JobState.QUEUED, place=1)
    assert progress_text("fr", waiting) == "⏳ en attente dans la file des tâches (place 1)"
    checking = JobUpdate(7, "restore alpha", JobState.RUNNING, 0, "checking the backup")
    assert progress_text("fr", checking) == "⏳ vérification de la sauvegarde…"
