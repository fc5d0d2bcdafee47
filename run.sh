#!/usr/bin/env bash
# Start the web UI, installing whatever is missing first. All arguments go to webui.py
# (./run.sh --help lists them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./install.sh
exec venv/bin/python webui.py "$@"
