"""Publisher and Viewer against real relays: delivery, refusals and their exceptions."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path
from typing import Any, List, Union

import pytest

from conftest import CLIENT_DIR, MAX_MESSAGE_SIZE, Cluster, cli_command, cli_env, primed, python_cli, refusal_of, run
from psds_stream import (
    CloseCode,
    ConnectionLostError,
    HandshakeRejectedError,
    InvalidRequestError,
    InvalidStreamKeyError,
    MessageTooLargeError,
    Publisher,
    PublisherReplacedError,
    SessionFinishedError,
    SessionNotFoundError,
    SessionsAPI,
    StreamRefusedError,
    Viewer,
    jpeg_files,
    operator_url,
    publish_frames,
)


@pytest.fixture(scope="module")
def jpeg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("jpeg")
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25",
         "-frames:v", "60", "-q:v", "5", str(directory / "frame-%03d.jpg")],
        check=True,
        timeout=60,
    )
    return directory


def test_jpeg_frames_arrive_byte_identical_and_in_order(cluster: Cluster, session: Any, jpeg_dir: Path) -> None:
    frames = list(jpeg_files(jpeg_dir))
    assert len(frames) == 60 and len(set(frames)) == 60

    async def scenario() -> List[Union[bytes, str]]:
        viewer = Viewer(cluster.stream_url(1, session.session_id, "operator-jpeg"))
        async with Publisher(cluster.stream_url(0, session.session_id, session.client_id), session.stream_key) as publisher:
            async with viewer:
                await primed(publisher, [viewer])
                received: List[Union[bytes, str]] = []

                async def collect() -> None:
                    async for message in viewer:
                        received.append(message)
                        if len(received) == len(frames):
                            return

                collecting = asyncio.ensure_future(collect())
                sent = await publish_frames(publisher, frames, fps=100)
                assert sent == len(frames)
                await asyncio.wait_for(collecting, 20)
                assert publisher.stats.messages >= len(frames)
                assert viewer.stats.reconnects == 0
                return received

    received = run(scenario())
    assert [type(m) for m in received] == [bytes] * len(frames)
    assert received == frames


def test_text_and_binary_messages_keep_their_type(cluster: Cluster, session: Any) -> None:
    messages: List[Union[bytes, str]] = ['{"frame": 1, "note": "ünïcode ✓"}', b"\x00\x01binary", "", b"", "x" * 70000]

    async def scenario() -> List[Union[bytes, str]]:
        async with Viewer(cluster.stream_url(0, session.session_id, "operator-text")) as viewer:
            async with Publisher(cluster.stream_url(1, session.session_id, session.client_id), session.stream_key) as publisher:
                await primed(publisher, [viewer])
                for message in messages:
                    await publisher.send(message)
                received = []
                async for message in viewer:
                    received.append(message)
                    if len(received) == len(messages):
                        return received
        raise AssertionError("viewer stopped")

    assert run(scenario()) == messages


def test_cli_publishes_a_jpeg_dir_in_order(cluster: Cluster, session: Any, jpeg_dir: Path) -> None:
    frames = list(jpeg_files(jpeg_dir))

    async def scenario() -> List[Union[bytes, str]]:
        async with Viewer(cluster.stream_url(1, session.session_id, "operator-cli-jpeg")) as viewer:
            # The relay's subscription must be in place before the frames: prime with a short-lived publisher.
            async with Publisher(cluster.stream_url(0, session.session_id, session.client_id), session.stream_key) as probe:
                await primed(probe, [viewer])
            process = await asyncio.create_subprocess_exec(
                *cli_command("publish", "--ws-url", cluster.stream_url(0, session.session_id, session.client_id),
                                    "--stream-key", session.stream_key, "--jpeg-dir", str(jpeg_dir), "--fps", "200"),
                stderr=asyncio.subprocess.PIPE,
                cwd=CLIENT_DIR,
                env=cli_env(),
            )
            received: List[Union[bytes, str]] = []
            async for message in viewer:
                received.append(message)
                if len(received) == len(frames):
                    break
            _, stderr = await process.communicate()
            assert process.returncode == 0, stderr.decode()
            assert b"60 JPEG frames" in stderr
            return received

    assert run(scenario()) == frames


@pytest.mark.parametrize(
    "case,error,code",
    [
        ("wrong key", InvalidStreamKeyError, CloseCode.UNAUTHORIZED),
        ("unknown session", SessionNotFoundError, CloseCode.NOT_FOUND),
        ("finished session", SessionFinishedError, CloseCode.FINISHED),
        ("malformed session id", InvalidRequestError, CloseCode.BAD_REQUEST),
    ],
)
def test_publisher_refusals_raise_with_the_close_code(
    cluster: Cluster, api: SessionsAPI, case: str, error: type, code: int
) -> None:
    session = api.create()
    session_id, key = session.session_id, session.stream_key
    if case == "wrong key":
        key = "x" * 32
    elif case == "unknown session":
        session_id = str(uuid.uuid4())
    elif case == "finished session":
        api.delete(session_id)
    else:
        session_id = "not-a-session"

    async def scenario() -> None:
        publisher = Publisher(cluster.stream_url(0, session_id, session.client_id), key)
        await publisher.start()
        with pytest.raises(StreamRefusedError) as info:
            await publisher.wait_closed()
        assert type(info.value) is error
        assert info.value.close_code == code
        with pytest.raises(error):
            await publisher.send(b"after the refusal")
        await publisher.close(raise_failure=False)
        assert publisher.stats.reconnects == 0

    run(scenario())


def test_a_refusal_after_the_last_send_is_raised_on_leaving_the_block(cluster: Cluster) -> None:
    async def scenario() -> None:
        with pytest.raises(SessionNotFoundError):
            async with Publisher(cluster.stream_url(0, str(uuid.uuid4()), str(uuid.uuid4())), "k" * 32) as publisher:
                await publisher.send(b"one message")

    run(scenario())


def test_a_newer_publisher_connection_replaces_the_older(cluster: Cluster, session: Any) -> None:
    async def scenario() -> None:
        async with Publisher(cluster.stream_url(0, session.session_id, session.client_id), session.stream_key) as first:
            await first.send(b"first")
            async with Publisher(cluster.stream_url(1, session.session_id, session.client_id), session.stream_key) as second:
                with pytest.raises(PublisherReplacedError) as info:
                    await first.wait_closed()
                assert info.value.close_code == CloseCode.CONFLICT
                await second.send(b"second")
                assert second.connected

    with pytest.raises(PublisherReplacedError):  # raised again by the outer block's exit
        run(scenario())


def test_a_message_larger_than_the_service_accepts(cluster: Cluster, session: Any) -> None:
    url = cluster.stream_url(0, session.session_id, session.client_id)

    async def scenario() -> None:
        limited = Publisher(url, session.stream_key, max_message_size=MAX_MESSAGE_SIZE)
        async with limited:
            with pytest.raises(MessageTooLargeError) as local:
                await limited.send(b"\0" * (MAX_MESSAGE_SIZE + 1))
            assert local.value.close_code is None
            await limited.send(b"\0" * MAX_MESSAGE_SIZE)  # at the limit: fine
            assert limited.connected

        publisher = Publisher(url, session.stream_key)
        await publisher.start()
        with pytest.raises(MessageTooLargeError) as info:
            await publisher.send(b"\0" * (2 * MAX_MESSAGE_SIZE))
            await publisher.wait_closed()
        assert info.value.close_code == CloseCode.MESSAGE_TOO_BIG
        assert "WS_MAX_MESSAGE_SIZE" in str(info.value)
        await publisher.close(raise_failure=False)
        assert publisher.stats.reconnects == 0

    run(scenario())


def test_viewer_refusals_raise_with_the_close_code(cluster: Cluster, api: SessionsAPI) -> None:
    finished = api.create()
    api.delete(finished.session_id)

    async def refused(url: str) -> StreamRefusedError:
        return await refusal_of(Viewer(url))

    async def scenario() -> None:
        unknown = await refused(cluster.stream_url(0, str(uuid.uuid4()), "operator"))
        assert isinstance(unknown, SessionNotFoundError) and unknown.close_code == 4404
        ended = await refused(cluster.stream_url(1, finished.session_id, "operator"))
        assert isinstance(ended, SessionFinishedError) and ended.close_code == 4410
        bad = await refused(cluster.stream_url(0, finished.session_id, "bad%21user"))
        assert isinstance(bad, InvalidRequestError) and bad.close_code == 4400
        wrong_path = await refused(cluster.relay_ws(0) + "/no/such/path")
        assert isinstance(wrong_path, HandshakeRejectedError) and wrong_path.status == 404

    run(scenario())


def test_deleting_the_session_stops_viewer_and_publisher(cluster: Cluster, api: SessionsAPI, session: Any) -> None:
    async def scenario() -> None:
        async with Viewer(cluster.stream_url(1, session.session_id, "operator-delete")) as viewer:
            publisher = Publisher(cluster.stream_url(0, session.session_id, session.client_id), session.stream_key)
            await publisher.start()
            await primed(publisher, [viewer])
            await asyncio.to_thread(api.delete, session.session_id)
            with pytest.raises(SessionFinishedError):
                async for _ in viewer:
                    pass
            with pytest.raises(SessionFinishedError):
                await publisher.wait_closed()
            await publisher.close(raise_failure=False)

    run(scenario())


def test_give_up_after_when_nothing_answers() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = "ws://127.0.0.1:%d/ws/stream/%s/%s" % (port, uuid.uuid4(), uuid.uuid4())

    async def scenario() -> None:
        with pytest.raises(ConnectionLostError):
            async with Publisher(url, "k", give_up_after=0.5):
                pass
        viewer = Viewer(operator_url(url, "op"), give_up_after=0.5)
        with pytest.raises(ConnectionLostError):
            await viewer.connect()

    run(scenario(), timeout=15)
    cli = python_cli("watch", "--ws-url", url, "--user-id", "op", "--stdout", "--give-up-after", "0.5")
    assert cli.returncode == 1
    assert "giving up" in cli.stderr


def test_operator_url_replaces_the_client_id() -> None:
    url = "wss://stream.example.com/ws/stream/00000000-0000-4000-8000-000000000001/3f2a7c1e-9b4d-4e2a-8c6f-1a2b3c4d5e6f?stream_key=abc"
    assert operator_url(url, "operator:7") == "wss://stream.example.com/ws/stream/00000000-0000-4000-8000-000000000001/operator%3A7"
