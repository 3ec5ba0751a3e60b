# shellcheck shell=bash
# Process and port helpers for the test scripts and the directory fixtures. Sourced, never run;
# defines functions only, so it is safe under `set -euo pipefail` (the fixtures) and `set -u`
# (the test scripts, through Tests/lib/common.sh).

# alive PID: a zombie counts as gone, because PID 1 of some containers reaps late and a
# process we merely wait for must not look alive for that reason.
alive() { local s; s=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]; }

# term_wait PID SECONDS: SIGTERM, then up to SECONDS (whole) for the process to be gone; false
# if it is still there. Works for processes that are not our children (slapd and samba detach
# with setsid), where `wait` cannot be used; what to do about a survivor is the caller's call.
term_wait() {
    local i
    kill -TERM "$1" 2>/dev/null || true
    for i in $(seq 1 $(($2 * 20))); do
        alive "$1" || return 0
        sleep 0.05
    done
    ! alive "$1"
}

# stop_pid PID: SIGTERM to a child and reap it; STOP_RC is its exit status (tests assert 0 on
# SIGTERM) and STOP_SECS how long the stop took (a measure the scripts print).
stop_pid() {
    local t0
    t0=$(date +%s.%N)
    kill -TERM "$1" 2>/dev/null || true
    STOP_RC=0
    wait "$1" 2>/dev/null || STOP_RC=$?
    STOP_SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
}

# stop_all PID...: SIGTERM to every child first, then reap them: they shut down in parallel
# instead of one after the other (what the EXIT traps want). Empty arguments are skipped.
stop_all() {
    local pid
    for pid in "$@"; do [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "$@"; do [ -z "$pid" ] || wait "$pid" 2>/dev/null || true; done
    return 0
}

# free_ports N: N distinct free TCP ports on 127.0.0.1, on one line. All are bound at once, so
# they differ; they are free again when python exits, and a server may lose one to a race.
free_ports() {
    python3 - "${1:-1}" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
