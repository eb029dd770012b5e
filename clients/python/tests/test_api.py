"""SessionsAPI against the real control plane: every call and every error, and the `session` CLI."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import uuid
from typing import Any, Dict, Iterator, List

import pytest

from conftest import Cluster, python_cli, run, until
from psds_stream import APIConnectionError, APIError, Session, SessionsAPI, Viewer


def test_create_returns_the_session_with_its_stream_key(api: SessionsAPI) -> None:
    client_id = str(uuid.uuid4())
    session = api.create(client_id)
    assert isinstance(session, Session)
    assert session.client_id == client_id
    assert session.status == "waiting"
    assert session.stream_key and len(session.stream_key) >= 22
    assert session.ws_url.endswith("/ws/stream/%s/%s" % (session.session_id, client_id))
    assert session.ws_url.startswith("ws://")
    assert session.raw["session_id"] == session.session_id
    assert str(uuid.UUID(api.create().client_id))  # a random client id when none is given


def test_get_returns_the_session_without_the_stream_key(api: SessionsAPI) -> None:
    created = api.create(uuid.uuid4())
    session = api.get(created.session_id)
    assert session.session_id == created.session_id
    assert session.client_id == created.client_id
    assert session.status == "waiting"
    assert session.ws_url == created.ws_url
    assert session.stream_key is None and "stream_key" not in session.raw
    assert session.operators_count == 0
    assert session.publisher_online is False
    assert session.started_at is None and session.finished_at is None


def test_operators_lists_who_joined_in_order(api: SessionsAPI, cluster: Cluster) -> None:
    session = api.create()
    assert api.operators(session.session_id) == []

    async def join() -> None:
        async with Viewer(cluster.stream_url(0, session.session_id, "op-1")):
            await until("op-1 to be listed", lambda: len(api.operators(session.session_id)) == 1)
            async with Viewer(cluster.stream_url(1, session.session_id, "op-2")):
                await until("op-2 online", lambda: [o.online for o in api.operators(session.session_id)] == [True, True])

    run(join())
    operators = api.operators(session.session_id)
    assert [o.user_id for o in operators] == ["op-1", "op-2"]
    assert all(o.joined_at for o in operators)
    assert api.get(session.session_id).operators_count == 2


def test_delete_finishes_the_session_and_may_be_repeated(api: SessionsAPI) -> None:
    session = api.create()
    api.delete(session.session_id)
    finished = api.get(session.session_id)
    assert finished.status == "finished"
    assert finished.finished_at is not None
    api.delete(session.session_id)  # 204 again
    assert api.get(session.session_id).status == "finished"


@pytest.mark.parametrize("call", ["get", "delete", "operators"])
def test_a_malformed_id_is_invalid_id(api: SessionsAPI, call: str) -> None:
    with pytest.raises(APIError) as info:
        getattr(api, call)("not-a-uuid")
    assert (info.value.status, info.value.code) == (400, "invalid_id")
    assert info.value.message


@pytest.mark.parametrize("call", ["get", "delete", "operators"])
def test_an_unknown_session_is_session_not_found(api: SessionsAPI, call: str) -> None:
    with pytest.raises(APIError) as info:
        getattr(api, call)(uuid.uuid4())
    assert (info.value.status, info.value.code) == (404, "session_not_found")
    assert info.value.body is not None and info.value.body["error"]["code"] == "session_not_found"


def test_create_with_a_bad_client_id_is_invalid_body(api: SessionsAPI) -> None:
    with pytest.raises(APIError) as info:
        api.create("not-a-uuid")
    assert (info.value.status, info.value.code) == (400, "invalid_body")


def test_an_unknown_route_is_route_not_found(api: SessionsAPI) -> None:
    with pytest.raises(APIError) as info:
        api.request("GET", "/no/such/route")
    assert (info.value.status, info.value.code) == (404, "route_not_found")


def test_an_unreachable_service_is_api_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(APIConnectionError):
        SessionsAPI("http://127.0.0.1:%d" % port, timeout=5).create()


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A gateway in front of the API: records headers, answers 502 with an HTML page."""

    seen: List[Dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802
        _Recorder.seen.append(dict(self.headers))
        body = b"<html><body>502 Bad Gateway</body></html>"
        self.send_response(502)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_api_key_is_sent_and_a_non_json_error_keeps_its_status(gateway: str) -> None:
    _Recorder.seen.clear()
    with pytest.raises(APIError) as info:
        SessionsAPI(gateway, api_key="secret-key").get(uuid.uuid4())
    assert (info.value.status, info.value.code) == (502, "http_502")
    assert "502 Bad Gateway" in info.value.message
    headers = {k.lower(): v for k, v in _Recorder.seen[0].items()}
    assert headers["authorization"] == "Bearer secret-key"
    assert headers["accept"] == "application/json"


def test_cli_session_commands(api: SessionsAPI, cluster: Cluster) -> None:
    client_id = str(uuid.uuid4())
    created = python_cli("session", "create", "--api", cluster.api_url, "--client-id", client_id)
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert body["client_id"] == client_id and body["stream_key"] and body["status"] == "waiting"

    got = python_cli("session", "get", "--api", cluster.api_url, body["session_id"])
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["session_id"] == body["session_id"]
    assert "stream_key" not in json.loads(got.stdout)

    operators = python_cli("session", "operators", "--api", cluster.api_url, body["session_id"])
    assert operators.returncode == 0, operators.stderr
    assert json.loads(operators.stdout) == {"operators": []}

    deleted = python_cli("session", "delete", "--api", cluster.api_url, body["session_id"])
    assert (deleted.returncode, deleted.stdout) == (0, "")
    assert api.get(body["session_id"]).status == "finished"


def test_cli_session_errors_exit_3_with_the_code(cluster: Cluster) -> None:
    missing = python_cli("session", "get", "--api", cluster.api_url, str(uuid.uuid4()))
    assert missing.returncode == 3
    assert "session_not_found" in missing.stderr and "404" in missing.stderr
    malformed = python_cli("session", "delete", "--api", cluster.api_url, "nope")
    assert malformed.returncode == 3
    assert "invalid_id" in malformed.stderr
    bad_body = python_cli("session", "create", "--api", cluster.api_url, "--client-id", "nope")
    assert bad_body.returncode == 3
    assert "invalid_body" in bad_body.stderr


def test_cli_usage_errors_exit_2() -> None:
    assert python_cli("session", "get").returncode == 2  # no --api, no id
    assert python_cli("frobnicate").returncode == 2
    for command in (["session", "create"], ["session", "get"], ["session", "delete"], ["session", "operators"], ["publish"], ["watch"]):
        shown = python_cli(*command, "--help")
        assert shown.returncode == 0 and "usage:" in shown.stdout, command
