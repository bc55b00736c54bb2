"""Test-only: point discord.py at a local fake Discord when LANGUARD_DISCORD_API_BASE is set.

End-to-end tests run `python -m bot` as a real process against tests/e2e/fake_discord, and a
process cannot be patched from outside. This does what tests/e2e/fake_discord/harness.py
`route_discord_to` does (three class attributes discord.py reads at call time). Only
http://127.0.0.1:<port> is accepted, so the variable can never send the token elsewhere.
Undocumented on purpose: operators have no use for it.
"""

from __future__ import annotations

from collections.abc import Mapping

import yarl
from discord.asset import Asset
from discord.gateway import DiscordWebSocket
from discord.http import Route

__all__ = ["ENV", "apply_api_base"]

ENV = "LANGUARD_DISCORD_API_BASE"


def apply_api_base(environ: Mapping[str, str]) -> str | None:
    """Route discord.py to the fake named in `environ`; an error line if the value is wrong."""
    raw = environ.get(ENV, "").strip()
    if not raw:
        return None
    try:
        url = yarl.URL(raw)
        port = url.explicit_port
    except ValueError:
        url, port = None, None
    if (
        url is None
        or url.scheme != "http"
        or url.host != "127.0.0.1"
        or port is None
        or url.path not in {"", "/"}
        or url.user is not None
        or url.query_string
    ):
        return f"{ENV} is a test-only setting and must be http://127.0.0.1:<port>; unset it."
    base = f"http://127.0.0.1:{port}"
    Route.BASE = f"{base}/api/v10"
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(f"ws://127.0.0.1:{port}/gateway/")
    Asset.BASE = f"{base}/cdn"
    return None
