#!/usr/bin/env bash
# Fast-path benchmark: what Gatehouse behind nginx auth_request costs compared with no auth
# and with nginx's own auth_basic, plus memory, CPU per request and timing equalisation.
# It prints numbers; it is not a test (exit status 0 unless the set-up fails).
#
# Usage (as root, Debian 12 with nginx-light, wrk, slapd, ldap-utils, apache2-utils, curl,
# python3, iproute2):
#
#     Benchmarks/fast-path-bench.sh
#     DURATION=3s ROUNDS=1 TIMING_SAMPLES=5 Benchmarks/fast-path-bench.sh     # a quick trial
#
# Env:  GATEHOUSE_BIN   gatehouse binary (default .build/release/gatehouse; copied to the
#                       temp dir first, so a rebuild during the run changes nothing)
#       DURATION        length of every wrk run (default 10s)
#       ROUNDS          interleaved rounds (default 3)
#       WARMUP          wrk warm-up per URL before round 1 (default 2s)
#       TIMING_SAMPLES  curl samples per kind in the timing phase (default 15)
#       NGINX_WORKERS   nginx worker_processes (default 2: one per core of the 2-core box)
#       LOG_LEVEL       Gatehouse log level (default info: one audit line per decision, as
#                       in production; written to a file in the temp dir)
#       FILL_USERS      extra {SHA} users for the cache-memory phase (default 10000)
#       KEEP_TMP=1      keep the temp dir (configs, logs, raw wrk output) after the run
#
# Everything runs on loopback ports picked at random, in one temp dir; the EXIT trap stops
# nginx, every Gatehouse and slapd it started, and removes the dir.
#
# Set-up
#   nginx (worker_processes NGINX_WORKERS=2, worker_connections 4096, access_log off,
#   keepalive_requests 1000000 towards the client so wrk's connections are never recycled)
#   has one server per scenario, all answering GET /v2/ with a 2-byte 200 "ok". The body
#   comes from `try_files /.none @ok` + `location @ok { return 200 "ok"; }`: a `return` in
#   the protected location itself would answer in the rewrite phase, BEFORE the access phase
#   (auth_basic, auth_request), and skip authentication entirely. The preflight checks that
#   every protected server answers 401 without credentials.
#   The Gatehouse servers include the shipped nginx/gatehouse-auth.conf and
#   nginx/gatehouse-identity.conf unmodified, and a copy of nginx/gatehouse-upstream.conf in
#   which only the server address changes (keepalive 64 as shipped). The LDAP server needs a
#   second upstream, so it uses copies of gatehouse-upstream.conf (upstream renamed
#   gatehouse_ldap, address changed) and of gatehouse-auth.conf (only the proxy_pass line
#   points at gatehouse_ldap); the script checks that no other line differs.
#
#   Three Gatehouse processes, because the cache and lockout settings must differ:
#     G1 htpasswd  user bench, bcrypt cost 10 (as in production); cache on
#                  {ttl: 1h, negative_ttl: 10s (the default), max_entries: 100000};
#                  lockout OFF (max_failures: 0, the documented switch) so that the
#                  wrong-password scenario measures the negative cache, not a lockout.
#     G2 ldap      the Tests/Fixtures/slapd.sh directory over ldaps://, preset openldap,
#                  pool_size 4, cache {max_entries: 0}: every request is a cold search +
#                  bind + group read.
#     G3 timing    htpasswd, bcrypt cost 10, cache {max_entries: 0}, lockout
#                  {max_failures: 3, window: 10m}; asked directly, without nginx.
#
# Scenarios (wrk -t2 -c32 -d$DURATION, ROUNDS rounds, interleaved: every round runs
# p0, basic, cached, wrong, ldap in this order, so machine noise hits all alike)
#   p0      nginx, no authentication: the ceiling.
#   basic   nginx auth_basic, htpasswd made by `htpasswd -B -C 5` (bcrypt cost 5).
#   cached  nginx -> auth_request -> G1, the same right password every request: a cached
#           success (the first verification, bcrypt 10, happens in the warm-up).
#   wrong   nginx -> G1, the same wrong password every request: 401 from the negative
#           cache (re-verified with bcrypt 10 once per negative_ttl).
#   ldap    nginx -> G2, user alice: every request a cold LDAP verification.
# Then
#   c256    cached with wrk -t2 -c256: errors (socket errors, statuses other than 200).
#   memory  G1's VmRSS at start, VmHWM after the load; then FILL_USERS {SHA} users are added
#           to G1's htpasswd (Gatehouse re-reads it; this drops the cache), one successful
#           request per user fills the cache (wrk + lua, directly against G1), and VmRSS is
#           read again.
#   timing  G3 directly with curl, TIMING_SAMPLES interleaved samples of: unknown user, wrong
#           password, right password, locked-out user (mallory, whose pair with 10.9.0.1 is
#           tripped first with 3 distinct wrong passwords, asked from that address). The other
#           samples send their own trusted X-Real-IP (127.0.0.1 is in trusted_proxies), so no
#           other pair locks; unknown users are distinct names; alice's wrong password is the
#           same each time, and a repeat counts once.
#           The audit line of every sample is checked to be of the expected kind.
#
# Per-run lines and the SUMMARY table at the end:
#   req/s, p50, p99   medians over rounds (wrk's latency percentiles)
#   xP0               median over rounds of (req/s / p0's req/s in the same round); the
#                     targets are printed beside cached (>= 0.60), wrong (>= 0.30), and
#                     cached / basic (>= 50)
#   non-2xx           wrk's "Non-2xx or 3xx responses" (for wrong, all of them are expected
#                     to be 401: "all"); sock err = connect + read + write + timeout errors
#   nginx/gate/slapd  CPU us per request: utime+stime delta (/proc/PID/stat) of the nginx
#                     workers, of the Gatehouse asked (G1 or G2) and of slapd, summed over the
#                     rounds, divided by the requests wrk completed
#   new up/1k         nginx -> Gatehouse connections opened and closed per 1000 requests
#                     (sockets that entered TIME-WAIT on the Gatehouse port during the run;
#                     0 = the upstream keepalive pool was always reused)
#   verif             decisions not answered from the cache (bcrypt 10 or LDAP), counted in
#                     the audit lines written during the rounds (LOG_LEVEL info or lower)
set -u

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../lib/common.sh
. "$REPO/Tests/lib/common.sh"
# shellcheck source=../lib/bench.sh
. "$REPO/Tests/lib/bench.sh"
gatehouse_bin .build/release/gatehouse
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2s}
TIMING_SAMPLES=${TIMING_SAMPLES:-15}
NGINX_WORKERS=${NGINX_WORKERS:-2}
LOG_LEVEL=${LOG_LEVEL:-info}
FILL_USERS=${FILL_USERS:-10000}
THREADS=2
case $LOG_LEVEL in trace | debug | info) AUDIT=1 ;; *) AUDIT=0 ;; esac # audit lines are info
CONNS=32
SCENARIOS="p0 basic cached wrong ldap"

