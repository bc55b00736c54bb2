"""bot/logging_setup.py: stderr always, a private rotating file when asked, and discord.py's
voice warnings dropped by a filter while its other warnings still pass."""

from __future__ import annotations

import io
import logging
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.logging_setup import FILE_BACKUPS, FILE_MAX_BYTES, configure_logging

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord
    from discord.voice_client import VoiceClient


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    source = logging.getLogger("discord.client")
    filters = list(source.filters)
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    source.filters[:] = filters


def test_discords_voice_warnings_are_dropped_and_other_warnings_kept(
    tmp_path: Path, restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    log_file = tmp_path / "logs" / "nested" / "languard.log"
    handlers = configure_logging(logging.INFO, log_file, stream=stream)
    assert len(handlers) == 2
    # the real discord.py emits them in Client.__init__, once per process: re-arm and build one
    monkeypatch.setattr(VoiceClient, "warn_nacl", True)
    monkeypatch.setattr(VoiceClient, "warn_dave", True)
    discord.Client(intents=discord.Intents.none())
    logging.getLogger("discord.client").warning("Application has an interaction endpoint URL")
    logging.getLogger("discord.gateway").warning(
        "PyNaCl is not installed, voice will NOT be supported"
    )
    logging.getLogger("bot").info("hello %s", "operator")
    for handler in handlers:
        handler.flush()
    for text in (stream.getvalue(), log_file.read_text()):
        assert "discord.client: PyNaCl" not in text
        assert "davey" not in text
        assert "discord.client: Application has an interaction endpoint URL" in text
        assert "discord.gateway: PyNaCl is not installed" in text, "only the exact source"
        assert "INFO bot: hello operator" in text


def test_the_file_is_private_rotated_and_configuring_twice_does_not_duplicate(
    tmp_path: Path, restore_logging: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL + 1)  # keep pytest's own capture out of the output
    log_file = tmp_path / "languard.log"
    configure_logging(logging.INFO, log_file, stream=io.StringIO())
    handlers = configure_logging(logging.INFO, log_file, stream=io.StringIO())
    ours = [h for h in logging.getLogger().handlers if h in handlers]
    marked = [h for h in logging.getLogger().handlers if getattr(h, "_languard_handler", False)]
    assert ours == marked and len(ours) == 2, "the first call's handlers were replaced"
    file_handler = handlers[1]
    assert isinstance(file_handler, logging.handlers.RotatingFileHandler)
    assert (file_handler.maxBytes, file_handler.backupCount) == (FILE_MAX_BYTES, FILE_BACKUPS)
    file_handler.maxBytes = 2000  # rotate quickly for the test
    for i in range(300):
        logging.getLogger("bot").warning("line %03d %s", i, "x" * 40)
    file_handler.flush()
    files = sorted(tmp_path.glob("languard.log*"))
    assert len(files) == 1 + FILE_BACKUPS
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert "line 299" in log_file.read_text()


def test_without_a_log_file_only_stderr(restore_logging: None) -> None:
    stream = io.StringIO()
    handlers = configure_logging(logging.WARNING, None, stream=stream)
    assert len(handlers) == 1
    logging.getLogger("bot").info("not shown")
    logging.getLogger("bot").warning("shown")
    assert stream.getvalue().count("\n") == 1 and "WARNING bot: shown" in stream.getvalue()
