"""Reassembly of BattlEye multipart command replies, within byte caps (sans-IO).

Why a module of its own: a reply may arrive more than once for one sequence number, and the
protocol gives the copies no id. The client's only way to recover a lost part is to send the
command again under the same number (BERConProtocol.txt has no per-part request and makes
loss the client's job; reference §1.3 [V:S1]). What the server then does is undocumented
(§1.3 [I]): it answers again with every part, either repeating its first answer or running
the command anew, so the second answer may differ from the first (a player joined between):
another part count, or other bytes under the same index. And a hostile or broken server can
send parts forever. So the rules here:

* Answers with different part counts are assembled apart (at most two counts per command);
  the first complete one wins. Parts are never mixed across counts.
* A part that repeats an index with the same bytes is a duplicate and is ignored; with other
  bytes it proves a second, different answer, so what was gathered for that count is dropped
  and assembly starts again from the newer part. (A part of the older answer that was never
  seen before cannot be told apart, since the protocol carries no reply id; after a
  conflict it is likely already in, since it was sent first.)
* Bytes held are capped per reply and over all replies; a part that would cross a cap fails
  its command with `ReplyTooLarge` and frees what that command held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEFAULT_MAX_BUFFERED_BYTES",
    "DEFAULT_MAX_REPLY_BYTES",
    "Reassembler",
    "ReplyTooLarge",
]

DEFAULT_MAX_REPLY_BYTES: Final = 4 << 20
"""One reply: a `players` of 100 players is ~10 KB and `bans` with 20,000 bans ~1.6 MB;
the protocol allows 255 parts of 64 KB, ~16 MB, which no console output comes near."""

DEFAULT_MAX_BUFFERED_BYTES: Final = 16 << 20
"""All replies being assembled at once (up to 256 commands in flight)."""

_COUNTS_PER_REPLY: Final = 2
"""Part counts assembled side by side for one command: its first answer and a resend's."""


@dataclass(frozen=True, slots=True)
class ReplyTooLarge:
    """A reply crossed a byte cap and was dropped; its command has failed.

    `size` is what would have been held with the offending part, `limit` the cap crossed:
    the per-reply cap, or the cap over all replies in flight when `in_flight` is set.
    """

    seq: int
    size: int
    limit: int
    in_flight: bool = False


class _Answer:
    """The parts gathered for one part count."""

    __slots__ = ("have", "parts", "size")

    def __init__(self, total: int) -> None:
        self.parts: list[bytes | None] = [None] * total
        self.have = 0
        self.size = 0


class _Reply:
    __slots__ = ("answers", "size")

    def __init__(self) -> None:
        self.answers: dict[int, _Answer] = {}  # part count -> answer, oldest first
        self.size = 0


class Reassembler:
    """Multipart replies being assembled, keyed by sequence number.

    Counters: `duplicates` (parts seen again, same bytes), `conflicts` (same index, other
    bytes: a second, different answer), `too_large` (replies dropped at a cap).
    """

    def __init__(
        self,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    ) -> None:
        if max_reply_bytes < 1 or max_buffered_bytes < max_reply_bytes:
            raise ValueError("need 1 <= max_reply_bytes <= max_buffered_bytes")
        self.max_reply_bytes = max_reply_bytes
        self.max_buffered_bytes = max_buffered_bytes
        self.buffered = 0
        """Bytes held over all replies."""
        self.duplicates = 0
        self.conflicts = 0
        self.too_large = 0
        self._replies: dict[int, _Reply] = {}

    def __len__(self) -> int:
        return len(self._replies)

    def add(self, seq: int, total: int, index: int, data: bytes) -> bytes | ReplyTooLarge | None:
        """Take part `index` of `total`; return the joined reply once complete, a
        `ReplyTooLarge` if this part crossed a cap (the reply is then forgotten), else None."""
        reply = self._replies.get(seq)
        if reply is None:
            reply = self._replies[seq] = _Reply()
        answer = reply.answers.get(total)
        if answer is not None:
            held = answer.parts[index]
            if held == data:
                self.duplicates += 1
                return None
            if held is not None:
                self.conflicts += 1
                self._forget(reply, total)
                answer = None
        if answer is None:
            if len(reply.answers) >= _COUNTS_PER_REPLY:
                self._forget(reply, next(iter(reply.answers)))
            answer = reply.answers[total] = _Answer(total)
        n = len(data)
        if reply.size + n > self.max_reply_bytes:
            return self._overflow(seq, reply.size + n, self.max_reply_bytes, False)
        if self.buffered + n > self.max_buffered_bytes:
            return self._overflow(seq, self.buffered + n, self.max_buffered_bytes, True)
        answer.parts[index] = data
        answer.have += 1
        answer.size += n
        reply.size += n
        self.buffered += n
        if answer.have < total:
            return None
        joined = b"".join(p for p in answer.parts if p is not None)
        self.discard(seq)
        return joined

    def discard(self, seq: int) -> None:
        """Forget what is held for `seq` (answered, cancelled or timed out)."""
        reply = self._replies.pop(seq, None)
        if reply is not None:
            self.buffered -= reply.size

    def clear(self) -> None:
        self._replies.clear()
        self.buffered = 0

    def _forget(self, reply: _Reply, total: int) -> None:
        answer = reply.answers.pop(total)
        reply.size -= answer.size
        self.buffered -= answer.size

    def _overflow(self, seq: int, size: int, limit: int, in_flight: bool) -> ReplyTooLarge:
        self.discard(seq)
        self.too_large += 1
        return ReplyTooLarge(seq, size, limit, in_flight)
