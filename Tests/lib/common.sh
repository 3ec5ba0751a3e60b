# shellcheck shell=bash
# What the end-to-end, load and bench scripts (Tests/e2e, Tests/load, Benchmarks) share.
# Sourced, never run, after the script has set REPO (the repository root):
#
#     REPO=$(cd "$(dirname "$0")/../.." && pwd)
#     . "$REPO/Tests/lib/common.sh"
#
# It sets PASSED, FAILED and KIT and defines functions; nothing runs. The functions read only
# variables the scripts always set (REPO, T, LDAP_DIR) or read optional ones with a default,
# so `set -u` holds. A script may define its own `die` after sourcing (the bench does): the
# helpers here call whichever `die` exists.
#
# Why one file: scripts/test and CI read the same `ok - ` / `not ok - ` / `N passed, M failed`
# lines from every script, the scripts test the same shipped nginx kit and the same slapd
# fixture, and a fix to one copy of a helper (a wait loop, a port race) belongs in all of them.

# shellcheck source=process.sh
. "$REPO/Tests/lib/process.sh"

KIT=$REPO/nginx

# ---------------------------------------------------------------- results
# One line per assertion and a last line with the counts, which scripts/test and CI read.
PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok - $*"; }
not_ok() { FAILED=$((FAILED + 1)); echo "not ok - $*"; }
# pass_if STATUS DESC: for checks that are a command's exit status ($? of the line before)
pass_if() { if [ "$1" = 0 ]; then ok "$2"; else not_ok "$2"; fi; }
# diag [N]: stdin as comment lines, the last N (15) only: enough to see why, short enough to read
diag() { sed 's/^/#   /' | tail -n "${1:-15}"; }
# check_eq DESC EXPECTED ACTUAL
check_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; echo "#   expected: $2"; echo "#   got:      $3"; fi
}
# check_match DESC REGEX TEXT / check_nomatch DESC REGEX TEXT (grep -E)
check_match() {
    if printf '%s' "$3" | grep -Eq -- "$2"; then ok "$1"; else not_ok "$1"; echo "#   expected to match: $2"; printf '%s\n' "$3" | diag; fi
}
check_nomatch() {
    if printf '%s' "$3" | grep -Eq -- "$2"; then not_ok "$1"; echo "#   must not match: $2"; printf '%s\n' "$3" | diag; else ok "$1"; fi
}
# check_le DESC A B: ok when A <= B (numbers, fractions too)
check_le() {
    if awk -v a="$2" -v b="$3" 'BEGIN { exit !(a + 0 <= b + 0) }'; then ok "$1"; else not_ok "$1"; echo "#   expected $2 <= $3"; fi
}
# tally: the last line; its status is the script's (false when anything failed)
tally() { echo "$PASSED passed, $FAILED failed"; [ "$FAILED" -eq 0 ]; }
# finish: the end of a script that keeps no temp dir note in its cleanup
finish() {
    [ "${KEEP_TMP:-0}" = 1 ] && echo "# temp dir kept: $T"
    tally
}
# die MSG: a set-up step failed: count it, so that the run cannot look like a pass, and stop
die() { not_ok "setup: $*"; tally; exit 1; }

# loopback_pki DIR CN: a throwaway CA (DIR/ca.crt) and a server certificate for 127.0.0.1 and
# localhost (DIR/server.crt, DIR/server.key) that nginx serves in the e2e scripts
loopback_pki() {
    (
        cd "$1" &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj "/CN=$2" -keyout ca.key -out ca.crt &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj "/CN=127.0.0.1" -keyout server.key -out server.csr &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext.cnf &&
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -extfile ext.cnf -out server.crt
    ) >"$T/logs/openssl.log" 2>&1 || { diag <"$T/logs/openssl.log"; die "openssl"; }
}

# The registry maps REGISTRY_* variables onto its configuration, and skopeo reads some too:
# `env "${REG_UNSET[@]}" …` drops them all.
REG_UNSET=()
for _v in $(env | sed -n 's/^\(REGISTRY_[A-Za-z0-9_]*\)=.*/\1/p'); do REG_UNSET+=(-u "$_v"); done
unset _v

# skopeo_setup: the empty policy, auth file and registries configuration that sk uses
skopeo_setup() {
    mkdir -p "$T/skopeo" "$T/registries.d"
    echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$T/policy.json"
    echo '{}' >"$T/auth.json"
    : >"$T/registries.conf"
}
# sk ARGS...: skopeo with a fresh, private home and blob-info cache (so that it knows of no
# blobs in other repositories and tries no cross-repository mounts of its own) and no stray
# configuration; SKOPEO_TIMEOUT (120s) per command. Called in $(...): no state in variables.
sk() {
    local h
    h=$(mktemp -d "$T/skopeo/XXXXXX") || return 1
    mkdir -p "$h/data" "$h/run" "$h/tmp" "$h/config"
    chmod 700 "$h/run"
    env "${REG_UNSET[@]}" _CONTAINERS_ROOTLESS_UID=4242 HOME="$h" XDG_DATA_HOME="$h/data" \
        XDG_RUNTIME_DIR="$h/run" XDG_CONFIG_HOME="$h/config" TMPDIR="$h/tmp" \
        REGISTRY_AUTH_FILE="$T/auth.json" CONTAINERS_REGISTRIES_CONF="$T/registries.conf" \
        skopeo --policy "$T/policy.json" --registries.d "$T/registries.d" --command-timeout "${SKOPEO_TIMEOUT:-120s}" "$@"
}

