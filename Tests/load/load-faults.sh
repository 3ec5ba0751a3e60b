#!/usr/bin/env bash
# Load and faults through real nginx: wrk -> nginx (the shipped auth_request snippet) ->
# Gatehouse (htpasswd + LDAP backends) -> a throwaway slapd, all on loopback, nothing
# written outside a temp directory.
#
# For DURATION seconds, 256 connections in seven classes, one wrk process each with its own
# Lua script (Tests/load/lua/), which counts every status and, per 100 ms, every status that
# is not the class's normal one:
#
#   class           conns  who / what                                     normal  allowed in the outage
#   cached-pull       64   htpasswd users, right password, GET (pull)     200     -
#   wrong-password    32   htpasswd users, wrong passwords                401     -
#   forbidden-push    32   read-only htpasswd user, PUT manifest (push)   403     -
#   ldap-cold         64   a different LDAP user every request, GET       200     500
#   ldap-wrong        24   LDAP users, wrong passwords                    401     500
#   ldap-warm         24   3 LDAP users, right password, GET              200     - (stale_grace)
#   ldap-forbidden    16   LDAP user in no group, PUT manifest            403     - (stale_grace)
#
# A 200 in a class whose normal status is 401 or 403 is a WRONG ANSWER.
#
# Faults, at fractions of DURATION: 25 % slapd stopped; 37.5 % the configuration file edited
# (must be refused: its LDAP backend cannot bind); 50 % slapd started again on the same ports
# (then a cold LDAP request through nginx every 100 ms until it gets 200: the recovery time);
# 75 % the configuration file edited again (the realm; the file watcher should reload within
# 2 s), then SIGHUP. README.md beside this file explains the choices and the tolerances.
#
# Needs (Debian packages): nginx-light (or nginx), wrk, slapd, ldap-utils, openssl, curl,
# python3, iproute2 (ss). Run as root (nginx's `user` directive).
#
# Usage:   Tests/load/load-faults.sh
# Env:     DURATION=60       seconds of load (CI: DURATION=20, about 30 s in all)
#          GATEHOUSE_BIN     the gatehouse binary (default .build/debug/gatehouse;
#                            .build/release/gatehouse for release figures)
#          COLD_USERS=2000   LDAP users the ldap-cold class cycles through
#          LOCKOUT_MAX_FAILURES=0   lockout.max_failures (0 = off; see README.md here)
#          WRK_TIMEOUT=5s    a request slower than this counts as a timeout (an error)
#          KEEP_TMP=1        keep the temp directory (logs, configs, wrk output)
#
# Output: `ok - ...` / `not ok - ...` lines, `# ...` figures, then `N passed, M failed`;
# exit status 1 on a wrong answer, an unexpected status, a socket error or timeout, a 5xx
# outside the outage window, Gatehouse dying, or descriptors / threads not coming back.
set -u

REPO=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib/common.sh
. "$REPO/Tests/lib/common.sh"
HERE=$REPO/Tests/load
gatehouse_bin .build/debug/gatehouse
DURATION=${DURATION:-60}
COLD_USERS=${COLD_USERS:-2000}
LOCKOUT_MAX_FAILURES=${LOCKOUT_MAX_FAILURES:-0}
WRK_TIMEOUT=${WRK_TIMEOUT:-5s}
PROBE_USERS=400

# class connections normal-status
CLASSES="cached-pull:64:200 wrong-password:32:401 forbidden-push:32:403 ldap-cold:64:200 ldap-wrong:24:401 ldap-warm:24:200 ldap-forbidden:16:403"
# 5xx tolerated only in these classes, and only inside the outage window
OUTAGE_CLASSES="ldap-cold ldap-wrong"
# A 200 is a wrong answer in these classes
DENY_CLASSES="wrong-password forbidden-push ldap-wrong ldap-forbidden"
# The outage window runs from the moment slapd is told to stop until the first cold LDAP
# request through nginx succeeds again, plus this many seconds (see README.md)
WINDOW_TOLERANCE=1.0

in_list() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }

case $DURATION in '' | *[!0-9]*) die "DURATION must be whole seconds" ;; esac
[ "$DURATION" -ge 16 ] || die "DURATION must be at least 16 seconds"
need_tools nginx wrk slapd ldapadd ldapwhoami setsid openssl curl python3 ss
[ -x "$GATEHOUSE_BIN" ] || die "no gatehouse binary at $GATEHOUSE_BIN (set GATEHOUSE_BIN)"
[ "$(id -u)" = 0 ] || die "run as root"
START=$(now)

GATE_PID= NGX_PID= SAMPLER_PID= LDAP_DIR= WRK_PIDS=
cleanup() {
    # shellcheck disable=SC2086 # WRK_PIDS is a list
    stop_all $WRK_PIDS $SAMPLER_PID $NGX_PID $GATE_PID
    [ -z "$LDAP_DIR" ] || slapd_fixture stop
    remove_tmp "# temp dir kept:"
}
make_tmp load
chmod 755 "$T"

