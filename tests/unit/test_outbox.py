"""The outbox's batching, splitting, flood and pacing rules, against a recording sender."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

import pytest

from bot.embeds import code_block, escape_code
from bot.outbox import Outbox
from bot.outbox_plan import OutMessage, file_summary, plan_message, text_units
from bot.outbox_types import (
    ChannelUnavailable,
    MessageGone,
    OutboxConfig,
    Rejected,
    RetryAfter,
    Stream,
    Transient,
)
from bot.pacing import ChannelPacer

FAST = OutboxConfig(
    rate_limit=100,
    rate_per=1.0,
    rate_margin=0.0,
    linger=0.02,
    mark_linger=0.05,
    flood_seconds=1000.0,
    retry_base=0.05,
    retry_cap=0.1,
)


class Recorder:
    """A channel that records what reached it, can fail on cue and answers after `delay`."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.sent: list[OutMessage] = []
        self.edits: list[tuple[int, OutMessage]] = []
        self.deleted: list[int] = []
        self.attempts: list[float] = []
        self.failures: deque[Exception | None] = deque()
        self.in_flight = 0
        self.most_in_flight = 0
        self._next_id = 1000

    async def _call(self) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.attempts.append(time.monotonic())
            await asyncio.sleep(self.delay)
            failure = self.failures.popleft() if self.failures else None
            if failure is not None:
                raise failure
        finally:
            self.in_flight -= 1

    async def send(self, message: OutMessage) -> int:
        await self._call()
        self.sent.append(message)
        self._next_id += 1
        return self._next_id

    async def edit(self, message_id: int, message: OutMessage) -> None:
        await self._call()
        self.edits.append((message_id, message))

    async def delete(self, message_id: int) -> None:
        await self._call()
        self.deleted.append(message_id)

    def lines(self) -> list[str]:
        """Every line that arrived, from code blocks and files, in order."""
        out: list[str] = []
        for message in self.sent:
            if message.file is not None:
                out += message.file.data.decode().splitlines()
            elif message.content:
                body = message.content.split("```\n", 1)[1].rsplit("\n```", 1)[0]
                out += [line.replace("`\u200b", "`") for line in body.split("\n")]
        return out


def log_stream(commits: list[tuple[str, int]] | None = None, key: str = "log:1:console") -> Stream:
    async def delivered(tag: str, end: int) -> None:
        if commits is not None:
            commits.append((tag, end))

    return Stream(
        key=key, title="alpha · console", filename="alpha-console", on_delivered=delivered
    )


def numbered(count: int, width: int = 30) -> tuple[list[str], list[int]]:
    texts = [f"line {i:06d} ".ljust(width, ".") for i in range(count)]
    ends, total = [], 0
    for text in texts:
        total += len(text) + 1
        ends.append(total)
    return texts, ends


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


@pytest.fixture
async def running() -> AsyncIterator[Callable[..., tuple[Outbox, Recorder]]]:
    boxes: list[Outbox] = []

    def make(config: OutboxConfig = FAST, delay: float = 0.0) -> tuple[Outbox, Recorder]:
        sender = Recorder(delay)
        box = Outbox(42, sender, config=config)
        box.start()
        boxes.append(box)
        return box, sender

    yield make
    for box in boxes:
        await box.close(1.0)


# -- pure rules -----------------------------------------------------------------------------


def test_plan_message_fits_the_limit_and_keeps_order() -> None:
    texts, _ = numbered(200)
    plan = plan_message(texts, 0, 2000, "", code=True)
    assert plan is not None and plan.message.content is not None
    content = plan.message.content
    assert len(content) <= 2000 and content.startswith("```\n") and content.endswith("\n```")
    assert content[4:-4].split("\n") == texts[: plan.count]
    assert len(content) + len(texts[plan.count]) + 1 > 2000  # as many as fit
    rest = plan_message(texts, plan.count, 2000, "**a**\n", code=True)
    assert rest is not None and rest.message.content is not None
    assert rest.message.content.startswith("**a**\n```\n" + texts[plan.count] + "\n")


def test_triple_backticks_cannot_close_the_block() -> None:
    for line in ["```", "``````", "a```b", "`` ``", "````"]:
        assert "``" not in escape_code(line)
        assert escape_code(line).replace("\u200b", "") == line
        assert code_block([line]).count("```") == 2  # only the fences
    plan = plan_message(["```", "x"], 0, 2000, "", code=True)
    assert plan is not None and plan.message.content is not None
    assert plan.message.content.count("```") == 2


