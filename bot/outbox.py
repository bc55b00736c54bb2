"""The per-channel outbox: the one place that posts to a Discord channel (architecture rule 10).

Why it exists: a log can write ten thousand lines a second and Discord takes about five
messages per five seconds per channel. So the outbox batches lines into code blocks,
paces every request (sends, edits, deletes) under the channel's limit and the bot's global
one, keeps exactly one request in flight, waits out any 429 before the channel hears from
us again, and, when the backlog is more than it could post in a few seconds, sends it as a
`.log` file with a one-line summary. Lines are never dropped; a stream's `on_delivered`
hears the position of the last line Discord accepted, so a cursor is saved only then.

discord.py retries a 429 that carries `Via` and waits on the buckets it has learned, but
a 429 without `Via`, a sixth 429 or `max_ratelimit_timeout` surface as exceptions (the
sender maps them to `RetryAfter`; the channel is blocked until the window ends); it knows
nothing of the ~5/5 s channel limit before the first response, buckets edits and sends
apart, and does not batch. Hence the outbox's own pacing, which counts every request.

A channel the bot may no longer write to (403, unknown channel) is not retried in a loop:
`bot.outbox_unwritable` rests it, keeps only the newest lines and tells the owner once
(`on_trouble`); that is the one case where lines are dropped.

The pacers are in `bot.pacing`; how lines become a message or a file in `bot.outbox_plan`;
a stream's queued lines in `bot.outbox_buffer`; the exceptions, streams and configuration
in `bot.outbox_types`. This module keeps the queues, the worker and the calls.

Its own words (stream titles, a flood's summary, the note after a refusal) follow the
channel's language: `locale()` gives its guild's locale code when a message is planned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence

from bot.outbox_buffer import LineBuffer
from bot.outbox_plan import OutMessage, PlannedMessage
from bot.outbox_requests import RequestQueue
from bot.outbox_types import (
    ChannelUnavailable,
    FileTooLarge,
    MessageGone,
    OutboxConfig,
    Rejected,
    Request,
    RetryAfter,
    Sender,
    Stream,
    Transient,
    Trouble,
)
from bot.outbox_unwritable import Refusal, log_episode
from bot.pacing import ChannelPacer, Clock, GlobalPacer
from core.backoff import Backoff

__all__ = ["LocaleOf", "Outbox", "TroubleHandler"]

_log = logging.getLogger(__name__)

LocaleOf = Callable[[], str | None]
"""The channel's language now, as a locale code (`fr`, `en-US`), or None for English."""

TroubleHandler = Callable[["Outbox", Trouble, bool], None]
"""`(outbox, trouble, unwritable)`: called once when posting stops, once when it works again."""


