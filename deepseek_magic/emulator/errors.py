"""DeepSeek-shaped error responses.

Every error the emulator sends uses DeepSeek's envelope
``{"error": {"message", "type", "param", "code"}}`` so that client code parsing
real errors is exercised by the emulator too.  Messages copy the real texts
recorded in shared/reference/deepseek-protocol.md §1.11 where one is known.
"""

from __future__ import annotations

from typing import Any

INVALID = "invalid_request_error"


class ApiError(Exception):
    """An HTTP error answer, raised anywhere while handling a request."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = INVALID,
        code: str = INVALID,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body DeepSeek would send for this error."""
        return envelope(self.message, self.type, self.code)


def envelope(message: str, type_: str = INVALID, code: str = INVALID) -> dict[str, Any]:
    """DeepSeek's error envelope; ``param`` is always null in real answers."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def bad_request(message: str) -> ApiError:
    """A 400 with DeepSeek's usual type and code."""
    return ApiError(400, message)


def deserialize_error(detail: str) -> ApiError:
    """A 400 worded like DeepSeek's JSON-body deserializer (serde via axum)."""
    return bad_request(f"Failed to deserialize the JSON body into the target type: {detail}")


def mask_key(key: str) -> str:
    """Mask an API key the way DeepSeek does: at most the last four characters.

    Short keys are masked completely, so the full key is never echoed back.
    """
    return "****" + key[-4:] if len(key) > 8 else "****"


def auth_error(presented: str | None) -> ApiError:
    """401 for a missing, malformed or wrong key."""
    if presented is None:
        message = "Authentication Fails (auth header format should be Bearer sk-...)"
    else:
        message = f"Authentication Fails, Your api key: {mask_key(presented)} is invalid"
    return ApiError(401, message, type_="authentication_error")


def concurrency_error(current: int, limit: int) -> ApiError:
    """429 worded like DeepSeek's balance-scaled concurrency limit."""
    return ApiError(
        429,
        f"Your current concurrency is {current}, which exceeds your concurrency limit of {limit} "
        "based on your remaining balance. Please top up your balance to restore your concurrency.",
        type_="rate_limit_error",
    )


def describe_json(value: object) -> str:
    """Name a JSON value the way serde does in its error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "..."
        return f'string "{shown}"'
    if isinstance(value, list):
        return "sequence"
    return "map"
