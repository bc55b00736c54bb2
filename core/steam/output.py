"""SteamCMD's console output as typed events, with no I/O (feed lines in, get events out).

SteamCMD has no machine-readable output and undocumented exit codes, so every tool decides
success by reading its log (LinuxGSM core_dl.sh, arma-server-manager's output processors,
Pelican's entrypoint; shared/reference/steamcmd-workshop-and-headless.md §1.2-1.5). The
shapes recognised here are the ones that reference collects from captured output:

* ` Update state (0x61) downloading, progress: 42.17 (1872345678 / 4440094933)` — decimals
  follow the locale, `12,49` occurs (LinuxGSM #356);
* `Success! App '233780' fully installed.` / `... already up to date.`;
* `Downloading item <id> ...` then `Success. Downloaded item <id> to "<path>" (<n> bytes)`,
  where the success line and the next `Downloading item` (or an `ERROR!`) share one physical
  line on Linux (Arma3Server #87, steam-for-linux #6321): `split_segments` cuts them apart;
* `ERROR! Download item <id> failed (Timeout).` and the older
  `ERROR! Timeout downloading item <id>`;
* login results, Steam Guard prompts (which wait on stdin without a newline, so the reader
  hands over a pending prompt with `LineSplitter.take_prompt`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "AppFailed",
    "AppInstalled",
    "DecryptionKeyMissing",
    "ErrorLine",
    "GuardRequired",
    "ItemDownloaded",
    "ItemFailed",
    "ItemStarted",
    "LineSplitter",
    "LoginFailed",
    "LoginOk",
    "LoginOrderWarning",
    "OutputParser",
    "Progress",
    "SteamEvent",
    "split_segments",
]


@dataclass(frozen=True, slots=True)
class Progress:
    """One ` Update state (0x..) <state>, progress: p (done / total)` line of app_update."""

    code: int
    state: str
    percent: float
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class ItemStarted:
    item_id: int


@dataclass(frozen=True, slots=True)
class ItemDownloaded:
    item_id: int
    path: str
    size: int


@dataclass(frozen=True, slots=True)
class ItemFailed:
    """`reason` is SteamCMD's word in parentheses: Timeout, Failure, No Connection..."""

    item_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class AppInstalled:
    app_id: int
    up_to_date: bool


@dataclass(frozen=True, slots=True)
class AppFailed:
    """`state` is set for `state is 0x602 after update job`, else `reason` says why."""

    app_id: int | None
    reason: str
    state: int | None = None


@dataclass(frozen=True, slots=True)
class LoginOk:
    anonymous: bool


@dataclass(frozen=True, slots=True)
class LoginFailed:
    reason: str


@dataclass(frozen=True, slots=True)
class GuardRequired:
    """SteamCMD asks for a Steam Guard code; with no stdin it would wait forever (LinuxGSM #570)."""

    mobile: bool


@dataclass(frozen=True, slots=True)
class DecryptionKeyMissing:
    """`Missing decryption key`: the login does not own the game (AMP #123)."""


@dataclass(frozen=True, slots=True)
class LoginOrderWarning:
    """`Please use force_install_dir before logon!`: the install folder was ignored."""


@dataclass(frozen=True, slots=True)
class ErrorLine:
    """A line that reads like an error but matches no known shape (kept for the report)."""

    text: str


SteamEvent = (
    Progress
    | ItemStarted
    | ItemDownloaded
    | ItemFailed
    | AppInstalled
    | AppFailed
    | LoginOk
    | LoginFailed
    | GuardRequired
    | DecryptionKeyMissing
    | LoginOrderWarning
    | ErrorLine
)

