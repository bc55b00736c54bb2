"""Passwords at rest are Fernet-encrypted; the key never sits beside them in plain sight.

The key comes from `LANGUARD_SECRET_KEY`, or is generated once into the data folder with
mode 0600 so a fresh install works without setup.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["SecretBox", "SecretError", "load_or_create_key"]

KEY_FILE_NAME = "secret.key"


class SecretError(Exception):
    """A secret could not be decrypted (wrong key or damaged value)."""


def load_or_create_key(data_dir: Path, configured: str | None = None) -> bytes:
    """The configured key, else the one in the data folder, else a new one saved there."""
    if configured:
        key = configured.strip().encode("ascii")
        Fernet(key)  # raises ValueError on a malformed key
        return key
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / KEY_FILE_NAME
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        key = Fernet.generate_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, key + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        return key
    os.chmod(path, 0o600)
    Fernet(key)
    return key


class SecretBox:
    """Encrypts and decrypts short secrets (server, admin and RCon passwords)."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plain: str) -> bytes:
        return self._fernet.encrypt(plain.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode("utf-8")
        except InvalidToken:
            raise SecretError("a stored secret cannot be decrypted with this key") from None
