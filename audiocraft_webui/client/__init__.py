"""A command-line client of the REST API (``python -m audiocraft_webui.client``), standard library only.

It speaks only the public HTTP API, so it works against any audiocraft-webui server and never imports the
server's own modules.
"""