_SEGMENT_START = re.compile(
    r"(?=Downloading item \d)|(?=Success\. Downloaded item )|(?=ERROR! )|(?=Error! )"
)
_PROGRESS = re.compile(
    r"Update state \(0x([0-9A-Fa-f]+)\)\s*([A-Za-z ]+?),\s*progress:\s*(\d+(?:[.,]\d+)?)"
    r"\s*\((\d+)\s*/\s*(\d+)\)"
)
_APP_OK = re.compile(r"Success! App '(\d+)' (fully installed|already up to date)", re.I)
_APP_STATE = re.compile(r"Error! App '(\d+)' state is 0x([0-9A-Fa-f]+) after update job", re.I)
_APP_INSTALL_FAILED = re.compile(r"ERROR! Failed to install app '(\d+)' \(([^)]*)\)", re.I)
_APPINFO_TIMEOUT = re.compile(r"ERROR! Timed out waiting for AppInfo update", re.I)
_BETA_PASSWORD = re.compile(r"Password check for AppId (\d+) failed", re.I)
_ITEM_START = re.compile(r"^Downloading item (\d+)")
_ITEM_OK = re.compile(r'^Success\. Downloaded item (\d+) to "(.*)" \((\d+) bytes\)')
_ITEM_FAILED = re.compile(r"^ERROR! Download item (\d+) failed \(([^)]*)\)", re.I)
_ITEM_TIMEOUT_OLD = re.compile(r"^ERROR! Timeout downloading item (\d+)", re.I)
_LOGIN_USER = re.compile(r"Logging in user '[^']*' to Steam Public\s*\.\.\.\s*(.*)$")
_LOGIN_ANON = re.compile(r"Connecting anonymously to Steam Public\s*\.\.\.\s*(.*)$")
_LOGIN_FAILURE = re.compile(r"Login Failure:\s*(.+)$")
_FAILED_REASON = re.compile(r"^FAILED\s*\(([^)]*)\)")
_GUARD = re.compile(
    r"Steam Guard code:|Two-factor code:|Steam Guard Mobile Authenticator"
    r"|not been authenticated for your account using Steam Guard",
    re.I,
)
_NOISE = re.compile(
    r"warning|setlocale|SDL|steamservice|thread priority|libcurl|cannot open shared object", re.I
)
"""Lines with error words that are not errors (Pelican's and ASM's exclusion lists)."""
_ERRORISH = re.compile(r"error|fail", re.I)
PROMPT = re.compile(r"(Steam Guard code|Two-factor code|[Pp]assword)\s*:\s*$")
"""A question SteamCMD prints without a newline and then waits on stdin for."""


def split_segments(line: str) -> list[str]:
    """Cut one physical line where SteamCMD glued a new message to the last one."""
    return [part.strip() for part in _SEGMENT_START.split(line) if part.strip()]


def _number(text: str) -> float:
    return float(text.replace(",", "."))


