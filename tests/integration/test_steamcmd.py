"""SteamCMD jobs against the fake steamcmd.sh: real child processes, real files.

The fake (tests/fakes/fake_steamcmd.py) follows shared/reference/steamcmd-workshop-and-
headless.md; each test sets its knobs in control.json and reads back what it did in
fake_events.jsonl (argv, attempts, resumed bytes, pids).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from pydantic import SecretStr

from core.errors import LanguardError
from core.jobs import JobQueue, JobState, JobUpdate
from core.steam import (
    RetryPolicy,
    SteamAccessDenied,
    SteamAccount,
    SteamCmd,
    SteamCmdError,
    SteamCmdUnavailable,
    SteamGuardRequired,
    SteamLoginFailed,
    SteamProgress,
    SteamTimeout,
    WorkshopDownloadFailed,
)
from core.steam.acf import content_dir, installed_items
from core.steam.jobs import PROGRESS_SCALE, submit_workshop_download
from tests.fakes.steamcmd_bin import FakeSteamCmd, install_fake_steamcmd

CBA, ACE, RHS = 450814997, 463939057, 843425103
PASSWORD = "Pa55 w0rd!xyzzy"
FAST = RetryPolicy(
    max_attempts=4, backoff_base=0.05, backoff_cap=0.2, stall_timeout=30.0, kill_grace=1.0
)
OWNER = {"opsteam": {"password": PASSWORD}}


def fake_at(tmp_path: Path, **control: Any) -> FakeSteamCmd:
    control.setdefault("accounts", OWNER)
    return install_fake_steamcmd(tmp_path / "steamcmd", control)


def steam_for(
    fake: FakeSteamCmd,
    tmp_path: Path,
    user: str | None = "opsteam",
    password: str | None = PASSWORD,
    policy: RetryPolicy = FAST,
) -> SteamCmd:
    account = SteamAccount(user, SecretStr(password) if password else None)
    return SteamCmd(
        fake.executable, account, work_dir=tmp_path / "work", policy=policy, poll_interval=0.05
    )


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)
    return result


async def test_two_items_one_timeout_then_resume(tmp_path: Path) -> None:
    fake = fake_at(
        tmp_path,
        items={
            str(CBA): {"name": "CBA_A3", "size": 200_000, "timeout_at": 40, "delay": 1.0},
            str(ACE): {"name": "ACE", "size": 30_000, "odd_keys": True},
        },
    )
    install = tmp_path / "arma3"
    seen: list[SteamProgress] = []
    got = await steam_for(fake, tmp_path).download_items(
        install, [CBA, ACE], seen.append, expected_sizes={CBA: 200_000, ACE: 30_000}
    )

    assert [(item.item_id, item.path) for item in got] == [
        (CBA, content_dir(install, CBA)),
        (ACE, content_dir(install, ACE)),
    ]
    assert (content_dir(install, ACE) / "Some/Deep/Folder/ACE_Deep.bikey").is_file()
    assert set(installed_items(install)) == {CBA, ACE}
    # first run: both items, CBA timed out at 40 %; second run: only CBA, resumed from there
    starts = fake.events("start")
    assert len(starts) == 2
    assert str(ACE) in starts[0]["argv"] and str(ACE) not in starts[1]["argv"]
    timed_out_at = fake.events("timeout")[0]["have"]
    assert timed_out_at == 80_000 + 0  # 40 % of 200 000
    assert [e["have"] for e in fake.events("resumed")] == [timed_out_at]
    # one bar, never going back, that ends full
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions)
    assert any(0.0 < f < 1.0 for f in fractions)
    assert seen[-1].stage == "done" and seen[-1].fraction == 1.0 and seen[-1].items_done == 2
    assert "retrying" in {p.stage for p in seen}
    assert {p.attempt for p in seen} == {1, 2}


async def test_missing_decryption_key_anonymous_stops_at_once(tmp_path: Path) -> None:
    fake = fake_at(tmp_path, items={str(CBA): {}})
    steam = steam_for(fake, tmp_path, user=None, password=None)
    with pytest.raises(SteamAccessDenied) as caught:
        await steam.download_items(tmp_path / "arma3", [CBA])
    message = str(caught.value)
    assert "anonymously" in message and "LANGUARD_STEAM_USER" in message
    assert caught.value.params["item_id"] == CBA
    assert "Missing decryption key" in fake.workshop_log()  # where SteamCMD writes the cause
    assert len(fake.events("start")) == 1  # no retries


async def test_missing_decryption_key_for_an_account_without_the_game(tmp_path: Path) -> None:
    fake = fake_at(
        tmp_path,
        accounts={"opsteam": {"password": PASSWORD, "owns": [233780]}},
        items={str(CBA): {}},
    )
    with pytest.raises(SteamAccessDenied, match=r"opsteam .* must own Arma 3"):
        await steam_for(fake, tmp_path).download_items(tmp_path / "arma3", [CBA])
    assert len(fake.events("start")) == 1


async def test_a_hanging_steamcmd_is_killed_with_its_children(tmp_path: Path) -> None:
    fake = fake_at(tmp_path, hang="after_login", items={str(CBA): {}})
    policy = RetryPolicy(max_attempts=1, stall_timeout=1.0, kill_grace=0.5)
    started = time.monotonic()
    with pytest.raises(SteamTimeout, match="stopped answering"):
        await steam_for(fake, tmp_path, policy=policy).download_items(tmp_path / "a3", [CBA])
    assert time.monotonic() - started < 20
    hang = fake.events("hang")[0]
    # both ignore SIGTERM: only the group SIGKILL after the grace period ends them
    # SIGKILL is delivered asynchronously: give the kernel a moment to finish them
    await until(lambda: gone(hang["pid"]) and gone(hang["child"]), 5, "the processes to end")


async def test_cancelling_the_job_kills_steamcmd(tmp_path: Path) -> None:
    fake = fake_at(tmp_path, hang="during_download", items={str(CBA): {}})
    policy = RetryPolicy(max_attempts=1, stall_timeout=600.0, kill_grace=0.5)
    job = asyncio.create_task(
        steam_for(fake, tmp_path, policy=policy).download_items(tmp_path / "a3", [CBA])
    )
    hang = (await until(lambda: fake.events("hang"), 30, "the fake to hang"))[0]
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(job, timeout=20)
    # SIGKILL is delivered asynchronously: give the kernel a moment to finish them
    await until(lambda: gone(hang["pid"]) and gone(hang["child"]), 5, "the processes to end")
    assert not list((tmp_path / "work").iterdir())  # the login runscript is gone too


async def test_stale_record_is_repaired_before_downloading(tmp_path: Path) -> None:
    fake = fake_at(tmp_path, items={str(CBA): {"size": 5000}})
    install = tmp_path / "arma3"
    steam = steam_for(fake, tmp_path)
    await steam.download_items(install, [CBA])
    for path in sorted(content_dir(install, CBA).rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    content_dir(install, CBA).rmdir()  # an admin deleted the folder; the record stays

    got = await steam.download_items(install, [CBA])

    assert (got[0].path / "meta.cpp").is_file()
    assert not fake.events("trusted_record")  # SteamCMD never saw the stale record
    assert [e["event"] for e in fake.events() if e["event"] in {"fresh", "resumed"}] == [
        "fresh",
        "fresh",
    ]


async def test_success_without_a_folder_is_repaired_and_retried(tmp_path: Path) -> None:
    fake = fake_at(tmp_path, items={str(RHS): {"size": 5000, "phantom_first": True}})
    got = await steam_for(fake, tmp_path).download_items(tmp_path / "arma3", [RHS])
    assert (got[0].path / "mod.cpp").is_file()
    assert len(fake.events("phantom")) == 1 and len(fake.events("fresh")) == 1
    assert not fake.events("trusted_record")  # the repaired record did not fool it again


async def test_password_never_in_logs_argv_or_messages(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG, logger="core.steam")
    monkeypatch.setenv("LANGUARD_STEAM_PASSWORD", PASSWORD)
    monkeypatch.setenv("DISCORD_TOKEN", "not-for-steamcmd")
    fake = fake_at(tmp_path, echo_script=True, items={str(CBA): {"size": 1000}})
    await steam_for(fake, tmp_path).download_items(tmp_path / "arma3", [CBA])
    assert 'Steam>login opsteam "***"' in caplog.text  # SteamCMD echoed it: masked
    wrong = steam_for(fake, tmp_path, password=PASSWORD + "-wrong")
    with pytest.raises(SteamLoginFailed) as caught:
        await wrong.download_items(tmp_path / "arma3", [CBA])

    assert "LANGUARD_STEAM_PASSWORD" in str(caught.value)
    assert "w0rd" not in str(caught.value) and "w0rd" not in repr(caught.value.params)
    assert "w0rd" not in caplog.text
    for start in fake.events("start"):  # what `ps` would show
        assert not any("w0rd" in token for token in start["argv"])
        assert "+runscript" in start["argv"]
        assert start["bot_env"] == []  # nor its environment
    assert [e["with_password"] for e in fake.events("login")] == [True, True]
    assert not list((tmp_path / "work").iterdir())


@pytest.mark.parametrize(
    ("account", "error", "words"),
    [
        ({"password": "other"}, SteamLoginFailed, "refused the password"),
        ({"password": PASSWORD, "rate_limited": True}, SteamLoginFailed, "limiting logins"),
        ({"password": PASSWORD, "guard": "email"}, SteamGuardRequired, "Steam Guard"),
        ({"password": PASSWORD, "guard": "mobile"}, SteamGuardRequired, "Steam Guard"),
    ],
)
async def test_login_failures_are_not_retried(
    tmp_path: Path, account: dict[str, Any], error: type[Exception], words: str
) -> None:
    fake = fake_at(tmp_path, accounts={"opsteam": account}, items={str(CBA): {}})
    started = time.monotonic()
    with pytest.raises(error, match=words):
        await steam_for(fake, tmp_path).download_items(tmp_path / "arma3", [CBA])
    assert len(fake.events("start")) == 1
    assert gone(fake.events("start")[0]["pid"])  # the guard question waits forever otherwise
    assert time.monotonic() - started < 20


async def test_item_that_times_out_every_time_gives_up(tmp_path: Path) -> None:
    fake = fake_at(tmp_path, items={str(CBA): {"fail": "Timeout"}, str(ACE): {"size": 100}})
    with pytest.raises(WorkshopDownloadFailed) as caught:
        await steam_for(fake, tmp_path).download_items(tmp_path / "arma3", [CBA, ACE])
    assert str(caught.value) == f"1 of 2 Workshop items could not be downloaded: {CBA} (Timeout)"
    assert len(fake.events("start")) == FAST.max_attempts


async def test_flood_of_output_and_a_huge_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="core.steam.session")
    fake = fake_at(tmp_path, flood=20_000, long_line=3_000_000, items={str(CBA): {"size": 500}})
    got = await steam_for(fake, tmp_path).download_items(tmp_path / "arma3", [CBA])
    assert got[0].size == fake.events("fresh")[0]["total"]
    lines = [r.getMessage() for r in caplog.records if r.name == "core.steam.session"]
    assert len(lines) > 20_000
    assert max(len(line) for line in lines) < 4200  # the 3 MB line was cut to max_line


async def test_server_install_progress_and_retry(tmp_path: Path) -> None:
    fake = fake_at(
        tmp_path,
        apps={"233780": {"size": 1_000_000, "decimal_comma": True, "fail": "0x602",
                         "fail_on": "first"}},
    )  # fmt: skip
    seen: list[SteamProgress] = []
    result = await steam_for(fake, tmp_path).update_app(tmp_path / "server", seen.append)
    assert result.app_id == 233780 and not result.up_to_date
    assert (tmp_path / "server" / "steamapps" / "appmanifest_233780.acf").is_file()
    assert [e["attempt"] for e in fake.events("app_update")] == [1, 2]
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and seen[-1].fraction == 1.0
    assert any(0.0 < f < 1.0 for f in fractions)
    # the callback gets the newest value only, so fast phases may be skipped; these stay
    assert {"retrying", "done"} <= {p.stage for p in seen}


async def test_server_install_anonymous_has_no_subscription(tmp_path: Path) -> None:
    fake = fake_at(tmp_path)
    steam = steam_for(fake, tmp_path, user=None, password=None)
    with pytest.raises(SteamAccessDenied, match="anonymously"):
        await steam.update_app(tmp_path / "server")
    assert len(fake.events("start")) == 1


async def test_disk_full_is_not_retried(tmp_path: Path) -> None:
    fake = fake_at(tmp_path, apps={"233780": {"fail": "0x202"}})
    with pytest.raises(SteamCmdError, match="not enough disk space"):
        await steam_for(fake, tmp_path).update_app(tmp_path / "server")
    assert len(fake.events("start")) == 1


async def test_steamcmd_missing(tmp_path: Path) -> None:
    steam = SteamCmd(tmp_path / "nope" / "steamcmd.sh", work_dir=tmp_path / "work")
    with pytest.raises(SteamCmdUnavailable) as caught:
        await steam.download_items(tmp_path / "arma3", [CBA])
    assert str(tmp_path) not in str(caught.value)


async def test_jobs_wait_their_turn_in_the_host_queue(tmp_path: Path) -> None:
    fake = fake_at(
        tmp_path,
        items={str(CBA): {"size": 100_000, "delay": 0.5}, str(ACE): {"size": 1000}},
    )
    steam = steam_for(fake, tmp_path)
    queue = JobQueue()
    first_updates: list[JobUpdate] = []
    second_updates: list[JobUpdate] = []
    try:
        first = submit_workshop_download(
            queue, steam, tmp_path / "a3", [CBA], on_update=first_updates.append,
            expected_sizes={CBA: 100_000},
        )  # fmt: skip
        second = submit_workshop_download(
            queue, steam, tmp_path / "a3", [ACE], on_update=second_updates.append
        )
        await until(lambda: first.state is JobState.RUNNING, 10, "the first job to run")
        assert second.state is JobState.QUEUED and second.place == 1  # behind one job
        with pytest.raises(LanguardError, match="already waiting or running"):
            submit_workshop_download(queue, steam, tmp_path / "a3", [ACE])
        assert [item.item_id for item in await asyncio.wait_for(first.result(), 30)] == [CBA]
        assert [item.item_id for item in await asyncio.wait_for(second.result(), 30)] == [ACE]
    finally:
        await queue.close()
    running = [u for u in first_updates if u.state is JobState.RUNNING]
    assert running and all(u.total == PROGRESS_SCALE for u in running if u.step)
    dones = [u.done for u in running if u.step]
    assert dones == sorted(dones) and dones[-1] == PROGRESS_SCALE
    assert (JobState.QUEUED, 1) in [(u.state, u.place) for u in second_updates]
    assert second_updates[-1].state is JobState.DONE
    # the second SteamCMD run started only after the first one ended
    starts, exits = fake.events("start"), fake.events("exit")
    assert starts[1]["pid"] != starts[0]["pid"]
    assert fake.events().index(exits[0]) < fake.events().index(starts[1])


async def test_cancelling_a_queued_job_stops_steamcmd(tmp_path: Path) -> None:
    fake = fake_at(tmp_path, hang="during_download", items={str(CBA): {}})
    policy = RetryPolicy(max_attempts=1, stall_timeout=600.0, kill_grace=0.5)
    queue = JobQueue()
    try:
        job = submit_workshop_download(
            queue, steam_for(fake, tmp_path, policy=policy), tmp_path / "a3", [CBA]
        )
        hang = (await until(lambda: fake.events("hang"), 30, "the fake to hang"))[0]
        assert job.cancel()
        with pytest.raises(LanguardError, match="cancelled"):
            await asyncio.wait_for(job.result(), 20)
        assert job.state is JobState.CANCELLED
    finally:
        await queue.close()
    await until(lambda: gone(hang["pid"]) and gone(hang["child"]), 5, "the processes to end")
