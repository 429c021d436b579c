#!/usr/bin/env bash
# The image itself (issue 18 §1), built and run: build the Dockerfile, run `migrate` in it,
# start its web process (gunicorn, DEBUG off) and check `/`, a static file, `/healthz` and the
# user it runs as. Called by `.ci/run` (`make image-check`) after `make test` and `make faults`.
#
# Docker Hub is out of reach here, so the base is Debian's own: `debootstrap --variant=minbase`
# of bookworm with python3.11 and its venv, `docker import`ed once and cached as $BASE_IMAGE.
# Nothing leaves loopback: dockerd runs with --bridge=none --iptables=false, and every build
# and container uses --network host. Postgres and Redis are the machine's (127.0.0.1), never
# restarted; the database $IMAGE_DB is dropped and created fresh. Every step is bounded;
# whatever this starts (dockerd, containers, the fake Bungie.net) is stopped at the end.
#
# Settings (environment): IMAGE_CHECK_BASE (an existing base image to use instead, e.g.
# python:3.11-slim-bookworm where Docker Hub answers), IMAGE_CHECK_DB (dvr_image),
# IMAGE_CHECK_REDIS_DB (10; the broker takes the next one), IMAGE_CHECK_WORK
# (/var/tmp/dvr-image-check: the debootstrap tree, the daemon's log), DEBIAN_MIRROR.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BASE_IMAGE=${IMAGE_CHECK_BASE:-dvr-base/bookworm-python3.11:minbase}
IMAGE=dvr-image-check:$(git rev-parse --short HEAD 2>/dev/null || echo local)
IMAGE_DB=${IMAGE_CHECK_DB:-dvr_image}
REDIS_DB=${IMAGE_CHECK_REDIS_DB:-10}
WORK=${IMAGE_CHECK_WORK:-/var/tmp/dvr-image-check}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_PY=$ROOT/.venv/bin/python
NAME=dvr-image-check-$$
SECONDS=0
mkdir -p "$WORK"

say() { printf 'image-check: %s\n' "$*"; }
pass() { printf 'image-check: ok    %-44s (%ss)\n' "$1" "$SECONDS"; }
fail() { printf 'image-check: FAIL  %s\n' "$*" >&2; exit 1; }

DOCKERD_PID="" FAKE_PID="" CONTEXT_CERT=""
cleanup() {
  local rc=$?
  set +e
  docker rm -f "$NAME-web" "$NAME-migrate" "$NAME-sync" >/dev/null 2>&1
  [ -n "$CONTEXT_CERT" ] && rm -f "$CONTEXT_CERT"
  [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null && wait "$FAKE_PID" 2>/dev/null
  if [ -n "$DOCKERD_PID" ]; then
    kill "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
    kill -9 "$DOCKERD_PID" 2>/dev/null
  fi
  if [ "$rc" = 0 ]; then say "all checks passed in ${SECONDS}s"; else say "failed (exit $rc) after ${SECONDS}s"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$HOST_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- tools: Debian's docker.io and debootstrap ----------------------------------------------
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || [ -n "${IMAGE_CHECK_BASE:-}" ] || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} with apt-get"
  timeout 120 apt-get update -q >/dev/null || true
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]}"
fi
[ -x "$HOST_PY" ] || fail "no $HOST_PY: run make install first (the fake Bungie.net runs from it)"

# --- the daemon: one that answers, or ours (loopback only) -------------------------------------
if timeout 10 docker info >/dev/null 2>&1; then
  say "using the Docker daemon that already answers"
else
  say "starting dockerd --bridge=none --iptables=false (log: $WORK/dockerd.log)"
  dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
    --pidfile "$WORK/dockerd.pid" >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 1 60); do timeout 5 docker info >/dev/null 2>&1 && break; sleep 1; done
  timeout 10 docker info >/dev/null 2>&1 || { tail -20 "$WORK/dockerd.log" >&2; fail "dockerd did not answer within 60 s"; }
fi
pass "docker daemon answers"

# --- the base image --------------------------------------------------------------------------
if timeout 30 docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  pass "base image $BASE_IMAGE (cached)"
elif [ -n "${IMAGE_CHECK_BASE:-}" ]; then
  timeout 600 docker pull "$BASE_IMAGE" >/dev/null || fail "docker pull $BASE_IMAGE"
  pass "base image $BASE_IMAGE (pulled)"
