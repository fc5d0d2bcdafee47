"""Configuration: defaults, then ``AUDIOCRAFT_WEBUI_*`` environment variables, then command-line or test overrides."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The app's own page assets (the data folders under it are served only by their own routes).
STATIC_DIR = REPO_ROOT / "static"
TEMPLATE_DIR = REPO_ROOT / "templates"

DEFAULTS: dict[str, object] = {
    # Network: loopback only unless --listen; extra Host names allowed with --allowed-host.
    "HOST": "127.0.0.1",
    "PORT": 5000,
    "ALLOWED_HOSTS": [],
    # Credentials (required beyond loopback): a login token and/or HTTP Basic "user:password".
    "AUTH_TOKEN": None,
    "AUTH_BASIC": None,
    # The REST API's bearer token (--api-token); drawn at start when a login is required and none is given.
    "API_TOKEN": None,
    # Where tracks, stems, uploads and settings live (static/audio, static/stems, settings/ ...).
    "DATA_DIR": str(REPO_ROOT),
    # Engine: device auto = cuda, then mps, then cpu; 0 threads = torch's default.
    "ENGINE": "audiocraft",
    "DEVICE": "auto",
    "TORCH_THREADS": 0,
    # Token loop: auto (the static loop where it is measured faster: the CPU), static or audiocraft; the
    # static loop's weight precision on the CPU: fp32, bf16 or int8 (docs/PERFORMANCE.md).
    "DECODER": "auto",
    "CPU_WEIGHTS": "fp32",
    "UNLOAD_AFTER_GEN": False,
    # Run generation and stems in a worker process of their own (a crash or the out-of-memory killer then
    # ends a job, not the server). Tests that need to reach into the engine run it in this process.
    "ISOLATE_WORKER": True,
    "CUSTOM_MODELS": [],
    "DEMUCS_MODEL": "htdemucs",
    # Demucs' own defaults: one random-shift pass (each extra one costs a full pass), 25 % segment overlap.
    "DEMUCS_SHIFTS": 1,
    "DEMUCS_OVERLAP": 0.25,
    # Limits.
    "QUEUE_MAX": 32,
    "MAX_CONTENT_LENGTH": 200 * 1024 * 1024,
    "MAX_FORM_MEMORY_SIZE": 500_000,
    "MAX_FORM_PARTS": 100,
    # Start the worker thread inside create_app (webui.py and live tests do; unit tests drive it by hand).
    "START_WORKER": False,
}


def data_dir(config: dict) -> Path:
    """The folder holding static/audio, static/stems, static/uploads, settings and quarantine."""
    return Path(str(config["DATA_DIR"])).resolve()
