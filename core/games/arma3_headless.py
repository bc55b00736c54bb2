"""Arma 3 headless clients: how each one is launched beside its server.

A headless client (HC) is the server's own executable started as a client that connects
to it and runs AI (shared/reference/steamcmd-workshop-and-headless.md §7):

    arma3server_x64 -client -connect=127.0.0.1 -port=<game port> -profiles=<its folder>
                    -name=hc-<i> -par=<its folder>/launch.txt -mod=<client + headless mods>

It needs the server's password. On the command line (`-password=`) every local user would
read it in `ps`, and the game prints its command line at the top of its log; so it goes
into a `-par=` file instead (0600, one option per line: BI wiki "Startup Parameters Config
File"; Pelican's HCs read their options from such a file), and the argv only names the
file. The game preprocesses that file (C++ comments, #define), so a password that the
preprocessor would change (`//`, `/*`, `"`, `\\`, `__`, a leading `#`), or that holds a space
(the wiki says whitespace in the file is ignored) cannot go there: only then is it passed
as `-password=`, with a warning that says so.

Each HC has its own folder `headless/hc-<i>/` in the server folder: its profile
(`-profiles=`, and HOME, where the Linux game keeps its profile), its console.log and its
par file. The server lets HCs in through `headlessClients[]` (core/games/arma3_files.py).
The supervisor starts and stops them with the server (core/supervisor/companions.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from core.games.arma3_files import HEADLESS_ADDRESS
from core.games.arma3_settings import Arma3Settings
from core.games.base import CompanionSpec, ConfigFile, LaunchSpec, ServerContext
from core.mods import launch_mods, mod_argv

__all__ = [
    "HEADLESS_DIR",
    "PAR_FILE",
    "headless_argv",
    "headless_folder",
    "headless_key",
    "headless_mods",
    "headless_specs",
    "par_safe",
    "render_par",
]

_log = logging.getLogger(__name__)

HEADLESS_DIR = "headless"
PAR_FILE = "launch.txt"
"""Not `.par`: the game reads a `.par` file as `class Arg {...}`, any other as plain lines."""
_PAR_UNSAFE = ('"', "//", "/*", "*/", "\\", "__")


def headless_key(index: int) -> str:
    """`hc-1`, `hc-2`...: the HC's name in game, its folder and its supervisor key."""
    return f"hc-{index}"


def headless_folder(server_folder: Path, index: int) -> Path:
    return server_folder / HEADLESS_DIR / headless_key(index)


def headless_mods(ctx: ServerContext, settings: Arma3Settings) -> list[str]:
    """The HC's `-mod=` list: the server's managed client and headless-only mods in load
    order (never server-only ones), then the free-text `mods` setting (core/mods)."""
    managed = launch_mods(ctx.folder.resolve())
    return list(settings.mods) if managed is None else managed.headless_mods(settings.mods)


def par_safe(password: str) -> bool:
    """True when the password reaches the game unchanged through the par file."""
    return (
        not password.startswith("#")
        and not any(char.isspace() for char in password)
        and not any(bad in password for bad in _PAR_UNSAFE)
    )


def render_par(password: str | None) -> bytes:
    """The par file: a comment, then `-password=<password>` when it has one."""
    lines = ["// Written by Languard before each start of this headless client."]
    if password is not None:
        lines.append(f"-password={password}")
    return ("\n".join(lines) + "\n").encode()


def headless_argv(
    executable: Path,
    *,
    port: int,
    folder: Path,
    index: int,
    mods: Sequence[str],
    password_in_argv: str | None = None,
) -> list[str]:
    """One HC's command line, item by item (never a shell string). The password is only
    here when the par file cannot carry it (see `par_safe`)."""
    argv = [
        str(executable),
        "-client",
        f"-connect={HEADLESS_ADDRESS}",
        f"-port={port}",
    ]
    if password_in_argv is not None:
        argv.append(f"-password={password_in_argv}")
    argv += [
        f"-profiles={folder}",
        f"-name={headless_key(index)}",
        f"-par={folder / PAR_FILE}",
    ]
    argv += mod_argv("mod", mods)
    return argv


def headless_specs(
    executable: Path, ctx: ServerContext, settings: Arma3Settings
) -> list[CompanionSpec]:
    """One CompanionSpec per `headless_clients`, all connecting to this server."""
    if not settings.headless_clients:
        return []
    server_folder = ctx.folder.resolve()
    password = None if settings.password is None else settings.password.get_secret_value()
    in_par = password if password is None or par_safe(password) else None
    if password is not None and in_par is None:
        _log.warning(
            "%s: the server password has characters a -par file cannot carry; its "
            "headless clients get it on their command line, where local users can see it",
            ctx.name,
        )
    mods = headless_mods(ctx, settings)
    specs = []
    for index in range(1, settings.headless_clients + 1):
        folder = headless_folder(server_folder, index)
        argv = headless_argv(
            executable,
            port=settings.port,
            folder=folder,
            index=index,
            mods=mods,
            password_in_argv=password if in_par is None else None,
        )
        specs.append(
            CompanionSpec(
                key=headless_key(index),
                launch=LaunchSpec(tuple(argv), cwd=server_folder, env={"HOME": str(folder)}),
                log_path=folder / "console.log",
                files=(ConfigFile(folder / PAR_FILE, render_par(in_par), secret=True),),
            )
        )
    return specs
