#!/usr/bin/env bash
# Operations end to end: what an operator relies on once Gatehouse runs.
#
#   1. /metrics: the families exist and move by the expected amounts (decisions, latency
#      histogram, cache hits/misses/evictions, lockouts, LDAP pool and errors, reloads,
#      build info); no user name, repository, policy a client chose, or password in it.
#      A lockout outlives a reload.
#   2. Reloads without a signal: the config file, htpasswd, htgroups, and an LDAP backend's
#      bind_password_file and ca_file (a throwaway slapd from Tests/Fixtures/slapd.sh): a good
#      change is taken within seconds, one whose directory refuses the bind is refused.
#   3. Invalid configurations (YAML syntax, an unknown key, a missing file) are refused while
#      the old one keeps answering; `gatehouse config check` names the error.
#   4. Reloads under load: wrk through a real nginx (the shipped gatehouse-auth.conf as is, a
#      copy of gatehouse-upstream.conf pointed at a unix socket) while SIGHUP, config swaps and
#      htpasswd edits arrive every 0.5 s: no unexpected status, no socket error.
#   5. SIGTERM with requests in flight: every request already accepted gets its answer, the
#      process exits 0, new connections are refused, LDAP connections are unbound, the socket
#      file is gone.
#   6. Audit lines: JSON (one object per line, typed fields) and text; no password and no
#      Authorization value in the log; a hostile user name cannot add or forge a line.
#   7. The unix socket's mode and group (who may connect), who owns its path (a stale socket
#      after SIGKILL is taken over, a running instance's is not), a listen_group that names no
#      group; idle_timeout.
#
# Needs (Debian packages): nginx-light (or nginx), wrk, curl, python3, openssl, slapd,
# ldap-utils, iproute2 (ss), util-linux (setpriv), procps. Run as root (nginx's workers run
# as www-data; the socket's group is www-data).
#
# Usage:   Tests/e2e/operations.sh
# Env:     GATEHOUSE_BIN  the gatehouse binary (default: .build/debug/gatehouse in the
#                         repository); copied into the temp dir before use
#          KEEP_TMP=1     keep the temp directory (logs, configurations) after the run
#
# Output: one `ok - ...` / `not ok - ...` line per assertion, `# measure: ...` lines, and
# finally `N passed, M failed`; exit status 1 if anything failed.
set -u

REPO=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib/common.sh
. "$REPO/Tests/lib/common.sh"
HELPERS=$REPO/Tests/e2e/operations
gatehouse_bin .build/debug/gatehouse

section() { echo "# --- $* (at $(elapsed "$START" "$(now)")s)"; }

need_tools nginx wrk curl python3 openssl ss setpriv slapd slapadd ldapwhoami ldapadd setsid ps
[ "$(id -u)" = 0 ] || die "run as root (nginx workers as www-data, the socket's group)"
getent passwd www-data >/dev/null && getent group www-data >/dev/null || die "no www-data user/group"
getent passwd nobody >/dev/null && getent group nogroup >/dev/null || die "no nobody user / nogroup group"
[ -x "$GATEHOUSE_BIN" ] || die "no gatehouse binary at $GATEHOUSE_BIN (set GATEHOUSE_BIN)"
START=$(now)

A_PID= L_PID= N_PID= S1_PID= S2_PID= NGX_PID= LOOP_PID= LDAP_DIR= WRK_PIDS= CURL_PIDS=
cleanup() {
    # shellcheck disable=SC2086 # WRK_PIDS and CURL_PIDS are lists
    stop_all $LOOP_PID $WRK_PIDS $CURL_PIDS $NGX_PID $A_PID $L_PID $N_PID $S1_PID $S2_PID
    [ -n "$LDAP_DIR" ] && slapd_fixture stop
    remove_tmp
}
make_tmp ops
chmod 755 "$T"    # nginx's workers (www-data) reach the socket and the static file through it

mkdir -p "$T"/{logs,a,l,n,run} || die "mkdir"
chmod 755 "$T/run"
copy_gatehouse

read -r P_A P_NGX < <(free_ports 2) || die "no free ports"
echo "# ports: gatehouse A=$P_A nginx=$P_NGX; unix sockets in $T/run"

