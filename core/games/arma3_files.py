"""The files Languard writes for an Arma 3 server: server.cfg, basic.cfg, server.Arma3Profile.

Built as `ConfigClass` trees and rendered by core/games/arma3_config.py, which escapes every
value, so no setting a user typed can become a key of its own.
"""

from __future__ import annotations

from core.games.arma3_config import ConfigClass, render_config
from core.games.arma3_settings import Arma3Settings

__all__ = ["HEADLESS_ADDRESS", "render_arma3profile", "render_basic_cfg", "render_server_cfg"]

HEADLESS_ADDRESS = "127.0.0.1"
"""Where Languard's headless clients connect from: they run on the server's own host."""

_HEADER = ("Written by Languard before every start; changes made here are overwritten.",)

_CUSTOM_OPTIONS: dict[str, int] = {
    "groupIndicators": 0,
    "friendlyTags": 0,
    "enemyTags": 0,
    "detectedMines": 0,
    "commands": 1,
    "waypoints": 1,
    "tacticalPing": 0,
    "weaponInfo": 2,
    "stanceIndicator": 2,
    "staminaBar": 0,
    "weaponCrosshair": 0,
    "visionAid": 0,
    "thirdPersonView": 0,
    "cameraShake": 1,
    "scoreTable": 1,
    "deathMessages": 1,
    "vonID": 1,
    "mapContent": 0,
    "autoReport": 0,
    "multipleSaves": 0,
}
"""The `Custom` difficulty: Veteran-like, so choosing Custom without editing still plays."""


def render_server_cfg(settings: Arma3Settings) -> str:
    """server.cfg. `timeStampFormat = "full"` so every RPT line carries its date."""
    root = ConfigClass()
    root.set("hostname", settings.hostname)
    secrets = (
        ("password", settings.password),
        ("passwordAdmin", settings.admin_password),
        ("serverCommandPassword", settings.server_command_password),
    )
    for key, secret in secrets:
        if secret is not None:
            root.set(key, secret.get_secret_value())
    root.set("maxPlayers", settings.max_players)
    if settings.motd:
        root.set("motd", list(settings.motd))
        root.set("motdInterval", settings.motd_interval)
    root.set("verifySignatures", settings.verify_signatures)
    root.set("BattlEye", settings.battleye)
    root.set("persistent", settings.persistent)
    root.set("disableVoN", not settings.von)
    root.set("kickDuplicate", 1)
    root.set("timeStampFormat", "full")
    if settings.headless_clients:
        # the server only lets headless clients join from these addresses, and gives
        # local ones unlimited bandwidth; one entry, so never the trailing comma that broke
        # HC joins (arma-server-web-admin #70; steamcmd-workshop-and-headless.md §7)
        root.set("headlessClients", [HEADLESS_ADDRESS])
        root.set("localClient", [HEADLESS_ADDRESS])
    if settings.mission_rotation:
        missions = root.add_class("Missions")
        for number, entry in enumerate(settings.mission_rotation, 1):
            mission = missions.add_class(f"Mission{number:02d}")
            mission.set("template", entry.template)
            mission.set("difficulty", entry.difficulty or settings.difficulty)
    return render_config(root, _HEADER)


def render_basic_cfg() -> str:
    """basic.cfg with the wiki's defaults (the engine's own are tuned for a 2013 uplink)."""
    root = ConfigClass()
    root.set("MaxMsgSend", 128).set("MaxSizeGuaranteed", 512).set("MaxSizeNonguaranteed", 256)
    root.set("MinBandwidth", 131072).set("MinErrorToSend", 0.001)
    root.set("MinErrorToSendNear", 0.01).set("MaxCustomFileSize", 0)
    root.add_class("sockets").set("maxPacketSize", 1400)
    return render_config(root, _HEADER)


def render_arma3profile(settings: Arma3Settings) -> str:
    """`server.Arma3Profile`: the difficulty presets `difficulty = "Custom"` reads."""
    root = ConfigClass()
    root.set("difficulty", settings.difficulty)
    presets = root.add_class("DifficultyPresets")
    custom = presets.add_class("CustomDifficulty")
    options = custom.add_class("Options")
    for key, value in _CUSTOM_OPTIONS.items():
        options.set(key, value)
    custom.set("aiLevelPreset", 3)
    presets.add_class("CustomAILevel").set("skillAI", 0.5).set("precisionAI", 0.5)
    return render_config(root, _HEADER)
