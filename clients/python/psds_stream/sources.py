"""What to publish: an ffmpeg process, a file, stdin (byte streams) or JPEG frames (one message each)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterable, AsyncIterator, BinaryIO, Iterable, Iterator, Optional, Sequence, Union

from .errors import PSDSError
from .media import StreamResync
from .publisher import Publisher, Reconnected

__all__ = [
    "StreamResult",
    "publish_stream",
    "publish_ffmpeg",
    "publish_file",
    "publish_stdin",
    "publish_frames",
    "jpeg_files",
    "read_chunks",
    "FFmpegError",
    "CHUNK_SIZE",
]

log = logging.getLogger("psds_stream")

#: Bytes read from a byte stream at most per message.
CHUNK_SIZE = 64 * 1024

_JPEG_SOI = b"\xff\xd8"


class FFmpegError(PSDSError):
    """ffmpeg could not be started or exited with an error."""

    def __init__(self, message: str, returncode: Optional[int] = None) -> None:
        super().__init__(message)
        self.returncode = returncode


@dataclass
class StreamResult:
    """What a byte-stream source sent."""

    format: Optional[str]
    """``"webm"``, ``"mp4"`` or ``"opaque"`` (as sniffed from the first bytes)."""
    bytes_read: int = 0
    skipped_bytes: int = 0
    """Bytes not sent: read while disconnected, or dropped until the next keyframe segment after a reconnect."""
    restarts: int = 0
    """Times the stream was restarted on a new connection."""


async def publish_stream(publisher: Publisher, chunks: AsyncIterable[bytes], *, live: bool = True) -> StreamResult:
    """Publishes a byte stream, one message per chunk, until it ends.

    A WebM or fragmented MP4 stream (sniffed from its first bytes) is
    restarted cleanly on every new connection: the init segment first, then
    the current group of pictures (or, failing that, the stream from its next
    keyframe segment), so the relay sees a new well-formed stream and its
    viewers reconnect (4205) to a decodable one. Other streams just continue.

    ``live``: while reconnecting, keep reading and drop what is read (a
    camera or an ``-re`` ffmpeg must not be stalled: old video is useless).
    With ``live=False`` (a file sent as fast as the service takes it),
    reading waits for the connection instead.
    """
    resync = StreamResync()
    result = StreamResult(format=None)
    connection: Optional[int] = None
    async for chunk in chunks:
        result.bytes_read += len(chunk)
        if not live and not publisher.connected:
            await publisher.wait_connected()
        publisher.raise_if_failed()
        out = resync.feed(chunk)
        result.format = resync.format
        current = publisher.connection
        if current is None:
            result.skipped_bytes += len(chunk)
            continue
        if connection is not None and current != connection:
            out = resync.restart()
            result.restarts += 1
            log.info("publisher: restarting the %s stream on the new connection", resync.format or "undecided")
        connection = current
        for message in out:
            if not message:
                continue
            try:
                await publisher.send(message, connection=connection)
            except Reconnected:
                connection = -1  # restart on whichever connection comes next
                break
    result.skipped_bytes += resync.skipped_bytes
    return result


async def read_chunks(source: BinaryIO, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
    """Chunks of a blocking binary file object, read in a worker thread (returns what is available, up to ``chunk_size``)."""
    read = getattr(source, "read1", None) or source.read
    while True:
        chunk = await asyncio.to_thread(read, chunk_size)
        if not chunk:
            return
        yield chunk


async def publish_file(publisher: Publisher, path: Union[str, "os.PathLike[str]"], *, live: bool = False) -> StreamResult:
    """Publishes a file's bytes as a stream, as fast as the service takes them.

    For a media file at its real pace, use ffmpeg instead:
    ``publish_ffmpeg(publisher, ["-re", "-i", path, "-c", "copy", "-f", "webm", "-live", "1"])``.
    """
    with open(path, "rb") as source:
        return await publish_stream(publisher, read_chunks(source), live=live)


async def publish_stdin(publisher: Publisher, *, live: bool = True) -> StreamResult:
    """Publishes standard input as a byte stream until it ends."""
    return await publish_stream(publisher, read_chunks(sys.stdin.buffer), live=live)


async def publish_ffmpeg(publisher: Publisher, args: Sequence[str], *, ffmpeg: str = "ffmpeg") -> StreamResult:
    """Runs ``ffmpeg -hide_banner -loglevel error -nostdin ARGS pipe:1`` and publishes its standard output.

    ``args`` are the input and output options, without the output URL, e.g.
    ``["-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-c:v", "libvpx",
    "-deadline", "realtime", "-g", "25", "-f", "webm", "-live", "1"]``. ffmpeg's
    error output goes to this process's stderr. Raises :class:`FFmpegError`
    when ffmpeg exits with an error; ffmpeg is terminated if publishing
    stops first.
    """
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", *args, "pipe:1"]
    try:
        process = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise FFmpegError("cannot run %s: %s" % (ffmpeg, exc)) from exc
    assert process.stdout is not None
    stdout = process.stdout

    async def chunks() -> AsyncIterator[bytes]:
        while True:
            chunk = await stdout.read(CHUNK_SIZE)
            if not chunk:
                return
            yield chunk

    try:
        result = await publish_stream(publisher, chunks(), live=True)
    finally:
        if process.returncode is None:
            try:
                process.terminate()
            except ProcessLookupError:
                pass
        returncode = await process.wait()
    if returncode != 0:
        raise FFmpegError("ffmpeg exited with code %d (its errors are above)" % returncode, returncode)
    return result


def jpeg_files(directory: Union[str, "os.PathLike[str]"]) -> Iterator[bytes]:
    """The ``*.jpg``/``*.jpeg`` files of a directory, in name order, as bytes."""
    paths = sorted(p for p in Path(directory).iterdir() if p.suffix.lower() in (".jpg", ".jpeg") and p.is_file())
    if not paths:
        raise FileNotFoundError("no .jpg or .jpeg files in %s" % directory)
    for path in paths:
        yield path.read_bytes()


async def publish_frames(
    publisher: Publisher,
    frames: Union[Iterable[bytes], AsyncIterable[bytes]],
    *,
    fps: Optional[float] = None,
    jpeg: bool = True,
) -> int:
    """Publishes frames, one message each, at most ``fps`` per second; returns how many were sent.

    ``frames`` may be any (async) iterable of encoded frames, e.g. JPEG
    images from OpenCV (``cv2.imencode(".jpg", frame)[1].tobytes()``). With
    ``jpeg=True`` a frame that is not a JPEG image raises ``ValueError``. A
    frame whose send was cut by a reconnect is sent again on the new
    connection.
    """
    if fps is not None and fps <= 0:
        raise ValueError("fps must be positive")
    interval = None if fps is None else 1.0 / fps
    started = time.monotonic()
    sent = 0
    async for frame in _aiter(frames):
        if jpeg and not bytes(frame[:2]) == _JPEG_SOI:
            raise ValueError("frame %d is not a JPEG image (no FF D8 start of image marker)" % sent)
        if interval is not None:
            # Pacing to the frame clock, not synchronisation: a late frame goes out at once.
            due = started + sent * interval
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await publisher.send(bytes(frame))
        sent += 1
    return sent


async def _aiter(items: Union[Iterable[bytes], AsyncIterable[bytes]]) -> AsyncIterator[bytes]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
