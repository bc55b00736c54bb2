"""One queue for the long jobs of this host (backups, restores, downloads): one at a time.

Two backups reading and compressing at once only make both slower and fill the disk
twice as fast, so jobs run one after another. A caller gets a `Job` at once and learns its
place in the queue, then the job's progress, through an `on_update` callback; the job's
own work reports progress with `JobContext.progress`, from the event loop or from a worker
thread. Updates are coalesced (a slow listener sees the latest, never a backlog), and the
last update is delivered before `Job.result()` returns, so a front end's final message is
never overwritten by a late progress edit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import itertools
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Generic, ParamSpec, TypeVar

from core.errors import LanguardError

__all__ = [
    "Job",
    "JobCancelled",
    "JobContext",
    "JobQueue",
    "JobState",
    "JobUpdate",
    "UpdateListener",
]

_log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")

DEFAULT_MAX_WAITING = 32
"""Jobs that may wait at once; one more is refused rather than queued for hours."""


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """Where a job stands: `place` is 0 while it runs, 1 for the next to run, and so on.

    `step` is a short fixed word the job chose (a front end translates it); `done` and
    `total` count its units (bytes, files), `total` 0 when unknown.
    """

    job_id: int
    name: str
    state: JobState
    place: int
    step: str = ""
    done: int = 0
    total: int = 0

    @property
    def fraction(self) -> float | None:
        if self.total <= 0:
            return None
        return max(0.0, min(1.0, self.done / self.total))


UpdateListener = Callable[[JobUpdate], Awaitable[None] | None]


class JobCancelled(Exception):
    """Raised inside a job's worker thread when the job was cancelled (it should unwind)."""


