#!/usr/bin/env bash
# Hot-path benchmark: what a decision costs Gatehouse when the answer is in its cache, set
# against the platform floor (a bare SwiftNIO server), against nginx with no auth (P0), against
# a zero-work auth_request stub with keepalive, and against Apache mod_authnz_ldap with its
# LDAP cache, all in one run. It prints numbers and one verdict line per goal; it is not a
# test (exit status 0 unless the set-up fails).
#
# Usage (as root, Debian 12 with nginx-light, wrk, slapd, ldap-utils, curl, python3; apache2
# for the Apache peer, which is skipped when it is not installed):
#
#     Benchmarks/hot-path.sh
#     DURATION=4s ROUNDS=1 Benchmarks/hot-path.sh             # a quick trial
#
# Env:  GATEHOUSE_BIN   gatehouse binary (default .build/release/gatehouse)
#       FLOOR_BIN       the floor server (default .build/release/gatehouse-floor, from
#                       Benchmarks/FloorServer); both are copied to the temp dir first, so a
#                       rebuild during the run changes nothing
#       DURATION        length of every wrk run (default 5s)
#       ROUNDS          interleaved rounds of each phase (default 3)
#       WARMUP          wrk warm-up per scenario before round 1 (default 1s)
#       FILL_USERS      distinct identities cached for the memory goal (default 10000)
#       APACHE_MODULES  Apache's module directory (default /usr/lib/apache2/modules)
#       KEEP_TMP=1      keep the temp dir (configs, logs, raw wrk output) after the run
# With the defaults the run takes about 3 minutes on 2 cores.
#
# Everything runs on loopback ports picked at random, in one temp dir; the EXIT trap stops
# nginx, Apache, every Gatehouse, the floor server and slapd it started, and removes the dir.
#
# Phase 1, direct (no nginx): wrk -t1 -c16 -d$DURATION straight at one server, ROUNDS rounds,
# interleaved (every round runs floor, cached success, cached failure; the first one rotates
# per round). CPU us/request = utime+stime delta (/proc/PID/stat, all threads) of that server
# process, summed over the rounds, divided by the requests wrk completed.
#   floor     gatehouse-floor PORT: SwiftNIO's HTTP/1 pipeline and one handler answering 200
#             with an empty body from a fixed table: the least a Swift auth service costs here.
#   success   Gatehouse G: htpasswd user bench, bcrypt cost 10, and otherwise the defaults
#             (cache, lockout, log level info: one audit line per decision, standard error
#             written to a file). One right password repeated (verified once in the warm-up).
#   failure   the same G, one wrong password repeated: 401 from the negative cache (re-verified
#             with bcrypt once per negative_ttl, 10 s). The same wrong password from the same
#             address counts once towards the lockout, so it never locks; the run checks that
#             the right password still passes afterwards and that G's /metrics count no lockout
#             (gatehouse_lockouts_total, _locked_out_requests_total, _lockout_refusals_total).
#   Every request carries what nginx's auth subrequest carries (GET /auth/registry,
#   X-Original-URI /v2/, X-Original-Method, X-Real-IP, X-Forwarded-For, Authorization).
#   Goals: success <= 20 us, failure <= 25 us of Gatehouse CPU per request. They were set on a
#   box where the floor cost 16 us, so each is also printed scaled to this box:
#   goal x floor/16, with the floor measured in the same run.
#
# Phase 2, through nginx: wrk -t2 -c32 -d$DURATION, ROUNDS rounds, interleaved (every round
# runs all six; the first one rotates per round). nginx: worker_processes 2, worker_connections
# 4096, access_log off, keepalive_requests 1000000 towards the client; every protected location
# answers a 2-byte 200 "ok" through `try_files /.none @ok` (a `return` in the location itself
# would answer in the rewrite phase, before auth_request runs, and skip authentication; the
# preflight checks that every protected scenario answers 401 without credentials).
#   p0                     nginx, no authentication: the ceiling.
#   stub                   auth_request to a zero-work service on the same nginx (another
#                          server block: `location /auth/ { return 200; }` plus the X-Auth-User,
#                          X-Auth-Groups, X-Auth-Backend headers Gatehouse sends; 401 when the
#                          request has no Authorization header at all), wired exactly
#                          as Gatehouse is: copies of nginx/gatehouse-upstream.conf (upstream
#                          renamed, address changed; keepalive 64) and nginx/gatehouse-auth.conf
#                          (only proxy_pass changed), and nginx/gatehouse-identity.conf as is.
#   gatehouse-cached       the shipped kit unmodified (gatehouse-auth.conf, gatehouse-identity.conf)
#                          and a copy of gatehouse-upstream.conf with only the address changed,
#                          to G (phase 1's process): a cached success.
#   gatehouse-ldap-cached  the kit (copies renamed as for the stub) to Gatehouse with an ldap
#                          backend: the Tests/Fixtures/slapd.sh directory over ldaps://, preset
#                          openldap, pool_size 4, the default cache, lockout off; user alice,
#                          a cached success.
#   gatehouse-ldap-cold    the same with cache {max_entries: 0}: every request an LDAP search,
#                          bind and group read.
#   apache-ldap            Apache 2.4 (event MPM, Debian's default thread settings,
#                          KeepAlive with MaxKeepAliveRequests 0, no access log) as a
#                          standalone peer (client -> Apache, Basic auth): mod_authnz_ldap +
#                          mod_ldap with the default LDAP cache (LDAPSharedCacheSize,
#                          LDAPCacheEntries, LDAPCacheTTL untouched), AuthLDAPURL ldaps:// to
#                          the same slapd, Require valid-user; the protected directory answers
#                          204 from a per-directory `RewriteRule ^ - [R=204]`, which runs after
#                          authentication (`Redirect 204` in a <Location> would skip it).
#                          Its xP0 is against nginx's P0 of the same round.
#   Columns: req/s, p99 = medians over rounds; xP0 = median over rounds of (req/s / P0's req/s
#   of the same round); CPU us/request per process = utime+stime deltas summed over the rounds
#   / requests completed: nginx (its workers), gate (the Gatehouse asked), slapd, apache (the
#   parent, its live children, and the children it reaped: cutime+cstime); RSS = VmRSS at the
#   end of the phase: nginx (master + workers), gate, apache (all its processes), slapd.
#   verif = decisions not answered from the cache (bcrypt or LDAP), counted in the audit lines
#   written during the runs.
#   Goals: gatehouse-cached >= 0.85 x stub, gatehouse-ldap-cached >= 2 x apache-ldap, each as
#   the median over rounds of the same-round ratio.
#
# Phase 3, memory: G's VmRSS right after its start (idle, nothing asked yet; goal <= 30 MB);
# then a fresh Gatehouse G5 (the defaults, standard error to a file) with FILL_USERS {SHA}
# users in its htpasswd: VmRSS idle after its start, and after every one of them logged in
# once (wrk -t1 -c16 with a Lua script cycling through the users, straight at G5; checked by
# gatehouse_cache_misses_total, by the distinct users allowed in the audit lines, and by
# ?explain saying "cached" for users at the start, middle and end); goal <= 35 MB with
# FILL_USERS (10,000) cached identities.
#
# The last lines are `# result: key=value`.
set -u

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../Tests/lib/common.sh
. "$REPO/Tests/lib/common.sh"
# shellcheck source=../Tests/lib/bench.sh
. "$REPO/Tests/lib/bench.sh"

