"""The per-channel outbox: the one place that posts to a Discord channel (architecture rule 10).

Why it exists: a log can write ten thousand lines a second and Discord takes about five
messages per five seconds per channel. So the outbox batches lines into code blocks,
paces every request (sends, edits, deletes) under the channel's limit and the bot's global
one, keeps exactly one request in flight, waits out any 429 before the channel hears from
us again, and, when the backlog is more than it could post in a few seconds, sends it as a
`.log` file with a one-line summary. Lines are never dropped; a stream's `on_delivered`
hears the position of the last line Discord accepted, so a cursor is saved only then.

What discord.py does for us: on a 429 that carries `Via` it sleeps `retry_after` and
retries (up to five tries) while holding the route's bucket, and it waits on buckets it
has learned from headers. What it does not: a 429 without `Via`, a sixth 429 or a
`max_ratelimit_timeout` surface as exceptions (the sender maps them to `RetryAfter`, and
this outbox blocks the channel until the window ends); it knows nothing of the ~5/5 s
channel limit before the first response, treats edits and sends as separate buckets, and
does not batch. Hence the outbox's own pacing, which counts every request.

A channel the bot may no longer write to (403 Missing Access / Missing Permissions, 404
Unknown Channel) is not retried in a loop: the outbox stops posting there, tells its owner
once (`on_trouble`), and tries again only after `unwritable_retry` seconds (or at once on
`retry_now()`, when the channel is bound again). Meanwhile it keeps only the newest
`unwritable_max_lines` lines per stream and `unwritable_max_requests` requests: the lines
are still in the servers' log files, and a channel may stay closed for days, so holding
everything would grow without bound. The first message after it opens again says how many
were dropped. This is the one case where lines are dropped.

The pacers themselves are in `bot.pacing`; how lines become a message or a file (and the
payload types) in `bot.outbox_plan`. This module keeps the queues, the worker and the calls.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from bot.outbox_plan import (
    FENCE,
    OutFile,
    OutMessage,
    PlannedMessage,
    file_summary,
    gap_note,
    plan_file,
    plan_message,
    text_units,
)
from bot.pacing import ChannelPacer, Clock, GlobalPacer
from core.backoff import Backoff

# FENCE, ChannelPacer, GlobalPacer, OutFile, OutMessage, file_summary, plan_message and
# text_units moved to bot.outbox_plan and bot.pacing (import them from there); they are
# re-exported here so that older imports keep working.
__all__ = [
    "FENCE",
    "ChannelPacer",
    "ChannelUnavailable",
    "FileTooLarge",
    "GlobalPacer",
    "MessageGone",
    "OutFile",
    "OutMessage",
    "Outbox",
    "OutboxConfig",
    "Rejected",
    "RetryAfter",
    "Sender",
    "Stream",
    "Transient",
    "Trouble",
    "file_summary",
    "plan_message",
    "text_units",
]

_log = logging.getLogger(__name__)

Delivered = Callable[[str, int], Awaitable[None]]
"""`(tag, end)`: every line up to byte offset `end` of the file `tag` is on Discord."""


# -- what a sender raises ------------------------------------------------------------------


class RetryAfter(Exception):
    """Rate limited: nothing may go to the channel for `after` seconds."""

    def __init__(self, after: float) -> None:
        super().__init__(f"retry after {after:.3f} s")
        self.after = after


class Transient(Exception):
    """A server error or network failure: retry with backoff."""


class ChannelUnavailable(Exception):
    """The channel is gone or closed to us (403, unknown channel): stop, retry much later."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        """Discord's error code: 50001 Missing Access, 50013 Missing Permissions, 10003..."""


class MessageGone(Exception):
    """The message to edit or delete no longer exists."""


class Rejected(Exception):
    """Discord refused the payload itself (400): retrying the same thing cannot help."""


class FileTooLarge(Rejected):
    """The attachment was over the upload cap: send smaller files."""


# -- the sender ----------------------------------------------------------------------------


class Sender(Protocol):
    """One channel's REST calls; failures are raised as the exceptions above."""

    async def send(self, message: OutMessage) -> int: ...

    async def edit(self, message_id: int, message: OutMessage) -> None: ...

    async def delete(self, message_id: int) -> None: ...


@dataclass(eq=False)
class Trouble:
    """One episode of a channel the bot cannot post to, and what it cost."""

    reason: str
    code: int | None
    since: float
    dropped: dict[str, int] = field(default_factory=dict)
    """Lines dropped per stream noun ("lines", "messages") while it lasted."""
    dropped_requests: int = 0

    @property
    def dropped_lines(self) -> int:
        return sum(self.dropped.values())


