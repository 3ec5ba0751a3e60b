#!/usr/bin/env bash
# End-to-end test of the self-service token page (issue 16, SPEC "Access tokens") in headless
# Chromium: Chromium -> private nginx (TLS, the shipped registry kit) -> Gatehouse's `/tokens`
# page and API (htpasswd backend, `tokens: {store: "sqlite:..."}`) and, for the tokens the page
# creates, skopeo-free curl requests through the same nginx -> auth_request -> Debian's
# docker-registry.
#
#   - GET /tokens/ serves the page without credentials, under a strict Content-Security-Policy
#     whose script-src / style-src are the SHA-256 hashes of the page's one inline script and
#     style; the browser logs no CSP violation and no JavaScript error;
#   - the API's 401 carries `WWW-Authenticate: Basic` except for `X-Requested-With:
#     XMLHttpRequest` (the page), so a wrong password in the page is a visible error, no dialog;
#   - alice signs in, creates a token scoped to team/* pull+push: it is shown once and matches
#     ^gth_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$, the list shows it, and it works through nginx
#     (team/app: the registry's 404 NAME_UNKNOWN, an upload starts) but not outside its scope
#     (other/app: 403), not with another user name (401), not to manage tokens (403);
#   - Revoke in the page removes it from the list and the token gets 401 within 2 s;
#   - after a reload the secret is nowhere in the page; bob sees none of alice's tokens and
#     cannot revoke them;
#   - no secret in Gatehouse's log, nginx's logs, the store file or `gatehouse token list`.
#
# The browser half is Tests/e2e/token_page.py (Selenium); it asks this script for the checks
# that need curl with a `CHECK NAME ARG...` line on a pipe and waits for the answer. Its
# ok / not ok lines pass through and are counted here.
#
# The nginx configuration includes nginx/gatehouse-auth.conf, gatehouse-identity.conf and
# gatehouse-tokens.conf as shipped (DIR/snippets is a symlink to nginx/) and copies of
# gatehouse-upstream.conf and registry.conf in which sed replaces only ports and certificate
# paths (checked); registry.conf's `location = /tokens` and `location /tokens/` are the kit's.
#
# Needs (Debian packages): nginx-light (or nginx), docker-registry, apache2-utils (htpasswd),
# openssl, curl, chromium, chromium-driver, python3-selenium (for /usr/bin/python3).
# Run as root (Chromium then runs with --no-sandbox). Everything lives in a temp dir; all
# servers listen on free loopback ports.
#
# Usage:   Tests/e2e/token-page.sh
# Env:     GATEHOUSE_BIN  the gatehouse binary (default: .build/debug/gatehouse in the
#                         repository); it is copied to the temp dir before use
#          PYTHON         the Python with selenium (default: /usr/bin/python3, Debian's; a
#                         pyenv python first in PATH has no python3-selenium)
#          KEEP_TMP=1     keep the temp directory (logs, configs, the store, chromedriver's log)
#
# Output: one `ok - ...` / `not ok - ...` line per assertion, `# measure: ...` lines, and
# finally `N passed, M failed`; exit status 1 if anything failed.
set -u

REPO=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib/common.sh
. "$REPO/Tests/lib/common.sh"
gatehouse_bin .build/debug/gatehouse
PYTHON=${PYTHON:-/usr/bin/python3}

need_tools nginx docker-registry openssl curl htpasswd chromium chromedriver
"$PYTHON" -c 'import selenium' 2>/dev/null || die "$PYTHON has no selenium (apt-get install python3-selenium)"
[ -x "$GATEHOUSE_BIN" ] || die "no gatehouse binary at $GATEHOUSE_BIN (set GATEHOUSE_BIN)"
START=$(now)

REG_PID='' GATE_PID='' NGX_PID='' PY_PID=''
cleanup() {
    exec 3>&- 4<&-
    stop_all "$PY_PID" "$NGX_PID" "$GATE_PID" "$REG_PID"
    remove_tmp
}
make_tmp token-page
chmod 755 "$T"
mkdir -p "$T"/{logs,pki,registry,home,tmp,chromium} || die "mkdir"
copy_gatehouse

if out=$("$GH" token --help 2>&1); then
    ok "gatehouse has the token subcommand (gatehouse token --help)"
else
    printf '%s\n' "$out" | diag
    die "gatehouse token --help failed: this binary has no access tokens (issue 16)"
