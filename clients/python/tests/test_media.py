"""Container awareness (no service needed): scanning, publisher restarts, viewer joins.

The streams are made by ffmpeg at test time; ground truth is ffmpeg itself:
a stream cut at a keyframe segment and prefixed with the init segment must
decode without errors.
"""

from __future__ import annotations

import io
import random
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from psds_stream.connection import Backoff, redact
from psds_stream.errors import (
    CloseCode,
    InvalidStreamKeyError,
    MessageTooLargeError,
    PublisherReplacedError,
    SessionFinishedError,
    SessionNotFoundError,
    StreamRefusedError,
    TooManyOperatorsError,
    refusal,
)
from psds_stream.media import InitSegment, MediaSegment, StreamJoiner, StreamResync, StreamScanner, sniff
from psds_stream.publisher import with_stream_key

VP8 = ["-c:v", "libvpx", "-deadline", "realtime", "-b:v", "300k"]


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, bytes]:
    directory = tmp_path_factory.mktemp("media")

    def make(name: str, args: List[str], audio: bool = False) -> bytes:
        inputs = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=25"]
        if audio:
            inputs += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", *inputs, "-t", "4", *args, str(directory / name)],
                       check=True, timeout=60)
        return (directory / name).read_bytes()

    return {
        "webm": make("out.webm", [*VP8, "-g", "25", "-f", "webm", "-live", "1"]),
        # Clusters cut at 3000 bytes: most start without a keyframe.
        "webm-split": make("split.webm", [*VP8, "-g", "50", "-cluster_size_limit", "3000", "-f", "webm", "-live", "1"]),
        "webm-audio": make("audio.webm", [*VP8, "-g", "25", "-c:a", "libopus", "-f", "webm", "-live", "1"], audio=True),
        "mp4": make("out.mp4", ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac",
                                "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4"], audio=True),
    }


def scan(data: bytes, sizes: "random.Random | None" = None) -> List[object]:
    scanner = StreamScanner()
    events: List[object] = []
    i = 0
    while i < len(data):
        n = len(data) if sizes is None else sizes.randint(1, 5000)
        events += scanner.feed(data[i : i + n])
        i += n
    return events


def decodes(data: bytes) -> str:
    """ffmpeg's error output decoding ``data`` ('' when it decodes cleanly)."""
    done = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "null", "-"], input=data, capture_output=True, timeout=60)
    return done.stderr.decode() or ("" if done.returncode == 0 else "exit %d" % done.returncode)


def keyframe_offsets(data: bytes) -> List[int]:
    return [e.offset for e in scan(data) if isinstance(e, MediaSegment) and e.keyframe]


@pytest.mark.parametrize("name", ["webm", "webm-split", "webm-audio", "mp4"])
def test_the_scanner_finds_the_same_segments_however_the_stream_is_cut(streams: Dict[str, bytes], name: str) -> None:
    data = streams[name]
    whole = scan(data)
    assert scan(data[:1] + data[1:], None) == whole
    for seed in range(10):
        assert scan(data, random.Random(seed)) == whole, seed
    one_byte = StreamScanner()
    assert [e for b in range(len(data)) for e in one_byte.feed(data[b : b + 1])] == whole
    init = [e for e in whole if isinstance(e, InitSegment)]
    assert len(init) == 1 and data.startswith(init[0].data)
    segments = [e for e in whole if isinstance(e, MediaSegment)]
    assert segments and segments[0].offset == len(init[0].data)
    assert [s.offset for s in segments] == sorted({s.offset for s in segments})


