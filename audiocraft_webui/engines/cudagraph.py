"""A window's decoding steps as CUDA graphs: captured before the loop, replayed, nothing read back in between.

At batch 2 a MusicGen step is a few hundred small kernels, and launching them from Python takes longer
than running them (docs/PERFORMANCE.md), so :class:`GraphSteps` captures :meth:`.decoder.Window.step` once
and replays it. A graph keeps its shapes, so the new position attends over a fixed number of cache
columns with the later ones masked; one graph per :data:`BUCKET` columns keeps the wasted reads under a
bucket (six graphs for a 30 s window) where a single graph over the whole cache would read all of it at
every step. They are captured when the window starts, after two warm-up steps on a side stream that are
then undone, so the loop itself never waits for the device.

The host enqueues replays without reading anything back; it only waits for the replay :data:`RUN_AHEAD`
steps back (a CUDA event), so the progress callback and a cancel stay within that many steps of the device
while the device always has work queued. With a preview the tokens go to it in groups of :data:`RUN_AHEAD`
steps (see :class:`GraphSteps`). If a capture fails, the window runs its steps eagerly (the same
masked step, logged once), which is slower but gives the same tokens.
"""
from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator

import torch

from .decoder import Window

log = logging.getLogger(__name__)

#: Cache columns per graph: each graph attends over a multiple of this.
BUCKET = 256
#: Replays the host may enqueue ahead of the device.
RUN_AHEAD = 16
WARM_UP_STEPS = 2


@contextlib.contextmanager
def _capturable_autocast() -> Iterator[None]:
    """The ambient autocast with its weight-cast cache off: a cast cached during a capture would go stale."""
    with torch.autocast("cuda", dtype=torch.get_autocast_dtype("cuda"), enabled=torch.is_autocast_enabled("cuda"),
                        cache_enabled=False):
        yield


class GraphSteps:
    """Run a window's steps as replays of CUDA graphs, one per :data:`BUCKET` of attended columns.

    Handing tokens to the preview reads the device, so the decoder does it once per :attr:`feed_every`
    steps rather than after each one: the queue of replays drains there, not at every step.
    """

    feed_every = RUN_AHEAD

    def __init__(self, window: Window) -> None:
        self.window = window
        self._graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self._events = [torch.cuda.Event() for _ in range(RUN_AHEAD)]
        self._eager = False
        with _capturable_autocast():
            self._warm_up()
            self._capture_all()

    def length(self, position: int) -> int:
        """Columns a step at ``position`` attends over: the next bucket boundary, at most the whole cache."""
        return min(math.ceil((position + 1) / BUCKET) * BUCKET, self.window.cache.length)

    def _warm_up(self) -> None:
        """Run steps on a side stream before the first capture (lazy initialisation in the kernels), then undo them."""
        window = self.window
        state = window.snapshot()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for number in range(min(WARM_UP_STEPS, window.steps)):
                window.step(self.length(window.position + number), True)
        torch.cuda.current_stream().wait_stream(stream)
        window.restore(state)

    def _capture_all(self) -> None:
        """Capture one graph per bucket the window's positions reach (they share one memory pool)."""
        window = self.window
        lengths = sorted({self.length(window.position + number) for number in range(window.steps)})
        pool = torch.cuda.graph_pool_handle()
        for length in lengths:
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph, pool=pool):
                    window.step(length, True)
            except Exception as exc:  # an op that cannot be captured: same steps, eagerly
                log.warning("decoding without CUDA graphs: capturing a step failed (%s: %s)", type(exc).__name__, exc)
                self._graphs.clear()
                self._eager = True
                torch.cuda.synchronize()
                return
            self._graphs[length] = graph

    def step(self) -> None:
        """Enqueue the next step, first waiting for the one :data:`RUN_AHEAD` steps back."""
        window = self.window
        number = window.done
        event = self._events[number % RUN_AHEAD]
        if number >= RUN_AHEAD:
            event.synchronize()
        length = self.length(window.position)
        if self._eager:
            with _capturable_autocast():
                window.step(length, True)
        else:
            self._graphs[length].replay()
        event.record()
        window.done += 1

    def finish(self) -> None:
        """Wait for the last replay (the codes are read next)."""
        torch.cuda.current_stream().synchronize()
