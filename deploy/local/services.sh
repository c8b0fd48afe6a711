#!/usr/bin/env bash
# Private Postgres and Redis for development and tests, installed from Debian's packages when
# missing and kept under target/local/<profile>/ (ignored by git).
#
#   deploy/local/services.sh start|stop|status|env [run|test|bench]
#
# Profiles use ports of their own so `make test` never touches the data of `make run`:
#   run:  Postgres 55432, Redis 56379 (data kept between runs)
#   test: Postgres 55433, Redis 56380 (recreated empty by every start; fsync off)
#   bench: Postgres 55434, Redis 56381 (recreated empty by every start; durable like run)
set -euo pipefail

cmd=${1:-status}
profile=${2:-run}
top=$(cd "$(dirname "$0")/../.." && pwd)
case "$profile" in
  run) pg_port=${CRM_PG_PORT:-55432}; redis_port=${CRM_REDIS_PORT:-56379} ;;
  test) pg_port=${CRM_PG_PORT:-55433}; redis_port=${CRM_REDIS_PORT:-56380} ;;
  bench) pg_port=${CRM_PG_PORT:-55434}; redis_port=${CRM_REDIS_PORT:-56381} ;;
  *) echo "unknown profile: $profile (run, test or bench)" >&2; exit 2 ;;
esac
base="$top/target/local/$profile"
redisdir="$base/redis"
pgdata="$base/pg"

# As root, Postgres runs as the postgres OS user, which must reach its data directory. A
# checkout under a private folder (mode 700, e.g. a mktemp dir) keeps it out: then the cluster
# lives in a folder of its own under /tmp, named after the checkout.
resolve_pgdata() {
  if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1; then
    if ! runuser -u postgres -- test -x "$top" 2>/dev/null; then
      pgdata="/tmp/crm-local-$(printf '%s' "$top" | sha256sum | cut -c1-12)/$profile/pg"
    fi
  fi
}
resolve_pgdata

log() { echo "[local:$profile] $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/pg_ctl" ] && { echo "$dir"; return 0; }
  done
  return 1
}

install_missing() {
  local pkgs=()
  pg_bin >/dev/null || pkgs+=(postgresql postgresql-contrib)
  command -v redis-server >/dev/null || pkgs+=(redis-server)
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing ${pkgs[*]} from Debian's packages"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # policy-rc.d keeps the packages from starting system-wide servers of their own.
    as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
    as_root rm -f /usr/sbin/policy-rc.d
  fi
}

# Postgres refuses to run as root: run its commands as the postgres OS user then.
pg_user() {
  # from / : the postgres user may not be allowed into the current directory
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

pg_start() {
  local bin; bin=$(pg_bin)
  if [ "$profile" != run ] && [ -d "$pgdata" ]; then pg_stop; rm -rf "$pgdata"; fi
  mkdir -p "$base"
  if [ ! -s "$pgdata/PG_VERSION" ]; then
    mkdir -p "$pgdata"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$pgdata" && chmod 755 "$(dirname "$pgdata")"
    chmod 700 "$pgdata"
    log "creating a cluster in $pgdata"
    pg_user "$bin/initdb" -D "$pgdata" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    {
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $pg_port"
      echo "unix_socket_directories = '$pgdata'"
      echo "max_connections = 400"
      echo "shared_buffers = 256MB"
      if [ "$profile" = test ]; then
        echo "fsync = off"; echo "synchronous_commit = off"; echo "full_page_writes = off"
      fi
    } | pg_user tee -a "$pgdata/postgresql.conf" >/dev/null
  fi
  if pg_user "$bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    log "postgres already running on $pg_port"
  elif "$bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" 2>/dev/null; then
    log "port $pg_port is taken by another Postgres (another checkout's?); stop it or set CRM_PG_PORT"
    return 1
  else
    pg_user "$bin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 60 start >/dev/null
    log "postgres running on 127.0.0.1:$pg_port"
  fi
}

pg_stop() {
  local bin; bin=$(pg_bin) || return 0
  if [ -d "$pgdata" ] && pg_user "$bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    pg_user "$bin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null
    log "postgres stopped"
  fi
}

redis_start() {
  if [ "$profile" != run ]; then redis_stop; rm -rf "$redisdir"; fi
  mkdir -p "$redisdir"
  if redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
    if [ "$profile" != run ]; then
      log "port $redis_port is taken by another Redis (another checkout's?); stop it or set CRM_REDIS_PORT"
      return 1
    fi
    log "redis already running on $redis_port"; return 0
  fi
  local persist=(--appendonly yes)
  [ "$profile" != run ] && persist=(--appendonly no --save '')
  redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$redisdir" --daemonize yes \
    --pidfile "$redisdir/redis.pid" --logfile "$redisdir/redis.log" "${persist[@]}"
  for _ in $(seq 1 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && { log "redis running on 127.0.0.1:$redis_port"; return 0; }
    sleep 0.1
  done
  log "redis did not start; see $redisdir/redis.log"; return 1
}

redis_stop() {
  # only the Redis this profile started (its pid file), never another one on the port
  local pidfile="$redisdir/redis.pid" pid
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$pidfile"
    log "redis stopped"
  fi
}

print_env() {
  echo "export CRM__DATABASE__URL=postgres://postgres@127.0.0.1:$pg_port/crm"
  echo "export CRM__REDIS__URL=redis://127.0.0.1:$redis_port"
}

case "$cmd" in
  start)
    install_missing
    resolve_pgdata
    pg_start
    redis_start
    # the database the platform runs in (tests make their own, one per test)
    pg_user "$(pg_bin)/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -qtAc \
      "SELECT 1 FROM pg_database WHERE datname = 'crm'" | grep -q 1 ||
      pg_user "$(pg_bin)/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -qc "CREATE DATABASE crm" ;;
  stop) pg_stop; redis_stop ;;
  status)
    pg_user "$(pg_bin)/pg_ctl" -D "$pgdata" status || true
    redis-cli -p "$redis_port" ping || true ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|status|env [run|test|bench]" >&2; exit 2 ;;
esac
