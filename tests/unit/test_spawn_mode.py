"""The pure spawn-mode choice: when a game gets its own systemd scope, and the argv for it."""

from __future__ import annotations

import pytest

from core.supervisor.spawn_mode import (
    SpawnMode,
    SystemdFacts,
    choose_spawn_mode,
    parse_version,
    scope_unit_name,
    wrap_argv,
    wrap_env,
)

RUN = "/usr/bin/systemd-run"


def test_without_systemd_the_game_only_gets_its_own_session() -> None:
    mode = choose_spawn_mode(SystemdFacts(systemd_booted=False, systemd_run=RUN, euid=0))
    assert mode.kind == "session" and "/run/systemd/system" in mode.reason
    assert wrap_argv(mode, ["java", "-jar", "x.jar"], "u") == ["java", "-jar", "x.jar"]


def test_without_systemd_run_on_path_it_falls_back() -> None:
    mode = choose_spawn_mode(SystemdFacts(systemd_booted=True, systemd_run=None, euid=0))
    assert mode.kind == "session" and "not on PATH" in mode.reason


def test_a_refused_probe_falls_back_and_says_why() -> None:
    facts = SystemdFacts(True, RUN, 1000, 252, probe_error="Interactive authentication required.")
    mode = choose_spawn_mode(facts)
    assert mode.kind == "session"
    assert "uid 1000" in mode.reason and "authentication" in mode.reason


def test_root_uses_the_system_manager_and_argv_stays_a_list() -> None:
    mode = choose_spawn_mode(SystemdFacts(True, RUN, 0, 252))
    argv = ["/srv/a3/arma3server_x64", "-name=x y", "$HOME", ";rm -rf /"]
    wrapped = wrap_argv(mode, argv, "languard-abc-7-0f0f")
    assert wrapped[:5] == [RUN, "--scope", "--quiet", "--collect", "--no-ask-password"]
    assert "--user" not in wrapped
    assert "--unit=languard-abc-7-0f0f" in wrapped
    # the game's argv follows `--` untouched: no shell, no quoting, no expansion flag needed
    assert wrapped[wrapped.index("--") + 1 :] == argv
    assert not any(arg.startswith("--expand-environment") for arg in wrapped)


def test_newer_systemd_is_told_not_to_expand_dollars() -> None:
    mode = choose_spawn_mode(SystemdFacts(True, RUN, 0, 256))
    wrapped = wrap_argv(mode, ["game", "$X"], "u")
    assert "--expand-environment=no" in wrapped[: wrapped.index("--")]


def test_an_unprivileged_bot_uses_its_user_manager_and_passes_the_bus() -> None:
    host = (("DISCORD_TOKEN", "secret"), ("XDG_RUNTIME_DIR", "/run/user/1000"))
    mode = choose_spawn_mode(SystemdFacts(True, RUN, 1000, 252, host_env=host))
    assert mode.kind == "scope" and mode.user_manager
    assert wrap_argv(mode, ["game"], "u")[1] == "--user"
    env = wrap_env(mode, {"LANGUARD_SERVER": "abc/1"})
    assert env == {"LANGUARD_SERVER": "abc/1", "XDG_RUNTIME_DIR": "/run/user/1000"}


def test_root_needs_no_user_bus() -> None:
    host = (("XDG_RUNTIME_DIR", "/run/user/0"),)
    mode = choose_spawn_mode(SystemdFacts(True, RUN, 0, 252, host_env=host))
    assert wrap_env(mode, {"A": "1"}) == {"A": "1"}


def test_session_mode_leaves_the_environment_alone() -> None:
    mode = SpawnMode("session", "no systemd", manager_env=(("XDG_RUNTIME_DIR", "/run/user/1"),))
    assert wrap_env(mode, {"A": "1"}) == {"A": "1"}


def test_unit_names_come_from_the_marker_and_are_always_valid() -> None:
    assert scope_unit_name("3f2a9c/12", "beef") == "languard-3f2a9c-12-beef"
    assert scope_unit_name(None, "1") == "languard-game-1"
    assert scope_unit_name("../x y/$(id)", "a;b") == "languard-xy-id-ab"
    assert scope_unit_name("abc/1") != scope_unit_name("abc/1")  # random tail


def test_an_empty_command_is_refused() -> None:
    with pytest.raises(ValueError):
        wrap_argv(SpawnMode("session", ""), [], "u")


@pytest.mark.parametrize(
    ("text", "version"),
    [("systemd 252 (252.39-1~deb12u2)\n+PAM", 252), ("systemd 256 (256.5)", 256), ("nope", None)],
)
def test_versions_are_read_from_the_first_line(text: str, version: int | None) -> None:
    assert parse_version(text) == version