mkdir -p "$T"/{logs,wrk} || die "mkdir"
# A binary younger than 10 s may still be being linked: wait (up to 2 min) before copying it.
for _ in $(seq 1 120); do
    [ $(($(date +%s) - $(stat -c %Y "$GATEHOUSE_BIN"))) -ge 10 ] && break
    sleep 1
done
copy_gatehouse

read -r P_GATE P_NGX < <(free_ports 2) || die "no free ports"

# ---------------------------------------------------------------- machine
cpu_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }  # busy idle
echo "# machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg) before the test"
echo "# gatehouse: $GATEHOUSE_BIN ($(case $GATEHOUSE_BIN in */debug/*) echo debug build ;; */release/*) echo release build ;; *) echo build unknown ;; esac))"

# ---------------------------------------------------------------- slapd + load users
LDAP_DIR=$T/ldap
slapd_fixture start || { diag <"$T/logs/slapd-fixture.log"; die "slapd fixture did not start"; }
# Users load0001..loadNNNN (the ldap-cold class) and probe001..probe400 (recovery polls),
# in no group, password "pw-<uid>", {SSHA}. Added over the network with the root DN.
python3 - "$(ldap_env PEOPLE_DN)" "$COLD_USERS" "$PROBE_USERS" >"$T/load-users.ldif" <<'PY' || die "writing the load users"
import base64, hashlib, os, sys
people, cold, probes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = ["load%04d" % i for i in range(1, cold + 1)] + ["probe%03d" % i for i in range(1, probes + 1)]
for uid in names:
    salt = os.urandom(8)
    digest = hashlib.sha1(("pw-" + uid).encode() + salt).digest()
    print("dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: Load\nuserPassword: {SSHA}%s\n"
          % (uid, people, uid, uid, base64.b64encode(digest + salt).decode()))
PY
t0=$(now)
LDAPNOINIT=1 ldapadd -x -H "$(ldap_env LDAP_URL)" -D "$(ldap_env ROOT_DN)" -w "$(ldap_env ROOT_PASSWORD)" \
    -f "$T/load-users.ldif" >"$T/logs/ldapadd.log" 2>&1 || { diag <"$T/logs/ldapadd.log"; die "ldapadd of the load users"; }
echo "# slapd at $(ldap_env LDAPS_URL); added $COLD_USERS load users and $PROBE_USERS probe users in $(elapsed "$t0" "$(now)")s"
SLAPD_PID=$(cat "$LDAP_DIR/slapd.pid")

# ---------------------------------------------------------------- gatehouse
PW_READER=reader-load-pw PW_PUSHER=pusher-load-pw
export PW_READER PW_PUSHER COLD_USERS
{
    printf '%s' "$PW_READER" | "$GH" hash --cost 5 reader &&
    printf '%s' "$PW_PUSHER" | "$GH" hash --cost 5 pusher
} >"$T/htpasswd" 2>"$T/logs/hash.log" || { diag <"$T/logs/hash.log"; die "gatehouse hash"; }
printf 'pushers: pusher\n' >"$T/htgroups"
# write_config REALM: the configuration (the reload changes only the realm)
write_config() {
    cat >"$T/gatehouse.yaml.tmp" <<EOF
# Tests/load/load-faults.sh
listen: 127.0.0.1:$P_GATE
realm: $1
trusted_proxies: [127.0.0.1/32]
default_policy: registry
# ttl 2s: the ldap-warm users are re-verified against slapd every 2 s, so the outage reaches
# them and stale_grace (the default 15m) has to answer. max_entries 256: the ldap-cold class
# cycles through $COLD_USERS users, so every one of its verifications misses (LRU) while the
# hot keys of the other classes stay cached.
cache: {ttl: 2s, negative_ttl: 10s, stale_grace: 15m, max_entries: 256}
# All load comes from one client address (127.0.0.1), so the per-address count would lock
# everyone out after max_failures wrong passwords: off (0) unless LOCKOUT_MAX_FAILURES says.
lockout: {max_failures: $LOCKOUT_MAX_FAILURES, window: 5m}
log: {level: info, format: text}
backends:
  - {name: local, type: htpasswd, file: $T/htpasswd, groups_file: $T/htgroups}
$(ldap_backend_yaml)
$(registry_policy_yaml)
EOF
    mv "$T/gatehouse.yaml.tmp" "$T/gatehouse.yaml"
}
write_config Registry
out=$("$GH" config check --config "$T/gatehouse.yaml" 2>&1) || { printf '%s\n' "$out" | diag; die "gatehouse config check"; }
GATE_LOG=$T/logs/gatehouse.log
"$GH" serve --config "$T/gatehouse.yaml" >>"$GATE_LOG" 2>&1 &
GATE_PID=$!
wait_for 10 http_answers "http://127.0.0.1:$P_GATE/healthz"
check_eq "Gatehouse is ready: /readyz answers 200 (htpasswd and slapd over ldaps)" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$P_GATE/readyz")"
gate_alive() { kill -0 "$GATE_PID" 2>/dev/null && [ "$(cat "/proc/$GATE_PID/comm" 2>/dev/null)" = gatehouse ]; }
gate_alive || { diag <"$GATE_LOG"; die "gatehouse did not start"; }

