"""Raw console commands to a running game (`/rcon`), through its game link, audited.

Why a service: the front end never holds a game link; it names a server and a command
and gets the reply text. Anything that looks like a password is masked in the audit row.
"""

from __future__ import annotations

from core.errors import InvalidInput, NotRunning
from core.services.audit import Actor, AuditLog
from core.supervisor.supervisor import Supervisor

__all__ = ["ConsoleService", "masked"]


def masked(command: str) -> str:
    """The command as the audit log shows it: its first word only when it holds a password."""
    return command if "pass" not in command.lower() else command.split()[0] + " ••••••"


class ConsoleService:
    def __init__(self, supervisor: Supervisor, audit: AuditLog) -> None:
        self._sup = supervisor
        self._audit = audit

    def check(self, server: str, command: str) -> None:
        """Raise what `send` would refuse before anything is sent (so the front end can
        answer at once): an unknown server, several lines, or no connection."""
        managed = self._sup.by_name(server)
        if "\n" in command or "\r" in command:
            raise InvalidInput("one command per line, please")
        link = managed.link
        if link is None or not link.connected:
            raise NotRunning("{name} has no RCon connection (is it running?)", name=managed.name)

    async def send(self, actor: Actor, server: str, command: str) -> str:
        """Send one command line and return the game's reply; audited either way."""
        self.check(server, command)
        managed = self._sup.by_name(server)
        link = managed.link
        assert link is not None
        shown = masked(command)
        try:
            reply = await link.command(command)
        except Exception as exc:
            await self._audit.record(
                actor,
                "rcon",
                server_id=managed.id,
                arguments={"command": shown},
                result=f"failed: {exc}",
                ok=False,
            )
            raise
        await self._audit.record(
            actor,
            "rcon",
            server_id=managed.id,
            arguments={"command": shown},
            result=f"{len(reply)} characters of reply",
        )
        return reply
