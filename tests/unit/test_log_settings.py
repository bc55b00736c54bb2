"""Settings of console.log rotation, and where a rotation may cut (pure)."""

from __future__ import annotations

import pytest

from core.config import SettingsError, load_settings
from core.supervisor.server_logs import READER, rotation_floor
from data.repositories.telemetry import StoredOffset


def test_rotation_settings_have_sane_defaults_and_refuse_nonsense() -> None:
    settings = load_settings(_env_file=None)
    assert (settings.console_log_max_bytes, settings.console_log_keep) == (50 * 1024**2, 5)
    custom = load_settings(_env_file=None, console_log_max_bytes=2**21, console_log_keep=0)
    assert (custom.console_log_max_bytes, custom.console_log_keep) == (2**21, 0)
    with pytest.raises(SettingsError, match="LANGUARD_CONSOLE_LOG_MAX_BYTES is invalid"):
        load_settings(_env_file=None, console_log_max_bytes=1000)
    with pytest.raises(SettingsError, match="LANGUARD_CONSOLE_LOG_KEEP is invalid"):
        load_settings(_env_file=None, console_log_keep=-1)


def _row(consumer: str, offset: int, file_id: str = "f", source: str = "console") -> StoredOffset:
    return StoredOffset(source, consumer, file_id, offset)


def test_a_rotation_cuts_only_what_every_consumer_committed() -> None:
    rows = [_row(READER, 9000), _row("channel:1", 7000), _row("channel:2", 8500)]
    assert rotation_floor(rows, "console", "f", max_lag=5000) == 7000
    # a consumer far behind (an outbox that stopped) is not waited for
    assert rotation_floor(rows, "console", "f", max_lag=1000) == 8500
    # cursors in another file or source do not count; no reader row: nothing is safe
    other = [_row(READER, 9000), _row("channel:1", 10, "old"), _row("channel:1", 5, source="rpt")]
    assert rotation_floor(other, "console", "f", max_lag=5000) == 9000
    assert rotation_floor([_row("channel:1", 5)], "console", "f", max_lag=5000) is None
