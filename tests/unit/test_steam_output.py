"""SteamCMD's console output -> events, from output shaped like the captures in
shared/reference/steamcmd-workshop-and-headless.md §1.2-1.4 (our own values)."""

from __future__ import annotations

import pytest

from core.steam.output import (
    AppFailed,
    AppInstalled,
    DecryptionKeyMissing,
    ErrorLine,
    GuardRequired,
    ItemDownloaded,
    ItemFailed,
    ItemStarted,
    LineSplitter,
    LoginFailed,
    LoginOk,
    LoginOrderWarning,
    OutputParser,
    Progress,
    split_segments,
)

APP_UPDATE = """\
Redirecting stderr to '/home/steam/Steam/logs/stderr.txt'
[  0%] Checking for available updates...
[----] Verifying installation...
Steam Console Client (c) Valve Corporation - version 1705108307
-- type 'quit' to exit --
Loading Steam API...OK
"@ShutdownOnFailedCommand" = "1"
Logging in user 'opsteam' to Steam Public...OK
Waiting for client config...OK
Waiting for user info...OK
 Update state (0x3) reconfiguring, progress: 0.00 (0 / 0)
 Update state (0x11) preallocating, progress: 20.58 (913951143 / 4440094933)
 Update state (0x61) downloading, progress: 42.17 (1872345678 / 4440094933)
 Update state (0x81) verifying update, progress: 8.18 (363199765 / 4440094933)
 Update state (0x101) committing, progress: 100.00 (4440094933 / 4440094933)
Success! App '233780' fully installed.
"""


def events_of(text: str) -> list[object]:
    parser = OutputParser()
    return [event for line in text.splitlines() for event in parser.feed(line)]


def test_app_update_session() -> None:
    events = events_of(APP_UPDATE)
    assert events[0] == LoginOk(anonymous=False)
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.state for p in progress] == [
        "reconfiguring",
        "preallocating",
        "downloading",
        "verifying update",
        "committing",
    ]
    assert progress[2] == Progress(0x61, "downloading", 42.17, 1872345678, 4440094933)
    assert events[-1] == AppInstalled(233780, up_to_date=False)
    assert not [e for e in events if isinstance(e, ErrorLine)]  # the convar echo is not an error


def test_decimal_comma_and_up_to_date() -> None:
    events = events_of(
        " Update state (0x61) downloading, progress: 12,49 (5 / 40)\n"
        "Success! App '233780' already up to date.\n"
    )
    assert events == [Progress(0x61, "downloading", 12.49, 5, 40), AppInstalled(233780, True)]


def test_app_failures() -> None:
    events = events_of(
        "Error! App '233780' state is 0x602 after update job.\n"
        "ERROR! Failed to install app '233780' (No subscription)\n"
        "ERROR! Timed out waiting for AppInfo update.\n"
    )
    assert events == [
        AppFailed(233780, "state 0x602", 0x602),
        AppFailed(233780, "No subscription"),
        AppFailed(None, "Timed out waiting for AppInfo update"),
    ]


def test_workshop_lines_glued_together() -> None:
    """Linux captures put the result and the next `Downloading item` on one line."""
    text = (
        "Downloading item 450814997 ...\n"
        'Success. Downloaded item 450814997 to "/srv/a3/steamapps/workshop/content/107410/'
        '450814997" (2652787 bytes)Downloading item 463939057 ...ERROR! Download item '
        "463939057 failed (Timeout).\n"
        "Downloading item 333310405 ...ERROR! Timeout downloading item 333310405\n"
    )
    assert events_of(text) == [
        ItemStarted(450814997),
        ItemDownloaded(450814997, "/srv/a3/steamapps/workshop/content/107410/450814997", 2652787),
        ItemStarted(463939057),
        ItemFailed(463939057, "Timeout"),
        ItemStarted(333310405),
        ItemFailed(333310405, "Timeout"),
    ]


