"""The sends, edits and deletes waiting in one outbox, in order, one at a time in flight.

Why a queue of its own: alerts and status edits must keep their order and never be
lost, while a burst of edits of the same status message collapses into the latest one
(each caller still hears the id). Lines are batched elsewhere (`bot.outbox_buffer`).
"""

from __future__ import annotations

import asyncio
from collections import deque

from bot.outbox_plan import OutMessage
from bot.outbox_types import Request

__all__ = ["RequestQueue"]


def _future() -> asyncio.Future[int]:
    return asyncio.get_running_loop().create_future()


class RequestQueue:
    """Requests in order; `in_flight` is the one being answered (never replaced or trimmed)."""

    def __init__(self) -> None:
        self.items: deque[Request] = deque()
        self.in_flight: Request | None = None

    def __len__(self) -> int:
        return len(self.items)

    def add(self, request: Request) -> asyncio.Future[int]:
        """Queue a request; the future hears the message id (or why it failed)."""
        future = _future()
        request.futures.append(future)
        self.items.append(request)
        return future

    def merge_edit(self, message_id: int, message: OutMessage) -> asyncio.Future[int] | None:
        """Replace a queued edit of the same message (latest wins); None when there is none."""
        for request in self.items:
            if (
                request is not self.in_flight
                and request.kind == "edit"
                and request.message_id == message_id
            ):
                request.message = message
                future = _future()
                request.futures.append(future)
                return future
        return None

    @staticmethod
    def refused() -> asyncio.Future[int]:
        """The future of a request made after `close()`."""
        future = _future()
        future.set_exception(RuntimeError("the outbox is closed"))
        return future

    def resolve(self, request: Request, result: int) -> None:
        """The request is answered: it leaves the queue and its callers hear `result`."""
        self.items.remove(request)
        for future in request.futures:
            if not future.done():
                future.set_result(result)

    def reject(self, request: Request, exc: BaseException) -> None:
        """The request cannot succeed: it leaves the queue and its callers hear why."""
        self.items.remove(request)
        for future in request.futures:
            if not future.done():
                future.set_exception(exc)

    def cancel_all(self) -> None:
        for request in self.items:
            for future in request.futures:
                if not future.done():
                    future.cancel()
        self.items.clear()