# ---------------------------------------------------------------- nginx
N=$T/nginx
nginx_dir "$N" empty
kit_copy gatehouse-upstream.conf "$N/conf.d/gatehouse-upstream.conf" "s#server 127\.0\.0\.1:9180;#server 127.0.0.1:$P_GATE;#"
check_eq "the copy of nginx/gatehouse-upstream.conf differs only in its server line (the port)" "1 server" \
    "$KIT_CHANGED $KIT_DIRECTIVES"
nginx_conf "$N" "$(id -un) $(id -gn)" 2 2048 warn "worker_rlimit_nofile 8192" <<EOF
    default_type application/octet-stream;
    access_log off;
    include conf.d/gatehouse-upstream.conf;

    server {
        listen 127.0.0.1:$P_NGX;
        root $N/empty;
        set \$gatehouse_policy registry;
        include snippets/gatehouse-auth.conf;

        # The registry's place: answered only after the access phase, where auth_request runs
        # (a plain 'return 200' here would answer in the rewrite phase and skip Gatehouse).
        location /v2/ {
            auth_request /_gatehouse_auth;
            include snippets/gatehouse-identity.conf;
            try_files /.none @registry;
        }
        location @registry {
            return 200;
        }
    }
EOF
if nginx_check "$N"; then
    ok "nginx -t accepts the configuration with snippets/gatehouse-auth.conf and snippets/gatehouse-identity.conf"
else
    printf '%s\n' "$NGINX_OUT" | diag
    die "nginx -t"
fi
nginx_start "$N"
NGX_PID=$!
wait_for 10 http_answers "http://127.0.0.1:$P_NGX/v2/"
U=http://127.0.0.1:$P_NGX
# status USER:PW METHOD PATH (USER:PW "-" = no credentials)
status() {
    local auth=()
    [ "$1" = - ] || auth=(-u "$1")
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${auth[@]}" -X "$2" "$U$3"
}
decisions() { sleep 0.1; grep -c 'decision=' "$GATE_LOG"; }  # lines land in batches every 50 ms
realm() { curl -s -D - -o /dev/null --max-time 5 "http://127.0.0.1:$P_GATE/auth" -H "X-Original-URI: /v2/" |
    tr -d '\r' | sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: Basic realm="\([^"]*\)".*/\1/p'; }
metrics() { curl -s --max-time 5 "http://127.0.0.1:$P_GATE/metrics"; }

# ---------------------------------------------------------------- sanity, one request each
M=/v2/team/app/manifests/latest
c0=$(decisions)
check_eq "no credentials: 401 (Gatehouse is asked: the protected location answers only after auth)" 401 "$(status - GET $M)"
check_eq "reader pulls (200), pushes (403); pusher pushes (200); wrong password (401)" "200 403 200 401" \
    "$(status "reader:$PW_READER" GET $M) $(status "reader:$PW_READER" PUT $M) $(status "pusher:$PW_PUSHER" PUT $M) $(status reader:nope GET $M)"
check_eq "LDAP: load0001 pulls (200), carol pushes (403), alice with a wrong password (401)" "200 403 401" \
    "$(status load0001:pw-load0001 GET $M) $(status carol:carol-pw PUT $M) $(status alice:nope GET $M)"
sleep 0.3
check_eq "nginx passes the client's method: Gatehouse logged reader's PUT as method=PUT, decision=deny" 1 \
    "$(tail -n +$((c0 + 1)) "$GATE_LOG" | grep 'decision=' | grep 'user=reader' | grep -c 'method=PUT .*decision=deny\|decision=deny.*method=PUT')"

# ---------------------------------------------------------------- warm-up, then "before"
# A few seconds of every class at low concurrency: nginx's keep-alive connections to
# Gatehouse, the LDAP pools and the allocator reach their working size before "before".
for spec in $CLASSES; do
    IFS=: read -r class conns normal <<<"$spec"
    COLD_OFFSET=1000 wrk -t1 -c2 -d3s --timeout "$WRK_TIMEOUT" -s "$HERE/lua/$class.lua" "$U/" >"$T/wrk/warmup-$class.out" 2>&1 &
    WRK_PIDS="$WRK_PIDS $!"
done
for pid in $WRK_PIDS; do wait "$pid"; done
WRK_PIDS=
grep -q '^LOAD class=cached-pull status=200 ' "$T/wrk/warmup-cached-pull.out" || { diag <"$T/wrk/warmup-cached-pull.out"; die "wrk warm-up"; }
sleep 1

fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
fd_sockets() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -lname 'socket:*' 2>/dev/null | wc -l; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
conns_to() { ss -Htn state established "( dport = :$1 )" 2>/dev/null | wc -l; }   # from anyone
conns_from_nginx() { ss -Htn state established "( dport = :$P_GATE )" 2>/dev/null | wc -l; }
snapshot() { # NAME: prints "fds sockets rss_kb hwm_kb threads ldap_conns nginx_conns"
    echo "$(fd_count "$GATE_PID") $(fd_sockets "$GATE_PID") $(status_kb "$GATE_PID" VmRSS) $(status_kb "$GATE_PID" VmHWM)" \
        "$(status_kb "$GATE_PID" Threads) $(conns_to "$(ldap_env LDAPS_PORT)") $(conns_from_nginx)"
}
read -r FD0 SOCK0 RSS0 HWM0 THR0 LDAPC0 NGXC0 <<<"$(snapshot)"
echo "# before (after a 3 s warm-up): Gatehouse $FD0 fds ($SOCK0 sockets), RSS $((RSS0 / 1024)) MiB, $THR0 threads; $LDAPC0 connections to slapd, $NGXC0 from nginx"

# ---------------------------------------------------------------- the run
nginx_pids() { echo "$NGX_PID $(cat /proc/"$NGX_PID"/task/*/children 2>/dev/null)"; }
cpu_sum() { local s=0 p; for p in "$@"; do s=$(awk -v a="$s" -v b="$(proc_cpu "$p")" 'BEGIN { print a + b }'); done; echo "$s"; }
# sampler: every second, time, Gatehouse fds, RSS (kB), threads, connections to slapd
(
    while :; do
        [ -d "/proc/$GATE_PID" ] || break
        echo "$(date +%s.%N) $(fd_count "$GATE_PID") $(status_kb "$GATE_PID" VmRSS) $(status_kb "$GATE_PID" Threads) $(conns_to "$(ldap_env LDAPS_PORT)")"
        sleep 1
    done
) >"$T/logs/samples.txt" 2>/dev/null &
SAMPLER_PID=$!

read -r BUSY0 IDLE0 <<<"$(cpu_jiffies)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
GCPU0=$(proc_cpu "$GATE_PID") NCPU0=$(cpu_sum $(nginx_pids)) SCPU0=$(proc_cpu "$SLAPD_PID")
E0=$(wc -l <"$N/logs/error.log")
metrics >"$T/logs/metrics-before.txt"
L0=$(wc -l <"$GATE_LOG")
T0=$(now)
for spec in $CLASSES; do
    IFS=: read -r class conns normal <<<"$spec"
    wrk -t1 -c"$conns" -d"${DURATION}s" --timeout "$WRK_TIMEOUT" -s "$HERE/lua/$class.lua" "$U/" >"$T/wrk/$class.out" 2>&1 &
    WRK_PIDS="$WRK_PIDS $!"
done
echo "# load: 256 connections in 7 wrk processes for ${DURATION}s, started at $(date -d "@${T0%.*}" +%T)"
at() { # FRACTION: sleep until T0 + FRACTION * DURATION
    local left
    left=$(awk -v t0="$T0" -v f="$1" -v d="$DURATION" -v now="$(now)" 'BEGIN { x = t0 + f * d - now; printf "%.2f", (x > 0 ? x : 0) }')
    sleep "$left"
}
rel() { elapsed "$T0" "$1"; }

# --- 25 %: slapd stops
at 0.25
SCPU_OLD=$(proc_cpu "$SLAPD_PID")
T_STOP=$(now)
slapd_fixture stop
T_STOPPED=$(now)
echo "# t=$(rel "$T_STOP")s slapd stopped (took $(elapsed "$T_STOP" "$T_STOPPED")s)"
sleep 0.5
code=$(status probe400:pw-probe400 GET $M)
PROBE_500=0
[ "$code" = 500 ] && PROBE_500=1
check_eq "slapd down: a cold LDAP user gets 500 from nginx (Gatehouse 503), never 401" 500 "$code"
check_eq "slapd down: Gatehouse's /readyz answers 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$P_GATE/readyz")"

# --- 37.5 %: the configuration file is edited while the directory is down
at 0.375
F0=$(grep -c 'reload refused' "$GATE_LOG")
write_config Registry-outage
sleep 2.5
check_eq "slapd down: an edited configuration is refused (its LDAP backend cannot bind) and the running one keeps serving" \
    "Registry $((F0 + 1))" "$(realm) $(grep -c 'reload refused' "$GATE_LOG")"