def test_split_segments_keeps_a_plain_line_whole() -> None:
    assert split_segments("Loading Steam API...OK") == ["Loading Steam API...OK"]
    assert split_segments(
        'Success. Downloaded item 1 to "/x y" (3 bytes)Downloading item 2 ...'
    ) == [
        'Success. Downloaded item 1 to "/x y" (3 bytes)',
        "Downloading item 2 ...",
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Connecting anonymously to Steam Public...OK", LoginOk(anonymous=True)),
        (
            "Logging in user 'bob' to Steam Public...FAILED (Invalid Password)",
            LoginFailed("Invalid Password"),
        ),
        ("FAILED (Account Logon Denied)", LoginFailed("Account Logon Denied")),
        ("Login Failure: Rate Limit Exceeded (84)", LoginFailed("Rate Limit Exceeded (84)")),
        (
            "Login Failure: Two-factor code mismatch (88)",
            LoginFailed("Two-factor code mismatch (88)"),
        ),
        ("Logged in OK", LoginOk(anonymous=False)),
        ("Steam Guard code:", GuardRequired(mobile=False)),
        ("Two-factor code:", GuardRequired(mobile=True)),
        (
            "This computer has not been authenticated for your account using Steam Guard.",
            GuardRequired(mobile=False),
        ),
        ("Please use force_install_dir before logon!", LoginOrderWarning()),
    ],
)
def test_login_lines(line: str, expected: object) -> None:
    assert OutputParser().feed(line) == [expected]


def test_older_login_prints_result_later() -> None:
    assert OutputParser().feed("Logging in user 'bob' to Steam Public ...") == []


def test_decryption_key_in_a_log_line() -> None:
    line = (
        "[AppID 107410] Update canceled: Failed to initialize depot 107410, manifest 1 "
        "(Missing decryption key)"
    )
    assert DecryptionKeyMissing() in OutputParser().feed(line)


def test_noise_with_error_words_is_not_an_error() -> None:
    parser = OutputParser()
    assert (
        parser.feed(
            "dlmopen steamservice.so failed: steamservice.so: cannot open shared object file"
        )
        == []
    )
    assert parser.feed("WARNING: setlocale('en_US.UTF-8') failed, using locale: 'C'") == []
    assert parser.feed("something unexpected failed here") == [
        ErrorLine("something unexpected failed here")
    ]


def test_pending_item_is_announced_once() -> None:
    parser = OutputParser()
    assert parser.feed_pending("Downloading item 42 ...") == [ItemStarted(42)]
    assert parser.feed_pending("Downloading item 42 ...") == []
    glued = 'Success. Downloaded item 42 to "/x" (1 bytes)Downloading item 43 ...'
    assert parser.feed_pending(glued) == [ItemStarted(43)]
    assert parser.feed_pending("Loading Steam API...") == []


class TestLineSplitter:
    def test_lines_across_chunks_and_carriage_returns(self) -> None:
        splitter = LineSplitter()
        assert splitter.feed(b"first li") == []
        assert splitter.feed(b"ne\r\nsecond\rthird\n\n") == ["first line", "second", "third"]
        assert splitter.feed(b"tail") == []
        assert splitter.flush() == ["tail"]

    def test_long_line_is_cut_and_the_rest_dropped(self) -> None:
        splitter = LineSplitter(max_line=64)
        lines = splitter.feed(b"A" * 1000)
        lines += splitter.feed(b"B" * 100_000)
        lines += splitter.feed(b"C" * 10 + b"\nnext\n")
        assert lines == ["A" * 64, "next"]
        assert len(splitter._buffer) == 0

    def test_prompt_without_newline_is_taken(self) -> None:
        splitter = LineSplitter()
        assert splitter.feed(b"Steam Guard code:") == []
        assert splitter.take_prompt() == "Steam Guard code:"
        assert splitter.pending() == ""
        assert splitter.feed(b"Downloading item 5 ...") == []
        assert splitter.take_prompt() is None
        assert splitter.pending() == "Downloading item 5 ..."

    def test_invalid_utf8_is_replaced(self) -> None:
        assert LineSplitter().feed(b"caf\xe9 ok\n") == ["caf\ufffd ok"]
