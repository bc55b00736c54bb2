"""Secrets under faults: a full disk at key creation, a damaged or undecryptable secret, a
password that is not valid text, and who may read the data folder."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from core.errors import InvalidInput, StartRefused
from core.secrets import KEY_FILE_NAME, SecretBox, SecretError, load_or_create_key
from core.services.audit import Actor, AuditLog
from core.services.servers import ServerService
from core.supervisor.states import ServerState
from data.repositories.history import AuditRepository
from tests.integration.supervision import supervised
from tests.integration.test_supervisor_storage_faults import fill, tiny_disk

S = ServerState
ALICE = Actor(1, "alice")


def test_a_full_disk_never_leaves_an_empty_key_behind(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk", "64k") as mounted:
        if not mounted:
            pytest.fail("this test needs to mount a tmpfs (run as root, as CI does)")
        data = tmp_path / "disk" / "data"
        data.mkdir()
        filler = fill(tmp_path / "disk")
        with pytest.raises(OSError):
            load_or_create_key(data)
        assert not (data / KEY_FILE_NAME).exists(), "no empty or half-written key"
        assert not list(data.glob(".secret.key.*")), "no temporary file left behind"
        filler.unlink()
        key = load_or_create_key(data)
        Fernet(key)
        assert load_or_create_key(data) == key


def test_an_empty_key_file_is_replaced_and_a_damaged_one_is_named(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / KEY_FILE_NAME).write_bytes(b"")  # left by an older version on a full disk
    key = load_or_create_key(data)
    Fernet(key)
    assert (data / KEY_FILE_NAME).read_bytes().strip() == key
    (data / KEY_FILE_NAME).write_bytes(b"not a key\n")
    with pytest.raises(SecretError, match=r"secret\.key does not hold a valid key"):
        load_or_create_key(data)


def test_the_data_folder_is_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    load_or_create_key(data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / KEY_FILE_NAME).stat().st_mode) == 0o600


async def test_a_password_that_is_not_valid_text_is_refused_at_validation(
    tmp_path: Path,
) -> None:
    async with supervised(tmp_path) as env:
        audit = AuditLog(AuditRepository(env.db))
        service = ServerService(env.supervisor, audit, SecretBox(env.key), public_host="x")
        await service.create(ALICE, "alpha", "fake")
        with pytest.raises(InvalidInput, match="not valid text"):
            await service.set_setting(ALICE, "alpha", "password", "abc\ud800def")
        server = env.supervisor.by_name("alpha")
        assert await env.supervisor.secrets_repo.keys(server.id) == []


async def test_one_undecryptable_secret_blocks_only_its_server(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    async with supervised(tmp_path, key=key) as env:
        audit = AuditLog(AuditRepository(env.db))
        service = ServerService(env.supervisor, audit, SecretBox(key), public_host="x")
        await service.create(ALICE, "broken", "fake")
        await service.create(ALICE, "fine", "fake")
        await service.set_setting(ALICE, "broken", "password", "hunter2-long")
        broken_id = env.supervisor.by_name("broken").id
        # a damaged row (or a key changed since): the ciphertext no longer decrypts
        await env.db.execute(
            "UPDATE secrets SET ciphertext = ? WHERE server_id = ?",
            (Fernet(Fernet.generate_key()).encrypt(b"x"), broken_id),
        )
    async with supervised(tmp_path, key=key) as env:  # the bot starts; nothing raises
        audit = AuditLog(AuditRepository(env.db))
        service = ServerService(env.supervisor, audit, SecretBox(key), public_host="x")
        broken = env.supervisor.by_name("broken")
        with pytest.raises(StartRefused, match=r"password cannot be decrypted.*/server set"):
            await broken.start()
        assert broken.state is S.STOPPED
        assert await env.supervisor.by_name("fine").start() is S.RUNNING
        # the fix the message names works
        await service.set_setting(ALICE, "broken", "password", "a-new-password")
        assert await broken.start() is S.RUNNING
