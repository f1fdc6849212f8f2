"""Typed errors with messages written for the person at the notebook.

Every error renders as one line in IPython (``_render_traceback_``), because a
raw traceback tells a data scientist nothing they can act on. Messages never
contain the API key: server text is passed through :func:`redact` with the
key before it is stored.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deepseek_magic.core.events import Reply


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every occurrence of each non-empty secret masked."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, mask(secret))
    return text


def mask(secret: str) -> str:
    """A form of a key that identifies it to its owner and to nobody else."""
    if len(secret) <= 8:
        return "****"
    return f"{secret[:3]}…{secret[-2:]}"


#: C0 controls but tab and newline, DEL, C1 controls (8-bit CSI/OSC), and the bidi overrides that reorder a line.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strip_controls(text: str) -> str:
    """``text`` without control characters or escape introducers (newlines and tabs kept).

    A terminal obeys escape sequences, and server messages and model text can
    carry them (OSC 52 sets the clipboard, others retitle the window or clear
    the screen); without its introducer the rest of a sequence is plain text.
    """
    return _CONTROLS.sub("", text)


class DeepSeekError(Exception):
    """Base class: anything this package raises on purpose."""

    hint: str = ""

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message} {self.hint}".strip() if self.hint else message

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a traceback: one clear line."""
        return [strip_controls(f"{type(self).__name__}: {self}")]


class ConfigError(DeepSeekError, ValueError):
    """A setting or option has a value the provider would refuse; nothing was sent."""


class APIConnectionError(DeepSeekError):
    """The server could not be reached (nothing was sent)."""


class ConnectionLost(APIConnectionError):
    """The connection closed after the request had been sent, before any answer.

    Never retried: the server may have started (and billed) the request.
    """


class UnexpectedResponse(DeepSeekError):
    """The server answered with something that is not a reply (a redirect, a proxy's HTML page); nothing was kept."""


class APITimeoutError(DeepSeekError):
    """The server went quiet for longer than the read timeout."""


class APIStatusError(DeepSeekError):
    """The server answered with an HTTP error status."""

    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        server_message: str | None = None,
        code: str | None = None,
        param: str | None = None,
        trace_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.server_message = server_message
        self.code = code
        self.param = param
        self.trace_id = trace_id
        self.retry_after = retry_after


class AuthenticationError(APIStatusError):
    """401: the key is missing, malformed or wrong."""

    hint = "Set the key with %deepseek settings or the provider's API key environment variable."


class InsufficientBalanceError(APIStatusError):
    """402: the account has run out of balance."""

    hint = "Top up the account (%deepseek balance shows what is left)."


class InvalidRequestError(APIStatusError):
    """400/422: the server refused the request; its own message says why."""


class NotFoundError(APIStatusError):
    """404: wrong base URL or an endpoint this provider does not have."""


class RateLimitError(APIStatusError):
    """429: too many requests or too many at once (DeepSeek limits concurrency)."""


class ServerError(APIStatusError):
    """5xx: the provider had a problem or is overloaded."""


class StreamInterrupted(DeepSeekError):
    """The stream ended before the server finished; ``partial`` keeps what arrived."""

    def __init__(self, message: str, partial: Reply | None = None) -> None:
        super().__init__(message)
        self.partial = partial


class BlankReply(StreamInterrupted):
    """The server finished without a word: no text and no tool calls.

    A subclass of :class:`StreamInterrupted` so every caller keeps it the same
    way: a ``partial`` turn (visible in history, never sent as context), never
    cached, its usage still counted.
    """


class BudgetExceeded(DeepSeekError):
    """Sending would cross the session's ``max_cost``; nothing was sent."""


class ReplyError(DeepSeekError):
    """The server finished but the reply is not usable as asked (e.g. invalid JSON).

    ``reply`` keeps the raw reply so nothing the model wrote is lost.
    """

    def __init__(self, message: str, reply: Reply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: InsufficientBalanceError,
    404: NotFoundError,
    422: InvalidRequestError,
    429: RateLimitError,
}

_STATUS_WORDS: dict[int, str] = {
    400: "The request was refused",
    401: "Authentication failed",
    402: "Insufficient balance",
    404: "Not found",
    422: "Invalid parameters",
    429: "Rate limited (too many requests at once)",
    500: "The provider had a server error",
    502: "The provider's gateway failed",
    503: "The provider is overloaded",
    504: "The provider's gateway timed out",
}


def status_error(
    status_code: int,
    body: Any,
    *,
    provider: str,
    secrets: tuple[str | None, ...] = (),
    trace_id: str | None = None,
    retry_after: float | None = None,
) -> APIStatusError:
    """Build the typed error for an HTTP error answer.

    ``body`` is the parsed JSON body when there was one (DeepSeek's
    ``{"error": {...}}`` envelope, Runware's ``{"errors": [...]}``) or the raw
    text otherwise; DeepSeek has been seen sending JSON errors labelled
    ``application/octet-stream``, so the caller parses regardless of type.
    """
    server_message, code, param = _read_error_body(body)
    if server_message is not None:
        server_message = redact(server_message, *secrets)
    cls = _STATUS_CLASSES.get(status_code, ServerError if status_code >= 500 else APIStatusError)
    words = _STATUS_WORDS.get(status_code, "The request failed")
    message = f"{words} ({provider}, HTTP {status_code})"
    if server_message:
        message += f": {server_message}"
    return cls(
        message,
        status_code=status_code,
        server_message=server_message,
        code=code,
        param=param,
        trace_id=trace_id,
        retry_after=retry_after,
    )


def _read_error_body(body: Any) -> tuple[str | None, str | None, str | None]:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return _opt_str(error.get("message")), _opt_str(error.get("code")), _opt_str(error.get("param"))
        if isinstance(error, str):
            return error, None, None
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return (
                _opt_str(first.get("message")),
                _opt_str(first.get("code")),
                _opt_str(first.get("parameter")),
            )
        if "message" in body:
            return _opt_str(body.get("message")), None, None
    if isinstance(body, str) and body.strip():
        return body.strip()[:500], None, None
    return None, None, None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