# not a test: no ok/not ok counts, a failed set-up is said on stderr
die() { echo "fast-path-bench: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
need_tools nginx wrk curl python3 htpasswd ss slapd ldapwhoami ldapadd setsid base64
[ -x "$GATEHOUSE_BIN" ] || die "no gatehouse binary at $GATEHOUSE_BIN (set GATEHOUSE_BIN)"
case $ROUNDS in '' | *[!0-9]* | 0) die "ROUNDS must be a positive integer" ;; esac
case $TIMING_SAMPLES in '' | *[!0-9]* | 0) die "TIMING_SAMPLES must be a positive integer" ;; esac
case $FILL_USERS in '' | *[!0-9]* | 0) die "FILL_USERS must be a positive integer" ;; esac

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 2048 ] || die "ulimit -n is $(ulimit -n); need 2048+"

NGX_PID= G1_PID= G2_PID= G3_PID= LDAP_DIR=
cleanup() {
    stop_all "$NGX_PID" "$G1_PID" "$G2_PID" "$G3_PID"
    [ -n "$LDAP_DIR" ] && slapd_fixture stop
    remove_tmp "# kept"
}
make_tmp bench
chmod 755 "$T"

mkdir -p "$T"/{logs,wrk,g1,g2,g3} || die "mkdir"
N=$T/nginx
nginx_dir "$N"
copy_gatehouse
HZ=$(getconf CLK_TCK)

echo "# fast-path-bench: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "# gatehouse: $GATEHOUSE_BIN ($(stat -c %y "$GATEHOUSE_BIN" | cut -d. -f1)); $(nginx -v 2>&1 | sed 's/^nginx version: //'); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
echo "# settings: DURATION=$DURATION ROUNDS=$ROUNDS WARMUP=$WARMUP wrk -t$THREADS -c$CONNS; nginx worker_processes=$NGINX_WORKERS; LOG_LEVEL=$LOG_LEVEL; ulimit -n $(ulimit -n)"

# ------------------------------------------------------------------ helpers
read -r P_N0 P_NB P_NG P_NL P_G1 P_G2 P_G3 < <(free_ports 7) || die "no free ports"

