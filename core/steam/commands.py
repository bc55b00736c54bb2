"""SteamCMD sessions as lists of commands, rendered to argv tokens (never one shell string).

SteamCMD runs `+verb args` from its command line left to right and `+quit` ends the session
(shared/reference/steamcmd-workshop-and-headless.md §1.1). Each `+verb` and each argument is
its own argv entry, as LinuxGSM and Arma3Server pass them, so a path with spaces needs no
quoting and nothing is ever parsed by a shell. `+force_install_dir` must come before
`+login` or SteamCMD ignores it ("Please use force_install_dir before logon!", §1.1).

The password: SteamCMD only takes it as a word of `login` (§1.2). On the command line it
would be readable by every user of the host (`ps`, /proc/<pid>/cmdline), so a command marked
`secret` is written to a private runscript file instead and argv carries `+runscript <file>`
in its place (Valve's "automating SteamCMD" runscript; a file of the same verbs without `+`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidInput

__all__ = [
    "SERVER_APP_ID",
    "WORKSHOP_APP_ID",
    "Command",
    "app_update",
    "build_argv",
    "force_install_dir",
    "login",
    "secret_script",
    "session",
    "workshop_download_item",
]

WORKSHOP_APP_ID = 107410
"""Arma 3 (the game): Workshop items are downloaded under this app id."""
SERVER_APP_ID = 233780
"""Arma 3 Dedicated Server."""

_USER = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_BRANCH = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Command:
    """One SteamCMD verb and its words; `secret` ones never reach argv."""

    verb: str
    args: tuple[str, ...] = ()
    secret: bool = False

    def argv(self) -> list[str]:
        return ["+" + self.verb, *self.args]

    def script_line(self) -> str:
        """The line of a runscript: words with spaces are quoted (a file, not a shell)."""
        return " ".join(
            [self.verb, *(f'"{arg}"' if not arg or " " in arg else arg for arg in self.args)]
        )


def _checked(value: str) -> str:
    if _CONTROL.search(value):
        raise InvalidInput("a SteamCMD argument contains a line break or control character")
    return value


def login(user: str | None, password: str | None = None, guard_code: str | None = None) -> Command:
    """`login anonymous`, `login <user>` (cached login), `login <user> <pass> [<guard code>]`."""
    if user is None:
        return Command("login", ("anonymous",))
    if not _USER.fullmatch(user):
        raise InvalidInput("the Steam user name {user!r} is not a Steam account name", user=user)
    if not password:
        return Command("login", (user,))
    words = [user, _checked(password)]
    if guard_code:
        words.append(_checked(guard_code.strip()))
    if any('"' in word for word in words):
        # a runscript word cannot hold a double quote: refuse rather than log in wrongly
        raise InvalidInput("the Steam password contains a double quote, which SteamCMD cannot take")
    return Command("login", tuple(words), secret=True)


def force_install_dir(path: Path) -> Command:
    if not path.is_absolute():
        # SteamCMD would resolve it against its own folder, not ours
        raise InvalidInput("the SteamCMD install folder must be an absolute path")
    return Command("force_install_dir", (_checked(str(path)),))


def workshop_download_item(
    item_id: int, *, app_id: int = WORKSHOP_APP_ID, validate: bool = True
) -> Command:
    if item_id <= 0 or app_id <= 0:
        raise InvalidInput("{item_id} is not a Workshop item id", item_id=item_id)
    words = [str(app_id), str(item_id)]
    if validate:
        words.append("validate")
    return Command("workshop_download_item", tuple(words))


def app_update(
    app_id: int = SERVER_APP_ID, *, beta: str | None = None, validate: bool = True
) -> Command:
    """`app_update 233780 [-beta <branch>] [validate]` (the branch follows the app id)."""
    if app_id <= 0:
        raise InvalidInput("{app_id} is not a Steam app id", app_id=app_id)
    words = [str(app_id)]
    if beta:
        if not _BRANCH.fullmatch(beta):
            raise InvalidInput("{beta!r} is not a Steam branch name", beta=beta)
        words += ["-beta", beta]
    if validate:
        words.append("validate")
    return Command("app_update", tuple(words))


def session(install_dir: Path, login_command: Command, actions: Sequence[Command]) -> list[Command]:
    """A whole run: no password prompt, install folder, login, the actions, quit.

    `@NoPromptForPassword 1` makes SteamCMD fail instead of asking on stdin (ASM does the
    same); a Steam Guard question is still possible and the reader watches for it.
    """
    return [
        Command("@NoPromptForPassword", ("1",)),
        force_install_dir(install_dir),
        login_command,
        *actions,
        Command("quit"),
    ]


def build_argv(
    executable: Path, commands: Sequence[Command], *, script: Path | None = None
) -> list[str]:
    """The process's argv; secret commands become `+runscript <script>` (an absolute path)."""
    argv = [str(executable)]
    scripted = False
    for command in commands:
        if command.secret:
            if script is None or not script.is_absolute():
                raise ValueError("a secret command needs an absolute runscript path")
            if not scripted:  # the script holds every secret command, in order
                argv += ["+runscript", str(script)]
                scripted = True
        else:
            argv += command.argv()
    return argv


def secret_script(commands: Sequence[Command]) -> str | None:
    """The runscript text for the secret commands, or None when there are none."""
    lines = [command.script_line() for command in commands if command.secret]
    return "\n".join(lines) + "\n" if lines else None
