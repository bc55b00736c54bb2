"""A bot-like process whose servers run on Docker hosts, so tests can kill -9 it for real.

It is tests.fakes.supervisor_host (same exactly-once "sink" of log lines in the database)
with the Docker runtimes of a JSON file: `{"hosts": [{"name", "url", "ca", "cert", "key"}],
"image": ..., "mounts": [[source, target]...], "placement": {server name: host name}}`.
Prints `ADOPTED <n> <seconds>` and `UP`; stops (leaving the games running) on SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.docker.client import EngineEndpoint
from core.docker.runtime import DockerRuntime
from core.docker.spec import Mount
from core.supervisor.supervisor import Supervisor
from data.repositories.servers import ServerRecord
from tests.fakes import supervisor_host


def runtimes(config: dict[str, object]) -> list[DockerRuntime]:
    image = str(config["image"])
    mounts = [Mount(s, t, bind=True, read_only=True) for s, t in config["mounts"]]  # type: ignore[attr-defined]
    made = []
    for host in config["hosts"]:  # type: ignore[attr-defined]
        tls = [Path(host[k]) if host.get(k) else None for k in ("ca", "cert", "key")]
        endpoint = EngineEndpoint(host["url"], *tls)
        made.append(DockerRuntime(host["name"], endpoint, image_for=lambda _: image, mounts=mounts))
    return made


def install_hosts(supervisor: Supervisor, config: dict[str, Any]) -> None:
    """Offer the config's Docker runtimes to the supervisor and place servers by name."""
    placement: dict[str, str] = config["placement"]
    for runtime in runtimes(config):
        supervisor.add_runtime(runtime)

    async def runtime_of(record: ServerRecord) -> str:
        return placement.get(record.name, "local")

    supervisor.runtime_of = runtime_of


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--start-all", action="store_true")
    args = parser.parse_args()
    argv = ["--db", args.db, "--data-dir", args.data_dir, "--docker-config", args.config]
    argv += ["--checkpoint-interval", "0.2", "--timing"]
    if args.start_all:
        argv.append("--start-all")
    sys.argv = [sys.argv[0], *argv]
    return supervisor_host.main()


if __name__ == "__main__":
    sys.exit(main())
