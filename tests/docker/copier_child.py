"""A stand-in for the bot in another process: copies one container's log until killed.

Usage: python -m tests.docker.copier_child URL CA CERT KEY CONTAINER LOG
(CA, CERT and KEY are `-` for a unix socket). Prints `copying` once it started.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from core.docker.client import Engine, EngineEndpoint
from core.docker.logcopy import LogCopier


async def main(argv: list[str]) -> int:
    url, ca, cert, key, container, log = argv
    tls = [None if item == "-" else Path(item) for item in (ca, cert, key)]
    async with Engine("child", EngineEndpoint(url, *tls)) as engine:
        copier = LogCopier(engine, container, Path(log))
        copier.start()
        print("copying", flush=True)
        await copier.finished.wait()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
