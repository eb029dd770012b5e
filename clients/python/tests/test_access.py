"""AUTH_MODE=token (SPEC §9): the API key, operator tokens minted by the service or signed
by the platform's backend, revocation, and the CLI's --api-key and --token."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
import uuid
from typing import Dict, List

import jwt
import pytest

from conftest import API_KEY, CLIENT_DIR, JWT_SECRET, Cluster, cli_command, cli_env, operator_token, primed, python_cli, refusal_of, run, until
from psds_stream import (
    APIError,
    Backoff,
    CloseCode,
    ForbiddenError,
    InvalidTokenError,
    Publisher,
    Session,
    SessionsAPI,
    StreamRefusedError,
    Viewer,
)
from psds_stream.connection import redact, with_query


@pytest.fixture(scope="module")
def api(token_cluster: Cluster) -> SessionsAPI:
    return SessionsAPI(token_cluster.api_url, API_KEY)


def plain_url(cluster: Cluster, relay: int, session: Session, user_id: str) -> str:
    """A stream URL without any credential."""
    return "%s/ws/stream/%s/%s" % (cluster.relay_ws(relay), session.session_id, user_id)


def test_rest_needs_one_of_the_api_keys(token_cluster: Cluster, api: SessionsAPI) -> None:
    for key in (None, "wrong-key-but-long-enough-to-look-like-one"):
        with pytest.raises(APIError) as info:
            SessionsAPI(token_cluster.api_url, key).create()
        assert (info.value.status, info.value.code) == (401, "unauthorized"), key
    session = api.create()
    assert api.get(session.session_id).status == "waiting"


def test_minted_and_self_signed_tokens_watch_by_header_and_by_query(token_cluster: Cluster, api: SessionsAPI) -> None:
    session = api.create()
    minted = api.mint_token(session.session_id, "op-minted", ttl="10m")
    assert minted.ws_url.endswith("/ws/stream/%s/op-minted?token=%s" % (session.session_id, minted.token))
    assert minted.token not in repr(minted), "the token stays out of reprs (and so out of logs)"

    async def own_token() -> str:
        return operator_token(JWT_SECRET, session.session_id, "op-own")

    async def scenario() -> None:
        viewers = [
            Viewer(plain_url(token_cluster, 0, session, "op-minted"), token=minted.token),
            Viewer(plain_url(token_cluster, 1, session, "op-minted"), token=minted.token, credentials_in="query"),
            Viewer(plain_url(token_cluster, 1, session, "op-own"), token=own_token),
        ]
        for viewer in viewers:
            await viewer.connect()
        async with Publisher(plain_url(token_cluster, 0, session, session.client_id), session.stream_key) as publisher:
            await primed(publisher, viewers)
        for viewer in viewers:
            await viewer.close()

    run(scenario())
    assert [o.user_id for o in api.operators(session.session_id)] == ["op-minted", "op-own"]


def test_missing_expired_and_foreign_tokens_are_refused_without_retrying(token_cluster: Cluster, api: SessionsAPI) -> None:
    session = api.create()
    now = int(time.time())
    claims = {"sid": session.session_id, "sub": "op-late", "role": "operator", "iat": now - 600, "exp": now - 300}
    expired = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    foreign = api.mint_token(session.session_id, "op-other").token

    async def scenario() -> List[StreamRefusedError]:
        return [
            await refusal_of(Viewer(plain_url(token_cluster, 0, session, "op-none"))),
            await refusal_of(Viewer(plain_url(token_cluster, 0, session, "op-late"), token=expired)),
            await refusal_of(Viewer(plain_url(token_cluster, 1, session, "op-mine"), token=foreign)),
        ]

    missing, late, other = run(scenario())
    assert type(missing) is InvalidTokenError and missing.close_code == CloseCode.UNAUTHORIZED
    assert type(late) is InvalidTokenError and "expired" in late.reason
    assert type(other) is ForbiddenError and other.close_code == CloseCode.FORBIDDEN


def test_revoking_an_operator_stops_its_viewer_with_forbidden(token_cluster: Cluster, api: SessionsAPI) -> None:
    session = api.create()
    earlier = api.mint_token(session.session_id, "op-revoked").token

    async def scenario() -> None:
        viewer = Viewer(plain_url(token_cluster, 1, session, "op-revoked"), token=api.token_source(session.session_id, "op-revoked"))
        await viewer.connect()
        await until("op-revoked online", lambda: [o.online for o in api.operators(session.session_id)] == [True])
        await asyncio.to_thread(api.revoke_operator, session.session_id, "op-revoked")
        error = await refusal_of(viewer)
        assert type(error) is ForbiddenError and error.close_code == CloseCode.FORBIDDEN
        assert viewer.stats.reconnects == 0, "a revoked operator is not retried"
        again = await refusal_of(Viewer(plain_url(token_cluster, 0, session, "op-revoked"), token=earlier))
        assert type(again) is ForbiddenError, "a token issued before the revocation is refused"

    run(scenario())
    assert api.operators(session.session_id) == [], "the revoked operator left the list"


def test_a_token_source_is_asked_for_every_connection_attempt(token_cluster: Cluster, api: SessionsAPI) -> None:
    session = api.create()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = "ws://127.0.0.1:%d/ws/stream/%s/op-fresh" % (probe.getsockname()[1], session.session_id)
    mint = api.token_source(session.session_id, "op-fresh", ttl="1m")
    calls: List[str] = []

    def counted() -> str:
        token = mint()
        calls.append(token)
        return token

    async def scenario() -> None:
        viewer = Viewer([dead, plain_url(token_cluster, 0, session, "op-fresh")], token=counted, backoff=Backoff(initial=0.05))
        await viewer.connect()
        await viewer.close()

    run(scenario())
    assert len(calls) == 2, "one token for the refused attempt, a fresh one for the next"


def test_cli_api_key_token_and_revoke(token_cluster: Cluster, api: SessionsAPI) -> None:
    unauthorized = subprocess.run(
        cli_command("session", "create", "--api", token_cluster.api_url), cwd=CLIENT_DIR, capture_output=True, text=True, timeout=60,
        env=cli_env_without_key(),
    )
    assert unauthorized.returncode == 3 and "unauthorized" in unauthorized.stderr, unauthorized.stderr
    created = python_cli("session", "create", "--api", token_cluster.api_url, "--api-key", API_KEY)
    assert created.returncode == 0, created.stderr
    session = json.loads(created.stdout)
    assert API_KEY not in created.stderr

    minted = python_cli("session", "token", "--api", token_cluster.api_url, "--api-key", API_KEY, session["session_id"],
                        "--user-id", "op-cli", "--ttl", "5m")
    assert minted.returncode == 0, minted.stderr
    token = json.loads(minted.stdout)
    assert set(token) == {"token", "ws_url", "expires_at"}

    async def watch_until_revoked() -> "tuple[int, str]":
        process = await asyncio.create_subprocess_exec(
            *cli_command("watch", "--ws-url", plain_url(token_cluster, 1, Session.from_json(session), "op-cli"), "--stdout"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=CLIENT_DIR,
            env={**cli_env_without_key(), "PSDS_TOKEN": token["token"]},
        )
        await until("op-cli online", lambda: [o.online for o in api.operators(session["session_id"])] == [True], timeout=20)
        revoked = await asyncio.to_thread(python_cli, "session", "revoke", "--api", token_cluster.api_url, "--api-key", API_KEY,
                                          session["session_id"], "op-cli")
        assert (revoked.returncode, revoked.stdout) == (0, ""), revoked.stderr
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode is not None
        return process.returncode, stderr.decode()

    code, stderr = run(watch_until_revoked(), timeout=60)
    assert code == 3, stderr
    assert "close code 4403" in stderr
    assert token["token"] not in stderr, "the token is never printed"


def cli_env_without_key() -> Dict[str, str]:
    return {k: v for k, v in cli_env().items() if k not in ("PSDS_API", "PSDS_API_KEY")}


def test_tokens_stay_out_of_logged_urls() -> None:
    url = "ws://relay/ws/stream/s/op?token=a.b.c&x=1"
    assert redact(url) == "ws://relay/ws/stream/s/op?token=[Redacted]&x=1"
    assert redact(with_query(url, "stream_key", "k")) == "ws://relay/ws/stream/s/op?token=[Redacted]&x=1&stream_key=[Redacted]"
    assert with_query(url, "token", None) == "ws://relay/ws/stream/s/op?x=1"
