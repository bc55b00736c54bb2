from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from core.config import SettingsError, load_settings
from core.secrets import SecretBox, SecretError, load_or_create_key


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("LANGUARD_") or key == "DISCORD_TOKEN":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "abc")
    monkeypatch.setenv("LANGUARD_GUILD_ID", "1234")
    monkeypatch.setenv("LANGUARD_LOG_LEVEL", "debug")
    settings = load_settings()
    assert settings.discord_token is not None
    assert settings.discord_token.get_secret_value() == "abc"
    assert "abc" not in repr(settings)
    assert settings.guild_id == 1234
    assert settings.log_level == "DEBUG"
    assert settings.data_dir == Path("./var")


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DISCORD_TOKEN=fromfile\nLANGUARD_GUILD_ID=\n")
    settings = load_settings()
    assert settings.discord_token is not None
    assert settings.discord_token.get_secret_value() == "fromfile"
    assert settings.guild_id is None


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("LANGUARD_GUILD_ID", "not-a-number", "LANGUARD_GUILD_ID is invalid"),
        ("LANGUARD_LOG_LEVEL", "loud", "LANGUARD_LOG_LEVEL is invalid"),
        ("LANGUARD_ARMA3_EXECUTABLE", "/usr/bin/bash", "LANGUARD_ARMA3_EXECUTABLE is invalid"),
        ("LANGUARD_MINECRAFT_COMMAND", "java 'unclosed", "LANGUARD_MINECRAFT_COMMAND is invalid"),
    ],
)
def test_wrong_values_give_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_minecraft_command_is_an_argument_list() -> None:
    settings = load_settings(minecraft_command="java -Xmx2G -jar 'my server.jar' nogui")
    assert settings.minecraft_argv == ["java", "-Xmx2G", "-jar", "my server.jar", "nogui"]


def test_key_generated_once_with_mode_0600(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "data")
    path = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(tmp_path / "data") == key


def test_configured_key_wins_and_is_validated(tmp_path: Path) -> None:
    configured = Fernet.generate_key().decode()
    assert load_or_create_key(tmp_path, configured) == configured.encode()
    assert not (tmp_path / "secret.key").exists()
    with pytest.raises(ValueError):
        load_or_create_key(tmp_path, "short")


def test_secret_box_round_trip_and_wrong_key() -> None:
    box = SecretBox(Fernet.generate_key())
    token = box.encrypt('hunter2 "quoted" ü')
    assert b"hunter2" not in token
    assert box.decrypt(token) == 'hunter2 "quoted" ü'
    with pytest.raises(SecretError):
        SecretBox(Fernet.generate_key()).decrypt(token)
