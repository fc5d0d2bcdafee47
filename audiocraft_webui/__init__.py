"""audiocraft-webui: a local chat-style web UI for Meta's MusicGen with Demucs stems.

Only the app factory lives here; importing the package starts nothing and imports no torch.
"""
from __future__ import annotations

from .version import __version__

__all__ = ["__version__", "create_app"]


def create_app(overrides: dict | None = None, *, engine=None):
    """Build the Flask app, its per-app SocketIO and services; the worker starts only if START_WORKER.

    Args:
        overrides: config values applied last (command line, tests).
        engine: a ready engine to use instead of building one from the config (tests).
    Returns:
        The Flask app; ``app.extensions["socketio"]`` and ``app.extensions["audiocraft_webui"]`` hold the rest.
    """
    from flask import Flask
    from flask_socketio import SocketIO

    from .config import DEFAULTS, STATIC_DIR, TEMPLATE_DIR
    from .services import EXTENSION_KEY, build_services
    from .web import api, events, library_views, stem_events, stem_views, views
    from .web.clients import CLIENTS_KEY, Clients
    from .web.security import POLICY_KEY, SOCKETIO_MAX_BYTES, AccessPolicy, RequestGuard

    app = Flask(__name__, static_folder=str(STATIC_DIR), template_folder=str(TEMPLATE_DIR))
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("AUDIOCRAFT_WEBUI")
    app.config.from_mapping(overrides or {})

    # Same-origin only (never "*"); the RequestGuard below also pins Host and Origin for the handshake.
    socketio = SocketIO(app, async_mode="threading", cors_allowed_origins=[], max_http_buffer_size=SOCKETIO_MAX_BYTES)
    services = build_services(app.config, socketio, engine)
    app.extensions[EXTENSION_KEY] = services
    app.register_blueprint(views.bp)
    app.view_functions["static"] = views.static_asset
    app.register_blueprint(stem_views.bp)
    app.register_blueprint(library_views.bp)
    app.register_blueprint(api.bp)
    app.extensions[POLICY_KEY] = policy = AccessPolicy.from_config(app.config)
    app.extensions[CLIENTS_KEY] = clients = Clients(policy.listening)
    events.register(socketio, services, clients)
    stem_events.register(socketio, services, clients)
    app.wsgi_app = RequestGuard(app.wsgi_app, policy)  # type: ignore[method-assign]  # Flask's middleware pattern
    if app.config["START_WORKER"]:
        services.worker.start()
    return app