class OutputParser:
    """Feed it SteamCMD's lines one at a time; it returns the events each line holds."""

    def __init__(self) -> None:
        self._announced: int | None = None

    def feed_pending(self, text: str) -> list[SteamEvent]:
        """An unterminated line: SteamCMD prints `Downloading item <id> ...` and nothing
        more until the item ends (minutes), so the item is announced from the pending text."""
        segments = split_segments(text)
        match = _ITEM_START.match(segments[-1]) if segments else None
        if match is None or int(match[1]) == self._announced:
            return []
        self._announced = int(match[1])
        return [ItemStarted(self._announced)]

    def feed(self, line: str) -> list[SteamEvent]:
        events: list[SteamEvent] = []
        for segment in split_segments(line):
            event = self._segment(segment)
            if event is not None:
                events.append(event)
            if "missing decryption key" in segment.lower():
                events.append(DecryptionKeyMissing())
        return events

    def _segment(self, text: str) -> SteamEvent | None:
        if match := _PROGRESS.search(text):
            code, state, percent, done, total = match.groups()
            return Progress(int(code, 16), state.strip(), _number(percent), int(done), int(total))
        if match := _ITEM_OK.match(text):
            return ItemDownloaded(int(match[1]), match[2], int(match[3]))
        if match := _ITEM_FAILED.match(text):
            return ItemFailed(int(match[1]), match[2].strip() or "Failure")
        if match := _ITEM_TIMEOUT_OLD.match(text):
            return ItemFailed(int(match[1]), "Timeout")
        if match := _ITEM_START.match(text):
            return ItemStarted(int(match[1]))  # an error glued after "..." is its own segment
        if match := _APP_OK.search(text):
            return AppInstalled(int(match[1]), match[2].lower().startswith("already"))
        if match := _APP_STATE.search(text):
            return AppFailed(int(match[1]), f"state 0x{match[2].lower()}", int(match[2], 16))
        if match := _APP_INSTALL_FAILED.search(text):
            return AppFailed(int(match[1]), match[2].strip())
        if _APPINFO_TIMEOUT.search(text):
            return AppFailed(None, "Timed out waiting for AppInfo update")
        if match := _BETA_PASSWORD.search(text):
            return AppFailed(int(match[1]), "Password check failed")
        if _GUARD.search(text):
            return GuardRequired("mobile" in text.lower() or "two-factor" in text.lower())
        if match := _LOGIN_USER.search(text) or _LOGIN_ANON.search(text):
            return self._login_result(match[1], anonymous=text.startswith("Connecting"))
        if text.startswith("Logged in OK"):
            return LoginOk(anonymous=False)
        if match := _LOGIN_FAILURE.search(text) or _FAILED_REASON.match(text):
            return LoginFailed(match[1].strip() or "login failed")
        if "force_install_dir before logon" in text:
            return LoginOrderWarning()
        if _ERRORISH.search(text) and not _NOISE.search(text) and not text.startswith('"@'):
            return ErrorLine(text[:300])
        return None

    @staticmethod
    def _login_result(result: str, *, anonymous: bool) -> SteamEvent | None:
        result = result.strip()
        if result.upper().startswith("OK"):
            return LoginOk(anonymous=anonymous)
        if match := _FAILED_REASON.match(result):
            return LoginFailed(match[1].strip() or "login failed")
        return None  # older builds print the result on a later line ("Logged in OK")


class LineSplitter:
    """Bytes from a pipe -> text lines, each cut to `max_line` characters.

    A longer line is cut, and the rest up to its newline is dropped, so a flood of output
    (or a binary blob) never grows memory. Carriage returns end lines too.
    """

    def __init__(self, max_line: int = 4096) -> None:
        if max_line < 16:
            raise ValueError("max_line must be at least 16")
        self.max_line = max_line
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[str]:
        lines: list[str] = []
        self._buffer += data
        while True:
            cut = _first_break(self._buffer)
            if cut < 0:
                break
            raw = bytes(self._buffer[:cut])
            del self._buffer[: cut + 1]
            if self._skipping:
                self._skipping = False
                continue
            if raw.strip():
                lines.append(self._decode(raw))
        if len(self._buffer) > self.max_line:
            if not self._skipping:
                lines.append(self._decode(bytes(self._buffer[: self.max_line])))
                self._skipping = True
            self._buffer.clear()
        return lines

    def pending(self) -> str:
        """The text received after the last line break (not consumed)."""
        return "" if self._skipping else self._decode(bytes(self._buffer))

    def take_prompt(self) -> str | None:
        """A pending unterminated line that asks a question on stdin, consumed; else None."""
        if self._skipping or not self._buffer:
            return None
        text = self._decode(bytes(self._buffer))
        if PROMPT.search(text):
            self._buffer.clear()
            return text.strip()
        return None

    def flush(self) -> list[str]:
        """What is left at end of stream."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        skipping, self._skipping = self._skipping, False
        return [self._decode(rest)] if rest.strip() and not skipping else []

    def _decode(self, raw: bytes) -> str:
        return raw[: self.max_line].decode("utf-8", "replace").rstrip()


def _first_break(buffer: bytearray) -> int:
    newline = buffer.find(b"\n")
    carriage = buffer.find(b"\r")
    if newline < 0:
        return carriage
    if carriage < 0:
        return newline
    return min(newline, carriage)