# not a test: no ok/not ok counts, a failed set-up is said on stderr
die() { echo "hot-path: $*" >&2; exit 1; }

gatehouse_bin .build/release/gatehouse
FLOOR_BIN=${FLOOR_BIN:-.build/release/gatehouse-floor}
case $FLOOR_BIN in /*) ;; *) FLOOR_BIN=$REPO/$FLOOR_BIN ;; esac
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-1s}
FILL_USERS=${FILL_USERS:-10000}
APACHE_MODULES=${APACHE_MODULES:-/usr/lib/apache2/modules}
NGINX_WORKERS=2

[ "$(id -u)" = 0 ] || die "run as root"
need_tools nginx wrk curl python3 ss slapd ldapwhoami ldapadd setsid base64 getconf
[ -x "$GATEHOUSE_BIN" ] || die "no gatehouse binary at $GATEHOUSE_BIN (set GATEHOUSE_BIN)"
[ -x "$FLOOR_BIN" ] || die "no floor binary at $FLOOR_BIN (set FLOOR_BIN; swift build -c release --product gatehouse-floor)"
case $ROUNDS in '' | *[!0-9]* | 0) die "ROUNDS must be a positive integer" ;; esac
case $FILL_USERS in '' | *[!0-9]* | 0) die "FILL_USERS must be a positive integer" ;; esac

# The Apache peer: needs apache2, apache2ctl and the modules; else it is skipped, not fatal.
APACHE=1 APACHE_SKIP=
if ! command -v apache2 >/dev/null || ! command -v apache2ctl >/dev/null; then
    APACHE=0 APACHE_SKIP="skipped: apache2 not installed"
else
    for m in mpm_event authn_core authz_core authz_user auth_basic ldap authnz_ldap rewrite; do
        [ -f "$APACHE_MODULES/mod_$m.so" ] || { APACHE=0 APACHE_SKIP="skipped: $APACHE_MODULES/mod_$m.so not found"; break; }
    done
fi

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 2048 ] || die "ulimit -n is $(ulimit -n); need 2048+"

NGX_PID= APACHE_PID= FLOOR_PID= G_PID= GLC_PID= GLD_PID= G5_PID= LDAP_DIR=
cleanup() {
    stop_all "$NGX_PID" "$APACHE_PID" "$FLOOR_PID" "$G_PID" "$GLC_PID" "$GLD_PID" "$G5_PID"
    [ -n "$LDAP_DIR" ] && slapd_fixture stop
    remove_tmp "# temp dir kept:"
}
make_tmp hot-path
chmod 755 "$T"
mkdir -p "$T"/{logs,wrk,g,glc,gld,g5,apache/htdocs/v2,apache/run,apache/logs} || die "mkdir"
N=$T/nginx
nginx_dir "$N"
copy_gatehouse
cp "$FLOOR_BIN" "$T/bin/gatehouse-floor" || die "copy gatehouse-floor"
FLOOR=$T/bin/gatehouse-floor
HZ=$(getconf CLK_TCK)

echo "# hot-path: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "# gatehouse: $GATEHOUSE_BIN ($(stat -c %y "$GATEHOUSE_BIN" | cut -d. -f1)); floor: $FLOOR_BIN ($(stat -c %y "$FLOOR_BIN" | cut -d. -f1))"
echo "# $(nginx -v 2>&1 | sed 's/^nginx version: //'); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'); $(slapd -VV 2>&1 | sed -n 's/.*\(OpenLDAP: slapd [0-9.]*\).*/\1/p' | head -1); apache: $([ "$APACHE" = 1 ] && apache2 -v | sed -n 's/^Server version: //p' || echo "$APACHE_SKIP")"
echo "# settings: DURATION=$DURATION ROUNDS=$ROUNDS WARMUP=$WARMUP; direct wrk -t1 -c16, nginx wrk -t2 -c32; nginx worker_processes=$NGINX_WORKERS; FILL_USERS=$FILL_USERS; ulimit -n $(ulimit -n)"

# ------------------------------------------------------------------ helpers
read -r P_F P_G P_GLC P_GLD P_G5 P_N0 P_NS P_STUB P_NG P_NLC P_NLD P_A < <(free_ports 12) || die "no free ports"

