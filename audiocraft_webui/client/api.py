"""The REST API over urllib: JSON calls, a multipart upload, a job's Server-Sent Events and downloads."""
from __future__ import annotations

import ipaddress
import json
import mimetypes
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import urlencode, urlsplit

#: Seconds a call (or a quiet event stream, which gets a comment every 10 s) may take before giving up.
TIMEOUT = 120.0


class ApiError(RuntimeError):
    """The server refused a call: its HTTP status and the API's ``{type, field, message}``."""

    def __init__(self, status: int, kind: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{kind}: {message}" + (f" ({field})" if field else ""))
        self.status, self.kind, self.message, self.field = status, kind, message, field


def _is_local(host: str) -> bool:
    """Whether a host name is this machine (then no proxy from the environment stands in between)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


class Client:
    """One server: its base URL and, when it needs one, the API token."""

    def __init__(self, server: str, token: str | None = None) -> None:
        self.server = server.rstrip("/")
        self.token = token
        handlers = [urllib.request.ProxyHandler({})] if _is_local(urlsplit(self.server).hostname or "") else []
        self._opener = urllib.request.build_opener(*handlers)

    def _open(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> IO[bytes]:
        """Send a request; a refusal becomes :class:`ApiError`."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.server + path, data=body, headers=headers, method=method)
        try:
            return self._opener.open(request, timeout=TIMEOUT)
        except urllib.error.HTTPError as exc:
            with exc:
                try:
                    error = json.loads(exc.read())["error"]
                    raise ApiError(exc.code, error["type"], error["message"], error.get("field")) from None
                except (ValueError, KeyError, TypeError):
                    raise ApiError(exc.code, "http_error", str(exc.reason)) from None

    def call(self, method: str, path: str, body: object = None) -> dict:
        """A JSON call of the API (``path`` below ``/api/v1``)."""
        data = None if body is None else json.dumps(body).encode()
        with self._open(method, "/api/v1" + path, data, "application/json" if data is not None else None) as answer:
            return json.loads(answer.read())

    def tracks(self, **query: object) -> dict:
        """A page of the track list."""
        given = {key: value for key, value in query.items() if value is not None}
        return self.call("GET", "/tracks" + (f"?{urlencode(given)}" if given else ""))

    def upload(self, path: Path, purpose: str) -> dict:
        """Upload an audio file for a purpose (melody, continuation, demucs); returns the stored upload."""
        boundary = uuid.uuid4().hex
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n{purpose}\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
                f"Content-Type: {kind}\r\n\r\n").encode()
        body = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        with self._open("POST", "/api/v1/uploads", body, f"multipart/form-data; boundary={boundary}") as answer:
            return json.loads(answer.read())

    def events(self, job_id: str) -> Iterator[tuple[str, dict]]:
        """A job's events as they come (the stream ends with the job)."""
        with self._open("GET", f"/api/v1/jobs/{job_id}/events") as stream:
            yield from parse_events(stream)

    def download(self, url: str, target: Path) -> Path:
        """Save a file the server serves (``url`` is a path such as ``/static/audio/x.wav``)."""
        with self._open("GET", url) as answer, target.open("wb") as handle:
            shutil.copyfileobj(answer, handle)
        return target


def parse_events(lines: IO[bytes]) -> Iterator[tuple[str, dict]]:
    """Server-Sent Events from a byte stream: ``(event, data)`` per event; comments are skipped."""
    name, data = "message", list[str]()
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
