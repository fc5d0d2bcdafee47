#!/usr/bin/env bash
# Run the checks and the test suite, installing the app, the test tools and Debian's chromium first if missing:
# ruff (lint), mypy (types), lint-imports (the package's layers), then pytest.
# All arguments go to pytest, e.g. ./run-tests.sh -m "not browser" or ./run-tests.sh tests/browser -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./install.sh --dev
echo "run-tests.sh: ruff"
venv/bin/ruff check .
echo "run-tests.sh: mypy"
venv/bin/mypy
echo "run-tests.sh: import layers"
venv/bin/lint-imports --no-cache
# Unbuffered, so that CI logs show test and subprocess output as it happens.
export PYTHONUNBUFFERED=1
exec venv/bin/python -m pytest "$@"
