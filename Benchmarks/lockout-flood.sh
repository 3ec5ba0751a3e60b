#!/usr/bin/env bash
# Lockout flood benchmark: what a flood of wrong passwords for one user from one address does
# to everyone else, what each guess costs Gatehouse, and whether refused answers can be told
# apart by their timing. It prints numbers and one verdict line per target; it is not a test
# (exit status 0 unless the set-up fails).
#
# Usage (Debian 12 with wrk, curl, python3, apache2-utils; no root needed):
#
#     Benchmarks/lockout-flood.sh
#     GATEHOUSE_BIN=.build/debug/gatehouse FLOOD_SECONDS=5 TIMING_N=10 Benchmarks/lockout-flood.sh
#
# Env:  GATEHOUSE_BIN   gatehouse binary (default .build/release/gatehouse, built with
#                       `swift build -c release --product gatehouse` when it is missing;
#                       copied to the temp dir first, so a rebuild during the run changes nothing)
#       FLOOD_SECONDS   length of the flood (default 20)
#       FLOOD_CONNS     wrk connections (default 32; one wrk thread)
#       PROBE_INTERVAL  seconds between two probe rounds during the flood (default 0.25)
#       TIMING_N        timed requests per kind without a flood (default 30, at most 30: dave's
#                       TIMING_N wrong passwords from distinct addresses must not exceed the
#                       per-user ceiling, user_max_failures)
#       KEEP_TMP=1      keep the temp dir (config, htpasswd, logs, raw wrk and probe output)
#
# Set-up: one temp dir, a free loopback port per Gatehouse, an EXIT trap that stops every
# process the script started. htpasswd users alice, bob, carol, dave, bcrypt cost 10
# (`htpasswd -bB -C 10`). The configuration keeps the default `cache`, `lockout` and
# `trusted_proxies` (127.0.0.1 is trusted, so the X-Real-IP header of a request names its
# address; the addresses are header values only, nothing is sent to them):
#     X = 203.0.113.10 (the attacker), Y = 203.0.113.20, Z = 203.0.113.30,
#     198.51.100.N (dave's wrong passwords), 192.0.2.N (unknown users).
# Every request goes straight to Gatehouse: GET /auth, X-Original-URI /v2/team/app/manifests/1,
# X-Original-Method GET, Basic credentials; the policy lets every user pull.
#
# Phases
#   1 warm      bob logs in from X, alice from Y (both 200; cached from now on).
#   2 flood     wrk -t1 -cFLOOD_CONNS -dFLOOD_SECONDS with Benchmarks/lockout/flood.lua: alice from
#               X, a different wrong password in every request, statuses counted. Meanwhile a
#               probe (python, a new connection per request, every PROBE_INTERVAL) asks
#               bob-from-X and alice-from-Y with their right passwords, and once, half-way,
#               carol's first login from Y; it records every status and latency. Gatehouse's
#               CPU (utime+stime, /proc/PID/stat) is read when wrk starts and when it ends;
#               CPU per guess = that delta / guesses answered (the probes' requests and carol's
#               one bcrypt are in the delta too, so the figure errs high).
#   3 after     alice's right password from X: still refused (401) until the window passes.
#   4 timing    a fresh Gatehouse (clean counters), no flood; one keep-alive connection (python
#               http.client), TIMING_N timed requests of each kind, round-robin (the order
#               rotates every round), after one untimed warm-up round (whose wrong password is
#               bob's, so that dave collects exactly TIMING_N failures):
#                 unknown  nobody-N from 192.0.2.N
#                 wrong    dave, a distinct wrong password, from 198.51.100.N
#                 locked   carol from Z, a distinct wrong password, after 10 distinct wrong
#                          passwords from Z locked the (carol, Z) pair
#               gatehouse_locked_out_requests_total must grow by exactly the locked requests
#               (warm-up included): else the kinds were not what they claim, and it says so.
# Targets (verdict lines at the end)
#   bob from X 200 throughout the flood; alice from Y 200 throughout; carol's first login from Y
#   200 during it; <= 100 us of Gatehouse CPU per guess; alice's right password from X refused
#   after it; without a flood, the medians of unknown / wrong / locked within 15% of each other
#   (max median / min median <= 1.15).
# The last lines are `# result: key=value`.
set -u

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../Tests/lib/common.sh
. "$REPO/Tests/lib/common.sh"

