"""Container awareness for byte streams: WebM and fragmented MP4.

The relay treats a stream that starts with a WebM (EBML) header or an MP4
``ftyp`` box as a media stream: it keeps the init segment and the last group of
pictures for late joiners, and a stream that starts again (a new init segment
on a new publisher connection) makes viewers reconnect with close code 4205.

This module lets the client play its part:

- :class:`StreamScanner` walks a byte stream incrementally and reports the init
  segment and where each media segment (WebM Cluster, MP4 ``moof``) starts and
  whether it starts with a keyframe.
- :class:`StreamResync` (publisher side) keeps the init segment and the bytes
  since the last keyframe segment, so that after a reconnect the publisher
  starts a clean stream: init segment, then the current group of pictures.
- :class:`StreamJoiner` (viewer side) turns the messages of several
  connections into one continuous file: an init segment identical to the one
  already written is skipped, and a seekable file is cut back to its last
  keyframe segment before the group of pictures the relay replays.

Other streams (JPEG frames, JSON, raw bytes) are "opaque": passed through.
Nothing here raises on malformed input; a stream that stops making sense is
treated as opaque from that point on.
"""

from __future__ import annotations

import collections
import struct
from dataclasses import dataclass
from typing import BinaryIO, Deque, Dict, Iterator, List, Optional, Set, Tuple, Union

__all__ = [
    "InitSegment",
    "MediaSegment",
    "Opaque",
    "ScanEvent",
    "StreamScanner",
    "StreamResync",
    "StreamJoiner",
    "sniff",
    "MAX_INIT_BYTES",
]

#: Largest init segment kept (browsers write ~150 bytes, ffmpeg ~1 KB).
MAX_INIT_BYTES = 1024 * 1024
#: Largest MP4 ``moof`` box read whole to find its first video sample's flags.
MAX_MOOF_BYTES = 1024 * 1024

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"


@dataclass(frozen=True)
class InitSegment:
    """The stream's initialization segment, complete (everything before the first media segment)."""

    data: bytes


@dataclass(frozen=True)
class MediaSegment:
    """A media segment (WebM Cluster, MP4 ``moof``) starts at stream offset ``offset``."""

    offset: int
    keyframe: bool


@dataclass(frozen=True)
class Opaque:
    """The scanner gave up at ``offset``: the rest of the stream is opaque bytes."""

    offset: int
    reason: str


ScanEvent = Union[InitSegment, MediaSegment, Opaque]


def sniff(head: bytes) -> Optional[str]:
    """``"webm"``, ``"mp4"`` or ``"opaque"`` from the first bytes; ``None`` while they cannot tell yet."""
    if len(head) < 4:
        return None
    if head[:4] == _EBML_MAGIC:
        return "webm"
    if len(head) < 8:
        return None if b"ftyp".startswith(head[4:]) else "opaque"
    return "mp4" if head[4:8] == b"ftyp" else "opaque"


class _Scanner:
    """The part both container scanners share: position, state, the init segment's bytes."""

    def __init__(self, max_init_bytes: int) -> None:
        self.position = 0
        self.state = "init"  # "init" -> "media"; or "opaque", for good
        self.events: List[ScanEvent] = []
        self.init_buffer = bytearray()
        self.max_init_bytes = max_init_bytes
        #: Offset of a media segment whose keyframe flag is not known yet.
        self.undecided: Optional[int] = None

    def _consume(self, data: memoryview) -> None:
        """Moves past ``data``, keeping it while it belongs to the init segment."""
        self.position += len(data)
        if self.state == "init":
            self.init_buffer += data
            if len(self.init_buffer) > self.max_init_bytes:
                self._give_up("init segment larger than %d bytes" % self.max_init_bytes)

    def _give_up(self, reason: str) -> None:
        if self.state != "opaque":
            self.state = "opaque"
            self.undecided = None
            self.events.append(Opaque(self.position, reason))

    def _init_complete(self, length: int) -> bytes:
        init = bytes(self.init_buffer[:length])
        self.init_buffer = bytearray()
        self.state = "media"
        self.events.append(InitSegment(init))
        return init

    def needed_from(self) -> int:
        if self.undecided is not None:
            return self.undecided
        return self._header_start if self._header else self.position

    _header: bytearray
    _header_start: int

    def _segment(self, offset: int, keyframe: bool) -> None:
        self.undecided = None
        self.events.append(MediaSegment(offset, keyframe))


