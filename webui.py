"""Start audiocraft-webui: parse the flags, build the app, start the GPU worker and serve on localhost."""
from __future__ import annotations

import argparse
import logging
import os
import secrets
import socket
import sys

from werkzeug.serving import WSGIRequestHandler

from audiocraft_webui import compat, heap
from audiocraft_webui.config import DEFAULTS
from audiocraft_webui.security import TOKEN_PARAM, is_loopback

log = logging.getLogger(__name__)

MB = 1024 * 1024
#: Bind address of --listen: every interface.
LISTEN_ALL = "0.0.0.0"


class SocketIORequestHandler(WSGIRequestHandler):
    """Werkzeug's handler fitted for Socket.IO: packets leave at once, and a finished websocket is not read as HTTP.

    Without ``TCP_NODELAY`` a second small packet written right after another (``job_started`` then
    ``progress``, an event then its ack) waits for the client's delayed ACK: about 40 ms each time.
    """

    def setup(self) -> None:
        """Set ``TCP_NODELAY`` on the connection (the websocket keeps using this socket)."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_dropped(self, error: BaseException, environ: dict | None = None) -> None:
        """Stop serving this connection once it dropped (a websocket session ends this way).

        Werkzeug would otherwise read the websocket's last frames as a new HTTP request and log
        "Bad request syntax" as an error every time a tab closes.
        """
        self.close_connection = True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line (every flag is documented in the README)."""
    parser = argparse.ArgumentParser(description="Local web UI for Meta's MusicGen (audiocraft) with Demucs stems.")
    parser.add_argument("--host", default=DEFAULTS["HOST"], help="address to bind (default: %(default)s, loopback only)")
    parser.add_argument("--port", type=int, default=DEFAULTS["PORT"], help="port (default: %(default)s)")
    parser.add_argument("--listen", action="store_true",
                        help=f"serve the local network ({LISTEN_ALL}); then a login is required: --auth, "
                             "or a random token printed at start")
    parser.add_argument("--auth", metavar="USER:PASSWORD", default=None,
                        help="require this user name and password (HTTP Basic) for the page, routes and Socket.IO")
    parser.add_argument("--max-upload-mb", type=int, default=DEFAULTS["MAX_CONTENT_LENGTH"] // MB,
                        help="largest accepted upload in MB (default: %(default)s)")
    parser.add_argument("--device", default=DEFAULTS["DEVICE"],
                        help="torch device: auto (cuda, then mps, then cpu), cpu, mps, cuda or cuda:N")
    parser.add_argument("--unload-after-gen", action="store_true",
                        help="free the model (and MBD, Demucs) after every job to give the memory back")
    parser.add_argument("--demucs-model", default=DEFAULTS["DEMUCS_MODEL"],
                        help="Demucs model for stems: htdemucs (default), htdemucs_ft (better, 4x slower), "
                             "htdemucs_6s (adds guitar and piano), mdx_extra ...")
    parser.add_argument("--data-dir", default=DEFAULTS["DATA_DIR"],
                        help="folder for static/audio, static/stems, uploads and settings (default: the app folder)")
    parser.add_argument("--threads", type=int, default=DEFAULTS["TORCH_THREADS"],
                        help="torch CPU threads for the worker (default: torch's choice)")
    parser.add_argument("--queue-max", type=int, default=DEFAULTS["QUEUE_MAX"],
                        help="most jobs waiting in the queue (default: %(default)s)")
    parser.add_argument("--custom-model", action="append", default=[], metavar="ID_OR_FOLDER",
                        help="offer a custom MusicGen: a hub id or a folder with state_dict.bin and "
                             "compression_state_dict.bin (repeatable)")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="extra Host name the server answers to (besides 127.0.0.1, localhost, ::1)")
    parser.add_argument("--log-level", default="INFO", help="logging level (default: %(default)s)")
    return parser.parse_args(argv)


def access_config(host: str, port: int, auth: str | None) -> dict:
    """Credentials for the bind address: none on loopback; beyond it ``--auth`` or a random login token.

    Returns:
        Config overrides (``AUTH_BASIC``, ``AUTH_TOKEN``); the token's login address is logged.
    """
    overrides: dict = {"AUTH_BASIC": auth} if auth else {}
    if is_loopback(host):
        return overrides
    log.warning("listening on %s:%d: every device that can reach this port can reach the UI; a login is required",
                host, port)
    if not auth and not os.environ.get("AUDIOCRAFT_WEBUI_AUTH_TOKEN"):
        overrides["AUTH_TOKEN"] = token = secrets.token_urlsafe(24)
        log.warning("log in once from each browser at http://<this machine's address>:%d/?%s=%s",
                    port, TOKEN_PARAM, token)
    return overrides


def main(argv: list[str] | None = None) -> int:
    """Run the server until interrupted."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    compat.install()
    heap.tune_allocator()
    from audiocraft_webui import create_app

    host = LISTEN_ALL if args.listen and is_loopback(args.host) else args.host
    app = create_app({
        **access_config(host, args.port, args.auth), "MAX_CONTENT_LENGTH": args.max_upload_mb * MB,
        "HOST": host, "PORT": args.port, "DEVICE": args.device, "UNLOAD_AFTER_GEN": args.unload_after_gen,
        "DEMUCS_MODEL": args.demucs_model,
        "DATA_DIR": args.data_dir, "TORCH_THREADS": args.threads, "QUEUE_MAX": args.queue_max,
        "CUSTOM_MODELS": args.custom_model, "ALLOWED_HOSTS": args.allowed_host, "START_WORKER": True,
    })
    socketio = app.extensions["socketio"]
    log.info("audiocraft-webui on http://%s:%d", host, args.port)
    # Never the debugger or the reloader; allow_unsafe_werkzeug lets it run without a terminal (services, CI).
    socketio.run(app, host=host, port=args.port, debug=False, use_reloader=False, allow_unsafe_werkzeug=True,
                 request_handler=SocketIORequestHandler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