# not a test: no ok/not ok counts, a failed set-up is said on stderr
die() { echo "lockout-flood: $*" >&2; exit 1; }

FLOOD_SECONDS=${FLOOD_SECONDS:-20}
FLOOD_CONNS=${FLOOD_CONNS:-32}
PROBE_INTERVAL=${PROBE_INTERVAL:-0.25}
TIMING_N=${TIMING_N:-30}
case $FLOOD_SECONDS in '' | *[!0-9]* | 0 | 1 | 2) die "FLOOD_SECONDS must be an integer >= 3" ;; esac
case $FLOOD_CONNS in '' | *[!0-9]* | 0) die "FLOOD_CONNS must be a positive integer" ;; esac
case $TIMING_N in '' | *[!0-9]* | 0) die "TIMING_N must be a positive integer" ;; esac
[ "$TIMING_N" -le 30 ] || die "TIMING_N must be at most 30 (dave collects TIMING_N failures, which must not exceed user_max_failures)"
awk -v p="$PROBE_INTERVAL" 'BEGIN { exit !(p + 0 > 0) }' || die "PROBE_INTERVAL must be a positive number of seconds"

need_tools wrk curl python3 htpasswd base64 getconf
FLOOD_LUA=$REPO/Benchmarks/lockout/flood.lua
[ -f "$FLOOD_LUA" ] || die "missing $FLOOD_LUA"

if [ -z "${GATEHOUSE_BIN:-}" ] && [ ! -x "$REPO/.build/release/gatehouse" ]; then
    need_tools swift
    echo "# no .build/release/gatehouse: swift build -c release --product gatehouse" >&2
    (cd "$REPO" && swift build -c release --product gatehouse) >&2 || die "swift build failed"
fi
gatehouse_bin .build/release/gatehouse
[ -x "$GATEHOUSE_BIN" ] || die "no gatehouse binary at $GATEHOUSE_BIN (set GATEHOUSE_BIN)"

G1_PID= G2_PID= WRK_PID= PROBE_PID=
cleanup() {
    stop_all "$PROBE_PID" "$WRK_PID" "$G1_PID" "$G2_PID"
    remove_tmp "# temp dir kept:"
}
make_tmp lockout-flood
mkdir -p "$T/logs" "$T/g1" "$T/g2" || die "mkdir"
copy_gatehouse
HZ=$(getconf CLK_TCK)

X=203.0.113.10 Y=203.0.113.20 Z=203.0.113.30
URI=/v2/team/app/manifests/1
read -r P1 P2 < <(free_ports 2) || die "no free ports"