# --- WebM ---------------------------------------------------------------------

_ID_EBML = 0x1A45DFA3
_ID_SEGMENT = 0x18538067
_ID_CLUSTER = 0x1F43B675
_ID_TRACKS = 0x1654AE6B
_ID_TRACK_ENTRY = 0xAE
_ID_TRACK_NUMBER = 0xD7
_ID_TRACK_TYPE = 0x83
_ID_SIMPLE_BLOCK = 0xA3
_ID_BLOCK_GROUP = 0xA0
_ID_BLOCK = 0xA1
_ID_REFERENCE_BLOCK = 0xFB
# Children of Segment other than Cluster: their appearance ends an unknown-size Cluster.
_SEGMENT_LEVEL = {0x114D9B74, 0x1549A966, _ID_TRACKS, 0x1043A770, 0x1C53BB6B, 0x1941A469, 0x1254C367, 0xEC}
_UNKNOWN = -1


def _vint_length(first: int) -> int:
    for length in range(1, 9):
        if first & (0x80 >> (length - 1)):
            return length
    return 0


def _vint(buf: bytes, pos: int, length: int) -> int:
    value = buf[pos] & (0xFF >> length)
    for i in range(1, length):
        value = (value << 8) | buf[pos + i]
    return value


def _ebml_elements(buf: bytes, start: int, end: int) -> Iterator[Tuple[int, int, int]]:
    """(id, data start, data end) of the complete elements in ``buf[start:end]``."""
    pos = start
    while pos < end:
        id_length = _vint_length(buf[pos])
        if id_length == 0 or id_length > 4 or pos + id_length >= end:
            return
        size_length = _vint_length(buf[pos + id_length])
        if size_length == 0 or pos + id_length + size_length > end:
            return
        element_id = int.from_bytes(buf[pos : pos + id_length], "big")
        size = _vint(buf, pos + id_length, size_length)
        data = pos + id_length + size_length
        unknown = size == (1 << (7 * size_length)) - 1
        data_end = end if unknown else min(end, data + size)
        yield element_id, data, data_end
        pos = data_end


def _webm_video_tracks(init: bytes) -> Set[int]:
    tracks: Set[int] = set()
    for element_id, start, end in _ebml_elements(init, 0, len(init)):
        if element_id != _ID_SEGMENT:
            continue
        for child_id, child_start, child_end in _ebml_elements(init, start, end):
            if child_id != _ID_TRACKS:
                continue
            for entry_id, entry_start, entry_end in _ebml_elements(init, child_start, child_end):
                if entry_id != _ID_TRACK_ENTRY:
                    continue
                number = kind = None
                for field_id, field_start, field_end in _ebml_elements(init, entry_start, entry_end):
                    if field_id in (_ID_TRACK_NUMBER, _ID_TRACK_TYPE):
                        value = int.from_bytes(init[field_start:field_end], "big")
                        if field_id == _ID_TRACK_NUMBER:
                            number = value
                        else:
                            kind = value
                if number is not None and kind == 1:
                    tracks.add(number)
    return tracks