# ---------------------------------------------------------------- helpers
rand_ip() { echo "10.$((RANDOM % 256)).$((RANDOM % 256)).$((RANDOM % 254 + 1))"; }
# ask TARGET CREDS METHOD URI [CURL ARGS...]: the status Gatehouse answers /auth with.
# TARGET a (TCP) or l (unix socket); CREDS user:password or - (none). Each request comes
# from a random X-Real-IP (the peer is a trusted proxy) unless CLIENT_IP is set, so that the
# per-address lockout only sees the failures a test means it to see.
ask() {
    local target=$1 creds=$2 method=$3 uri=$4
    shift 4
    local args=(-s -o /dev/null -w '%{http_code}' --max-time 15 -H "X-Original-Method: $method"
        -H "X-Original-URI: $uri" -H "X-Real-IP: ${CLIENT_IP:-$(rand_ip)}")
    [ "$creds" = - ] || args+=(-u "$creds")
    case $target in
    a) curl "${args[@]}" "$@" "http://127.0.0.1:$P_A/auth" ;;
    l) curl "${args[@]}" "$@" --unix-socket "$L_SOCK" "http://gatehouse/auth" ;;
    n) curl "${args[@]}" "$@" --unix-socket "$N_SOCK" "http://gatehouse/auth" ;;
    esac
}
# get TARGET PATH: GET a path of the service (body on stdout)
get() {
    case $1 in
    a) curl -s --max-time 10 "http://127.0.0.1:$P_A$2" ;;
    l) curl -s --max-time 10 --unix-socket "$L_SOCK" "http://gatehouse$2" ;;
    n) curl -s --max-time 10 --unix-socket "$N_SOCK" "http://gatehouse$2" ;;
    esac
}
# snap TARGET FILE: the /metrics text into FILE; m FILE NAME [LABEL=VALUE...]: a value from it
snap() { get "$1" /metrics >"$2"; }
# (awk: a python start per value would cost seconds; metric.py --lint checks the format once)
m() {
    local f=$1 name=$2
    shift 2
    awk -v name="$name" -v want="$*" '
        BEGIN { n = split(want, w, " ") }
        /^#/ || NF != 2 { next }
        {
            i = index($1, "{")
            if ((i ? substr($1, 1, i - 1) : $1) != name) next
            labels = i ? substr($1, i) : ""
            for (j = 1; j <= n; j++) {
                k = substr(w[j], 1, index(w[j], "=") - 1)
                v = substr(w[j], index(w[j], "=") + 1)
                if (!index(labels, "{" k "=\"" v "\"") && !index(labels, "," k "=\"" v "\"")) next
            }
            total += $2
        }
        END { if (total == int(total)) printf "%d\n", total; else print total }' "$f"
}
# d BEFORE AFTER NAME [LABEL=VALUE...]: how much a series moved
d() {
    local b=$1 a=$2
    shift 2
    awk -v x="$(m "$a" "$@")" -v y="$(m "$b" "$@")" 'BEGIN { v = x - y; if (v == int(v)) printf "%d", v; else printf "%s", v }'
}
# answer_is TARGET STATUS CREDS METHOD URI: for wait_for
answer_is() { [ "$(ask "$1" "$3" "$4" "$5")" = "$2" ]; }
# metric_reached TARGET VALUE NAME [LABEL=VALUE...]: for wait_for
metric_reached() {
    local target=$1 want=$2
    shift 2
    get "$target" /metrics >"$T/logs/poll.prom" && [ "$(m "$T/logs/poll.prom" "$@")" -ge "$want" ]
}
# replace FILE: stdin into FILE atomically (a temp file in the same directory, then rename),
# as editors and configuration management do
replace() { cat >"$1.new.$$" && mv -f "$1.new.$$" "$1"; }
hash_line() { printf '%s' "$2" | "$GH" hash --cost "${3:-4}" "$1"; }
wait_socket() { # SOCK: until the unix socket answers /healthz
    local i
    for i in $(seq 1 100); do
        [ -S "$1" ] && curl -s -o /dev/null --max-time 2 --unix-socket "$1" http://gatehouse/healthz && return 0
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------- slapd (for L)
LDAP_DIR=$T/ldap
slapd_fixture start || { diag <"$T/logs/slapd-fixture.log"; die "slapd fixture did not start"; }

# ================================================================ instance A
# TCP, htpasswd, JSON log, a 3-entry cache (evictions), lockout after 3 failures, idle 2 s
PW_READER=reader-ops-pw PW_PUSHER=pusher-ops-pw PW_AUDITOR=auditor-ops-pw PW_VICTIM=victim-ops-pw PW_VICTIM2=victim2-ops-pw
PW_ZZ=zz-known-ops-pw PW_NEWBIE=newbie-ops-pw PW_CHANGER_OLD=changer-old-pw PW_CHANGER_NEW=changer-new-pw
{
    hash_line reader "$PW_READER" && hash_line pusher "$PW_PUSHER" && hash_line auditor "$PW_AUDITOR" &&
        hash_line victim "$PW_VICTIM" && hash_line victim2 "$PW_VICTIM2" && hash_line zzknownuser "$PW_ZZ" && hash_line changer "$PW_CHANGER_OLD"
} >"$T/a/htpasswd" 2>"$T/logs/hash.log" || { diag <"$T/logs/hash.log"; die "gatehouse hash"; }
printf 'pushers: pusher\n' >"$T/a/htgroups"
A_CONF=$T/a/gatehouse.yaml
A_LOG=$T/logs/gatehouse-a.log
# a_config RULES...: the configuration of A with these registry rules (YAML flow mappings)
a_config() {
    cat <<EOF
listen: 127.0.0.1:$P_A
realm: Registry
default_policy: registry
idle_timeout: 2s
cache: {ttl: 5m, negative_ttl: 30s, max_entries: 3}
lockout: {max_failures: 3, user_max_failures: 5, address_max_failures: 6, window: 1m}
log: {format: json}
backends:
  - {name: local, type: htpasswd, file: $T/a/htpasswd, groups_file: $T/a/htgroups}
EOF
    registry_policy_yaml "$@"
}
RULES_A1=('{groups: [pushers], allow: [pull, push]}' '{users: ["*"], allow: [pull]}')
RULES_A2=('{users: [reader], repositories: ["team/**"], allow: [pull, push]}' "${RULES_A1[@]}")
a_config "${RULES_A1[@]}" >"$A_CONF"
out=$("$GH" config check --config "$A_CONF" 2>&1) || { printf '%s\n' "$out" | diag; die "config check of A"; }
"$GH" serve --config "$A_CONF" >"$A_LOG" 2>&1 &
A_PID=$!
wait_for 10 http_answers "http://127.0.0.1:$P_A/healthz" || { diag <"$A_LOG"; die "gatehouse A did not start"; }
M=$T/logs/m   # metric snapshots: $M.<name>

# ================================================================ 1. metrics
section "1. /metrics"
MAN=/v2/team/app/manifests/1
snap a "$M.0"
codes="$(ask a "reader:$PW_READER" GET $MAN) $(ask a "reader:$PW_READER" PUT $MAN)"
codes+=" $(ask a "pusher:wrong-1" GET $MAN) $(ask a "pusher:wrong-1" GET $MAN) $(ask a - GET /v2/)"
snap a "$M.1"
check_eq "the requests answer allow, deny, challenge x2 (same wrong password), anonymous challenge" "200 403 401 401 401" "$codes"
check_eq "decisions_total{outcome=allow,policy=registry,backend=local} +1" 1 \
    "$(d "$M.0" "$M.1" gatehouse_decisions_total outcome=allow policy=registry backend=local)"
check_eq "decisions_total{outcome=deny,policy=registry,backend=local} +1" 1 \
    "$(d "$M.0" "$M.1" gatehouse_decisions_total outcome=deny policy=registry backend=local)"
check_eq "decisions_total{outcome=challenge,policy=registry} +3" 3 \
    "$(d "$M.0" "$M.1" gatehouse_decisions_total outcome=challenge policy=registry)"
check_eq "cache_misses_total +2 (reader's first request, the first wrong password)" 2 "$(d "$M.0" "$M.1" gatehouse_cache_misses_total)"
check_eq "cache_hits_total{verdict=success} +1 (reader's second request)" 1 "$(d "$M.0" "$M.1" gatehouse_cache_hits_total verdict=success)"
check_eq "cache_hits_total{verdict=failure} +1 (the same wrong password again)" 1 "$(d "$M.0" "$M.1" gatehouse_cache_hits_total verdict=failure)"
check_eq "decision_duration_seconds_count{policy=registry} +5 (one per decision)" 5 \
    "$(d "$M.0" "$M.1" gatehouse_decision_duration_seconds_count policy=registry)"
check_eq "the histogram's _count equals the sum of decisions_total{policy=registry}" \
    "$(m "$M.1" gatehouse_decisions_total policy=registry)" "$(m "$M.1" gatehouse_decision_duration_seconds_count policy=registry)"
check_eq "the histogram's +Inf bucket equals its _count" \
    "$(m "$M.1" gatehouse_decision_duration_seconds_count policy=registry)" "$(m "$M.1" gatehouse_decision_duration_seconds_bucket policy=registry le=+Inf)"
check_match "build_info{version} is 1" '^gatehouse_build_info\{version="[^"]+"\} 1(\.0)?$' "$(grep '^gatehouse_build_info' "$M.1")"
check_match "/metrics is Prometheus text (Content-Type text/plain; version=0.0.4)" '^[Cc]ontent-[Tt]ype: text/plain; version=0\.0\.4' \
    "$(curl -s -D - -o /dev/null "http://127.0.0.1:$P_A/metrics" | tr -d '\r')"
check_eq "every line of /metrics is a comment or a well-formed sample" "" "$(python3 "$HELPERS/metric.py" --lint <"$M.1")"

# lockout: 3 wrong passwords for victim from one address lock that pair only (victim from that
# address); the same wrong password again counts once; other users there, and victim elsewhere,
# keep working.
CLIENT_IP=192.0.2.77
codes="$(ask a victim:w1 GET $MAN) $(ask a victim:w1 GET $MAN) $(ask a victim:w1 GET $MAN) $(ask a "victim:$PW_VICTIM" GET $MAN)"
check_eq "lockout: one wrong password three times counts once: victim's right password then passes" "401 401 401 200" "$codes"
codes="$(ask a victim:w2 GET $MAN) $(ask a victim:w3 GET $MAN) $(ask a victim:w4 GET $MAN)"
codes+=" $(ask a "victim:$PW_VICTIM" GET $MAN) $(ask a "pusher:$PW_PUSHER" GET $MAN)"
unset CLIENT_IP
snap a "$M.2"
check_eq "lockout: 3 distinct wrong passwords, then victim's right password (401) and another user (200) from that address" \
    "401 401 401 401 200" "$codes"
CLIENT_IP=192.0.2.99
check_eq "lockout: victim from another address is not locked (200)" 200 "$(ask a "victim:$PW_VICTIM" GET $MAN)"
unset CLIENT_IP
check_eq "lockouts_total{scope=pair} +1" 1 "$(d "$M.1" "$M.2" gatehouse_lockouts_total scope=pair)"
check_eq "locked_out_requests_total +1 (victim's right password from the locked pair)" 1 "$(d "$M.1" "$M.2" gatehouse_locked_out_requests_total)"
# a guesser spread over addresses: victim2 gets 5 (user_max_failures) across five addresses,
# then is refused everywhere. (The address ceiling, which lets cached credentials pass, is in
# LockoutTests: this instance's 3-entry cache would forget them.)
for i in 1 2 3 4 5; do CLIENT_IP=192.0.2.$((120 + i)) ask a "victim2:g$i" GET $MAN >/dev/null; done
CLIENT_IP=192.0.2.130
check_eq "lockout: user_max_failures over five addresses locks the user everywhere (401 from a sixth)" 401 "$(ask a "victim2:$PW_VICTIM2" GET $MAN)"
unset CLIENT_IP
snap a "$M.2b"
check_eq "lockouts_total{scope=user} +1" 1 "$(d "$M.2" "$M.2b" gatehouse_lockouts_total scope=user)"
check_eq "lockout_refusals_total{scope=user} +1" 1 "$(d "$M.2" "$M.2b" gatehouse_lockout_refusals_total scope=user)"
kill -HUP "$A_PID"
wait_for 4 metric_reached a $(($(m "$M.2" gatehouse_config_reloads_total trigger=signal result=success) + 1)) gatehouse_config_reloads_total trigger=signal result=success
pass_if $? "lockout: a SIGHUP reload succeeds meanwhile"
CLIENT_IP=192.0.2.77
check_eq "lockout: the reload does not end victim's lockout (right password from the locked address: still 401)" 401 "$(ask a "victim:$PW_VICTIM" GET $MAN)"
unset CLIENT_IP

# evictions: max_entries 3 (the reload above emptied the cache): of 20 new credentials (unknown
# users; each a cached failure) at most 3 may stay, so at least 17 are pushed out
snap a "$M.3"
for i in $(seq 1 20); do ask a "evict$i:pw$i" GET $MAN >/dev/null; done
snap a "$M.4"
check_eq "20 new credentials: 20 cache misses" 20 "$(d "$M.3" "$M.4" gatehouse_cache_misses_total)"
echo "# measure: cache_evictions_total +$(d "$M.3" "$M.4" gatehouse_cache_evictions_total) for 20 new credentials into a full cache (max_entries 3)"
check_le "max_entries 3 bounds the cache: 20 new credentials evict at least 17 entries (cache_evictions_total)" 17 "$(d "$M.3" "$M.4" gatehouse_cache_evictions_total)"

# nothing a client chooses reaches /metrics
codes="$(ask a "zzknownuser:$PW_ZZ" GET /v2/zzsecretrepo/app/manifests/1) $(ask a "zz-hostile-user:$PW_ZZ" GET /v2/zzsecretrepo2/x/manifests/1)"
codes+=" $(curl -s -o /dev/null -w '%{http_code}' -u "zzknownuser:$PW_ZZ" -H 'X-Original-URI: /v2/zzsecretrepo/app/manifests/1' "http://127.0.0.1:$P_A/auth/zz-hostile-policy")"
check_eq "a distinctive user, an unknown one, and an unknown policy answer 200 401 404" "200 401 404" "$codes"
snap a "$M.5"
check_nomatch "no user name, repository, client-chosen policy or password appears in /metrics" \
    "zzknownuser|zz-hostile-user|zzsecretrepo|zz-hostile-policy|$PW_ZZ|$PW_READER|pusher:|reader" "$(cat "$M.5")"
check_le "the unknown policy is counted under a fixed label (policy=unknown)" 1 "$(m "$M.5" gatehouse_decisions_total policy=unknown)"
fams=$(python3 "$HELPERS/metric.py" --families <"$M.5" | sort | tr '\n' ' ')
missing=
for f in gatehouse_decisions_total gatehouse_decision_duration_seconds gatehouse_cache_hits_total gatehouse_cache_misses_total \
    gatehouse_cache_evictions_total gatehouse_lockouts_total gatehouse_locked_out_requests_total gatehouse_build_info; do
    case " $fams " in *" $f "*) ;; *) missing+=" $f" ;; esac
