"""`python3 -m psds_stream` end to end against the real cluster."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, List

import pytest

from conftest import CLIENT_DIR, Cluster, cli_command, cli_env, decoded_frames, ffmpeg_decode, python_cli, until_sync
from psds_stream import Session, SessionsAPI

# The example: a real-time lavfi test pattern as WebM/VP8, a keyframe every second.
TEST_PATTERN = "-re -f lavfi -i testsrc=size=320x240:rate=25 -c:v libvpx -deadline realtime -g 25 -f webm -live 1"
# A cheap one for the refusal cases.
SMALL_PATTERN = "-re -f lavfi -i color=c=blue:size=64x64:rate=10 -c:v libvpx -deadline realtime -g 10 -f webm -live 1"


def key_of(session: Session) -> str:
    assert session.stream_key is not None
    return session.stream_key


def start_cli(*args: str) -> "subprocess.Popen[str]":
    return subprocess.Popen(cli_command(*args), cwd=CLIENT_DIR, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: "subprocess.Popen[str]", timeout: float = 30) -> "tuple[int, str, str]":
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError("the CLI did not exit within %.0f s; stderr:\n%s" % (timeout, err)) from None
    return process.returncode, out, err


def test_publish_ffmpeg_on_relay_a_watch_on_relay_b_and_the_file_decodes(cluster: Cluster, api: SessionsAPI, tmp_path: Path) -> None:
    created = python_cli("session", "create", "--api", cluster.api_url, "--client-id", str(uuid.uuid4()))
    assert created.returncode == 0, created.stderr
    session = json.loads(created.stdout)
    publisher_url = cluster.stream_url(0, session["session_id"], session["client_id"])
    publisher = start_cli("publish", "--ws-url", publisher_url, "--stream-key", session["stream_key"], "--ffmpeg", TEST_PATTERN)
    try:
        until_sync("the session to become active", lambda: api.get(session["session_id"]).status == "active", timeout=20)
        # The scenario: the operator joins 3 s into the stream (not a synchronisation).
        time.sleep(3)
        assert publisher.poll() is None, publisher.stderr.read() if publisher.stderr else ""
        output = tmp_path / "watched.webm"
        operator_url = cluster.stream_url(1, session["session_id"], "operator-e2e")
        started = time.monotonic()
        watch = python_cli("watch", "--ws-url", operator_url, "-o", str(output), "--duration", "4", timeout=30)
        elapsed = time.monotonic() - started
        assert watch.returncode == 0, watch.stderr
        assert 4 <= elapsed < 20, elapsed
    finally:
        publisher.send_signal(signal.SIGTERM)
        code, _, stderr = finish(publisher)
    assert code == 128 + signal.SIGTERM, stderr
    assert "terminated" in stderr

    data = output.read_bytes()
    assert data[:4] == b"\x1a\x45\xdf\xa3", "the late joiner's file starts with the WebM init segment"
    decoded = ffmpeg_decode(output)
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stderr == "", "ffmpeg -v error reported:\n" + decoded.stderr
    frames = decoded_frames(output)
    # 4 s at 25 fps plus the group of pictures the relay kept (up to 1 s before joining): about 100-125
    # frames; fewer or more when ffmpeg's -re falls behind on a busy machine and then catches up.
    assert frames >= 50, frames
    assert api.get(session["session_id"]).operators_count == 1


def test_watch_into_stdout(cluster: Cluster, api: SessionsAPI) -> None:
    session = api.create()
    publisher = start_cli("publish", "--ws-url", cluster.stream_url(0, session.session_id, session.client_id),
                          "--stream-key", key_of(session), "--ffmpeg", SMALL_PATTERN)
    try:
        until_sync("the session to become active", lambda: api.get(session.session_id).status == "active", timeout=20)
        watch = subprocess.run(
            cli_command("watch", "--ws-url", cluster.stream_url(1, session.session_id, session.client_id), "--user-id", "op-stdout",
                        "--stdout", "--duration", "1.5"),
            cwd=CLIENT_DIR, env=cli_env(), capture_output=True, timeout=30,
        )
        assert watch.returncode == 0, watch.stderr.decode()
        assert watch.stdout[:4] == b"\x1a\x45\xdf\xa3"
    finally:
        publisher.send_signal(signal.SIGTERM)
        finish(publisher)


@pytest.mark.parametrize("case,code", [("wrong key", 4401), ("unknown session", 4404), ("finished session", 4410)])
def test_publish_refused_exits_3_with_the_close_code(cluster: Cluster, api: SessionsAPI, case: str, code: int) -> None:
    session = api.create()
    session_id, key = session.session_id, key_of(session)
    if case == "wrong key":
        key = "wrong-" + "k" * 26
    elif case == "unknown session":
        session_id = str(uuid.uuid4())
    else:
        api.delete(session_id)
    process = start_cli("publish", "--ws-url", cluster.stream_url(0, session_id, session.client_id), "--stream-key", key,
                        "--ffmpeg", SMALL_PATTERN)
    returncode, _, stderr = finish(process)
    assert returncode == 3, stderr
    assert "close code %d" % code in stderr
    assert key not in stderr, "the stream key is never printed"
    assert api.get(session.session_id).status in ("waiting", "finished")


def test_publish_exits_3_when_the_session_is_deleted_while_streaming(cluster: Cluster, api: SessionsAPI) -> None:
    session = api.create()
    process = start_cli("publish", "--ws-url", cluster.stream_url(1, session.session_id, session.client_id),
                        "--stream-key", key_of(session), "--ffmpeg", SMALL_PATTERN)
    until_sync("the session to become active", lambda: api.get(session.session_id).status == "active", timeout=20)
    api.delete(session.session_id)
    returncode, _, stderr = finish(process)
    assert returncode == 3, stderr
    assert "close code 4410" in stderr and "finished" in stderr


def test_publish_a_file_with_a_refusal_after_the_last_byte_still_exits_3(cluster: Cluster, api: SessionsAPI, tmp_path: Path) -> None:
    source = tmp_path / "small.bin"
    source.write_bytes(b"0123456789" * 10)
    session = api.create()
    result = python_cli("publish", "--ws-url", cluster.stream_url(0, session.session_id, session.client_id),
                        "--stream-key", "x" * 32, "--file", str(source))
    assert result.returncode == 3, result.stderr
    assert "close code 4401" in result.stderr


def test_publish_stdin_and_watch_exit_codes(cluster: Cluster, api: SessionsAPI) -> None:
    session = api.create()
    payload = b"raw bytes from a pipe " * 1000
    published = python_cli("publish", "--ws-url", cluster.stream_url(0, session.session_id, session.client_id),
                           "--stream-key", key_of(session), "--stdin", input=payload.decode())
    assert published.returncode == 0, published.stderr
    assert "opaque stream" in published.stderr

    unknown = python_cli("watch", "--ws-url", cluster.stream_url(1, str(uuid.uuid4()), "op"), "--stdout", "--duration", "5")
    assert unknown.returncode == 3
    assert "close code 4404" in unknown.stderr

    api.delete(session.session_id)
    finished = python_cli("watch", "--ws-url", cluster.stream_url(1, session.session_id, "op"), "--stdout")
    assert finished.returncode == 3
    assert "close code 4410" in finished.stderr


def test_publish_usage_errors_exit_2(cluster: Cluster, tmp_path: Path) -> None:
    url = cluster.stream_url(0, str(uuid.uuid4()), str(uuid.uuid4()))
    cases: List[List[Any]] = [
        ["publish", "--ws-url", url, "--stream-key", "k"],  # no source
        ["publish", "--ws-url", url, "--stream-key", "k", "--stdin", "--file", "x"],  # two sources
        ["publish", "--ws-url", url, "--stream-key", "k", "--jpeg-dir", str(tmp_path)],  # no --fps
        ["publish", "--ws-url", url, "--stream-key", "k", "--jpeg-dir", str(tmp_path), "--fps", "0"],
        ["watch", "--ws-url", url],  # no output
        ["watch", "--ws-url", url, "--stdout", "--duration", "soon"],
    ]
    for args in cases:
        result = python_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "usage:" in result.stderr, shlex.join(args)
