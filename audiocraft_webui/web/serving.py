"""Serving the app: werkzeug's threaded server with a request handler fitted for Socket.IO.

The server is built directly rather than through ``SocketIO.run`` / ``Flask.run``: in threading mode
those only call werkzeug's ``run_simple``, whose extras (reloader, debugger, and start-up banners
that tell the user about a "development server") the app never wants.
"""
from __future__ import annotations

import socket

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server


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


def serve(app: Flask, host: str, port: int) -> None:
    """Serve ``app`` on ``host:port`` until interrupted: one thread per connection, no reloader, no debugger."""
    server = make_server(host, port, app, threaded=True, request_handler=SocketIORequestHandler,
                         passthrough_errors=False)
    server.serve_forever()