def test_length_counts_utf16_units_and_a_line_too_long_is_refused() -> None:
    assert text_units("abc") == 3 and text_units("😀") == 2 and text_units("é") == 1
    emoji = ["😀" * 600] * 3  # 1,200 units each: one per message, not three
    plan = plan_message(emoji, 0, 2000, "", code=True)
    assert plan is not None and plan.count == 1
    assert plan_message(["x" * 1993], 0, 2000, "", code=True) is None
    plain = plan_message(["**a**: hi", "**b**: yo"], 0, 2000, "", code=False)
    assert plain is not None and plain.message.content == "**a**: hi\n**b**: yo"


def test_file_summary_counts_levels_and_span() -> None:
    text = file_summary("**alpha · console**", 12345, "lines", [20, 30, 40, 40], 0.0, 61.0)
    assert text.startswith("**alpha · console** 📄 12,345 lines (2 errors, 1 warnings)")
    assert "00:00:00 to 00:01:01 UTC" in text
    assert file_summary("", 3, "lines", [20], None, None).startswith("📄 3 lines (0 errors, 0 w")
    assert "(" not in file_summary("", 3, "messages", None, None, None)


def test_pacer_counts_a_window_and_honours_blocks() -> None:
    now = [100.0]
    pacer = ChannelPacer(limit=2, per=5.0, margin=0.0, clock=lambda: now[0])
    assert pacer.delay() == 0
    pacer.note()
    now[0] += 1
    pacer.note()
    assert pacer.delay() == pytest.approx(4.0)
    now[0] += 4
    assert pacer.delay() == 0
    pacer.block(2.5)
    assert pacer.delay() == pytest.approx(2.5)
    now[0] += 3
    assert pacer.delay() == 0


# -- the outbox at work ---------------------------------------------------------------------


async def test_lines_are_batched_in_order_and_cursors_follow_acceptance(running) -> None:
    box, sender = running()
    commits: list[tuple[str, int]] = []
    stream = log_stream(commits)
    texts, ends = numbered(400)
    for i in range(0, 400, 37):
        box.add_lines(
            stream, texts[i : i + 37], ends=ends[i : i + 37], tag="f1", mark=ends[i : i + 37][-1]
        )
    await until(lambda: box.idle)
    assert sender.lines() == texts
    assert all(m.file is None and len(m.content or "") <= 2000 for m in sender.sent)
    assert len(sender.sent) == 7  # 64 lines of 31 characters per message
    assert commits[-1] == ("f1", ends[-1])
    assert [c[1] for c in commits] == sorted(c[1] for c in commits)
    assert sender.most_in_flight == 1


async def test_a_flood_goes_out_as_one_file_with_a_summary(running) -> None:
    config = OutboxConfig(rate_limit=1, rate_per=1.0, linger=0.01, flood_seconds=3.0)
    box, sender = running(config)
    commits: list[tuple[str, int]] = []
    texts, ends = numbered(20000)
    levels = [40 if i % 1000 == 0 else 30 if i % 500 == 0 else 20 for i in range(20000)]
    box.add_lines(log_stream(commits), texts, levels=levels, ends=ends, tag="f1", at=3600.0)
    await until(lambda: box.idle)
    [message] = sender.sent
    assert message.file is not None and message.file.filename.startswith("alpha-console-")
    assert message.file.filename.endswith(".log")
    assert message.content == (
        "📄 20,000 lines (20 errors, 20 warnings), 01:00:00 to 01:00:00 UTC"
        " — too many to post as messages, attached as a file"
    )
    assert sender.lines() == texts and commits == [("f1", ends[-1])]


async def test_files_are_split_at_the_size_cap_in_order(running) -> None:
    config = OutboxConfig(
        rate_limit=50, rate_per=1.0, linger=0.01, flood_seconds=0.1, max_file_bytes=10_000
    )
    box, sender = running(config)
    texts, ends = numbered(2000)  # 62,000 characters; a flood is more than 10,000
    box.add_lines(log_stream(), texts, ends=ends, tag="f1")
    await until(lambda: box.idle)
    files = [m.file for m in sender.sent if m.file is not None]
    assert len(files) >= 5 and all(len(f.data) <= 10_000 for f in files)
    assert sender.lines() == texts


