"""The GPU worker in a process of its own, so that a native crash or the out-of-memory killer takes down a
job, never the server: :mod:`.wire` is the message channel, :mod:`.child` the worker process,
:mod:`.supervisor` starts, watches and restarts it, and :mod:`.proxies` are the engine and the stem
splitter as the server sees them."""