# start_registry PORT: Debian's docker-registry on 127.0.0.1:PORT, storing under $T/registry/data,
# deletes enabled, logging to $T/logs/registry.log; sets REG_PID and waits until /v2/ answers
start_registry() {
    mkdir -p "$T/registry"
    cat >"$T/registry/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $T/registry/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$1
  secret: gatehouse-e2e-fixed-secret
EOF
    env "${REG_UNSET[@]}" docker-registry serve "$T/registry/config.yml" >"$T/logs/registry.log" 2>&1 &
    REG_PID=$!
    wait_for 10 http_answers "http://127.0.0.1:$1/v2/" || { diag <"$T/logs/registry.log"; die "registry did not start"; }
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
b64() { printf '%s' "$1" | base64 -w0; }
# proc_cpu PID: user + system CPU seconds of a process (0 when it is gone)
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# ---------------------------------------------------------------- set-up
# gatehouse_bin DEFAULT: GATEHOUSE_BIN, or DEFAULT, relative to the repository (the scripts may
# be started from anywhere)
gatehouse_bin() {
    GATEHOUSE_BIN=${GATEHOUSE_BIN:-$1}
    case $GATEHOUSE_BIN in /*) ;; *) GATEHOUSE_BIN=$REPO/$GATEHOUSE_BIN ;; esac
}
need_tools() {
    local tool
    for tool in "$@"; do command -v "$tool" >/dev/null || die "missing tool: $tool"; done
}
# make_tmp NAME: T = a new /tmp/gatehouse-NAME.XXXXXX. The script's cleanup() (define it, and
# every variable it reads, first) runs on exit; INT and TERM exit through it too, so that an
# interrupted run leaves no nginx, Gatehouse or slapd behind.
make_tmp() {
    T=$(mktemp -d "/tmp/gatehouse-$1.XXXXXX") || die "mktemp"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
# remove_tmp [NOTE]: the end of cleanup(): remove T, or with KEEP_TMP=1 keep it (and print
# "NOTE T" when NOTE is given)
remove_tmp() {
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        [ $# = 0 ] || echo "$* $T"
    else
        rm -rf "$T"
    fi
}
# copy_gatehouse: GH = a copy of GATEHOUSE_BIN in T/bin: a rebuild during the run changes nothing
copy_gatehouse() {
    mkdir -p "$T/bin" && cp "$GATEHOUSE_BIN" "$T/bin/gatehouse" || die "copy gatehouse"
    GH=$T/bin/gatehouse
}

# ---------------------------------------------------------------- waiting
# wait_for SECONDS CMD...: until CMD succeeds (every 0.1 s, a last try at the end); WAITED is
# the seconds it took, which some checks print. Status: CMD's last one.
wait_for() {
    local limit=$1 t0 i rc
    shift
    t0=$(now)
    for i in $(seq 1 $((${limit%.*} * 10))); do
        if "$@"; then WAITED=$(elapsed "$t0" "$(now)"); return 0; fi
        sleep 0.1
    done
    rc=0
    "$@" || rc=$?
    WAITED=$(elapsed "$t0" "$(now)")
    return $rc
}
# http_answers URL [STATUS [CURL-ARGS...]]: URL answers at all, or with STATUS (for wait_for)
http_answers() {
    local url=$1 want=${2:-} code
    shift
    [ $# = 0 ] || shift
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" "$url")
    if [ -n "$want" ]; then [ "$code" = "$want" ]; else [ "$code" != 000 ]; fi
}

# ---------------------------------------------------------------- the slapd fixture
# Tests/Fixtures/slapd.sh in LDAP_DIR, its output appended to T/logs/slapd-fixture.log.
# </dev/null: slapd must inherit none of our descriptors (a pipe it kept open would hang $(...)).
slapd_fixture() { bash "$REPO/Tests/Fixtures/slapd.sh" "$1" "$LDAP_DIR" >>"$T/logs/slapd-fixture.log" 2>&1 </dev/null; }
# ldap_env KEY: a value from the fixture's LDAP_DIR/env
ldap_env() { sed -n "s/^$1=//p" "$LDAP_DIR/env"; }
# slapd_same_ports [TRIES]: start slapd again on the ports and with the CA it had (a directory
# server's own restart; the fixture's `start` always picks new ports); true once the service
# bind works (TRIES x 50 ms, default 100). Disowned: `slapd.sh stop` ends it, and slapd 2.5.13
# sometimes dies of SIGSEGV after "slapd stopped.", which bash would otherwise report.
slapd_same_ports() {
    local i
    setsid slapd -d 256 -h "$(ldap_env LDAP_URL)/ $(ldap_env LDAPS_URL)/" -f "$LDAP_DIR/slapd.conf" \
        </dev/null >/dev/null 2>>"$LDAP_DIR/slapd.log" &
    disown
    for i in $(seq 1 "${1:-100}"); do
        LDAPNOINIT=1 ldapwhoami -x -o nettimeout=2 -H "$(ldap_env LDAP_URL)" -D "$(ldap_env BIND_DN)" \
            -y "$(ldap_env BIND_PASSWORD_FILE)" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

# ---------------------------------------------------------------- Gatehouse configuration
# registry_policy_yaml [RULE...]: a `policies:` section with one registry policy; without RULEs
# the embedded defaults' seed policy (members of pushers pull and push, everyone pulls)
registry_policy_yaml() {
    [ $# -gt 0 ] || set -- '{groups: [pushers], allow: [pull, push]}' '{users: ["*"], allow: [pull]}'
    printf 'policies:\n  registry:\n    type: registry\n    rules:\n'
    printf '      - %s\n' "$@"
}
# wiki_policy_yaml: the http policy that nginx/webapp.conf's example asks for (to follow
# registry_policy_yaml's output)
wiki_policy_yaml() {
    printf '  wiki:\n    type: http\n    rules:\n'
    printf '      - {users: ["*"], methods: [GET, HEAD], paths: ["/wiki/**"]}\n'
}
# ldap_backend_yaml [POOL_SIZE [CA_FILE [BIND_PASSWORD_FILE]]]: a `backends:` entry "corp" for
# the slapd fixture in LDAP_DIR, over ldaps:// (pool_size 4; the fixture's CA and password file)
ldap_backend_yaml() {
    cat <<EOF
  - name: corp
    type: ldap
    preset: openldap
    urls: [$(ldap_env LDAPS_URL)]
    ca_file: ${2:-$(ldap_env CA_FILE)}
    bind_dn: $(ldap_env BIND_DN)
    bind_password_file: ${3:-$(ldap_env BIND_PASSWORD_FILE)}
    base_dn: $(ldap_env BASE_DN)
    pool_size: ${1:-4}
    timeout: 5s
EOF
}

# ---------------------------------------------------------------- nginx
# The scripts run private nginx instances that include the shipped kit (nginx/*.conf): as is
# through DIR/snippets -> nginx/, or as copies that differ in deployment values only.

# nginx_dir DIR [SUBDIR...]: an nginx prefix: conf.d, logs, temp dirs, snippets -> nginx/
nginx_dir() {
    local d=$1 sub
    shift
    mkdir -p "$d"/{conf.d,logs,tmp/client_body,tmp/proxy,tmp/fastcgi,tmp/uwsgi,tmp/scgi}
    for sub in "$@"; do mkdir -p "$d/$sub"; done
    ln -s "$KIT" "$d/snippets"
}
# nginx_conf DIR USER WORKERS CONNECTIONS ERROR-LEVEL [MAIN-DIRECTIVE...] <HTTP-BODY: writes
# DIR/nginx.conf with pid, error log and temp files inside DIR (nothing under /var/lib/nginx,
# so that no package's nginx is disturbed); stdin is the rest of the http {} block
nginx_conf() {
    local d=$1 user=$2 workers=$3 conns=$4 level=$5 line t
    shift 5
    {
        echo "user $user;"
        echo "worker_processes $workers;"
        for line in "$@"; do echo "$line;"; done
        echo "pid $d/nginx.pid;"
        echo "error_log $d/logs/error.log $level;"
        printf 'events {\n    worker_connections %s;\n}\nhttp {\n' "$conns"
        for t in client_body proxy fastcgi uwsgi scgi; do echo "    ${t}_temp_path $d/tmp/$t;"; done
        cat
        echo "}"
    } >"$d/nginx.conf"
}
# nginx_check DIR: nginx -t; NGINX_OUT is what it said
nginx_check() { NGINX_OUT=$(nginx -t -p "$1" -e "$1/logs/error.log" -c "$1/nginx.conf" 2>&1); }
# nginx_start DIR: nginx as a background job of this shell (daemon off), so $! is its master
nginx_start() { nginx -p "$1" -e "$1/logs/error.log" -c "$1/nginx.conf" -g 'daemon off;' & }
# kit_copy FILE DST SED-SCRIPT: DST = nginx/FILE changed by SED-SCRIPT. The copy must differ in
# deployment values only, so the caller checks: KIT_CHANGED = how many lines of the kit's file
# changed, KIT_DIRECTIVES = the first word of each (one a line), KIT_DIFF = the diff.
kit_copy() {
    sed "$3" "$KIT/$1" >"$2"
    KIT_DIFF=$(diff "$KIT/$1" "$2")
    KIT_CHANGED=$(printf '%s\n' "$KIT_DIFF" | grep -c '^<' || true)
    KIT_DIRECTIVES=$(printf '%s\n' "$KIT_DIFF" | sed -n 's/^< *\([^ ]*\).*/\1/p')
}
# kit_only N REGEX: after kit_copy: exactly N lines changed, each a directive matching REGEX
kit_only() {
    [ "$KIT_CHANGED" -eq "$1" ] && ! printf '%s\n' "$KIT_DIRECTIVES" | grep -qvxE -- "$2"
}