class JobContext:
    """What a running job may do: report progress, notice cancellation, run a thread."""

    def __init__(self, job: Job[Any], loop: asyncio.AbstractEventLoop) -> None:
        self._job = job
        self._loop = loop
        self.cancelled = threading.Event()
        """Set when the job is cancelled; worker threads check it (progress() raises)."""
        self._latest: tuple[str, int, int] | None = None
        self._flush_due = False
        self._guard = threading.Lock()

    def progress(self, step: str, done: int = 0, total: int = 0) -> None:
        """Report progress; safe from any thread. Raises JobCancelled once cancelled."""
        if self.cancelled.is_set():
            raise JobCancelled
        with self._guard:
            self._latest = (step, done, total)
            if self._flush_due:
                return
            self._flush_due = True
        if _on_loop(self._loop):
            self._loop.call_soon(self._flush)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody listens
                self._loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        with self._guard:
            latest, self._latest, self._flush_due = self._latest, None, False
        if latest is not None and self._job.state is JobState.RUNNING:
            step, done, total = latest
            self._job._publish(step=step, done=done, total=total)

    async def in_thread(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `func` on a worker thread; if the job is cancelled meanwhile, tell the
        thread (progress() raises there) and wait for it to unwind before going on, so
        the next job never overlaps a thread that is still cleaning up."""
        future = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self.cancelled.set()
            with contextlib.suppress(BaseException):
                await future
            raise


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class Job(Generic[T]):
    """A submitted job; `await job.result()` for its outcome (or its exception)."""

    def __init__(
        self,
        queue: JobQueue,
        job_id: int,
        name: str,
        key: str | None,
        factory: Callable[[JobContext], Awaitable[T]],
        listener: UpdateListener | None,
    ) -> None:
        self.id = job_id
        self.name = name
        self.key = key
        self._queue = queue
        self._factory = factory
        self._listener = listener
        self._outcome: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._last = JobUpdate(job_id, name, JobState.QUEUED, 0)
        self._pending: JobUpdate | None = None
        self._delivery: asyncio.Task[None] | None = None
        self.task: asyncio.Future[Any] | None = None
        self.context: JobContext | None = None

    @property
    def state(self) -> JobState:
        return self._last.state

    @property
    def place(self) -> int:
        return self._last.place

    @property
    def last(self) -> JobUpdate:
        return self._last

    def cancel(self) -> bool:
        """Cancel a waiting or running job; False when it already finished."""
        return self._queue._cancel(self)

    async def result(self) -> T:
        """The job's result (or its exception; a `LanguardError` when it was cancelled),
        once its last update was delivered."""
        try:
            return await asyncio.shield(self._outcome)
        finally:
            delivery = self._delivery
            if delivery is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(delivery)

    def _publish(self, **changes: Any) -> None:
        if self._last.state in FINISHED:
            return
        self._last = replace(self._last, **changes)
        if self._listener is None:
            return
        self._pending = self._last
        if self._delivery is None or self._delivery.done():
            self._delivery = asyncio.ensure_future(self._deliver())

    async def _deliver(self) -> None:
        while self._pending is not None:
            update, self._pending = self._pending, None
            assert self._listener is not None
            try:
                outcome = self._listener(update)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:  # a front end's failed edit must not break the job
                _log.exception("job %s: an update listener failed", self.name)

    def _finish(
        self, state: JobState, result: Any = None, error: BaseException | None = None
    ) -> None:
        self._publish(state=state, place=0)
        if self._outcome.done():
            return
        if error is not None:
            self._outcome.set_exception(error)
            self._outcome.exception()  # retrieved: nobody may ever ask for the result
        elif state is JobState.CANCELLED:
            self._outcome.set_exception(LanguardError("the job was cancelled before it finished"))
            self._outcome.exception()
        else:
            self._outcome.set_result(result)


class JobQueue:
    """The host's queue of long jobs; one runs at a time, the rest wait in order."""

    def __init__(self, *, max_waiting: int = DEFAULT_MAX_WAITING) -> None:
        self._max_waiting = max_waiting
        self._waiting: collections.deque[Job[Any]] = collections.deque()
        self._running: Job[Any] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._closed = False

    def submit(
        self,
        name: str,
        factory: Callable[[JobContext], Awaitable[T]],
        *,
        on_update: UpdateListener | None = None,
        key: str | None = None,
    ) -> Job[T]:
        """Queue a job; `factory(context)` makes its coroutine when its turn comes.

        `key` names what the job works on (`backup:alpha`): a second job with the same key
        is refused while the first waits or runs. Must be called on the event loop.
        """
        if self._closed:
            raise LanguardError("the bot is shutting down; try again once it is back")
        if key is not None and self.busy(key):
            raise LanguardError("that job is already waiting or running")
        if len(self._waiting) >= self._max_waiting:
            raise LanguardError(
                "the job queue is full ({waiting} jobs waiting); try again later",
                waiting=len(self._waiting),
            )
        job: Job[T] = Job(self, next(self._ids), name, key, factory, on_update)
        self._waiting.append(job)
        self._renumber()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._work())
        return job

    def busy(self, key: str) -> bool:
        """Whether a job with this key is waiting or running."""
        running = self._running
        return (running is not None and running.key == key) or any(
            job.key == key for job in self._waiting
        )

    def updates(self) -> list[JobUpdate]:
        """Every unfinished job, the running one first."""
        jobs = ([self._running] if self._running else []) + list(self._waiting)
        return [job.last for job in jobs]

    def _renumber(self) -> None:
        offset = 1
        for index, job in enumerate(self._waiting):
            if job.place != index + offset:
                job._publish(place=index + offset)

    async def _work(self) -> None:
        while self._waiting:
            job = self._waiting.popleft()
            self._renumber()
            self._running = job
            try:
                await self._run(job)
            finally:
                self._running = None

    async def _run(self, job: Job[Any]) -> None:
        loop = asyncio.get_running_loop()
        job.context = JobContext(job, loop)
        job._publish(state=JobState.RUNNING, place=0)
        job.task = asyncio.ensure_future(job._factory(job.context))
        try:
            result = await asyncio.shield(job.task)
        except asyncio.CancelledError:
            if not job.task.done():  # the worker itself is cancelled: the queue is closing
                job.task.cancel()
                with contextlib.suppress(BaseException):
                    await job.task
                job._finish(JobState.CANCELLED)
                raise
            job._finish(JobState.CANCELLED)
        except Exception as exc:
            job._finish(JobState.FAILED, error=exc)
        else:
            job._finish(JobState.DONE, result)

    def _cancel(self, job: Job[Any]) -> bool:
        if job.state in FINISHED:
            return False
        if job in self._waiting:
            self._waiting.remove(job)
            job._finish(JobState.CANCELLED)
            self._renumber()
            return True
        if job.context is not None:
            job.context.cancelled.set()
        if job.task is not None:
            job.task.cancel()
        return True

    async def close(self) -> None:
        """Cancel every waiting and running job and wait for the running one to stop."""
        self._closed = True
        for job in list(self._waiting):
            self._cancel(job)
        running = self._running
        if running is not None:
            self._cancel(running)
        worker = self._worker
        if worker is not None:
            with contextlib.suppress(BaseException):
                await worker
