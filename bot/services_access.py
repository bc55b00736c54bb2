"""What the rest of bot/ may know of the client: its settings and the services.

Why: `bot.client` imports the channel hub, the checks and the command tree to build the
bot, so those modules must not import `bot.client` back (not even for typing) or the
package is one knot. They depend on this small Protocol instead; `LanguardBot` satisfies
it. The services are the only way down (architecture: cogs/ and bot/ call services).
"""

from __future__ import annotations

from typing import Protocol, cast

from core.config import Settings
from core.errors import LanguardError
from core.runtime import Runtime

__all__ = ["HasServices", "front_end", "services_of"]

NOT_READY = "Languard is still starting; try again in a moment"


class HasServices(Protocol):
    """A client that carries the bot's settings and, once set up, its services."""

    settings: Settings
    runtime: Runtime | None
    """None until `setup_hook` has opened the services (and after `close()`)."""

    @property
    def services(self) -> Runtime: ...

    def record_error(self) -> None: ...


def front_end(client: object) -> HasServices:
    """`client` as the bot's front end (any Discord client that carries the services).

    Checked by its attributes, not its class, so nothing here imports `bot.client`."""
    if not hasattr(client, "settings") or not hasattr(type(client), "services"):
        raise TypeError(f"{type(client).__name__} is not Languard's client")
    return cast(HasServices, client)


def services_of(client: object) -> Runtime:
    """The services behind a client; a user-facing error while they are not open yet."""
    runtime = front_end(client).runtime
    if runtime is None:
        raise LanguardError(NOT_READY)
    return runtime
