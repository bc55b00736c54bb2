"""Discord-shaped API errors: the JSON body discord.py turns into HTTPException and friends."""

from __future__ import annotations

from typing import Any

# Error codes discord.py users meet in practice (Discord's JSON error codes).
UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
UNKNOWN_MEMBER = 10007
UNKNOWN_MESSAGE = 10008
UNKNOWN_ROLE = 10011
UNKNOWN_USER = 10013
UNKNOWN_WEBHOOK = 10015
UNKNOWN_APPLICATION_COMMAND = 10063
UNKNOWN_INTERACTION = 10062
CANNOT_EDIT_OTHERS_MESSAGE = 50005
EMPTY_MESSAGE = 50006
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
INVALID_FORM_BODY = 50035
INVALID_JSON = 50109
ALREADY_ACKNOWLEDGED = 40060


class ApiError(Exception):
    """Raised by route handlers; the server middleware renders it like Discord does."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        errors: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            out["errors"] = self.errors
        return out


def invalid_form(path: str, message: str, code: str = "BASE_TYPE_INVALID") -> ApiError:
    """A 400 50035 whose `errors` tree points at the offending field, like Discord's."""
    tree: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        tree = {part: tree}
    return ApiError(400, INVALID_FORM_BODY, "Invalid Form Body", tree)


def not_found(code: int, what: str) -> ApiError:
    return ApiError(404, code, f"Unknown {what}")