async def test_a_line_too_long_for_a_message_goes_as_a_file(running) -> None:
    box, sender = running()
    box.add_lines(log_stream(), ["short", "y" * 5000, "after"], ends=[6, 5007, 5013], tag="f")
    await until(lambda: box.idle)
    assert [m.file is not None for m in sender.sent] == [False, True]
    assert sender.lines() == ["short", "y" * 5000, "after"]


async def test_a_429_blocks_the_channel_and_the_cursor_waits_for_acceptance(running) -> None:
    box, sender = running()
    commits: list[tuple[str, int]] = []
    sender.failures.extend([RetryAfter(0.3), None])
    box.add_lines(log_stream(commits), ["one", "two"], ends=[4, 8], tag="f")
    await until(lambda: len(sender.attempts) == 1)
    await asyncio.sleep(0.15)
    assert commits == [] and len(sender.attempts) == 1  # nothing during the window
    await until(lambda: box.idle)
    assert sender.attempts[1] - sender.attempts[0] >= 0.3
    assert commits == [("f", 8)] and sender.lines() == ["one", "two"]


async def test_requests_are_paced_and_never_overlap(running) -> None:
    config = OutboxConfig(rate_limit=3, rate_per=0.4, rate_margin=0.0, linger=0.01)
    box, sender = running(config, delay=0.01)
    futures = [box.post(OutMessage(content=f"alert {i}")) for i in range(9)]
    ids = await asyncio.wait_for(asyncio.gather(*futures), 5.0)
    assert len(set(ids)) == 9 and [m.content for m in sender.sent] == [
        f"alert {i}" for i in range(9)
    ]
    for first, fourth in zip(sender.attempts, sender.attempts[3:], strict=False):
        assert fourth - first >= 0.4
    assert sender.most_in_flight == 1


async def test_queued_edits_of_a_message_collapse_to_the_latest(running) -> None:
    box, sender = running()
    box.pacer.block(0.2)
    futures = [box.edit(7, OutMessage(content=f"v{i}")) for i in range(5)]
    assert await asyncio.wait_for(asyncio.gather(*futures), 5.0) == [7] * 5
    assert [(mid, m.content) for mid, m in sender.edits] == [(7, "v4")]


async def test_an_edit_of_a_deleted_message_tells_the_caller(running) -> None:
    box, sender = running()
    sender.failures.append(MessageGone("unknown message"))
    with pytest.raises(MessageGone):
        await asyncio.wait_for(box.edit(9, OutMessage(content="x")), 5.0)
    assert await asyncio.wait_for(box.post(OutMessage(content="next")), 5.0) > 0


async def test_transient_errors_are_retried(running) -> None:
    box, sender = running()
    sender.failures.extend([Transient("502"), Transient("reset"), None])
    assert await asyncio.wait_for(box.post(OutMessage(content="x")), 5.0) > 0
    assert len(sender.attempts) == 3


async def test_a_refused_message_is_retried_as_a_file(running) -> None:
    box, sender = running()
    sender.failures.append(Rejected("400"))
    box.add_lines(log_stream(), ["a", "b"], ends=[2, 4], tag="f")
    await until(lambda: box.idle)
    assert len(sender.attempts) == 2 and [m.file is not None for m in sender.sent] == [True]
    assert sender.lines() == ["a", "b"]


async def test_filtered_out_lines_still_move_the_cursor(running) -> None:
    box, sender = running()
    commits: list[tuple[str, int]] = []
    stream = log_stream(commits)
    box.add_lines(stream, [], ends=[], tag="f", mark=500)
    box.add_lines(stream, [], ends=[], tag="f", mark=900)
    await until(lambda: commits == [("f", 900)])
    assert sender.sent == []


async def test_plain_streams_have_no_code_block_and_files_hold_the_raw_text(running) -> None:
    box, sender = running()
    chat = Stream(key="chat:1", title="alpha · chat", filename="alpha-chat", code=False)
    box.add_lines(chat, ["**\\@everyone**: hi"], raws=["@everyone: hi"])
    await until(lambda: box.idle)
    assert [m.content for m in sender.sent] == ["**\\@everyone**: hi"]


