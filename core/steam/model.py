"""The values a SteamCMD job takes and returns, and what one SteamCMD run reported."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from core.steam import output as out
from core.steam.session import SessionResult

__all__ = [
    "AppUpdated",
    "DownloadedItem",
    "RetryPolicy",
    "RunReport",
    "SteamAccount",
    "session_reason",
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SteamAccount:
    """The login; None user = anonymous (which cannot download Arma 3 Workshop items)."""

    user: str | None = None
    password: SecretStr | None = None
    guard_code: SecretStr | None = None

    def secrets(self) -> list[str]:
        return [s.get_secret_value() for s in (self.password, self.guard_code) if s is not None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 10
    backoff_base: float = 5.0
    backoff_cap: float = 120.0
    stall_timeout: float = 600.0
    """No output for this long: SteamCMD hangs (it gives an item up after ~5 minutes)."""
    session_timeout: float = 4 * 3600.0
    kill_grace: float = 10.0


@dataclass(frozen=True, slots=True)
class DownloadedItem:
    item_id: int
    path: Path
    size: int


@dataclass(frozen=True, slots=True)
class AppUpdated:
    app_id: int
    up_to_date: bool


@dataclass
class RunReport:
    """What one SteamCMD run reported."""

    login_ok: bool = False
    login_failure: str | None = None
    guard: bool = False
    decryption_key: bool = False
    current_item: int | None = None
    downloaded: dict[int, out.ItemDownloaded] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    app_ok: out.AppInstalled | None = None
    app_failed: out.AppFailed | None = None

    def record(self, event: out.SteamEvent) -> None:
        match event:
            case out.LoginOk():
                self.login_ok = True
            case out.LoginFailed(reason=reason):
                self.login_failure = reason
            case out.GuardRequired():
                self.guard = True
            case out.DecryptionKeyMissing():
                self.decryption_key = True
            case out.ItemStarted(item_id=item_id):
                self.current_item = item_id
            case out.ItemDownloaded(item_id=item_id):
                self.downloaded[item_id] = event
                self.current_item = None
            case out.ItemFailed(item_id=item_id, reason=reason):
                self.failed[item_id] = reason
                self.current_item = None
            case out.AppInstalled():
                self.app_ok = event
            case out.AppFailed():
                self.app_failed = event
            case out.LoginOrderWarning():
                _log.warning("SteamCMD ignored force_install_dir (given after login)")
            case _:
                pass


def session_reason(seen: RunReport, result: SessionResult) -> str:
    if seen.login_failure:
        return seen.login_failure
    if result.timed_out:
        return "SteamCMD stopped answering"
    if result.signal is not None:
        return f"SteamCMD was killed by signal {result.signal}"
    if result.exit_code:
        return f"SteamCMD exit code {result.exit_code}"
    return "no result from SteamCMD"