class _WebmScanner(_Scanner):
    """EBML walker: a stack of open master elements, headers buffered, bodies skipped.

    A Cluster is a keyframe segment when its first video block is a keyframe
    (a SimpleBlock with flag 0x80, or a BlockGroup without ReferenceBlock).
    """

    format = "webm"

    def __init__(self, max_init_bytes: int) -> None:
        super().__init__(max_init_bytes)
        self._header = bytearray()
        self._header_start = 0
        self._skip = 0
        self._open: List[Tuple[int, int]] = []  # (id, end offset or _UNKNOWN)
        self._body_id = 0  # a block whose first bytes are being read
        self._body = bytearray()
        self._body_want = 0
        self._body_rest = 0
        self._video: Set[int] = set()
        self._seen_segment = False
        self._group_video: Optional[bool] = None
        self._group_referenced = False

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        i = 0
        n = len(data)
        while i < n and self.state != "opaque":
            if self._skip:
                used = min(self._skip, n - i)
                self._consume(view[i : i + used])
                self._skip -= used
                i += used
                self._close_ended()
                continue
            if self._body_want:
                used = min(self._body_want, n - i)
                self._body += view[i : i + used]
                self._consume(view[i : i + used])
                self._body_want -= used
                i += used
                if not self._body_want:
                    self._on_block(bytes(self._body))
                    self._skip = self._body_rest
                    if not self._skip:
                        self._close_ended()
                continue
            if not self._header:
                self._header_start = self.position
            # Headers are at most 12 bytes (4 of id, 8 of size): taken byte by byte.
            self._header.append(data[i])
            self._consume(view[i : i + 1])
            i += 1
            self._parse_header()

    def _parse_header(self) -> None:
        header = self._header
        id_length = _vint_length(header[0])
        if id_length == 0 or id_length > 4:
            self._give_up("invalid EBML element id")
            return
        if len(header) <= id_length:
            return
        size_length = _vint_length(header[id_length])
        if size_length == 0:
            self._give_up("invalid EBML element size")
            return
        if len(header) < id_length + size_length:
            return
        element_id = int.from_bytes(header[:id_length], "big")
        size = _vint(header, id_length, size_length)
        unknown = size == (1 << (7 * size_length)) - 1
        start = self._header_start
        self._header = bytearray()
        self._on_element(element_id, start, -1 if unknown else size)

    def _on_element(self, element_id: int, start: int, size: int) -> None:
        data_start = self.position
        end = _UNKNOWN if size < 0 else data_start + size
        # An unknown-size master ends where an element that cannot be its child starts.
        while self._open and self._open[-1][1] == _UNKNOWN:
            unknown_parent = self._open[-1][0]
            if unknown_parent == _ID_CLUSTER and (element_id == _ID_CLUSTER or element_id in _SEGMENT_LEVEL):
                self._close(self._open.pop()[0])
                continue
            if unknown_parent == _ID_SEGMENT and element_id in (_ID_EBML, _ID_SEGMENT):
                self._give_up("a second stream in the same connection")
                return
            break
        parent = self._open[-1][0] if self._open else None
        if parent is None:
            if element_id == _ID_EBML and not self._seen_segment and size >= 0:
                self._skip = size
            elif element_id == _ID_SEGMENT and not self._seen_segment:
                self._seen_segment = True
                self._open.append((element_id, end))
            else:
                self._give_up("not a WebM element at the top level")
            return
        if parent == _ID_SEGMENT:
            if element_id == _ID_CLUSTER:
                if self.state == "init":
                    init = self._init_complete(start)
                    self._video = _webm_video_tracks(init)
                self.undecided = start
                self._open.append((element_id, end))
            elif size < 0:
                self._give_up("unknown-size element other than a Cluster in the Segment")
            else:
                self._skip = size
        elif parent == _ID_CLUSTER:
            if element_id in (_ID_SIMPLE_BLOCK,) and size >= 0:
                self._read_block(element_id, size)
            elif element_id == _ID_BLOCK_GROUP and size >= 0:
                self._group_video = None
                self._group_referenced = False
                self._open.append((element_id, end))
            elif size < 0:
                self._give_up("unknown-size element in a Cluster")
            else:
                self._skip = size
        elif parent == _ID_BLOCK_GROUP:
            if size < 0:
                self._give_up("unknown-size element in a BlockGroup")
            elif element_id == _ID_BLOCK:
                self._read_block(element_id, size)
            else:
                if element_id == _ID_REFERENCE_BLOCK:
                    self._group_referenced = True
                self._skip = size
        if size == 0:
            self._close_ended()

    def _read_block(self, element_id: int, size: int) -> None:
        # Track number (a vint of up to 8 bytes), timecode (2), flags (1).
        want = min(size, 11)
        self._body_id = element_id
        self._body = bytearray()
        self._body_want = want
        self._body_rest = size - want
        if want == 0:
            self._close_ended()

    def _on_block(self, head: bytes) -> None:
        if not head:
            return
        length = _vint_length(head[0])
        if length == 0 or len(head) < length + 3:
            return
        track = _vint(head, 0, length)
        is_video = not self._video or track in self._video
        if self._body_id == _ID_SIMPLE_BLOCK:
            if is_video and self.undecided is not None:
                self._segment(self.undecided, bool(head[length + 2] & 0x80))
        elif is_video:
            self._group_video = True

    def _close_ended(self) -> None:
        while self._open and self._open[-1][1] != _UNKNOWN and self.position >= self._open[-1][1]:
            self._close(self._open.pop()[0])

    def _close(self, element_id: int) -> None:
        if element_id == _ID_BLOCK_GROUP:
            if self._group_video and self.undecided is not None:
                self._segment(self.undecided, not self._group_referenced)
        elif element_id == _ID_CLUSTER and self.undecided is not None:
            # A Cluster without a video block: a keyframe segment only in a stream without video.
            self._segment(self.undecided, not self._video)