TroubleHandler = Callable[["Outbox", Trouble, bool], None]
"""`(outbox, trouble, unwritable)`: called once when posting stops, once when it works again."""


# -- streams and their buffers -------------------------------------------------------------


@dataclass(eq=False)
class Stream:
    """One flow of lines into a channel (a server's log source, a server's chat)."""

    key: str
    title: str
    """Shown before the lines when a channel carries several streams (already escaped)."""
    filename: str
    """Base name of the `.log` file a flood goes out as (safe characters only)."""
    code: bool = True
    """Lines go in a code block (logs) or as plain, already escaped text (chat)."""
    noun: str = "lines"
    on_delivered: Delivered | None = None


@dataclass(eq=False)
class _Buffer:
    stream: Stream
    texts: list[str] = field(default_factory=list)
    raws: list[str] | None = None
    levels: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    stamp_at: list[int] = field(default_factory=list)
    stamp_time: list[float] = field(default_factory=list)
    pos: int = 0
    chars: int = 0
    since: float | None = None
    mark: tuple[str, int] | None = None
    committed: tuple[str, int] | None = None
    force_file: bool = False

    @property
    def pending(self) -> int:
        return len(self.texts) - self.pos

    def marked(self) -> bool:
        return self.mark is not None and self.mark != self.committed

    def time_at(self, index: int) -> float | None:
        at = bisect.bisect_right(self.stamp_at, index) - 1
        return self.stamp_time[at] if at >= 0 else None

    def compact(self) -> None:
        """Forget delivered lines once they are most of the buffer (O(1) amortised)."""
        pos = self.pos
        if pos < 4096 or pos * 2 < len(self.texts):
            return
        for column in (self.texts, self.raws, self.levels, self.ends, self.tags):
            if column is not None:
                del column[:pos]
        keep = max(0, bisect.bisect_right(self.stamp_at, pos) - 1)
        self.stamp_at = [max(0, i - pos) for i in self.stamp_at[keep:]]
        del self.stamp_time[:keep]
        self.pos = 0


@dataclass(eq=False)
class _Request:
    kind: Literal["send", "edit", "delete"]
    message: OutMessage
    message_id: int = 0
    futures: list[asyncio.Future[int]] = field(default_factory=list)


