"""What went wrong with SteamCMD, in words an admin can act on (never a password or a path).

The known failures and their causes come from shared/reference/steamcmd-workshop-and-
headless.md: §1.2 (login, Steam Guard), §1.3 (app_update states, `No subscription`), §1.4
(`Timeout`, `Failure`), §2 (`Missing decryption key` means the login does not own Arma 3).
"""

from __future__ import annotations

from core.errors import LanguardError

__all__ = [
    "SteamAccessDenied",
    "SteamCmdError",
    "SteamCmdUnavailable",
    "SteamGuardRequired",
    "SteamLoginFailed",
    "SteamTimeout",
    "WorkshopDownloadFailed",
    "WorkshopUnavailable",
    "app_state_reason",
    "login_error",
]


class SteamCmdError(LanguardError):
    """A SteamCMD job failed; the message says why and what to change."""


class SteamCmdUnavailable(SteamCmdError):
    """SteamCMD is not configured or cannot be started."""


class SteamLoginFailed(SteamCmdError):
    """Steam refused the login; retrying would not help (or would make a rate limit worse)."""


class SteamGuardRequired(SteamLoginFailed):
    """Steam asks for a Steam Guard code the bot cannot type."""


class SteamAccessDenied(SteamCmdError):
    """The login may not download this content (anonymous, or the game is not owned)."""


class SteamTimeout(SteamCmdError):
    """SteamCMD stopped answering and was stopped."""


class WorkshopDownloadFailed(SteamCmdError):
    """Items were still missing after every retry."""


class WorkshopUnavailable(LanguardError):
    """The Workshop's web API did not answer usefully."""


_STATE_REASONS: dict[int, str] = {
    0x202: "not enough disk space",
    0x212: "not enough disk space",
    0x402: "the update did not complete (network)",
    0x602: "the update did not complete (network)",
    0x606: "a disk write failed",
    0x626: "update files are missing",
    0x6A6: "files are corrupt",
}
"""LinuxGSM core_dl.sh's reading of the state codes (reference §1.3)."""


def app_state_reason(state: int | None, reason: str) -> str:
    """A readable cause for an `AppFailed` event."""
    if state is not None:
        return _STATE_REASONS.get(state, f"state 0x{state:x}")
    return reason


def login_error(user: str | None, reason: str) -> SteamLoginFailed:
    """The error for a `Login Failure:` / `FAILED (...)` reason (substrings tools match, §1.2)."""
    who = user or "anonymous"
    low = reason.lower()
    if "invalid password" in low:
        return SteamLoginFailed(
            "Steam refused the password of {user}: check LANGUARD_STEAM_PASSWORD", user=who
        )
    if "two-factor" in low or "mismatch" in low:
        return SteamGuardRequired(
            "Steam did not accept the Steam Guard code for {user}; "
            "log in once by hand on this host so SteamCMD remembers it",
            user=who,
        )
    if "rate limit" in low:
        return SteamLoginFailed(
            "Steam is limiting logins for {user} (too many attempts); wait at least "
            "30 minutes before trying again",
            user=who,
        )
    if "logon denied" in low or "guard" in low:
        return SteamGuardRequired(
            "Steam Guard needs a code for {user}: log in once by hand on this host "
            "(steamcmd +login {user}) so SteamCMD remembers the login, then try again",
            user=who,
        )
    if "expired" in low:
        return SteamLoginFailed(
            "the saved Steam login of {user} has expired: log in once by hand on this host",
            user=who,
        )
    return SteamLoginFailed("Steam refused the login of {user} ({reason})", user=who, reason=reason)
