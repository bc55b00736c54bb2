"""Passwords at rest are Fernet-encrypted; the key never sits beside them in plain sight.

The key comes from `LANGUARD_SECRET_KEY`, or is generated once into the data folder with
mode 0600 so a fresh install works without setup.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from core.fsutil import atomic_write, private_dir

__all__ = ["SecretBox", "SecretError", "load_or_create_key"]

KEY_FILE_NAME = "secret.key"


class SecretError(Exception):
    """A secret could not be decrypted (wrong key or damaged value)."""


def load_or_create_key(data_dir: Path, configured: str | None = None) -> bytes:
    """The configured key, else the one in the data folder, else a new one saved there.

    A new key is written atomically (temp file, fsync, rename), so a full disk can never
    leave an empty or half-written key behind. An empty key file (left by an older version
    on a full disk) encrypted nothing and is replaced; any other unreadable key is an error
    that names the file, because replacing it would orphan every stored password.
    """
    if configured:
        key = configured.strip().encode("ascii")
        Fernet(key)  # raises ValueError on a malformed key
        return key
    private_dir(data_dir)
    path = data_dir / KEY_FILE_NAME
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        key = b""
    if not key:
        key = Fernet.generate_key()
        atomic_write(path, key + b"\n", mode=0o600)
        return key
    os.chmod(path, 0o600)
    try:
        Fernet(key)
    except ValueError:
        raise SecretError(
            f"{path} does not hold a valid key; restore it from a backup, or set "
            "LANGUARD_SECRET_KEY (stored passwords need the key they were encrypted with)"
        ) from None
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
