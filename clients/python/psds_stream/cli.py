"""``python3 -m psds_stream``: sessions, publishing and watching from a shell.

Exit codes: 0 success; 1 failure (service unreachable, ffmpeg failed, gave
up reconnecting); 2 usage; 3 refused by the service (REST error code, or the
WebSocket close code and reason, printed on stderr); 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import signal
import sys
from typing import Any, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from . import __version__
from .api import SessionsAPI
from .connection import Backoff, CredentialSource, with_query
from .errors import APIError, PSDSError, SessionFinishedError, StreamRefusedError
from .publisher import Publisher
from .sources import jpeg_files, publish_ffmpeg, publish_file, publish_frames, publish_stdin
from .viewer import Viewer, operator_url

__all__ = ["main", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_REFUSED"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_INTERRUPTED = 130

log = logging.getLogger("psds_stream")

_EPILOG = """exit codes: 0 success, 1 failure, 2 usage, 3 refused by the service (close code
and reason printed), 130 interrupted. Environment: PSDS_API, PSDS_API_KEY,
PSDS_WS_URL, PSDS_STREAM_KEY, PSDS_TOKEN supply defaults for --api, --api-key,
--ws-url, --stream-key, --token (secrets in the environment stay out of `ps`)."""


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text) from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive: %r" % text)
    return value


def _size(text: str) -> int:
    units = {"KB": 1024, "MB": 1024 * 1024, "GB": 1024 ** 3}
    for unit, factor in units.items():
        if text.upper().endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a size (bytes, or e.g. 10MB): %r" % text) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m psds_stream",
        description="Client of the PSDS streaming service: manage sessions, publish a stream, watch one.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="psds_stream %s" % __version__)
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    session = commands.add_parser(
        "session",
        help="create, inspect and finish sessions (REST)",
        description="Sessions over the REST API. Prints the JSON answer on stdout.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = session.add_subparsers(dest="action", metavar="ACTION", required=True)

    def api_options(p: argparse.ArgumentParser, required: bool = True) -> None:
        p.add_argument("--api", default=os.environ.get("PSDS_API"), required=required and "PSDS_API" not in os.environ,
                       metavar="URL", help="control plane base URL, e.g. http://localhost:8090 (default: $PSDS_API)")
        p.add_argument("--api-key", default=os.environ.get("PSDS_API_KEY"), metavar="KEY",
                       help="AUTH_MODE=token: one of the service's API_KEYS, sent as 'Authorization: Bearer KEY' "
                            "(default: $PSDS_API_KEY)")

    create = actions.add_parser("create", help="POST /sessions", description="Create a session (POST /sessions); prints it with its stream_key.")
    api_options(create)
    create.add_argument("--client-id", metavar="UUID", help="the publishing client's UUID (default: a random one)")
    for name, text in (
        ("get", "GET /sessions/ID: status, ws_url, operators_count, publisher_online..."),
        ("delete", "DELETE /sessions/ID: finish the session; its sockets close with 4410"),
        ("operators", "GET /sessions/ID/operators: operators in join order"),
    ):
        action = actions.add_parser(name, help=text.split(":")[0], description=text)
        api_options(action)
        action.add_argument("session_id", metavar="SESSION_ID")
    token = actions.add_parser(
        "token", help="POST /sessions/ID/tokens",
        description="Mint an operator token (AUTH_MODE=token); prints {token, ws_url, expires_at}: ws_url carries the token.")
    api_options(token)
    token.add_argument("session_id", metavar="SESSION_ID")
    token.add_argument("--user-id", required=True, metavar="ID", help="the operator (1-128 of A-Za-z0-9._:-)")
    token.add_argument("--ttl", metavar="DURATION", help="validity, e.g. 10m or 2h (default 1h, at most 24h)")
    revoke = actions.add_parser(
        "revoke", help="DELETE /sessions/ID/operators/USER_ID",
        description="Revoke an operator: its sockets close with 4403 on every relay, its tokens issued so far are refused.")
    api_options(revoke)
    revoke.add_argument("session_id", metavar="SESSION_ID")
    revoke.add_argument("user_id", metavar="USER_ID")

    publish = commands.add_parser(
        "publish",
        help="publish a stream (ffmpeg, a file, stdin or JPEG frames)",
        description=(
            "Publish a session's stream. Reconnects by itself (backoff with jitter); a WebM/MP4 stream restarts "
            "cleanly on the new connection (init segment, then from a keyframe). Stops with exit code 3 when "
            "the service refuses the stream: 4401 wrong stream key, 4404 unknown session, 4410 finished session, "
            "4409 replaced by a newer publisher, 1009 message too large."
        ),
        epilog=_EPILOG + """

