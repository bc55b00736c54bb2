"""The refusals of `/server set` that depend on the key: its range, its near misses, and what
the game's settings model said. Each is a template a front end can translate."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError

from core.errors import InvalidInput, LanguardError
from core.services.audit import MASK
from core.validation import first_problem

__all__ = ["explain", "number_error", "unknown_key"]


def number_error(
    name: str, *, integer: bool, low: float | None, high: float | None
) -> InvalidInput:
    """`max_players must be a whole number from 1 to 256`, naming the bounds the key has."""
    if integer:
        if low is not None and high is not None:
            return InvalidInput(
                "{name} must be a whole number from {low:g} to {high:g}",
                name=name,
                low=low,
                high=high,
            )
        if low is not None:
            return InvalidInput(
                "{name} must be a whole number at least {low:g}", name=name, low=low
            )
        if high is not None:
            return InvalidInput(
                "{name} must be a whole number at most {high:g}", name=name, high=high
            )
        return InvalidInput("{name} must be a whole number", name=name)
    if low is not None and high is not None:
        return InvalidInput(
            "{name} must be a number from {low:g} to {high:g}", name=name, low=low, high=high
        )
    if low is not None:
        return InvalidInput("{name} must be a number at least {low:g}", name=name, low=low)
    if high is not None:
        return InvalidInput("{name} must be a number at most {high:g}", name=name, high=high)
    return InvalidInput("{name} must be a number", name=name)


def unknown_key(shown: str | None, game: str, close: list[str]) -> InvalidInput:
    """The refusal of a key that does not exist, with the nearest names when some are close."""
    if close:
        suggested = ", ".join(f"`{c}`" for c in close)
        if shown is None:
            return InvalidInput(
                "that key is not a setting of {game} servers; did you mean {close}?",
                game=game,
                close=suggested,
            )
        return InvalidInput(
            "`{shown}` is not a setting of {game} servers; did you mean {close}?",
            shown=shown,
            game=game,
            close=suggested,
        )
    if shown is None:
        return InvalidInput(
            "that key is not a setting of {game} servers; pick one from the key list", game=game
        )
    return InvalidInput(
        "`{shown}` is not a setting of {game} servers; pick one from the key list",
        shown=shown,
        game=game,
    )


def explain(name: str | None, exc: ValidationError, hide: Iterable[str]) -> InvalidInput:
    """The first validation error as one user-safe line, with any secret masked out."""
    location, message = first_problem(exc)
    secrets = [secret for secret in hide if len(secret) >= 3]
    if isinstance(message, LanguardError) and any(s in str(message) for s in secrets):
        message = str(message)
    if isinstance(message, str):
        for secret in secrets:
            message = message.replace(secret, MASK)
        message = message[:300]
    if location and location != name:
        if name:
            return InvalidInput(
                "{location}: {message} (fix {location} first)", location=location, message=message
            )
        return InvalidInput("{location}: {message}", location=location, message=message)
    if name:
        return InvalidInput("{name}: {message}", name=name, message=message)
    return InvalidInput("{message}", message=message)
