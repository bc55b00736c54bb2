"""How a Docker runtime names and recognises a unit's container and volume.

Kept apart from the runtime so the handle, the runtime and the hosts' bookkeeping agree on
one set of labels and names.
"""

from __future__ import annotations

import errno

from core.docker import containers
from core.docker.client import Engine, EngineRefused, EngineUnreachable
from core.docker.containers import ContainerState
from core.docker.spec import INSTANCE_LABEL, SERVER_LABEL
from core.supervisor.runtime_api import UnitRef

__all__ = [
    "COMPANION_LABEL",
    "LOG_LABEL",
    "is_unit",
    "os_error",
    "remove_volume",
    "unseen_state",
    "volume_name",
]

COMPANION_LABEL = "languard.companion"
LOG_LABEL = "languard.log"
"""The bot-side log file the container's stream is copied into (found again on adoption)."""


def volume_name(unit: UnitRef) -> str:
    """The named volume holding a server's files on a remote engine (companions share it)."""
    return f"languard-{unit.instance}-{unit.server_id}"


def is_unit(state: ContainerState, unit: UnitRef) -> bool:
    labels = state.labels
    return (
        labels.get(INSTANCE_LABEL) == unit.instance
        and labels.get(SERVER_LABEL) == str(unit.server_id)
        and labels.get(COMPANION_LABEL) == unit.companion
    )


def os_error(exc: EngineRefused | EngineUnreachable) -> OSError:
    code = errno.EHOSTUNREACH if isinstance(exc, EngineUnreachable) else errno.EIO
    return OSError(code, str(exc))


def unseen_state(unit: UnitRef, container_id: str, *, console: bool) -> ContainerState:
    """What we assume of a recorded container while its engine does not answer: still
    running (it may well be; `live-restore` keeps it so), to be checked on its return."""
    labels = {INSTANCE_LABEL: unit.instance, SERVER_LABEL: str(unit.server_id)}
    if unit.companion is not None:
        labels[COMPANION_LABEL] = unit.companion
    return ContainerState(
        id=container_id,
        name="",
        running=True,
        status="unknown",
        exit_code=None,
        oom_killed=False,
        pid=0,
        started=None,
        labels=labels,
        open_stdin=console,
    )


async def remove_volume(engine: Engine, unit: UnitRef) -> None:
    """Remove the unit's exited containers, then its volume; gone already is fine."""
    filters = {"label": [f"{INSTANCE_LABEL}={unit.instance}", f"{SERVER_LABEL}={unit.server_id}"]}
    for state in await containers.list_labelled(engine, filters, everything=True):
        await containers.remove(engine, state.id, force=True)
    try:
        await engine.request("DELETE", f"volumes/{volume_name(unit)}")
    except EngineRefused as exc:
        if exc.status != containers.NOT_FOUND:
            raise