# --- 50 %: slapd back on the same ports; then a cold request every 100 ms until it passes
at 0.50
T_START=$(now)
if slapd_same_ports 200; then
    T_READY=$(now)
    SLAPD_PID=$(cat "$LDAP_DIR/slapd.pid" 2>/dev/null)
    SCPU_NEW0=$(proc_cpu "$SLAPD_PID")
    echo "# t=$(rel "$T_START")s slapd started on the same ports; service bind answers $(elapsed "$T_START" "$T_READY")s later"
    T_RECOVERED= POLLS=0
    for i in $(seq 1 300); do
        POLLS=$i
        code=$(status "probe$(printf %03d "$i"):pw-probe$(printf %03d "$i")" GET $M)
        if [ "$code" = 200 ]; then T_RECOVERED=$(now); break; fi
        [ "$code" = 500 ] && PROBE_500=$((PROBE_500 + 1))
        sleep 0.1
    done
    if [ -n "$T_RECOVERED" ]; then
        RECOVERY=$(elapsed "$T_READY" "$T_RECOVERED")
        echo "# t=$(rel "$T_RECOVERED")s first cold LDAP 200 through nginx: ${RECOVERY}s after slapd answered ($POLLS polls, 100 ms apart)"
        awk -v r="$RECOVERY" 'BEGIN { exit !(r <= 2.0) }'
        pass_if $? "Gatehouse recovers from the slapd restart by itself within 2 s (took ${RECOVERY}s, no SIGHUP)"
    else
        not_ok "Gatehouse recovers from the slapd restart within 30 s"
        T_RECOVERED=$(now)
        RECOVERY=never
    fi
else
    not_ok "slapd restarts on its previous ports"
    diag <"$LDAP_DIR/slapd.log"
    T_READY=$(now) T_RECOVERED=$(now) RECOVERY=never SCPU_NEW0=0
fi

# --- 75 %: the configuration changes on disk (realm), then SIGHUP
at 0.75
REALM_BEFORE_EDIT=$(realm)
echo "# t=$(rel "$(now)")s the configuration edited during the outage $([ "$REALM_BEFORE_EDIT" = Registry-outage ] && echo "was applied after slapd came back, without another edit or signal" || echo "is still not applied (realm $REALM_BEFORE_EDIT): a refused reload is not retried until the file changes again or SIGHUP")"
R0=$(grep -c 'configuration reloaded' "$GATE_LOG")
T_EDIT=$(now)
write_config Registry-reloaded
WATCHED=no
for _ in $(seq 1 20); do
    [ "$(realm)" = Registry-reloaded ] && { WATCHED=yes; break; }
    sleep 0.1
done
echo "# t=$(rel "$T_EDIT")s configuration file changed on disk (realm); picked up without a signal within 2 s: $WATCHED"
T_HUP=$(now)
kill -HUP "$GATE_PID"
for _ in $(seq 1 50); do
    [ "$(realm)" = Registry-reloaded ] && break
    sleep 0.1
done
check_eq "SIGHUP during the load: the new realm is served" Registry-reloaded "$(realm)"
sleep 0.5
check_eq "Gatehouse logged the reload once per SIGHUP" "$((R0 + 1 + $([ $WATCHED = yes ] && echo 1 || echo 0)))" \
    "$(grep -c 'configuration reloaded' "$GATE_LOG")"
echo "# t=$(rel "$T_HUP")s SIGHUP"

# --- wait for the load to end
for pid in $WRK_PIDS; do wait "$pid"; done
WRK_PIDS=
T_END=$(now)
read -r BUSY1 IDLE1 <<<"$(cpu_jiffies)"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
GCPU1=$(proc_cpu "$GATE_PID") NCPU1=$(cpu_sum $(nginx_pids)) SCPU1=$(proc_cpu "$SLAPD_PID")
sleep 2
kill "$SAMPLER_PID" 2>/dev/null
wait "$SAMPLER_PID" 2>/dev/null
SAMPLER_PID=