done
check_eq "A exposes every family it has touched (decisions, latency, cache, lockout, build info)" "" "$missing"

# ================================================================ 2. reloads without a signal
section "2. reloads on file changes (A: config, htpasswd, htgroups)"
reloads() { m "$1" gatehouse_config_reloads_total trigger="$2" result="$3"; }

# (a) the configuration file
check_eq "before: reader may not push team/app (403)" 403 "$(ask a "reader:$PW_READER" PUT $MAN)"
snap a "$M.6"
t0=$(date +%s)
a_config "${RULES_A2[@]}" | replace "$A_CONF"
wait_for 4 answer_is a 200 "reader:$PW_READER" PUT $MAN
pass_if $? "config edited (a rule lets reader push team/**): reader's push answers 200 within 4 s (took ${WAITED}s)"
echo "# measure: config file change -> new answer in ${WAITED}s"
sleep 0.2
snap a "$M.7"
check_eq "config_reloads_total{trigger=file,result=success} +1" 1 "$(d "$M.6" "$M.7" gatehouse_config_reloads_total trigger=file result=success)"
ts=$(m "$M.7" gatehouse_config_last_reload_success_timestamp_seconds)
awk -v ts="$ts" -v t0="$t0" -v t1="$(date +%s)" 'BEGIN { exit !(ts >= t0 - 1 && ts <= t1 + 1) }'
pass_if $? "config_last_reload_success_timestamp_seconds is the reload's time ($ts)"
check_eq "... other answers unchanged: reader may not push other/app (403), pusher may (200)" "403 200" \
    "$(ask a "reader:$PW_READER" PUT /v2/other/app/manifests/1) $(ask a "pusher:$PW_PUSHER" PUT /v2/other/app/manifests/1)"

# (b) htpasswd: a new user; a changed password
check_eq "before: newbie cannot log in (401)" 401 "$(ask a "newbie:$PW_NEWBIE" GET /v2/)"
snap a "$M.8"
hash_line newbie "$PW_NEWBIE" >>"$T/a/htpasswd"    # appended in place, as the README shows
# wait for the reload, not with newbie's failing logins (they would count toward a lockout)
wait_for 4 metric_reached a $(($(reloads "$M.8" file success) + 1)) gatehouse_config_reloads_total trigger=file result=success
check_eq "htpasswd: a user appended to the file logs in within 4 s (reload after ${WAITED}s)" 200 "$(ask a "newbie:$PW_NEWBIE" GET /v2/)"
sleep 0.2
snap a "$M.9"
check_eq "htpasswd change: config_reloads_total{trigger=file,result=success} +1" 1 "$(d "$M.8" "$M.9" gatehouse_config_reloads_total trigger=file result=success)"
check_eq "before the change: changer's old password works (and is cached) (200 200)" "200 200" \
    "$(ask a "changer:$PW_CHANGER_OLD" GET $MAN) $(ask a "changer:$PW_CHANGER_OLD" GET $MAN)"
{ grep -v '^changer:' "$T/a/htpasswd"; hash_line changer "$PW_CHANGER_NEW"; } | replace "$T/a/htpasswd"
wait_for 4 answer_is a 401 "changer:$PW_CHANGER_OLD" GET $MAN
pass_if $? "htpasswd: after a password change the old (cached) password is refused within 4 s (took ${WAITED}s)"
check_eq "... and the new password works (200)" 200 "$(ask a "changer:$PW_CHANGER_NEW" GET $MAN)"
check_eq "... and the old one stays refused (401)" 401 "$(ask a "changer:$PW_CHANGER_OLD" GET $MAN)"

# (c) htgroups
check_eq "before: newbie may not push (403)" 403 "$(ask a "newbie:$PW_NEWBIE" PUT /v2/newbie-team/app/manifests/1)"
snap a "$M.10"
printf 'pushers: pusher newbie\n' | replace "$T/a/htgroups"
wait_for 4 answer_is a 200 "newbie:$PW_NEWBIE" PUT /v2/newbie-team/app/manifests/1
pass_if $? "htgroups: newbie added to pushers may push within 4 s (took ${WAITED}s)"
sleep 0.2
snap a "$M.11"
check_eq "htgroups change: config_reloads_total{trigger=file,result=success} +1" 1 "$(d "$M.10" "$M.11" gatehouse_config_reloads_total trigger=file result=success)"

# SIGHUP still works
kill -HUP "$A_PID"
wait_for 4 metric_reached a "$(($(reloads "$M.11" signal success) + 1))" gatehouse_config_reloads_total trigger=signal result=success
pass_if $? "SIGHUP: config_reloads_total{trigger=signal,result=success} +1 within 4 s"

