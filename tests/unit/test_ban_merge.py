"""The ban merge, without games: bans.txt and Minecraft's ban files read and merged, which
found bans are new to the ledger, and the ledger's `origin` column on an existing database."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from core.games.arma3_bans import (
    MAX_BANS_TXT,
    MAX_FOUND,
    found_in_bans_txt,
    merge_bans_txt,
    parse_ban_line,
    read_bans_txt,
)
from core.games.arma3_config import BanLine
from core.games.base import BanKind, GameBan
from core.games.minecraft_bans import found_in_ban_files, merge_ban_files, offline_uuid
from core.services.ban_import import new_found
from data.db import Database
from data.repositories.bans import Ban, BanOrigin, BanRepository, FoundBan

NOW = 1_700_000_000.0
G1 = "80a5885ebe2420bab5e158a310fcbc7d"
G2 = "20446897121fafa82c1069ed07820f27"
G3 = "331e64806b30277076963283eea16438"
UUID_A = "069a79f4-44e9-4726-a5be-fca90e38aaf5"
MIGRATIONS = Path(__file__).parents[2] / "data" / "migrations"


def guid_ban(
    value: str, expires_at: float | None = None, reason: str = "", *, lifted: bool = False
) -> GameBan:
    return GameBan(BanKind.GUID, value, expires_at, reason, lifted=lifted)


# -- bans.txt ----------------------------------------------------------------------------------


def test_a_bans_txt_line_is_a_ban_only_when_battleye_would_read_it() -> None:
    assert parse_ban_line(f"{G1} -1 Cheating".encode()) == BanLine(G1, -1, "Cheating")
    assert parse_ban_line(f"{G1.upper()}\t1700000600  tk  \r".encode()) == BanLine(
        G1, 1700000600, "tk"
    )
    assert parse_ban_line(b"10.0.0.7 -1") == BanLine("10.0.0.7", -1, "")
    for junk in (
        b"",
        b"# a comment",
        b"2001:db8::1 -1 ipv6",
        f"{G1} soon reason".encode(),
        f"{G1} -5 reason".encode(),
        f"{G1} 1234567890123 too far".encode(),
        b"\xff\xfe binary",
        f"{G1}".encode(),
        b"x" * 100_000,
    ):
        assert parse_ban_line(junk) is None, junk[:40]


def test_found_bans_skip_the_expired_keep_the_longest_and_are_bounded() -> None:
    text = (
        f"{G1} {int(NOW) + 60} short\n{G1} -1 forever\n{G2} {int(NOW) - 1} gone\n"
        f"10.1.2.3 {int(NOW) + 600} vpn\nnot a ban\n"
    ).encode()
    found = found_in_bans_txt(text, now=NOW)
    assert found == [
        GameBan(BanKind.GUID, G1, None, "forever"),
        GameBan(BanKind.IP, "10.1.2.3", NOW + 600, "vpn"),
    ]
    many = b"".join(f"{n:032x} -1 r\n".encode() for n in range(MAX_FOUND + 50))
    assert len(found_in_bans_txt(many, now=NOW)) == MAX_FOUND


def test_merging_keeps_every_unknown_line_byte_for_byte() -> None:
    before = [
        b"\xff\xfe\x00binary junk",
        f"{G3} -1 made by hand".encode(),
        b"2001:db8::1 -1 not a BattlEye ban",
        f"{G1.upper()} -1 ours, written by another hand\r".encode(),
        f"{G2} {int(NOW) + 60} ours, about to be replaced".encode(),
        b"10.9.9.9 -1 lifted by the bot",
        f"{G1} -1 a duplicate of ours".encode(),
    ]
    data = b"\n".join(before)  # (no newline at the end)
    bans = [
        guid_ban(G1, None, "ours"),
        guid_ban(G2, NOW + 86400, "replaced: longer"),
        GameBan(BanKind.IP, "10.9.9.9", None, lifted=True),
        GameBan(BanKind.IP, "10.1.1.1", NOW + 3600, "new\nline"),
        GameBan(BanKind.NAME, "Steve", None),  # not an Arma ban: ignored
    ]
    merged = merge_bans_txt(data, bans, now=NOW)
    assert merged is not None
    assert merged.split(b"\n") == [
        before[0],
        before[1],
        before[2],
        before[3],  # agrees with the ledger: kept as it was written
        f"{G2} {int(NOW) + 86400} replaced: longer".encode(),
        f"10.1.1.1 {int(NOW) + 3600} new line".encode(),
        b"",
    ]
    assert merge_bans_txt(merged, bans, now=NOW) is None, "nothing more to change"
    assert merge_bans_txt(b"", [], now=NOW) is None
    assert merge_bans_txt(data, [], now=NOW) is None, "no ledger: the file is not touched"


def test_a_lifted_ban_the_ledger_holds_again_is_kept() -> None:
    data = f"{G1} -1 old\n".encode()
    bans = [guid_ban(G1, lifted=True), guid_ban(G1, None, "again")]
    assert merge_bans_txt(data, bans, now=NOW) is None


def test_reading_bans_txt_is_bounded_and_stays_in_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "server"
    (folder / "battleye").mkdir(parents=True)
    path = folder / "battleye" / "bans.txt"
    assert read_bans_txt(path, folder) == b""
    path.write_bytes(b"x" * (MAX_BANS_TXT + 1))
    assert read_bans_txt(path, folder) is None, "too big: left alone"
    path.unlink()
    secret = tmp_path / "secret.txt"
    secret.write_text(f"{G1} -1 not for the bot\n")
    os.symlink(secret, path)
    assert read_bans_txt(path, folder) is None, "a link out of the folder is not followed"


# -- Minecraft ---------------------------------------------------------------------------------


def _player(name: str, expires: str = "forever", **extra: object) -> dict[str, object]:
    return {
        "uuid": offline_uuid(name),
        "name": name,
        "created": "2023-01-02 03:04:05 +0000",
        "source": "Server",
        "expires": expires,
        "reason": f"{name} was bad",
        **extra,
    }


def test_minecraft_found_bans_carry_name_uuid_expiry_and_source(tmp_path: Path) -> None:
    (tmp_path / "banned-players.json").write_text(
        json.dumps(
            [
                _player("Griefer"),
                _player("Tempy", expires="2099-01-01 00:00:00 +0000", source="Notch"),
                _player("Gone", expires="2001-01-01 00:00:00 +0000"),
                _player("Baddate", expires="next tuesday"),
                {"uuid": UUID_A.upper(), "name": "not a valid name!", "reason": "r"},
                "junk",
                42,
            ]
        )
    )
    (tmp_path / "banned-ips.json").write_text(
        json.dumps([{"ip": "10.0.0.66", "reason": "proxy"}, {"ip": "::1"}, {"ip": 7}])
    )
    found = found_in_ban_files(tmp_path, now=NOW)
    assert found == [
        GameBan(
            BanKind.NAME, "Griefer", None, "Griefer was bad", offline_uuid("Griefer"), "Server"
        ),
        GameBan(
            BanKind.NAME, "Tempy", 4070908800.0, "Tempy was bad", offline_uuid("Tempy"), "Notch"
        ),
        GameBan(BanKind.UUID, UUID_A, None, "r"),
        GameBan(BanKind.IP, "10.0.0.66", None, "proxy"),
    ]
    (tmp_path / "banned-ips.json").write_text("{not json")
    assert len(found_in_ban_files(tmp_path, now=NOW)) == 3, "an unreadable file is skipped"


def test_minecraft_merge_keeps_unknown_entries_and_drops_only_the_lifted(tmp_path: Path) -> None:
    odd = {"uuid": "not-a-uuid", "name": "Odd", "custom": {"kept": True}}
    lifted_by_uuid = _player("Liftme")
    players = [_player("Griefer", note="extra key"), odd, "junk", lifted_by_uuid, _player("Alex")]
    (tmp_path / "banned-players.json").write_text(json.dumps(players))
    ips = [{"ip": "10.0.0.66", "reason": "proxy"}, {"ip": "10.0.0.67", "reason": "lift"}]
    (tmp_path / "banned-ips.json").write_text(json.dumps(ips))
    bans = [
        GameBan(BanKind.UUID, offline_uuid("Liftme"), None, lifted=True),
        GameBan(BanKind.NAME, "alex", None, lifted=True),
        GameBan(BanKind.NAME, "Alex", None, "again"),  # ...but held again: kept
        GameBan(BanKind.IP, "10.0.0.67", None, lifted=True),
        GameBan(BanKind.NAME, "Newbie", None, "fresh"),
    ]
    files = {
        f.path.name: json.loads(f.content)
        for f in merge_ban_files(tmp_path, bans, offline=True, now=NOW)
    }
    merged = files["banned-players.json"]
    assert merged[:4] == [players[0], odd, "junk", players[4]], "kept exactly, in order"
    assert merged[4]["name"] == "Newbie" and set(merged[4]) == {
        "uuid",
        "name",
        "created",
        "source",
        "expires",
        "reason",
    }
    assert files["banned-ips.json"] == [ips[0]]
    (tmp_path / "banned-players.json").write_text("[{broken")
    again = merge_ban_files(tmp_path, bans, offline=True, now=NOW)
    assert [f.path.name for f in again] == ["banned-ips.json"], "unreadable: left alone"
    assert merge_ban_files(tmp_path, [], offline=True, now=NOW) == []


# -- which found bans are new ------------------------------------------------------------------


def _ledger(kind: BanKind, value: str, ban_id: int = 1) -> Ban:
    return Ban(
        id=ban_id,
        kind=kind,
        value=value,
        server_id=1,
        server_name="alpha",
        reason="",
        author_id=None,
        author_name="mod",
        created_at=NOW,
        expires_at=None,
        expired_at=None,
        removed_at=None,
        removed_by_id=None,
        removed_by_name=None,
    )


def test_new_found_bans_are_those_the_ledger_does_not_know() -> None:
    kinds = frozenset({BanKind.GUID, BanKind.IP})
    known = [_ledger(BanKind.GUID, G1), _ledger(BanKind.IP, "10.0.0.1", 2)]
    found = [
        guid_ban(G1.upper(), NOW + 60, "ours"),
        GameBan(BanKind.IP, "10.0.0.1", None),
        guid_ban(G2, NOW + 60, "short"),
        guid_ban(G2, None, "longest\nwins"),
        guid_ban(G3, NOW - 1, "expired"),
        GameBan(BanKind.NAME, "Steve", None),
        guid_ban("not-a-guid", None),
        GameBan(BanKind.IP, "10.0.0.2", None, "x" * 5000, source="Some\x00Admin"),
    ]
    assert new_found(found, known, kinds, NOW) == [
        FoundBan(BanKind.GUID, G2, "longest wins", "game", None),
        FoundBan(BanKind.IP, "10.0.0.2", "x" * 200, "Some Admin", None),
    ]
    lots = [guid_ban(f"{n:032x}") for n in range(50)]
    assert len(new_found(lots, [], kinds, NOW, limit=10)) == 10


def test_a_minecraft_ban_is_known_by_its_name_or_its_uuid() -> None:
    kinds = frozenset({BanKind.NAME, BanKind.UUID, BanKind.IP})
    known = [_ledger(BanKind.UUID, UUID_A), _ledger(BanKind.NAME, "Steve", 2)]
    found = [
        GameBan(BanKind.NAME, "Alex", None, alias=UUID_A.upper()),
        GameBan(BanKind.NAME, "steve", None, alias=offline_uuid("steve")),
        GameBan(BanKind.NAME, "Griefer", None, alias=offline_uuid("Griefer")),
    ]
    assert [f.value for f in new_found(found, known, kinds, NOW)] == ["Griefer"]


# -- the ledger's origin on an existing database -----------------------------------------------


async def test_bans_made_before_the_migration_are_languard_s_own(tmp_path: Path) -> None:
    older = tmp_path / "older"
    older.mkdir()
    for script in sorted(MIGRATIONS.glob("*.sql")):
        if script.name < "0007":
            shutil.copy(script, older / script.name)
    db = await Database.open(tmp_path / "l.db", migrate=False)
    try:
        await db.migrate(older)
        await db.execute(
            "INSERT INTO bans(kind, value, reason, author_name, created_at)"
            " VALUES ('guid', ?, 'old', 'mod', ?)",
            (G1, NOW),
        )
        assert "0007_ban_origin.sql" in await db.migrate()
        repo = BanRepository(db)
        old = await repo.get(1)
        assert old is not None and old.origin is BanOrigin.LANGUARD
        await db.execute(
            "INSERT INTO servers(name, game, created_at, state_changed_at)"
            " VALUES ('alpha', 'arma3', 0, 0)"
        )
        await repo.add_found(1, [FoundBan(BanKind.GUID, G2, "r", "game", None)], NOW)
        [found] = [b for b in await repo.active_for(1, frozenset({BanKind.GUID}), NOW) if b.id != 1]
        assert (found.origin, found.server_id, found.author_id) == (BanOrigin.GAME, 1, None)
        await repo.add_lifts(found.id, [1])
        assert [b.id for b in await repo.lifted_on(1)] == [found.id]
        await repo.clear_lifts(1, [found.id])
        assert await repo.lifted_on(1) == []
    finally:
        await db.close()
