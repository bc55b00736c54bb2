"""Restart policy: what a crash leads to. Pure, so every branch is tested without processes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["CrashDecision", "LifecyclePolicy", "decide_after_crash"]

_log = logging.getLogger(__name__)


class LifecyclePolicy(BaseModel):
    """Per-server lifecycle settings (the `Every game` keys of `/server set`), in seconds."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    auto_restart: bool = True
    max_crashes: int = Field(default=5, ge=1, le=100)
    crash_window: float = Field(default=600.0, gt=0, le=7 * 86400)
    stop_timeout: float = Field(default=30.0, gt=0, le=3600)
    term_timeout: float = Field(default=10.0, gt=0, le=600)
    start_timeout: float = Field(default=180.0, gt=0, le=3600)
    backoff_base: float = Field(default=2.0, gt=0, le=600)
    backoff_cap: float = Field(default=120.0, gt=0, le=3600)
    liveness_interval: float = Field(default=30.0, ge=0, le=3600)
    """Seconds between liveness probes while running; 0 turns probing off."""
    liveness_failures: int = Field(default=3, ge=1, le=100)
    cpu_limit: float | None = Field(default=None, gt=0, le=256)
    """CPUs a container may use (a Docker host; local processes take no limit)."""
    memory_limit_mb: int | None = Field(default=None, ge=64, le=1024 * 1024)
    """MiB a container may use before the kernel kills it (the alert says out of memory)."""
    pids_limit: int | None = Field(default=None, ge=64, le=1_000_000)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> LifecyclePolicy:
        """The policy of stored settings; a stored value the rules no longer accept (an
        older version's, a hand-edited row) falls back to its default instead of breaking
        crash handling."""
        values = dict(settings)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
            _log.warning("ignoring unusable lifecycle settings: %s", ", ".join(sorted(bad)))
            return cls.model_validate({k: v for k, v in values.items() if k not in bad})


@dataclass(frozen=True, slots=True)
class CrashDecision:
    give_up: bool
    restart_in: float | None
    attempt: int
    max_attempts: int


def decide_after_crash(
    policy: LifecyclePolicy, crashes_in_window: int, *, paused: bool = False
) -> CrashDecision:
    """`crashes_in_window` counts this crash too. Backoff doubles per crash, capped."""
    attempt = crashes_in_window
    if attempt >= policy.max_crashes:
        return CrashDecision(True, None, attempt, policy.max_crashes)
    if not policy.auto_restart or paused:
        return CrashDecision(False, None, attempt, policy.max_crashes)
    delay = min(policy.backoff_cap, policy.backoff_base * 2.0 ** max(0, attempt - 1))
    return CrashDecision(False, delay, attempt, policy.max_crashes)
