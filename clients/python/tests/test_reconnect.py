"""The publisher and the viewer reconnect by themselves when a relay dies."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any, List

import pytest

from conftest import Cluster, decoded_frames, ffmpeg_decode, primed, run, until
from psds_stream import Backoff, Publisher, Viewer, publish_ffmpeg

WEBM_TEST_PATTERN = [
    "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
    "-c:v", "libvpx", "-deadline", "realtime", "-b:v", "400k", "-g", "25", "-f", "webm", "-live", "1",
]
FAST = Backoff(initial=0.1, maximum=1.0)


@pytest.fixture(scope="module")
def spare_relay(cluster: Cluster) -> int:
    """A relay of the module's own, so killing it disturbs no other test."""
    return cluster.add_relay()


def test_an_opaque_stream_continues_on_another_relay_in_order(cluster: Cluster, session: Any, spare_relay: int) -> None:
    urls = [cluster.stream_url(spare_relay, session.session_id, session.client_id),
            cluster.stream_url(0, session.session_id, session.client_id)]

    async def scenario() -> List[int]:
        async with Viewer(cluster.stream_url(1, session.session_id, "operator-failover")) as viewer, \
                Publisher(urls, session.stream_key, backoff=FAST) as publisher:
            await primed(publisher, [viewer])
            received: List[int] = []

            async def collect() -> None:
                async for message in viewer:
                    assert isinstance(message, bytes)
                    received.append(struct.unpack(">I", message[:4])[0])

            async def produce() -> None:
                n = 0
                while True:
                    await publisher.send(struct.pack(">I", n) + b"\0" * 1000)
                    n += 1
                    await asyncio.sleep(0.005)  # ~200 messages/s: a steady stream, not synchronisation

            tasks = [asyncio.ensure_future(collect()), asyncio.ensure_future(produce())]
            try:
                await until("100 messages before the relay dies", lambda: len(received) >= 100)
                await asyncio.to_thread(cluster.kill_relay, spare_relay)
                await until("the publisher to notice", lambda: not publisher.connected or publisher.stats.reconnects > 0)
                await until("the publisher to reconnect (to the other relay)", lambda: publisher.stats.reconnects == 1)
                before = len(received)
                await until("100 messages after the reconnect", lambda: len(received) >= before + 100)
            finally:
                for task in tasks:
                    task.cancel()
            assert publisher.connected and publisher.failure is None
            assert viewer.stats.reconnects == 0  # an opaque stream's operators are not restarted
            return received

    try:
        received = run(scenario(), timeout=60)
    finally:
        cluster.start_relay(spare_relay)
    assert received == sorted(set(received)), "in order, without duplicates"
    assert received[0] == 0


def test_a_webm_publisher_restarts_its_stream_after_its_relay_restarts_and_the_file_still_decodes(
    cluster: Cluster, session: Any, spare_relay: int, tmp_path: Path
) -> None:
    output = tmp_path / "watched.webm"
    publisher_url = cluster.stream_url(spare_relay, session.session_id, session.client_id)

    async def scenario() -> None:
        viewer = Viewer(cluster.stream_url(1, session.session_id, "operator-webm"), backoff=FAST)
        await viewer.connect()
        publisher = Publisher(publisher_url, session.stream_key, backoff=FAST)
        await publisher.start()
        watching = asyncio.ensure_future(viewer.write_to(output))
        publishing = asyncio.ensure_future(publish_ffmpeg(publisher, WEBM_TEST_PATTERN))
        try:
            async def frames_at_least(n: int) -> bool:
                return output.exists() and await asyncio.to_thread(decoded_frames, output) >= n

            await until("2 s of video at the viewer", lambda: frames_at_least(50), timeout=20, every=0.5)
            await asyncio.to_thread(cluster.kill_relay, spare_relay)
            await until("the publisher to lose its relay", lambda: not publisher.connected)
            await asyncio.to_thread(cluster.start_relay, spare_relay)
            await until("the publisher to reconnect to the restarted relay", lambda: publisher.stats.reconnects == 1, timeout=20)
            await until("the viewer to be told the stream restarted (4205)", lambda: viewer.stats.restarts >= 1, timeout=20)
            frames = await asyncio.to_thread(decoded_frames, output)
            await until("2 more seconds of video", lambda: frames_at_least(frames + 50), timeout=20, every=0.5)
        finally:
            publishing.cancel()
            await viewer.close()
            await asyncio.gather(watching, publishing, return_exceptions=True)
            await publisher.close(raise_failure=False)
        assert publisher.failure is None

    run(scenario(), timeout=90)
    decoded = ffmpeg_decode(output)
    assert decoded.returncode == 0 and decoded.stderr == "", decoded.stderr
    assert decoded_frames(output) >= 100
