"""The watching side of a session: an operator's WebSocket, as an async iterator of messages."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO, Optional, Sequence, Type, Union
from urllib.parse import quote, urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed

from .connection import Backoff, Credential, CredentialSource, Link, close_of, redact, urls_of
from .errors import StreamRefusedError
from .media import StreamJoiner

__all__ = ["Viewer", "ViewerStats", "operator_url"]

log = logging.getLogger("psds_stream")

#: Largest message a viewer accepts by default: the service's WS_MAX_MESSAGE_SIZE default is 10 MB.
DEFAULT_MAX_SIZE = 64 * 1024 * 1024


def operator_url(ws_url: str, user_id: str) -> str:
    """An operator's URL from a session's ``ws_url``: the last path segment (the client id) replaced by ``user_id``.

    Any query (a stream key, another user's token) is dropped.
    """
    parts = urlsplit(ws_url)
    path = parts.path.rstrip("/")
    head = path.rsplit("/", 1)[0] if "/" in path else path
    return urlunsplit(parts._replace(path="%s/%s" % (head, quote(user_id, safe="")), query="", fragment=""))


@dataclass
class ViewerStats:
    """Counters of a :class:`Viewer` (monotonic over its life)."""

    messages: int = 0
    bytes: int = 0
    """Payload bytes received (text counted as UTF-8)."""
    reconnects: int = 0
    """Connections opened after the first one (4205 "stream restarted" included)."""
    restarts: int = 0
    """Reconnections because the publisher started a new stream (close code 4205)."""


class Viewer:
    """Watches a session as an operator: ``async for message in viewer`` yields ``bytes`` (binary) or ``str`` (text).

    ``ws_url`` is ``ws://relay/ws/stream/<session_id>/<user_id>`` (see
    :func:`operator_url`), or a list of such URLs of relays, tried in turn.
    It reconnects like :class:`Publisher` (backoff with jitter) after a drop,
    1001, 1013 or 4429 (too slow), and at once on 4205 (the publisher started
    a new stream; the relay then sends the new init segment and group of
    pictures first). It stops with a :class:`~psds_stream.errors.StreamRefusedError`
    subclass on 4400, 4401, 4403, 4404, 4409 (too many operators) and 4410 (the
    session is finished), and with :class:`~psds_stream.errors.ConnectionLostError`
    after ``give_up_after`` seconds without a connection. :attr:`connection`
    tells which connection the last message came from.

    With ``AUTH_MODE=token`` an operator presents ``token``: a string, or a
    function called before every connection attempt (e.g.
    :meth:`SessionsAPI.token_source`), so a viewer that reconnects after its
    token expired presents a fresh one (expiry only gates connecting, never
    an open stream). It travels as ``Authorization: Bearer``
    (``credentials_in="header"``, the default) or as ``?token=``
    (``"query"``); a ``ws_url`` that already carries ``?token=`` (a minted
    token's ``ws_url``) needs neither. 4401 (missing, invalid or expired
    token) raises :class:`~psds_stream.errors.InvalidTokenError`, 4403
    (another session or user id, or a revoked operator)
    :class:`~psds_stream.errors.ForbiddenError`; neither is retried.
    """

    def __init__(
        self,
        ws_url: Union[str, Sequence[str]],
        *,
        token: Optional[CredentialSource] = None,
        credentials_in: str = "header",
        backoff: Optional[Backoff] = None,
        give_up_after: Optional[float] = None,
        open_timeout: float = 10.0,
        ping_interval: Optional[float] = 20.0,
        max_size: Optional[int] = DEFAULT_MAX_SIZE,
    ) -> None:
        self._link = Link(
            urls_of(ws_url),
            "viewer",
            backoff=backoff,
            give_up_after=give_up_after,
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            max_size=max_size,
            credential=None if token is None else Credential("token", token, credentials_in),
        )
        self.stats = ViewerStats()
        self._ws: Any = None
        self._connection = 0
        self._closed = False
        self._failure: Optional[StreamRefusedError] = None
        self.close_code: Optional[int] = None
        """Close code of the last connection that closed."""
        self.close_reason = ""

    @property
    def connection(self) -> int:
        """Number of the current (or last) connection, 1 for the first."""
        return self._connection

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def connect(self) -> None:
        """Opens the first connection now (iterating does it otherwise)."""
        await self._connected()

    async def __aenter__(self) -> "Viewer":
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the connection normally (1000); iteration then ends."""
        self._closed = True
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    def __aiter__(self) -> "Viewer":
        return self

    async def __anext__(self) -> Union[bytes, str]:
        while True:
            if self._closed:
                raise StopAsyncIteration
            ws = await self._connected()
            try:
                message = await ws.recv()
            except ConnectionClosed as exc:
                if self._closed:
                    raise StopAsyncIteration from None
                self._ws = None
                self.close_code, self.close_reason = close_of(exc, ws)
                error = self._link.closed(self.close_code, self.close_reason)
                if error is not None:
                    self._failure = error
                    raise error from None
                if self.close_code == 4205:
                    self.stats.restarts += 1
                continue
            self.stats.messages += 1
            self.stats.bytes += len(message.encode("utf-8")) if isinstance(message, str) else len(message)
            return message  # type: ignore[no-any-return]

    async def _connected(self) -> Any:
        if self._failure is not None:
            raise self._failure
        if self._ws is None:
            first = self._connection == 0
            self._ws = await self._link.connect(first)
            self._connection += 1
            if not first:
                self.stats.reconnects += 1
                log.info("viewer: reconnected to %s", redact(self._link.url))
        return self._ws

    async def write_to(self, output: Union[str, "os.PathLike[str]", BinaryIO], *, duration: Optional[float] = None) -> ViewerStats:
        """Writes the stream to a file (a path, or a binary file object such as ``sys.stdout.buffer`` or a pipe).

        Text messages are written as UTF-8. Runs until ``duration`` seconds
        pass, the viewer stops (raising why) or the reader of a pipe goes
        away (e.g. ``ffplay`` closed). Across reconnections a WebM/MP4
        stream stays one decodable stream where possible (see
        :class:`~psds_stream.media.StreamJoiner`). Writes happen in a worker
        thread, so a slow reader never stalls the connection's keepalive;
        the service cuts off (4429) a viewer that stays too far behind, and
        the viewer then reconnects.
        """
        owned = isinstance(output, (str, os.PathLike))
        sink: BinaryIO = open(output, "wb") if isinstance(output, (str, os.PathLike)) else output
        joiner = StreamJoiner(sink)
        deadline = None if duration is None else time.monotonic() + duration
        connection = self._connection
        try:
            while True:
                if deadline is None:
                    message = await self.__anext__()
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        message = await asyncio.wait_for(self.__anext__(), left)
                    except asyncio.TimeoutError:
                        break
                if self._connection != connection:
                    if connection != 0:
                        joiner.new_connection()
                    connection = self._connection
                data = message.encode("utf-8") if isinstance(message, str) else message
                try:
                    await asyncio.to_thread(_write_and_flush, joiner, data)
                except BrokenPipeError:
                    log.info("viewer: the reader of the output went away")
                    break
        except StopAsyncIteration:
            pass
        finally:
            if owned:
                sink.close()
            else:
                try:
                    sink.flush()
                except (BrokenPipeError, ValueError):
                    pass
        return self.stats


def _write_and_flush(joiner: StreamJoiner, data: bytes) -> None:
    joiner.write(data)
    joiner.flush()

