"""Python client of the PSDS streaming service: publish a session's stream and watch it.

- :class:`SessionsAPI` — the REST control plane (create / get / delete / operators,
  mint_token / revoke_operator), with the API key in ``AUTH_MODE=token``.
- :class:`Publisher` — sends the client's stream over WebSocket, reconnecting by itself.
- :class:`Viewer` — watches a session as an operator (async iterator of messages).
- :func:`verify_webhook` — checks a webhook's Standard Webhooks signature (SPEC §12).
- Sources: :func:`publish_ffmpeg`, :func:`publish_file`, :func:`publish_stdin`,
  :func:`publish_frames` (JPEG frames, one message each).

The command line: ``python3 -m psds_stream --help``.
"""

__version__ = "0.1.0"

from .api import MintedToken, Operator, Session, SessionsAPI  # noqa: E402
from .connection import Backoff, CredentialSource  # noqa: E402
from .errors import (  # noqa: E402
    APIConnectionError,
    APIError,
    CloseCode,
    ConnectionLostError,
    ForbiddenError,
    HandshakeRejectedError,
    InvalidRequestError,
    InvalidStreamKeyError,
    InvalidTokenError,
    MessageTooLargeError,
    PSDSError,
    PublisherReplacedError,
    SessionFinishedError,
    SessionNotFoundError,
    StreamError,
    StreamRefusedError,
    TooManyOperatorsError,
    UnauthorizedError,
)
from .publisher import Publisher, PublisherStats, Reconnected, with_stream_key  # noqa: E402
from .sources import (  # noqa: E402
    FFmpegError,
    StreamResult,
    jpeg_files,
    publish_ffmpeg,
    publish_file,
    publish_frames,
    publish_stdin,
    publish_stream,
)
from .viewer import Viewer, ViewerStats, operator_url  # noqa: E402
from .webhooks import WebhookVerificationError, sign_webhook, verify_webhook  # noqa: E402

__all__ = [
    "__version__",
    "SessionsAPI",
    "Session",
    "Operator",
    "MintedToken",
    "CredentialSource",
    "Publisher",
    "PublisherStats",
    "Reconnected",
    "Viewer",
    "ViewerStats",
    "Backoff",
    "operator_url",
    "with_stream_key",
    "publish_stream",
    "publish_ffmpeg",
    "publish_file",
    "publish_stdin",
    "publish_frames",
    "jpeg_files",
    "StreamResult",
    "FFmpegError",
    "PSDSError",
    "APIError",
    "APIConnectionError",
    "StreamError",
    "StreamRefusedError",
    "InvalidRequestError",
    "UnauthorizedError",
    "InvalidStreamKeyError",
    "InvalidTokenError",
    "ForbiddenError",
    "SessionNotFoundError",
    "SessionFinishedError",
    "PublisherReplacedError",
    "TooManyOperatorsError",
    "MessageTooLargeError",
    "HandshakeRejectedError",
    "ConnectionLostError",
    "CloseCode",
    "verify_webhook",
    "sign_webhook",
    "WebhookVerificationError",
]
