"""The errors of stem jobs and stem requests."""
from __future__ import annotations

from ..engines.demucs import StemError
from ..protocol import RequestError

__all__ = ["StemError", "StemRequestError"]



class StemRequestError(RequestError):
    """A refused ``request_stems`` / ``demucs_any``; ``kind`` tells the UI why (not_found, busy ...)."""

    def __init__(self, kind: str, field_name: str, message: str) -> None:
        super().__init__(field_name, message, kind)