fi

read -r P_REG P_GATE P_NGX < <(free_ports 3) || die "no free ports"
echo "# ports: registry=$P_REG gatehouse=$P_GATE nginx=$P_NGX"

# ---------------------------------------------------------------- PKI
loopback_pki "$T/pki" "Gatehouse token page e2e CA"
CA=$T/pki/ca.crt KEY=$T/pki/server.key CRT=$T/pki/server.crt
# Chromium trusts exactly this key (--ignore-certificate-errors-spki-list), not every certificate
SPKI=$(openssl x509 -in "$CRT" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64) ||
    die "the server key's SPKI hash"
CURL=(curl -sS --cacert "$CA" --max-time 10)

# ---------------------------------------------------------------- registry
start_registry "$P_REG"

# ---------------------------------------------------------------- Gatehouse
ALICE=alice ALICE_PW='alice-token-page-pw' BOB=bob BOB_PW='bob-token-page-pw'
{
    htpasswd -nbB -C 5 "$ALICE" "$ALICE_PW" && htpasswd -nbB -C 5 "$BOB" "$BOB_PW"
} 2>"$T/logs/htpasswd.log" | sed '/^$/d' >"$T/htpasswd"
[ "$(grep -c : "$T/htpasswd")" = 2 ] || { diag <"$T/logs/htpasswd.log"; die "htpasswd"; }
echo "pushers: $ALICE" >"$T/htgroups"
MAX_DAYS=90
GATE_LOG=$T/logs/gatehouse.log
cat >"$T/gatehouse.yaml" <<EOF
listen: 127.0.0.1:$P_GATE
realm: Registry
trusted_proxies: [127.0.0.1/32, "::1/128"]
default_policy: registry
backends:
  - {name: local, type: htpasswd, file: $T/htpasswd, groups_file: $T/htgroups}
$(registry_policy_yaml)
$(wiki_policy_yaml)
tokens:
  store: "sqlite:$T/tokens.db"
  max_lifetime: ${MAX_DAYS}d
EOF
if out=$("$GH" config check --config "$T/gatehouse.yaml" 2>&1); then
    ok "gatehouse config check accepts the configuration (tokens: sqlite store, max_lifetime ${MAX_DAYS}d)"
else
    { cat "$T/gatehouse.yaml"; printf '%s\n' "$out"; } | diag 30
    die "gatehouse config check refuses $T/gatehouse.yaml"
fi
"$GH" serve --config "$T/gatehouse.yaml" >"$GATE_LOG" 2>&1 </dev/null &
GATE_PID=$!
wait_for 10 http_answers "http://127.0.0.1:$P_GATE/healthz" 200 || { diag <"$GATE_LOG"; die "gatehouse did not start"; }

# ---------------------------------------------------------------- nginx
N=$T/nginx
nginx_dir "$N"
kit_copy gatehouse-upstream.conf "$N/conf.d/gatehouse-upstream.conf" "s#server 127\.0\.0\.1:9180;#server 127.0.0.1:$P_GATE;#"
if kit_only 1 'server'; then
    ok "copy of nginx/gatehouse-upstream.conf differs only in its server line"
else
    not_ok "copy of nginx/gatehouse-upstream.conf differs only in its server line (changed $KIT_CHANGED)"
    printf '%s\n' "$KIT_DIFF" | diag
fi
kit_copy registry.conf "$N/conf.d/registry.conf" "
s#listen 443 ssl;#listen 127.0.0.1:$P_NGX ssl;#
s#server 127\.0\.0\.1:5000;#server 127.0.0.1:$P_REG;#
s#/etc/nginx/ssl/registry\.example\.com\.crt#$CRT#
s#/etc/nginx/ssl/registry\.example\.com\.key#$KEY#"
if kit_only 4 'listen|server|ssl_certificate|ssl_certificate_key'; then
    ok "copy of nginx/registry.conf differs only in 4 deployment lines (ports, certificates)"
else
    not_ok "copy of nginx/registry.conf differs only in deployment lines (changed $KIT_CHANGED, expected 4)"
    printf '%s\n' "$KIT_DIFF" | diag
