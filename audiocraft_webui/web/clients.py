"""Who is connected, and who may cancel a job when several people share a ``--listen`` server.

Each page sends a random id of its own when it connects (kept in its local storage, so a reload is the
same client); the server keeps an opaque tag of it (an HMAC, so a tag shown to others cannot be turned
back into the id that proves it) and stamps every job the client queues with that tag. Only the job's
own client, or someone at the server's own machine, may cancel it; on a loopback-only server everyone is
that local user. Tags are per server process: after a restart the jobs it queued again belong to the
local user only.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass

from ..jobs import Job
from .security import is_loopback

#: Longest client id accepted from a page.
MAX_CLIENT_ID = 64
#: The client id of every REST API caller (they all hold the one API token); shorter than any page may send.
API_CLIENT_ID = "api"
#: Where create_app keeps the app's :class:`Clients` (``app.extensions[CLIENTS_KEY]``).
CLIENTS_KEY = "clients"


@dataclass(frozen=True)
class Client:
    """A connected page: its owner tag, and whether it connects from the server's own machine."""

    owner: str
    local: bool


class Clients:
    """The connected pages of one app, by Socket.IO session id."""

    def __init__(self, listening: bool) -> None:
        self.listening = listening
        self._secret = secrets.token_bytes(32)
        self._clients: dict[str, Client] = {}
        self._lock = threading.Lock()

    def connect(self, sid: str, auth: object, address: str) -> Client:
        """Remember a page that connected with ``auth`` (``{"client": id}``) from ``address``."""
        client_id = auth.get("client") if isinstance(auth, dict) else None
        if not isinstance(client_id, str) or not 8 <= len(client_id) <= MAX_CLIENT_ID:
            client_id = sid
        client = self._client(client_id, address)
        with self._lock:
            self._clients[sid] = client
        return client

    def api_client(self, address: str) -> Client:
        """A REST API caller from ``address``: the API's one owner tag, local when on this machine."""
        return self._client(API_CLIENT_ID, address)

    def _client(self, client_id: str, address: str) -> Client:
        """The client of an id (its tag is an HMAC of it) calling from ``address``."""
        tag = hmac.new(self._secret, client_id.encode(), hashlib.sha256).hexdigest()[:16]
        return Client(tag, is_loopback(address) if address else False)

    def disconnect(self, sid: str) -> None:
        """Forget a page that left."""
        with self._lock:
            self._clients.pop(sid, None)

    def owner(self, sid: str) -> str | None:
        """The owner tag of a connected page."""
        with self._lock:
            client = self._clients.get(sid)
        return client.owner if client else None

    def may_cancel(self, sid: str, job: Job) -> bool:
        """Whether the page ``sid`` may cancel ``job``: its own, or any when it is the local user."""
        with self._lock:
            client = self._clients.get(sid)
        return self.allows(client, job)

    def allows(self, client: Client | None, job: Job) -> bool:
        """Whether ``client`` may cancel ``job``: its own, or any when it is the local user."""
        if not self.listening or (client is not None and client.local):
            return True
        return client is not None and job.owner is not None and hmac.compare_digest(client.owner, job.owner)
