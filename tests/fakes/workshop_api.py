"""A fake of Steam's GetPublishedFileDetails endpoint on 127.0.0.1 (reference §5, S14).

It answers the form `itemcount=N&publishedfileids[i]=<id>` with
`{"response": {"result": 1, "resultcount": N, "publishedfiledetails": [...]}}`; an unknown
item gets `result: 9` like a missing or hidden one. `file_size` is sent as a string for the
ids in `size_as_string` (both forms occur). Knobs: `status` (an HTTP error), `pad` (bytes of
padding that make the answer too large), `garbage` (a body that is not JSON).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FakeWorkshopApi", "fake_workshop_api"]

PATH = "/ISteamRemoteStorage/GetPublishedFileDetails/v1/"


@dataclass
class FakeWorkshopApi:
    items: dict[int, dict[str, Any]]
    size_as_string: set[int] = field(default_factory=set)
    status: int = 200
    pad: int = 0
    garbage: bool = False
    requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def detail(self, item_id: int) -> dict[str, Any]:
        item = self.items.get(item_id)
        if item is None:
            return {"publishedfileid": str(item_id), "result": 9}
        size = int(item.get("size", 0))
        return {
            "publishedfileid": str(item_id),
            "result": 1,
            "creator": "76561197960287930",
            "creator_app_id": 107410,
            "consumer_app_id": int(item.get("app_id", 107410)),
            "filename": "",
            "file_size": str(size) if item_id in self.size_as_string else size,
            "file_url": "",
            "hcontent_file": "4412930290493034932",
            "title": item.get("title", f"Mod {item_id}"),
            "description": "",
            "time_created": 1500000000,
            "time_updated": int(item.get("time_updated", 1700000000)),
            "visibility": 0,
            "banned": 0,
            "tags": [{"tag": "Mod"}],
        }

    async def handle(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.requests.append(form)
        if self.status != 200:
            return web.Response(status=self.status, text="busy")
        if self.garbage:
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        count = int(form.get("itemcount", "0"))
        ids = [int(form[f"publishedfileids[{n}]"]) for n in range(count)]
        body: dict[str, Any] = {
            "response": {
                "result": 1,
                "resultcount": len(ids),
                "publishedfiledetails": [self.detail(i) for i in ids],
            }
        }
        if self.pad:
            body["padding"] = "x" * self.pad
        return web.json_response(body)


@contextlib.asynccontextmanager
async def fake_workshop_api(items: dict[int, dict[str, Any]]) -> AsyncIterator[FakeWorkshopApi]:
    api = FakeWorkshopApi(items)
    app = web.Application()
    app.router.add_post(PATH, api.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    api.url = f"http://{host}:{port}{PATH}"
    try:
        yield api
    finally:
        await runner.cleanup()
