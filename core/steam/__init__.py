"""SteamCMD and the Steam Workshop: downloads as supervised jobs, and item details.

`SteamCmd` (runner) runs one job at a time as a child process and retries what can be
retried; `output` turns SteamCMD's console lines into events with no I/O; `commands` builds
its command line as a list; `acf` reads and repairs the Workshop record; `workshop` asks the
Web API for item details. Facts: shared/reference/steamcmd-workshop-and-headless.md.
"""

from __future__ import annotations

from core.steam.commands import SERVER_APP_ID, WORKSHOP_APP_ID
from core.steam.errors import (
    SteamAccessDenied,
    SteamCmdError,
    SteamCmdUnavailable,
    SteamGuardRequired,
    SteamLoginFailed,
    SteamTimeout,
    WorkshopDownloadFailed,
    WorkshopUnavailable,
)
from core.steam.progress import ProgressCallback, SteamProgress
from core.steam.runner import AppUpdated, DownloadedItem, RetryPolicy, SteamAccount, SteamCmd
from core.steam.workshop import DEFAULT_API_URL, WorkshopClient, WorkshopItem

__all__ = [
    "DEFAULT_API_URL",
    "SERVER_APP_ID",
    "WORKSHOP_APP_ID",
    "AppUpdated",
    "DownloadedItem",
    "ProgressCallback",
    "RetryPolicy",
    "SteamAccessDenied",
    "SteamAccount",
    "SteamCmd",
    "SteamCmdError",
    "SteamCmdUnavailable",
    "SteamGuardRequired",
    "SteamLoginFailed",
    "SteamProgress",
    "SteamTimeout",
    "WorkshopClient",
    "WorkshopDownloadFailed",
    "WorkshopItem",
    "WorkshopUnavailable",
]
