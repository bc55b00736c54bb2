"""The `/server set` key registry: every kind of key, hostile values, secrets never shown."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.errors import InvalidInput
from core.services.settings_keys import Effect, Kind
from core.services.settings_schema import MASK, NOT_SET, SettingsSchema, schema_for
from tests.fakes.fake_profile import FakeProfile


class Difficulty(StrEnum):
    RECRUIT = "recruit"
    REGULAR = "regular"
    VETERAN = "veteran"


class RichSettings(BaseModel):
    """A settings model with every kind of key a game may have, and cross-field rules."""

    model_config = ConfigDict(extra="forbid")

    hostname: str = Field(default="My server", max_length=64, description="name in the browser")
    password: str = ""
    admin_password: str = ""
    max_players: int = Field(default=32, ge=1, le=256)
    view_distance: float = Field(default=1.5, gt=0, le=10)
    motd: list[str] = Field(default_factory=list)
    motd_interval: float = Field(default=5.0, ge=0, le=3600)
    difficulty: Difficulty = Difficulty.REGULAR
    von: bool = True
    mods: list[str] = Field(default_factory=list, json_schema_extra={"separator": ";"})
    extra_flags: list[Literal["-noSound", "-autoInit", "-loadMissionToMemory"]] = Field(
        default_factory=list
    )
    rotation: list[dict[str, str]] = Field(default_factory=list)
    port: int = Field(default=2302, ge=1024, le=65535)
    rcon_port: int | None = Field(default=None, ge=1024, le=65535)
    stop_timeout: int = 30

    @field_validator("motd", mode="before")
    @classmethod
    def _split_motd(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [line.strip() for line in value.split("|") if line.strip()]
        return value

    @field_validator("mods", mode="before")
    @classmethod
    def _split_mods(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(";") if part.strip()]
        return value

    @field_validator("mods")
    @classmethod
    def _mods_start_with_at(cls, value: list[str]) -> list[str]:
        for mod in value:
            if not mod.startswith("@"):
                raise ValueError("every mod folder starts with @")
        return value

    @field_validator("password")
    @classmethod
    def _not_trivial(cls, value: str) -> str:
        if value and len(value) < 4:
            raise ValueError(f"the password {value} is too short")  # echoes on purpose
        return value

    @model_validator(mode="after")
    def _cross_field(self) -> RichSettings:
        if self.admin_password and self.admin_password == self.password:
            raise ValueError("the admin password must differ from the server password")
        if self.rcon_port is not None and self.rcon_port == self.port:
            raise ValueError("rcon_port must differ from port")
        return self


class RichProfile:
    name = "rich"
    settings_model = RichSettings
    secret_keys = frozenset({"password", "admin_password"})
    default_port = 2302
    port_stride = 100


@pytest.fixture
def schema() -> SettingsSchema:
    return schema_for(RichProfile())  # type: ignore[arg-type]


def parse(schema: SettingsSchema, key: str, text: str, **current: Any) -> Any:
    return schema.parse(key, text, current).value


def refused(schema: SettingsSchema, key: str, text: str, **current: Any) -> str:
    with pytest.raises(InvalidInput) as info:
        schema.parse(key, text, current)
    return str(info.value)


# -- the registry ---------------------------------------------------------------------------


def test_keys_come_from_the_model_and_the_lifecycle(schema: SettingsSchema) -> None:
    keys = {key.name: key for key in schema.list_keys()}
    lifecycle = {"auto_restart", "max_crashes", "crash_window", "stop_timeout"}
    assert lifecycle | {"liveness_interval", "hostname", "motd", "mods", "port"} <= set(keys)
    assert "rotation" not in keys  # structured: only the bot sets it
    assert all(keys[name].lifecycle and keys[name].effect is Effect.NOW for name in lifecycle)
    assert keys["hostname"].effect is Effect.NEXT_START and not keys["hostname"].lifecycle
    assert keys["stop_timeout"].lifecycle  # the shared key wins a name clash
    assert {k.name for k in schema.list_keys() if k.secret} == {"password", "admin_password"}
    assert keys["hostname"].description == "name in the browser"
    assert all(0 < len(k.description) <= 100 for k in keys.values())
    kinds = {name: key.kind for name, key in keys.items()}
    assert kinds["von"] is Kind.SWITCH and kinds["max_players"] is Kind.INTEGER
    assert kinds["view_distance"] is Kind.NUMBER and kinds["motd_interval"] is Kind.DURATION
    assert kinds["difficulty"] is Kind.CHOICE and kinds["motd"] is Kind.LIST


def test_autocomplete_puts_prefix_matches_first(schema: SettingsSchema) -> None:
    names = [key.name for key in schema.list_keys("mo")]
    assert names[:3] == ["mods", "motd", "motd_interval"]
    assert [key.name for key in schema.list_keys("PASSWORD")] == ["password", "admin_password"]
    assert schema.list_keys("zzz") == []


def test_the_fake_game_has_its_own_keys() -> None:
    schema = schema_for(FakeProfile())
    assert {"args", "port", "password"} <= {key.name for key in schema.list_keys()}
    assert "ports" not in schema
    assert schema.is_secret("password") and not schema.is_secret("port")
    # no splitter in the model: the schema splits on `;` itself
    assert schema.parse("args", "--console; --tick 0.1", {}).value == ["--console", "--tick 0.1"]


def test_unknown_keys_suggest_close_matches(schema: SettingsSchema) -> None:
    message = refused(schema, "hostnme", "x")
    assert "`hostname`" in message and "`hostnme`" in message
    assert "pick one" in refused(schema, "banana", "x")
    hostile = "x\n@everyone" + "y" * 10_000
    message = refused(schema, hostile, "x")
    assert "@everyone" not in message and len(message) < 200
    assert schema.key(" Max-Players ").name == "max_players"


# -- every kind of value --------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [("on", True), ("OFF", False), ("yes", True)])
def test_switches(schema: SettingsSchema, text: str, expected: bool) -> None:
    assert parse(schema, "von", text) is expected


def test_switch_refuses_anything_else(schema: SettingsSchema) -> None:
    assert "`on` or `off`" in refused(schema, "von", "maybe")


@pytest.mark.parametrize("text", ["0", "257", "-1", "1e3", "12.5", "sixty", "9" * 5000, "0x10"])
def test_integers_out_of_range_or_malformed(schema: SettingsSchema, text: str) -> None:
    message = refused(schema, "max_players", text)
    assert "1 to 256" in message or "too long" in message


def test_integers(schema: SettingsSchema) -> None:
    assert parse(schema, "max_players", " 64 ") == 64
    assert schema.parse("max_players", "256", {}).shown == "256"


@pytest.mark.parametrize("text", ["0", "nan", "inf", "-2", "10.5", "1,5"])
def test_numbers_refused(schema: SettingsSchema, text: str) -> None:
    refused(schema, "view_distance", text)


def test_numbers(schema: SettingsSchema) -> None:
    assert parse(schema, "view_distance", "2.5") == 2.5


def test_game_durations(schema: SettingsSchema) -> None:
    assert parse(schema, "motd_interval", "30s") == 30.0
    assert parse(schema, "motd_interval", "2m") == 120.0
    assert parse(schema, "motd_interval", "45") == 45.0  # a plain number is seconds
    assert parse(schema, "motd_interval", "off") == 0
    assert "between" in refused(schema, "motd_interval", "2h")
    assert "duration" in refused(schema, "motd_interval", "soon")


def test_choices_ignore_case_and_list_the_options(schema: SettingsSchema) -> None:
    assert parse(schema, "difficulty", "VETERAN") == "veteran"
    assert "recruit, regular, veteran" in refused(schema, "difficulty", "insane")


def test_lists_split_by_the_models_own_validator(schema: SettingsSchema) -> None:
    parsed = schema.parse("motd", "Welcome | Have fun", {})
    assert parsed.value == ["Welcome", "Have fun"]
    assert parsed.shown == "Welcome|Have fun"
    assert schema.key("motd").separator == "|"
    assert parse(schema, "mods", "@ace;@cba_a3") == ["@ace", "@cba_a3"]
    assert "starts with @" in refused(schema, "mods", "@ace;cba")
    assert parse(schema, "mods", "none") == []


def test_lists_of_fixed_choices(schema: SettingsSchema) -> None:
    assert parse(schema, "extra_flags", "-nosound;-AUTOINIT") == ["-noSound", "-autoInit"]
    assert "-loadMissionToMemory" in refused(schema, "extra_flags", "-noSound;-evil")


def test_lists_are_bounded(schema: SettingsSchema) -> None:
    assert "at most" in refused(schema, "mods", ";".join(f"@m{i}" for i in range(150)))


def test_nullable_values(schema: SettingsSchema) -> None:
    assert parse(schema, "rcon_port", "none") is None
    assert parse(schema, "rcon_port", "2310") == 2310


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a" * 65, "at most 64"),
        ("line one\nline two", "line breaks"),
        ("nul\x00byte", "control"),
        ("bell\x07", "control"),
        ("sep\u2028arator", "line breaks"),
        ("x" * 10_000, "too long"),
        ("   ", "give a value"),
    ],
)
def test_hostile_text(schema: SettingsSchema, text: str, why: str) -> None:
    assert why in refused(schema, "hostname", text)


def test_unicode_text_is_fine(schema: SettingsSchema) -> None:
    assert parse(schema, "hostname", "Ünïcode ✓ [EU] #1") == "Ünïcode ✓ [EU] #1"


# -- the whole dict is validated -------------------------------------------------------------


def test_cross_field_rules_apply(schema: SettingsSchema) -> None:
    assert "rcon_port must differ" in refused(schema, "rcon_port", "2302", port=2302)
    assert parse(schema, "rcon_port", "2310", port=2302) == 2310


def test_an_earlier_bad_value_is_named(schema: SettingsSchema) -> None:
    message = refused(schema, "hostname", "fine", max_players=9000)
    assert "max_players" in message and "first" in message


def test_check_validates_a_whole_dict(schema: SettingsSchema) -> None:
    schema.check({"port": 2402, "unrelated": 1})
    with pytest.raises(InvalidInput, match="port"):
        schema.check({"port": 80})


# -- secrets --------------------------------------------------------------------------------


def test_secrets_are_masked_but_parsed(schema: SettingsSchema) -> None:
    parsed = schema.parse("password", "s3cret-pass", {})
    assert parsed.value == "s3cret-pass" and parsed.shown == MASK
    assert schema.display("password", "s3cret-pass") == MASK
    assert "s3cret-pass" not in repr(parsed)  # a log line or traceback never shows it


def test_secret_errors_never_echo_the_secret(schema: SettingsSchema) -> None:
    message = refused(schema, "password", "xyz")
    assert "too short" in message and "xyz" not in message
    message = refused(schema, "admin_password", "same-pass", password="same-pass")
    assert "must differ" in message and "same-pass" not in message
    assert "pass\nword" not in refused(schema, "password", "pass\nword")


def test_a_secret_can_be_unset(schema: SettingsSchema) -> None:
    parsed = schema.parse("password", "off", {"password": "old-one"})
    assert parsed.value is None and parsed.shown == NOT_SET


# -- lifecycle keys -------------------------------------------------------------------------


def test_lifecycle_keys(schema: SettingsSchema) -> None:
    assert parse(schema, "auto_restart", "off") is False
    assert parse(schema, "max_crashes", "10") == 10
    assert parse(schema, "crash_window", "10m") == 600.0
    assert parse(schema, "stop_timeout", "30") == 30.0
    assert parse(schema, "liveness_interval", "off") == 0
    assert parse(schema, "liveness_interval", "1h") == 3600.0
    assert "1 to 100" in refused(schema, "max_crashes", "101")
    assert "between" in refused(schema, "crash_window", "0s")
    assert "between" in refused(schema, "liveness_interval", "2s")
    assert "between" in refused(schema, "liveness_interval", "2h")
    assert "duration" in refused(schema, "stop_timeout", "forever")
    assert "duration" in refused(schema, "crash_window", "off")


def test_lifecycle_values_display_as_typed(schema: SettingsSchema) -> None:
    assert schema.display("crash_window", 600.0) == "10m"
    assert schema.display("liveness_interval", 0) == "off"
    assert schema.display("stop_timeout", 0.5) == "0.5s"
    assert schema.display("auto_restart", True) == "on"
    assert schema.display("mods", []) == "(none)"
    assert schema.default("crash_window") == 600.0


@settings(max_examples=150, deadline=None)
@given(
    key=st.sampled_from(
        [
            *("hostname", "password", "max_players", "view_distance", "motd", "motd_interval"),
            *("difficulty", "von", "mods", "extra_flags", "rcon_port", "crash_window"),
            *("liveness_interval", "max_crashes", "auto_restart"),
        ]
    ),
    text=st.text(max_size=300),
)
def test_any_text_is_parsed_or_refused_politely(key: str, text: str) -> None:
    schema = schema_for(RichProfile())  # type: ignore[arg-type]
    try:
        parsed = schema.parse(key, text, {"port": 2302})
    except InvalidInput as exc:
        assert len(str(exc)) <= 300
        return
    assert isinstance(parsed.shown, str)
