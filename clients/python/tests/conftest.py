"""Fixtures: real clusters (control plane + 2 relays, fresh PostgreSQL database,
own Redis key prefix), started by packages/testing/src/cluster-cli.ts: one in
AUTH_MODE=open and one in AUTH_MODE=token. Every test that takes ``cluster``
runs against both; in token mode the REST calls carry the API key and the
stream URLs carry operator tokens signed with the cluster's secret."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Optional, TypeVar, Union

import pytest

CLIENT_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = CLIENT_DIR.parents[1]
sys.path.insert(0, str(CLIENT_DIR))

from psds_stream import Publisher, SessionsAPI, StreamRefusedError, Viewer  # noqa: E402
from psds_stream.connection import with_query  # noqa: E402

try:
    import jwt  # PyJWT: signs operator tokens as a platform backend does (README, "Доступ")
except ImportError as exc:  # pragma: no cover - depends on the machine
    raise ImportError("PyJWT is missing: apt-get install python3-jwt (the token-mode tests sign operator tokens with it)") from exc

T = TypeVar("T")

#: The cluster's settings: small enough limits to test them quickly.
CLUSTER_ENV = {"WS_MAX_MESSAGE_SIZE": "1MB"}
MAX_MESSAGE_SIZE = 1024 * 1024

AUTH_MODES = ["open", "token"]
#: Secrets of the token-mode cluster, fresh for every run (API_KEYS need at least 32 characters).
API_KEY = "psds-python-tests-%s" % uuid.uuid4().hex
JWT_SECRET = "psds-python-tests-secret-%s" % uuid.uuid4().hex


def operator_token(secret: str, session_id: str, user_id: str, ttl: int = 600) -> str:
    """An operator token signed by the platform's backend itself (the README's PyJWT example, verbatim)."""
    now = int(time.time())
    claims = {"sid": session_id, "sub": user_id, "role": "operator", "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")


class Cluster:
    """The cluster-cli process: URLs of its services and commands to kill/start relays."""

    def __init__(self, auth_mode: str) -> None:
        self.auth_mode = auth_mode
        self.api_key = API_KEY if auth_mode == "token" else None
        env = dict(CLUSTER_ENV)
        if auth_mode == "token":
            env.update({"AUTH_MODE": "token", "API_KEYS": API_KEY, "AUTH_JWT_SECRET": JWT_SECRET})
        command = ["node", "--import", "tsx", "packages/testing/src/cluster-cli.ts", "--relays", "2"]
        for key, value in env.items():
            command += ["--env", "%s=%s" % (key, value)]
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self._selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        self._selector.register(self.process.stdout, selectors.EVENT_READ)
        self._next_id = 0
        self.state: Dict[str, Any] = self._read_line(120)

    def _read_line(self, timeout: float) -> Dict[str, Any]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._selector.select(left):
                raise TimeoutError("cluster-cli did not answer within %.0f s" % timeout)
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("cluster-cli exited with %s (see its stderr above)" % self.process.wait())
            if line.startswith("{"):
                return json.loads(line)  # type: ignore[no-any-return]

    def command(self, op: str, relay: Optional[int] = None) -> Dict[str, Any]:
        assert self.process.stdin is not None
        self._next_id += 1
        self.process.stdin.write(json.dumps({"id": self._next_id, "op": op, "relay": relay}) + "\n")
        self.process.stdin.flush()
        reply = self._read_line(60)
        if not reply.get("ok"):
            raise RuntimeError("cluster-cli %s: %s" % (op, reply.get("error")))
        self.state = reply["cluster"]
        return self.state

    @property
    def api_url(self) -> str:
        return str(self.state["controlPlane"]["url"])

    def relay_ws(self, index: int) -> str:
        return str(self.state["relays"][index]["ws"])

    def stream_url(self, relay: int, session_id: str, user_id: str) -> str:
        """The stream URL; in token mode with ``?token=`` for ``user_id`` (a publisher ignores it and shows its stream key)."""
        url = "%s/ws/stream/%s/%s" % (self.relay_ws(relay), session_id, user_id)
        return url if self.auth_mode == "open" else with_query(url, "token", operator_token(JWT_SECRET, session_id, user_id))

    @property
    def cli_auth(self) -> Dict[str, str]:
        """What the CLI gets from the environment in this mode: the API and its key (watch mints tokens with them)."""
        return {} if self.api_key is None else {"PSDS_API": self.api_url, "PSDS_API_KEY": self.api_key}

    def kill_relay(self, index: int) -> None:
        self.command("kill_relay", index)

    def start_relay(self, index: int) -> None:
        self.command("start_relay", index)

    def add_relay(self) -> int:
        self.command("add_relay")
        return len(self.state["relays"]) - 1

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._selector.close()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _start(auth_mode: str) -> Iterator[Cluster]:
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: the tests start the service with it")
    if not (REPO_ROOT / "packages/cli/dist/bin.js").exists():
        pytest.fail("packages/cli/dist/bin.js is missing: run `pnpm build` first (`pnpm test` does)")
    started = Cluster(auth_mode)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="session")
def open_cluster() -> Iterator[Cluster]:
    yield from _start("open")


@pytest.fixture(scope="session")
def token_cluster() -> Iterator[Cluster]:
    yield from _start("token")


#: The CLI's environment for the cluster of the running test (see cli_env).
_cli_auth: Dict[str, str] = {}


@pytest.fixture(scope="session", params=AUTH_MODES)
def cluster(request: pytest.FixtureRequest) -> Cluster:
    """The cluster in each AUTH_MODE in turn: a test that takes it runs once per mode."""
    return request.getfixturevalue("%s_cluster" % getattr(request, "param"))  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def cli_auth(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test on a token-mode cluster runs the CLI with that cluster's PSDS_API and PSDS_API_KEY; any other test without."""
    _cli_auth.clear()
    if "cluster" in request.fixturenames:
        _cli_auth.update(request.getfixturevalue("cluster").cli_auth)
    yield
    _cli_auth.clear()