# ticks_tree PID: PID's utime+stime+cutime+cstime (children it reaped) plus its live children's
# utime+stime: Apache's event MPM may start and stop children during a run
ticks_tree() {
    [ -n "$1" ] || { echo -; return; }
    local own kids
    own=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 + $14 + $15 }')
    kids=$(children "$1")
    # shellcheck disable=SC2086 # a pid list
    echo $((${own:-0} + $( [ -n "$kids" ] && ticks $kids || echo 0)))
}
nginx_workers() { children "$NGX_PID"; }
# rss_tree PID: VmRSS of PID and its children, kB ("-" without a PID)
rss_tree() {
    [ -n "$1" ] || { echo -; return; }
    local pid sum=0 v
    for pid in "$1" $(children "$1"); do v=$(vm "$pid" VmRSS); sum=$((sum + ${v:-0})); done
    echo "$sum"
}
# metric PORT NAME: the sum of a family's samples on Gatehouse's /metrics ("-" if it does not answer)
metric() {
    local body
    body=$(curl -s --max-time 10 "http://127.0.0.1:$1/metrics") || { echo -; return; }
    printf '%s\n' "$body" | awk -v name="$2" '$1 == name || index($1, name "{") == 1 { s += $NF } END { printf "%d", s }'
}
errlines() { wc -l <"$N/logs/error.log" 2>/dev/null || echo 0; }
# start_gh NAME PORT: serve T/NAME/gatehouse.yaml, standard error to T/logs/NAME.log; $! is it
start_gh() {
    "$GH" config check --config "$T/$1/gatehouse.yaml" >"$T/logs/$1-config-check.log" 2>&1 ||
        { cat "$T/logs/$1-config-check.log" >&2; die "gatehouse config check ($1)"; }
    "$GH" serve --config "$T/$1/gatehouse.yaml" >>"$T/logs/$1.log" 2>&1 &
}
ready() { wait_for 15 http_answers "http://127.0.0.1:$1/readyz" 200 || { tail "$T/logs/$2.log" >&2; die "$2 did not become ready"; }; }

# ------------------------------------------------------------------ users, slapd
BENCH_PW=bench-pw WRONG_PW=not-the-bench-pw
printf '%s' "$BENCH_PW" | "$GH" hash --cost 10 bench >"$T/g/htpasswd" 2>"$T/logs/hash.log" || die "gatehouse hash: $(cat "$T/logs/hash.log")"
grep -q '^bench:\$2[aby]\$10\$' "$T/g/htpasswd" || die "G's htpasswd is not bcrypt cost 10: $(cat "$T/g/htpasswd")"

LDAP_DIR=$T/ldap
t0=$(now)
slapd_fixture start || { tail -20 "$T/logs/slapd-fixture.log" >&2; die "slapd fixture did not start"; }
SLAPD_PID=$(ldap_env SLAPD_PID)
echo "# slapd: $(ldap_env LDAPS_URL) pid $SLAPD_PID (fixture start $(elapsed "$t0" "$(now)") s)"

# ------------------------------------------------------------------ floor and Gatehouse processes
POLICY=$(registry_policy_yaml '{users: ["*"], allow: [pull]}')
# G: every setting at its default except listen and the backend (cache, lockout, log level info)
cat >"$T/g/gatehouse.yaml" <<EOF
listen: 127.0.0.1:$P_G
backends:
  - {name: local, type: htpasswd, file: $T/g/htpasswd}
tokens: {store: "sqlite:$T/g/tokens.db"}
$POLICY
EOF
# An access token of bench's for the "token" scenario (issue 16: no dearer than a cached password).
BENCH_TOKEN=$("$GH" token create --config "$T/g/gatehouse.yaml" --user bench --repositories '**' --allow pull --expires 1d 2>>"$T/logs/token.log" | tail -1)
case $BENCH_TOKEN in gth_*) ;; *) die "gatehouse token create failed: $(cat "$T/logs/token.log")" ;; esac
cat >"$T/glc/gatehouse.yaml" <<EOF
listen: 127.0.0.1:$P_GLC
backends:
$(ldap_backend_yaml)
lockout: {max_failures: 0}
$POLICY
EOF
cat >"$T/gld/gatehouse.yaml" <<EOF
listen: 127.0.0.1:$P_GLD
backends:
$(ldap_backend_yaml)
cache: {max_entries: 0}
lockout: {max_failures: 0}
$POLICY
EOF
"$FLOOR" "$P_F" >>"$T/logs/floor.log" 2>&1 &
FLOOR_PID=$!
start_gh g "$P_G"
G_PID=$!
ready "$P_G" g
sleep 1
RSS_IDLE=$(vm "$G_PID" VmRSS) # a fresh Gatehouse, nothing asked yet
start_gh glc "$P_GLC"
GLC_PID=$!
start_gh gld "$P_GLD"
GLD_PID=$!
ready "$P_GLC" glc
ready "$P_GLD" gld
wait_for 10 http_answers "http://127.0.0.1:$P_F/" 200 || { tail "$T/logs/floor.log" >&2; die "the floor server did not start"; }

# ------------------------------------------------------------------ nginx
# kit_copy_exactly FILE DST SED N: copy nginx/FILE changing exactly N lines, all of them upstream/server/proxy_pass
kit_copy_exactly() {
    kit_copy "$1" "$2" "$3"
    kit_only "$4" 'upstream|server|proxy_pass' ||
        { printf '%s\n' "$KIT_DIFF" >&2; die "copy of nginx/$1: expected $4 changed line(s), got $KIT_CHANGED"; }
}
kit_copy_exactly gatehouse-upstream.conf "$N/conf.d/gatehouse-upstream.conf" "s#server 127\.0\.0\.1:9180;#server 127.0.0.1:$P_G;#" 1
# NAME PORT: an upstream copy named gatehouse_NAME and an auth-location copy that proxies to it
for v in "stub $P_STUB" "ldapc $P_GLC" "ldapd $P_GLD"; do
    set -- $v
    kit_copy_exactly gatehouse-upstream.conf "$N/conf.d/gatehouse-upstream-$1.conf" "
s#^upstream gatehouse {#upstream gatehouse_$1 {#
s#server 127\.0\.0\.1:9180;#server 127.0.0.1:$2;#" 2
    kit_copy_exactly gatehouse-auth.conf "$N/conf.d/gatehouse-auth-$1.conf" "s#proxy_pass http://gatehouse/#proxy_pass http://gatehouse_$1/#" 1
done