else
  say "debootstrapping bookworm (minbase + python3.11) from $MIRROR"
  rm -rf "$WORK/rootfs" && mkdir -p "$WORK/rootfs"
  timeout 900 debootstrap --variant=minbase \
    --include=python3.11,python3.11-venv,python3-distutils,ca-certificates \
    bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap (log: $WORK/debootstrap.log)"; }
  rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
  timeout 300 tar -C "$WORK/rootfs" -c . | timeout 300 docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >/dev/null || fail "docker import $BASE_IMAGE"
  rm -rf "$WORK/rootfs"
  pass "base image $BASE_IMAGE (debootstrapped and imported)"
fi

# --- the build -------------------------------------------------------------------------------
# pip in the build trusts what the host's pip trusts: its bundle, copied into the context for
# the build only (never committed: .gitignore), named by the PIP_CERT build arg.
cert_args=()
host_cert=${PIP_CERT:-$(pip config get global.cert 2>/dev/null || true)}
if [ -n "$host_cert" ] && [ -f "$host_cert" ]; then
  CONTEXT_CERT=$ROOT/build-ca.pem
  cp "$host_cert" "$CONTEXT_CERT"
  cert_args=(--build-arg PIP_CERT=/build/build-ca.pem)
fi
say "building $IMAGE on $BASE_IMAGE"
DOCKER_BUILDKIT=0 timeout 900 docker build --network host --pull=false --force-rm \
  --build-arg "BASE=$BASE_IMAGE" "${cert_args[@]}" -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
  || { tail -30 "$WORK/build.log" >&2; fail "docker build (log: $WORK/build.log)"; }
rm -f "$CONTEXT_CERT"; CONTEXT_CERT=""
timeout 60 docker run --rm --network host --entrypoint /bin/sh "$IMAGE" -c 'test ! -e /build/build-ca.pem && test ! -e /app/build-ca.pem' \
  || fail "the certificate bundle leaked into the image"
pass "docker build"

# --- what it runs against: fresh database, a Redis db of its own, the fake Bungie.net ---------
PGOPTIONS="-c client_min_messages=warning" timeout 30 dropdb -h 127.0.0.1 -U postgres --if-exists "$IMAGE_DB" \
  || fail "dropdb $IMAGE_DB"
timeout 30 createdb -h 127.0.0.1 -U postgres "$IMAGE_DB" || fail "createdb $IMAGE_DB"
FAKE_PORT=$(free_port)
"$HOST_PY" -m tests.fakebungie --port "$FAKE_PORT" >"$WORK/fakebungie.log" 2>&1 &
FAKE_PID=$!
for _ in $(seq 1 30); do curl -fs -o /dev/null "http://127.0.0.1:$FAKE_PORT/" && break; sleep 0.5; done
kill -0 "$FAKE_PID" 2>/dev/null || { cat "$WORK/fakebungie.log" >&2; fail "the fake Bungie.net did not start"; }
WEB_PORT=$(free_port)
run_env=(
  -e DEBUG=false
  -e SECRET_KEY="$("$HOST_PY" -c 'import secrets; print(secrets.token_urlsafe(50))')"
  -e ALLOWED_HOSTS=127.0.0.1
  -e TOKEN_ENCRYPTION_KEYS="$("$HOST_PY" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
  -e DATABASE_URL="postgres://postgres@127.0.0.1:5432/$IMAGE_DB"
  -e REDIS_URL="redis://127.0.0.1:6379/$REDIS_DB"
  -e BUNGIE_ROOT_URL="http://127.0.0.1:$FAKE_PORT"
  -e BUNGIE_API_KEY=fake-api-key -e BUNGIE_CLIENT_ID=12345 -e BUNGIE_CLIENT_SECRET=fake-client-secret
  -e PORT="$WEB_PORT" -e BIND_HOST=127.0.0.1 -e WEB_CONCURRENCY=2
)

# --- migrate, then the web process ------------------------------------------------------------
timeout 300 docker run --rm --name "$NAME-migrate" --network host "${run_env[@]}" "$IMAGE" \
  python manage.py migrate --no-input >"$WORK/migrate.log" 2>&1 \
  || { tail -30 "$WORK/migrate.log" >&2; fail "migrate in the image (log: $WORK/migrate.log)"; }
