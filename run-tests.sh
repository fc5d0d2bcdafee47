#!/usr/bin/env bash
# Run the test suite, installing the app, the test tools and Debian's chromium first if missing.
# All arguments go to pytest, e.g. ./run-tests.sh -m "not browser" or ./run-tests.sh tests/browser -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./install.sh --dev
# Unbuffered, so that CI logs show test and subprocess output as it happens.
export PYTHONUNBUFFERED=1
exec venv/bin/python -m pytest "$@"