echo "# lockout-flood: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "# gatehouse: $GATEHOUSE_BIN ($(stat -c %y "$GATEHOUSE_BIN" | cut -d. -f1)); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
case $GATEHOUSE_BIN in */debug/*) echo "# note: a debug build (-Onone): CPU per guess and latencies are not what a release build gives" ;; esac
echo "# settings: FLOOD_SECONDS=$FLOOD_SECONDS wrk -t1 -c$FLOOD_CONNS; PROBE_INTERVAL=$PROBE_INTERVAL; TIMING_N=$TIMING_N; default lockout and cache"

# ------------------------------------------------------------------ helpers
# ticks PID: utime+stime clock ticks of a process (fields 14, 15 of /proc/PID/stat; the name
# in parentheses may contain spaces, so count after its closing parenthesis)
ticks() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }
# ask PORT USER PASSWORD ADDR: "STATUS SECONDS" of one /auth request, on a new connection
ask() {
    curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 30 -u "$2:$3" \
        -H "X-Real-IP: $4" -H "X-Original-URI: $URI" -H 'X-Original-Method: GET' "http://127.0.0.1:$1/auth"
}
# metric PORT NAME [REGEX]: the sum of the samples of a family (whose labels match REGEX);
# "-" when /metrics does not answer
metric() {
    local body
    body=$(curl -s --max-time 10 "http://127.0.0.1:$1/metrics") || { echo -; return; }
    printf '%s\n' "$body" | awk -v name="$2" -v re="${3:-}" '
        $1 == name || index($1, name "{") == 1 { if (re == "" || $1 ~ re) s += $NF }
        END { printf "%d", s }'
}
delta() { if [ "$1" = - ] || [ "$2" = - ]; then echo -; else echo $(($2 - $1)); fi; }
# start_gatehouse DIR PORT: config + htpasswd in DIR, serve in the background; GPID = its pid
start_gatehouse() {
    local d=$1 port=$2
    cp "$T/htpasswd" "$d/htpasswd"
    cat >"$d/gatehouse.yaml" <<EOF
listen: 127.0.0.1:$port
backends: [{name: local, type: htpasswd, file: htpasswd}]
policies:
  registry:
    type: registry
    rules: [{users: ["*"], allow: [pull]}]
log: {level: info}
EOF
    "$GH" config check --config "$d/gatehouse.yaml" >"$T/logs/config-check.log" 2>&1 ||
        { cat "$T/logs/config-check.log" >&2; die "gatehouse config check"; }
    "$GH" serve --config "$d/gatehouse.yaml" >>"$d/gatehouse.log" 2>&1 &
    GPID=$!
    wait_for 30 http_answers "http://127.0.0.1:$port/readyz" 200 ||
        { tail "$d/gatehouse.log" >&2; die "gatehouse on port $port did not become ready"; }
}

# ------------------------------------------------------------------ htpasswd
: >"$T/htpasswd"
for u in alice bob carol dave; do
    htpasswd -bB -C 10 "$T/htpasswd" "$u" "$u-right-pw" >/dev/null 2>>"$T/logs/htpasswd.log" ||
        die "htpasswd -bB -C 10: $(cat "$T/logs/htpasswd.log")"
done
[ "$(grep -c ':\$2[aby]\$10\$' "$T/htpasswd")" = 4 ] || die "htpasswd is not 4 bcrypt-10 entries: $(cat "$T/htpasswd")"

# ------------------------------------------------------------------ 1. warm
start_gatehouse "$T/g1" "$P1"
G1_PID=$GPID
read -r s t < <(ask "$P1" bob bob-right-pw "$X")
[ "$s" = 200 ] || die "warm: bob from X answered $s, not 200 (see $T/g1/gatehouse.log, KEEP_TMP=1)"
read -r s2 t2 < <(ask "$P1" alice alice-right-pw "$Y")
[ "$s2" = 200 ] || die "warm: alice from Y answered $s2, not 200"
echo "# 1 warm: bob from X $s ($(awk -v t="$t" 'BEGIN { printf "%.1f", t * 1000 }') ms), alice from Y $s2 ($(awk -v t="$t2" 'BEGIN { printf "%.1f", t * 1000 }') ms); Gatehouse pid $G1_PID on port $P1"

# ------------------------------------------------------------------ 2. flood
cat >"$T/probe.py" <<'EOF'
# probe PORT SECONDS INTERVAL URI X Y: bob-from-X and alice-from-Y every INTERVAL for SECONDS,
# carol's first login from Y once half-way; one line per request: KIND OFFSET_S STATUS MS
import base64, http.client, sys, time
port, seconds, interval, uri, x, y = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
def ask(user, pw, ip):
    h = {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode(),
         "X-Real-IP": ip, "X-Original-URI": uri, "X-Original-Method": "GET", "Connection": "close"}
    t0 = time.perf_counter()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/auth", headers=h)
        r = c.getresponse()
        r.read()
        status = r.status
        c.close()
    except Exception:
        status = 0
    return status, (time.perf_counter() - t0) * 1000
start = time.perf_counter()
carol_done = False
tick = 0
out = sys.stdout
while True:
    now = time.perf_counter() - start
    if now >= seconds:
        break
    for kind, user, ip in (("bob-x", "bob", x), ("alice-y", "alice", y)):
        at = time.perf_counter() - start
        s, ms = ask(user, user + "-right-pw", ip)
        out.write("%s %.3f %d %.3f\n" % (kind, at, s, ms))
    if not carol_done and time.perf_counter() - start >= seconds / 2:
        at = time.perf_counter() - start
        s, ms = ask("carol", "carol-right-pw", y)
        out.write("%s %.3f %d %.3f\n" % ("carol-y", at, s, ms))
        carol_done = True
    out.flush()
    tick += 1
    delay = start + tick * interval - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
EOF
LOCKED0=$(metric "$P1" gatehouse_locked_out_requests_total)
LOCKOUTS0=$(metric "$P1" gatehouse_lockouts_total)
DEC0=$(metric "$P1" gatehouse_decisions_total)
HITS0=$(metric "$P1" gatehouse_cache_hits_total)
echo "# 2 flood: wrk -t1 -c$FLOOD_CONNS -d${FLOOD_SECONDS}s, alice from X, a new wrong password per request; probes every ${PROBE_INTERVAL}s"
CPU0=$(ticks "$G1_PID")
FLOOD_USER=alice FLOOD_ADDR=$X FLOOD_URI=$URI FLOOD_NONCE=$$ \
    wrk -t1 -c"$FLOOD_CONNS" -d"${FLOOD_SECONDS}s" --timeout 30s -s "$FLOOD_LUA" "http://127.0.0.1:$P1/auth" >"$T/wrk.txt" 2>&1 &
WRK_PID=$!
# the probe starts 0.5 s into the flood and stops 0.5 s before its end: every probe is "during"
sleep 0.5
python3 "$T/probe.py" "$P1" "$((FLOOD_SECONDS - 1))" "$PROBE_INTERVAL" "$URI" "$X" "$Y" >"$T/probe.txt" 2>"$T/logs/probe.log" &
PROBE_PID=$!
wait "$WRK_PID"
WRK_RC=$?
CPU1=$(ticks "$G1_PID")
WRK_PID=
wait "$PROBE_PID"
PROBE_PID=
alive "$G1_PID" || die "Gatehouse died during the flood (see $T/g1/gatehouse.log, KEEP_TMP=1)"
# the requests in flight when wrk stopped are still answered (a locked answer waits): read the
# counters once the decisions stop growing (at most 5 s)
prev=$(metric "$P1" gatehouse_decisions_total)
for _ in $(seq 1 25); do
    sleep 0.2
    cur=$(metric "$P1" gatehouse_decisions_total)
    [ "$cur" = "$prev" ] && break
    prev=$cur
done
LOCKED1=$(metric "$P1" gatehouse_locked_out_requests_total)
LOCKOUTS1=$(metric "$P1" gatehouse_lockouts_total)
DEC1=$(metric "$P1" gatehouse_decisions_total)
HITS1=$(metric "$P1" gatehouse_cache_hits_total)
# password checks (bcrypt) during the flood: decisions neither refused unchecked nor from the cache
CHECKS=-
[ "$DEC1" = - ] || [ "$LOCKED1" = - ] || [ "$HITS1" = - ] ||
    CHECKS=$(((DEC1 - DEC0) - (LOCKED1 - LOCKED0) - (HITS1 - HITS0)))
# scopes PORT: "scope N, scope N" of gatehouse_lockouts_total (since the start)
scopes() {
    curl -s --max-time 10 "http://127.0.0.1:$1/metrics" |
        sed -n 's/^gatehouse_lockouts_total{.*scope="\([^"]*\)".*} \([0-9]*\).*/\1 \2/p' | paste -sd, - | sed 's/,/, /g'
}
LOCKOUT_SCOPES=$(scopes "$P1")
FLOOD=$(sed -n 's/^FLOOD //p' "$T/wrk.txt")
[ -n "$FLOOD" ] || { cat "$T/wrk.txt" >&2; die "wrk gave no summary (exit $WRK_RC)"; }
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
GUESSES=$(kv requests "$FLOOD")
[ "${GUESSES:-0}" -gt 0 ] || { cat "$T/wrk.txt" >&2; die "wrk completed no request"; }
DUR_US=$(kv duration_us "$FLOOD")
SOCK_ERR=$(($(kv connect "$FLOOD") + $(kv read "$FLOOD") + $(kv write "$FLOOD") + $(kv timeout "$FLOOD")))
STATUSES=$(kv statuses "$FLOOD")
G401=$(printf '%s\n' "$STATUSES" | tr ',' '\n' | sed -n 's/^401://p')
G401=${G401:-0}
CPU_US_PER_GUESS=$(awk -v d="$((CPU1 - CPU0))" -v hz="$HZ" -v n="$GUESSES" 'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
echo "flood: $GUESSES guesses answered in $(awk -v d="$DUR_US" 'BEGIN { printf "%.1f", d / 1e6 }') s ($(awk -v n="$GUESSES" -v d="$DUR_US" 'BEGIN { printf "%.0f", n / (d / 1e6) }')/s); statuses $STATUSES; socket errors $SOCK_ERR (connect/read/write/timeout $(kv connect "$FLOOD")/$(kv read "$FLOOD")/$(kv write "$FLOOD")/$(kv timeout "$FLOOD")); wrk latency p50 $(awk -v u="$(kv p50_us "$FLOOD")" 'BEGIN { printf "%.1f", u / 1000 }') ms, p99 $(awk -v u="$(kv p99_us "$FLOOD")" 'BEGIN { printf "%.1f", u / 1000 }') ms"
echo "flood: Gatehouse CPU $(awk -v d="$((CPU1 - CPU0))" -v hz="$HZ" 'BEGIN { printf "%.2f", d / hz }') s during the flood = $CPU_US_PER_GUESS us per guess (probes included)"
echo "flood: metrics: lockouts started during the flood $(delta "$LOCKOUTS0" "$LOCKOUTS1") (since start, by scope: ${LOCKOUT_SCOPES:-none}); requests refused without a password check $(delta "$LOCKED0" "$LOCKED1"), password checks $CHECKS (probes included in both)"

PROBE_KV=$(python3 - "$T/probe.txt" <<'EOF'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def pct(v, p):
    v = sorted(v)
    if not v: return float("nan")
    k = max(0, min(len(v) - 1, int(round(p / 100 * len(v) + 0.5)) - 1))   # nearest rank
    return v[k]
for kind in ("bob-x", "alice-y", "carol-y"):
    rs = [r for r in rows if r[0] == kind]
    ok = [r for r in rs if r[2] == "200"]
    by = {}
    for r in rs: by[r[2]] = by.get(r[2], 0) + 1
    first_bad = next((r for r in rs if r[2] != "200"), None)
    k = kind.replace("-", "_")
    print("%s_200=%d" % (k, len(ok)))
    print("%s_total=%d" % (k, len(rs)))
    print("%s_statuses=%s" % (k, ",".join("%s:%d" % kv for kv in sorted(by.items())) or "none"))
    print("%s_first_non200=%s" % (k, "%ss:%s" % (first_bad[1], first_bad[2]) if first_bad else "none"))
    print("%s_p50_ms=%.1f" % (k, pct([float(r[3]) for r in rs], 50)))
    print("%s_p99_ms=%.1f" % (k, pct([float(r[3]) for r in rs], 99)))
lat = [float(r[3]) for r in rows]
print("probe_p50_ms=%.1f" % pct(lat, 50))
print("probe_p99_ms=%.1f" % pct(lat, 99))
print("probe_n=%d" % len(lat))
EOF
)
[ -n "$PROBE_KV" ] && [ -s "$T/probe.txt" ] || { cat "$T/logs/probe.log" >&2; die "the probe recorded nothing"; }
pk() { printf '%s\n' "$PROBE_KV" | sed -n "s/^$1=//p"; }
CAROL=$(pk carol_y_statuses | sed 's/:1$//')
[ "$(pk carol_y_total)" = 1 ] || CAROL="none (probe made $(pk carol_y_total) carol requests)"
for k in "bob_x:bob from X" "alice_y:alice from Y"; do
    label=${k#*:} k=${k%%:*}
    echo "flood: $label (right password): $(pk "$k"_200)/$(pk "$k"_total) answered 200; statuses $(pk "$k"_statuses); first non-200 (offset s:status) $(pk "$k"_first_non200); p50 $(pk "$k"_p50_ms) ms, p99 $(pk "$k"_p99_ms) ms"
done
echo "flood: carol's first login from Y (half-way): $CAROL ($(pk carol_y_p50_ms) ms)"
echo "flood: probe latency over all $(pk probe_n) probe requests: p50 $(pk probe_p50_ms) ms, p99 $(pk probe_p99_ms) ms"

# ------------------------------------------------------------------ 3. after the flood
read -r AFTER t < <(ask "$P1" alice alice-right-pw "$X")
echo "# 3 after: alice's right password from X: $AFTER ($(awk -v t="$t" 'BEGIN { printf "%.1f", t * 1000 }') ms); expected 401 until the window (default 5m) passes, not waited for"
stop_pid "$G1_PID"
G1_PID=
[ "$STOP_RC" = 0 ] || echo "# note: Gatehouse exited $STOP_RC on SIGTERM"

# ------------------------------------------------------------------ 4. timing without a flood
start_gatehouse "$T/g2" "$P2"
G2_PID=$GPID
echo "# 4 timing: a fresh Gatehouse (pid $G2_PID), one keep-alive connection, $TIMING_N timed requests per kind, round-robin"
TLOCKED0=$(metric "$P2" gatehouse_locked_out_requests_total)
python3 - "$P2" "$TIMING_N" "$URI" "$Z" "$T/timing.txt" >"$T/timing.kv" 2>"$T/logs/timing.log" <<'EOF'
import base64, http.client, statistics, sys, time
port, n, uri, z, raw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
conn = None
def ask(user, pw, ip):
    global conn
    h = {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode(),
         "X-Real-IP": ip, "X-Original-URI": uri, "X-Original-Method": "GET"}
    for attempt in (1, 2):   # a connection the server closed while idle: once more on a new one
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.connect()
        try:
            t0 = time.perf_counter()
            conn.request("GET", "/auth", headers=h)
            r = conn.getresponse()
            r.read()
            t = time.perf_counter() - t0
            if r.getheader("Connection", "").lower() == "close":
                conn.close(); conn = None
            return r.status, t * 1000
        except (http.client.HTTPException, OSError):
            conn.close(); conn = None
            if attempt == 2: return 0, float("nan")
# lock the (carol, Z) pair: 10 distinct wrong passwords
trip = [ask("carol", "trip-%d" % i, z)[0] for i in range(10)]
kinds = {
    "unknown": lambda i: ask("nobody-%d" % i, "some-pw-%d" % i, "192.0.2.%d" % (i + 1)),
    # the warm-up round's wrong password is bob's, so that dave collects exactly n failures
    "wrong":   lambda i: ask("dave" if i > 0 else "bob", "wrong-pw-%d" % i, "198.51.100.%d" % (i + 1)),
    "locked":  lambda i: ask("carol", "after-lock-%d" % i, z),
}
order = ["unknown", "wrong", "locked"]
samples = {k: [] for k in order}
with open(raw, "w") as f:
    for i in range(n + 1):   # round 0: warm-up, not timed
        rot = order[i % 3:] + order[:i % 3]
        for k in rot:
            s, ms = kinds[k](i)
            f.write("%d %s %d %.3f\n" % (i, k, s, ms))
            if i > 0: samples[k].append((s, ms))
def p90(v):
    v = sorted(v); return v[max(0, min(len(v) - 1, int(round(0.9 * len(v) + 0.5)) - 1))]
print("trip_statuses=%s" % ",".join(str(s) for s in sorted(set(trip))))
meds = {}
for k in order:
    ms = [m for _, m in samples[k] if m == m]
    bad = sum(1 for s, _ in samples[k] if s != 401)
    meds[k] = statistics.median(ms) if ms else float("nan")
    print("%s_median_ms=%.2f" % (k, meds[k]))
    print("%s_p90_ms=%.2f" % (k, p90(ms) if ms else float("nan")))
    print("%s_non401=%d" % (k, bad))
vals = list(meds.values())
ratio = max(vals) / min(vals) if min(vals) > 0 else float("nan")
print("max_ratio=%.3f" % ratio)
print("requests_locked=%d" % (n + 1))
EOF
[ -s "$T/timing.kv" ] || { cat "$T/logs/timing.log" >&2; die "the timing phase gave no result"; }
TLOCKED1=$(metric "$P2" gatehouse_locked_out_requests_total)
tk() { sed -n "s/^$1=//p" "$T/timing.kv"; }
TLOCKED=$(delta "$TLOCKED0" "$TLOCKED1")
if [ "$TLOCKED" = - ]; then
    KINDS_NOTE="UNCONFIRMED (no gatehouse_locked_out_requests_total)"
elif [ "$TLOCKED" = "$(tk requests_locked)" ]; then
    KINDS_NOTE="confirmed (locked-out requests +$TLOCKED = the $(tk requests_locked) carol requests after the trip)"
else
    KINDS_NOTE="NOT CONFIRMED (locked-out requests +$TLOCKED, expected $(tk requests_locked): some kind is not what it claims)"
fi
echo "timing: the 10 trip requests (carol from Z) answered $(tk trip_statuses); kinds $KINDS_NOTE"
for k in unknown wrong locked; do
    printf 'timing: %-7s median %7s ms, p90 %7s ms (client side, %s requests, %s not 401)\n' "$k" "$(tk ${k}_median_ms)" "$(tk ${k}_p90_ms)" "$TIMING_N" "$(tk ${k}_non401)"
done
RATIO=$(tk max_ratio)
echo "timing: max pairwise ratio of medians $RATIO"
stop_pid "$G2_PID"
G2_PID=

# ------------------------------------------------------------------ verdicts
verdict() { if [ "$2" = 1 ]; then echo "verdict: $1: met"; else echo "verdict: $1: NOT MET"; fi; }
flag() { if "$@"; then echo 1; else echo 0; fi; }
all200() { [ "$(pk "$1"_total)" -gt 0 ] && [ "$(pk "$1"_200)" = "$(pk "$1"_total)" ]; }
V_BOB=$(flag all200 bob_x)
V_ALICE=$(flag all200 alice_y)
V_CAROL=$(flag [ "$CAROL" = 200 ])
V_CPU=$(flag awk -v c="$CPU_US_PER_GUESS" 'BEGIN { exit !(c + 0 <= 100) }')
V_AFTER=$(flag [ "$AFTER" = 401 ])
V_TIMING=$(flag awk -v r="$RATIO" 'BEGIN { exit !(r == r + 0 && r + 0 <= 1.15) }')
KINDS_OK=no
case $KINDS_NOTE in confirmed*) KINDS_OK=yes ;; *) V_TIMING=0 ;; esac
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
verdict "bob from X gets 200 throughout the flood ($(pk bob_x_200)/$(pk bob_x_total))" "$V_BOB"
verdict "alice from Y gets 200 throughout the flood ($(pk alice_y_200)/$(pk alice_y_total))" "$V_ALICE"
verdict "carol's first login from Y during the flood gets 200 ($CAROL)" "$V_CAROL"
verdict "at most 100 us of Gatehouse CPU per guess ($CPU_US_PER_GUESS us)" "$V_CPU"
verdict "alice's right password from X refused after the flood ($AFTER)" "$V_AFTER"
verdict "no flood: unknown / wrong / locked medians within 15% (max ratio $RATIO, kinds confirmed: $KINDS_OK)" "$V_TIMING"

