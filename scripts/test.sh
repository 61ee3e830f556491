#!/usr/bin/env bash
# Installs Scribe (first time only) and runs the whole test suite, then lint and types.
# Tests use PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379 when they answer,
# and start embedded servers otherwise. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
.venv/bin/python -m pytest "$@"
.venv/bin/ruff check .
.venv/bin/mypy