nginx_workers() { children "$NGX_PID"; }
# tw_snap PORT FILE: the TIME-WAIT sockets to PORT (closed first by the client, nginx) and from
# PORT (closed first by the server, Gatehouse), as "n|g LOCAL PEER" lines, sorted
tw_snap() {
    { ss -Htan state time-wait "( dport = :$1 )" 2>/dev/null | awk '{ print "n", $3, $4 }'
      ss -Htan state time-wait "( sport = :$1 )" 2>/dev/null | awk '{ print "g", $3, $4 }'; } | sort >"$2"
}
# tw_new BEFORE AFTER n|g: sockets that entered TIME-WAIT in between (they stay there 60 s)
tw_new() { comm -13 "$1" "$2" | grep -c "^$3 "; }
errlines() { wc -l <"$T/nginx/logs/error.log" 2>/dev/null || echo 0; }
decisions() { sleep 0.1; grep -c 'decision=' "$1"; } # audit lines land in batches every 50 ms

# ------------------------------------------------------------------ htpasswd files, slapd
BASIC_PW=basic-bench-pw BENCH_PW=bench-pw WRONG_PW=not-the-bench-pw
htpasswd -cbB -C 5 "$T/nginx/basic.htpasswd" bench "$BASIC_PW" >/dev/null 2>"$T/logs/htpasswd.log" ||
    die "htpasswd -B -C 5 failed: $(cat "$T/logs/htpasswd.log")"
chmod 644 "$T/nginx/basic.htpasswd"
printf '%s' "$BENCH_PW" | "$GH" hash --cost 10 bench >"$T/g1/htpasswd" 2>"$T/logs/hash.log" || die "gatehouse hash: $(cat "$T/logs/hash.log")"
grep -q '^bench:\$2[aby]\$10\$' "$T/g1/htpasswd" || die "G1 htpasswd is not bcrypt cost 10: $(cat "$T/g1/htpasswd")"
{ printf 'alice-pw' | "$GH" hash --cost 10 alice && printf 'mallory-pw' | "$GH" hash --cost 10 mallory; } >"$T/g3/htpasswd" 2>>"$T/logs/hash.log" ||
    die "gatehouse hash (G3)"

LDAP_DIR=$T/ldap
t0=$(now)
slapd_fixture start || { tail -20 "$T/logs/slapd-fixture.log" >&2; die "slapd fixture did not start"; }
SLAPD_PID=$(ldap_env SLAPD_PID)
echo "# slapd: $(ldap_env LDAPS_URL) pid $SLAPD_PID (fixture start $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s)"

# ------------------------------------------------------------------ Gatehouse configurations
POLICY=$(registry_policy_yaml '{users: ["*"], allow: [pull]}')
cat >"$T/g1/gatehouse.yaml" <<EOF
listen: 127.0.0.1:$P_G1
realm: Registry
trusted_proxies: [127.0.0.1/32]
default_policy: registry
backends:
  - {name: local, type: htpasswd, file: $T/g1/htpasswd}
cache: {ttl: 1h, negative_ttl: 10s, stale_grace: 15m, max_entries: 100000}
lockout: {max_failures: 0}
log: {level: $LOG_LEVEL, format: text}
$POLICY
EOF
cat >"$T/g2/gatehouse.yaml" <<EOF
listen: 127.0.0.1:$P_G2
realm: Registry
trusted_proxies: [127.0.0.1/32]
default_policy: registry
backends:
$(ldap_backend_yaml)
cache: {max_entries: 0}
log: {level: $LOG_LEVEL, format: text}
$POLICY
EOF
cat >"$T/g3/gatehouse.yaml" <<EOF
listen: 127.0.0.1:$P_G3
realm: Registry
trusted_proxies: [127.0.0.1/32]
default_policy: registry
backends:
  - {name: local, type: htpasswd, file: $T/g3/htpasswd}
cache: {max_entries: 0}
lockout: {max_failures: 3, window: 10m}
log: {level: info, format: text}
$POLICY
EOF
for g in g1 g2 g3; do
    "$GH" config check --config "$T/$g/gatehouse.yaml" >"$T/logs/$g-config-check.log" 2>&1 ||
        { cat "$T/logs/$g-config-check.log" >&2; die "gatehouse config check ($g)"; }
done
"$GH" serve --config "$T/g1/gatehouse.yaml" >>"$T/logs/g1.log" 2>&1 &
G1_PID=$!
"$GH" serve --config "$T/g2/gatehouse.yaml" >>"$T/logs/g2.log" 2>&1 &
G2_PID=$!
wait_for 10 http_answers "http://127.0.0.1:$P_G1/readyz" 200 || { tail "$T/logs/g1.log" >&2; die "G1 did not become ready"; }
wait_for 10 http_answers "http://127.0.0.1:$P_G2/readyz" 200 || { tail "$T/logs/g2.log" >&2; die "G2 (ldap) did not become ready"; }
RSS_START=$(vm "$G1_PID" VmRSS)

