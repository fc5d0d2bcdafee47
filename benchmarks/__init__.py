"""End-to-end benchmark of audiocraft-webui (not part of the product): the real server against direct calls.

``python -m benchmarks [--quick] [--gpu] [--out FILE]`` starts ``webui.py`` on an offline
hub of random-weight models, submits jobs with a real python-socketio client on the websocket
transport, and runs the same work in a plain process beside it, interleaved. docs/PERFORMANCE.md
describes the method, the targets and the latest figures.

Modules: :mod:`.hubs` (offline model hubs), :mod:`.procs` (server, client, direct process, /proc),
:mod:`.direct` (the baseline process), :mod:`.scenarios` (the measurements), :mod:`.gpu` (decode speed
on CUDA), :mod:`.report` (targets and the table).
"""
