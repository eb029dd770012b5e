"""Connecting and reconnecting: the part :class:`Publisher` and :class:`Viewer` share."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from .errors import CloseCode, ConnectionLostError, HandshakeRejectedError, StreamRefusedError, refusal

__all__ = ["Backoff", "Credential", "CredentialSource", "redact", "with_query"]

log = logging.getLogger("psds_stream")

#: A connection that stayed open this long resets the backoff (seconds).
STABLE_AFTER = 5.0


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter between reconnection attempts.

    Attempt ``n`` (from 0) waits ``min(maximum, initial * factor ** n)``,
    shortened by a random fraction of up to ``jitter``, so that many clients
    cut off at once by a restarted relay do not come back in lockstep.
    """

    initial: float = 0.5
    maximum: float = 10.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return base * (1.0 - self.jitter * random.random())


def redact(url: str) -> str:
    """The URL with its stream key and token replaced, for logs and messages."""
    return re.sub(r"((?:^|[?&])(?:stream_key|token)=)[^&#]*", r"\1[Redacted]", url)


def with_query(url: str, name: str, value: Optional[str]) -> str:
    """``url`` with the query parameter ``name`` set to ``value`` (replacing one already there), or removed for ``None``."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    if value is not None:
        query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query)))


#: A credential, or a function returning one that is called before every
#: connection attempt (plain functions run in a worker thread, so a blocking
#: REST call such as :meth:`SessionsAPI.token_source`'s is fine; coroutine
#: functions are awaited).
CredentialSource = Union[str, Callable[[], Union[str, Awaitable[str]]]]


@dataclass(frozen=True)
class Credential:
    """What a connection presents: a stream key or an operator token, and where it travels.

    ``placement`` is ``"header"`` (``Authorization: Bearer``, the default:
    kept out of URLs, and so out of proxies' logs) or ``"query"``
    (``?stream_key=`` / ``?token=``, as browsers do).
    """

    name: str
    source: CredentialSource
    placement: str = "header"

    def __post_init__(self) -> None:
        if self.placement not in ("header", "query"):
            raise ValueError("credentials_in must be 'header' or 'query', not %r" % self.placement)

    async def apply(self, url: str) -> Tuple[str, Dict[str, str]]:
        """The URL and the upgrade request's headers for one attempt."""
        source = self.source
        if isinstance(source, str):
            value = source
        elif inspect.iscoroutinefunction(source):
            value = await source()
        else:
            produced = await asyncio.to_thread(source)
            value = await produced if inspect.isawaitable(produced) else produced
        if self.placement == "query":
            return with_query(url, self.name, value), {}
        return url, {"Authorization": "Bearer %s" % value}


def close_of(exc: Optional[ConnectionClosed], ws: Any) -> "tuple[int, str]":
    """Close code and reason of a closed connection (1006 when no close frame came)."""
    if exc is not None and exc.rcvd is not None:
        return exc.rcvd.code, exc.rcvd.reason
    code = getattr(ws, "close_code", None)
    return (code if code is not None else CloseCode.ABNORMAL), (getattr(ws, "close_reason", None) or "")


_CONNECT_FAILURES = (OSError, asyncio.TimeoutError, InvalidHandshake)
# websockets imports `connect` lazily (invisible to type checkers); it is the
# same top-level API from 10.4 (legacy implementation) to 14+ (new asyncio one).
_connect: Any = getattr(websockets, "connect")
# The upgrade request's own headers: `extra_headers` in the legacy implementation, `additional_headers` in the new one.
_HEADERS_ARGUMENT = "additional_headers" if "additional_headers" in inspect.signature(_connect).parameters else "extra_headers"


class Link:
    """Opens WebSocket connections to one of ``urls``, with backoff between failures.

    Keeps the reconnection state of a publisher or viewer: the attempt count,
    since when the stream has been down (for ``give_up_after``) and which URL
    is next (several URLs are tried in turn: relays without a load balancer).
    """

    def __init__(
        self,
        urls: Sequence[str],
        role: str,
        *,
        backoff: Optional[Backoff],
        give_up_after: Optional[float],
        open_timeout: float,
        ping_interval: Optional[float],
        max_size: Optional[int],
        credential: Optional[Credential] = None,
    ) -> None:
        if not urls:
            raise ValueError("at least one WebSocket URL is needed")
        for url in urls:
            if not url.startswith(("ws://", "wss://")):
                raise ValueError("not a WebSocket URL (ws:// or wss://): %s" % redact(url))
        self.urls = list(urls)
        self.role = role
        self.backoff = backoff or Backoff()
        self.give_up_after = give_up_after
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.max_size = max_size
        self.credential = credential
        self._next = 0
        self._attempt = 0
        self._down_since: Optional[float] = None
        self._opened_at = 0.0
        self._immediate = False
        self._last_failure: Optional[BaseException] = None

    @property
    def url(self) -> str:
        """The URL the next attempt uses."""
        return self.urls[self._next % len(self.urls)]

    async def connect(self, first: bool = False) -> Any:
        """An open connection; waits and retries transient failures.

        Raises :class:`StreamRefusedError` for an HTTP rejection of the
        upgrade that retrying cannot fix, :class:`ConnectionLostError` once
        ``give_up_after`` seconds passed without a connection. What a
        credential function raises is raised as it is.
        """
        while True:
            if not first:
                await self._pause()
            first = False
            url = self.url
            headers: Dict[str, str] = {}
            if self.credential is not None:
                url, headers = await self.credential.apply(url)
            try:
                ws = await _connect(
                    url,
                    open_timeout=self.open_timeout,
                    ping_interval=self.ping_interval,
                    ping_timeout=self.ping_interval,
                    close_timeout=5,
                    max_size=self.max_size,
                    compression=None,
                    **({_HEADERS_ARGUMENT: headers} if headers else {}),
                )
            except InvalidURI as exc:
                raise StreamRefusedError(None, "", "invalid WebSocket URL %s: %s" % (redact(url), exc)) from None
            except _CONNECT_FAILURES as exc:
                status = _http_status(exc)
                if status is not None and status < 500 and status not in (408, 429):
                    raise HandshakeRejectedError(status, redact(url)) from None
                self._failed(exc, "could not connect to %s: %s" % (redact(url), _describe(exc)))
                continue
            self._down_since = None
            self._opened_at = time.monotonic()
            return ws

    def closed(self, code: int, reason: str) -> Optional[StreamRefusedError]:
        """Records that an open connection closed; returns the error if this is final."""
        error = refusal(code, reason, self.role)
        if error is not None:
            return error
        if time.monotonic() - self._opened_at >= STABLE_AFTER:
            self._attempt = 0
        if code == CloseCode.STREAM_RESTARTED:
            self._immediate = True
            log.info("%s: stream restarted by the publisher (4205): reconnecting", self.role)
            return None
        self._failed(
            StreamRefusedError(code, reason, "connection to %s closed" % redact(self.url)),
            "connection to %s closed (%d%s)" % (redact(self.url), code, ": " + reason if reason else ""),
        )
        return None

    def _failed(self, exc: BaseException, message: str) -> None:
        self._last_failure = exc
        if self._down_since is None:
            self._down_since = time.monotonic()
        if len(self.urls) > 1:
            self._next += 1
        log.warning("%s: %s; reconnecting", self.role, message)

    async def _pause(self) -> None:
        if self._immediate:
            self._immediate = False
            return
        delay = self.backoff.delay(self._attempt)
        self._attempt += 1
        if self.give_up_after is not None and self._down_since is not None:
            left = self._down_since + self.give_up_after - time.monotonic()
            if left <= 0:
                raise ConnectionLostError(
                    "%s: no connection for %.1f s (giving up): %s" % (self.role, self.give_up_after, self._last_failure)
                ) from self._last_failure
            delay = min(delay, left)
        await asyncio.sleep(delay)


def _http_status(exc: BaseException) -> Optional[int]:
    status = getattr(exc, "status_code", None)  # websockets < 14 (legacy InvalidStatusCode)
    if status is None:
        response = getattr(exc, "response", None)  # websockets >= 14 (InvalidStatus)
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def urls_of(ws_url: Union[str, Sequence[str]]) -> "list[str]":
    return [ws_url] if isinstance(ws_url, str) else list(ws_url)