pass "migrate in the image"

timeout 60 docker run -d --name "$NAME-web" --network host --stop-timeout 10 "${run_env[@]}" "$IMAGE" >/dev/null \
  || fail "docker run (the web process)"
url=http://127.0.0.1:$WEB_PORT
# Production redirects plain http to https; Fly's proxy says https with this header.
get() { curl -s -H 'X-Forwarded-Proto: https' -m 10 "$@"; }
for _ in $(seq 1 60); do
  [ "$(get -o /dev/null -w '%{http_code}' "$url/healthz" || true)" != 000 ] && break
  [ "$(docker inspect -f '{{.State.Running}}' "$NAME-web" 2>/dev/null)" = true ] || break
  sleep 1
done
[ "$(docker inspect -f '{{.State.Running}}' "$NAME-web" 2>/dev/null)" = true ] \
  || { docker logs "$NAME-web" 2>&1 | tail -30 >&2; fail "the web process exited"; }
pass "gunicorn started (port $WEB_PORT)"

code=$(get -o "$WORK/home.html" -w '%{http_code}' "$url/" || true)
[ "$code" = 200 ] || { docker logs "$NAME-web" 2>&1 | tail -30 >&2; fail "/ answered $code, not 200"; }
pass "/ answers 200"

static=$(grep -o '/static/[^"?#]*\.css' "$WORK/home.html" | head -1 || true)
[ -n "$static" ] || static=$(grep -o '/static/[^"?#]*' "$WORK/home.html" | head -1 || true)
[ -n "$static" ] || fail "/ names no static file"
code=$(get -o /dev/null -w '%{http_code}' "$url$static" || true)
[ "$code" = 200 ] || fail "$static answered $code, not 200"
pass "static file $static answers 200"

# /healthz is 503 while no manifest version is live (that is what it is for): sync one from
# the fake, in the image, then it must say 200 with every part ok.
code=$(get -o "$WORK/healthz.json" -w '%{http_code}' "$url/healthz" || true)
say "/healthz before the first sync: $code $(head -c 300 "$WORK/healthz.json")"
timeout 300 docker run --rm --name "$NAME-sync" --network host "${run_env[@]}" "$IMAGE" \
  python manage.py refresh_manifest >"$WORK/sync.log" 2>&1 \
  || { tail -30 "$WORK/sync.log" >&2; fail "refresh_manifest in the image (log: $WORK/sync.log)"; }
pass "refresh_manifest in the image"
for _ in $(seq 1 20); do
  code=$(get -o "$WORK/healthz.json" -w '%{http_code}' "$url/healthz" || true)
  [ "$code" = 200 ] && break
  sleep 1
done
[ "$code" = 200 ] || fail "/healthz answered $code after the sync: $(head -c 600 "$WORK/healthz.json")"
pass "/healthz answers 200"

# Who runs it: gunicorn's master and its workers, seen from the host and from inside.
pid=$(docker inspect -f '{{.State.Pid}}' "$NAME-web")
uids=$(ps -o uid= -p "$pid" --ppid "$pid" | tr -s ' \n' ' ')
inside=$(timeout 30 docker exec "$NAME-web" id -u)
for uid in $uids $inside; do [ "$uid" = 10001 ] || fail "a process runs as uid $uid, not 10001 ($uids; id -u: $inside)"; done
pass "gunicorn runs as uid 10001 (master + $(($(wc -w <<<"$uids") - 1)) workers)"

timeout 30 docker stop "$NAME-web" >/dev/null || fail "docker stop did not return"
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$NAME-web")
[ "$exit_code" = 0 ] || fail "the web process exited $exit_code on SIGTERM, not 0"
pass "the web process stops cleanly on SIGTERM"

# Remove what this run made: the container, the image (and, on a daemon of our own, the
# build's untagged stages), the database. The imported base stays: the next run reuses it.
docker rm -f "$NAME-web" >/dev/null 2>&1 || true
timeout 60 docker image rm "$IMAGE" >/dev/null 2>&1 || true
[ -n "$DOCKERD_PID" ] && { timeout 60 docker image prune -f >/dev/null 2>&1 || true; }
timeout 30 dropdb -h 127.0.0.1 -U postgres --if-exists "$IMAGE_DB" || true
