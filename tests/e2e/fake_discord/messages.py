"""Messages as the fake stores them: content, embeds, components, files (with bytes).

Creation and edits go through `apply_message_payload` so channel messages, interaction
responses and webhook follow-ups share one set of Discord's rules (2,000 characters,
10 embeds, `attachments` replacing the file set on edit, and so on).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .bodies import Upload
from .errors import EMPTY_MESSAGE, ApiError, invalid_form
from .models import FakeUser

EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_EMBEDS = 1 << 2
# Flags a sender may set; the rest (ephemeral, loading) are decided by the fake.
SETTABLE_FLAGS = SUPPRESS_EMBEDS | (1 << 12) | (1 << 15)  # suppress, silent, components v2

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_DESCRIPTION = 4096
MAX_EMBED_FIELDS = 25
MAX_EMBED_TOTAL = 6000


@dataclass(eq=False)
class StoredFile:
    """An attachment on the fake CDN: what a bot uploaded or what a test handed a user."""

    id: int
    filename: str
    data: bytes
    url: str
    content_type: str | None = None
    description: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
        }
        if self.content_type:
            out["content_type"] = self.content_type
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class MessageSnapshot:
    """One version of a message (creation or an edit), for asserting on history."""

    at: float
    content: str
    embeds: list[dict[str, Any]]
    components: list[dict[str, Any]]
    attachments: list[StoredFile]
    flags: int


@dataclass(eq=False)
class FakeMessage:
    id: int
    channel_id: int
    guild_id: int | None
    author: FakeUser
    created_at: float
    timestamp: str
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[StoredFile] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    tts: bool = False
    edited_timestamp: str | None = None
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_id: int | None = None
    interaction_user: FakeUser | None = None
    interaction_type: int | None = None
    interaction_name: str | None = None
    allowed_mentions: dict[str, Any] | None = None
    pinged_user_ids: set[int] = field(default_factory=set)
    pinged_role_ids: set[int] = field(default_factory=set)
    pinged_everyone: bool = False
    deleted: bool = False
    reactions: list[str] = field(default_factory=list)
    history: list[MessageSnapshot] = field(default_factory=list)
    # Every JSON payload (payload_json for multipart) that created or edited the message.
    raw_payloads: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True for a deferred ("thinking") response not yet filled in."""
        return bool(self.flags & LOADING)

    @property
    def edited(self) -> bool:
        return self.edited_timestamp is not None

    def file(self, filename: str) -> StoredFile:
        for att in self.attachments:
            if att.filename == filename:
                return att
        raise KeyError(f"message {self.id} has no attachment {filename!r}")

    def iter_components(self) -> Iterator[dict[str, Any]]:
        """Every component, nested ones included (rows, sections, containers, labels)."""

        def walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
            for item in items:
                yield item
                for key in ("components", "items"):
                    yield from walk(item.get(key) or [])
                for key in ("accessory", "component"):
                    if isinstance(item.get(key), dict):
                        yield from walk([item[key]])

        return walk(self.components)

    def component(self, custom_id: str) -> dict[str, Any]:
        for comp in self.iter_components():
            if comp.get("custom_id") == custom_id:
                return comp
        raise KeyError(f"message {self.id} has no component with custom_id {custom_id!r}")

    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in self.iter_components() if "custom_id" in c]

    def embed_text(self) -> str:
        """All human-readable embed text joined, for substring assertions."""
        parts: list[str] = []
        for embed in self.embeds:
            parts += [embed.get("title") or "", embed.get("description") or ""]
            parts += [f"{f.get('name', '')}\n{f.get('value', '')}" for f in embed.get("fields", [])]
            parts.append((embed.get("footer") or {}).get("text") or "")
            parts.append((embed.get("author") or {}).get("name") or "")
        return "\n".join(p for p in parts if p)

    def snapshot(self, at: float) -> None:
        self.history.append(
            MessageSnapshot(
                at=at,
                content=self.content,
                embeds=list(self.embeds),
                components=list(self.components),
                attachments=list(self.attachments),
                flags=self.flags,
            )
        )

    def payload(self, users: Callable[[int], FakeUser | None]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": self.author.payload(),
            "content": self.content,
            "timestamp": self.timestamp,
            "edited_timestamp": self.edited_timestamp,
            "tts": self.tts,
            "mention_everyone": self.pinged_everyone,
            "mentions": [u.payload() for uid in sorted(self.pinged_user_ids) if (u := users(uid))],
            "mention_roles": [str(r) for r in sorted(self.pinged_role_ids)],
            "attachments": [a.payload() for a in self.attachments],
            "embeds": self.embeds,
            "components": self.components,
            "reactions": [],
            "pinned": False,
            "type": self.type,
            "flags": self.flags,
        }
        if self.guild_id is not None:
            out["guild_id"] = str(self.guild_id)
        if self.webhook_id is not None:
            out["webhook_id"] = str(self.webhook_id)
        if self.application_id is not None:
            out["application_id"] = str(self.application_id)
        if self.interaction_id is not None and self.interaction_user is not None:
            out["interaction_metadata"] = {
                "id": str(self.interaction_id),
                "type": self.interaction_type or 2,
                "user": self.interaction_user.payload(),
                "authorizing_integration_owners": {},
            }
            out["interaction"] = {
                "id": str(self.interaction_id),
                "type": self.interaction_type or 2,
                "name": self.interaction_name or "",
                "user": self.interaction_user.payload(),
            }
        return out


USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")


def resolve_pings(content: str, allowed: dict[str, Any] | None) -> tuple[set[int], set[int], bool]:
    """Who a message would notify, applying `allowed_mentions` like Discord does."""
    users = {int(x) for x in USER_MENTION.findall(content)}
    roles = {int(x) for x in ROLE_MENTION.findall(content)}
    everyone = "@everyone" in content or "@here" in content
    if allowed is None:
        return users, roles, everyone
    parse = set(allowed.get("parse") or [])
    if "users" not in parse:
        users &= {int(x) for x in allowed.get("users") or []}
    if "roles" not in parse:
        roles &= {int(x) for x in allowed.get("roles") or []}
    return users, roles, everyone and "everyone" in parse


def validate_embeds(embeds: list[dict[str, Any]]) -> None:
    if len(embeds) > MAX_EMBEDS:
        raise invalid_form("embeds", f"Must be {MAX_EMBEDS} or fewer in length.")
    for i, embed in enumerate(embeds):
        description = embed.get("description") or ""
        if len(description) > MAX_EMBED_DESCRIPTION:
            raise invalid_form(
                f"embeds.{i}.description",
                f"Must be {MAX_EMBED_DESCRIPTION} or fewer in length.",
                "BASE_TYPE_MAX_LENGTH",
            )
        fields = embed.get("fields") or []
        if len(fields) > MAX_EMBED_FIELDS:
            raise invalid_form(f"embeds.{i}.fields", "Must be 25 or fewer in length.")
    total = 0
    for embed in embeds:
        total += len(embed.get("title") or "") + len(embed.get("description") or "")
        total += len((embed.get("footer") or {}).get("text") or "")
        total += len((embed.get("author") or {}).get("name") or "")
        for f in embed.get("fields") or []:
            total += len(f.get("name") or "") + len(f.get("value") or "")
    if total > MAX_EMBED_TOTAL:
        raise invalid_form("embeds", "Embed size exceeds maximum size of 6000", "MAX_EMBED_SIZE")


def _normalise_embeds(embeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "rich", **e} for e in embeds]


def new_attachment_set(
    payload: dict[str, Any],
    uploads: dict[int, Upload],
    existing: list[StoredFile],
    store: Callable[[Upload, str | None, str | None], StoredFile],
    *,
    editing: bool,
) -> list[StoredFile] | None:
    """The message's files after this request, or None when the request leaves them alone.

    With an `attachments` list, it is the whole new set: existing ids are kept, small ids
    name `files[n]` uploads. Without it, uploads are all new files (added on edit).
    """
    if "attachments" in payload and payload["attachments"] is not None:
        by_id = {a.id: a for a in existing}
        result: list[StoredFile] = []
        for i, item in enumerate(payload["attachments"]):
            ref = int(item["id"])
            if ref in by_id:
                result.append(by_id[ref])
            elif ref in uploads:
                result.append(store(uploads[ref], item.get("filename"), item.get("description")))
            else:
                raise invalid_form(f"attachments.{i}.id", "Unknown attachment or upload index")
        return result
    if uploads:
        fresh = [store(uploads[i], None, None) for i in sorted(uploads)]
        return (list(existing) + fresh) if editing else fresh
    return None


def apply_message_payload(
    msg: FakeMessage,
    payload: dict[str, Any],
    uploads: dict[int, Upload],
    store: Callable[[Upload, str | None, str | None], StoredFile],
    *,
    editing: bool,
    at: float,
) -> None:
    """Validate a create/edit body and apply it to `msg` (all-or-nothing)."""
    content = msg.content
    if "content" in payload:
        content = payload["content"] or ""
        if not isinstance(content, str):
            raise invalid_form("content", "Must be a string.")
        if len(content) > MAX_CONTENT:
            raise invalid_form(
                "content", f"Must be {MAX_CONTENT} or fewer in length.", "BASE_TYPE_MAX_LENGTH"
            )
    embeds = msg.embeds
    if "embeds" in payload:
        embeds = _normalise_embeds(payload["embeds"] or [])
        validate_embeds(embeds)
    components = msg.components
    if "components" in payload:
        components = payload["components"] or []
        if len(components) > 40:
            raise invalid_form("components", "Must be 40 or fewer in length.")
    attachments = new_attachment_set(payload, uploads, msg.attachments, store, editing=editing)
    new_attachments = msg.attachments if attachments is None else attachments
    has_poll = "poll" in payload and payload["poll"] is not None
    if not (content or embeds or components or new_attachments or has_poll):
        raise ApiError(400, EMPTY_MESSAGE, "Cannot send an empty message")

    msg.content = content
    msg.embeds = embeds
    msg.components = components
    msg.attachments = new_attachments
    if "flags" in payload and payload["flags"] is not None:
        msg.flags = (msg.flags & (EPHEMERAL | LOADING)) | (int(payload["flags"]) & SETTABLE_FLAGS)
    if "tts" in payload:
        msg.tts = bool(payload["tts"])
    if "allowed_mentions" in payload or not editing:
        msg.allowed_mentions = payload.get("allowed_mentions")
    users, roles, everyone = resolve_pings(msg.content, msg.allowed_mentions)
    msg.pinged_user_ids, msg.pinged_role_ids, msg.pinged_everyone = users, roles, everyone
    msg.raw_payloads.append(payload)
    msg.snapshot(at)