# --- fragmented MP4 ---------------------------------------------------------------

_SAMPLE_IS_NON_SYNC = 0x00010000


def _boxes(buf: bytes, start: int, end: int) -> Iterator[Tuple[bytes, int, int]]:
    """(type, body start, body end) of the boxes in ``buf[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack_from(">Q", buf, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            return
        yield kind, pos + header, min(end, pos + size)
        pos += size


def _child(buf: bytes, start: int, end: int, kind: bytes) -> Optional[Tuple[int, int]]:
    for child_kind, child_start, child_end in _boxes(buf, start, end):
        if child_kind == kind:
            return child_start, child_end
    return None


def _mp4_tracks(init: bytes) -> Tuple[Set[int], Dict[int, int]]:
    """Video track ids and every track's default sample flags (``trex``) from ``moov``."""
    video: Set[int] = set()
    defaults: Dict[int, int] = {}
    moov = _child(init, 0, len(init), b"moov")
    if moov is None:
        return video, defaults
    for kind, start, end in _boxes(init, *moov):
        if kind == b"trak":
            tkhd = _child(init, start, end, b"tkhd")
            mdia = _child(init, start, end, b"mdia")
            hdlr = _child(init, mdia[0], mdia[1], b"hdlr") if mdia else None
            if tkhd is None or hdlr is None or hdlr[1] - hdlr[0] < 12:
                continue
            version = init[tkhd[0]]
            id_at = tkhd[0] + (20 if version == 1 else 12)
            if id_at + 4 <= tkhd[1] and init[hdlr[0] + 8 : hdlr[0] + 12] == b"vide":
                video.add(struct.unpack_from(">I", init, id_at)[0])
        elif kind == b"mvex":
            for child_kind, child_start, child_end in _boxes(init, start, end):
                if child_kind == b"trex" and child_end - child_start >= 24:
                    track, flags = struct.unpack_from(">I12xI", init, child_start + 4)
                    defaults[track] = flags
    return video, defaults


