#!/usr/bin/env bash
# Installs Scribe (first time only) and runs the whole test suite, then lint and types.
# Tests use PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379 when they answer,
# and start embedded servers otherwise. Extra arguments go to pytest (and skip the
# narrow-terminal pass below).
#
# Each run gets a new, empty temporary folder (--basetemp), so no test can depend on what
# an earlier run left or on the folder's name (pytest-0 vs pytest-12). No COLUMNS is passed
# on: the CLI tests run once at the terminal width the machine gives, then again at 60
# columns, so output that only reads right at one width fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
unset COLUMNS LINES
basetemp=$(mktemp -d "${TMPDIR:-/tmp}/scribe-tests.XXXXXX")
trap 'rm -rf "$basetemp"' EXIT
.venv/bin/python -m pytest --basetemp="$basetemp/main" "$@"
if [ $# -eq 0 ]; then
  echo "scribe: CLI tests again with a 60-column terminal" >&2
  COLUMNS=60 .venv/bin/python -m pytest --basetemp="$basetemp/narrow" -q -m "not slow" \
    tests/unit/test_cli_errors.py tests/unit/test_cli_expires.py \
    tests/integration/test_cli_embedded.py tests/integration/test_cli_speakers.py \
    tests/integration/test_cli_calibrate.py
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .  # the code as ruff formats it; `ruff format .` fixes it
.venv/bin/mypy
scripts/web.sh check  # the page: tsc, eslint, Vitest
if [ $# -eq 0 ]; then
  # Production for real: `docker compose up` end to end with Traefik, on this machine's
  # Docker engine (started if need be). It says "skipped: <reason>" where none can run.
  scripts/compose-check.sh
fi
