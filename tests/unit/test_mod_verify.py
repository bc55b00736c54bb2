"""The game's `List of mods` table read from log lines, time-stamped or not, Linux or
Windows paths, and each set's mod found loaded or not; plus the countdown's wording and
the maintenance's step words in French."""

from __future__ import annotations

from bot.i18n import catalogue
from core.mods.verify import ModListReader, check_loaded
from core.services.mod_maintenance import Step, warning_text

TABLE = [
    " 1:02:03 Host name: test",
    " 1:02:03 ============================ List of mods ============================",
    " 1:02:03 modsReadOnly = true",
    " 1:02:03 hashShort = '5f1e7b2a'",
    " 1:02:03            name |          modDir |  default |   origin | hash | fullPath",
    " 1:02:03 ------------------------------------------------------------------------",
    " 1:02:03   CBA_A3 v3.16 | modset/@cba_a3 |  false | GAME DIR | 9a3e | /srv/a/modset/@cba_a3",
    r" 1:02:03 ACE | @ACE |    false | GAME DIR | 77aa | C:\arma\!Workshop\@ACE",
    " 1:02:03     Arma 3 Apex |       expansion |     true | GAME DIR | 0b1c | /srv/a/expansion",
    " 1:02:03 ========================================================================",
    " 1:02:04 | not | a | row | after | the | table |",
]


def test_the_table_is_read_with_time_stamps_and_both_kinds_of_path() -> None:
    reader = ModListReader()
    reader.feed(TABLE[:5])
    assert reader.seen and not reader.done
    reader.feed(TABLE[5:])
    assert reader.done
    assert [row.name for row in reader.rows] == ["CBA_A3 v3.16", "ACE", "Arma 3 Apex"]
    assert [row.folder() for row in reader.rows] == ["@cba_a3", "@ace", "expansion"]
    loaded, missing = check_loaded(reader.rows, ["modset/@cba_a3", "modset/@ace", "modset/@rhs"])
    assert loaded == ("modset/@cba_a3", "modset/@ace") and missing == ("modset/@rhs",)


def test_full_time_stamps_and_no_table_at_all() -> None:
    stamped = [f"2026/12/06, 00:30:02 {line[9:]}" for line in TABLE]
    reader = ModListReader()
    reader.feed(stamped)
    assert reader.done and [row.name for row in reader.rows][:1] == ["CBA_A3 v3.16"]
    nothing = ModListReader()
    nothing.feed(["12:00:00 Dedicated host created.", "12:00:00 ======================"])
    assert not nothing.seen and not nothing.rows


def test_the_countdown_says_minutes_or_seconds() -> None:
    assert warning_text(300) == (
        "Mod update: the server restarts in 5 minutes; everyone will be kicked"
    )
    assert "in 1 minute;" in warning_text(60) and "in 10 seconds;" in warning_text(10)
    assert "in 1 second;" in warning_text(0.4) and "in 90 seconds;" in warning_text(90)


def test_every_step_word_is_in_french() -> None:
    french = catalogue().languages["fr"].text
    assert [step.value for step in Step if step.value not in french] == []
