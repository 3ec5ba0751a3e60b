#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server (Debian's /usr/lib/postgresql/15/bin) on a free loopback
# port, with a database `gatehouse`. Everything lives in DIR.
#
#   postgres.sh start DIR     # new cluster (initdb), free port, start, CREATE DATABASE
#                             # gatehouse, write DIR/env, print the URL on standard output
#   postgres.sh stop DIR      # stop the server started for DIR (no-op if none); data kept
#   postgres.sh resume DIR    # start DIR's cluster again, on the same port, with its data
#                             # (after `stop`: a database outage and its end)
#
# DIR/env (KEY=value lines that need no shell quoting, like slapd.sh's):
#   POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/gatehouse?sslmode=disable
#   PG_PORT, PG_HOST (127.0.0.1), PG_DATABASE (gatehouse), PG_USER (postgres),
#   PG_DATA (DIR/data), PG_BIN, PG_LOG (DIR/postgres.log), PG_PID (the postmaster)
#
# Authentication is `trust` for 127.0.0.1 and the private unix socket in DIR/run (never
# /var/run/postgresql, so a system PostgreSQL is not disturbed). Durability is off (fsync,
# synchronous_commit, full_page_writes): a test server, fast on a busy machine.
# As root, the server runs as the `postgres` system user (initdb and pg_ctl refuse root):
# DIR is chowned to it, and every directory above DIR must be searchable by it (the e2e
# scripts chmod 755 their temp dir). As another user, it runs as that user.
# Needs: postgresql-15 (Debian 12's `postgresql`), python3, util-linux (runuser).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/process.sh
. "$HERE/../lib/process.sh"

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_USER=postgres
PG_DATABASE=gatehouse

die() { echo "postgres.sh: $*" >&2; exit 1; }
usage() { echo "usage: postgres.sh start DIR | postgres.sh stop DIR | postgres.sh resume DIR" >&2; exit 2; }

# as_owner CMD...: CMD as the server's system user (root: postgres; else ourselves)
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

env_value() { sed -n "s/^$1=//p" "$2/env" 2>/dev/null; }

# postmaster_pid DIR: the running postmaster of DIR's cluster (empty when none)
postmaster_pid() {
    local pid
    [ -s "$1/data/postmaster.pid" ] || return 0
    pid=$(head -n1 "$1/data/postmaster.pid")
    [ -n "$pid" ] && alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ] &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$1/data" && echo "$pid"
    return 0
}

cmd_stop() {
    local dir=$1 pid
    [ -d "$dir/data" ] || return 0
    pid=$(postmaster_pid "$dir")
    [ -n "$pid" ] || return 0
    # fast: open sessions are ended (what clients see when a database server goes down)
    if ! as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 20 stop >>"$dir/postgres.log" 2>&1; then
        echo "postgres.sh: postmaster $pid did not stop within 20 s, sending SIGQUIT" >&2
        kill -QUIT "$pid" 2>/dev/null || true
    fi
    while alive "$pid"; do sleep 0.05; done
}

# launch DIR PORT: start the cluster on PORT and wait until it accepts connections; false
# if it did not start (the log says why)
launch() {
    local dir=$1 port=$2
    # -l: the server's output goes to the log, so it inherits no descriptor of the caller
    # (a pipe it kept open would hang a caller's $(...)); pg_ctl detaches it.
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -o "-p $port" -w -t 30 start \
        </dev/null >>"$dir/pg_ctl.log" 2>&1 || return 1
    for _ in $(seq 1 100); do
        "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U "$PG_USER" -t 2 && return 0
        sleep 0.05
    done
    return 1
}

write_env() { # DIR PORT
    local dir=$1 port=$2
    cat >"$dir/env.tmp" <<EOF
POSTGRES_URL=postgres://$PG_USER@127.0.0.1:$port/$PG_DATABASE?sslmode=disable
PG_HOST=127.0.0.1
PG_PORT=$port
PG_USER=$PG_USER
PG_DATABASE=$PG_DATABASE
PG_DATA=$dir/data
PG_BIN=$PG_BIN
PG_LOG=$dir/postgres.log
PG_PID=$(postmaster_pid "$dir")
EOF
    mv "$dir/env.tmp" "$dir/env"
}

cmd_start() {
    local dir=$1
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    case $dir in *[[:space:]\"\'\$\\]*) die "DIR must not contain white space, quotes, \$ or backslashes: $dir" ;; esac
    [ -x "$PG_BIN/initdb" ] || die "no $PG_BIN/initdb (apt-get install postgresql)"
    cmd_stop "$dir"
    rm -rf "$dir/data" "$dir/run"
    rm -f "$dir/env" "$dir/postgres.log" "$dir/pg_ctl.log" "$dir/initdb.log"
    mkdir -p "$dir/run"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$dir" "$dir/run"
        runuser -u postgres -- test -w "$dir" ||
            die "the postgres user cannot write $dir (is every directory above it searchable, e.g. chmod 755?)"
    fi
    as_owner "$PG_BIN/initdb" -D "$dir/data" -U "$PG_USER" -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    cat >>"$dir/data/postgresql.conf" <<EOF

# postgres.sh: a throwaway test server
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/run'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
shared_buffers = 32MB
log_min_messages = warning
log_connections = off
EOF
    cat >"$dir/data/pg_hba.conf" <<EOF
# postgres.sh: trust on the private socket and 127.0.0.1 only
local all all trust
host  all all 127.0.0.1/32 trust
EOF

    local port rc=1
    for _ in 1 2 3 4 5; do
        port=$(free_ports 1)
        if launch "$dir" "$port"; then rc=0; break; fi
        # most likely the port was taken between picking and binding: try another
        if [ -n "$(postmaster_pid "$dir")" ]; then cmd_stop "$dir"; fi
        grep -q 'could not bind\|Address already in use' "$dir/postgres.log" 2>/dev/null ||
            { tail -20 "$dir/postgres.log" "$dir/pg_ctl.log" >&2 2>/dev/null; die "postgres did not start (log: $dir/postgres.log)"; }
        echo "postgres.sh: port $port was taken, retrying" >&2
    done
    [ "$rc" = 0 ] || die "could not start postgres on a free port after 5 attempts"
    "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE $PG_DATABASE" >>"$dir/pg_ctl.log" 2>&1 ||
        { cmd_stop "$dir"; tail -5 "$dir/pg_ctl.log" >&2; die "CREATE DATABASE $PG_DATABASE failed"; }
    write_env "$dir" "$port"
    env_value POSTGRES_URL "$dir"
}

cmd_resume() {
    local dir port
    dir=$(cd "$1" && pwd -P)
    [ -d "$dir/data" ] && [ -s "$dir/env" ] || die "no cluster in $dir: run 'postgres.sh start $dir' first"
    port=$(env_value PG_PORT "$dir")
    if [ -n "$(postmaster_pid "$dir")" ]; then
        echo "postgres.sh: already running on port $port" >&2
    else
        launch "$dir" "$port" || { tail -20 "$dir/postgres.log" >&2; die "postgres did not start again on port $port (taken meanwhile?)"; }
    fi
    write_env "$dir" "$port"
    env_value POSTGRES_URL "$dir"
}

[ $# -eq 2 ] || usage
case "$1" in
start) cmd_start "$2" ;;
stop)
    [ -d "$2" ] || exit 0
    cmd_stop "$(cd "$2" && pwd -P)"
    ;;
resume) cmd_resume "$2" ;;
*) usage ;;
esac
