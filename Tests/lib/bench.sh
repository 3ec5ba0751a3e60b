# shellcheck shell=bash
# What the benchmarks (Benchmarks/hot-path.sh, Benchmarks/fast-path-bench.sh) share beyond
# Tests/lib/common.sh: CPU ticks, memory and status readers. Sourced after common.sh; defines
# functions only.

# ticks PID...: utime+stime clock ticks summed over the processes ("-" without a PID)
ticks() {
    [ $# -gt 0 ] || { echo -; return; }
    local pid sum=0 t
    for pid in "$@"; do
        t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }')
        sum=$((sum + ${t:-0}))
    done
    echo "$sum"
}
# children PID: the PIDs of its children, space-separated
children() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' | tr '\n' ' '; }
# vm PID VmRSS|VmHWM: that line of /proc/PID/status, in kB
vm() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null; }
# mb KB: megabytes with one decimal
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# status URL [USER:PW] [curl args...]: the HTTP status
status() {
    local url=$1 creds=${2:-}
    shift 2 2>/dev/null || shift
    if [ -n "$creds" ]; then
        curl -s -o /dev/null -w '%{http_code}' --max-time 10 -u "$creds" "$@" "$url"
    else
        curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "$url"
    fi
}
# audit_counts LOG OFFSET: "DECISIONS VERIFICATIONS" among the audit lines after byte OFFSET;
# a verification is a decision not answered from the cache (bcrypt or LDAP). Audit lines land
# in batches every 50 ms: wait for the last batch first.
audit_counts() {
    sleep 0.1
    tail -c +"$(($2 + 1))" "$1" | grep 'decision=' |
        awk '{ n++ } /cached=false/ && !/failed recently \(cached\)/ { v++ } END { printf "%d %d", n, v }'
}
