"""Verifying the service's webhooks (Standard Webhooks, https://www.standardwebhooks.com).

Every delivery carries ``webhook-id`` (the event id, the same on every retry:
use it to drop duplicates), ``webhook-timestamp`` (Unix seconds of the
attempt) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` of
``<id>.<timestamp>.<body>`` with the bytes of ``WEBHOOK_SECRET`` after
``whsec_``). Standard library only::

    from psds_stream import verify_webhook, WebhookVerificationError

    try:
        event = verify_webhook(os.environ["WEBHOOK_SECRET"], request.headers, request.body)
    except WebhookVerificationError:
        return 400
    if already_seen(event["id"]):
        return 204
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any, Dict, Mapping, Optional, Union

from .errors import PSDSError

#: Attempts older or newer than this (seconds) are refused: a replayed request does not verify.
DEFAULT_TOLERANCE = 300


class WebhookVerificationError(PSDSError):
    """The request is not a webhook signed with this secret (or it is too old)."""


def _key(secret: str) -> bytes:
    encoded = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the webhook secret is whsec_ followed by base64") from exc


def sign_webhook(secret: str, webhook_id: str, timestamp: int, body: Union[bytes, str]) -> str:
    """The ``webhook-signature`` value for a body: ``v1,<base64>``."""
    payload = body.encode() if isinstance(body, str) else body
    signed = b"%s.%d.%s" % (webhook_id.encode(), timestamp, payload)
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: Union[bytes, str],
    tolerance: int = DEFAULT_TOLERANCE,
    now: Optional[float] = None,
) -> Dict[str, Any]:
    """Checks a delivery's signature and age; returns the event (``id``, ``type``, ``session_id``, ``occurred_at``, ``data``).

    ``headers`` may be any mapping (names compared case-insensitively); ``body``
    must be the raw request body, as received. Raises :class:`WebhookVerificationError`.
    """
    lower = {str(name).lower(): str(value) for name, value in headers.items()}
    webhook_id = lower.get("webhook-id")
    timestamp = lower.get("webhook-timestamp")
    signatures = lower.get("webhook-signature")
    if not webhook_id or not timestamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number") from None
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is more than %d s away" % tolerance)
    expected = sign_webhook(secret, webhook_id, sent_at, body)
    # Several space-separated signatures may be sent while a secret is rotated.
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures.split(" ") if candidate.startswith("v1,")):
        raise WebhookVerificationError("no signature matches")
    payload = body.decode() if isinstance(body, bytes) else body
    event = json.loads(payload)
    if not isinstance(event, dict):
        raise WebhookVerificationError("the body is not an event")
    return event
