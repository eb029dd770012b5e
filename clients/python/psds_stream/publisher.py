"""The publishing side of a session: one WebSocket that sends the client's stream."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Optional, Sequence, Type, Union

from websockets.exceptions import ConnectionClosed

from .connection import Backoff, Credential, CredentialSource, Link, close_of, redact, urls_of, with_query
from .errors import MessageTooLargeError, StreamError, refusal

__all__ = ["Publisher", "PublisherStats", "Reconnected", "with_stream_key"]

log = logging.getLogger("psds_stream")

Message = Union[bytes, bytearray, memoryview, str]


@dataclass
class PublisherStats:
    """Counters of a :class:`Publisher` (monotonic over its life)."""

    messages: int = 0
    """Messages handed to the socket."""
    bytes: int = 0
    """Payload bytes of those messages (text counted as UTF-8)."""
    reconnects: int = 0
    """Connections opened after the first one."""


class Reconnected(StreamError):
    """:meth:`Publisher.send` with ``connection=`` found another (or no) connection than the caller expected.

    Nothing was sent. ``connection`` is the current connection number, or
    ``None`` while reconnecting. Container-aware sources use it to restart
    their stream cleanly on the new connection.
    """

    def __init__(self, connection: Optional[int]) -> None:
        super().__init__("the publisher's connection changed (now %s)" % connection)
        self.connection = connection


def with_stream_key(ws_url: str, stream_key: str) -> str:
    """``ws_url`` with ``?stream_key=`` set (replacing one already there)."""
    return with_query(ws_url, "stream_key", stream_key)


class Publisher:
    """Publishes a session's stream: every :meth:`send` is one WebSocket message to every operator.

    ``ws_url`` is the session's ``ws_url`` from ``POST /sessions`` (or a list of
    URLs of relays, tried in turn); ``stream_key`` (a string, or a function
    called before every connection attempt) travels as
    ``Authorization: Bearer`` (``credentials_in="header"``, the default: it
    stays out of URLs) or as the ``stream_key`` query parameter
    (``credentials_in="query"``). Use it as an async context manager::

        async with Publisher(session["ws_url"], session["stream_key"]) as publisher:
            await publisher.send(jpeg_bytes)

    When the connection drops (network, relay restarted, 1001 draining, 1013
    database briefly unavailable) it reconnects by itself with exponential
    backoff and jitter; :meth:`send` waits meanwhile and then sends on the new
    connection. Messages in flight when a connection drops may be lost (the
    service relays at most once). The stream stops for good with a
    :class:`~psds_stream.errors.StreamRefusedError` subclass, raised by the
    next :meth:`send` (or on leaving the ``async with`` block), when the
    service refuses it: 4401 wrong stream key, 4404 unknown session, 4410
    finished session, 4409 replaced by a newer publisher connection, 1009 a
    message larger than ``WS_MAX_MESSAGE_SIZE``; and with
    :class:`~psds_stream.errors.ConnectionLostError` when ``give_up_after``
    seconds pass without a connection.

    ``max_message_size`` (bytes), when given, makes :meth:`send` refuse a
    larger message locally (:class:`MessageTooLargeError`), before the service
    would close the stream with 1009.
    """

    def __init__(
        self,
        ws_url: Union[str, Sequence[str]],
        stream_key: Optional[CredentialSource] = None,
        *,
        credentials_in: str = "header",
        backoff: Optional[Backoff] = None,
        give_up_after: Optional[float] = None,
        open_timeout: float = 10.0,
        ping_interval: Optional[float] = 20.0,
        max_message_size: Optional[int] = None,
    ) -> None:
        self._link = Link(
            urls_of(ws_url),
            "publisher",
            backoff=backoff,
            give_up_after=give_up_after,
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            max_size=None,
            credential=None if stream_key is None else Credential("stream_key", stream_key, credentials_in),
        )
        self.max_message_size = max_message_size
        self.stats = PublisherStats()
        self._ws: Any = None
        self._connection = 0
        self._failure: Optional[BaseException] = None
        self._closing = False
        self._supervisor: Optional["asyncio.Task[None]"] = None
        self._changed: Optional[asyncio.Event] = None  # created in the running loop
        self._largest_sent = 0

    # --- state -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a connection is open right now."""
        return self._ws is not None

    @property
    def connection(self) -> Optional[int]:
        """Number of the open connection (1 for the first), ``None`` while (re)connecting."""
        return self._connection if self._ws is not None else None

    @property
    def failure(self) -> Optional[BaseException]:
        """Why the publisher stopped, once it did."""
        return self._failure

    def raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def _wait_for(self, condition: Callable[[], bool]) -> None:
        while not condition():
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()

    # --- life cycle ----------------------------------------------------------

    async def start(self) -> None:
        """Connects (the first time; retrying like a reconnect) and starts watching the connection."""
        if self._supervisor is not None:
            return
        self._supervisor = asyncio.ensure_future(self._run())
        await self.wait_connected()

    async def __aenter__(self) -> "Publisher":
        try:
            await self.start()
        except BaseException:
            await self.close(raise_failure=False)
            raise
        return self

    async def __aexit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        await self.close(raise_failure=exc is None)

    async def wait_connected(self) -> int:
        """Waits for an open connection and returns its number; raises if the publisher stopped."""
        await self._wait_for(lambda: self._ws is not None or self._failure is not None or self._closing)
        self.raise_if_failed()
        if self._ws is None:
            raise StreamError("publisher closed")
        return self._connection

    async def wait_closed(self) -> None:
        """Waits until the publisher stops for good; raises why, or returns after :meth:`close`."""
        await self._wait_for(lambda: self._failure is not None or self._closing)
        self.raise_if_failed()

    async def close(self, *, raise_failure: bool = True) -> None:
        """Closes the stream normally (1000).

        Raises the refusal that stopped the publisher, if any (the service may
        have refused the last connection after the last :meth:`send`).
        """
        if not self._closing:
            self._closing = True
            ws = self._ws
            if ws is not None:
                await ws.close()
                code, reason = close_of(None, ws)
                if self._failure is None:
                    # The service may have closed first (e.g. 4401 right after the upgrade).
                    self._failure = refusal(code, reason, "publisher")
            if self._supervisor is not None:
                self._supervisor.cancel()
                try:
                    await self._supervisor
                except asyncio.CancelledError:
                    pass
            self._ws = None
            self._notify()
        if raise_failure:
            self.raise_if_failed()

    async def _run(self) -> None:
        first = True
        try:
            while not self._closing:
                ws = await self._link.connect(first)
                if self._closing:
                    await ws.close()
                    return
                if not first:
                    self.stats.reconnects += 1
                    log.info("publisher: reconnected to %s", redact(self._link.url))
                first = False
                self._connection += 1
                self._largest_sent = 0
                self._ws = ws
                self._notify()
                await ws.wait_closed()
                if self._closing:
                    return
                code, reason = close_of(None, ws)
                self._ws = None
                error = self._link.closed(code, reason)
                if error is not None:
                    if isinstance(error, MessageTooLargeError) and self._largest_sent:
                        error = MessageTooLargeError(
                            error.close_code,
                            error.reason,
                            "publisher: the service refused a message of %d bytes (larger than its WS_MAX_MESSAGE_SIZE)"
                            % self._largest_sent,
                        )
                    self._failure = error
                self._notify()
                if error is not None:
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # ConnectionLostError, HandshakeRejectedError, bugs: stop, reported by send()
            self._failure = exc
            self._ws = None
            self._notify()

    # --- sending -------------------------------------------------------------

    async def send(self, message: Message, *, connection: Optional[int] = None) -> None:
        """Sends one message (``bytes`` → binary, ``str`` → text), waiting for a connection if needed.

        Returns once the message is handed to the socket (it waits while the
        socket's buffer is full: TCP backpressure from the service). With
        ``connection=N`` it raises :class:`Reconnected` instead of sending on
        any connection but number ``N`` (or when that one drops meanwhile).
        """
        size = len(message.encode("utf-8")) if isinstance(message, str) else len(message)
        if self.max_message_size is not None and size > self.max_message_size:
            raise MessageTooLargeError(
                None, "", "publisher: message of %d bytes is larger than max_message_size (%d)" % (size, self.max_message_size)
            )
        if self._supervisor is None:
            await self.start()
        while True:
            if connection is not None and self.connection != connection:
                self.raise_if_failed()
                raise Reconnected(self.connection)
            await self.wait_connected()
            ws = self._ws
            if size > self._largest_sent:
                self._largest_sent = size
            try:
                await ws.send(message)
            except ConnectionClosed:
                # The supervisor sees the close too: wait until it has handled it.
                await self._wait_for(lambda: self._ws is not ws)
                if connection is not None:
                    self.raise_if_failed()
                    raise Reconnected(self.connection) from None
                continue
            self.stats.messages += 1
            self.stats.bytes += size
            return

