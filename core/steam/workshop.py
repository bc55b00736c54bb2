"""Steam Workshop item details (title, size, last update) from the public Web API.

`POST ISteamRemoteStorage/GetPublishedFileDetails/v1/` with the form
`itemcount=N&publishedfileids[0]=<id>...` answers without an API key (reference §5, S14).
Per item: `result` (1 = found), `title`, `file_size` (a number in some answers and a string
in others, so both are read), `time_updated`, `consumer_app_id` (107410 for Arma 3).
The base URL is a setting (LANGUARD_WORKSHOP_API_URL) so tests talk to a local fake; every
answer is read under a size cap and a total timeout.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from core.config import WORKSHOP_API_URL
from core.steam.errors import WorkshopUnavailable

__all__ = ["DEFAULT_API_URL", "WorkshopClient", "WorkshopItem"]

_log = logging.getLogger(__name__)

DEFAULT_API_URL = WORKSHOP_API_URL
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
BATCH = 100
"""Items asked per request (one POST per batch, §5 "batch all mods in one POST")."""
_HEADERS = {"User-Agent": "Languard-workshop/1"}
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class WorkshopItem:
    item_id: int
    title: str
    size: int
    time_updated: int
    app_id: int | None
    """The game the item is for (107410 = Arma 3); None when the answer omits it."""


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _item(raw: Any) -> WorkshopItem | None:
    if not isinstance(raw, dict) or _int(raw.get("result")) != 1:
        return None
    item_id = _int(raw.get("publishedfileid"))
    if item_id <= 0:
        return None
    app_id = _int(raw.get("consumer_app_id") or raw.get("consumer_appid")) or None
    return WorkshopItem(
        item_id=item_id,
        title=str(raw.get("title") or "").strip()[:200],
        size=_int(raw.get("file_size")),
        time_updated=_int(raw.get("time_updated")),
        app_id=app_id,
    )


class WorkshopClient:
    """Asks the Workshop about items; owns its HTTP session unless one is given."""

    def __init__(
        self,
        api_url: str = DEFAULT_API_URL,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 20.0,
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.api_url = api_url
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_bytes = max_bytes

    async def __aenter__(self) -> WorkshopClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def details(self, item_ids: Iterable[int]) -> dict[int, WorkshopItem]:
        """Details of each item found; unknown, hidden or deleted items are absent."""
        ids = list(dict.fromkeys(int(i) for i in item_ids if int(i) > 0))
        found: dict[int, WorkshopItem] = {}
        for start in range(0, len(ids), BATCH):
            for item in await self._batch(ids[start : start + BATCH]):
                found[item.item_id] = item
        return found

    async def _batch(self, ids: list[int]) -> list[WorkshopItem]:
        form = {"itemcount": str(len(ids))}
        form.update({f"publishedfileids[{n}]": str(i) for n, i in enumerate(ids)})
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                self.api_url, data=form, headers=_HEADERS, timeout=self._timeout
            ) as response:
                if response.status != 200:
                    raise WorkshopUnavailable(
                        "the Steam Workshop did not answer (HTTP {status}); try again later",
                        status=response.status,
                    )
                body = await self._read(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            _log.info("Workshop details request failed: %r", exc)
            raise WorkshopUnavailable(
                "the Steam Workshop could not be reached; try again later"
            ) from None
        try:
            payload = json.loads(body)
            details = payload["response"].get("publishedfiledetails") or []
        except (ValueError, KeyError, TypeError, AttributeError):
            raise WorkshopUnavailable(
                "the Steam Workshop sent an answer that could not be read"
            ) from None
        if not isinstance(details, list):
            return []
        return [item for raw in details if (item := _item(raw)) is not None]

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        if (response.content_length or 0) > self._max_bytes:
            raise WorkshopUnavailable("the Steam Workshop's answer is too large")
        body = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > self._max_bytes:
                raise WorkshopUnavailable("the Steam Workshop's answer is too large")
        return bytes(body)
