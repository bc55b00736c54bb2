"""Which SteamCMD failures end a job at once, and the error each one becomes.

Retrying cannot fix a refused login, a Steam Guard question, `Missing decryption key` (the
login does not own Arma 3, reference §2), `No subscription`, or a full disk (§1.3, LinuxGSM
core_dl.sh); anything else is retried by the runner and, once attempts run out, reported
with SteamCMD's own reason per item.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.steam.errors import (
    SteamAccessDenied,
    SteamCmdError,
    SteamTimeout,
    WorkshopDownloadFailed,
    app_state_reason,
    login_error,
)
from core.steam.model import RunReport, session_reason
from core.steam.session import SessionResult

__all__ = ["app_failure", "raise_exhausted", "raise_fatal"]

RETRYABLE_LOGIN = ("no connection", "timeout", "timed out", "service unavailable", "try another")
"""Login failures that are the network's, not the account's."""
FATAL_APP_STATES = frozenset({0x202, 0x212, 0x606})
"""No disk space, disk write failure: retrying cannot help (LinuxGSM core_dl.sh)."""


def raise_fatal(seen: RunReport, log_text: str, items: list[int], user: str | None) -> None:
    """Stop the job for what no retry can fix."""
    if seen.guard:
        raise login_error(user, "guard")
    failure = seen.login_failure
    if failure and not any(word in failure.lower() for word in RETRYABLE_LOGIN):
        raise login_error(user, failure)
    if seen.decryption_key or "missing decryption key" in log_text.lower():
        item_id = next(iter(seen.failed), items[0] if items else 0)
        if user is None:
            raise SteamAccessDenied(
                "Workshop item {item_id} needs a Steam account that owns Arma 3, but "
                "SteamCMD logs in anonymously: set LANGUARD_STEAM_USER and "
                "LANGUARD_STEAM_PASSWORD",
                item_id=item_id,
            )
        raise SteamAccessDenied(
            "the Steam account {user} may not download Workshop item {item_id} "
            "(Missing decryption key): the account must own Arma 3",
            user=user,
            item_id=item_id,
        )


def raise_exhausted(missing: list[int], reasons: Mapping[int, str], total: int, hangs: int) -> None:
    """Every attempt was used: a hang if SteamCMD only ever hung, else each item's reason."""
    if hangs and all("stopped answering" in reasons.get(i, "") for i in missing):
        raise SteamTimeout(
            "SteamCMD stopped answering {count} time(s) and was stopped",
            count=hangs,
        )
    raise WorkshopDownloadFailed(
        "{count} of {total} Workshop items could not be downloaded: {items}",
        count=len(missing),
        total=total,
        items=", ".join(f"{i} ({reasons.get(i, 'unknown')})" for i in missing[:10]),
    )


def app_failure(seen: RunReport, result: SessionResult, app_id: int, user: str | None) -> str:
    """The reason of a retryable failure; raises for the others."""
    failed = seen.app_failed
    if failed is None:
        return session_reason(seen, result)
    if "no subscription" in failed.reason.lower():
        if user is None:
            raise SteamAccessDenied(
                "app {app_id} needs a Steam login, but SteamCMD logs in anonymously: set "
                "LANGUARD_STEAM_USER and LANGUARD_STEAM_PASSWORD",
                app_id=app_id,
            )
        raise SteamAccessDenied(
            "the Steam account {user} may not install app {app_id} (No subscription)",
            user=user,
            app_id=app_id,
        )
    if "password check" in failed.reason.lower():
        raise SteamAccessDenied(
            "Steam refused the password of this branch of app {app_id}", app_id=app_id
        )
    if failed.state == 0x606:
        raise SteamCmdError(
            "SteamCMD could not install app {app_id}: a disk write failed", app_id=app_id
        )
    if failed.state in FATAL_APP_STATES:
        raise SteamCmdError(
            "SteamCMD could not install app {app_id}: not enough disk space", app_id=app_id
        )
    return app_state_reason(failed.state, failed.reason)
