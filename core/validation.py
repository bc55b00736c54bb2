"""The first problem of a pydantic ValidationError, in a form a core error can carry.

Settings models check what members type; their validators raise `InvalidValue`, which
pydantic keeps in the error's context. Handing that error on (rather than pydantic's
English line) lets the front end translate the refusal; pydantic's own messages (`Input
should be...`) are a library's text and stay as they are.
"""

from __future__ import annotations

from pydantic import ValidationError

from core.errors import LanguardError

__all__ = ["first_problem"]


def first_problem(
    exc: ValidationError, *, indexes: bool = False
) -> tuple[str, str | LanguardError]:
    """(where, what) of the first error: the dotted field path (list indexes left out unless
    `indexes`), and the validator's own core error when it raised one, else pydantic's text."""
    error = exc.errors(include_url=False, include_input=False)[0]
    parts = error.get("loc", ())
    where = ".".join(str(part) for part in parts if indexes or not isinstance(part, int))
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, LanguardError):
        return where, cause
    text = str(error.get("msg", "invalid value"))
    return where, text.removeprefix("Value error, ").removeprefix("Assertion failed, ")