# ------------------------------------------------------------------ nginx
# kit_copy_exactly FILE DST SED N: copy nginx/FILE changing exactly N lines, all of them upstream/server/proxy_pass
kit_copy_exactly() {
    kit_copy "$1" "$2" "$3"
    kit_only "$4" 'upstream|server|proxy_pass' ||
        { printf '%s\n' "$KIT_DIFF" >&2; die "copy of nginx/$1: expected $4 changed line(s), got $KIT_CHANGED"; }
}
kit_copy_exactly gatehouse-upstream.conf "$N/conf.d/gatehouse-upstream.conf" "s#server 127\.0\.0\.1:9180;#server 127.0.0.1:$P_G1;#" 1
kit_copy_exactly gatehouse-upstream.conf "$N/conf.d/gatehouse-upstream-ldap.conf" "
s#^upstream gatehouse {#upstream gatehouse_ldap {#
s#server 127\.0\.0\.1:9180;#server 127.0.0.1:$P_G2;#" 2
kit_copy_exactly gatehouse-auth.conf "$N/conf.d/gatehouse-auth-ldap.conf" "s#proxy_pass http://gatehouse/#proxy_pass http://gatehouse_ldap/#" 1

OK_LOCATION='location @ok { return 200 "ok"; }'
nginx_conf "$N" "$(id -un) $(id -gn)" "$NGINX_WORKERS" 4096 error "worker_rlimit_nofile 16384" <<EOF
    default_type text/plain;
    access_log off;
    keepalive_requests 1000000;
    root $N/html;

    include $N/conf.d/gatehouse-upstream.conf;        # nginx/gatehouse-upstream.conf, address changed
    include $N/conf.d/gatehouse-upstream-ldap.conf;   # the same, upstream gatehouse_ldap

    # p0: no authentication
    server {
        listen 127.0.0.1:$P_N0;
        location /v2/ { try_files /.none @ok; }
        $OK_LOCATION
    }
    # basic: nginx auth_basic, bcrypt cost 5
    server {
        listen 127.0.0.1:$P_NB;
        location /v2/ {
            auth_basic "Registry";
            auth_basic_user_file $N/basic.htpasswd;
            try_files /.none @ok;
        }
        $OK_LOCATION
    }
    # cached, wrong: Gatehouse G1 (htpasswd) through the shipped snippets
    server {
        listen 127.0.0.1:$P_NG;
        set \$gatehouse_policy registry;
        include $KIT/gatehouse-auth.conf;
        location /v2/ {
            auth_request /_gatehouse_auth;
            include $KIT/gatehouse-identity.conf;
            try_files /.none @ok;
        }
        $OK_LOCATION
    }
    # ldap: Gatehouse G2 (ldap, no cache)
    server {
        listen 127.0.0.1:$P_NL;
        set \$gatehouse_policy registry;
        include $N/conf.d/gatehouse-auth-ldap.conf;   # nginx/gatehouse-auth.conf, proxy_pass to gatehouse_ldap
        location /v2/ {
            auth_request /_gatehouse_auth;
            include $KIT/gatehouse-identity.conf;
            try_files /.none @ok;
        }
        $OK_LOCATION
    }
EOF
nginx_check "$N" || { printf '%s\n' "$NGINX_OUT" >&2; die "nginx -t"; }
nginx_start "$N"
NGX_PID=$!
wait_for 10 http_answers "http://127.0.0.1:$P_N0/v2/" 200 || { tail "$N/logs/error.log" >&2; die "nginx did not start"; }
echo "# ports: nginx p0=$P_N0 basic=$P_NB gatehouse=$P_NG ldap=$P_NL; G1=$P_G1 G2=$P_G2 G3=$P_G3; nginx workers: $(nginx_workers)"

# ------------------------------------------------------------------ scenarios
declare -A URL CREDS EXPECT
URL[p0]=http://127.0.0.1:$P_N0/v2/
URL[basic]=http://127.0.0.1:$P_NB/v2/
URL[cached]=http://127.0.0.1:$P_NG/v2/
URL[wrong]=http://127.0.0.1:$P_NG/v2/
URL[ldap]=http://127.0.0.1:$P_NL/v2/
CREDS[p0]=
CREDS[basic]=bench:$BASIC_PW
CREDS[cached]=bench:$BENCH_PW
CREDS[wrong]=bench:$WRONG_PW
CREDS[ldap]=alice:alice-pw
EXPECT=([p0]=200 [basic]=200 [cached]=200 [wrong]=401 [ldap]=200)

# Preflight: the right answers, authentication really runs, one subrequest per request.
for s in basic cached ldap; do
    code=$(status "${URL[$s]}")
    [ "$code" = 401 ] || die "preflight: $s without credentials answered $code, not 401 (authentication skipped?)"
done
[ "$(status "${URL[basic]}" "bench:$WRONG_PW")" = 401 ] || die "preflight: auth_basic accepted a wrong password"
for s in $SCENARIOS; do
    code=$(status "${URL[$s]}" "${CREDS[$s]}")
    [ "$code" = "${EXPECT[$s]}" ] || die "preflight: $s answered $code, expected ${EXPECT[$s]} (see $T/logs, KEEP_TMP=1)"
