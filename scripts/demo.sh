#!/usr/bin/env bash
# Installs Scribe (first time only) and transcribes a real two-speaker recording (the
# 30-second sample that ships with pyannote.audio), with no Docker and no service to set up:
# a private PostgreSQL and Redis start under the data directory and stop afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
sample=$(.venv/bin/python -c 'import importlib.util as u; print(list(u.find_spec("pyannote.audio").submodule_search_locations)[0] + "/sample/sample.wav")')
exec .venv/bin/scribe run "${1:-$sample}" "${@:2}"
