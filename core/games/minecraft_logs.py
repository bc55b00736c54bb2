"""Reading a Minecraft server's console log: events, and the answers to console commands.

Kept apart from the link because it is pure text work (no I/O, no asyncio), so it can be
tested line by line and read without the transport around it.

Only lines with the game's own prefix (`[12:34:56] [Server thread/INFO]: `) are believed, and
only from the game's threads; a message must match in full, starting with a valid player
name, so chat such as `<Eve> Steve joined the game` is chat, never a join.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

from core.events import (
    Chat,
    Event,
    PlayerBanned,
    PlayerJoined,
    PlayerKicked,
    PlayerLeft,
)

__all__ = [
    "LogEventParser",
    "LogMessage",
    "banlist_reply_complete",
    "is_reply",
    "list_reply_complete",
    "parse_banlist",
    "parse_list",
    "parse_message",
]

_PREFIX = re.compile(
    r"\[(?:\d\d[A-Za-z]{3}\d{4} )?\d\d:\d\d:\d\d(?:\.\d{3})?\] "
    r"\[(?P<thread>[^\]/\n]{1,60})/(?P<level>[A-Z]{3,5})\](?: \[[^\]\n]{1,80}\])?: "
    r"|\[\d\d:\d\d:\d\d (?P<short>[A-Z]{3,5})\]: "
)
_MAIN_THREADS = re.compile(r"Server thread|")
_CHAT_THREADS = re.compile(r"Server thread|Async Chat Thread - #\d+|")
_AUTH_THREADS = re.compile(r"User Authenticator #\d+|Server thread|")

_N = r"(?P<name>[A-Za-z0-9_]{1,16})"
_UUID = r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"
_JOINED = re.compile(_N + r"(?: \(formerly known as [A-Za-z0-9_]{1,16}\))? joined the game")
_LEFT = re.compile(_N + r" left the game")
_LOST = re.compile(_N + r"(?: \(/[^)]{1,60}\))? lost connection: .*")
_LOGGED_IN = re.compile(_N + r"\[/(?P<ip>[0-9a-fA-F.:]{2,45}):\d{1,5}\] logged in with .*")
_UUID_OF = re.compile(r"UUID of player " + _N + r" is (?P<uuid>" + _UUID + ")")
_KICKED = re.compile(r"Kicked " + _N + r": (?P<reason>.*)")
_BANNED = re.compile(r"Banned " + _N + r": (?P<reason>.*)")
_CHAT = re.compile(r"(?:\[Not Secure\] )?<" + _N + r"> (?P<text>.*)")
_WRAPPED = re.compile(r"\[(?P<source>[^\[\]:\n]{1,40}): (?P<body>.*)\]")
_UNSOLICITED = (_JOINED, _LEFT, _LOST, _LOGGED_IN, _UUID_OF, _CHAT, _WRAPPED)
"""Messages that are never the answer to a console command, whatever arrives with them."""

_LIST = re.compile(
    r"There are (?P<count>\d+) of a max(?: of)? (?P<max>\d+) players online:(?P<rest>.*)"
    r"|There are (?P<old_count>\d+)/(?P<old_max>\d+) players online:(?P<old_rest>.*)",
    re.DOTALL,
)
_BANLIST = re.compile(r"There are (?P<count>\d+) bans?(?:\(s\))?:|There are no bans")
_BAN_ENTRY = re.compile(
    r"(?P<target>" + _UUID + r"|\d{1,3}(?:\.\d{1,3}){3}|[A-Za-z0-9_]{1,16}) was banned by "
)
_LIST_ENTRY = re.compile(r"(?P<name>[A-Za-z0-9_]{1,16})(?: \(" + _UUID + r"\))?")


@dataclass(frozen=True, slots=True)
class LogMessage:
    """A game log line without its prefix; `thread` is "" in Paper's short format."""

    thread: str
    level: str
    text: str


def parse_message(line: str) -> LogMessage | None:
    """Split `[12:34:56] [Server thread/INFO]: text`; None for lines without the prefix."""
    match = _PREFIX.match(line)
    if match is None:
        return None
    level = match["level"] or match["short"]
    return LogMessage(match["thread"] or "", level, line[match.end() :])


def parse_list(text: str) -> list[str] | None:
    """Names from a `list` reply ("There are N of a max of M players online: a, b", or the
    older "There are N/M players online:" with the names on the next line); None if it is
    not one. Entries that are not valid names are skipped."""
    match = _LIST.search(text)
    if match is None:
        return None
    rest = match["rest"] if match["rest"] is not None else match["old_rest"]
    names: list[str] = []
    for part in re.split(r"[,\n]", rest):
        entry = _LIST_ENTRY.fullmatch(part.strip())  # `list uuids` adds " (uuid)"
        if entry is not None:
            names.append(entry["name"])
    return names


