#!/usr/bin/env bash
# Builds the browser page (web/, a Next.js static export into web/out) that the gateway
# serves at /. Needs Node.js 20.19 or newer with npm (Next.js 16 and its tools ask for
# that); without them it says so and skips: the API works, and / says how to build.
#
#   scripts/web.sh          build when anything it reads changed (install.sh runs this)
#   scripts/web.sh check    eslint, tsc --noEmit and the Vitest component tests
#
# Both first write web/openapi.json from the gateway's own schema and generate the API
# types from it, so an API change that breaks the page fails the build and tsc.
set -euo pipefail
cd "$(dirname "$0")/.."
NEED_MAJOR=20 NEED_MINOR=19

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "scribe: Node.js ${NEED_MAJOR}.${NEED_MINOR}+ and npm are not installed: the page is not built (the API works; see README)" >&2
  exit 0
fi
version=$(node --version | sed 's/^v//')
major=${version%%.*} rest=${version#*.} minor=${rest%%.*}
if [ "$major" -lt "$NEED_MAJOR" ] || { [ "$major" -eq "$NEED_MAJOR" ] && [ "$minor" -lt "$NEED_MINOR" ]; }; then
  echo "scribe: Node.js $version is too old to build the page; it needs ${NEED_MAJOR}.${NEED_MINOR} or newer (22 and 24 work too)" >&2
  exit 0
fi

export NEXT_TELEMETRY_DISABLED=1
.venv/bin/python -m gateway.openapi_json web/openapi.json
cd web
lock=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.scribe-lock ] || [ "$(cat node_modules/.scribe-lock)" != "$lock" ]; then
  echo "scribe: installing the page's packages (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock" > node_modules/.scribe-lock
fi

if [ "${1:-}" = "check" ]; then
  npm run --silent openapi >/dev/null
  npx --no-install tsc --noEmit
  npx --no-install eslint --max-warnings=0 .
  npx --no-install vitest run --reporter=dot
  exit 0
fi

want=$( { cat package-lock.json openapi.json next.config.ts tsconfig.json; find src -type f ! -name schema.d.ts | sort | xargs cat; } | sha256sum | cut -d' ' -f1)
if [ -f out/.scribe-build ] && [ "$(cat out/.scribe-build)" = "$want" ]; then
  exit 0
fi
echo "scribe: building the page (next build)" >&2
log=$(npm run --silent build 2>&1) || { echo "$log" >&2; exit 1; }
echo "$want" > out/.scribe-build
echo "scribe: page built into web/out" >&2