class Outbox:
    """Everything for one channel; `start()` it, feed it, `close()` it."""

    def __init__(
        self,
        channel_id: int,
        sender: Sender,
        *,
        config: OutboxConfig | None = None,
        global_pacer: GlobalPacer | None = None,
        clock: Clock = time.monotonic,
        on_trouble: TroubleHandler | None = None,
        locale: LocaleOf | None = None,
    ) -> None:
        self.channel_id = channel_id
        self._locale = locale
        self.config = config or OutboxConfig()
        cfg = self.config
        self._sender = sender
        self._clock = clock
        self.pacer = ChannelPacer(cfg.rate_limit, cfg.rate_per, cfg.rate_margin, clock)
        self._global = global_pacer or GlobalPacer()
        self._buffers: dict[str, LineBuffer] = {}
        self._requests = RequestQueue()
        self._backoff = Backoff(base=cfg.retry_base, cap=cfg.retry_cap)
        self._file_cap = cfg.max_file_bytes
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._on_trouble = on_trouble
        self.refusal = Refusal(channel_id, cfg, clock, self._tell)
        """The episode of a channel that refuses us (bot.outbox_unwritable)."""
        self.sent_messages = 0
        self.sent_files = 0
        self.delivered_lines = 0

    # -- feeding -------------------------------------------------------------------------

    def add_stream(self, stream: Stream) -> None:
        if stream.key not in self._buffers:
            self._buffers[stream.key] = LineBuffer(stream)

    def add_lines(
        self,
        stream: Stream,
        texts: Sequence[str],
        *,
        levels: Sequence[int] | None = None,
        ends: Sequence[int] | None = None,
        tag: str = "",
        raws: Sequence[str] | None = None,
        at: float | None = None,
        mark: int | None = None,
    ) -> None:
        """Queue lines (cleaned; for plain streams, escaped) in order. `ends`/`tag` place each
        line in its file for `on_delivered`; `mark` is how far the caller has read (lines it
        filtered out included); `raws` are what a flood file holds instead of `texts`."""
        self.add_stream(stream)
        buf = self._buffers[stream.key]
        buf.append(texts, levels=levels, ends=ends, tag=tag, raws=raws, at=at, mark=mark)
        if self.trouble is not None:
            self.refusal.trim(buf)
        if buf.since is None and (buf.pending or buf.marked()):
            buf.since = self._clock()
        self._wake.set()

    def post(self, message: OutMessage) -> asyncio.Future[int]:
        """Send a message (an alert, a status embed); the future gets its id."""
        return self._queue(Request("send", message))

    def edit(self, message_id: int, message: OutMessage) -> asyncio.Future[int]:
        """Edit a message; a queued edit of the same message is replaced (latest wins)."""
        merged = self._requests.merge_edit(message_id, message)
        return merged or self._queue(Request("edit", message, message_id))

    def delete(self, message_id: int) -> asyncio.Future[int]:
        return self._queue(Request("delete", OutMessage(), message_id))

    def _queue(self, request: Request) -> asyncio.Future[int]:
        if self._closed.is_set():
            return RequestQueue.refused()
        future = self._requests.add(request)
        self.refusal.trim_requests(self._requests.items, self._requests.in_flight)
        self._wake.set()
        return future

    # -- state for callers and tests -----------------------------------------------------

    @property
    def pending_lines(self) -> int:
        return sum(buf.pending for buf in self._buffers.values())

    @property
    def pending_requests(self) -> int:
        return len(self._requests)

    @property
    def trouble(self) -> Trouble | None:
        """Set while the channel refuses us; nothing is posted until the retry is due."""
        return self.refusal.trouble

    @property
    def locale(self) -> str | None:
        """The language of what is posted here (None: English): the guild's preferred one."""
        return None if self._locale is None else self._locale()

    @property
    def writable(self) -> bool:
        """False while the channel refuses us (until a later post works)."""
        return self.trouble is None

    def retry_now(self) -> None:
        """Try an unwritable channel again at once (it was just bound again)."""
        if self.refusal.retry_now():
            self._wake.set()

    @property
    def idle(self) -> bool:
        return (
            not self._requests
            and self._requests.in_flight is None
            and not any(buf.pending or buf.marked() for buf in self._buffers.values())
        )

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())
            self._task.set_name(f"outbox:{self.channel_id}")

    async def close(self, timeout: float = 10.0) -> None:
        """Stop after the request in flight (if any) is answered and its lines committed.

        Lines still queued are not lost: their cursor was not saved, so the next start
        reads them again.
        """
        self._closed.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._requests.cancel_all()
        if self.trouble is not None:
            _log.info(
                "channel %d was still unwritable at close; %d lines and %d requests dropped",
                self.channel_id,
                self.trouble.dropped_lines,
                self.trouble.dropped_requests,
            )

    # -- the worker ----------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.clear()
            wait = self._due_in()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), None if wait == math.inf else wait)
                continue
            if await self._commit_marks():
                continue
            pace = self.pacer.delay()
            if pace > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), pace)
                continue
            await self._global.acquire()
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop the channel for good
                _log.exception("outbox of channel %d failed a step", self.channel_id)
                self.pacer.block(self._backoff.next())

    def _due_in(self) -> float:
        """Seconds until something should go out (0: now; inf: nothing queued)."""
        now = self._clock()
        rest = self.refusal.wait(now)
        if rest > 0:
            return rest
        if self._requests:
            return 0.0
        buffers = self._buffers.values()
        return max(0.0, min((b.due_in(self.config, now) for b in buffers), default=math.inf))

    def _oldest_due(self) -> LineBuffer | None:
        now = self._clock()
        due = [b for b in self._buffers.values() if b.pending and b.due_in(self.config, now) <= 0]
        return min(due, key=lambda b: b.since or 0.0) if due else None

    async def _commit_marks(self) -> bool:
        """Save cursors of buffers whose only news is lines filtered out; True if any."""
        now = self._clock()
        did = False
        for buf in self._buffers.values():
            if buf.pending or not buf.marked() or buf.since is None:
                continue
            if now >= buf.since + self.config.mark_linger:
                buf.since = None
                await buf.commit(buf.mark)
                did = True
        return did

    async def _step(self) -> None:
        if self.trouble is not None:
            self.refusal.prepare_probe(self._requests.items, self.locale)
        if self._requests:
            await self._do_request(self._requests.items[0])
            return
        buf = self._oldest_due()
        if buf is None:
            return
        plan = self._plan(buf)
        try:
            if await self._call(lambda: self._sender.send(plan.message)) is None:
                return
        except Rejected as exc:
            if plan.message.file is None:
                buf.force_file = True  # try the same lines as a file
                return
            _log.error(
                "channel %d refused %d %s of %s even as a file (%s); skipping them",
                self.channel_id,
                plan.count,
                buf.stream.noun,
                buf.stream.key,
                exc,
            )
            await self._delivered(buf, plan.count)
            return
        if plan.message.file is not None:
            self.sent_files += 1
        else:
            self.sent_messages += 1
        await self._delivered(buf, plan.count)

    async def _do_request(self, request: Request) -> None:
        self._requests.in_flight = request
        try:
            result = await self._call(lambda: self._perform(request), request=request)
        finally:
            self._requests.in_flight = None
        if result is not None:
            self._requests.resolve(request, result)

    async def _perform(self, request: Request) -> int:
        if request.kind == "send":
            message_id = await self._sender.send(request.message)
            self.sent_messages += 1
            return message_id
        if request.kind == "edit":
            await self._sender.edit(request.message_id, request.message)
        else:
            await self._sender.delete(request.message_id)
        return request.message_id

    async def _call(
        self, call: Callable[[], Awaitable[int]], *, request: Request | None = None
    ) -> int | None:
        """One request; None when it must be tried again (the channel was told to wait)."""
        try:
            result = await call()
        except RetryAfter as exc:
            self.pacer.note()
            self.pacer.block(exc.after)
            _log.info("channel %d rate limited for %.2f s", self.channel_id, exc.after)
            return None
        except FileTooLarge:
            self.pacer.note()
            self._file_cap = max(64 * 1024, self._file_cap // 2)
            _log.warning(
                "channel %d: file too large; now %d bytes", self.channel_id, self._file_cap
            )
            return None
        except ChannelUnavailable as exc:
            self.pacer.note()
            queue = self._requests
            self.refusal.refused(exc, self._buffers.values(), queue.items, queue.in_flight)
            return None
        except Transient as exc:
            self.pacer.note()
            delay = self._backoff.next()
            self.pacer.block(delay)
            _log.warning("channel %d: %s; retrying in %.1f s", self.channel_id, exc, delay)
            return None
        except (MessageGone, Rejected) as exc:
            self.pacer.note()
            if request is None:
                raise  # lines: _step decides
            self._requests.reject(request, exc)
            return None
        self.pacer.note()
        self._backoff.reset()
        if self.trouble is not None:
            self.refusal.accepted()
        return result

    # -- a channel that refuses us -------------------------------------------------------

    def _tell(self, trouble: Trouble, unwritable: bool) -> None:
        if self._on_trouble is None:
            log_episode(self.channel_id, trouble, unwritable, self.config.unwritable_retry)
            return
        try:
            self._on_trouble(self, trouble, unwritable)
        except Exception:  # the owner's bug must not stop the channel
            _log.exception("the trouble handler of channel %d failed", self.channel_id)

    async def _delivered(self, buf: LineBuffer, count: int) -> None:
        self.delivered_lines += count
        await buf.commit(buf.advance(count, self._clock()))
        buf.compact()

    # -- what to send --------------------------------------------------------------------

    def _header(self, stream: Stream, locale: str | None) -> str:
        return f"**{stream.heading(locale)}**\n" if len(self._buffers) > 1 else ""

    def _plan(self, buf: LineBuffer) -> PlannedMessage:
        """The next message of a buffer: a batch of lines, or the backlog as a file."""
        locale = self.locale
        return buf.plan(self.config, self._file_cap, self._header(buf.stream, locale), locale)