# ================================================================ 3. invalid configurations
section "3. invalid configurations are refused, the old one keeps serving"
expected_answers="200 403 200 401"
answers() {
    echo "$(ask a "reader:$PW_READER" PUT $MAN) $(ask a "reader:$PW_READER" PUT /v2/other/app/manifests/1) $(ask a "newbie:$PW_NEWBIE" PUT /v2/x/y/manifests/1) $(ask a - GET /v2/)"
}
check_eq "answers before: reader pushes team/app, not other/app; newbie pushes; anonymous challenged" "$expected_answers" "$(answers)"
GOOD_A=$T/a/good.yaml
cp "$A_CONF" "$GOOD_A"
# invalid NAME SED-SCRIPT PATTERN: the serving file turned invalid by SED-SCRIPT
invalid() {
    local name=$1 script=$2 pattern=$3 before refused0 out rc
    sed "$script" "$GOOD_A" >"$T/a/$name.yaml"
    out=$("$GH" config check --config "$T/a/$name.yaml" 2>&1)
    rc=$?
    check_eq "$name: gatehouse config check exits 1" 1 "$rc"
    check_match "$name: gatehouse config check names the error ($pattern)" "$pattern" "$out"
    snap a "$M.inv"
    before=$(reloads "$M.inv" file failure)
    refused0=$(grep -c 'reload refused, the previous configuration keeps serving' "$A_LOG")
    replace "$A_CONF" <"$T/a/$name.yaml"
    wait_for 4 metric_reached a $((before + 1)) gatehouse_config_reloads_total trigger=file result=failure
    pass_if $? "$name: the reload is refused: config_reloads_total{trigger=file,result=failure} +1 within 4 s"
    check_eq "$name: one 'reload refused, the previous configuration keeps serving' log line" $((refused0 + 1)) \
        "$(grep -c 'reload refused, the previous configuration keeps serving' "$A_LOG")"
    check_match "$name: the log line names the error" "$pattern" "$(grep 'reload refused' "$A_LOG" | tail -n1)"
    check_eq "$name: the old configuration keeps answering" "$expected_answers" "$(answers)"
}
invalid yaml-syntax-error 's/^policies:$/policies: {registry: [unclosed/' 'YAML|yaml'
invalid unknown-key 's/^realm: Registry$/realm: Registry\nlisten_mod: "0660"/' 'listen_mod.*(unknown|line)|line [0-9]+.*listen_mod'
# the file on disk is invalid now: the serving configuration's htpasswd is still followed
snap a "$M.inv2"
hash_line latecomer latecomer-ops-pw >>"$T/a/htpasswd"
wait_for 4 metric_reached a $(($(reloads "$M.inv2" file failure) + 1)) gatehouse_config_reloads_total trigger=file result=failure
pass_if $? "with an invalid config file on disk, an htpasswd change triggers a reload that is refused too"
sleep 1.2   # the serving htpasswd backend re-reads its file within a second by itself
check_eq "... yet the user appended to htpasswd logs in (the serving configuration follows its files)" 200 "$(ask a latecomer:latecomer-ops-pw GET /v2/)"
invalid missing-htpasswd "s#file: $T/a/htpasswd#file: $T/a/no-such-htpasswd#" 'no-such-htpasswd'
snap a "$M.12"
replace "$A_CONF" <"$GOOD_A"
wait_for 4 metric_reached a $(($(reloads "$M.12" file success) + 1)) gatehouse_config_reloads_total trigger=file result=success
pass_if $? "the valid file written back is reloaded (result=success) within 4 s"
check_eq "... answers unchanged" "$expected_answers" "$(answers)"

# ================================================================ 6. audit lines (JSON, on A)
section "6. audit lines (JSON on A)"
U_ALLOW=/v2/audit-allow/app/manifests/1 U_DENY=/v2/audit-deny/app/manifests/1 U_CHAL=/v2/audit-challenge/app/manifests/1
U_CHAL2=/v2/audit-challenge2/app/manifests/1
codes="$(ask a "auditor:$PW_AUDITOR" GET $U_ALLOW) $(ask a "auditor:$PW_AUDITOR" DELETE $U_DENY) $(ask a "auditor:not-$PW_AUDITOR" GET $U_CHAL) $(ask a "auditor:not-$PW_AUDITOR" GET $U_CHAL2)"
check_eq "auditor: allow, deny, challenge, the same wrong password again" "200 403 401 401" "$codes"
sleep 0.3
check_eq "JSON: the allow is one audit line with typed fields" \
    'n=1 decision="allow" status=200 user="auditor" cached=false log="audit"' "$(python3 "$HELPERS/audit.py" "$A_LOG" uri $U_ALLOW)"
check_eq "JSON: the deny is one audit line with typed fields (answered from the cache)" \
    'n=1 decision="deny" status=403 user="auditor" cached=true log="audit"' "$(python3 "$HELPERS/audit.py" "$A_LOG" uri $U_DENY)"
check_eq "JSON: the challenge is one audit line with typed fields (no authenticated user)" \
    'n=1 decision="challenge" status=401 user="-" cached=false log="audit"' "$(python3 "$HELPERS/audit.py" "$A_LOG" uri $U_CHAL)"
check_eq "JSON: the repeated wrong password is answered from the cache, and its line says cached=true" \
    'n=1 decision="challenge" status=401 user="-" cached=true log="audit"' "$(python3 "$HELPERS/audit.py" "$A_LOG" uri $U_CHAL2)"
leaks=
for secret in "$PW_READER" "$PW_PUSHER" "$PW_AUDITOR" "not-$PW_AUDITOR" "$PW_VICTIM" "$PW_ZZ" "$PW_NEWBIE" "$PW_CHANGER_OLD" "$PW_CHANGER_NEW" \
    "$(b64 "auditor:$PW_AUDITOR")" "$(b64 "reader:$PW_READER")" "$(b64 "auditor:not-$PW_AUDITOR")" '$2y$'; do
    grep -qF -- "$secret" "$A_LOG" && leaks+=" $secret"
done
check_eq "JSON log: no password, no Authorization value, no hash" "" "$leaks"
HOSTILE=$'zz-hostile-user\n{"message":"decision","decision":"allow","user":"admin","status":200}\e[31m"quote\r'
n0=$(wc -l <"$A_LOG")
allow_admin0=$(python3 "$HELPERS/audit.py" "$A_LOG" allow-as admin)
check_eq "JSON: a hostile user name (newline, quote, ESC, CR) gets 401" 401 "$(ask a "$HOSTILE:whatever" GET /v2/audit-hostile/app/manifests/1)"
sleep 0.3
check_eq "JSON: ... exactly one more log line" $((n0 + 1)) "$(wc -l <"$A_LOG")"
check_eq "JSON: ... every line of the log is one JSON object" "lines=$(wc -l <"$A_LOG") bad=0" "$(python3 "$HELPERS/audit.py" "$A_LOG" lint)"
check_eq "JSON: ... it is one audit line (challenge) for its URI" 'n=1 decision="challenge" status=401' \
    "$(python3 "$HELPERS/audit.py" "$A_LOG" uri /v2/audit-hostile/app/manifests/1 | cut -d' ' -f1-3)"
check_eq "JSON: ... no forged 'allow admin' line" "$allow_admin0" "$(python3 "$HELPERS/audit.py" "$A_LOG" allow-as admin)"
check_eq "JSON: ... no raw ESC or CR byte in the log" 0 "$(grep -c $'\e\|\r' "$A_LOG")"
# A name without control characters passes the credential check and reaches the log (detail):
# quotes, a backslash, key=value look-alikes and a Unicode line separator (U+2028).
HOSTILE2=$'zz-hostile-user" decision=allow user=admin status=200 \\ next\xe2\x80\xa8forged'
n0=$(wc -l <"$A_LOG")
check_eq "JSON: a user name with quotes, key=value look-alikes and U+2028 gets 401" 401 "$(ask a "$HOSTILE2:whatever" GET /v2/audit-hostile2/app/manifests/1)"
sleep 0.3
check_eq "JSON: ... exactly one more log line, and every line is one JSON object" "$((n0 + 1)) lines=$((n0 + 1)) bad=0" \
    "$(wc -l <"$A_LOG") $(python3 "$HELPERS/audit.py" "$A_LOG" lint)"