def _moof_keyframe(moof: bytes, video: Set[int], defaults: Dict[int, int]) -> bool:
    """Whether the first video sample of a ``moof`` (given as its body) is a sync sample."""
    for kind, start, end in _boxes(moof, 0, len(moof)):
        if kind != b"traf":
            continue
        tfhd = _child(moof, start, end, b"tfhd")
        if tfhd is None or tfhd[1] - tfhd[0] < 8:
            continue
        tf_flags = struct.unpack_from(">I", moof, tfhd[0])[0] & 0xFFFFFF
        track = struct.unpack_from(">I", moof, tfhd[0] + 4)[0]
        if video and track not in video:
            continue
        default = defaults.get(track, 0)
        at = tfhd[0] + 8
        for bit in (0x1, 0x2, 0x8, 0x10):
            if tf_flags & bit:
                at += 8 if bit == 0x1 else 4
        if tf_flags & 0x20 and at + 4 <= tfhd[1]:
            default = struct.unpack_from(">I", moof, at)[0]
        for trun_kind, trun_start, trun_end in _boxes(moof, start, end):
            if trun_kind != b"trun" or trun_end - trun_start < 8:
                continue
            tr_flags, count = struct.unpack_from(">II", moof, trun_start)
            tr_flags &= 0xFFFFFF
            if count == 0:
                continue
            at = trun_start + 8 + (4 if tr_flags & 0x1 else 0)
            if tr_flags & 0x4:
                flags = struct.unpack_from(">I", moof, at)[0]
            elif tr_flags & 0x400:
                at += (4 if tr_flags & 0x100 else 0) + (4 if tr_flags & 0x200 else 0)
                flags = struct.unpack_from(">I", moof, at)[0] if at + 4 <= trun_end else default
            else:
                flags = default
            return not flags & _SAMPLE_IS_NON_SYNC
    # No video fragment in this moof: a keyframe segment only in a stream without video.
    return not video


class _Mp4Scanner(_Scanner):
    """Box walker: ``moof`` boxes are read whole, every other box body is skipped."""

    format = "mp4"

    def __init__(self, max_init_bytes: int) -> None:
        super().__init__(max_init_bytes)
        self._header = bytearray()
        self._header_start = 0
        self._skip = 0
        self._moof: Optional[bytearray] = None
        self._moof_want = 0
        self._moof_start = 0
        self._video: Set[int] = set()
        self._defaults: Dict[int, int] = {}

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        i = 0
        n = len(data)
        while i < n and self.state != "opaque":
            if self._skip:
                used = min(self._skip, n - i)
                self._consume(view[i : i + used])
                self._skip -= used
                i += used
                continue
            if self._moof is not None:
                used = min(self._moof_want, n - i)
                self._moof += view[i : i + used]
                self.position += used
                self._moof_want -= used
                i += used
                if not self._moof_want:
                    self._segment(self._moof_start, _moof_keyframe(bytes(self._moof), self._video, self._defaults))
                    self._moof = None
                continue
            if not self._header:
                self._header_start = self.position
            used = min((16 if len(self._header) >= 8 and self._is_large() else 8) - len(self._header), n - i)
            self._header += view[i : i + used]
            self._consume(view[i : i + used])
            i += used
            self._parse_header()

    def _is_large(self) -> bool:
        size: int = struct.unpack_from(">I", self._header, 0)[0]
        return size == 1

    def _parse_header(self) -> None:
        if len(self._header) < 8:
            return
        size, kind = struct.unpack_from(">I4s", self._header, 0)
        header_length = 8
        if size == 1:
            if len(self._header) < 16:
                return
            size = struct.unpack_from(">Q", self._header, 8)[0]
            header_length = 16
        self._header = bytearray()
        if size == 0 or size < header_length:
            self._give_up("MP4 box without a usable size")
            return
        body = size - header_length
        if kind == b"moof":
            if self.state == "init":
                init = self._init_complete(self._header_start)
                self._video, self._defaults = _mp4_tracks(init)
            if body > MAX_MOOF_BYTES:
                self._give_up("moof larger than %d bytes" % MAX_MOOF_BYTES)
                return
            self._moof_start = self._header_start
            self.undecided = self._header_start
            if body == 0:
                self._segment(self._moof_start, not self._video)
            else:
                self._moof = bytearray()
                self._moof_want = body
        else:
            self._skip = body


