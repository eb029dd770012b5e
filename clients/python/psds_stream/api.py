"""The REST control plane: create, inspect and finish sessions (standard library only)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Union
from urllib.parse import quote

from . import __version__
from .errors import APIConnectionError, APIError

__all__ = ["SessionsAPI", "Session", "Operator", "MintedToken"]


@dataclass(frozen=True)
class Session:
    """A session as the API returns it. ``stream_key`` is only set by :meth:`SessionsAPI.create`."""

    session_id: str
    client_id: str
    status: str
    ws_url: str
    created_at: str
    stream_key: Optional[str] = None
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    operators_count: Optional[int] = None
    publisher_online: Optional[bool] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The JSON object exactly as received."""

    @classmethod
    def from_json(cls, body: Dict[str, Any]) -> "Session":
        return cls(
            session_id=body["session_id"],
            client_id=body["client_id"],
            status=body["status"],
            ws_url=body["ws_url"],
            created_at=body["created_at"],
            stream_key=body.get("stream_key"),
            started_at=body.get("started_at"),
            finished_at=body.get("finished_at"),
            operators_count=body.get("operators_count"),
            publisher_online=body.get("publisher_online"),
            raw=body,
        )


@dataclass(frozen=True)
class Operator:
    """An operator of a session (``GET /sessions/:id/operators``), in join order."""

    user_id: str
    joined_at: str
    online: bool


@dataclass(frozen=True)
class MintedToken:
    """An operator token (``POST /sessions/:id/tokens``): ``ws_url`` carries it as ``?token=``."""

    token: str = field(repr=False)
    ws_url: str = field(repr=False)
    expires_at: str


class SessionsAPI:
    """Client of the control plane's REST API, e.g. ``SessionsAPI("http://localhost:8090")``.

    Calls block (urllib); from asyncio code run them in a thread
    (``await asyncio.to_thread(api.create)``). Every error answer raises
    :class:`~psds_stream.errors.APIError` with the service's ``code``
    (``invalid_id``, ``session_not_found``, ``invalid_body``,
    ``db_unavailable``...) and HTTP status; an unreachable service raises
    :class:`~psds_stream.errors.APIConnectionError`. ``api_key`` is sent as
    ``Authorization: Bearer <key>``: ``AUTH_MODE=token`` needs one of the
    service's ``API_KEYS`` (without it every call raises ``APIError`` 401
    ``unauthorized``).
    """

    def __init__(self, base_url: str, api_key: Optional[str] = None, *, timeout: float = 10.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("not an HTTP URL: %s" % base_url)
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def create(self, client_id: Union[str, uuid.UUID, None] = None) -> Session:
        """``POST /sessions``: a new session for ``client_id`` (a random UUID when omitted), with its stream key."""
        body = {"client_id": str(client_id if client_id is not None else uuid.uuid4())}
        return Session.from_json(self._request("POST", "/sessions", body))

    def get(self, session_id: Union[str, uuid.UUID]) -> Session:
        """``GET /sessions/:id`` (never includes the stream key)."""
        return Session.from_json(self._request("GET", "/sessions/%s" % _segment(session_id)))

    def delete(self, session_id: Union[str, uuid.UUID]) -> None:
        """``DELETE /sessions/:id``: finishes the session and closes its sockets (4410). Repeating it is fine."""
        self._request("DELETE", "/sessions/%s" % _segment(session_id))

    def operators(self, session_id: Union[str, uuid.UUID]) -> List[Operator]:
        """``GET /sessions/:id/operators``, in join order."""
        body = self._request("GET", "/sessions/%s/operators" % _segment(session_id))
        return [Operator(user_id=o["user_id"], joined_at=o["joined_at"], online=o["online"]) for o in body["operators"]]

    def mint_token(self, session_id: Union[str, uuid.UUID], user_id: str, ttl: Optional[str] = None) -> MintedToken:
        """``POST /sessions/:id/tokens``: an operator token for ``user_id`` (``ttl`` such as ``"10m"``; default 1 h, at most 24 h).

        A finished session raises ``APIError`` 409 ``session_finished``.
        """
        body: Dict[str, Any] = {"user_id": user_id}
        if ttl is not None:
            body["ttl"] = ttl
        minted = self._request("POST", "/sessions/%s/tokens" % _segment(session_id), body)
        return MintedToken(token=minted["token"], ws_url=minted["ws_url"], expires_at=minted["expires_at"])

    def revoke_operator(self, session_id: Union[str, uuid.UUID], user_id: str) -> None:
        """``DELETE /sessions/:id/operators/:user_id``: its sockets close with 4403 everywhere, its tokens issued so far are refused."""
        self._request("DELETE", "/sessions/%s/operators/%s" % (_segment(session_id), _segment(user_id)))

    def token_source(self, session_id: Union[str, uuid.UUID], user_id: str, ttl: Optional[str] = None) -> Callable[[], str]:
        """A :class:`Viewer` ``token`` that mints a fresh token for every connection attempt."""
        return lambda: self.mint_token(session_id, user_id, ttl).token

    def request(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        """Any call: the decoded JSON answer (``None`` for 204). For the CLI and for routes this class does not wrap."""
        return self._request(method, path, body)

    def _request(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        headers = {"accept": "application/json", "user-agent": "psds-stream/%s" % __version__}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["content-type"] = "application/json"
        if self.api_key is not None:
            headers["authorization"] = "Bearer %s" % self.api_key
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise _api_error(exc.code, exc.read()) from None
        except (urllib.error.URLError, socket.timeout, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise APIConnectionError("%s %s%s: %s" % (method, self.base_url, path, reason)) from exc
        if not payload:
            return None
        try:
            return json.loads(payload)
        except ValueError:
            raise APIError(200, "invalid_response", "the answer is not JSON: %r" % payload[:200]) from None


def _segment(value: Union[str, uuid.UUID]) -> str:
    return quote(str(value), safe="")


def _api_error(status: int, payload: bytes) -> APIError:
    try:
        body = json.loads(payload)
        error = body["error"]
        return APIError(status, str(error["code"]), str(error.get("message", "")), body)
    except (ValueError, KeyError, TypeError):
        text = payload[:200].decode("utf-8", "replace").strip()
        return APIError(status, "http_%d" % status, text or "HTTP %d" % status)
