"""verify_webhook: the Standard Webhooks test vector, and deliveries signed by the control plane's own code."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import uuid

import pytest

from conftest import REPO_ROOT
from psds_stream import WebhookVerificationError, sign_webhook, verify_webhook

#: From the Standard Webhooks specification's examples.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SIGNER = REPO_ROOT / "packages/control-plane/dist/webhooks/sign.js"


def node_signed(secret: str, event: dict) -> tuple:
    """Headers and body exactly as the control plane sends them (its webhookHeaders, run by Node)."""
    body = json.dumps(event)
    script = "import(process.argv[1]).then((m) => process.stdout.write(JSON.stringify(m.webhookHeaders(process.argv[2], process.argv[3], process.argv[4]))))"
    out = subprocess.run(["node", "-e", script, SIGNER.as_uri(), secret.split("_", 1)[1], event["id"], body],
                         check=True, capture_output=True, text=True, timeout=30).stdout
    return json.loads(out), body.encode()


def test_the_standard_webhooks_vector() -> None:
    assert sign_webhook(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    headers = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TIMESTAMP), "webhook-signature": VECTOR_SIGNATURE}
    assert verify_webhook(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TIMESTAMP + 10) == {"test": 2432232314}


def test_a_delivery_signed_by_the_control_plane_verifies_and_a_forged_one_does_not() -> None:
    assert SIGNER.exists(), "build first (pnpm build): %s" % SIGNER
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    event = {"id": str(uuid.uuid4()), "type": "session.created", "session_id": str(uuid.uuid4()),
             "occurred_at": "2026-01-01T00:00:00.000Z", "data": {"client_id": str(uuid.uuid4())}}
    headers, body = node_signed(secret, event)
    assert headers["webhook-id"] == event["id"]
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    upper = {name.upper(): value for name, value in headers.items()}
    assert verify_webhook(secret, upper, body) == event, "header names are case-insensitive"

    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(WebhookVerificationError):
        verify_webhook(other, headers, body)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, headers, body.replace(b"session.created", b"session.finished"))
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, dict(headers, **{"webhook-id": str(uuid.uuid4())}), body)
    with pytest.raises(WebhookVerificationError, match="away"):
        verify_webhook(secret, headers, body, now=time.time() + 600)
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify_webhook(secret, {"webhook-id": event["id"]}, body)
    rotated = dict(headers, **{"webhook-signature": "v1,bm90IGl0 " + headers["webhook-signature"]})
    assert verify_webhook(secret, rotated, body) == event, "any of several signatures may match"