def parse_banlist(text: str) -> list[str] | None:
    """The banned names or IPs in a `banlist players|ips` reply; None if it is not one.

    One entry per line, read from the line's start (a reason quoting "X was banned by"
    is not an entry). A reply whose lines RCON glued together is split at each `<target>
    was banned by`, which is wrong when a reason ends in a name character or quotes one.
    """
    body = text.strip()
    header = _BANLIST.match(body)
    if header is None:
        return None
    if "\n" in body:
        lines = body[header.end() :].split("\n")
        return [m["target"] for m in map(_BAN_ENTRY.match, lines) if m is not None]
    return [entry["target"] for entry in _BAN_ENTRY.finditer(body, header.end())]


def is_reply(message: LogMessage) -> bool:
    """Whether a console line may be (part of) the answer to a console command."""
    if not _MAIN_THREADS.fullmatch(message.thread):
        return False
    return not any(p.fullmatch(message.text) for p in _UNSOLICITED)


def list_reply_complete(lines: list[str]) -> bool:
    """Whether the reply lines collected so far hold a whole `list` answer."""
    match = _LIST.fullmatch(lines[0]) if lines else None
    if match is not None and match["old_count"] is not None and int(match["old_count"]) > 0:
        return len(lines) >= 2  # the old form puts the names on a line of their own
    return bool(lines)


def banlist_reply_complete(lines: list[str]) -> bool:
    """Whether the reply lines collected so far hold a whole `banlist` answer."""
    match = _BANLIST.match(lines[0]) if lines else None
    if match is not None and match["count"] is not None:
        return len(lines) >= int(match["count"]) + 1
    return bool(lines)


class LogEventParser:
    """Turns one server's log lines into events, remembering each player's UUID and IP."""

    def __init__(self, server_id: int, server: str, memory: int = 1000) -> None:
        self.server_id = server_id
        self.server = server
        self._memory = memory
        self._seen: OrderedDict[str, tuple[str | None, str | None]] = OrderedDict()

    def uuid_of(self, name: str) -> str | None:
        return self._seen.get(name.lower(), (None, None))[0]

    def ip_of(self, name: str) -> str | None:
        return self._seen.get(name.lower(), (None, None))[1]

    def name_of(self, uuid: str) -> str | None:
        for name, (seen_uuid, _) in self._seen.items():
            if seen_uuid is not None and seen_uuid.lower() == uuid.lower():
                return name
        return None

    def _remember(self, name: str, uuid: str | None = None, ip: str | None = None) -> None:
        old_uuid, old_ip = self._seen.pop(name.lower(), (None, None))
        self._seen[name.lower()] = (uuid or old_uuid, ip or old_ip)
        while len(self._seen) > self._memory:
            self._seen.popitem(last=False)

    def feed(self, line: str) -> list[Event]:
        message = parse_message(line)
        return [] if message is None else self.feed_message(message)

    def feed_message(self, message: LogMessage) -> list[Event]:
        if message.level != "INFO":
            return []
        text, thread = message.text, message.thread
        sid, srv = self.server_id, self.server
        if _AUTH_THREADS.fullmatch(thread) and (m := _UUID_OF.fullmatch(text)):
            self._remember(m["name"], uuid=m["uuid"].lower())
            return []
        if _CHAT_THREADS.fullmatch(thread) and (m := _CHAT.fullmatch(text)):
            return [
                Chat(server_id=sid, server=srv, channel="chat", author=m["name"], text=m["text"])
            ]
        if not _MAIN_THREADS.fullmatch(thread):
            return []
        if m := _LOGGED_IN.fullmatch(text):
            self._remember(m["name"], ip=m["ip"])
            return []
        if m := _JOINED.fullmatch(text):
            name = m["name"]
            self._remember(name)
            guid, ip = self._seen[name.lower()]
            return [
                PlayerJoined(
                    server_id=sid, server=srv, name=name, player_key=name, guid=guid, ip=ip
                )
            ]
        if m := _LEFT.fullmatch(text):
            name = m["name"]
            guid = self.uuid_of(name)
            return [PlayerLeft(server_id=sid, server=srv, name=name, player_key=name, guid=guid)]
        wrapped = _WRAPPED.fullmatch(text)
        body = wrapped["body"] if wrapped else text
        for pattern, kind in ((_KICKED, PlayerKicked), (_BANNED, PlayerBanned)):
            if m := pattern.fullmatch(body):
                name = m["name"]
                return [
                    kind(
                        server_id=sid,
                        server=srv,
                        name=name,
                        reason=m["reason"],
                        player_key=name,
                        guid=self.uuid_of(name),
                    )
                ]
        return []
