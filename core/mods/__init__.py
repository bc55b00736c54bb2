"""Arma 3 mods as data: a host library of Workshop items, and each server's ordered set.

Facts: shared/reference/steamcmd-workshop-and-headless.md §1.6 (where SteamCMD puts items),
§3 (the Launcher's preset HTML), §4 (`-mod=`/`-serverMod=`, lowercase names, keys, roles,
load order), §5 (update detection). The modules, all without a database or Discord:

* `model`    roles (client / server-only / headless-only), Workshop ids from ids or URLs,
             folder names (`@cba_a3`), the errors.
* `preset`   the Arma 3 Launcher's preset HTML → names and Workshop ids (hostile input).
* `tree`     a lowercase tree of symlinks per mod, beside the Workshop copy, which is never
             renamed (arma-server-web-admin #178).
* `keys`     every `*.bikey` of a server's mods into the server's OWN `keys/` (plus the
             game's `a3.bikey`); stale keys of removed mods removed (FASTER #34).
* `order`    explicit load order.
* `modset`   what a server folder holds: `modset/@name` links to the trees and
             `modset/modset.json`, the ordered set the launch arguments are built from.

For the launch arguments (the server's and a headless client's), call the pure function

    core.mods.launch_mods(folder: Path) -> LaunchMods | None

`folder` is the server folder (the game's cwd). None: the server has no managed mod set
(its free-text `mods` / `server_mods` settings apply alone). Otherwise a `LaunchMods`
whose `entries` are (path relative to the server folder, `Role`) in load order
(`modset/@cba_a3`), with `.client`, `.server`, `.headless` (headless-only) path tuples.
It raises `ModsNotReady` (a StartRefused) when a mod of the set is not downloaded yet.
`LaunchMods.server_args(extra_mods, extra_server_mods)` gives the server's
`-mod=`/`-serverMod=` argv items; `LaunchMods.headless_mods(extra_mods)` a headless
client's mod paths (client + headless-only mods in set order; never server-only ones,
§4.4) and `headless_args(extra_mods)` its `-mod=` item; `extra_*` are the free-text
settings, appended after the managed mods. Paths are relative to the server folder, so
the process must run there (cwd). For a headless client:

    managed = launch_mods(ctx.folder)
    mods = list(settings.mods) if managed is None else managed.headless_mods(settings.mods)

The service (`core.services.mods.ModService`) keeps the folder up to date;
`ModService.launch_mods(server_id)` is the same answer by server id.
"""

from __future__ import annotations

from core.mods.model import (
    LaunchMods,
    ModError,
    ModsNotReady,
    Role,
    mod_argv,
    parse_workshop_id,
)
from core.mods.modset import launch_mods

__all__ = [
    "LaunchMods",
    "ModError",
    "ModsNotReady",
    "Role",
    "launch_mods",
    "mod_argv",
    "parse_workshop_id",
]
