"""`python -m bot` refuses a malformed secret key or an unusable data folder with one line,
before it ever tries Discord (which here would only be retried: nothing listens)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.e2e.bot_process import RETRY_MARK, bot_env, free_port


def run_bot(tmp_path: Path, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=bot_env(data_dir, free_port(), DISCORD_TOKEN="fake-bot-token", **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and RETRY_MARK not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "key",
    [
        "not-a-key",
        Fernet.generate_key().decode()[:-1] + "A",  # 44 characters, no padding
        Fernet.generate_key().decode()[:40] + "+/+=",  # standard, not url-safe, base64
    ],
)
def test_a_malformed_secret_key_is_one_line_without_the_key(tmp_path: Path, key: str) -> None:
    line = one_line(run_bot(tmp_path, tmp_path / "var", LANGUARD_SECRET_KEY=key))
    assert line.startswith("languard: LANGUARD_SECRET_KEY is invalid")
    assert "Fernet key" in line and "leave it empty" in line
    assert key not in line
    assert not (tmp_path / "var").exists(), "nothing is created before the settings are good"


def test_a_good_secret_key_is_accepted(tmp_path: Path) -> None:
    from core.config import load_settings

    key = Fernet.generate_key().decode()
    settings = load_settings(secret_key=f" {key} ", discord_token="x")
    assert settings.secret_key is not None and settings.secret_key.get_secret_value() == key


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "var"
    target.write_text("not a folder")
    line = one_line(run_bot(tmp_path, target))
    assert "LANGUARD_DATA_DIR is invalid" in line and str(target) in line
    assert "is not a folder" in line and "use a folder path the bot may write to" in line


def test_a_data_dir_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "var"
    line = one_line(run_bot(tmp_path, target))
    assert "LANGUARD_DATA_DIR is invalid: cannot write to" in line and str(target) in line


def test_a_data_dir_that_is_not_writable_is_one_line(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = Path("/proc/self")  # a folder even root cannot create files in
    else:
        target = tmp_path / "readonly"
        target.mkdir(mode=0o500)
    line = one_line(run_bot(tmp_path, target))
    assert "LANGUARD_DATA_DIR is invalid: cannot write to" in line and str(target) in line


def test_an_api_base_other_than_loopback_http_is_refused(tmp_path: Path) -> None:
    for url in ("https://discord.com", "http://10.0.0.1:80", "http://127.0.0.1", "ftp://x"):
        line = one_line(run_bot(tmp_path, tmp_path / "var", LANGUARD_DISCORD_API_BASE=url))
        assert "LANGUARD_DISCORD_API_BASE" in line and "127.0.0.1" in line