examples:
  python3 -m psds_stream publish --ws-url "$WS_URL" --stream-key "$KEY" \\
      --ffmpeg "-re -f lavfi -i testsrc=size=640x480:rate=25 -c:v libvpx -deadline realtime -g 25 -f webm -live 1"
  python3 -m psds_stream publish --ws-url "$WS_URL" --stream-key "$KEY" --jpeg-dir frames/ --fps 10""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ws_options(publish, "the session's ws_url (from `session create`)")
    publish.add_argument("--stream-key", default=os.environ.get("PSDS_STREAM_KEY"), metavar="KEY",
                         help="the session's stream key (default: $PSDS_STREAM_KEY)")
    source = publish.add_mutually_exclusive_group(required=True)
    source.add_argument("--ffmpeg", metavar="ARGS",
                        help="run `ffmpeg -hide_banner -loglevel error ARGS pipe:1` and publish its output "
                             "(ARGS: input and output options, split like a shell does)")
    source.add_argument("--file", metavar="PATH", help="publish a file's bytes (as fast as the service takes them)")
    source.add_argument("--stdin", action="store_true", help="publish standard input as a byte stream")
    source.add_argument("--jpeg-dir", metavar="DIR", help="publish the DIR/*.jpg files in name order, one message each (needs --fps)")
    publish.add_argument("--fps", type=_positive, metavar="N", help="frames per second for --jpeg-dir")
    publish.add_argument("--max-message-size", type=_size, metavar="BYTES",
                         help="refuse larger messages locally (the service's WS_MAX_MESSAGE_SIZE, default 10MB)")

    watch = commands.add_parser(
        "watch",
        help="watch a session as an operator, into a file or stdout",
        description=(
            "Watch a session as an operator and write what arrives (binary as is, text as UTF-8). "
            "Reconnects by itself; at once on 4205 (the publisher restarted its stream). Exit code 3 when the "
            "service refuses the viewer (4400, 4401 missing or expired token, 4403 revoked or another user's "
            "token, 4404, 4409 too many operators, 4410 finished before anything arrived); 0 when the duration "
            "is over or the session finished after data arrived. AUTH_MODE=token: pass --token, or a --ws-url "
            "that carries ?token=, or --api and --api-key to mint a fresh token for every connection."
        ),
        epilog=_EPILOG + """

examples:
  python3 -m psds_stream watch --ws-url ws://relay:8090/ws/stream/SESSION/operator-1 --stdout | ffplay -
  PSDS_TOKEN="$TOKEN" python3 -m psds_stream watch --ws-url "$WS_URL" --user-id operator-1 -o out.webm""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ws_options(watch, "ws://HOST/ws/stream/SESSION_ID/USER_ID (the session's ws_url works with --user-id)")
    watch.add_argument("--user-id", metavar="ID",
                       help="operator id: replaces the last path segment of --ws-url (1-128 of A-Za-z0-9._:-)")
    watch.add_argument("--token", default=os.environ.get("PSDS_TOKEN"), metavar="TOKEN",
                       help="AUTH_MODE=token: the operator token, sent as 'Authorization: Bearer TOKEN' (default: $PSDS_TOKEN)")
    api_options(watch, required=False)
    output = watch.add_mutually_exclusive_group(required=True)
    output.add_argument("-o", "--output", metavar="FILE", help="write the stream to FILE")
    output.add_argument("--stdout", action="store_true", help="write the stream to stdout (e.g. `| ffplay -`)")
    watch.add_argument("--duration", type=_positive, metavar="SECONDS", help="stop after SECONDS (default: until the stream ends)")
    return parser


def ws_options(p: argparse.ArgumentParser, text: str) -> None:
    default = os.environ.get("PSDS_WS_URL")
    p.add_argument("--ws-url", action="append", required=default is None, metavar="URL",
                   help=text + "; repeat it to try several relays in turn (default: $PSDS_WS_URL)")
    p.set_defaults(ws_url_default=default)
    p.add_argument("--give-up-after", type=_positive, metavar="SECONDS",
                   help="exit (code 1) when no connection could be made for SECONDS (default: keep trying)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
        format="psds_stream: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "publish" and args.jpeg_dir is not None and args.fps is None:
        parser.error("--jpeg-dir needs --fps")
    if args.command == "publish" and args.fps is not None and args.jpeg_dir is None:
        parser.error("--fps only applies to --jpeg-dir")
    if args.command in ("publish", "watch") and not args.ws_url:
        args.ws_url = [args.ws_url_default]
    try:
        if args.command == "session":
            return _session(args)
        return asyncio.run(_stream(args))
    except KeyboardInterrupt:
        print("psds_stream: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except APIError as exc:
        print("psds_stream: %s" % exc, file=sys.stderr)
        return EXIT_REFUSED
    except StreamRefusedError as exc:
        print("psds_stream: refused: %s" % exc, file=sys.stderr)
        return EXIT_REFUSED
    except (PSDSError, OSError, ValueError) as exc:
        print("psds_stream: error: %s" % exc, file=sys.stderr)
        return EXIT_FAILURE


def _session(args: argparse.Namespace) -> int:
    api = SessionsAPI(args.api, args.api_key)
    if args.action == "create":
        body: Any = api.create(args.client_id).raw
    elif args.action == "get":
        body = api.get(args.session_id).raw
    elif args.action == "operators":
        body = api.request("GET", "/sessions/%s/operators" % args.session_id)
    elif args.action == "token":
        minted = api.mint_token(args.session_id, args.user_id, args.ttl)
        body = {"token": minted.token, "ws_url": minted.ws_url, "expires_at": minted.expires_at}
    elif args.action == "revoke":
        api.revoke_operator(args.session_id, args.user_id)
        return EXIT_OK
    else:
        api.delete(args.session_id)
        return EXIT_OK
    print(json.dumps(body, indent=2, ensure_ascii=False))
    return EXIT_OK


async def _stream(args: argparse.Namespace) -> int:
    # SIGTERM ends the stream like Ctrl-C: close the socket, stop ffmpeg.
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    terminated: List[bool] = []
    if task is not None and hasattr(signal, "SIGTERM"):
        current = task

        def on_term() -> None:
            terminated.append(True)
            current.cancel()
        try:
            loop.add_signal_handler(signal.SIGTERM, on_term)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not on the main thread / Windows
            pass
    try:
        if args.command == "publish":
            return await _publish(args)
        return await _watch(args)
    except asyncio.CancelledError:
        if terminated:
            print("psds_stream: terminated", file=sys.stderr)
            return 128 + signal.SIGTERM
        raise


async def _publish(args: argparse.Namespace) -> int:
    publisher = Publisher(args.ws_url, args.stream_key, give_up_after=args.give_up_after,
                          max_message_size=args.max_message_size, backoff=Backoff())
    async with publisher:
        log.info("publishing (connected)")
        if args.ffmpeg is not None:
            result = await publish_ffmpeg(publisher, shlex.split(args.ffmpeg))
            what = "%s stream" % (result.format or "empty")
        elif args.file is not None:
            result = await publish_file(publisher, args.file)
            what = "%s stream" % (result.format or "empty")
        elif args.stdin:
            result = await publish_stdin(publisher)
            what = "%s stream" % (result.format or "empty")
        else:
            frames = await publish_frames(publisher, jpeg_files(args.jpeg_dir), fps=args.fps)
            what = "%d JPEG frames" % frames
    stats = publisher.stats
    log.info("published %s: %d messages, %d bytes, %d reconnects", what, stats.messages, stats.bytes, stats.reconnects)
    return EXIT_OK


def _stream_ids(ws_url: str) -> Tuple[str, str]:
    """Session id and user id of a ``/ws/stream/<session>/<user>`` URL."""
    parts = urlsplit(ws_url).path.rstrip("/").split("/")
    if len(parts) < 2:
        raise ValueError("not a stream URL (ws://HOST/ws/stream/SESSION_ID/USER_ID): %s" % urlunsplit(urlsplit(ws_url)._replace(query="")))
    return unquote(parts[-2]), unquote(parts[-1])


def _operator_token(args: argparse.Namespace, urls: List[str]) -> Tuple[List[str], Optional[CredentialSource]]:
    """The watch URLs and their token: --token; else a token the URL carries; else one minted per connection with --api-key."""
    if args.token:
        return [with_query(url, "token", None) for url in urls], args.token
    if any("token" in dict(parse_qsl(urlsplit(url).query)) for url in urls):
        return urls, None
    if args.api_key and args.api:
        session_id, user_id = _stream_ids(urls[0])
        return urls, SessionsAPI(args.api, args.api_key).token_source(session_id, user_id)
    return urls, None


async def _watch(args: argparse.Namespace) -> int:
    urls, token = _operator_token(args, [operator_url(url, args.user_id) if args.user_id else url for url in args.ws_url])
    viewer = Viewer(urls, token=token, give_up_after=args.give_up_after)
    output: Any = sys.stdout.buffer if args.stdout else args.output
    try:
        try:
            stats = await viewer.write_to(output, duration=args.duration)
        except SessionFinishedError as exc:
            if viewer.stats.messages == 0:
                raise
            log.info("stream ended: %s", exc)
            stats = viewer.stats
    finally:
        await viewer.close()
    log.info("watched: %d messages, %d bytes, %d reconnects", stats.messages, stats.bytes, stats.reconnects)
    return EXIT_OK
