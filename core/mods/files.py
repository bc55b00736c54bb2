"""Where the host's mods live on disk, and the blocking work on them (run in a thread).

    <mods dir>/steam/                      SteamCMD's force_install_dir: the Workshop copies
        steamapps/workshop/content/107410/<id>/   (reference §1.6; never renamed or edited)
        steamapps/workshop/appworkshop_107410.acf the record of what is installed
    <mods dir>/lower/<id>/                 the lowercase tree of each mod (core/mods/tree.py)

Server folders link to the trees (core/mods/modset.py). Removing a mod deletes its tree,
its Workshop copy and its acf entry together, so SteamCMD never trusts a record for a
folder that is gone (§1.8: "on repair, delete folder and acf entry").
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.fsutil import private_dir
from core.mods.tree import TreeReport, build_tree, remove_tree
from core.steam import acf

__all__ = ["Installed", "ModFiles"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Installed:
    item_id: int
    time_updated: int
    size: int
    tree: TreeReport


class ModFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def steam_dir(self) -> Path:
        return self.root / "steam"

    def content(self, item_id: int) -> Path:
        return acf.content_dir(self.steam_dir, item_id)

    def tree(self, item_id: int) -> Path:
        return self.root / "lower" / str(item_id)

    def prepare(self) -> None:
        private_dir(self.root)
        (self.root / "lower").mkdir(exist_ok=True)
        self.steam_dir.mkdir(exist_ok=True)

    def install(self, item_ids: list[int]) -> list[Installed]:
        """Build the trees of the items SteamCMD's record says are installed and whose
        folder is there; the others are left for the next download."""
        record = acf.installed_items(self.steam_dir)
        done: list[Installed] = []
        for item_id in item_ids:
            item = record.get(item_id)
            content = self.content(item_id)
            if item is None or not content.is_dir():
                continue
            report = build_tree(content, self.tree(item_id))
            done.append(Installed(item_id, item.time_updated, item.size, report))
        return done

    def delete(self, item_id: int) -> None:
        """The tree, the Workshop copy, its partial download and its acf entry."""
        remove_tree(self.tree(item_id))
        for folder in (self.content(item_id), acf.downloads_dir(self.steam_dir, item_id)):
            if folder.is_symlink():
                folder.unlink()
            elif folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
        if acf.workshop_acf(self.steam_dir).is_file():
            acf.forget_items(self.steam_dir, [item_id])
