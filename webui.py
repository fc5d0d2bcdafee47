"""Start audiocraft-webui: parse the flags, build the app, start the GPU worker and serve on localhost."""
from __future__ import annotations

import argparse
import logging
import sys

from audiocraft_webui import compat
from audiocraft_webui.config import DEFAULTS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line (every flag is documented in the README)."""
    parser = argparse.ArgumentParser(description="Local web UI for Meta's MusicGen (audiocraft) with Demucs stems.")
    parser.add_argument("--host", default=DEFAULTS["HOST"], help="address to bind (default: %(default)s, loopback only)")
    parser.add_argument("--port", type=int, default=DEFAULTS["PORT"], help="port (default: %(default)s)")
    parser.add_argument("--device", default=DEFAULTS["DEVICE"],
                        help="torch device: auto (cuda, then mps, then cpu), cpu, mps, cuda or cuda:N")
    parser.add_argument("--unload-after-gen", action="store_true",
                        help="free the model (and MBD, Demucs) after every job to give the memory back")
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


def main(argv: list[str] | None = None) -> int:
    """Run the server until interrupted."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    compat.install()
    from audiocraft_webui import create_app

    app = create_app({
        "HOST": args.host, "PORT": args.port, "DEVICE": args.device, "UNLOAD_AFTER_GEN": args.unload_after_gen,
        "DATA_DIR": args.data_dir, "TORCH_THREADS": args.threads, "QUEUE_MAX": args.queue_max,
        "CUSTOM_MODELS": args.custom_model, "ALLOWED_HOSTS": args.allowed_host, "START_WORKER": True,
    })
    socketio = app.extensions["socketio"]
    logging.getLogger(__name__).info("audiocraft-webui on http://%s:%d", args.host, args.port)
    # Never the debugger or the reloader; allow_unsafe_werkzeug lets it run without a terminal (services, CI).
    socketio.run(app, host=args.host, port=args.port, debug=False, use_reloader=False, allow_unsafe_werkzeug=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