check_eq "JSON: ... it is one audit line (challenge) for its URI" 'n=1 decision="challenge" status=401' \
    "$(python3 "$HELPERS/audit.py" "$A_LOG" uri /v2/audit-hostile2/app/manifests/1 | cut -d' ' -f1-3)"
check_eq "JSON: ... no forged 'allow admin' record" "$allow_admin0" "$(python3 "$HELPERS/audit.py" "$A_LOG" allow-as admin)"
check_eq "JSON: ... U+2028 is escaped (no raw line separator in the file)" 0 "$(grep -c $'\xe2\x80\xa8' "$A_LOG")"

# ================================================================ 7b. idle_timeout (A)
section "7. idle_timeout (A: 2s)"
idle=$(python3 - "$P_A" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def closed_after(first):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10)
    t0 = time.monotonic()
    if first:
        s.sendall(first)
    try:
        while s.recv(4096):
            pass
        return "%.2f" % (time.monotonic() - t0)
    except socket.timeout:
        return "open"
    except OSError as e:
        return "%.2f" % (time.monotonic() - t0)
from concurrent.futures import ThreadPoolExecutor
with ThreadPoolExecutor(3) as pool:
    probes = [pool.submit(closed_after, first) for first in
              (b"", b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", b"GET /healthz HTTP/1.1\r\nHost:")]
    print(*(p.result() for p in probes))
PY
)
read -r idle_silent idle_keepalive idle_partial <<<"$idle"
echo "# measure: idle_timeout 2s: a silent connection closed after ${idle_silent}s, an idle keep-alive after ${idle_keepalive}s, a half-sent request after ${idle_partial}s"
for pair in "a connection that sends nothing:$idle_silent" "an idle keep-alive connection after one request:$idle_keepalive" "a half-sent request:$idle_partial"; do
    v=${pair##*:}
    awk -v v="$v" 'BEGIN { exit !(v != "open" && v + 0 >= 1.5 && v + 0 <= 4.0) }'
    pass_if $? "idle_timeout 2s closes ${pair%:*} after 1.5-4 s ($v s)"
done

snap a "$M.end"
check_nomatch "after everything, still no user name, repository or password in A's /metrics" \
    "zzknownuser|zz-hostile|zzsecretrepo|audit-allow|auditor|newbie|changer|victim|$PW_AUDITOR" "$(cat "$M.end")"
stop_pid "$A_PID"
A_PID=
check_eq "A exits 0 on SIGTERM" 0 "$STOP_RC"

# ================================================================ instance L
# unix socket (default mode), text log, no cache: htpasswd with a slow bcrypt user, then LDAP
section "instance L: unix socket, text log, htpasswd (bcrypt cost 12) + LDAP (slapd), no cache"
L_SOCK=$T/run/l.sock
L_CONF=$T/l/gatehouse.yaml
L_LOG=$T/logs/gatehouse-l.log
PW_SLOW=slow-ops-pw
hash_line slow "$PW_SLOW" 12 >"$T/l/htpasswd" || die "hash slow"
# One user per in-flight request in section 5: requests with the same user and password share
# one verification, and then they would all finish together, before the signal.
for i in 1 2 3 4 5 6 7 8; do hash_line "slow$i" "$PW_SLOW" 12 >>"$T/l/htpasswd" || die "hash slow$i"; done
cp "$(ldap_env CA_FILE)" "$T/l/ca.crt"
cp "$(ldap_env BIND_PASSWORD_FILE)" "$T/l/bind-password"
BIND_PW=$(ldap_env BIND_PASSWORD)
LDAPS_PORT=$(ldap_env LDAPS_PORT)
cat >"$L_CONF" <<EOF
listen: unix:$L_SOCK
realm: Registry
default_policy: registry
cache: {max_entries: 0}
backends:
  - {name: local, type: htpasswd, file: $T/l/htpasswd}
$(ldap_backend_yaml 2 "$T/l/ca.crt" "$T/l/bind-password")
$(registry_policy_yaml)
EOF
out=$("$GH" config check --config "$L_CONF" 2>&1) || { printf '%s\n' "$out" | diag; die "config check of L"; }
"$GH" serve --config "$L_CONF" >"$L_LOG" 2>&1 &
L_PID=$!
wait_socket "$L_SOCK" || { diag <"$L_LOG"; die "gatehouse L did not start"; }
check_eq "unix socket without listen_mode/listen_group: mode 660, the process's group" "660 $(id -gn)" "$(stat -c '%a %G' "$L_SOCK")"

snap l "$M.l0"
codes="$(ask l alice:alice-pw PUT /v2/corp/app/manifests/1) $(ask l carol:carol-pw PUT /v2/corp/app/manifests/1) $(ask l carol:carol-pw GET /v2/corp/app/manifests/1) $(ask l alice:not-alice-pw GET /v2/)"
check_eq "LDAP over the unix socket: alice (pushers) pushes, carol may not push, carol pulls, a wrong password is challenged" "200 403 200 401" "$codes"
snap l "$M.l1"
check_eq "decisions_total{backend=corp}: +3 (allow 2, deny 1)" "2 1" \
    "$(d "$M.l0" "$M.l1" gatehouse_decisions_total outcome=allow backend=corp) $(d "$M.l0" "$M.l1" gatehouse_decisions_total outcome=deny backend=corp)"
check_eq "ldap_errors_total{backend=corp,kind=invalid_credentials} +1 (alice's wrong password)" 1 \
    "$(d "$M.l0" "$M.l1" gatehouse_ldap_errors_total backend=corp kind=invalid_credentials)"
check_eq "ldap_pool_size{backend=corp} is the configured 2" 2 "$(m "$M.l1" gatehouse_ldap_pool_size backend=corp)"
check_le "ldap_pool_connections{backend=corp,pool=search} >= 1 after verifications" 1 "$(m "$M.l1" gatehouse_ldap_pool_connections backend=corp pool=search)"
check_le "ldap_pool_connections{backend=corp,pool=bind} >= 1 after verifications" 1 "$(m "$M.l1" gatehouse_ldap_pool_connections backend=corp pool=bind)"
check_eq "ldap_pool_in_use{backend=corp} is 0 when idle" 0 "$(m "$M.l1" gatehouse_ldap_pool_in_use backend=corp)"
# parallel N CMD...: N copies of CMD in the background (output in par.1 .. par.N), waited for
parallel() {
    local n=$1 i pids=
    shift
    for i in $(seq 1 "$n"); do "$@" >"$T/logs/par.$i" & pids+=" $!"; done
    for i in $pids; do wait "$i"; done
    cat $(seq -f "$T/logs/par.%g" 1 "$n") | sed 's/\(...\)/\1 /g; s/ $//'
}
codes=$(parallel 8 ask l alice:alice-pw GET /v2/corp/app/manifests/1)
snap l "$M.l2"
check_eq "8 concurrent LDAP verifications (pool_size 2): all 200" "200 200 200 200 200 200 200 200" "$codes"
echo "# measure: ldap_pool_waits_total{backend=corp} +$(d "$M.l1" "$M.l2" gatehouse_ldap_pool_waits_total backend=corp) for 8 concurrent verifications with pool_size 2"

# ================================================================ 2d. LDAP bind_password_file, ca_file
section "2d. reloads of LDAP files (L)"
# ldap_conns: established TCP connections of L to slapd
ldap_conns() { ss -Htnp state established "( dport = :$LDAPS_PORT )" | grep -c "pid=$L_PID,"; }
WRONG_BIND_PW=wrong-bind-pw-ops
# ldap_refused NAME WRITE-CMD: the file change WRITE-CMD must be refused, the old config serving
# First a SIGHUP reload, so that the serving configuration starts with fresh pools: the
# verifications after the refused change then need new connections to the directory.
ldap_refused() {
    local name=$1 before refused0 line
    shift
    snap l "$M.lr"
    kill -HUP "$L_PID"
    wait_for 5 metric_reached l $(($(reloads "$M.lr" signal success) + 1)) gatehouse_config_reloads_total trigger=signal result=success
    pass_if $? "$name: first a SIGHUP reload (fresh LDAP pools) succeeds"
    snap l "$M.lr"
    before=$(reloads "$M.lr" file failure)
    refused0=$(grep -c 'reload refused, the previous configuration keeps serving' "$L_LOG")
    "$@"
    wait_for 5 metric_reached l $((before + 1)) gatehouse_config_reloads_total trigger=file result=failure
    pass_if $? "$name: reload refused: config_reloads_total{trigger=file,result=failure} +1 within 5 s (took ${WAITED}s)"
    line=$(grep 'reload refused, the previous configuration keeps serving' "$L_LOG" | tail -n1)
    check_eq "$name: one 'reload refused' log line" $((refused0 + 1)) "$(grep -c 'reload refused, the previous configuration keeps serving' "$L_LOG")"
    check_match "$name: the log line names the backend" 'backend corp' "$line"
    check_nomatch "$name: the log line contains no password" "$WRONG_BIND_PW|$BIND_PW" "$line"
    echo "# log: $(printf '%s' "$line" | cut -c1-300)"
    check_eq "$name: the old configuration still verifies LDAP users (4 concurrent: 200, then carol 403, alice 200)" "200 200 200 200 403 200" \
        "$(parallel 4 ask l alice:alice-pw PUT /v2/corp/app/manifests/1) $(ask l carol:carol-pw PUT /v2/corp/app/manifests/1) $(ask l alice:alice-pw PUT /v2/corp/app/manifests/1)"
}
# ldap_accepted NAME WRITE-CMD: the file change must be reloaded
ldap_accepted() {
    local name=$1 before
    shift
    snap l "$M.la"
    before=$(reloads "$M.la" file success)
    "$@"
    wait_for 5 metric_reached l $((before + 1)) gatehouse_config_reloads_total trigger=file result=success
    pass_if $? "$name: reload succeeds: config_reloads_total{trigger=file,result=success} +1 within 5 s (took ${WAITED}s)"
    check_eq "$name: alice pushes, carol may not (200 403)" "200 403" \
        "$(ask l alice:alice-pw PUT /v2/corp/app/manifests/1) $(ask l carol:carol-pw PUT /v2/corp/app/manifests/1)"
}
write_bind_pw() { printf '%s' "$1" | replace "$T/l/bind-password"; }
ldap_refused "wrong password in bind_password_file" write_bind_pw "$WRONG_BIND_PW"
ldap_accepted "right password written back to bind_password_file" write_bind_pw "$BIND_PW"
check_match "the reload is logged as 'configuration reloaded' (trigger=file)" 'configuration reloaded' "$(tail -n 20 "$L_LOG")"
(
    cd "$T/l" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=Unrelated CA" -keyout other-ca.key -out other-ca.crt
) >"$T/logs/openssl.log" 2>&1 || { diag <"$T/logs/openssl.log"; die "openssl"; }
ldap_refused "ca_file replaced by an unrelated CA" eval 'replace "$T/l/ca.crt" <"$T/l/other-ca.crt"'
ldap_accepted "the right CA written back to ca_file" eval 'replace "$T/l/ca.crt" <"$(ldap_env CA_FILE)"'
sleep 0.3
snap l "$M.l3"
gauge=$(m "$M.l3" gatehouse_ldap_pool_connections backend=corp)
conns=$(ldap_conns)
check_eq "after 4 reloads (2 refused): L's TCP connections to slapd are the ones its pool gauge reports" "$gauge" "$conns"
check_le "... and no more than both pools of one configuration (2 x pool_size)" "$conns" 4

# ================================================================ 6b. audit lines (text, on L)
section "6b. audit lines (text on L)"
n0=$(wc -l <"$L_LOG")
check_eq "text: a hostile user name (newline, quote, ESC, CR) gets 401" 401 "$(ask l "$HOSTILE:whatever" GET /v2/audit-hostile/app/manifests/1)"
sleep 0.3
check_eq "text: ... exactly one more log line" $((n0 + 1)) "$(wc -l <"$L_LOG")"
check_match "text: ... it is the audit line of the challenge" 'decision=challenge .*uri=/v2/audit-hostile/app/manifests/1' "$(tail -n1 "$L_LOG")"
check_eq "text: ... no line starts with the forged JSON" 0 "$(grep -c '^{' "$L_LOG")"
check_eq "text: ... no raw ESC or CR byte in the log" 0 "$(grep -c $'\e\|\r' "$L_LOG")"
check_eq "text: ... every line starts with a timestamp" 0 "$(grep -cv '^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T' "$L_LOG")"
n0=$(wc -l <"$L_LOG")
check_eq "text: a user name with quotes, key=value look-alikes and U+2028 gets 401" 401 "$(ask l "$HOSTILE2:whatever" GET /v2/audit-hostile2/app/manifests/1)"
sleep 0.3
line=$(tail -n1 "$L_LOG")
check_eq "text: ... exactly one more log line" $((n0 + 1)) "$(wc -l <"$L_LOG")"
check_match "text: ... it is the audit line of the challenge" 'decision=challenge .*uri=/v2/audit-hostile2/app/manifests/1' "$line"
check_eq "text: ... the line has one decision= field and one user= field (the name cannot forge 'decision=allow user=admin')" "1 1" \
    "$(printf '%s' "$line" | grep -o '\(^\| \)decision=[^ ]*' | wc -l) $(printf '%s' "$line" | grep -o '\(^\| \)user=[^ ]*' | wc -l)"
check_eq "text: ... U+2028 is escaped (no raw line separator in the file)" 0 "$(grep -c $'\xe2\x80\xa8' "$L_LOG")"
leaks=
for secret in alice-pw carol-pw "$PW_SLOW" "$BIND_PW" "$WRONG_BIND_PW" "$(b64 alice:alice-pw)" "$(b64 carol:carol-pw)"; do
    grep -qF -- "$secret" "$L_LOG" && leaks+=" $secret"
done
check_eq "text log: no password and no Authorization value" "" "$leaks"

# ================================================================ 5. SIGTERM with requests in flight (L)
section "5. SIGTERM with requests in flight (L)"
N_INFLIGHT=8
unbind0=$(grep -c ' UNBIND$' "$LDAP_DIR/slapd.log")
lost0=$(grep -c 'closed (connection lost)' "$LDAP_DIR/slapd.log")
ldap_open=$(ldap_conns)
CURL_PIDS=
for i in $(seq 1 $N_INFLIGHT); do
    curl -s -o /dev/null -w '%{http_code}' --max-time 30 -u "slow$i:$PW_SLOW" -H "X-Original-URI: /v2/inflight-$i/app/manifests/1" \
        --unix-socket "$L_SOCK" http://gatehouse/auth >"$T/logs/inflight.$i" 2>&1 &
    CURL_PIDS+=" $!"
done
# accepted = the server end of the connection is a file descriptor of L (ss -p names it)
accepted() { [ "$(ss -Hxp | grep -F "$L_SOCK" | grep -c "pid=$L_PID,")" -ge "$N_INFLIGHT" ]; }
wait_for 10 accepted
pass_if $? "all $N_INFLIGHT slow requests (bcrypt cost 12, no cache) are accepted by L before the signal"
sleep 0.1
done_before=$(grep -c 'uri=/v2/inflight-' "$L_LOG")
kill -TERM "$L_PID"
t0=$(now)
sleep 0.2
late=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 --unix-socket "$L_SOCK" http://gatehouse/healthz 2>/dev/null)
late_rc=$?
if alive "$L_PID"; then
    check_eq "while draining, a new connection is refused (curl exit 7), not served" "7 000" "$late_rc $late"
else
    echo "# skip: L had already exited 0.2 s after SIGTERM; the new-connection probe proves nothing"
fi
wait "$L_PID"
L_RC=$?
L_STOP=$(elapsed "$t0" "$(now)")
L_PID=
results=""
for pid in $CURL_PIDS; do wait "$pid"; done
CURL_PIDS=
for i in $(seq 1 $N_INFLIGHT); do results+="$(cat "$T/logs/inflight.$i") "; done
check_eq "L exits 0 on SIGTERM" 0 "$L_RC"
echo "# measure: SIGTERM -> exit ${L_STOP}s with $((N_INFLIGHT - done_before)) of $N_INFLIGHT requests in flight at the signal"
check_le "at least half of the requests were still in flight at the signal (the test means something)" $((N_INFLIGHT / 2)) $((N_INFLIGHT - done_before))
check_eq "every request accepted before SIGTERM got its answer (200)" "$(printf '200 %.0s' $(seq 1 $N_INFLIGHT))" "$results"
check_eq "... and each one's audit line was written" "$N_INFLIGHT" "$(grep -c 'uri=/v2/inflight-' "$L_LOG")"
check_eq "the socket file is removed on exit" "absent" "$([ -e "$L_SOCK" ] && echo present || echo absent)"
check_match "the log says it stopped" 'stopped' "$(tail -n 3 "$L_LOG")"
sleep 0.2
check_eq "LDAP connections were closed with an UNBIND ($ldap_open open before the signal)" "$ldap_open" \
    "$(($(grep -c ' UNBIND$' "$LDAP_DIR/slapd.log") - unbind0))"
check_eq "... none of them was merely dropped (slapd: 'connection lost')" "$lost0" "$(grep -c 'closed (connection lost)' "$LDAP_DIR/slapd.log")"

# ================================================================ 7c. who owns the socket path
section "7c. the socket path: a second instance, a stale socket, listen_group"
S_SOCK=$T/run/s.sock
# s_config REALM: a small configuration on S_SOCK; the realm shows which process answered
s_config() {
    cat <<EOF
listen: unix:$S_SOCK
realm: $1
backends:
  - {name: local, type: htpasswd, file: $T/a/htpasswd}
$(registry_policy_yaml '{users: ["*"], allow: [pull]}')
EOF
}
s_config first >"$T/run/s1.yaml"
s_config second >"$T/run/s2.yaml"
realm_at() { curl -s -D - -o /dev/null --max-time 3 -H 'X-Original-URI: /v2/' --unix-socket "$S_SOCK" http://gatehouse/auth | tr -d '\r' | sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: Basic realm="\([^"]*\)".*/\1/p'; }
start_s() { # NAME: start S1 or S2 (realm first / second) in the background; sets SPID
    "$GH" serve --config "$T/run/$1.yaml" >>"$T/logs/gatehouse-$1.log" 2>&1 &
    SPID=$!
}
# this one is killed with SIGKILL: started through sh so that it is no job of this shell
# (bash would report "Killed")
S1_PID=$(sh -c '"$0" serve --config "$1" >>"$2" 2>&1 </dev/null & echo $!' "$GH" "$T/run/s1.yaml" "$T/logs/gatehouse-s1.log")
wait_socket "$S_SOCK" || { diag <"$T/logs/gatehouse-s1.log"; die "gatehouse S1 did not start"; }
check_eq "S1 answers on its socket (realm first)" first "$(realm_at)"
kill -KILL "$S1_PID"
wait_for 5 eval '! alive "$S1_PID"'
check_eq "SIGKILL leaves the socket file behind (stale)" present "$([ -S "$S_SOCK" ] && echo present || echo absent)"
start_s s1
S1_PID=$SPID
wait_socket "$S_SOCK"
check_eq "a restart takes over the stale socket and serves (realm first)" first "$(realm_at)"
start_s s2
S2_PID=$SPID
sleep 2
if alive "$S2_PID"; then s2_state="running"; else wait "$S2_PID"; s2_state="exited $?"; fi
check_match "a second instance on the socket path of a running one refuses to start (exits non-zero)" '^exited [1-9]' "$s2_state"
check_eq "... and the running instance keeps the socket (realm first answers)" first "$(realm_at)"
[ "$s2_state" = running ] && { echo "# the second instance's log:"; diag 3 <"$T/logs/gatehouse-s2.log"; }
stop_pid "$S2_PID"
S2_PID=
check_eq "... and still has it after the second instance is gone" first "$(realm_at)"
stop_pid "$S1_PID"
S1_PID=
check_eq "S1 exits 0 on SIGTERM" 0 "$STOP_RC"
s_config first | sed 's/^realm: first$/realm: first\nlisten_group: no-such-group-ops/' >"$T/run/s3.yaml"
out=$("$GH" config check --config "$T/run/s3.yaml" 2>&1)
rc=$?
check_eq "config check refuses a listen_group that names no group (exit 1)" 1 "$rc"
check_match "... and names it" 'no-such-group-ops' "$out"

# ================================================================ instance N (behind nginx)
section "instance N: unix socket with listen_group www-data behind nginx"
N_SOCK=$T/run/n.sock
N_CONF=$T/n/gatehouse.yaml
N_LOG=$T/logs/gatehouse-n.log
{ hash_line reader "$PW_READER" && hash_line pusher "$PW_PUSHER"; } >"$T/n/htpasswd" || die "hash N"
printf 'pushers: pusher\n' >"$T/n/htgroups"
# two configurations that answer the load's requests alike
n_config() {
    local rules=('{groups: [pushers], allow: [pull, push]}' '{users: ["*"], allow: [pull]}')
    [ "$1" = 2 ] && rules=('{users: ["*"], repositories: ["nobody-uses-this/**"], allow: []}'
        '{groups: [registry-admins], allow: [pull, push, delete, catalog]}' "${rules[@]}")
    cat <<EOF
listen: unix:$N_SOCK
listen_mode: "0660"
listen_group: www-data
realm: Registry
default_policy: registry
log: {denials_only: true}
backends:
  - {name: local, type: htpasswd, file: $T/n/htpasswd, groups_file: $T/n/htgroups}
EOF
    registry_policy_yaml "${rules[@]}"
    [ "$1" != 2 ] || wiki_policy_yaml
}
n_config 1 >"$T/n/config-1.yaml"
n_config 2 >"$T/n/config-2.yaml"
for v in 1 2; do
    out=$("$GH" config check --config "$T/n/config-$v.yaml" 2>&1) || { printf '%s\n' "$out" | diag; die "config check of N variant $v"; }
done
cp "$T/n/config-1.yaml" "$N_CONF"
"$GH" serve --config "$N_CONF" >"$N_LOG" 2>&1 &
N_PID=$!
wait_socket "$N_SOCK" || { diag <"$N_LOG"; die "gatehouse N did not start"; }
check_eq "unix socket with listen_mode \"0660\", listen_group www-data: mode 660, group www-data" "660 www-data" "$(stat -c '%a %G' "$N_SOCK")"
probe_as() { setpriv --reuid="$1" --regid="$2" --clear-groups curl -s -o /dev/null -w '%{http_code}' --max-time 5 --unix-socket "$N_SOCK" http://gatehouse/healthz; echo " $?"; }
check_eq "a process of group www-data connects (200)" "200 0" "$(probe_as www-data www-data)"
check_eq "a process outside the group (nobody:nogroup) cannot connect (curl exit 7)" "000 7" "$(probe_as nobody nogroup)"

# nginx: the shipped gatehouse-auth.conf as is; gatehouse-upstream.conf with the socket
NG=$T/nginx
nginx_dir "$NG" www
printf 'ok\n' >"$NG/www/ok"
chmod -R a+rX "$NG/www"
kit_copy gatehouse-upstream.conf "$NG/conf.d/gatehouse-upstream.conf" "s#server 127\.0\.0\.1:9180;#server unix:$N_SOCK;#"
[ "$KIT_CHANGED" = 1 ] && [ -z "$(printf '%s\n' "$KIT_DIFF" | grep '^>' | grep -v "^>     server unix:$N_SOCK;$")" ]
pass_if $? "the copy of nginx/gatehouse-upstream.conf differs only in its server line (unix:$N_SOCK)"
nginx_conf "$NG" "www-data www-data" 1 1024 notice <<EOF
    default_type application/octet-stream;
    access_log off;
    include conf.d/gatehouse-upstream.conf;
    server {
        listen 127.0.0.1:$P_NGX;
        set \$gatehouse_policy registry;
        include snippets/gatehouse-auth.conf;
        location /v2/ {
            auth_request /_gatehouse_auth;
            root $NG/www;
            try_files /ok =404;
        }
    }
EOF
nginx_check "$NG"
nginx_status=$?
pass_if $nginx_status "nginx -t accepts the configuration (snippets/gatehouse-auth.conf included as shipped)"
[ $nginx_status = 0 ] || printf '%s\n' "$NGINX_OUT" | diag
nginx_start "$NG"
NGX_PID=$!
wait_for 5 http_answers "http://127.0.0.1:$P_NGX/v2/" || { diag <"$NG/logs/error.log"; die "nginx did not start"; }
check_eq "nginx's worker runs as www-data:www-data (the socket's group)" "www-data www-data" \
    "$(ps -o user=,group= --ppid "$NGX_PID" | head -n1 | awk '{ print $1, $2 }')"
NU=http://127.0.0.1:$P_NGX$MAN
AUTH_READER="Authorization: Basic $(b64 "reader:$PW_READER")"
sleep 0.2 # audit lines are written in batches (every 50 ms): let the start-up checks' lines land first
n_lines0=$(grep -c 'decision=' "$N_LOG")
codes="$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH_READER" "$NU") $(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "$AUTH_READER" "$NU") $(curl -s -o /dev/null -w '%{http_code}' "$NU")"
check_eq "through nginx and the unix socket: reader pulls (200), may not push (403), anonymous is challenged (401)" "200 403 401" "$codes"
sleep 0.2
check_eq "log.denials_only: the deny and the challenge are logged, the allow is not" \
    "0 1 1" "$(grep 'decision=' "$N_LOG" | tail -n +$((n_lines0 + 1)) | awk '/decision=allow/ { a++ } /decision=deny/ { d++ } /decision=challenge/ { c++ } END { printf "%d %d %d", a, d, c }')"
check_match "the client address behind nginx on a unix socket is nginx's X-Real-IP (127.0.0.1), not 'unix'" 'client=127\.0\.0\.1 ' \
    "$(grep 'decision=deny' "$N_LOG" | tail -n1)"

# ================================================================ 4. reloads under load
section "4. reloads under load: wrk through nginx, SIGHUP / config swap / htpasswd edit every 0.5 s"
LOAD_SECS=8
snap n "$M.n0"
e0=$(wc -l <"$NG/logs/error.log")
(
    v=1 tick=0
    while :; do
        sleep 0.5
        tick=$((tick + 1))
        case $((tick % 3)) in
        0) v=$((3 - v)); replace "$N_CONF" <"$T/n/config-$v.yaml" ;;
        1) kill -HUP "$N_PID" ;;
        # A real edit: rewriting the same bytes (or a touch) is no change and no reload.
        2) echo "# edit $tick" >>"$T/n/htpasswd" ;;
        esac
        echo "$tick" >"$T/logs/reload-ticks"
    done
) &
LOOP_PID=$!
WRK_PIDS=
run_wrk() { # NAME METHOD [wrk args]
    local name=$1 method=$2
    shift 2
    WRK_METHOD=$method wrk -t1 -c4 -d${LOAD_SECS}s --timeout 5s -s "$HELPERS/statuses.lua" "$@" "$NU" >"$T/logs/wrk-$name.out" 2>&1 &
    WRK_PIDS+=" $!"
}
run_wrk pull GET -H "$AUTH_READER"
run_wrk push PUT -H "$AUTH_READER"
run_wrk anon GET
for pid in $WRK_PIDS; do wait "$pid"; done
WRK_PIDS=
kill "$LOOP_PID" 2>/dev/null
wait "$LOOP_PID" 2>/dev/null
LOOP_PID=
sleep 1.2   # a last file change may still be reloading
snap n "$M.n1"
# wrk_line NAME: "2xx=.. 401=.. 403=.. other4xx=.. 5xx=.. other=.. connect=.. read=.. write=.. timeout=.."
wrk_line() { sed -n 's/^statuses //p; s/^errors //p' "$T/logs/wrk-$1.out" | tr '\n' ' ' | sed 's/ $//'; }
wrk_req() { sed -n 's/^requests=//p' "$T/logs/wrk-$1.out"; }
wrk_get() { wrk_line "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
for spec in "pull:2xx:readers' pulls answer 200" "push:403:readers' pushes answer 403" "anon:401:anonymous requests answer 401"; do
    name=${spec%%:*} rest=${spec#*:}
    class=${rest%%:*} desc=${rest#*:}
    n=$(wrk_get "$name" "$class")
    echo "# measure: wrk $name: $(wrk_line "$name") requests=$(wrk_req "$name") in ${LOAD_SECS}s"
    [ -n "$n" ] && [ "$n" -gt 0 ] 2>/dev/null || { not_ok "under load: wrk $name produced results"; diag <"$T/logs/wrk-$name.out"; continue; }
    expect="2xx=0 401=0 403=0 other4xx=0 5xx=0 other=0 connect=0 read=0 write=0 timeout=0"
    expect=$(printf '%s' "$expect" | sed "s/\b$class=0/$class=$n/")
    check_eq "under load with reloads: all $n of the $desc; no other status, no socket error" "$expect" "$(wrk_line "$name")"
done
ticks=$(cat "$T/logs/reload-ticks" 2>/dev/null || echo 0)
sig=$(d "$M.n0" "$M.n1" gatehouse_config_reloads_total trigger=signal result=success)
fil=$(d "$M.n0" "$M.n1" gatehouse_config_reloads_total trigger=file result=success)
fail=$(d "$M.n0" "$M.n1" gatehouse_config_reloads_total result=failure)
echo "# measure: $ticks reload ticks during the load: reloads signal=$sig file=$fil failed=$fail"
check_le "under load: SIGHUP reloads succeeded (>= 3)" 3 "$sig"
check_le "under load: file-change reloads succeeded (>= 3)" 3 "$fil"
check_eq "under load: no reload failed" 0 "$fail"
for spec in "pull:allow:2xx" "push:deny:403" "anon:challenge:401"; do
    name=${spec%%:*} rest=${spec#*:}
    outcome=${rest%%:*} class=${rest#*:}
    n=$(wrk_get "$name" "$class")
    got=$(d "$M.n0" "$M.n1" gatehouse_decisions_total outcome="$outcome" policy=registry)
    awk -v g="$got" -v n="${n:-0}" 'BEGIN { exit !(g >= n && g <= n + 4) }'
    pass_if $? "decisions_total{outcome=$outcome} moved by what wrk counted ($got vs $n, at most 4 in flight when wrk stopped)"
done
errs=$(tail -n +$((e0 + 1)) "$NG/logs/error.log" | grep -E '\[(error|crit|alert|emerg)\]')
check_eq "nginx's error.log has no error during the load (no failed connect, no premature close)" "" "$errs"

# ================================================================ 5b. SIGTERM with nginx's idle keep-alive connections
kept=$(ss -Hxp | grep -F "$N_SOCK" | grep -c "pid=$N_PID,")
stop_pid "$N_PID"
N_PID=
echo "# measure: N stopped in ${STOP_SECS}s with $kept connections from nginx open"
check_eq "N exits 0 on SIGTERM while nginx holds $kept keep-alive connections" 0 "$STOP_RC"
check_le "... within 5 s (idle keep-alive connections do not hold up the stop)" "$STOP_SECS" 5
check_eq "... and removes its socket file" "absent" "$([ -e "$N_SOCK" ] && echo present || echo absent)"
check_eq "with Gatehouse stopped nginx lets nothing through (500)" 500 "$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH_READER" "$NU")"

# ---------------------------------------------------------------- summary
echo "# measure: total run time $(elapsed "$START" "$(now)")s"
if [ "$FAILED" -gt 0 ]; then
    echo "# logs: $T/logs (set KEEP_TMP=1 to keep them)"
    for f in "$A_LOG" "$L_LOG" "$N_LOG"; do
        echo "# --- $(basename "$f") (tail)"
        diag 6 <"$f"
    done
fi
finish