@pytest.fixture(scope="session")
def api(cluster: Cluster) -> SessionsAPI:
    return SessionsAPI(cluster.api_url, cluster.api_key)


@pytest.fixture
def session(api: SessionsAPI) -> Any:
    return api.create()


def run(coro: Awaitable[T], timeout: float = 30) -> T:
    """Runs a coroutine in a fresh event loop with a deadline."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(what: str, check: Callable[[], Union[bool, Awaitable[bool]]], timeout: float = 10, every: float = 0.02) -> None:
    """Polls ``check`` until it is true; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        await asyncio.sleep(every)


def until_sync(what: str, check: Callable[[], bool], timeout: float = 10, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(every)


async def primed(publisher: Publisher, viewers: List[Viewer]) -> None:
    """Viewers' relays subscribe asynchronously: sends text probes until every viewer got one, then drains to a marker.

    Only for opaque streams (a text probe makes the relay treat the stream as opaque).
    """
    marker = "probe-end-%s" % uuid.uuid4()
    seen = [False] * len(viewers)

    async def drain(i: int, viewer: Viewer) -> None:
        async for message in viewer:
            if message == "probe":
                seen[i] = True
            elif message == marker:
                return

    tasks = [asyncio.ensure_future(drain(i, v)) for i, v in enumerate(viewers)]
    try:
        async def probe() -> bool:
            await publisher.send("probe")
            return all(seen)

        await until("every viewer to receive a probe", probe, timeout=10, every=0.05)
        await publisher.send(marker)
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
    finally:
        for task in tasks:
            task.cancel()


async def refusal_of(viewer: Viewer) -> StreamRefusedError:
    """Why the service refused ``viewer`` (it is closed afterwards); fails the test if it was not refused."""
    try:
        async for _ in viewer:
            pass
    except StreamRefusedError as exc:
        return exc
    finally:
        await viewer.close()
    raise AssertionError("not refused")


def cli_command(*args: str) -> List[str]:
    """``python3 -m psds_stream ARGS`` with this interpreter (run it with ``cwd=CLIENT_DIR, env=cli_env()``)."""
    return [sys.executable, "-m", "psds_stream", *args]


def python_cli(*args: str, **kwargs: Any) -> "subprocess.CompletedProcess[str]":
    """Runs ``python3 -m psds_stream ARGS`` to completion."""
    kwargs.setdefault("timeout", 60)
    return subprocess.run(cli_command(*args), cwd=CLIENT_DIR, capture_output=True, text=True, env=cli_env(), **kwargs)


def cli_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSDS_")}
    env.update(_cli_auth)
    env["PYTHONPATH"] = str(CLIENT_DIR)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def ffmpeg_decode(path: Union[str, Path]) -> "subprocess.CompletedProcess[str]":
    """``ffmpeg -v error -i FILE -f null -``: the acceptance check that a file decodes without errors."""
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True, timeout=120)


def decoded_frames(path: Union[str, Path]) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return int(out.stdout.strip() or 0)