cat <<EOF
# result: guesses=$GUESSES
# result: guesses_per_s=$(awk -v n="$GUESSES" -v d="$DUR_US" 'BEGIN { printf "%.0f", n / (d / 1e6) }')
# result: guess_statuses=$STATUSES
# result: guess_socket_errors=$SOCK_ERR
# result: guesses_refused_unchecked=$(delta "$LOCKED0" "$LOCKED1")
# result: password_checks_during_flood=$CHECKS
# result: cpu_us_per_guess=$CPU_US_PER_GUESS
# result: bob_x_200=$(pk bob_x_200)/$(pk bob_x_total)
# result: alice_y_200=$(pk alice_y_200)/$(pk alice_y_total)
# result: carol_y_first_login=$CAROL
# result: probe_p50_ms=$(pk probe_p50_ms)
# result: probe_p99_ms=$(pk probe_p99_ms)
# result: alice_x_right_after_flood=$AFTER
# result: timing_unknown_median_ms=$(tk unknown_median_ms)
# result: timing_wrong_median_ms=$(tk wrong_median_ms)
# result: timing_locked_median_ms=$(tk locked_median_ms)
# result: timing_unknown_p90_ms=$(tk unknown_p90_ms)
# result: timing_wrong_p90_ms=$(tk wrong_p90_ms)
# result: timing_locked_p90_ms=$(tk locked_p90_ms)
# result: timing_max_ratio=$RATIO
# result: timing_kinds_confirmed=$KINDS_OK
# result: within_15pct=$([ "$V_TIMING" = 1 ] && echo yes || echo no)
# result: targets_met=$((V_BOB + V_ALICE + V_CAROL + V_CPU + V_AFTER + V_TIMING))/6
EOF
