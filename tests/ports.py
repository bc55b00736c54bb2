"""Random port blocks for test game servers, taken below the kernel's ephemeral range.

A port in the ephemeral range can be handed to any outgoing socket (an RCon client, an HTTP
connection of another test run) between the moment a test checks it and the moment the fake
game binds it; two suites at once on one machine saw exactly that ("Address already in use").
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

__all__ = ["random_port_block"]

_LOWEST = 10000


def _ephemeral_start() -> int:
    try:
        low, _ = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low)
    except (OSError, ValueError):
        return 32768


def random_port_block(step: int, free: Callable[[int], bool], span: int = 20) -> int:
    """A base port B, a multiple of `step`, with `free(p)` true for every port the caller
    checks, and B + span below the ephemeral range."""
    top = _ephemeral_start() - span
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(_LOWEST, top, step)
        if free(base):
            return base
    raise RuntimeError("no free port block found below the ephemeral range")