# ---------------------------------------------------------------- results
echo "# --- results (t=0 is the start of the load; outage window = slapd stop .. first cold 200 + ${WINDOW_TOLERANCE}s)"
if gate_alive; then ok "Gatehouse is alive after the run (pid $GATE_PID)"; else not_ok "Gatehouse is alive after the run"; diag <"$GATE_LOG"; fi
check_eq "Gatehouse answers /healthz and /readyz after the run" "200 200" \
    "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$P_GATE/healthz") $(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$P_GATE/readyz")"

# (deciseconds since the epoch: more than 2^31, so %.0f; mawk's %d stops at 2147483647)
W_FROM=$(awk -v t="$T_STOP" 'BEGIN { printf "%.0f", int(t * 10) }')
W_TO=$(awk -v t="$T_RECOVERED" -v tol="$WINDOW_TOLERANCE" 'BEGIN { printf "%.0f", int((t + tol) * 10) }')
TOTAL=0 WRONG_TOTAL=0 UNEXPECTED_TOTAL=0 SOCKET_TOTAL=0 IN5XX_TOTAL=0 OUT5XX_TOTAL=0
printf '# %-15s %5s %9s %7s  %-34s %s\n' class conns requests req/s "statuses" "latency p50/p99/max ms"
for spec in $CLASSES; do
    IFS=: read -r class conns normal <<<"$spec"
    f=$T/wrk/$class.out
    if ! grep -q "^LOAD class=$class requests=" "$f"; then
        not_ok "$class: wrk finished and reported"
        diag <"$f"
        continue
    fi
    req=$(sed -n "s/^LOAD class=$class requests=\([0-9]*\) .*/\1/p" "$f")
    secs=$(sed -n "s/^LOAD class=$class requests=[0-9]* seconds=\([0-9.]*\) .*/\1/p" "$f")
    lat=$(sed -n "s/^LOAD class=$class requests=.* p50_ms=\([0-9.]*\) p99_ms=\([0-9.]*\) max_ms=\([0-9.]*\)/\1 \/ \2 \/ \3/p" "$f")
    statuses=$(sed -n "s/^LOAD class=$class status=\([0-9]*\) count=\([0-9]*\)/\1:\2/p" "$f" | sort | tr '\n' ' ')
    read -r e_conn e_read e_write e_timeout <<<"$(sed -n "s/^LOAD class=$class errors connect=\([0-9]*\) read=\([0-9]*\) write=\([0-9]*\) timeout=\([0-9]*\)/\1 \2 \3 \4/p" "$f")"
    printf '# %-15s %5s %9s %7s  %-34s %s\n' "$class" "$conns" "$req" "$(awk -v r="$req" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? r / s : 0) }')" "$statuses" "$lat"
    TOTAL=$((TOTAL + req))
    count_of() { sed -n "s/^LOAD class=$class status=$1 count=\([0-9]*\)/\1/p" "$f" | awk '{ s += $1 } END { print s + 0 }'; }
    # wrong answers: a 200 where 401/403 is the only right answer
    wrong=0
    in_list "$class" "$DENY_CLASSES" && wrong=$(count_of 200)
    WRONG_TOTAL=$((WRONG_TOTAL + wrong))
    check_eq "$class: wrong answers (200 instead of $normal)" 0 "$wrong"
    # 5xx inside / outside the outage window, and any other unexpected status
    read -r in5 out5 other <<<"$(sed -n "s/^LOAD class=$class bucket=\([0-9]*\)@\([0-9]*\) count=\([0-9]*\)/\1 \2 \3/p" "$f" |
        awk -v from="$W_FROM" -v to="$W_TO" -v normal="$normal" '
            $1 == normal { next }
            $1 == 200 { next }   # counted as wrong answers above
            $1 ~ /^5/ { if ($2 >= from && $2 <= to) i += $3; else o += $3; next }
            { x += $3 }
            END { print i + 0, o + 0, x + 0 }')"
    if in_list "$class" "$OUTAGE_CLASSES"; then
        IN5XX_TOTAL=$((IN5XX_TOTAL + in5))
        check_eq "$class: no 5xx outside the outage window ($in5 inside it)" 0 "$out5"
        OUT5XX_TOTAL=$((OUT5XX_TOTAL + out5))
    else
        check_eq "$class: no 5xx at all, the outage included" 0 "$((in5 + out5))"
        OUT5XX_TOTAL=$((OUT5XX_TOTAL + in5 + out5))
    fi
    # a 200 in a class whose normal status is 200 is not a wrong answer; any other status is
    check_eq "$class: no unexpected statuses (other than $normal$(in_list "$class" "$OUTAGE_CLASSES" && echo ' and 500 in the outage'))" 0 "$other"
    if [ "$other" != 0 ]; then
        sed -n "s/^LOAD class=$class bucket=\([0-9]*\)@\([0-9]*\) count=\([0-9]*\)/\1 \2 \3/p" "$f" |
            awk -v t0="$T0" -v normal="$normal" '$1 != normal && $1 != 200 && $1 !~ /^5/ { printf "status %s at t=%.1fs: %d\n", $1, $2 / 10 - t0, $3 }' | sort -k4 -n | diag 10
    fi
    UNEXPECTED_TOTAL=$((UNEXPECTED_TOTAL + other))
    SOCKET_TOTAL=$((SOCKET_TOTAL + e_conn + e_read + e_write + e_timeout))
    check_eq "$class: no socket errors or timeouts (connect read write timeout>$WRK_TIMEOUT)" "0 0 0 0" "$e_conn $e_read $e_write $e_timeout"
    if [ "$class" = ldap-cold ]; then COLD_IN5XX=$in5; fi
done

# The outage must have been visible, or the run proved nothing about it
[ "${COLD_IN5XX:-0}" -gt 0 ]
pass_if $? "the outage was visible: ldap-cold got ${COLD_IN5XX:-0} 500s inside the window"
# 5xx timeline of the ldap-cold class relative to the faults
first5=$(sed -n 's/^LOAD class=ldap-cold bucket=5[0-9]*@\([0-9]*\) count=.*/\1/p' "$T/wrk/ldap-cold.out" | sort -n | head -n1)
last5=$(sed -n 's/^LOAD class=ldap-cold bucket=5[0-9]*@\([0-9]*\) count=.*/\1/p' "$T/wrk/ldap-cold.out" | sort -n | tail -n1)
if [ -n "$first5" ]; then
    echo "# ldap-cold 500s from t=$(awk -v d="$first5" -v t="$T0" 'BEGIN { printf "%.1f", d / 10 - t }')s to t=$(awk -v d="$last5" -v t="$T0" 'BEGIN { printf "%.1f", d / 10 + 0.1 - t }')s; slapd stopped at t=$(rel "$T_STOP")s, answered again at t=$(rel "$T_READY")s; the last 500 came $(awk -v d="$last5" -v t="$T_READY" 'BEGIN { printf "%+.1f", d / 10 + 0.1 - t + 0 }')s after that"
fi

# Gatehouse's own account (audit lines of the run)
tail -n +$((L0 + 1)) "$GATE_LOG" >"$T/logs/gatehouse-run.log"
GL=$T/logs/gatehouse-run.log
D_ALL=$(grep -c 'decision=' "$GL")
D_503=$(grep -c 'decision=unavailable' "$GL")
D_STALE=$(grep -c 'stale credentials' "$GL")
D_COLD=$(grep 'decision=' "$GL" | grep -c 'user=load[0-9]')
# (a stale answer is logged cached=true: during the outage the cache stops churning, so cold
# users whose entry is still there are rightly answered from it; those are not "warm")
D_COLD_STALE=$(grep 'decision=' "$GL" | grep 'user=load[0-9]' | grep -c 'stale credentials')
D_COLD_CACHED=$(grep 'decision=' "$GL" | grep 'user=load[0-9]' | grep 'cached=true' | grep -vc 'stale credentials')
echo "# Gatehouse audit lines in the run: $D_ALL decisions, $D_503 unavailable (503), $D_STALE served with stale credentials; ldap-cold users: $D_COLD allowed decisions, $D_COLD_CACHED of them from the cache, $D_COLD_STALE stale during the outage"
[ "$D_STALE" -gt 0 ]
pass_if $? "stale_grace: Gatehouse answered the ldap-warm/ldap-forbidden users from stale credentials during the outage ($D_STALE times)"
awk -v c="$D_COLD_CACHED" -v n="$D_COLD" 'BEGIN { exit !(n > 0 && c <= n / 100) }'
pass_if $? "ldap-cold was cold: at most 1 % of its allowed decisions came from the cache, stale answers aside ($D_COLD_CACHED of $D_COLD)"
ERRLINES=$(grep -E ' (error|critical|warning) ' "$GL" | grep -v 'decision=' | sed 's/^[^ ]* //' | sort | uniq -c | sort -rn | head -5)
[ -n "$ERRLINES" ] && { echo "# Gatehouse warnings/errors (other than audit lines):"; printf '%s\n' "$ERRLINES" | diag 5; }

# nginx
tail -n +$((E0 + 1)) "$N/logs/error.log" >"$T/logs/nginx-error-run.log"
NE_ALL=$(wc -l <"$T/logs/nginx-error-run.log")
NE_503=$(grep -c 'auth request unexpected status: 503' "$T/logs/nginx-error-run.log")
NE_OTHER=$((NE_ALL - NE_503))
echo "# nginx error.log during the run: $NE_ALL lines, $NE_503 'auth request unexpected status: 503', $NE_OTHER other"
check_eq "nginx logged no errors other than the gate's 503s" 0 "$NE_OTHER"
CLIENT_500=$(for spec in $CLASSES; do sed -n 's/^LOAD class=[a-z-]* status=500 count=\([0-9]*\)$/\1/p' "$T/wrk/${spec%%:*}.out"; done | awk '{ s += $1 } END { print s + 0 }')
check_eq "nginx logged one 503 from the gate per 500 it answered (wrk $CLIENT_500 + probes $PROBE_500)" "$((CLIENT_500 + PROBE_500))" "$NE_503"
[ "$NE_OTHER" -gt 0 ] && sed 's/^[^[]*\[[a-z]*\] [0-9#]*: \*[0-9]* //; s/, client:.*//' "$T/logs/nginx-error-run.log" | grep -v 'unexpected status: 503' | sort | uniq -c | sort -rn | diag 8

# Gatehouse's /metrics: what its counters moved during the run
metrics >"$T/logs/metrics-after.txt"
python3 - "$T/logs/metrics-before.txt" "$T/logs/metrics-after.txt" <<'PY' | sed 's/^/# metrics: /'
import sys
def read(path):
    values = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        if line.startswith("gatehouse_") and "_total" in line.split(" ")[0].split("{")[0]:
            name, _, value = line.rstrip("\n").rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                pass
    return values
before, after = read(sys.argv[1]), read(sys.argv[2])
wanted = ("cache_", "ldap_errors", "ldap_pool_waits", "config_reloads", "lockout", "locked_out")
lines = ["%s +%d" % (name.replace("gatehouse_", ""), after[name] - before.get(name, 0))
         for name in sorted(after) if any(w in name for w in wanted) and after[name] - before.get(name, 0) > 0]
print("\n".join(lines) if lines else "(no /metrics counters found)")
PY

# Descriptors, memory, threads: before vs after
read -r FD1 SOCK1 RSS1 HWM1 THR1 LDAPC1 NGXC1 <<<"$(snapshot)"
max_fd=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$T/logs/samples.txt")
max_rss=$(awk 'BEGIN { m = 0 } $3 > m { m = $3 } END { print m }' "$T/logs/samples.txt")
max_thr=$(awk 'BEGIN { m = 0 } $4 > m { m = $4 } END { print m }' "$T/logs/samples.txt")
echo "# Gatehouse before -> after: fds $FD0 -> $FD1 (sockets $SOCK0 -> $SOCK1; max during the run $max_fd), RSS $((RSS0 / 1024)) -> $((RSS1 / 1024)) MiB (max $((max_rss / 1024)), VmHWM $((HWM1 / 1024))), threads $THR0 -> $THR1 (max $max_thr), connections to slapd $LDAPC0 -> $LDAPC1, from nginx $NGXC0 -> $NGXC1"
check_eq "Gatehouse's non-socket descriptors are back where they were" "$((FD0 - SOCK0))" "$((FD1 - SOCK1))"
[ "$LDAPC1" -le 8 ]
pass_if $? "Gatehouse holds at most 2 x pool_size connections to slapd after the run ($LDAPC1; the reload must have closed the old engine's)"
[ "$SOCK1" -le $((LDAPC1 + NGXC1 + 8)) ]
pass_if $? "Gatehouse's sockets are accounted for: $SOCK1 <= $LDAPC1 to slapd + $NGXC1 from nginx + 8 (listener and spares)"
[ "$THR1" -le $((THR0 + 2)) ]
pass_if $? "Gatehouse's threads are back where they were ($THR0 -> $THR1; the reload replaced the LDAP thread pool)"
echo "# RSS is reported, not checked (before $((RSS0 / 1024)) MiB, after $((RSS1 / 1024)) MiB). Every ~10 % of the run (t, fds, RSS, threads, connections to slapd):"
awk -v t0="$T0" -v d="$DURATION" '{ t = $1 - t0; if (t >= next_t) { printf "#   t=%4.0fs fds=%s rss=%.1fMiB threads=%s slapd=%s\n", t, $2, $3 / 1024, $4, $5; next_t = t + d / 10 - 0.5 } }' "$T/logs/samples.txt"

# Machine
BUSY=$((BUSY1 - BUSY0)) IDLE=$((IDLE1 - IDLE0))
RUN=$(elapsed "$T0" "$T_END")
HZ=$(getconf CLK_TCK)
G_CPU=$(awk -v a="$GCPU0" -v b="$GCPU1" 'BEGIN { printf "%.1f", b - a }')
N_CPU=$(awk -v a="$NCPU0" -v b="$NCPU1" 'BEGIN { printf "%.1f", b - a }')
S_CPU=$(awk -v a="$SCPU0" -v b="$SCPU_OLD" -v c="$SCPU_NEW0" -v d="$SCPU1" 'BEGIN { printf "%.1f", (b - a) + (d - c) }')
ALL_CPU=$(awk -v b="$BUSY" -v hz="$HZ" 'BEGIN { printf "%.1f", b / hz }')
echo "# machine during the run (${RUN}s wall, $(nproc) cores = $(awk -v r="$RUN" -v n="$(nproc)" 'BEGIN { printf "%.0f", r * n }') CPU-s): busy $(awk -v b="$BUSY" -v i="$IDLE" 'BEGIN { printf "%.0f", 100 * b / (b + i) }') %, $ALL_CPU CPU-s: Gatehouse $G_CPU, nginx $N_CPU, slapd $S_CPU, wrk and everything else $(awk -v a="$ALL_CPU" -v g="$G_CPU" -v n="$N_CPU" -v s="$S_CPU" 'BEGIN { printf "%.1f", a - g - n - s }'); load average $LOAD_BEFORE before, $LOAD_AFTER after"
echo "# totals: $TOTAL requests ($(awk -v t="$TOTAL" -v r="$RUN" 'BEGIN { printf "%.0f", t / r }') req/s through nginx), Gatehouse CPU $(awk -v g="$G_CPU" -v t="$TOTAL" 'BEGIN { printf "%.0f", (t > 0 ? 1e6 * g / t : 0) }') us per request; wrong answers $WRONG_TOTAL, unexpected statuses $UNEXPECTED_TOTAL, socket errors/timeouts $SOCKET_TOTAL, 5xx in the outage $IN5XX_TOTAL, 5xx outside it $OUT5XX_TOTAL; recovery ${RECOVERY}s; config file watched: $WATCHED"
echo "# connections nginx closed to Gatehouse in the last minute (TIME-WAIT to its port; the shipped upstream keeps 64 idle per worker): $(ss -Htn state time-wait "( dport = :$P_GATE )" | wc -l)"

if [ "$FAILED" -gt 0 ]; then
    echo "# logs: $T/logs, $T/wrk, $N/logs (set KEEP_TMP=1 to keep them)"
    echo "# --- gatehouse.log (tail)"; diag 5 <"$GATE_LOG"
fi
echo "# total time $(elapsed "$START" "$(now)")s"
tally
