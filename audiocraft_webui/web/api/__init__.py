"""The REST API (``/api/v1/``): every feature of the page over HTTP, described by an OpenAPI document.

Importing the package declares every route on :data:`bp`; the routes validate with the same functions as
the Socket.IO handlers and hand work to the same services.
"""
from . import docs, jobs, library
from .base import bp

__all__ = ["bp", "docs", "jobs", "library"]