OK_LOCATION='location @ok { return 200 "ok"; }'
# protected NAME PORT AUTH-CONF: a server whose /v2/ needs auth_request through AUTH-CONF
protected() {
    cat <<EOF
    # $1
    server {
        listen 127.0.0.1:$2;
        set \$gatehouse_policy registry;
        include $3;
        location /v2/ {
            auth_request /_gatehouse_auth;
            include $KIT/gatehouse-identity.conf;
            try_files /.none @ok;
        }
        $OK_LOCATION
    }
EOF
}
nginx_conf "$N" "$(id -un) $(id -gn)" "$NGINX_WORKERS" 4096 error "worker_rlimit_nofile 16384" <<EOF
    default_type text/plain;
    access_log off;
    keepalive_requests 1000000;
    root $N/html;

    include $N/conf.d/gatehouse-upstream.conf;         # nginx/gatehouse-upstream.conf, address changed
    include $N/conf.d/gatehouse-upstream-stub.conf;    # the same, upstream gatehouse_stub
    include $N/conf.d/gatehouse-upstream-ldapc.conf;   # the same, upstream gatehouse_ldapc
    include $N/conf.d/gatehouse-upstream-ldapd.conf;   # the same, upstream gatehouse_ldapd

    # p0: no authentication
    server {
        listen 127.0.0.1:$P_N0;
        location /v2/ { try_files /.none @ok; }
        $OK_LOCATION
    }
    # the zero-work auth service: a 200 with Gatehouse's identity headers and no body (401
    # without an Authorization header, so that the preflight can see the subrequest happen)
    server {
        listen 127.0.0.1:$P_STUB;
        keepalive_requests 1000000;
        location /auth/ {
            if (\$http_authorization = "") { return 401; }   # so the preflight sees auth_request run
            add_header X-Auth-Decision allow;
            add_header X-Auth-User bench;
            add_header X-Auth-Groups "";
            add_header X-Auth-Backend local;
            return 200;
        }
    }
$(protected stub "$P_NS" "$N/conf.d/gatehouse-auth-stub.conf")
$(protected "gatehouse-cached: the shipped kit" "$P_NG" "$KIT/gatehouse-auth.conf")
$(protected gatehouse-ldap-cached "$P_NLC" "$N/conf.d/gatehouse-auth-ldapc.conf")
$(protected gatehouse-ldap-cold "$P_NLD" "$N/conf.d/gatehouse-auth-ldapd.conf")
EOF
nginx_check "$N" || { printf '%s\n' "$NGINX_OUT" >&2; die "nginx -t"; }
nginx_start "$N"
NGX_PID=$!
wait_for 10 http_answers "http://127.0.0.1:$P_N0/v2/" 200 || { tail "$N/logs/error.log" >&2; die "nginx did not start"; }

# ------------------------------------------------------------------ Apache
A=$T/apache
if [ "$APACHE" = 1 ]; then
    AUSER=www-data AGROUP=www-data
    getent passwd www-data >/dev/null || AUSER=nobody
    getent group www-data >/dev/null || AGROUP=nogroup
    # the children (AUSER) reach nothing in T but the htdocs they serve
    chown -R "$AUSER" "$A/logs" "$A/run" 2>/dev/null
    {
        for m in mpm_event authn_core authz_core authz_user auth_basic ldap authnz_ldap rewrite; do
            echo "LoadModule ${m}_module $APACHE_MODULES/mod_$m.so"
        done
        cat <<EOF
ServerRoot $A
ServerName 127.0.0.1
Listen 127.0.0.1:$P_A
PidFile $A/run/httpd.pid
DefaultRuntimeDir $A/run
Mutex file:$A/run default
User $AUSER
Group $AGROUP
ErrorLog $A/logs/error.log
LogLevel warn
# Debian's mods-available/mpm_event.conf
StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60
Timeout 60
# mod_ldap: the default shared cache (LDAPSharedCacheSize 500000, LDAPCacheEntries 1024,
# LDAPCacheTTL 600); TLS to the fixture's ldaps:// with its CA, certificates verified
LDAPTrustedGlobalCert CA_BASE64 $(ldap_env CA_FILE)
LDAPVerifyServerCert On
DocumentRoot $A/htdocs
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory $A/htdocs>
    AllowOverride None
    AuthType Basic
    AuthName "Registry"
    AuthBasicProvider ldap
    AuthLDAPURL "$(ldap_env LDAPS_URL)/$(ldap_env PEOPLE_DN)?uid?sub?(objectClass=inetOrgPerson)"
    AuthLDAPBindDN "$(ldap_env BIND_DN)"
    AuthLDAPBindPassword "$(ldap_env BIND_PASSWORD)"
    Require valid-user
    # answers after authentication (per-directory rewrites run in the fixup phase)
    RewriteEngine On
    RewriteRule ^ - [R=204]
</Directory>
EOF
    } >"$A/httpd.conf"
    apache2 -d "$A" -f "$A/httpd.conf" -t >"$T/logs/apache-t.log" 2>&1 || { cat "$T/logs/apache-t.log" >&2; die "apache2 -t"; }
    apache2 -d "$A" -f "$A/httpd.conf" -DFOREGROUND >>"$T/logs/apache.log" 2>&1 </dev/null &
    APACHE_PID=$!
    wait_for 10 http_answers "http://127.0.0.1:$P_A/v2/" 401 || { tail "$A/logs/error.log" "$T/logs/apache.log" >&2; die "Apache did not start"; }
fi
echo "# ports: floor=$P_F G=$P_G G-ldap-cached=$P_GLC G-ldap-cold=$P_GLD; nginx p0=$P_N0 stub=$P_NS (service $P_STUB) gatehouse=$P_NG ldap-cached=$P_NLC ldap-cold=$P_NLD; apache=$([ "$APACHE" = 1 ] && echo "$P_A" || echo -)"
echo "# pids: nginx $NGX_PID (workers $(nginx_workers)), G $G_PID, G-ldap-cached $GLC_PID, G-ldap-cold $GLD_PID, floor $FLOOR_PID, slapd $SLAPD_PID$([ "$APACHE" = 1 ] && echo ", apache $APACHE_PID (children $(children "$APACHE_PID"))")"

