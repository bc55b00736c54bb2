"""Chat from Discord into a game: one line per message, escaped, capped, rate-limited, audited.

The front end decides who may speak (moderator level for the server) and what the text is
(mentions already rendered as names); this service decides what reaches the game.

- One line: control characters and newlines become spaces (a newline would end the RCon or
  console command early), prefixed with the author's name so players know who spoke.
- Capped to what the game takes: BattlEye `say -1` carries about 400 characters
  (`core.games.arma3_link.SAY_LIMIT`), Minecraft chat 256.
- Per member, at most `rate` messages per `per` seconds: a pasted wall of text or a script
  in the channel cannot flood the game; the excess is dropped, not queued.
- Audited without flooding the audit log: at most one row per member and server per
  `audit_window` seconds, counting the messages sent since the previous row (the Discord
  channel itself keeps every message's text).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import StrEnum

from core.errors import LanguardError
from core.games.arma3_link import SAY_LIMIT
from core.services.audit import Actor, AuditLog
from core.services.ban_targets import clean_text
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor

__all__ = ["ChatOutcome", "ChatService", "game_line"]

_log = logging.getLogger(__name__)

GAME_LIMITS = {"arma3": SAY_LIMIT, "minecraft": 256}
"""Characters a game's say/chat takes in one line."""
DEFAULT_LIMIT = 256
NAME_LIMIT = 32
AUDIT_ACTION = "chat.from_discord"


class ChatOutcome(StrEnum):
    SENT = "sent"
    EMPTY = "empty"
    RATE_LIMITED = "rate limited"
    NOT_RUNNING = "not running"
    FAILED = "failed"


def game_line(author: str, text: str, limit: int) -> str:
    """`author: text` as one clean line of at most `limit` characters ("" when no text)."""
    body = clean_text(text, 10 * limit)
    if not body:
        return ""
    name = clean_text(author, NAME_LIMIT) or "someone"
    line = f"{name}: {body}"
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


class _Window:
    """Per key, the times of the last `rate` events; at most `capacity` keys remembered."""

    def __init__(self, rate: int, per: float, capacity: int, clock: Callable[[], float]) -> None:
        self.rate, self.per, self.capacity, self._clock = rate, per, capacity, clock
        self._hits: OrderedDict[Hashable, deque[float]] = OrderedDict()

    def allow(self, key: Hashable) -> bool:
        now = self._clock()
        hits = self._hits.pop(key, None) or deque(maxlen=self.rate)
        self._hits[key] = hits
        while len(self._hits) > self.capacity:
            self._hits.popitem(last=False)
        if len(hits) == self.rate and now - hits[0] < self.per:
            return False
        hits.append(now)
        return True


@dataclass
class _AuditMark:
    last: float
    unrecorded: int = 0


class ChatService:
    def __init__(
        self,
        supervisor: Supervisor,
        audit: AuditLog,
        *,
        rate: int = 5,
        per: float = 10.0,
        audit_window: float = 60.0,
        game_timeout: float = 10.0,
        capacity: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sup = supervisor
        self._audit = audit
        self._clock = clock
        self._rates = _Window(rate, per, capacity, clock)
        self.rate_per = per
        self.audit_window = audit_window
        self._game_timeout = game_timeout
        self._capacity = capacity
        self._marks: OrderedDict[tuple[int | None, int, bool], _AuditMark] = OrderedDict()

    def limit_for(self, server_id: int) -> int:
        return GAME_LIMITS.get(self._sup.get(server_id).game, DEFAULT_LIMIT)

    async def from_discord(
        self, actor: Actor, server_id: int, author: str, text: str
    ) -> ChatOutcome:
        """Say `author: text` in the game of `server_id` for a member already allowed to."""
        server = self._sup.get(server_id)
        line = game_line(author, text, self.limit_for(server_id))
        if not line:
            return ChatOutcome.EMPTY
        if not self._rates.allow((actor.id, server_id)):
            _log.debug("chat from %s to %s dropped: over the rate", actor.name, server.name)
            return ChatOutcome.RATE_LIMITED
        link = server.link
        if server.state is not ServerState.RUNNING or link is None:
            _log.debug("chat from %s dropped: %s is not running", actor.name, server.name)
            return ChatOutcome.NOT_RUNNING
        try:
            async with asyncio.timeout(self._game_timeout):
                await link.say(line)
        except (LanguardError, TimeoutError, OSError) as exc:
            reason = str(exc) if isinstance(exc, LanguardError) else "the game did not answer"
            _log.info("chat from %s to %s not delivered: %s", actor.name, server.name, reason)
            await self._record(actor, server_id, line, ok=False, result=reason)
            return ChatOutcome.FAILED
        await self._record(actor, server_id, line, ok=True, result="sent")
        return ChatOutcome.SENT

    async def _record(
        self, actor: Actor, server_id: int, line: str, *, ok: bool, result: str
    ) -> None:
        """One row per member, server and outcome per window; the rows in between are
        counted into the next one."""
        key = (actor.id, server_id, ok)
        now = self._clock()
        mark = self._marks.pop(key, None)
        if mark is not None and now - mark.last < self.audit_window:
            mark.unrecorded += 1
            self._marks[key] = mark
            return
        earlier = mark.unrecorded if mark is not None else 0
        self._marks[key] = _AuditMark(now)
        while len(self._marks) > self._capacity:
            self._marks.popitem(last=False)
        arguments: dict[str, object] = {"message": line}
        if earlier:
            arguments["earlier_messages"] = earlier
        await self._audit.record(
            actor, AUDIT_ACTION, server_id=server_id, arguments=arguments, result=result, ok=ok
        )