done
d0=$(decisions "$T/logs/g1.log")
for _ in 1 2 3 4 5; do status "${URL[cached]}" "${CREDS[cached]}" >/dev/null; done
d1=$(decisions "$T/logs/g1.log")
[ "$AUDIT" = 0 ] || [ $((d1 - d0)) = 5 ] || die "preflight: 5 requests through nginx made $((d1 - d0)) Gatehouse decisions"
echo "# preflight: 401 without credentials on basic/cached/ldap; expected statuses; 1 auth subrequest per request"

# Lua: wrk's summary in one parseable line; the status-counting variant counts with
# Tests/lib/wrk-statuses.lua.
cp "$REPO/Tests/lib/wrk-summary.lua" "$T/summary.lua"
{ printf 'dofile("%s")\n' "$REPO/Tests/lib/wrk-statuses.lua"; cat <<'EOF'; } >"$T/status.lua"
done = function(summary, latency, requests)
  local e = summary.errors
  local a, b, c = 0, 0, 0
  for status, n in pairs(sum_threads("statuses")) do
    if status >= 200 and status < 300 then a = a + n
    elseif status == 401 then b = b + n
    else c = c + n end
  end
  io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%.0f p99_us=%.0f non2xx=%d connect=%d read=%d write=%d timeout=%d s2xx=%d s401=%d sother=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect, e.read, e.write, e.timeout, a, b, c))
end
EOF

RESULTS=$T/results.tsv
printf 'scenario\tround\trequests\tduration_us\tp50_us\tp99_us\tnon2xx\tconnect\tread\twrite\ttimeout\tnginx_ticks\tgate_ticks\tslapd_ticks\tclosed_nginx\tclosed_gate\terrlog\tdecisions\tverifications\ts2xx\ts401\tsother\n' >"$RESULTS"
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
# run SCENARIO ROUND CONNECTIONS DURATION LUA: one wrk run, with the CPU ticks, upstream
# connections closed, nginx error.log lines and Gatehouse audit lines during it
run() {
    local s=$1 round=$2 c=$3 d=$4 lua=$5 gpids= spids= gport= glog= out line hdr=()
    case $s in
    cached | wrong | c256) gpids=$G1_PID gport=$P_G1 glog=$T/logs/g1.log ;;
    ldap) gpids=$G2_PID spids=$SLAPD_PID gport=$P_G2 glog=$T/logs/g2.log ;;
    esac
    [ -n "${CREDS[$s]}" ] && hdr=(-H "Authorization: Basic $(b64 "${CREDS[$s]}")")
    local workers n0 g0 s0 e0 n1 g1 s1 e1 off=0 dg=- ds=- cn=- cg=- dec=- ver=-
    workers=$(nginx_workers)
    [ -n "$gport" ] && tw_snap "$gport" "$T/tw.before"
    [ -n "$glog" ] && off=$(stat -c %s "$glog")
    # shellcheck disable=SC2086 # pid lists
    { n0=$(ticks $workers); g0=$(ticks $gpids); s0=$(ticks $spids); }
    e0=$(errlines)
    out=$T/wrk/$s.r$round.txt
    wrk -t"$THREADS" -c"$c" -d"$d" -s "$lua" "${hdr[@]}" "${URL[$s]}" >"$out" 2>&1
    # shellcheck disable=SC2086
    { n1=$(ticks $workers); g1=$(ticks $gpids); s1=$(ticks $spids); }
    e1=$(errlines)
    line=$(sed -n 's/^BENCH //p' "$out")
    [ -n "$line" ] || { cat "$out" >&2; die "wrk gave no summary for $s (round $round)"; }
    if [ -n "$gport" ]; then
        tw_snap "$gport" "$T/tw.after"
        cn=$(tw_new "$T/tw.before" "$T/tw.after" n)
        cg=$(tw_new "$T/tw.before" "$T/tw.after" g)
        dg=$((g1 - g0))
    fi
    [ -n "$spids" ] && ds=$((s1 - s0))
    [ -n "$glog" ] && [ "$AUDIT" = 1 ] && read -r dec ver < <(audit_counts "$glog" "$off")
    printf '%s\t' "$s" "$round" \
        "$(kv requests "$line")" "$(kv duration_us "$line")" "$(kv p50_us "$line")" "$(kv p99_us "$line")" \
        "$(kv non2xx "$line")" "$(kv connect "$line")" "$(kv read "$line")" "$(kv write "$line")" "$(kv timeout "$line")" \
        "$((n1 - n0))" "$dg" "$ds" "$cn" "$cg" "$((e1 - e0))" "$dec" "$ver" \
        "$(kv s2xx "$line")" "$(kv s401 "$line")" >>"$RESULTS"
    printf '%s\n' "$(kv sother "$line")" >>"$RESULTS"
    tail -1 "$RESULTS" | awk -F'\t' -v hz="$HZ" '
        function us(t) { return (t == "-" || $3 == 0) ? "-" : sprintf("%.0f", t * 1e6 / hz / $3) }
        {
            printf "round %-2s %-6s %7.0f req/s  p50 %6.2f ms  p99 %7.2f ms  non-2xx %-6s sock-err %-3d CPU us/req nginx %s gate %s slapd %s  upstream conns closed nginx/gate %s/%s  decisions %s verifications %s  error.log +%s\n",
                $2, $1, $3 / ($4 / 1e6), $5 / 1000, $6 / 1000, $7, $8 + $9 + $10 + $11, us($12), us($13), us($14), $15, $16, $18, $19, $17
        }'
}