# ------------------------------------------------------------------ scenarios
declare -A URL CREDS EXPECT KIND GPID GLOG
SUB_HDRS=(-H 'X-Original-URI: /v2/' -H 'X-Original-Method: GET' -H 'X-Real-IP: 127.0.0.1' -H 'X-Forwarded-For: 127.0.0.1')
add() { KIND[$1]=$2 URL[$1]=$3 CREDS[$1]=$4 EXPECT[$1]=$5 GPID[$1]=${6:-} GLOG[$1]=${7:+$T/logs/$7.log}; }
add floor direct "http://127.0.0.1:$P_F/auth/registry" "bench:$BENCH_PW" 200 "$FLOOR_PID"
add success direct "http://127.0.0.1:$P_G/auth/registry" "bench:$BENCH_PW" 200 "$G_PID" g
add failure direct "http://127.0.0.1:$P_G/auth/registry" "bench:$WRONG_PW" 401 "$G_PID" g
add token direct "http://127.0.0.1:$P_G/auth/registry" "bench:$BENCH_TOKEN" 200 "$G_PID" g
add p0 nginx "http://127.0.0.1:$P_N0/v2/" "" 200
add stub nginx "http://127.0.0.1:$P_NS/v2/" "bench:$BENCH_PW" 200
add gatehouse-cached nginx "http://127.0.0.1:$P_NG/v2/" "bench:$BENCH_PW" 200 "$G_PID" g
add gatehouse-ldap-cached nginx "http://127.0.0.1:$P_NLC/v2/" "alice:alice-pw" 200 "$GLC_PID" glc
add gatehouse-ldap-cold nginx "http://127.0.0.1:$P_NLD/v2/" "alice:alice-pw" 200 "$GLD_PID" gld
add apache-ldap apache "http://127.0.0.1:$P_A/v2/" "alice:alice-pw" 204
DIRECT="floor success failure token"
VIA="p0 stub gatehouse-cached gatehouse-ldap-cached gatehouse-ldap-cold"
[ "$APACHE" = 1 ] && VIA="$VIA apache-ldap"

# Preflight: authentication really runs, the expected statuses, one decision per request.
for s in stub gatehouse-cached gatehouse-ldap-cached gatehouse-ldap-cold $([ "$APACHE" = 1 ] && echo apache-ldap); do
    code=$(status "${URL[$s]}")
    [ "$code" = 401 ] || die "preflight: $s without credentials answered $code, not 401 (authentication skipped?)"
    [ "$s" = stub ] && continue
    code=$(status "${URL[$s]}" "${CREDS[$s]%%:*}:wrong-pw")
    [ "$code" = 401 ] || die "preflight: $s with a wrong password answered $code, not 401"
done
for s in $DIRECT $VIA; do
    hdr=()
    [ "${KIND[$s]}" = direct ] && hdr=("${SUB_HDRS[@]}")
    code=$(status "${URL[$s]}" "${CREDS[$s]}" "${hdr[@]}")
    [ "$code" = "${EXPECT[$s]}" ] || die "preflight: $s answered $code, expected ${EXPECT[$s]} (see $T/logs, KEEP_TMP=1)"
done
m0=$(metric "$P_G" gatehouse_decisions_total)
for _ in 1 2 3 4 5; do status "${URL[gatehouse-cached]}" "${CREDS[gatehouse-cached]}" >/dev/null; done
m1=$(metric "$P_G" gatehouse_decisions_total)
[ $((m1 - m0)) = 5 ] || die "preflight: 5 requests through nginx made $((m1 - m0)) Gatehouse decisions"
echo "# preflight: 401 without credentials and with a wrong password on every protected scenario (stub: without); expected statuses; 1 decision per request through nginx"

cp "$REPO/Tests/lib/wrk-summary.lua" "$T/summary.lua"

RESULTS=$T/results.tsv
printf 'scenario\tkind\tround\trequests\tduration_us\tp50_us\tp99_us\tnon2xx\tsockerr\tnginx_ticks\tgate_ticks\tslapd_ticks\tapache_ticks\tdecisions\tverifications\terrlog\n' >"$RESULTS"
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
# run SCENARIO ROUND DURATION: one wrk run with the CPU ticks of every server process around it
run() {
    local s=$1 round=$2 d=$3 out line hdr=() t c workers gpid=${GPID[$s]} glog=${GLOG[$s]}
    local n0 g0 s0 a0 n1 g1 s1 a1 off=0 dec=- ver=- e0 e1
    case ${KIND[$s]} in
    direct) t=1 c=16 hdr=("${SUB_HDRS[@]}") ;;
    *) t=2 c=32 ;;
    esac
    [ -n "${CREDS[$s]}" ] && hdr+=(-H "Authorization: Basic $(b64 "${CREDS[$s]}")")
    workers=$(nginx_workers)
    [ -n "$glog" ] && off=$(stat -c %s "$glog")
    e0=$(errlines)
    # shellcheck disable=SC2086 # pid lists
    { n0=$(ticks $workers); g0=$(ticks $gpid); s0=$(ticks "$SLAPD_PID"); a0=$(ticks_tree "$APACHE_PID"); }
    out=$T/wrk/$s.r$round.txt
    wrk -t"$t" -c"$c" -d"$d" -s "$T/summary.lua" "${hdr[@]}" "${URL[$s]}" >"$out" 2>&1
    # shellcheck disable=SC2086
    { n1=$(ticks $workers); g1=$(ticks $gpid); s1=$(ticks "$SLAPD_PID"); a1=$(ticks_tree "$APACHE_PID"); }
    e1=$(errlines)
    if [ -n "$glog" ]; then
        sleep 0.2 # the audit writer lands its lines every 50 ms
        read -r dec ver < <(audit_counts "$glog" "$off")
    fi
    line=$(sed -n 's/^BENCH //p' "$out")
    [ -n "$line" ] || { cat "$out" >&2; die "wrk gave no summary for $s (round $round)"; }
    local dn=- dg=- da=-
    [ "${KIND[$s]}" = direct ] || dn=$((n1 - n0))
    [ -n "$gpid" ] && dg=$((g1 - g0))
    [ "$APACHE_PID" ] && da=$((a1 - a0))
    printf '%s\t' "$s" "${KIND[$s]}" "$round" \
        "$(kv requests "$line")" "$(kv duration_us "$line")" "$(kv p50_us "$line")" "$(kv p99_us "$line")" "$(kv non2xx "$line")" \
        $(($(kv connect "$line") + $(kv read "$line") + $(kv write "$line") + $(kv timeout "$line"))) \
        "$dn" "$dg" "$((s1 - s0))" "$da" "$dec" "$ver" >>"$RESULTS"
    printf '%s\n' "$((e1 - e0))" >>"$RESULTS"
    [ "$round" = 0 ] && return
    tail -1 "$RESULTS" | awk -F'\t' -v hz="$HZ" '
        function us(t) { return (t == "-" || $4 == 0) ? "-" : sprintf("%.1f", t * 1e6 / hz / $4) }
        {
            printf "round %-2s %-21s %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  non-2xx %-7s sock-err %-3d CPU us/req nginx %s gate %s slapd %s apache %s  decisions %s verifications %s  error.log +%s\n",
                $3, $1, $4 / ($5 / 1e6), $6 / 1000, $7 / 1000, $8, $9, us($10), us($11), us($12), us($13), $14, $15, $16
        }'
}
# rounds ROUND "SCENARIO...": the scenarios once, starting at position ROUND-1 (rotated)
rotated() {
    local r=$1 i n
    shift
    set -- $*
    n=$#
    for i in $(seq 0 $((n - 1))); do
        eval "echo \${$(((r - 1 + i) % n + 1))}"
    done
}