@dataclass(frozen=True)
class OutboxConfig:
    max_chars: int = 2000
    rate_limit: int = 5
    rate_per: float = 5.0
    rate_margin: float = 0.05
    linger: float = 1.0
    """How long the first pending line waits for company before it goes out."""
    mark_linger: float = 5.0
    """How long a cursor move with no line to show (filtered out) waits to be saved."""
    flood_seconds: float = 3.0
    """A backlog larger than this many seconds of messages goes out as a file."""
    max_file_bytes: int = 8 * 1024 * 1024
    retry_base: float = 1.0
    retry_cap: float = 60.0
    unwritable_retry: float = 600.0
    """How long a channel that refused us (403, unknown channel) rests before one more try."""
    unwritable_max_lines: int = 10_000
    """Lines kept per stream while the channel is unwritable (older ones are dropped)."""
    unwritable_max_requests: int = 20
    """Requests (alerts, status edits) kept while the channel is unwritable."""

    @property
    def flood_chars(self) -> int:
        messages = max(1, math.ceil(self.flood_seconds * self.rate_limit / self.rate_per))
        return messages * self.max_chars


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
    ) -> None:
        self.channel_id = channel_id
        self.config = config or OutboxConfig()
        cfg = self.config
        self._sender = sender
        self._clock = clock
        self.pacer = ChannelPacer(cfg.rate_limit, cfg.rate_per, cfg.rate_margin, clock)
        self._global = global_pacer or GlobalPacer()
        self._buffers: dict[str, _Buffer] = {}
        self._requests: deque[_Request] = deque()
        self._in_flight: _Request | None = None
        self._backoff = Backoff(base=cfg.retry_base, cap=cfg.retry_cap)
        self._file_cap = cfg.max_file_bytes
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._on_trouble = on_trouble
        self.trouble: Trouble | None = None
        """Set while the channel refuses us; nothing is posted until `_blocked_until`."""
        self._blocked_until = 0.0
        self._gap_note: _Request | None = None
        self.sent_messages = 0
        self.sent_files = 0
        self.delivered_lines = 0

    # -- feeding -------------------------------------------------------------------------

    def add_stream(self, stream: Stream) -> None:
        if stream.key not in self._buffers:
            self._buffers[stream.key] = _Buffer(stream)

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
        if texts:
            if raws is not None and buf.raws is None:
                buf.raws = list(buf.texts)
            buf.stamp_at.append(len(buf.texts))
            buf.stamp_time.append(time.time() if at is None else at)
            buf.texts.extend(texts)
            if buf.raws is not None:
                buf.raws.extend(raws if raws is not None else texts)
            buf.levels.extend(levels if levels is not None else [20] * len(texts))
            buf.ends.extend(ends if ends is not None else [0] * len(texts))
            buf.tags.extend([tag] * len(texts))
            buf.chars += sum(map(len, texts)) + len(texts)
        if mark is not None or ends:
            buf.mark = (tag, mark if mark is not None else (ends[-1] if ends else 0))
        if self.trouble is not None:
            self._trim(buf)
        if buf.since is None and (buf.pending or buf.marked()):
            buf.since = self._clock()
        self._wake.set()

    def post(self, message: OutMessage) -> asyncio.Future[int]:
        """Send a message (an alert, a status embed); the future gets its id."""
        return self._queue(_Request("send", message))

    def edit(self, message_id: int, message: OutMessage) -> asyncio.Future[int]:
        """Edit a message; a queued edit of the same message is replaced (latest wins)."""
        for request in self._requests:
            if (
                request is not self._in_flight
                and request.kind == "edit"
                and request.message_id == message_id
            ):
                request.message = message
                future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
                request.futures.append(future)
                return future
        return self._queue(_Request("edit", message, message_id))

    def delete(self, message_id: int) -> asyncio.Future[int]:
        return self._queue(_Request("delete", OutMessage(), message_id))

    def _queue(self, request: _Request) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if self._closed.is_set():
            future.set_exception(RuntimeError("the outbox is closed"))
            return future
        request.futures.append(future)
        self._requests.append(request)
        self._trim_requests()
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
    def writable(self) -> bool:
        """False while the channel refuses us (until a later post works)."""
        return self.trouble is None

    def retry_now(self) -> None:
        """Try an unwritable channel again at once (it was just bound again)."""
        if self.trouble is not None:
            self._blocked_until = 0.0
            self._wake.set()

    @property
    def idle(self) -> bool:
        return (
            not self._requests
            and self._in_flight is None
            and not any(buf.pending or buf.marked() for buf in self._buffers.values())
        )

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"outbox:{self.channel_id}")

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
        for request in self._requests:
            for future in request.futures:
                if not future.done():
                    future.cancel()
        self._requests.clear()
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
        if self.trouble is not None and self._blocked_until > now:
            return self._blocked_until - now
        if self._requests:
            return 0.0
        best = math.inf
        budget = self.config.max_chars
        for buf in self._buffers.values():
            if buf.since is None:
                continue
            if buf.pending:
                if buf.chars >= budget:
                    return 0.0
                best = min(best, buf.since + self.config.linger - now)
            elif buf.marked():
                best = min(best, buf.since + self.config.mark_linger - now)
        return max(0.0, best)

    def _oldest_due(self) -> _Buffer | None:
        now = self._clock()
        due = [
            buf
            for buf in self._buffers.values()
            if buf.since is not None
            and buf.pending
            and (buf.chars >= self.config.max_chars or now >= buf.since + self.config.linger)
        ]
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
                await self._commit(buf, buf.mark)
                did = True
        return did

    async def _step(self) -> None:
        if self.trouble is not None:
            self._prepare_probe()
        if self._requests:
            await self._do_request(self._requests[0])
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

    async def _do_request(self, request: _Request) -> None:
        self._in_flight = request
        try:
            result = await self._call(lambda: self._perform(request), request=request)
        finally:
            self._in_flight = None
        if result is None:
            return
        self._requests.remove(request)
        for future in request.futures:
            if not future.done():
                future.set_result(result)

    async def _perform(self, request: _Request) -> int:
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
        self, call: Callable[[], Awaitable[int]], *, request: _Request | None = None
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
            self._unwritable(exc)
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
            self._requests.remove(request)
            for future in request.futures:
                if not future.done():
                    future.set_exception(exc)
            return None
        self.pacer.note()
        self._backoff.reset()
        if self.trouble is not None:
            self._writable_again()
        return result

    # -- a channel that refuses us -------------------------------------------------------

    def _unwritable(self, exc: ChannelUnavailable) -> None:
        """Stop posting until the long retry (one notice per episode, not per attempt)."""
        self._blocked_until = self._clock() + self.config.unwritable_retry
        if self.trouble is not None:
            _log.debug("channel %d still refuses us: %s", self.channel_id, exc)
            return
        self.trouble = Trouble(str(exc), exc.code, self._clock())
        for buf in self._buffers.values():
            self._trim(buf)
        self._trim_requests()
        self._tell(self.trouble, unwritable=True)

    def _writable_again(self) -> None:
        trouble, self.trouble = self.trouble, None
        self._blocked_until = 0.0
        self._gap_note = None
        if trouble is not None:
            self._tell(trouble, unwritable=False)

    def _tell(self, trouble: Trouble, *, unwritable: bool) -> None:
        if self._on_trouble is None:
            if unwritable:
                _log.warning(
                    "channel %d cannot be posted to (%s); stopped posting there, next try in "
                    "%.0f s",
                    self.channel_id,
                    trouble.reason,
                    self.config.unwritable_retry,
                )
            else:
                _log.info(
                    "channel %d is writable again; %d lines and %d requests were dropped",
                    self.channel_id,
                    trouble.dropped_lines,
                    trouble.dropped_requests,
                )
            return
        try:
            self._on_trouble(self, trouble, unwritable)
        except Exception:  # the owner's bug must not stop the channel
            _log.exception("the trouble handler of channel %d failed", self.channel_id)

    def _trim(self, buf: _Buffer) -> None:
        """Keep the newest lines of a buffer while the channel refuses us."""
        trouble = self.trouble
        excess = buf.pending - self.config.unwritable_max_lines
        if trouble is None or excess <= 0:
            return
        start = buf.pos
        buf.chars = max(0, buf.chars - sum(map(len, buf.texts[start : start + excess])) - excess)
        buf.pos += excess
        buf.force_file = False
        noun = buf.stream.noun
        trouble.dropped[noun] = trouble.dropped.get(noun, 0) + excess
        buf.compact()

    def _trim_requests(self) -> None:
        """Keep the newest requests while the channel refuses us; older ones fail."""
        trouble = self.trouble
        while trouble is not None and len(self._requests) > self.config.unwritable_max_requests:
            victim = next(
                (r for r in self._requests if r is not self._in_flight and r is not self._gap_note),
                None,
            )
            if victim is None:
                return
            self._requests.remove(victim)
            trouble.dropped_requests += 1
            for future in victim.futures:
                if not future.done():
                    future.set_exception(ChannelUnavailable("dropped: the channel refuses us"))

    def _prepare_probe(self) -> None:
        """Before trying a refusing channel again: first say what was dropped meanwhile."""
        trouble = self.trouble
        if trouble is None or not trouble.dropped_lines:
            return
        message = OutMessage(content=gap_note(trouble.dropped))
        if self._gap_note is not None and self._gap_note in self._requests:
            self._gap_note.message = message
            return
        self._gap_note = _Request("send", message)
        self._requests.appendleft(self._gap_note)

    async def _delivered(self, buf: _Buffer, count: int) -> None:
        start = buf.pos
        buf.pos += count
        buf.force_file = False
        buf.chars -= sum(map(len, buf.texts[start : buf.pos])) + count
        self.delivered_lines += count
        last = buf.pos - 1
        position = (buf.tags[last], buf.ends[last])
        if not buf.pending:
            buf.chars = 0
            buf.since = None
            if buf.mark is not None:
                position = buf.mark
        elif buf.since is not None:
            buf.since = self._clock()
        await self._commit(buf, position)
        buf.compact()

    async def _commit(self, buf: _Buffer, position: tuple[str, int] | None) -> None:
        callback = buf.stream.on_delivered
        if position is None or callback is None or position == buf.committed:
            buf.committed = position
            return
        try:
            await callback(*position)
        except Exception:  # the lines are out; a failed save only means re-posting later
            _log.exception("saving the cursor of %s failed", buf.stream.key)
        buf.committed = position

    # -- what to send --------------------------------------------------------------------

    def _header(self, stream: Stream) -> str:
        return f"**{stream.title}**\n" if len(self._buffers) > 1 else ""

    def _plan(self, buf: _Buffer) -> PlannedMessage:
        """The next message of a buffer: a batch of lines, or the backlog as a file."""
        if buf.force_file or buf.chars > self.config.flood_chars:
            return self._file_plan(buf)
        plan = plan_message(
            buf.texts, buf.pos, self.config.max_chars, self._header(buf.stream), buf.stream.code
        )
        return plan or self._file_plan(buf)

    def _file_plan(self, buf: _Buffer) -> PlannedMessage:
        stream = buf.stream
        return plan_file(
            buf.raws if buf.raws is not None else buf.texts,
            buf.pos,
            buf.pending,
            self._file_cap,
            title=self._header(stream).strip(),
            noun=stream.noun,
            filename=stream.filename,
            levels=buf.levels if stream.code else None,
            time_at=buf.time_at,
        )