class StreamScanner:
    """Sniffs a byte stream and, for WebM and fragmented MP4, finds its segments.

    Feed it the stream's bytes in order, in chunks of any size; each
    :meth:`feed` returns the events the chunk completed. Memory: the init
    segment (while it is incomplete, at most ``max_init_bytes``) and one
    ``moof`` box; media bytes are never retained.
    """

    def __init__(self, max_init_bytes: int = MAX_INIT_BYTES) -> None:
        self._max_init_bytes = max_init_bytes
        self._head = bytearray()
        self._scanner: Optional[Union[_WebmScanner, _Mp4Scanner]] = None
        self._format: Optional[str] = None
        self._position = 0
        self.init: Optional[bytes] = None

    @property
    def format(self) -> Optional[str]:
        """``"webm"``, ``"mp4"``, ``"opaque"``, or ``None`` while undecided."""
        if self._scanner is not None and self._scanner.state == "opaque":
            return "opaque"
        return self._format

    @property
    def state(self) -> str:
        """``"undecided"``, ``"init"`` (init segment incomplete), ``"media"`` or ``"opaque"``."""
        if self._format is None:
            return "undecided"
        if self._scanner is None:
            return "opaque"
        return self._scanner.state

    @property
    def position(self) -> int:
        """Bytes fed so far."""
        return self._position

    @property
    def head(self) -> bytes:
        """What has been fed while the format is undecided or the init segment incomplete."""
        if self._scanner is None:
            return bytes(self._head)
        return bytes(self._scanner.init_buffer) if self._scanner.state == "init" else b""

    @property
    def needed_from(self) -> int:
        """Earliest offset a segment found later may start at: an undecided segment's, a partial header's or the end."""
        if self._scanner is None:
            return self._position
        return self._scanner.needed_from()

    def feed(self, data: bytes) -> List[ScanEvent]:
        self._position += len(data)
        if self._format is None:
            self._head += data
            decided = sniff(bytes(self._head[:8]))
            if decided is None:
                return []
            self._format = decided
            data = bytes(self._head)
            self._head = bytearray()
            if decided == "opaque":
                return []
            self._scanner = _WebmScanner(self._max_init_bytes) if decided == "webm" else _Mp4Scanner(self._max_init_bytes)
        if self._scanner is None or self._scanner.state == "opaque":
            return []
        self._scanner.feed(data)
        events = self._scanner.events
        self._scanner.events = []
        for event in events:
            if isinstance(event, InitSegment):
                self.init = event.data
        return events


class StreamResync:
    """Publisher side: what to send to restart a byte stream on a new connection.

    Every chunk the source produces goes through :meth:`feed`, sent or not
    (the chunks are returned for sending unchanged). The object keeps the
    init segment and references to the chunks since the last keyframe segment
    started (at most ``max_group_bytes``). After a reconnect, :meth:`restart`
    returns what the new connection must start with: for WebM/MP4 the init
    segment and the current group of pictures (or, when no complete group is
    held, nothing until the next keyframe segment: :meth:`feed` then withholds
    chunks until it can start cleanly); for a stream whose init segment is
    incomplete, everything so far; for opaque streams, nothing.
    """

    def __init__(self, max_group_bytes: int = 8 * 1024 * 1024, max_init_bytes: int = MAX_INIT_BYTES) -> None:
        self._scanner = StreamScanner(max_init_bytes)
        self._max_group_bytes = max_group_bytes
        self._held: Deque[Tuple[int, bytes]] = collections.deque()  # (stream offset, chunk)
        self._held_bytes = 0
        self._group_start: Optional[int] = None
        self._waiting = False
        self.skipped_bytes = 0
        """Bytes dropped while waiting for a keyframe segment after a restart."""

    @property
    def format(self) -> Optional[str]:
        return self._scanner.format

    def feed(self, chunk: bytes) -> List[bytes]:
        """Chunks to send now: the input chunk, unless a restart is waiting for a keyframe segment."""
        offset = self._scanner.position
        events = self._scanner.feed(chunk)
        state = self._scanner.state
        if state == "opaque":
            self._clear()
            if self._waiting:
                self._waiting = False
            return [chunk]
        self._held.append((offset, chunk))
        self._held_bytes += len(chunk)
        if state != "media":
            return [chunk]
        for event in events:
            if isinstance(event, MediaSegment) and event.keyframe:
                self._group_start = event.offset
        out = [chunk]
        if self._waiting:
            out = []
            if self._group_start is not None:
                self._waiting = False
                out = self._restart_messages()
        self._trim()
        return out

    def restart(self) -> List[bytes]:
        """Messages a new connection starts with; afterwards keep calling :meth:`feed`."""
        state = self._scanner.state
        if state in ("undecided", "init"):
            head = self._scanner.head
            return [head] if head else []
        if state == "opaque":
            return []
        if self._group_start is None:
            self._waiting = True
            return []
        return self._restart_messages()

    def _restart_messages(self) -> List[bytes]:
        assert self._scanner.init is not None and self._group_start is not None
        out = [self._scanner.init]
        for offset, chunk in self._held:
            if offset + len(chunk) <= self._group_start:
                continue
            out.append(chunk[self._group_start - offset :] if offset < self._group_start else chunk)
        return out

    def _trim(self) -> None:
        needed = self._scanner.needed_from
        self._drop_before(self._group_start if self._group_start is not None else needed)
        if self._held_bytes > self._max_group_bytes:
            # A group larger than the bound: wait for the next keyframe segment instead.
            self._group_start = None
            self._drop_before(needed)

    def _drop_before(self, offset: int) -> None:
        while self._held and self._held[0][0] + len(self._held[0][1]) <= offset:
            _, chunk = self._held.popleft()
            self._held_bytes -= len(chunk)
            if self._waiting:
                self.skipped_bytes += len(chunk)

    def _clear(self) -> None:
        self._held.clear()
        self._held_bytes = 0
        self._group_start = None


