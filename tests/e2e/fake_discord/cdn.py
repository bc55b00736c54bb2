"""The CDN: attachment bytes (uploaded by the bot or handed to users by tests).

Attachment URLs in payloads are absolute URLs on this server, so discord.py's
`Attachment.read()` (which fetches `attachment.url`) works without patching. Other
asset paths (avatars, icons) answer 404: discord.py's `Asset.BASE` is pointed here so
nothing can reach the real CDN.
"""

from __future__ import annotations

from aiohttp import web

from .web_common import state_of


def add_routes(app: web.Application) -> None:
    app.router.add_get("/attachments/{channel_id}/{file_id}/{filename}", attachment)
    app.router.add_get("/cdn/{tail:.*}", missing_asset)


async def attachment(request: web.Request) -> web.Response:
    state = state_of(request)
    state.cdn_fetches.append((request.path, state.clock.now()))
    raw = request.match_info["file_id"]
    stored = state.cdn.get(int(raw)) if raw.isdigit() else None
    if stored is None or stored.filename != request.match_info["filename"]:
        return web.Response(status=404, text="Not Found")
    return web.Response(
        body=stored.data, content_type=stored.content_type or "application/octet-stream"
    )


async def missing_asset(request: web.Request) -> web.Response:
    return web.Response(status=404, text="Not Found")