echo "# warm-up: $WARMUP per scenario"
for s in $SCENARIOS; do run "$s" 0 "$CONNS" "$WARMUP" "$T/summary.lua" >/dev/null; done
for r in $(seq 1 "$ROUNDS"); do
    for s in $SCENARIOS; do run "$s" "$r" "$CONNS" "$DURATION" "$T/summary.lua"; done
done
echo "# idle keep-alive connections nginx -> G1 after the rounds: $(ss -Htn state established "( dport = :$P_G1 )" | wc -l)"

# ------------------------------------------------------------------ 256 connections
URL[c256]=${URL[cached]}
CREDS[c256]=${CREDS[cached]}
echo "# 256 connections, cached success (wrk -t$THREADS -c256 -d$DURATION, statuses counted in lua)"
run c256 1 256 "$DURATION" "$T/status.lua"
n_err=$(awk -F'\t' 'END { print $17 }' "$RESULTS")
if [ "$n_err" -gt 0 ]; then
    echo "# nginx error.log during the 256-connection run: $n_err line(s), the first 3:"
    tail -n "$n_err" "$N/logs/error.log" | head -3 | sed 's/^/#   /'
else
    echo "# nginx error.log during the 256-connection run: no lines"
fi
echo "# idle keep-alive connections nginx -> G1 after c256: $(ss -Htn state established "( dport = :$P_G1 )" | wc -l)"

HWM_LOAD=$(vm "$G1_PID" VmHWM)
RSS_LOAD=$(vm "$G1_PID" VmRSS)

# ------------------------------------------------------------------ memory with FILL_USERS cached identities
echo "# memory: adding $FILL_USERS {SHA} users to G1's htpasswd and caching one success each"
python3 - "$T/g1/htpasswd" "$T/g1/htpasswd.new" "$T/fill-auth.txt" "$FILL_USERS" <<'EOF'
import base64, hashlib, sys
src, dst, auth, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(src) as f:
    lines = f.read()
with open(dst, "w") as out, open(auth, "w") as a:
    out.write(lines)
    for i in range(1, n + 1):
        user, pw = "fill%05d" % i, "fill-pw-%05d" % i
        out.write("%s:{SHA}%s\n" % (user, base64.b64encode(hashlib.sha1(pw.encode()).digest()).decode()))
        a.write(base64.b64encode(("%s:%s" % (user, pw)).encode()).decode() + "\n")