class StreamJoiner:
    """Viewer side: writes the messages of successive connections as one stream.

    Call :meth:`new_connection` when a viewer reconnects and :meth:`write`
    with each message's bytes. For WebM/MP4, when a new connection starts with
    the init segment already written (the same stream continues, or the
    publisher restarted it after a reconnect), that init segment is skipped
    and a seekable output is first cut back to the start of the last keyframe
    segment written: the relay replays the group of pictures from a keyframe
    segment, so the file stays decodable instead of holding a torn segment. A
    different init segment (a new stream) is written as is.
    """

    def __init__(self, output: BinaryIO, seekable: Optional[bool] = None) -> None:
        self._out = output
        if seekable is None:
            try:
                seekable = output.seekable()
            except (AttributeError, OSError, ValueError):
                seekable = False
        self._seekable = seekable
        self._scanner = StreamScanner()
        self._base = 0  # output offset of the current stream's offset 0
        self._last_key: Optional[int] = None  # output offset of the last keyframe segment
        self._init: Optional[bytes] = None
        self._compare: Optional[bytearray] = None
        self.bytes_written = 0
        """Bytes in the output (after any cut)."""

    def new_connection(self) -> None:
        if self._scanner.state == "media" and self._scanner.init is not None:
            self._init = self._scanner.init
            self._compare = bytearray()

    def flush(self) -> None:
        self._out.flush()

    def write(self, data: bytes) -> None:
        if self._compare is not None and self._init is not None:
            self._compare += data
            init = self._init
            if len(self._compare) < len(init) and init.startswith(bytes(self._compare)):
                return
            pending = bytes(self._compare)
            self._compare = None
            self._scanner = StreamScanner()
            if pending.startswith(init):
                if self._seekable and self._last_key is not None:
                    self._out.flush()
                    self._out.seek(self._last_key)
                    self._out.truncate()
                    self.bytes_written = self._last_key
                # Scanned as if the init segment had not been repeated.
                self._scanner.feed(init)
                self._base = self.bytes_written - len(init)
                data = pending[len(init) :]
            else:
                self._base = self.bytes_written
                data = pending
            self._last_key = None
        if not data:
            return
        for event in self._scanner.feed(data):
            if isinstance(event, MediaSegment) and event.keyframe:
                self._last_key = self._base + event.offset
        self._out.write(data)
        self.bytes_written += len(data)