# ------------------------------------------------------------------ phase 1: direct
echo
echo "# phase 1, direct: wrk -t1 -c16 -d$DURATION at the floor server and at G (cached success, cached failure, access token); warm-up $WARMUP each"
for s in $DIRECT; do run "$s" 0 "$WARMUP"; done
for r in $(seq 1 "$ROUNDS"); do
    for s in $(rotated "$r" "$DIRECT"); do run "$s" "$r" "$DURATION"; done
done
AFTER=$(status "${URL[success]}" "${CREDS[success]}" "${SUB_HDRS[@]}")
LOCKED=$(($(metric "$P_G" gatehouse_lockouts_total) + $(metric "$P_G" gatehouse_locked_out_requests_total) + $(metric "$P_G" gatehouse_lockout_refusals_total)))
echo "# after phase 1: the right password from the same address answers $AFTER; G's lockouts + locked-out requests + lockout refusals: $LOCKED"

# ------------------------------------------------------------------ phase 2: through nginx
echo
echo "# phase 2, through nginx (apache-ldap: straight at Apache): wrk -t2 -c32 -d$DURATION; warm-up $WARMUP each"
[ "$APACHE" = 1 ] || echo "# apache-ldap: $APACHE_SKIP"
for s in $VIA; do run "$s" 0 "$WARMUP"; done
for r in $(seq 1 "$ROUNDS"); do
    for s in $(rotated "$r" "$VIA"); do run "$s" "$r" "$DURATION"; done
done
RSS_NGINX=$(rss_tree "$NGX_PID")
RSS_G=$(vm "$G_PID" VmRSS)
RSS_GLC=$(vm "$GLC_PID" VmRSS)
RSS_GLD=$(vm "$GLD_PID" VmRSS)
RSS_SLAPD=$(vm "$SLAPD_PID" VmRSS)
RSS_APACHE=$(rss_tree "$APACHE_PID")
APACHE_PROCS=$([ -n "$APACHE_PID" ] && echo $((1 + $(children "$APACHE_PID" | wc -w))) || echo 0)
echo "# idle keep-alive connections nginx -> G / G-ldap-cached / G-ldap-cold / stub: $(for p in $P_G $P_GLC $P_GLD $P_STUB; do ss -Htn state established "( dport = :$p )" | wc -l; done | paste -sd/)"
n_err=$(errlines)
[ "$n_err" -gt 0 ] && { echo "# nginx error.log: $n_err line(s), the first 3:"; head -3 "$N/logs/error.log" | sed 's/^/#   /'; }

# ------------------------------------------------------------------ phase 3: memory with FILL_USERS cached identities
echo
echo "# phase 3, memory: a fresh Gatehouse with bench + $FILL_USERS {SHA} users, each logged in once"
python3 - "$T/g/htpasswd" "$T/g5/htpasswd" "$T/fill-auth.txt" "$FILL_USERS" <<'EOF' || die "could not write the fill users"
import base64, hashlib, sys
src, dst, auth, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(dst, "w") as out, open(auth, "w") as a:
    out.write(open(src).read())
    for i in range(1, n + 1):
        user, pw = "fill%05d" % i, "fill-pw-%05d" % i
        out.write("%s:{SHA}%s\n" % (user, base64.b64encode(hashlib.sha1(pw.encode()).digest()).decode()))
        a.write(base64.b64encode(("%s:%s" % (user, pw)).encode()).decode() + "\n")
EOF
cat >"$T/g5/gatehouse.yaml" <<EOF
listen: 127.0.0.1:$P_G5
backends:
  - {name: local, type: htpasswd, file: $T/g5/htpasswd}
