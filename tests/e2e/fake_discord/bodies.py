"""Request bodies as discord.py sends them: JSON, or multipart with `payload_json` + `files[n]`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from .errors import INVALID_JSON, ApiError

FILE_FIELD = re.compile(r"files\[(\d+)\]")


@dataclass(frozen=True)
class Upload:
    """One `files[n]` part of a multipart request."""

    index: int
    filename: str
    data: bytes
    content_type: str | None


@dataclass(frozen=True)
class Body:
    payload: Any
    uploads: dict[int, Upload]
    multipart: bool


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ApiError(400, INVALID_JSON, "The request body contains invalid JSON.") from exc


async def read_body(request: web.Request) -> Body:
    """Parse a request body once; the middleware stores the result on the request."""
    if request.content_type.startswith("multipart/"):
        payload: Any = {}
        uploads: dict[int, Upload] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            if name == "payload_json":
                payload = _loads(await part.text())
            elif match := FILE_FIELD.fullmatch(name):
                index = int(match.group(1))
                data = bytes(await part.read(decode=False))
                ctype = part.headers.get("Content-Type")
                uploads[index] = Upload(index, part.filename or f"file{index}", data, ctype)
            else:
                payload[name] = await part.text()
        return Body(payload, uploads, multipart=True)
    if not request.can_read_body:
        return Body(None, {}, multipart=False)
    text = await request.text()
    return Body(_loads(text) if text else None, {}, multipart=False)


def json_object(body: Body) -> dict[str, Any]:
    """The body as a JSON object (Discord answers 400 for anything else)."""
    if body.payload is None:
        return {}
    if not isinstance(body.payload, dict):
        raise ApiError(400, 50035, "Invalid Form Body")
    return body.payload