fi
# The kit's own locations for the page and the API, included as shipped (snippets/)
check_match "the registry kit exposes /tokens and /tokens/ through snippets/gatehouse-tokens.conf" \
    'location = /tokens \{ *include snippets/gatehouse-tokens\.conf; *\} *location /tokens/ \{ *include snippets/gatehouse-tokens\.conf; *\}' \
    "$(tr -s ' \n' '  ' <"$N/conf.d/registry.conf")"
nginx_conf "$N" "$(id -un) $(id -gn)" 1 256 notice <<EOF
    default_type application/octet-stream;
    log_format tokenpage '\$remote_addr gate_user=\$gatehouse_user "\$request" \$status \$body_bytes_sent "\$http_user_agent"';
    access_log $N/logs/access.log tokenpage;
    include conf.d/gatehouse-upstream.conf;
    include conf.d/registry.conf;
EOF
if nginx_check "$N"; then
    ok "nginx -t accepts the registry kit with /tokens"
else
    not_ok "nginx -t accepts the registry kit with /tokens"
    printf '%s\n' "$NGINX_OUT" | diag
    die "nginx configuration"
fi
nginx_start "$N"
NGX_PID=$!
BASE=https://127.0.0.1:$P_NGX
wait_for 10 http_answers "$BASE/v2/" "" --cacert "$CA" || { diag <"$N/logs/error.log"; die "nginx did not start"; }

# ---------------------------------------------------------------- the page and the API with curl
# req OUT METHOD PATH [CURL-ARGS...]: the status; the headers in OUT.h, the body in OUT.b
req() {
    local out=$1 method=$2 path=$3
    shift 3
    "${CURL[@]}" -X "$method" -D "$out.h" -o "$out.b" -w '%{http_code}' "$@" "$BASE$path"
}
# header OUT NAME: the value of NAME in OUT.h (last one, CR removed)
header() { tr -d '\r' <"$1.h" | sed -n "s/^$2: *//Ip" | tail -n1; }
XRW=(-H 'X-Requested-With: XMLHttpRequest')
R=$T/r

code=$(req "$R" GET /tokens/)
check_eq "GET /tokens/ through nginx without credentials: 200 (the page needs none)" 200 "$code"
check_match "GET /tokens/: Content-Type text/html" '^text/html' "$(header "$R" Content-Type)"
check_match "GET /tokens/: it is the token page (the #signin form)" 'id="signin"' "$(cat "$R.b")"
check_match "GET /tokens/: Content-Security-Policy with default-src 'none' and hashed script-src" \
    "default-src 'none'.*script-src 'sha256-" "$(header "$R" Content-Security-Policy)"
[ "$code" = 200 ] || die "the page is not served at /tokens/ (is TokenPage compiled in, and the route there?)"

code=$(req "$R" GET /tokens)
check_eq "GET /tokens without credentials: 401" 401 "$code"
check_match "GET /tokens without credentials: WWW-Authenticate: Basic (a browser's own request may prompt)" '^Basic ' "$(header "$R" WWW-Authenticate)"
code=$(req "$R" GET /tokens -u "$ALICE:wrong-$ALICE_PW" "${XRW[@]}")
check_eq "GET /tokens with a wrong password and X-Requested-With: XMLHttpRequest: 401" 401 "$code"
check_eq "... and no WWW-Authenticate (so the page's fetch never makes the browser prompt)" "" "$(header "$R" WWW-Authenticate)"
code=$(req "$R" GET /tokens -u "$ALICE:$ALICE_PW" "${XRW[@]}")
check_eq "GET /tokens as alice: 200" 200 "$code"
check_match "GET /tokens as alice: {\"tokens\": []} (none yet)" '^\{ *"tokens" *: *\[ *\] *\}$' "$(tr -d '\n' <"$R.b")"
code=$(req "$R" POST /tokens -u "$ALICE:$ALICE_PW" "${XRW[@]}" -H 'Content-Type: text/plain' --data-binary '{}')
check_eq "POST /tokens with Content-Type text/plain: 415" 415 "$code"

