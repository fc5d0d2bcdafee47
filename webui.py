"""Start audiocraft-webui: parse the flags, build the app, start the GPU worker and serve on localhost."""
from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import threading
from pathlib import Path

from audiocraft_webui import compat, heap
from audiocraft_webui.config import DEFAULTS, data_dir
from audiocraft_webui.engines import CPU_WEIGHTS, DECODERS, ModelLoadError, MusicEngine
from audiocraft_webui.version import __version__
from audiocraft_webui.web import serverlog
from audiocraft_webui.web.security import TOKEN_PARAM, is_loopback
from audiocraft_webui.web.serving import serve

log = logging.getLogger(__name__)

MB = 1024 * 1024
#: Bind address of --listen: every interface.
LISTEN_ALL = "0.0.0.0"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line (every flag is documented in the README)."""
    parser = argparse.ArgumentParser(description="Local web UI for Meta's MusicGen (audiocraft) with Demucs stems.")
    parser.add_argument("--host", default=DEFAULTS["HOST"],
                        help="address to bind (default: %(default)s, loopback only)")
    parser.add_argument("--port", type=int, default=DEFAULTS["PORT"], help="port (default: %(default)s)")
    parser.add_argument("--listen", action="store_true",
                        help=f"serve the local network ({LISTEN_ALL}); then a login is required: --auth, "
                             "or a random token printed at start")
    parser.add_argument("--auth", metavar="USER:PASSWORD", default=None,
                        help="require this user name and password (HTTP Basic) for the page, routes and Socket.IO")
    parser.add_argument("--api-token", default=None, metavar="TOKEN",
                        help="require Authorization: Bearer TOKEN on the REST API (/api/v1/); with --listen one is "
                             "drawn when none is given, and a logged-in page shows it")
    parser.add_argument("--max-upload-mb", type=int, default=int(str(DEFAULTS["MAX_CONTENT_LENGTH"])) // MB,
                        help="largest accepted upload in MB (default: %(default)s)")
    parser.add_argument("--device", default=DEFAULTS["DEVICE"],
                        help="torch device: auto (cuda, then mps, then cpu), cpu, mps, cuda or cuda:N")
    parser.add_argument("--decoder", choices=DECODERS, default=DEFAULTS["DECODER"],
                        help="token loop: auto (the app's static loop where it is measured faster, today the CPU), "
                             "static (wherever the model allows) or audiocraft (audiocraft's own loop)")
    parser.add_argument("--cpu-weights", choices=CPU_WEIGHTS, default=DEFAULTS["CPU_WEIGHTS"],
                        help="precision of the static loop's matrix products on the CPU (default: %(default)s; "
                             "speed and quality in docs/PERFORMANCE.md)")
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


def device_line(engine: MusicEngine) -> str:
    """Say where generation runs (this imports torch, so it is asked off the main thread)."""
    try:
        device = engine.device
    except ModelLoadError as exc:
        return f"not usable: {exc}"
    return {"cpu": "CPU", "mps": "Apple GPU (mps)"}.get(device, f"NVIDIA GPU ({device})")


def banner(host: str, port: int, data: Path, device: str) -> str:
    """The short block the server prints at start: where to open it, what it runs on, where files go."""
    shown = "127.0.0.1" if host == LISTEN_ALL else host
    where = f"http://{shown}:{port}" + (" (other devices: this machine's address)" if host == LISTEN_ALL else "")
    return "\n".join([
        f"audiocraft-webui {__version__} is running",
        f"  Open in a browser:  {where}",
        f"  Generates on:       {device}",
        f"  Tracks are saved in {data / 'static' / 'audio'} (stems in {data / 'static' / 'stems'})",
        "  Stop with Ctrl+C",
    ])


def main(argv: list[str] | None = None) -> int:
    """Run the server until interrupted."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serverlog.install()
    compat.install()
    heap.tune_allocator()
    from audiocraft_webui import create_app

    host = LISTEN_ALL if args.listen and is_loopback(args.host) else args.host
    app = create_app({
        **access_config(host, args.port, args.auth), "MAX_CONTENT_LENGTH": args.max_upload_mb * MB,
        "HOST": host, "PORT": args.port, "DEVICE": args.device, "UNLOAD_AFTER_GEN": args.unload_after_gen,
        "DECODER": args.decoder, "CPU_WEIGHTS": args.cpu_weights,
        "DEMUCS_MODEL": args.demucs_model,
        "DATA_DIR": args.data_dir, "TORCH_THREADS": args.threads, "QUEUE_MAX": args.queue_max,
        "CUSTOM_MODELS": args.custom_model, "ALLOWED_HOSTS": args.allowed_host, "START_WORKER": True,
        **({"API_TOKEN": args.api_token} if args.api_token else {}),
    })
    engine = app.extensions["audiocraft_webui"].engine
    threading.Thread(target=lambda: print(banner(host, args.port, data_dir(app.config), device_line(engine)),
                                          flush=True), name="announce", daemon=True).start()
    serve(app, host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