EOF
[ -s "$T/fill-auth.txt" ] || die "could not write the fill users"
mv "$T/g1/htpasswd.new" "$T/g1/htpasswd"
LAST=$(printf 'fill%05d:fill-pw-%05d' "$FILL_USERS" "$FILL_USERS")
reloaded=0
for _ in $(seq 1 100); do
    [ "$(status "http://127.0.0.1:$P_G1/auth" "$LAST" -H 'X-Original-URI: /v2/')" = 200 ] && { reloaded=1; break; }
    sleep 0.1
done
[ "$reloaded" = 1 ] || die "G1 did not pick up the new htpasswd within 10 s"
sleep 1
RSS_USERS=$(vm "$G1_PID" VmRSS)
cat >"$T/fill.lua" <<'EOF'
local auths = {}
local i = 0
init = function(args)
  for line in io.lines(os.getenv("FILL_AUTH")) do auths[#auths + 1] = line end
end
request = function()
  i = i + 1
  local k = i
  if k > #auths then k = #auths end   -- after one pass: the last user again (a cache hit)
  return wrk.format("GET", "/auth", { ["Authorization"] = "Basic " .. auths[k], ["X-Original-URI"] = "/v2/" })
end
EOF
cat "$T/summary.lua" >>"$T/fill.lua"
fill_ok=0
t0=$(now)
for attempt in 1 2 3 4 5 6 7 8; do
    FILL_AUTH=$T/fill-auth.txt wrk -t1 -c16 -d3s -s "$T/fill.lua" "http://127.0.0.1:$P_G1/auth" >"$T/wrk/fill.$attempt.txt" 2>&1
    line=$(sed -n 's/^BENCH //p' "$T/wrk/fill.$attempt.txt")
    [ "$(kv non2xx "$line")" = 0 ] || { cat "$T/wrk/fill.$attempt.txt" >&2; die "cache fill: non-2xx answers"; }
    cached=0
    # (the last user is already cached by the reload probe above: check the one before it)
    for i in 1 $(((FILL_USERS + 1) / 2)) $((FILL_USERS > 1 ? FILL_USERS - 1 : 1)); do
        curl -s --max-time 5 -u "$(printf 'fill%05d:fill-pw-%05d' "$i" "$i")" -H 'X-Original-URI: /v2/' \
            "http://127.0.0.1:$P_G1/auth?explain" | grep -q '"cached" : true' && cached=$((cached + 1))
    done
    [ "$cached" = 3 ] && [ "$(kv requests "$line")" -gt "$((FILL_USERS + 16))" ] && { fill_ok=1; break; }
done
FILL_S=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
[ "$fill_ok" = 1 ] || echo "# WARNING: the cache fill could not be confirmed (users first, middle, last-but-one cached: $cached/3)"
sleep 1
RSS_FILLED=$(vm "$G1_PID" VmRSS)
HWM_END=$(vm "$G1_PID" VmHWM)
echo "# memory: G1 VmRSS start $(mb "$RSS_START") MB; after the load $(mb "$RSS_LOAD") MB (VmHWM $(mb "$HWM_LOAD") MB); +$FILL_USERS users $(mb "$RSS_USERS") MB; +$FILL_USERS cached $(mb "$RSS_FILLED") MB (fill $FILL_S s, $attempt wrk run(s)); VmHWM at the end $(mb "$HWM_END") MB"

# ------------------------------------------------------------------ timing equalisation (G3, no cache)
echo "# timing: G3 directly (bcrypt 10, no cache, lockout 3 in 10m), $TIMING_SAMPLES interleaved curl samples per kind"
"$GH" serve --config "$T/g3/gatehouse.yaml" >>"$T/logs/g3.log" 2>&1 &
G3_PID=$!
wait_for 10 http_answers "http://127.0.0.1:$P_G3/healthz" 200 || { tail "$T/logs/g3.log" >&2; die "G3 did not start"; }
G3=http://127.0.0.1:$P_G3/auth
# sample KIND N USER:PW IP: one timed request, recorded as "KIND IP STATUS SECONDS"
sample() {
    printf '%s %s %s\n' "$1" "$4" "$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 30 -u "$3" \
        -H 'X-Original-URI: /v2/' -H "X-Real-IP: $4" "$G3")" >>"$T/timing.txt"
}
: >"$T/timing.txt"
# three distinct wrong passwords from one address lock the (mallory, 10.9.0.1) pair
for i in 1 2 3; do sample trip "$i" "mallory:wrong$i" 10.9.0.1; done
for i in 0 $(seq 1 "$TIMING_SAMPLES"); do # sample 0 is the warm-up
    sample unknown "$i" "ghost$i:some-pw" "10.1.$((i / 250)).$((i % 250 + 1))"
    sample wrong "$i" alice:wrong-pw "10.2.$((i / 250)).$((i % 250 + 1))"
    sample right "$i" alice:alice-pw "10.3.$((i / 250)).$((i % 250 + 1))"
    sample locked "$i" mallory:mallory-pw 10.9.0.1
done
kill -TERM "$G3_PID" 2>/dev/null; wait "$G3_PID" 2>/dev/null; G3_PID=
TIMING=$(python3 - "$T/timing.txt" "$T/logs/g3.log" <<'EOF'
import re, statistics, sys
samples = [l.split() for l in open(sys.argv[1]) if l.strip()]
audit = {}
for line in open(sys.argv[2], errors="replace"):
    m = re.search(r"client=(\S+) decision=(\S+)(.*?) latency_ms=([0-9.]+)", line)
    if m:
        audit[m.group(1)] = (m.group(2), m.group(3), float(m.group(4)))
want = {"unknown": ("401", "is in no backend"), "wrong": ("401", "wrong password"),
        "right": ("200", None), "locked": ("401", "locked out")}
out = []
for kind in ("unknown", "wrong", "right", "locked"):
    rows = [s for s in samples if s[0] == kind][1:]  # drop the warm-up
    code, text = want[kind]
    bad = 0
    server = []
    for _, ip, status, secs in rows:
        a = audit.get(ip)
        if status != code or a is None or (text and (text not in a[1] or (kind != "locked" and "locked" in a[1]))):
            bad += 1
        if a:
            server.append(a[2])
    med = statistics.median(float(r[3]) * 1000 for r in rows)
    smed = statistics.median(server) if server else float("nan")
    out.append("%s %.1f / %.1f%s" % (kind, med, smed, "" if bad == 0 else " (%d NOT OF THAT KIND)" % bad))
print(", ".join(out))
EOF
)
echo "# timing (median ms, curl time_total / Gatehouse latency_ms): $TIMING"

# ------------------------------------------------------------------ summary
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$RESULTS" "$HZ" "$DURATION" "$THREADS" "$CONNS" <<'EOF'
import csv, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1]), delimiter="\t") if r["round"] != "0"]
hz, duration, threads, conns = float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
med = statistics.median
def rps(r): return int(r["requests"]) / (int(r["duration_us"]) / 1e6)
def errs(r): return sum(int(r[k]) for k in ("connect", "read", "write", "timeout"))
by = {}
for r in rows: by.setdefault(r["scenario"], []).append(r)
p0 = {r["round"]: rps(r) for r in by.get("p0", [])}
basic = {r["round"]: rps(r) for r in by.get("basic", [])}
def ratio(s, base):
    vals = [rps(r) / base[r["round"]] for r in by.get(s, []) if base.get(r["round"])]
    return med(vals) if vals else float("nan")
