#!/usr/bin/env bash
# Installs Scribe's dependencies, not Scribe itself, into the environment of a Python:
# pyproject.toml's [project] dependencies and those of the extras named, held to
# constraints.txt, then what pip's metadata cannot express. scripts/install.sh and both
# images (docker/*.Dockerfile) run this; each then installs the project with --no-deps.
#
#   scripts/install-deps.sh PYTHON [EXTRA...]
#   scripts/install-deps.sh .venv/bin/python worker embedded s3 test
#
# With the worker extra, also (docs/models.md):
# - requirements-nodeps.txt, installed with --no-deps;
# - torchcodec uninstalled and torchaudio's C++ extension (torchaudio/lib/*.so) removed:
#   PyPI's builds of both are CUDA builds whose C++ parts fail to load beside a CPU torch,
#   and pyannote needs only torchaudio's pure-Python parts. The folder is asked of this
#   Python, so no path of a Python version is written here.
#
# pip's own settings come from the environment (PIP_QUIET, PIP_EXTRA_INDEX_URL, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  echo "usage: scripts/install-deps.sh PYTHON [EXTRA...]" >&2
  exit 2
fi
py=$1
shift

requirements=$(mktemp "${TMPDIR:-/tmp}/scribe-requirements.XXXXXX")
trap 'rm -f "$requirements"' EXIT
"$py" - "$@" >"$requirements" <<'PY'
import sys
import tomllib

with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
extras = project["optional-dependencies"]
unknown = [name for name in sys.argv[1:] if name not in extras]
if unknown:
    sys.exit(f"scribe: no extra {', '.join(unknown)} in pyproject.toml ({', '.join(extras)})")
print("\n".join(project["dependencies"] + [r for name in sys.argv[1:] for r in extras[name]]))
PY
"$py" -m pip install -c constraints.txt -r "$requirements"

case " $* " in
  *" worker "*)
    "$py" -m pip install --no-deps -c constraints.txt -r requirements-nodeps.txt
    if "$py" -m pip show --quiet torchcodec >/dev/null 2>&1; then
      "$py" -m pip uninstall -y torchcodec
    fi
    torchaudio=$("$py" -c 'import importlib.util as u; print(next(iter(u.find_spec("torchaudio").submodule_search_locations)))')
    rm -f "$torchaudio"/lib/*.so
    ;;
esac