async def test_several_streams_get_a_title_each(running) -> None:
    box, sender = running()
    box.add_lines(log_stream(key="log:1:console"), ["c1"], ends=[3], tag="f")
    other = Stream(key="log:1:rpt", title="alpha · rpt", filename="alpha-rpt")
    box.add_lines(other, ["r1"], ends=[3], tag="g")
    await until(lambda: box.idle)
    contents = sorted(m.content or "" for m in sender.sent)
    assert contents == ["**alpha · console**\n```\nc1\n```", "**alpha · rpt**\n```\nr1\n```"]


async def test_close_lets_the_request_in_flight_finish(running) -> None:
    box, sender = running(delay=0.3)
    commits: list[tuple[str, int]] = []
    stream = log_stream(commits)
    box.add_lines(stream, ["first"], ends=[6], tag="f")
    await until(lambda: sender.in_flight == 1)
    box.add_lines(stream, ["second"], ends=[13], tag="f")
    await box.close(2.0)
    assert commits == [("f", 6)] and sender.lines() == ["first"]  # "second" is re-read later


async def test_long_runs_compact_without_losing_order(running) -> None:
    config = OutboxConfig(rate_limit=1000, rate_per=1.0, linger=0.0, flood_seconds=1000.0)
    box, sender = running(config)
    texts, ends = numbered(12000, width=8)
    for i in range(0, 12000, 500):
        box.add_lines(log_stream(), texts[i : i + 500], ends=ends[i : i + 500], tag="f")
        await asyncio.sleep(0)
    await until(lambda: box.idle, 20.0)
    assert sender.lines() == texts


# -- a channel that refuses the bot (403 / unknown channel) ----------------------------------


async def test_an_unwritable_channel_stops_keeps_the_newest_lines_and_resumes(running) -> None:
    config = OutboxConfig(
        rate_limit=100,
        rate_per=1.0,
        rate_margin=0.0,
        linger=0.02,
        flood_seconds=1000.0,
        unwritable_retry=60.0,
        unwritable_max_lines=50,
        unwritable_max_requests=3,
    )
    box, sender = running(config)
    told: list[tuple[bool, int]] = []
    box._on_trouble = lambda _box, trouble, unwritable: told.append(
        (unwritable, trouble.dropped_lines)
    )
    sender.failures.append(ChannelUnavailable("403 Missing Permissions", 50013))
    stream = log_stream()
    box.add_lines(stream, ["first"])
    await until(lambda: not box.writable)
    assert told == [(True, 0)]
    texts, _ = numbered(500)
    for start in range(0, 500, 50):  # lines keep coming: only the newest 50 stay queued
        box.add_lines(stream, texts[start : start + 50])
        assert box.pending_lines <= 50
    futures = [box.post(OutMessage(content=f"alert {i}")) for i in range(5)]
    for dropped in futures[:2]:  # the oldest requests over the cap fail at once
        with pytest.raises(ChannelUnavailable):
            await asyncio.wait_for(dropped, 1.0)
    await asyncio.sleep(0.3)
    assert len(sender.attempts) == 1  # no retry before `unwritable_retry`
    box.retry_now()  # bound again
    await asyncio.wait_for(asyncio.gather(*futures[2:]), 5.0)
    await until(lambda: box.idle)
    assert told == [(True, 0), (False, 451)]
    assert box.writable
    note = sender.sent[0].content or ""
    assert "451 lines" in note and "dropped" in note
    assert [m.content for m in sender.sent[1:4]] == ["alert 2", "alert 3", "alert 4"]
    blocks = Recorder()
    blocks.sent = [m for m in sender.sent if m.file or "```" in (m.content or "")]
    assert blocks.lines() == texts[-50:]  # the newest lines, in order


async def test_an_unwritable_channel_is_tried_again_after_the_long_backoff(running) -> None:
    config = OutboxConfig(rate_limit=100, rate_per=1.0, linger=0.02, unwritable_retry=0.4)
    box, sender = running(config)
    sender.failures.extend([ChannelUnavailable("403", 50001), ChannelUnavailable("403", 50001)])
    future = box.post(OutMessage(content="alert"))
    await until(lambda: len(sender.attempts) == 2, 3.0)
    assert sender.attempts[1] - sender.attempts[0] >= 0.4
    assert await asyncio.wait_for(future, 3.0) > 0
    assert len(sender.attempts) == 3 and box.writable
