#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: a fresh cluster in a temporary folder, run
# by a non-root user, listening on a free port of 127.0.0.1 only, with trust
# authentication (the tests create and drop databases on it).
#
#   .ci/postgres.sh start    install Debian's postgresql package when it is missing (as
#                            root: apt-get), initdb, start; prints on stdout
#                            `export LATCHKEY_TEST_POSTGRES_URL=postgres://...` (so
#                            `eval "$(.ci/postgres.sh start)"` sets it). Starting again
#                            while it runs prints the same line and starts nothing.
#   .ci/postgres.sh env      print that line for the running server (exit 1 when none)
#   .ci/postgres.sh status   exit 0 when the server runs
#   .ci/postgres.sh stop     stop the server and delete its folder (nothing to do: exit 0)
#
# Exit code 3 from `start`: PostgreSQL is not installed and cannot be installed here (not
# root, or no apt-get). Messages go to stderr.
#
# The folder is $LATCHKEY_PG_STATE, by default ${TMPDIR:-/tmp}/latchkey-postgres-$(id -u).
# Members of the role `latchkey_password_users` must log in with a password (scram), so
# the tests can check password authentication; everyone else is trusted.
set -euo pipefail

STATE=${LATCHKEY_PG_STATE:-${TMPDIR:-/tmp}/latchkey-postgres-$(id -u)}
DATA=$STATE/data
LOG=$STATE/postgres.log
URL_FILE=$STATE/url
VAR=LATCHKEY_TEST_POSTGRES_URL

say() { echo "postgres.sh: $*" >&2; }

# The directory of initdb and pg_ctl: Debian's newest /usr/lib/postgresql/N/bin, else PATH.
find_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl ]]; then
    echo "$dir"
  elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  fi
}

install_postgres() {
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    say "PostgreSQL is not installed, and installing it needs root and apt-get"
    say "(apt-get install postgresql), or point $VAR at a server"
    exit 3
  fi
  say "installing Debian's postgresql package (apt-get update, apt-get install -y postgresql)"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
}

# Run a command as the user that owns the cluster: `postgres` when we are root
# (PostgreSQL refuses to run as root), else ourselves.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() {
  local bin
  bin=$(find_bin)
  [[ -n $bin && -f $DATA/PG_VERSION && -f $URL_FILE ]] \
    && as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

print_env() {
  echo "export $VAR=$(cat "$URL_FILE")"
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  if running; then
    say "already running: $(cat "$URL_FILE")"
    print_env
    return
  fi
  local started=${EPOCHREALTIME/[.,]/} bin
  bin=$(find_bin)
  if [[ -z $bin ]]; then
    install_postgres
    bin=$(find_bin)
    [[ -n $bin ]] || { say "postgresql installed, but initdb and pg_ctl are not found"; exit 3; }
  fi
  # A folder left by a server that is gone (a killed run): start afresh.
  stop_quietly "$bin"
  mkdir -p "$STATE"
  chmod 0700 "$STATE"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$STATE"
  fi
  say "initdb in $DATA ($("$bin/initdb" --version))"
  as_owner "$bin/initdb" -D "$DATA" -U postgres --auth=trust --no-locale --encoding=UTF8 \
    --no-sync >"$STATE/initdb.log" 2>&1 || { cat "$STATE/initdb.log" >&2; exit 1; }
  cat >>"$DATA/postgresql.conf" <<EOF
# latchkey test server: loopback only, a socket in its own folder, speed over durability.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$STATE'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  cat >"$DATA/pg_hba.conf" <<EOF
local all all                                   trust
host  all +latchkey_password_users 127.0.0.1/32 scram-sha-256
host  all all                      127.0.0.1/32 trust
EOF
  local port tries=0
  while :; do
    tries=$((tries + 1))
    port=$((20000 + RANDOM % 40000))
    port_in_use "$port" && continue
    if as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -o "-p $port" start >/dev/null; then
      break
    fi
    if ((tries >= 5)); then
      say "PostgreSQL did not start; its log:"
      cat "$LOG" >&2 || true
      exit 1
    fi
    say "start on port $port failed; trying another port"
  done
  as_owner "$bin/psql" -X -q -h "$STATE" -p "$port" -U postgres -d postgres \
    -c "CREATE ROLE latchkey_password_users NOLOGIN" >/dev/null
  echo "postgres://postgres@127.0.0.1:$port/postgres" >"$URL_FILE"
  say "PostgreSQL $("$bin/pg_ctl" --version | awk '{print $3}') running on 127.0.0.1:$port" \
    "(in $(((${EPOCHREALTIME/[.,]/} - started) / 1000)) ms; stop with .ci/postgres.sh stop)"
  print_env
}

# Stop the server of $STATE if it runs, and delete the folder.
stop_quietly() {
  local bin=$1
  if [[ -n $bin && -f $DATA/PG_VERSION ]]; then
    as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$STATE"
}

stop() {
  if [[ ! -e $STATE ]]; then
    say "no PostgreSQL to stop ($STATE does not exist)"
    return
  fi
  local was_running=no
  running && was_running=yes
  stop_quietly "$(find_bin)"
  say "stopped (was running: $was_running); deleted $STATE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env)
    running || { say "not running"; exit 1; }
    print_env
    ;;
  status)
    if running; then say "running: $(cat "$URL_FILE")"; else say "not running"; exit 1; fi
    ;;
  *)
    echo "usage: $0 start|stop|env|status" >&2
    exit 2
    ;;
esac