# ---------------------------------------------------------------- the browser session
# Its CHECK requests, answered here:
# token-works ID: the token with this id (from the secrets file) works within its scope
check_token_works() {
    local id=$1 tok code
    tok=$(grep -m1 "^gth_${id}_" "$SECRETS" 2>/dev/null)
    [ -n "$tok" ] || { not_ok "the page's token $id is there for the curl checks"; return; }
    # created through this instance: usable at once, at the latest after the store poll (1 s)
    wait_for 3 http_answers "$BASE/v2/team/app/tags/list" 404 --cacert "$CA" -u "$ALICE:$tok"
    code=$(req "$R" GET /v2/team/app/tags/list -u "$ALICE:$tok")
    check_eq "the page's token works through nginx: GET /v2/team/app/tags/list as alice:TOKEN gets the registry's 404 (not 401/403; after ${WAITED}s)" 404 "$code"
    check_match "... with the registry's NAME_UNKNOWN body" 'NAME_UNKNOWN' "$(cat "$R.b")"
    code=$(req "$R" POST /v2/team/app/blobs/uploads/ -u "$ALICE:$tok")
    check_eq "the token may push to team/app: POST /v2/team/app/blobs/uploads/ gets 202" 202 "$code"
    code=$(req "$R" POST /v2/other/app/blobs/uploads/ -u "$ALICE:$tok")
    check_eq "the token may not push outside team/*: POST /v2/other/app/blobs/uploads/ gets 403 (alice herself could)" 403 "$code"
    code=$(req "$R" GET /v2/team/app/tags/list -u "$BOB:$tok")
    check_eq "alice's token with bob's user name: 401" 401 "$code"
    code=$(req "$R" GET /tokens -u "$ALICE:$tok" "${XRW[@]}")
    check_eq "a token cannot manage tokens: GET /tokens with alice:TOKEN gets 403" 403 "$code"
    check_match "... saying so in {\"error\": ...}" '"error"' "$(cat "$R.b")"
}
# token-revoked ID: the revoked token gets 401 within 2 s
check_token_revoked() {
    local id=$1 tok
    tok=$(grep -m1 "^gth_${id}_" "$SECRETS" 2>/dev/null)
    [ -n "$tok" ] || { not_ok "the page's token $id is there for the curl checks"; return; }
    if wait_for 4 http_answers "$BASE/v2/team/app/tags/list" 401 --cacert "$CA" -u "$ALICE:$tok"; then
        check_le "the token revoked in the page gets 401 through nginx within 2 s (${WAITED}s)" "$WAITED" 2
    else
        not_ok "the token revoked in the page gets 401 through nginx within 2 s (still not after ${WAITED}s)"
    fi
}
# cross-user ALICE-ID BOB-ID: neither can revoke the other's token
check_cross_user() {
    local code
    code=$(req "$R" DELETE "/tokens/$1" -u "$BOB:$BOB_PW" "${XRW[@]}")
    check_eq "bob cannot revoke alice's token: DELETE /tokens/$1 as bob gets 404" 404 "$code"
    code=$(req "$R" DELETE "/tokens/$2" -u "$ALICE:$ALICE_PW" "${XRW[@]}")
    check_eq "alice cannot revoke bob's token: DELETE /tokens/$2 as alice gets 404" 404 "$code"
    code=$(req "$R" GET /tokens -u "$ALICE:$ALICE_PW" "${XRW[@]}")
    check_match "alice's token $1 is still listed by GET /tokens" "\"$1\"" "$(cat "$R.b")"
    check_nomatch "GET /tokens as alice does not list bob's token $2" "\"$2\"" "$(cat "$R.b")"
}

SECRETS=$T/secrets
: >"$SECRETS"
mkfifo "$T/to-py" "$T/from-py" || die "mkfifo"
# HOME and TMPDIR in the temp dir: Chromium and chromedriver write nothing elsewhere
HOME=$T/home TMPDIR=$T/tmp timeout 300 "$PYTHON" "$REPO/Tests/e2e/token_page.py" \
    --base "$BASE" --ca "$CA" --spki "$SPKI" --profile "$T/chromium" \
    --alice "$ALICE:$ALICE_PW" --bob "$BOB:$BOB_PW" --max-lifetime-days "$MAX_DAYS" \
    --driver-log "$T/logs/chromedriver.log" --secrets-file "$SECRETS" \
    <"$T/to-py" >"$T/from-py" 2>"$T/logs/token_page.stderr" &
