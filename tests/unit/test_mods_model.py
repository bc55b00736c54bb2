"""Workshop ids, folder names, roles, launch arguments, set text and load order."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.mods.model import (
    LaunchMods,
    ModError,
    Role,
    folder_name,
    mod_argv,
    parse_workshop_id,
)
from core.mods.order import move, reorder
from core.services.mod_views import parse_set


@pytest.mark.parametrize(
    "text",
    [
        "450814997",
        " 450814997 ",
        "https://steamcommunity.com/sharedfiles/filedetails/?id=450814997",
        "http://steamcommunity.com/sharedfiles/filedetails/?id=450814997",
        "<https://steamcommunity.com/sharedfiles/filedetails/?id=450814997>",
        "https://steamcommunity.com/workshop/filedetails/?id=450814997&searchtext=cba",
        "https://steamcommunity.com/sharedfiles/filedetails/?l=german&id=450814997",
        "steamcommunity.com/sharedfiles/filedetails/?id=450814997#comments",
    ],
)
def test_workshop_ids_from_ids_and_links(text: str) -> None:
    assert parse_workshop_id(text) == 450814997


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "cba",
        "-5",
        "99999999999999999999",
        "https://evil.example/sharedfiles/filedetails/?id=450814997",
        "https://steamcommunity.com.evil.example/sharedfiles/filedetails/?id=1",
        "1" * 400,
    ],
)
def test_not_workshop_ids(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_workshop_id(text)


def test_folder_names_are_lowercase_and_safe() -> None:
    assert folder_name("CBA_A3", 1) == "@cba_a3"
    assert folder_name("ACE3 Compat - RHS: AFRF", 2) == "@ace3_compat_rhs_afrf"
    assert folder_name("Ünïcödé; rm -rf /", 3) == "@unicode_rm_rf"
    assert folder_name(";;;", 4) == "@4"
    assert folder_name("CBA_A3", 5, {"@cba_a3"}) == "@cba_a3_5"
    assert len(folder_name("x" * 300, 6)) <= 41


def test_roles_from_words() -> None:
    assert Role.parse("Server-Only") is Role.SERVER
    assert Role.parse("headless_only") is Role.HEADLESS
    assert Role.parse("client") is Role.CLIENT
    with pytest.raises(InvalidInput, match="not a mod role"):
        Role.parse("everyone")


def test_launch_arguments_follow_roles_and_order() -> None:
    mods = LaunchMods(
        (
            ("modset/@cba", Role.CLIENT),
            ("modset/@hc_ai", Role.HEADLESS),
            ("modset/@tweaks", Role.SERVER),
            ("modset/@ace", Role.CLIENT),
        )
    )
    assert mods.server_args() == ["-mod=modset/@cba;modset/@ace", "-serverMod=modset/@tweaks"]
    assert mods.server_args(["@local"], ["@srv"]) == [
        "-mod=modset/@cba;modset/@ace;@local",
        "-serverMod=modset/@tweaks;@srv",
    ]
    # a headless client: client and headless-only mods in set order, never server-only
    assert mods.headless_mods() == ["modset/@cba", "modset/@hc_ai", "modset/@ace"]
    assert mods.headless_args(["@local"]) == ["-mod=modset/@cba;modset/@hc_ai;modset/@ace;@local"]
    assert LaunchMods().server_args() == []
    assert LaunchMods().server_args(["@a", "@b"]) == ["-mod=@a;@b"]  # the free-text setting


def test_a_path_cannot_split_the_list() -> None:
    with pytest.raises(ModError):
        mod_argv("mod", ["@a;-config=/etc/passwd"])
    with pytest.raises(ModError):
        mod_argv("mod", ["@a\n-x"])
    assert mod_argv("mod", []) == []


def test_set_text() -> None:
    assert parse_set("cba, ace\n@tweaks:server-only, hc:headless-only") == [
        ("cba", Role.CLIENT),
        ("ace", Role.CLIENT),
        ("@tweaks", Role.SERVER),
        ("hc", Role.HEADLESS),
    ]
    link = "https://steamcommunity.com/sharedfiles/filedetails/?id=450814997"
    assert parse_set(f"{link}, {link}:server") == [(link, Role.CLIENT), (link, Role.SERVER)]
    with pytest.raises(InvalidInput, match="not a mod role"):
        parse_set("cba:everyone")
    assert parse_set("  ,\n ") == []


def test_reorder_keeps_the_others_in_place() -> None:
    assert reorder(["cba", "ace", "rhs", "compat"], ["rhs", "ace"]) == [
        "cba",
        "rhs",
        "ace",
        "compat",
    ]
    assert reorder([1, 2, 3, 4, 5], [5, 1]) == [5, 2, 3, 4, 1]
    assert reorder([1, 2, 3], []) == [1, 2, 3]
    with pytest.raises(InvalidInput, match="once"):
        reorder([1, 2], [1, 1])
    with pytest.raises(InvalidInput, match="not in"):
        reorder([1, 2], [3])


def test_move() -> None:
    assert move(["a", "b", "c"], "c", 1) == ["c", "a", "b"]
    assert move(["a", "b", "c"], "a", 99) == ["b", "c", "a"]
    with pytest.raises(InvalidInput):
        move(["a"], "z", 1)