$POLICY
EOF
start_gh g5 "$P_G5"
G5_PID=$!
ready "$P_G5" g5
sleep 1
RSS_G5_IDLE=$(vm "$G5_PID" VmRSS)
cat >"$T/fill.lua" <<'EOF'
local auths = {}
local i = 0
init = function(args)
  for line in io.lines(os.getenv("FILL_AUTH")) do auths[#auths + 1] = line end
end
request = function()
  i = i + 1
  local k = (i - 1) % #auths + 1     -- cycles: after the first pass every request is a cache hit
  return wrk.format("GET", "/auth/registry", { ["Authorization"] = "Basic " .. auths[k], ["X-Original-URI"] = "/v2/",
    ["X-Original-Method"] = "GET", ["X-Real-IP"] = "127.0.0.1" })
end
EOF
cat "$T/summary.lua" >>"$T/fill.lua"
miss0=$(metric "$P_G5" gatehouse_cache_misses_total)
t0=$(now)
# wrk -t1: one Lua state, so the users are asked in turn (wrk 4.1 drops the first request()
# it builds: user 1 gets its turn on the second pass)
FILL_AUTH=$T/fill-auth.txt wrk -t1 -c16 -d"$(awk -v n="$FILL_USERS" 'BEGIN { printf "%d", 3 + n / 2000 }')s" -s "$T/fill.lua" \
    "http://127.0.0.1:$P_G5/auth/registry" >"$T/wrk/fill.txt" 2>&1
line=$(sed -n 's/^BENCH //p' "$T/wrk/fill.txt")
[ -n "$line" ] || { cat "$T/wrk/fill.txt" >&2; die "cache fill: wrk gave no summary"; }
[ "$(kv non2xx "$line")" = 0 ] || { cat "$T/wrk/fill.txt" >&2; die "cache fill: non-2xx answers"; }
FILL_S=$(elapsed "$t0" "$(now)")
FILL_MISSES=$(($(metric "$P_G5" gatehouse_cache_misses_total) - miss0))
sleep 0.2
FILL_DISTINCT=$(grep -o 'decision=allow .* user=fill[0-9]* ' "$T/logs/g5.log" | grep -o 'user=fill[0-9]*' | sort -u | wc -l)
cached=0
for i in 1 $(((FILL_USERS + 1) / 2)) "$FILL_USERS"; do
    curl -s --max-time 5 -u "$(printf 'fill%05d:fill-pw-%05d' "$i" "$i")" "${SUB_HDRS[@]}" \
        "http://127.0.0.1:$P_G5/auth/registry?explain" | grep -q '"cached" : true' && cached=$((cached + 1))
done
FILL_OK=0
[ "$cached" = 3 ] && [ "$FILL_MISSES" -ge "$FILL_USERS" ] && [ "$FILL_DISTINCT" = "$FILL_USERS" ] && FILL_OK=1
sleep 1
RSS_G5_FILLED=$(vm "$G5_PID" VmRSS)
echo "# fill: $(kv requests "$line") requests in $FILL_S s, $FILL_MISSES cache misses (verifications), $FILL_DISTINCT distinct users allowed (audit), users first/middle/last cached (?explain): $cached/3"

# ------------------------------------------------------------------ summary
echo
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
export RSS_IDLE RSS_G5_IDLE RSS_G5_FILLED RSS_NGINX RSS_G RSS_GLC RSS_GLD RSS_SLAPD RSS_APACHE APACHE_PROCS \
    FILL_USERS FILL_OK LOCKED AFTER APACHE_SKIP
python3 - "$RESULTS" "$HZ" "$DURATION" <<'EOF'
import csv, os, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1]), delimiter="\t") if r["round"] != "0"]
hz, duration = float(sys.argv[2]), sys.argv[3]
env = os.environ
med = statistics.median
def rps(r): return int(r["requests"]) / (int(r["duration_us"]) / 1e6)
by = {}
for r in rows: by.setdefault(r["scenario"], []).append(r)
def rounds(s): return {r["round"]: rps(r) for r in by.get(s, [])}
def ratio(s, base):
    a, b = rounds(s), rounds(base)
    vals = [a[k] / b[k] for k in a if b.get(k)]
    return med(vals) if vals else None
def total(s, col):
    rs = by.get(s, [])
    return None if not rs or any(r[col] in ("-", "") for r in rs) else sum(int(r[col]) for r in rs)
def us(s, col):
    t, n = total(s, col), total(s, "requests")
    return None if t is None or not n else t * 1e6 / hz / n
def f(v, p=1): return "-" if v is None else "%.*f" % (p, v)
def mbk(k): return None if k in (None, "", "-") else int(k) / 1024
def met(ok): return "met" if ok else "NOT MET"
results = []
def result(k, v): results.append("# result: %s=%s" % (k, v))

# ---- phase 1
n_rounds = len(by.get("floor", []))
print("SUMMARY, phase 1 (direct, wrk -t1 -c16 -d%s, %d round(s); CPU us/req of the server process, summed over the rounds)" % (duration, n_rounds))
fmt = "| %-17s | %8s | %7s | %8s | %8s | %7s | %11s |"
print(fmt % ("server", "req/s", "p99 ms", "CPU us", "x floor", "non-2xx", "verif"))
print(fmt % ("---", "---", "---", "---", "---", "---", "---"))
floor = us("floor", "gate_ticks")
names = {"floor": "floor (SwiftNIO)", "success": "G cached success", "failure": "G cached failure", "token": "G access token"}
for s in ("floor", "success", "failure", "token"):
    if s not in by: continue
    rs = by[s]
    u = us(s, "gate_ticks")
    non2xx = sum(int(r["non2xx"]) for r in rs)
    req = total(s, "requests")
    v = total(s, "verifications")
    print(fmt % (names[s], "%.0f" % med([rps(r) for r in rs]), "%.2f" % (med([int(r["p99_us"]) for r in rs]) / 1000),
                 f(u), f(u / floor if u and floor else None, 2), "all" if s == "failure" and non2xx == req else str(non2xx),
                 "-" if v is None else str(v)))
print()
for s, goal in (("success", 20), ("failure", 25)):
    u = us(s, "gate_ticks")
    if u is None or floor is None: continue
    scaled = goal * floor / 16
    word = "success" if s == "success" else "failure"
    print("Gatehouse cached %s: %.1f µs/req (%.2f× floor); goal <= %d µs: %s; goal scaled to this box: %d × floor/16 = %d × %.1f/16 = %.1f µs: %s"
          % (word, u, u / floor, goal, met(u <= goal), goal, goal, floor, scaled, met(u <= scaled)))
    result("cached_%s_us_per_req" % word, "%.1f" % u)
    result("cached_%s_x_floor" % word, "%.2f" % (u / floor))
    result("cached_%s_rps_direct" % word, "%.0f" % med([rps(r) for r in by[s]]))
    result("goal_cached_%s_le_%dus" % (word, goal), "met" if u <= goal else "not_met")
    result("goal_cached_%s_le_%dus_scaled" % (word, goal), "met" if u <= scaled else "not_met")
tok, suc = us("token", "gate_ticks"), us("success", "gate_ticks")
if tok is not None and suc:
    print("Gatehouse access-token login: %.1f µs/req = %.2f× a cached password login; goal <= 1.0× (+5%% noise): %s" % (tok, tok / suc, met(tok <= suc * 1.05)))
    result("token_us_per_req", "%.1f" % tok)
    result("token_x_cached_success", "%.2f" % (tok / suc))
if floor is not None:
    results.insert(0, "# result: floor_us_per_req=%.1f" % floor)
    results.insert(1, "# result: floor_rps=%.0f" % med([rps(r) for r in by["floor"]]))