PY_PID=$!
exec 3>"$T/to-py" 4<"$T/from-py"
COUNTS='' ASKED=''
while IFS= read -r line <&4; do
    case $line in
        "ok - "*) PASSED=$((PASSED + 1)); printf '%s\n' "$line" ;;
        "not ok - "*) FAILED=$((FAILED + 1)); printf '%s\n' "$line" ;;
        "# counts: "*) COUNTS=${line#"# counts: "} ;;
        "CHECK "*)
            read -r _ name a1 a2 <<<"$line"
            echo "# (browser paused) $name ${a1:-} ${a2:-}"
            ASKED="$ASKED $name"
            case $name in
                token-works) check_token_works "$a1" ;;
                token-revoked) check_token_revoked "$a1" ;;
                cross-user) check_cross_user "$a1" "$a2" ;;
                *) not_ok "token_page.py asked for an unknown check: $name" ;;
            esac
            echo "done" >&3
            ;;
        *) printf '%s\n' "$line" ;;
    esac
done
exec 3>&- 4<&-
rc=0
wait "$PY_PID" || rc=$?
PY_PID=
if [ -z "$COUNTS" ]; then
    not_ok "token_page.py ran to its end (exit status $rc$([ "$rc" = 124 ] && echo ': timed out after 300 s'))"
    diag <"$T/logs/token_page.stderr"
fi
for name in token-works token-revoked cross-user; do
    case " $ASKED " in *" $name "*) ;; *) not_ok "the browser session got as far as the '$name' checks" ;; esac
done

# ---------------------------------------------------------------- no secret anywhere
n=$(grep -c . "$SECRETS")
check_eq "the page showed 3 secrets (2 of alice's, 1 of bob's)" 3 "$n"
"$GH" token list --config "$T/gatehouse.yaml" >"$T/list.txt" 2>&1
rc=$?
"$GH" token list --config "$T/gatehouse.yaml" --json >"$T/list.json" 2>&1 || rc=$?
check_eq "gatehouse token list (table and --json) exits 0" 0 "$rc"
curl -s --max-time 5 "http://127.0.0.1:$P_GATE/metrics" >"$T/metrics.txt"
sleep 1.2   # audit batches and last-used times land
leaks=
while IFS= read -r s; do
    [ -n "$s" ] || continue
    for f in "$GATE_LOG" "$N/logs/access.log" "$N/logs/error.log" "$T/list.txt" "$T/list.json" "$T/metrics.txt" "$T/tokens.db"; do
        [ -e "$f" ] && grep -aqF -- "$s" "$f" && leaks="$leaks ${f#"$T/"}"
        [ -e "$f" ] && grep -aqF -- "${s#gth_*_}" "$f" && leaks="$leaks ${f#"$T/"}(secret part)"
    done
    for f in "$T"/tokens.db-*; do [ -e "$f" ] && grep -aqF -- "${s#gth_*_}" "$f" && leaks="$leaks ${f#"$T/"}"; done
done <"$SECRETS"
check_eq "no secret the page showed is in Gatehouse's log, nginx's logs, the store, token list or /metrics" "" "$leaks"
ID1=$(head -n1 "$SECRETS" | cut -c5-20)
if [ -n "$ID1" ]; then
    check_match "Gatehouse's audit lines name the token used: token=$ID1" "token=\"?$ID1" "$(cat "$GATE_LOG")"
fi
check_match "gatehouse_token_logins_total{result=\"allowed\"} counts the token's logins" \
    '^gatehouse_token_logins_total\{result="allowed"\} [1-9]' "$(cat "$T/metrics.txt")"

# ---------------------------------------------------------------- Gatehouse survived
if kill -0 "$GATE_PID" 2>/dev/null; then
    stop_pid "$GATE_PID"
    GATE_PID=
    check_eq "gatehouse exits 0 on SIGTERM" 0 "$STOP_RC"
else
    not_ok "gatehouse is still running at the end"
fi
check_nomatch "gatehouse's log shows no crash" 'Fatal error|fatal error|Stack trace|Precondition failed' "$(cat "$GATE_LOG")"

echo "# measure: total run time $(elapsed "$START" "$(now)")s"
if [ "$FAILED" -gt 0 ]; then
    echo "# logs: $T (set KEEP_TMP=1 to keep them)"
    echo "# --- gatehouse.log (tail)"; diag 10 <"$GATE_LOG"
    echo "# --- nginx error.log (tail)"; diag 10 <"$N/logs/error.log"
    echo "# --- token_page.py stderr (tail)"; diag 10 <"$T/logs/token_page.stderr"
fi
finish