@pytest.mark.parametrize("name", ["webm", "webm-split", "webm-audio", "mp4"])
def test_a_keyframe_segment_with_the_init_segment_decodes(streams: Dict[str, bytes], name: str) -> None:
    data = streams[name]
    events = scan(data)
    init = next(e.data for e in events if isinstance(e, InitSegment))
    keys = [e.offset for e in events if isinstance(e, MediaSegment) and e.keyframe]
    others = [e.offset for e in events if isinstance(e, MediaSegment) and not e.keyframe]
    assert len(keys) >= (1 if name == "webm-split" else 4)
    for offset in keys:
        assert decodes(init + data[offset:]) == "", offset
    if name == "webm-split":
        assert others, "clusters cut by size start without a keyframe"
        assert decodes(init + data[others[len(others) // 2] :]) != "", "a cut at a delta cluster does not decode"


def test_sniffing() -> None:
    assert sniff(b"\x1a\x45") is None
    assert sniff(b"\x1a\x45\xdf\xa3") == "webm"
    assert sniff(b"\0\0\0\x20ft") is None
    assert sniff(b"\0\0\0\x20ftyp") == "mp4"
    assert sniff(b"\xff\xd8\xff\xe0\0\x10JF") == "opaque"
    assert sniff(b'{"a": 1}') == "opaque"
    scanner = StreamScanner()
    assert scanner.feed(b"\xff\xd8\xff\xe0") == [] and scanner.format is None
    assert scanner.feed(b"\0\x10JFIF") == [] and scanner.format == "opaque"


def test_a_publisher_restart_sends_the_init_segment_and_the_current_group(streams: Dict[str, bytes]) -> None:
    data = streams["webm"]
    keys = keyframe_offsets(data)
    resync = StreamResync()
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    cut = len(chunks) // 2
    assert all(resync.feed(c) == [c] for c in chunks[:cut]), "chunks pass through unchanged"
    restart = resync.restart()
    init = next(e.data for e in scan(data) if isinstance(e, InitSegment))
    position = cut * 4096
    group = max(k for k in keys if k < position)
    assert restart[0] == init
    assert b"".join(restart) == init + data[group:position]
    rest = [m for c in chunks[cut:] for m in resync.feed(c)]
    assert b"".join(restart + rest) == init + data[group:]
    assert decodes(b"".join(restart + rest)) == ""


def test_without_a_group_held_a_restart_waits_for_the_next_keyframe_segment(streams: Dict[str, bytes]) -> None:
    data = streams["webm"]
    keys = keyframe_offsets(data)
    resync = StreamResync(max_group_bytes=1)  # never holds a whole group
    chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    cut = keys[1] // 1000 + 2  # inside the second group
    assert cut * 1000 < keys[2] - 2000
    for chunk in chunks[:cut]:
        resync.feed(chunk)
    assert resync.restart() == []
    out = [m for c in chunks[cut:] for m in resync.feed(c)]
    init = next(e.data for e in scan(data) if isinstance(e, InitSegment))
    following = min(k for k in keys if k >= cut * 1000)
    assert b"".join(out) == init + data[following:]
    assert resync.skipped_bytes > 0
    assert decodes(b"".join(out)) == ""


def test_a_restart_before_the_init_segment_is_complete_resends_it_from_the_start(streams: Dict[str, bytes]) -> None:
    data = streams["mp4"]
    resync = StreamResync()
    resync.feed(data[:10])
    assert resync.restart() == [data[:10]]
    opaque = StreamResync()
    opaque.feed(b"\xff\xd8 a jpeg frame")
    assert opaque.restart() == []
    assert opaque.feed(b"next") == [b"next"]


def test_the_viewer_file_stays_one_stream_across_a_reconnect(streams: Dict[str, bytes]) -> None:
    data = streams["webm"]
    init = next(e.data for e in scan(data) if isinstance(e, InitSegment))
    keys = keyframe_offsets(data)
    torn = keys[2] + 500  # the first connection stops in the middle of the third group
    replay = init + data[keys[2] :]  # what the relay sends a new connection: init, group, live

    file = io.BytesIO()
    joiner = StreamJoiner(file)
    for i in range(0, torn, 3000):
        joiner.write(data[i : min(i + 3000, torn)])
    joiner.new_connection()
    for i in range(0, len(replay), 7000):
        joiner.write(replay[i : i + 7000])
    assert file.getvalue() == data, "cut back to the group start, the repeated init skipped: the original stream"
    assert joiner.bytes_written == len(data)

    pipe = io.BytesIO()
    piped = StreamJoiner(pipe, seekable=False)
    piped.write(data[:torn])
    piped.new_connection()
    piped.write(replay)
    assert pipe.getvalue() == data[:torn] + data[keys[2] :], "a pipe cannot be cut: only the init is skipped"


def test_a_new_stream_after_a_reconnect_is_written_as_is(streams: Dict[str, bytes]) -> None:
    first, second = streams["webm"], streams["webm-audio"]
    file = io.BytesIO()
    joiner = StreamJoiner(file)
    joiner.write(first)
    joiner.new_connection()
    joiner.write(second[:10])
    joiner.write(second[10:])
    assert file.getvalue() == first + second
    opaque = io.BytesIO()
    plain = StreamJoiner(opaque)
    plain.write(b"frame-1")
    plain.new_connection()
    plain.write(b"frame-2")
    assert opaque.getvalue() == b"frame-1frame-2"


def test_close_codes_publisher_and_viewer() -> None:
    for code in (1000, 1001, 1006, 1011, 1013, 4205, 4429):
        assert refusal(code, "", "publisher") is None, code
        assert refusal(code, "", "viewer") is None, code
    assert isinstance(refusal(4401, "missing or wrong stream key", "publisher"), InvalidStreamKeyError)
    assert isinstance(refusal(4404, "", "viewer"), SessionNotFoundError)
    assert isinstance(refusal(4410, "", "publisher"), SessionFinishedError)
    assert isinstance(refusal(4409, "", "publisher"), PublisherReplacedError)
    assert isinstance(refusal(4409, "", "viewer"), TooManyOperatorsError)
    assert isinstance(refusal(1009, "", "publisher"), MessageTooLargeError)
    unknown = refusal(4999, "new code", "viewer")
    assert isinstance(unknown, StreamRefusedError) and unknown.close_code == 4999
    error = refusal(CloseCode.UNAUTHORIZED, "missing or wrong stream key", "publisher")
    assert error is not None and "4401" in str(error) and "missing or wrong stream key" in str(error)


def test_backoff_grows_exponentially_with_jitter_up_to_the_maximum() -> None:
    backoff = Backoff(initial=0.25, maximum=4.0, factor=2.0, jitter=0.5)
    for attempt, base in enumerate([0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]):
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert all(base * 0.5 <= d <= base for d in delays), attempt
        assert len(set(delays)) > 100, "jittered"
    assert Backoff(jitter=0).delay(1000) == Backoff().maximum


def test_stream_keys_stay_out_of_logs() -> None:
    url = with_stream_key("ws://relay/ws/stream/s/c?x=1&stream_key=old", "new/key+=")
    assert url == "ws://relay/ws/stream/s/c?x=1&stream_key=new%2Fkey%2B%3D"
    assert redact(url) == "ws://relay/ws/stream/s/c?x=1&stream_key=[Redacted]"
