"""Exceptions of the client. Everything raised on purpose is a :class:`PSDSError`."""

from __future__ import annotations

from typing import Any, Dict, Optional

__all__ = [
    "PSDSError",
    "APIError",
    "APIConnectionError",
    "StreamError",
    "StreamRefusedError",
    "InvalidRequestError",
    "UnauthorizedError",
    "InvalidStreamKeyError",
    "InvalidTokenError",
    "ForbiddenError",
    "SessionNotFoundError",
    "SessionFinishedError",
    "PublisherReplacedError",
    "TooManyOperatorsError",
    "MessageTooLargeError",
    "HandshakeRejectedError",
    "ConnectionLostError",
    "CloseCode",
]


class CloseCode:
    """WebSocket close codes the service uses (README, "WebSocket")."""

    NORMAL = 1000
    GOING_AWAY = 1001  # the node is shutting down: reconnect (elsewhere)
    ABNORMAL = 1006  # no close frame: the connection dropped
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013  # PostgreSQL or the backplane is unavailable for a moment
    STREAM_RESTARTED = 4205  # the publisher started a new WebM/MP4 stream: reconnect at once
    BAD_REQUEST = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403  # a valid credential that does not grant this (another session or user, a revoked operator)
    NOT_FOUND = 4404
    CONFLICT = 4409  # too many operators, or this publisher connection was replaced
    FINISHED = 4410
    TOO_SLOW = 4429  # this operator could not keep up


class PSDSError(Exception):
    """Base class of the client's errors."""


class APIError(PSDSError):
    """The REST API answered with an error: ``{"error": {"code": ..., "message": ...}}``.

    ``code`` is the service's error code (``session_not_found``, ``invalid_id``,
    ``invalid_body``...); for an answer without that shape (e.g. a load
    balancer's HTML page) it is ``http_<status>``.
    """

    def __init__(self, status: int, code: str, message: str, body: Optional[Dict[str, Any]] = None) -> None:
        super().__init__("%s (HTTP %d): %s" % (code, status, message))
        self.status = status
        self.code = code
        self.message = message
        self.body = body


class APIConnectionError(PSDSError):
    """The REST API could not be reached (connection refused, DNS, timeout)."""


class StreamError(PSDSError):
    """A stream (publisher or viewer) stopped."""


class StreamRefusedError(StreamError):
    """The service closed the stream with a code that retrying cannot fix.

    ``close_code`` and ``reason`` are the WebSocket close frame's.
    """

    def __init__(self, close_code: Optional[int], reason: str, message: Optional[str] = None) -> None:
        text = message or "the service closed the stream"
        if close_code is not None:
            text += " (close code %d%s)" % (close_code, ": " + reason if reason else "")
        super().__init__(text)
        self.close_code = close_code
        self.reason = reason


class InvalidRequestError(StreamRefusedError):
    """4400: malformed session id or user id."""


class UnauthorizedError(StreamRefusedError):
    """4401: a missing or wrong credential (the subclass says which)."""


class InvalidStreamKeyError(UnauthorizedError):
    """4401 to a publisher: missing or wrong stream key."""


class InvalidTokenError(UnauthorizedError):
    """4401 to a viewer (``AUTH_MODE=token``): a missing, malformed, badly signed or expired operator token."""


class ForbiddenError(StreamRefusedError):
    """4403: a valid token that does not grant this connection: another session or user id, or a revoked operator."""


class SessionNotFoundError(StreamRefusedError):
    """4404: no such session."""


class SessionFinishedError(StreamRefusedError):
    """4410: the session is finished (``DELETE /sessions/:id``)."""


class PublisherReplacedError(StreamRefusedError):
    """4409 to a publisher: a newer publisher connection of the same session replaced this one."""


class TooManyOperatorsError(StreamRefusedError):
    """4409 to a viewer: the session already has ``SESSION_MAX_OPERATORS`` operators."""


class MessageTooLargeError(StreamRefusedError):
    """A message larger than the service accepts (``WS_MAX_MESSAGE_SIZE``; close code 1009).

    Raised by :meth:`Publisher.send` without sending when the message is larger
    than the publisher's ``max_message_size`` (then ``close_code`` is ``None``).
    """


class HandshakeRejectedError(StreamRefusedError):
    """The WebSocket upgrade was answered with an HTTP error (a wrong URL, most likely)."""

    def __init__(self, status: int, url: str) -> None:
        super().__init__(None, "", "WebSocket upgrade to %s rejected with HTTP %d" % (url, status))
        self.status = status


class ConnectionLostError(StreamError):
    """Reconnecting did not succeed within ``give_up_after`` seconds; ``__cause__`` is the last failure."""


_PUBLISHER_REFUSALS = {
    CloseCode.BAD_REQUEST: (InvalidRequestError, "malformed session id or user id"),
    CloseCode.UNAUTHORIZED: (InvalidStreamKeyError, "missing or wrong stream key"),
    CloseCode.FORBIDDEN: (ForbiddenError, "the credential does not grant this connection"),
    CloseCode.NOT_FOUND: (SessionNotFoundError, "no such session"),
    CloseCode.CONFLICT: (PublisherReplacedError, "replaced by a newer publisher connection of this session"),
    CloseCode.FINISHED: (SessionFinishedError, "the session is finished"),
    CloseCode.MESSAGE_TOO_BIG: (MessageTooLargeError, "a message was larger than the service accepts (WS_MAX_MESSAGE_SIZE)"),
}

_VIEWER_REFUSALS = dict(_PUBLISHER_REFUSALS)
_VIEWER_REFUSALS[CloseCode.UNAUTHORIZED] = (InvalidTokenError, "missing, invalid or expired operator token")
_VIEWER_REFUSALS[CloseCode.FORBIDDEN] = (ForbiddenError, "the token does not grant this session and user id, or the operator was revoked")
_VIEWER_REFUSALS[CloseCode.CONFLICT] = (TooManyOperatorsError, "the session has as many operators as it accepts")
_VIEWER_REFUSALS[CloseCode.MESSAGE_TOO_BIG] = (MessageTooLargeError, "a message was larger than this viewer's max_size")


def refusal(close_code: Optional[int], reason: str, role: str) -> Optional[StreamRefusedError]:
    """The error a close code means for ``role`` (``"publisher"`` or ``"viewer"``), or ``None`` when it is worth reconnecting.

    Reconnected: 1000, 1001, 1006, 1011, 1013, 4205, 4429 and any other 1xxx
    code. Final: the service's refusals (4400, 4401, 4403, 4404, 4409, 4410), 1009
    and any other 4xxx code.
    """
    if close_code is None:
        return None
    table = _PUBLISHER_REFUSALS if role == "publisher" else _VIEWER_REFUSALS
    known = table.get(close_code)
    if known is not None:
        cls, text = known
        return cls(close_code, reason, "%s: %s" % (role, text))
    if 4000 <= close_code < 5000 and close_code not in (CloseCode.STREAM_RESTARTED, CloseCode.TOO_SLOW):
        return StreamRefusedError(close_code, reason, "%s: refused by the service" % role)
    return None