def total(s, col):
    rs = by[s]
    return None if any(r[col] in ("-", "") for r in rs) else sum(int(r[col]) for r in rs)
def per_req(s, col, scale):
    t, n = total(s, col), total(s, "requests")
    return "-" if t is None or not n else "%.0f" % (t * scale / n)
targets = {"cached": 0.60, "wrong": 0.30}
cols = ("case", "req/s", "xP0", "p50 ms", "p99 ms", "non-2xx", "sock err", "nginx", "gate", "slapd", "new up/1k", "verif", "target")
fmt = "| %-6s | %7s | %5s | %6s | %8s | %7s | %8s | %5s | %5s | %5s | %9s | %5s | %-17s |"
print()
print("SUMMARY: medians over %d round(s) of wrk -t%s -c%s -d%s (c256: one run with -c256)" % (len(p0), threads, conns, duration))
print("nginx/gate/slapd = CPU us per request; new up/1k = upstream connections opened and closed per 1000")
print("requests; verif = bcrypt/LDAP verifications (cache misses) in all rounds; non-2xx, sock err = sums")
print(fmt % cols)
print(fmt % tuple("-" * len(c) if len(c) > 3 else "---" for c in cols))
for s in ["p0", "basic", "cached", "wrong", "ldap", "c256"]:
    if s not in by: continue
    rs = by[s]
    x = "%.3f" % ratio(s, p0) if s != "c256" else "-"
    t = ""
    if s in targets:
        t = ">=%.2fxP0 %s" % (targets[s], "met" if ratio(s, p0) >= targets[s] else "NOT MET")
    non2xx = sum(int(r["non2xx"]) for r in rs)
    closed = "-" if total(s, "closed_nginx") is None else \
        "%.1f" % ((total(s, "closed_nginx") + total(s, "closed_gate")) * 1000 / max(1, total(s, "requests")))
    v = total(s, "verifications")
    print(fmt % (s, "%.0f" % med([rps(r) for r in rs]), x,
                 "%.2f" % (med([int(r["p50_us"]) for r in rs]) / 1000), "%.2f" % (med([int(r["p99_us"]) for r in rs]) / 1000),
                 ("all" if s == "wrong" and non2xx == total(s, "requests") else str(non2xx)), str(sum(errs(r) for r in rs)),
                 per_req(s, "nginx_ticks", 1e6 / hz), per_req(s, "gate_ticks", 1e6 / hz), per_req(s, "slapd_ticks", 1e6 / hz),
                 closed, "-" if v is None else str(v), t))
if "cached" in by and "basic" in by:
    v = ratio("cached", basic)
    print("cached / basic (auth_basic, bcrypt cost 5) = %.1fx  (target >= 50x: %s)" % (v, "met" if v >= 50 else "NOT MET"))
if "c256" in by:
    c = by["c256"][0]
    print("c256: %s requests, socket errors %d (connect %s, read %s, write %s, timeout %s), statuses 2xx %s, 401 %s, other %s, nginx error.log +%s"
          % (c["requests"], errs(c), c["connect"], c["read"], c["write"], c["timeout"], c["s2xx"], c["s401"], c["sother"], c["errlog"]))
EOF
cat <<EOF
G1 (htpasswd) memory: VmRSS $(mb "$RSS_START") MB at start, VmHWM $(mb "$HWM_LOAD") MB after the load; +$FILL_USERS users $(mb "$RSS_USERS") MB; +$FILL_USERS cached identities $(mb "$RSS_FILLED") MB ($(awk -v a="$RSS_USERS" -v b="$RSS_FILLED" -v n="$FILL_USERS" 'BEGIN { printf "%+.0f", (b - a) * 1024 / n }') bytes/entry)$([ "$fill_ok" = 1 ] || echo " UNCONFIRMED")
timing (G3, bcrypt 10, no cache), median ms curl / server over $TIMING_SAMPLES samples: $TIMING
EOF
