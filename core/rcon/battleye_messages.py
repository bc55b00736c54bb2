"""Server messages waiting for their reader, bounded by count and by bytes.

Why bounded both ways: the server decides how many console lines it sends and how long they
are (up to a 64 KB datagram each), and nobody may be reading. A count alone would let 10,000
long lines hold 650 MB; so the oldest are dropped once either bound is crossed, and counted.
"""

from __future__ import annotations

import asyncio
from collections import deque

from core.rcon.battleye import ServerMessage

__all__ = ["MessageBuffer", "MessageStream"]


class MessageBuffer:
    """A FIFO of `ServerMessage`s; `push` never blocks, the oldest give way."""

    def __init__(self, max_messages: int = 10_000, max_bytes: int = 4 << 20) -> None:
        if max_messages < 1 or max_bytes < 1:
            raise ValueError("max_messages and max_bytes must be positive")
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.dropped = 0
        """Messages pushed out before anyone read them."""
        self.bytes = 0
        """UTF-8 size of the texts held."""
        self._items: deque[tuple[ServerMessage, int]] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def push(self, message: ServerMessage) -> None:
        size = len(message.text.encode())
        items = self._items
        items.append((message, size))
        self.bytes += size
        while len(items) > self.max_messages or (self.bytes > self.max_bytes and len(items) > 1):
            self.bytes -= items.popleft()[1]
            self.dropped += 1
        if self.bytes > self.max_bytes:  # one message alone is over the bound
            items.clear()
            self.bytes = 0
            self.dropped += 1
        self._ready.set()

    def close(self) -> None:
        """Wake the reader; it gets what is left, then the end."""
        self._closed = True
        self._ready.set()

    async def get(self) -> ServerMessage | None:
        """The oldest message, waiting for one; None once closed and empty."""
        while not self._items:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        message, size = self._items.popleft()
        self.bytes -= size
        return message


class MessageStream:
    """Async iterator over a buffer's messages; ends when the buffer is closed and empty."""

    def __init__(self, buffer: MessageBuffer) -> None:
        self._buffer = buffer

    def __aiter__(self) -> MessageStream:
        return self

    async def __anext__(self) -> ServerMessage:
        message = await self._buffer.get()
        if message is None:
            raise StopAsyncIteration
        return message
