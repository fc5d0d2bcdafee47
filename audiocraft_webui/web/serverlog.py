"""The server's console: werkzeug's development-server banner is dropped, login tokens never reach a log, and
libraries' chatter about their own internals stays out of the user's way.

werkzeug announces itself with a "development server" warning and its own address lines at every start;
the app prints its own short block instead (``webui.py``). Access-log lines quote the request line, which
carries ``?token=`` when someone logs in with the link the server printed: the token is masked.
"""
from __future__ import annotations

import logging
import re

from ..console import quiet_libraries
from .security import TOKEN_PARAM

#: Pieces of werkzeug's start-up lines (``BaseWSGIServer.log_startup`` and ``run_simple``).
BANNER_MARKERS = ("This is a development server", " * Running on", "Press CTRL+C to quit")
TOKEN_VALUE = re.compile(rf"([?&]{TOKEN_PARAM}=)[^&\s\"']+")


def mask_tokens(text: str) -> str:
    """Replace the value of every ``token`` query parameter in ``text`` with ``***``."""
    return TOKEN_VALUE.sub(r"\1***", text)


class ServerLogFilter(logging.Filter):
    """Drop werkzeug's start-up banner and mask login tokens in what it logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record (masked) unless it is part of the banner."""
        message = record.getMessage()
        if any(marker in message for marker in BANNER_MARKERS):
            return False
        masked = mask_tokens(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def install() -> None:
    """Put the filter on werkzeug's logger (idempotent) and quiet the libraries."""
    quiet_libraries()
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(existing, ServerLogFilter) for existing in logger.filters):
        logger.addFilter(ServerLogFilter())
