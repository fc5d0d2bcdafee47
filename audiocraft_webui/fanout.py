"""Job events for listeners inside the server (the REST API's event streams), fed by the same emitter as Socket.IO.

A subscriber holds a small bounded buffer per job; publishing never blocks (the oldest buffered event is
dropped when a reader falls behind, so a stalled client costs at most its buffer) and a closed subscription
is simply forgotten.
"""
from __future__ import annotations

import threading
from collections import deque

#: Events one subscription buffers; progress is at most 10 a second, so this covers a reader's long pause.
BUFFERED_EVENTS = 256
#: Subscriptions open at once (each holds a server thread while its client reads).
MAX_SUBSCRIPTIONS = 64


class TooManySubscriptions(RuntimeError):
    """Every subscription slot is taken."""


class Subscription:
    """One listener's events of one job, in order; read with :meth:`next`, end with :meth:`close`."""

    def __init__(self, hub: JobEvents, job_id: str, size: int) -> None:
        self.job_id = job_id
        self._hub = hub
        self._events: deque[tuple[str, dict]] = deque(maxlen=size)
        self._cond = threading.Condition()

    def put(self, event: str, payload: dict) -> None:
        """Buffer an event (called by the hub, from the emitting thread)."""
        with self._cond:
            self._events.append((event, payload))
            self._cond.notify()

    def next(self, timeout: float) -> tuple[str, dict] | None:
        """The next event, waiting up to ``timeout`` seconds; None when none came."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._events), timeout):
                return None
            return self._events.popleft()

    def close(self) -> None:
        """Stop listening (idempotent)."""
        self._hub.unsubscribe(self)


class JobEvents:
    """Fan-out of job events to in-process subscribers, by job id."""

    def __init__(self, buffered: int = BUFFERED_EVENTS, limit: int = MAX_SUBSCRIPTIONS) -> None:
        self._buffered = buffered
        self._limit = limit
        self._subscribers: dict[str, list[Subscription]] = {}
        self._count = 0
        self._lock = threading.Lock()

    def subscribe(self, job_id: str) -> Subscription:
        """Start receiving a job's events.

        Raises:
            TooManySubscriptions: the server already serves its most event streams.
        """
        subscription = Subscription(self, job_id, self._buffered)
        with self._lock:
            if self._count >= self._limit:
                raise TooManySubscriptions(f"at most {self._limit} event streams at once")
            self._subscribers.setdefault(job_id, []).append(subscription)
            self._count += 1
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a subscription (one already forgotten is ignored)."""
        with self._lock:
            listeners = self._subscribers.get(subscription.job_id, [])
            if subscription in listeners:
                listeners.remove(subscription)
                self._count -= 1
            if not listeners:
                self._subscribers.pop(subscription.job_id, None)

    def publish(self, event: str, payload: object) -> None:
        """Hand an event to its job's subscribers; an event without a ``job_id`` has none."""
        if not isinstance(payload, dict) or not isinstance(payload.get("job_id"), str):
            return
        with self._lock:
            listeners = list(self._subscribers.get(payload["job_id"], ()))
        for subscription in listeners:
            subscription.put(event, payload)

    @property
    def open(self) -> int:
        """How many subscriptions are open (for tests and the server's own checks)."""
        with self._lock:
            return self._count