print("cached failure: no lockout during phase 1: %s (lockouts + locked-out requests + refusals: %s; the right password afterwards: %s)"
      % (met(env["LOCKED"] == "0" and env["AFTER"] == "200"), env["LOCKED"], env["AFTER"]))

# ---- phase 2
print()
n_rounds = len(by.get("p0", []))
print("SUMMARY, phase 2 (wrk -t2 -c32 -d%s, %d round(s); req/s, p99, xP0 = medians over rounds; CPU us/req per process summed over the rounds; RSS MB at the end)" % (duration, n_rounds))
fmt = "| %-21s | %8s | %6s | %7s | %7s | %5s | %5s | %5s | %6s | %6s | %6s | %-18s |"
print(fmt % ("scenario", "req/s", "xP0", "p99 ms", "non-2xx", "nginx", "gate", "slapd", "apache", "total", "verif", "RSS MB"))
print(fmt % tuple(["---"] * 12))
rss = {
    "p0": "nginx %s" % f(mbk(env["RSS_NGINX"])),
    "stub": "(in nginx)",
    "gatehouse-cached": "gate %s" % f(mbk(env["RSS_G"])),
    "gatehouse-ldap-cached": "gate %s" % f(mbk(env["RSS_GLC"])),
    "gatehouse-ldap-cold": "gate %s" % f(mbk(env["RSS_GLD"])),
    "apache-ldap": "apache %s (%s p)" % (f(mbk(env["RSS_APACHE"])), env["APACHE_PROCS"]),
}
order = ["p0", "stub", "gatehouse-cached", "gatehouse-ldap-cached", "gatehouse-ldap-cold", "apache-ldap"]
for s in order:
    if s not in by:
        if s == "apache-ldap": print(fmt % (s, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "skipped (below)"))
        continue
    rs = by[s]
    parts = {c: us(s, c + "_ticks") for c in ("nginx", "gate", "slapd", "apache")}
    if s != "apache-ldap": parts["apache"] = None      # idle meanwhile: only its own rows count them
    if s == "apache-ldap": parts["nginx"] = None
    if s in ("p0", "stub", "apache-ldap"): parts["gate"] = None
    if s in ("p0", "stub", "gatehouse-cached"): parts["slapd"] = None
    tot = sum(v for v in parts.values() if v is not None)
    v = total(s, "verifications")
    print(fmt % (s, "%.0f" % med([rps(r) for r in rs]), f(ratio(s, "p0"), 3), "%.2f" % (med([int(r["p99_us"]) for r in rs]) / 1000),
                 str(sum(int(r["non2xx"]) for r in rs)) + ("" if not sum(int(r["sockerr"]) for r in rs) else "+%se" % sum(int(r["sockerr"]) for r in rs)),
                 f(parts["nginx"]), f(parts["gate"]), f(parts["slapd"]), f(parts["apache"]), f(tot), "-" if v is None else str(v), rss[s]))
    key = s.replace("-", "_")
    result("%s_rps" % key, "%.0f" % med([rps(r) for r in rs]))
    result("%s_xp0" % key, f(ratio(s, "p0"), 3))
    result("%s_p99_ms" % key, "%.2f" % (med([int(r["p99_us"]) for r in rs]) / 1000))
    result("%s_cpu_us_per_req" % key, f(tot))
if "apache-ldap" not in by:
    result("apache_ldap", "skipped")
print("(verif = decisions not answered from the cache, from the audit lines; apache: the parent, its children, and children reaped during the run)")
print("RSS MB at the end of phase 2: nginx (master + workers) %s, slapd %s, apache %s (%s processes)"
      % (f(mbk(env["RSS_NGINX"])), f(mbk(env["RSS_SLAPD"])), f(mbk(env["RSS_APACHE"])), env["APACHE_PROCS"]))
print()
g = ratio("gatehouse-cached", "stub")
if g is not None:
    print("gatehouse-cached / stub = %.3f (median of same-round ratios; goal >= 0.85: %s)" % (g, met(g >= 0.85)))
    result("gatehouse_cached_vs_stub", "%.3f" % g)
    result("goal_gatehouse_cached_ge_0.85_stub", "met" if g >= 0.85 else "not_met")
a = ratio("gatehouse-ldap-cached", "apache-ldap")
if a is not None:
    print("gatehouse-ldap-cached / apache-ldap = %.2f (median of same-round ratios; goal >= 2: %s)" % (a, met(a >= 2)))
    result("gatehouse_ldap_cached_vs_apache", "%.2f" % a)
    result("goal_gatehouse_ldap_cached_ge_2x_apache", "met" if a >= 2 else "not_met")
else:
    print("gatehouse-ldap-cached / apache-ldap: apache-ldap %s" % env["APACHE_SKIP"])
    result("goal_gatehouse_ldap_cached_ge_2x_apache", "skipped")

# ---- phase 3
print()
idle, idle5, filled, n = mbk(env["RSS_IDLE"]), mbk(env["RSS_G5_IDLE"]), mbk(env["RSS_G5_FILLED"]), int(env["FILL_USERS"])
print("Gatehouse RSS idle (fresh, 1 user, nothing asked): %.1f MB; goal <= 30 MB: %s" % (idle, met(idle <= 30)))
print("Gatehouse RSS with %d cached identities: %.1f MB (the same process idle after start, %d users loaded: %.1f MB; %+.0f bytes/identity)%s; goal <= 35 MB: %s"
      % (n, filled, n + 1, idle5, (filled - idle5) * 1024 * 1024 / n, "" if env["FILL_OK"] == "1" else " UNCONFIRMED FILL", met(filled <= 35)))
result("rss_idle_mb", "%.1f" % idle)
result("rss_users_loaded_mb", "%.1f" % idle5)
result("rss_cached_identities_mb", "%.1f" % filled)
result("cached_identities", "%d%s" % (n, "" if env["FILL_OK"] == "1" else "_unconfirmed"))
result("goal_rss_idle_le_30mb", "met" if idle <= 30 else "not_met")
result("goal_rss_cached_le_35mb", "met" if filled <= 35 else "not_met")
print()
print("\n".join(results))
EOF
