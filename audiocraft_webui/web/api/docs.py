"""The API's OpenAPI document and a readable page of it, rendered offline by the vendored RapiDoc."""
from __future__ import annotations

from flask import Response, jsonify

from .base import bp, spec

#: The page: RapiDoc's web component reads the document; no inline script, so the page's CSP keeps
#: ``script-src 'self'``. System fonts, so RapiDoc never asks a font server.
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>audiocraft-webui REST API</title>
<link rel="icon" href="/favicon.ico">
<script src="/static/vendor/rapidoc-min.js" defer></script>
</head>
<body>
<rapi-doc spec-url="/api/v1/openapi.json" theme="dark" render-style="read" show-header="false"
  load-fonts="false" regular-font="system-ui, sans-serif" mono-font="ui-monospace, monospace"
  allow-server-selection="false"
  allow-spec-url-load="false" allow-spec-file-load="false" schema-description-expanded="true"></rapi-doc>
</body>
</html>
"""
#: RapiDoc (lit) styles its shadow DOM with style elements and attributes; scripts stay our own files only.
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "font-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'")


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document of this API, generated from its request and response models."""
    return jsonify(spec.document())


@bp.get("/docs")
def docs() -> Response:
    """A readable page of the API, offline."""
    return Response(DOCS_PAGE, mimetype="text/html", headers={"Content-Security-Policy": DOCS_CSP})
