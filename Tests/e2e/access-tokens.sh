#!/usr/bin/env bash
# End-to-end test of access tokens (issue 16, SPEC "Access tokens") through the shipped nginx
# kit: skopeo and curl -> private nginx (TLS) -> auth_request -> Gatehouse (htpasswd backend,
# htgroups) -> Debian's docker-registry, with the token store in SQLite and then in a
# throwaway PostgreSQL 15 (Tests/Fixtures/postgres.sh): both stores pass the same suite.
#
# Per store:
#   - a CI job's token (`token create … --repositories 'team/*' --allow pull,push`): skopeo
#     pushes to team/app and pulls with it, cannot push to other/app (403, rule token-scope);
#     the owner's password keeps its own rights; the audit line names token=<id>
#   - a pull-only token cannot push
#   - rights follow the owner's current groups: alice out of team-writers in htgroups ->
#     the token's push is refused within 5 s; back in -> allowed again
#   - the owner removed from htpasswd -> 401 within 5 s
#   - `token revoke ID` and `token revoke --user U --all` -> 401 within 2.5 s (measured)
#   - `--expires 3s`: works, then 401 after 4 s
#   - wrong owner, truncated / altered / malformed / oversized tokens, a token as the user
#     name -> 401 with the Basic challenge and the same reason, never 5xx
#   - CLI errors: --expires over max_lifetime, missing --expires, unknown user, bad duration
#   - self-service through nginx (POST/GET/DELETE /tokens, the page at /tokens/)
#   - no secret in Gatehouse's log, the CLI's standard error, nginx's logs, /metrics, the
#     store (SQLite files; pg_dump and PostgreSQL's data directory), `token list [--json]`
# PostgreSQL only: a second Gatehouse on the same store (create and revoke seen by both within
# 2.5 s), PostgreSQL stopped (token logins 503, passwords 200) and started again.
# SQLite only: the store file overwritten with garbage (token logins 503, passwords 200),
# live and after a restart.
#
# The nginx configuration includes nginx/gatehouse-auth.conf and gatehouse-identity.conf as
# shipped (DIR/snippets -> nginx/) and copies of gatehouse-upstream.conf and registry.conf in
# which sed replaces only ports and certificate paths (checked). If the kit's registry.conf
# has no `location /tokens` yet, the copy gets one (a failed check says so).
# Lockout is off in the test configuration (`max_failures: 0`): this script sends many wrong
# tokens for alice on purpose; lockout has its own tests.
#
# Needs (Debian packages): nginx-light (or nginx), docker-registry, skopeo, apache2-utils,
# openssl, curl, python3, postgresql (15). Run as root.
#
# Usage:   Tests/e2e/access-tokens.sh
# Env:     GATEHOUSE_BIN  the gatehouse binary (default: .build/debug/gatehouse in the
#                         repository); it is copied to the temp dir before use
#          STORES         "sqlite postgres" (default), "sqlite" or "postgres"
#          KEEP_TMP=1     keep the temp directory (logs, configs, stores) after the run
#
# Output: one `ok - ...` / `not ok - ...` line per assertion, `# measure: ...` lines, and
# finally `N passed, M failed`; exit status 1 if anything failed.
set -u

REPO=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib/common.sh
. "$REPO/Tests/lib/common.sh"
gatehouse_bin .build/debug/gatehouse

STORES=${STORES:-sqlite postgres}
want_store() { case " $STORES " in *" $1 "*) return 0 ;; esac; return 1; }
for s in $STORES; do
    case $s in sqlite | postgres) ;; *) die "STORES: unknown store '$s' (sqlite, postgres)" ;; esac
done
want_store sqlite || want_store postgres || die "STORES names no store"
need_tools nginx docker-registry skopeo openssl curl python3 htpasswd
PG_BIN=/usr/lib/postgresql/15/bin
if want_store postgres; then
    [ -x "$PG_BIN/initdb" ] || die "missing PostgreSQL 15 for STORES=postgres ($PG_BIN/initdb; apt-get install postgresql)"
fi
[ -x "$GATEHOUSE_BIN" ] || die "no gatehouse binary at $GATEHOUSE_BIN (set GATEHOUSE_BIN)"
START=$(now)

REG_PID='' GATE_PID='' GATE_B_PID='' NGX_PID='' PG_DIR=''
cleanup() {
    stop_all "$NGX_PID" "$GATE_PID" "$GATE_B_PID" "$REG_PID"
    [ -z "$PG_DIR" ] || bash "$REPO/Tests/Fixtures/postgres.sh" stop "$PG_DIR" >/dev/null 2>&1
    remove_tmp
}
make_tmp tokens
chmod 755 "$T"    # the postgres user must reach T/postgres
mkdir -p "$T"/{logs,pki,certs,registry,images,skopeo,scan,api} || die "mkdir"
copy_gatehouse
"$GH" token --help >/dev/null 2>&1 || die "$GATEHOUSE_BIN has no 'token' command"

read -r P_REG P_GATE P_GATE_B P_NGX < <(free_ports 4) || die "no free ports"
echo "# ports: registry=$P_REG gatehouse=$P_GATE gatehouse-b=$P_GATE_B nginx=$P_NGX"

# ---------------------------------------------------------------- PKI, registry
loopback_pki "$T/pki" "Gatehouse tokens e2e CA"
cp "$T/pki/ca.crt" "$T/certs/ca.crt"
CURL=(curl -sS --cacert "$T/pki/ca.crt" --max-time 20)

start_registry "$P_REG"

# ---------------------------------------------------------------- users, groups, configuration
# alice, bob and dave push to team/** and other/** through the group team-writers; everyone
# pulls. carol is in no group.
PW_ALICE=alice-tokens-pw PW_BOB=bob-tokens-pw PW_CAROL=carol-tokens-pw PW_DAVE=dave-tokens-pw
LINE_ALICE=$(htpasswd -nbB -C 5 alice "$PW_ALICE" | sed '/^$/d')
LINE_BOB=$(htpasswd -nbB -C 5 bob "$PW_BOB" | sed '/^$/d')
LINE_CAROL=$(htpasswd -nbB -C 5 carol "$PW_CAROL" | sed '/^$/d')
LINE_DAVE=$(htpasswd -nbB -C 5 dave "$PW_DAVE" | sed '/^$/d')
[ -n "$LINE_ALICE" ] && [ -n "$LINE_DAVE" ] || die "htpasswd -B"
# replace FILE: stdin becomes FILE in one rename (what configuration management does)
replace() { cat >"$1.new.$$" && mv -f "$1.new.$$" "$1"; }
write_htpasswd() { printf '%s\n' "$@" | replace "$T/htpasswd"; }
write_htgroups() { printf 'team-writers: %s\n' "$*" | replace "$T/htgroups"; }
ALL_USERS=("$LINE_ALICE" "$LINE_BOB" "$LINE_CAROL" "$LINE_DAVE")
write_htpasswd "${ALL_USERS[@]}"
write_htgroups alice bob dave

MAX_LIFETIME=30d
# write_config FILE PORT STORE-URL
write_config() {
    cat >"$1" <<EOF
listen: 127.0.0.1:$2
realm: Registry
trusted_proxies: [127.0.0.1/32, "::1/128"]
default_policy: registry
lockout:
  max_failures: 0
backends:
  - {name: local, type: htpasswd, file: $T/htpasswd, groups_file: $T/htgroups}
$(registry_policy_yaml '{groups: [team-writers], repositories: ["team/**", "other/**"], allow: [pull, push]}' '{users: ["*"], allow: [pull]}')
tokens:
  store: "$3"
  max_lifetime: $MAX_LIFETIME
EOF
}

# ---------------------------------------------------------------- nginx
N=$T/nginx
nginx_dir "$N"
kit_copy gatehouse-upstream.conf "$N/conf.d/gatehouse-upstream.conf" "s#server 127\.0\.0\.1:9180;#server 127.0.0.1:$P_GATE;#"
if kit_only 1 server; then
    ok "copy of nginx/gatehouse-upstream.conf differs only in its server line"
else
    not_ok "copy of nginx/gatehouse-upstream.conf differs only in its server line (changed $KIT_CHANGED)"; printf '%s\n' "$KIT_DIFF" | diag
fi
KEY=$T/pki/server.key CRT=$T/pki/server.crt
kit_copy registry.conf "$N/conf.d/registry.conf" "
s#listen 443 ssl;#listen 127.0.0.1:$P_NGX ssl;#
s#server 127\.0\.0\.1:5000;#server 127.0.0.1:$P_REG;#
s#/etc/nginx/ssl/registry\.example\.com\.crt#$CRT#
s#/etc/nginx/ssl/registry\.example\.com\.key#$KEY#"
if kit_only 4 'listen|server|ssl_certificate|ssl_certificate_key'; then
    ok "copy of nginx/registry.conf differs only in 4 deployment lines (ports, certificates)"
else
    not_ok "copy of nginx/registry.conf differs only in deployment lines (changed $KIT_CHANGED, expected 4)"; printf '%s\n' "$KIT_DIFF" | diag
fi
grep -Eq '^ *location[^{]*/tokens' "$KIT/registry.conf"
pass_if $? "nginx/registry.conf has a location for /tokens (the self-service API and page)"
nginx_conf "$N" "$(id -un) $(id -gn)" 1 256 notice <<EOF
    default_type application/octet-stream;
    log_format tokens '\$remote_addr gate_user=\$gatehouse_user "\$request" \$status \$body_bytes_sent';
    access_log $N/logs/access.log tokens;
    include conf.d/gatehouse-upstream.conf;
    include conf.d/registry.conf;
EOF
if nginx_check "$N"; then
    ok "nginx -t accepts the configuration (registry.conf, snippets/gatehouse-auth.conf, snippets/gatehouse-identity.conf)"
else
    not_ok "nginx -t accepts the configuration"; printf '%s\n' "$NGINX_OUT" | diag
    die "nginx configuration"
fi
nginx_start "$N"
NGX_PID=$!
R=127.0.0.1:$P_NGX
wait_for 10 http_answers "https://$R/v2/" "" --cacert "$T/pki/ca.crt" || { diag <"$N/logs/error.log"; die "nginx did not start"; }

# ---------------------------------------------------------------- image, skopeo
# make_image DIR TAG SIZE: an OCI layout with one gzip'ed tar of SIZE random bytes
make_image() {
    python3 - "$@" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out, tag, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return "sha256:" + d
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
    info = tarfile.TarInfo("data/layer.bin")
    info.size, info.mtime, info.mode = size, 0, 0o644
    tf.addfile(info, io.BytesIO(os.urandom(size)))
tar = buf.getvalue()
gz = gzip.compress(tar, compresslevel=1, mtime=0)
layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(gz), "size": len(gz)}
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": put(config), "size": len(config)},
                       "layers": [layer]}).encode()
mdigest = put(manifest)
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
               "digest": mdigest, "size": len(manifest),
               "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion": "1.0.0"}')
print(mdigest)
PY
}
IMAGE_DIGEST=$(make_image "$T/images/small" v1 262144) || die "image"
SKOPEO_TIMEOUT=60s
skopeo_setup
# push CREDS REPO: skopeo copies the image to REPO:v1 (status: skopeo's); SKOPEO_OUT
push() { SKOPEO_OUT=$(sk copy --dest-cert-dir "$T/certs" --dest-creds "$1" "oci:$T/images/small:v1" "docker://$R/$2:v1" 2>&1); }
# pull CREDS REPO DIR: skopeo copies REPO:v1 into an OCI layout DIR; SKOPEO_OUT
pull() { rm -rf "$3"; SKOPEO_OUT=$(sk copy --src-cert-dir "$T/certs" --src-creds "$1" "docker://$R/$2:v1" "oci:$3:v1" 2>&1); }
pulled_digest() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$1/index.json" 2>/dev/null; }

# ---------------------------------------------------------------- request helpers
# Probes through nginx: PULL_PROBE reads tags (pull on team/base, which the set-up pushes);
# PUSH_PROBE starts a blob upload (push: 202 when allowed).
PULL_PROBE=/v2/team/base/tags/list
PUSH_PROBE=/v2/team/app/blobs/uploads/
# via_nginx CREDS METHOD PATH [CURL-ARGS...]: the status nginx answers
via_nginx() {
    local creds=$1 method=$2 path=$3
    shift 3
    "${CURL[@]}" -o /dev/null -w '%{http_code}' -u "$creds" -X "$method" "$@" "https://$R$path"
}
nginx_is() { [ "$(via_nginx "$2" "$3" "$4")" = "$1" ]; }   # WANT CREDS METHOD PATH (for wait_for)
# challenge CREDS PATH: "STATUS N" — nginx's status and how many Basic challenges it sent
challenge() {
    local head
    head=$("${CURL[@]}" -o /dev/null -D - -u "$1" "https://$R$2" | tr -d '\r')
    printf '%s %s' "$(printf '%s\n' "$head" | head -n1 | awk '{print $2}')" \
        "$(printf '%s\n' "$head" | grep -ci '^www-authenticate: Basic realm=')"
}
# direct PORT CREDS METHOD URI: the status Gatehouse on PORT answers to the subrequest the kit
# sends (nginx/gatehouse-auth.conf: X-Original-URI, X-Original-Method, X-Real-IP)
direct() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 -u "$2" -H "X-Original-URI: $4" \
        -H "X-Original-Method: $3" -H 'X-Real-IP: 127.0.0.1' -H 'X-Forwarded-For: 127.0.0.1' \
        "http://127.0.0.1:$1/auth/registry"
}
direct_is() { [ "$(direct "$2" "$3" "$4" "$5")" = "$1" ]; }   # WANT PORT CREDS METHOD URI
# both_are WANT CREDS: the pull probe answers WANT on Gatehouse A and B
both_are() { direct_is "$1" "$P_GATE" "$2" GET "$PULL_PROBE" && direct_is "$1" "$P_GATE_B" "$2" GET "$PULL_PROBE"; }

# api METHOD PATH CREDS [CURL-ARGS...]: a self-service request through nginx; prints the
# status; the body is T/api/body, the headers T/api/headers ("" CREDS: none sent)
api() {
    local method=$1 path=$2 creds=$3
    shift 3
    [ -z "$creds" ] || set -- -u "$creds" "$@"
    "${CURL[@]}" -D "$T/api/headers" -o "$T/api/body" -w '%{http_code}' -X "$method" "$@" "https://$R$path"
}
JSON=(-H 'Content-Type: application/json')
# json_get FILE KEY...: a value of the JSON object in FILE (keys and list indexes), "" if none
json_get() {
    python3 - "$@" <<'PY'
import json, sys
try:
    v = json.load(open(sys.argv[1]))
    for k in sys.argv[2:]:
        v = v[int(k)] if isinstance(v, list) else v[k]
    print(json.dumps(v) if isinstance(v, (list, dict)) or v is None else v)
except Exception:
    print("")
PY
}
# json_ids FILE: the ids in {"tokens":[…]}, one a line
json_ids() { python3 -c 'import json,sys; [print(t.get("id")) for t in json.load(open(sys.argv[1]))["tokens"]]' "$1" 2>/dev/null; }
header_of() { grep -i "^$1:" "$T/api/headers" | tr -d '\r'; }

TOKEN_RE='^gth_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$'
token_id() { printf '%s' "${1:4:16}"; }
# Every token this run has seen, and a label for each (what a leak report names)
SEEN_TOKENS=()
SEEN_LABELS=()
remember() { SEEN_TOKENS+=("$1"); SEEN_LABELS+=("$2"); }
# create VAR LABEL ARGS...: gatehouse token create --config GATE_CONF ARGS; VAR = the last line
# of its standard output; CREATE_RC its exit status. Standard error goes to T/logs/cli.log.
create() {
    local var=$1 label=$2 out
    shift 2
    out=$("$GH" token create --config "$GATE_CONF" "$@" 2>>"$T/logs/cli.log")
    CREATE_RC=$?
    CREATE_OUT=$out
    printf -v "$var" '%s' "$(printf '%s\n' "$out" | tail -n1)"
    # (with --json the last line is JSON: the caller remembers its token field)
    if [ "$CREATE_RC" = 0 ] && printf '%s' "${!var}" | grep -Eq "$TOKEN_RE"; then remember "${!var}" "$STORE/$label"; fi
}
# usable CREDS: until the token pulls through nginx (a CLI-made token: within 2 s); WAITED
usable() { wait_for 3 nginx_is 200 "$1" GET "$PULL_PROBE"; }
# skopeo_refused RC DESC: the last skopeo command failed on a 403 ('denied' in a body, or
# "403 (Forbidden)" of a HEAD that has none)
skopeo_refused() {
    if [ "$1" != 0 ] && printf '%s' "$SKOPEO_OUT" | grep -Eq 'denied|403 \(Forbidden\)'; then ok "$2"; else not_ok "$2 (rc=$1)"; printf '%s\n' "$SKOPEO_OUT" | diag 5; fi
}
skopeo_ok() { if [ "$1" = 0 ]; then ok "$2"; else not_ok "$2"; printf '%s\n' "$SKOPEO_OUT" | diag 5; fi; }

# ---------------------------------------------------------------- Gatehouse processes
# Audit lines are written in batches every 50 ms: read them after 0.1 s.
decisions() { sleep 0.1; grep -c 'decision=' "$GATE_LOG"; }
decisions_since() { sleep 0.1; grep 'decision=' "$GATE_LOG" | tail -n +$(($1 + 1)); }
start_gate() {
    "$GH" serve --config "$GATE_CONF" >>"$GATE_LOG" 2>&1 &
    GATE_PID=$!
    wait_for 10 http_answers "http://127.0.0.1:$P_GATE/healthz" 200
}
start_gate_b() {
    "$GH" serve --config "$GATE_B_CONF" >>"$GATE_B_LOG" 2>&1 &
    GATE_B_PID=$!
    wait_for 10 http_answers "http://127.0.0.1:$P_GATE_B/healthz" 200
}
stop_gate() { stop_pid "$GATE_PID"; GATE_PID=; }
stop_gate_b() { stop_pid "$GATE_B_PID"; GATE_B_PID=; }
pg_env() { sed -n "s/^$1=//p" "$PG_DIR/env"; }
postgres_fixture() { bash "$REPO/Tests/Fixtures/postgres.sh" "$1" "$PG_DIR" >>"$T/logs/postgres-fixture.log" 2>&1 </dev/null; }

# The base image every pull probe reads, pushed once with alice's password (needs a running
# Gatehouse: the first store's).
seed_base_image() {
    push "alice:$PW_ALICE" team/base || { printf '%s\n' "$SKOPEO_OUT" | diag; die "seed push of team/base with alice's password"; }
}

# ================================================================ the scenarios
# Each reads STORE, GATE_CONF, GATE_LOG; descriptions start with "$STORE: ".

scenario_ci_job() {
    local c0 rc id audit
    create CI_TOKEN ci --user alice --repositories 'team/*' --allow pull,push --expires 1h --name ci
    check_eq "$STORE: token create --user alice --repositories 'team/*' --allow pull,push --expires 1h --name ci exits 0" 0 "$CREATE_RC"
    check_match "$STORE: the last line of its output is a token (gth_ + 16 hex + _ + 43 base64url)" "$TOKEN_RE" "$CI_TOKEN"
    id=$(token_id "$CI_TOKEN")
    usable "alice:$CI_TOKEN"
    pass_if $? "$STORE: the CLI-made token pulls through nginx within 2.5 s (took ${WAITED}s)"
    check_le "$STORE: ... (2 s + a probe: at most 2.5 s)" "$WAITED" 2.5

    c0=$(decisions)
    push "alice:$CI_TOKEN" team/app
    skopeo_ok $? "$STORE: skopeo pushes team/app:v1 with --dest-creds alice:<token>"
    audit=$(decisions_since "$c0")
    check_match "$STORE: the push's audit lines name token=$id" "token=$id( |$)" "$audit"
    check_eq "$STORE: no audit line of that push is a denial" 0 "$(printf '%s\n' "$audit" | grep -c 'decision=deny')"
    check_eq "$STORE: the audit lines naming the token are all for user alice" 0 \
        "$(printf '%s\n' "$audit" | grep "token=$id" | grep -vc 'user=alice ')"

    c0=$(decisions)
    push "alice:$CI_TOKEN" "other/app-$STORE"
    rc=$?
    skopeo_refused $rc "$STORE: the token cannot push other/app-$STORE (skopeo fails with a 403)"
    audit=$(decisions_since "$c0")
    check_match "$STORE: ... refused with 403, rule token-scope" 'decision=deny .*rule=token-scope .*status=403' "$audit"
    check_eq "$STORE: ... and other/app-$STORE:v1 does not exist" 404 \
        "$(via_nginx "alice:$PW_ALICE" GET "/v2/other/app-$STORE/manifests/v1" -H 'Accept: application/vnd.oci.image.manifest.v1+json')"

    pull "alice:$CI_TOKEN" team/app "$T/images/pulled-ci"
    skopeo_ok $? "$STORE: skopeo pulls team/app:v1 with the token"
    check_eq "$STORE: ... the manifest pulled is the one pushed" "$IMAGE_DIGEST" "$(pulled_digest "$T/images/pulled-ci")"

    push "alice:$PW_ALICE" "other/app-$STORE"
    skopeo_ok $? "$STORE: alice's password still pushes other/app-$STORE (her own rights, not the token's)"
}

scenario_pull_only() {
    create PULL_TOKEN pull-only --user alice --repositories 'team/*' --allow pull --expires 1h --name pull-only
    check_eq "$STORE: token create --allow pull exits 0" 0 "$CREATE_RC"
    usable "alice:$PULL_TOKEN" || true
    push "alice:$PULL_TOKEN" team/pull-only
    skopeo_refused $? "$STORE: a pull-only token cannot push team/pull-only"
    check_eq "$STORE: ... a blob upload with it is refused (403)" 403 "$(via_nginx "alice:$PULL_TOKEN" POST "$PUSH_PROBE")"
    pull "alice:$PULL_TOKEN" team/app "$T/images/pulled-pull-only"
    skopeo_ok $? "$STORE: the pull-only token pulls team/app:v1"
}

scenario_groups() {
    create GROUP_TOKEN groups --user alice --repositories 'team/*' --allow pull,push --expires 1h --name groups
    usable "alice:$GROUP_TOKEN" || true
    check_eq "$STORE: groups: alice's push token may start an upload to team/app (202)" 202 \
        "$(via_nginx "alice:$GROUP_TOKEN" POST "$PUSH_PROBE")"
    write_htgroups bob dave
    wait_for 5 nginx_is 403 "alice:$GROUP_TOKEN" POST "$PUSH_PROBE"
    pass_if $? "$STORE: groups: alice removed from team-writers in htgroups -> the token's push is refused (403) within 5 s (took ${WAITED}s)"
    push "alice:$GROUP_TOKEN" team/app
    skopeo_refused $? "$STORE: groups: ... skopeo's push with the token fails with a 403"
    check_eq "$STORE: groups: ... the token still pulls (everyone pulls) (200)" 200 "$(via_nginx "alice:$GROUP_TOKEN" GET "$PULL_PROBE")"
    write_htgroups alice bob dave
    wait_for 5 nginx_is 202 "alice:$GROUP_TOKEN" POST "$PUSH_PROBE"
    pass_if $? "$STORE: groups: alice back in team-writers -> the token may push again within 5 s (took ${WAITED}s)"
}

scenario_owner_removed() {
    create DAVE_TOKEN dave --user dave --repositories 'team/*' --allow pull,push --expires 1h --name dave
    check_eq "$STORE: token create --user dave exits 0" 0 "$CREATE_RC"
    usable "dave:$DAVE_TOKEN"
    pass_if $? "$STORE: owner removed: dave's token pulls (200)"
    write_htpasswd "$LINE_ALICE" "$LINE_BOB" "$LINE_CAROL"
    wait_for 5 nginx_is 401 "dave:$DAVE_TOKEN" GET "$PULL_PROBE"
    pass_if $? "$STORE: owner removed: dave deleted from htpasswd -> his token gets 401 within 5 s (took ${WAITED}s)"
    check_eq "$STORE: owner removed: ... with one Basic challenge" "401 1" "$(challenge "dave:$DAVE_TOKEN" "$PULL_PROBE")"
    check_eq "$STORE: owner removed: ... alice's password still works (200)" 200 "$(via_nginx "alice:$PW_ALICE" GET "$PULL_PROBE")"
    write_htpasswd "${ALL_USERS[@]}"
    # the CLI needs dave back before the next store's `token create --user dave`
    wait_for 5 nginx_is 200 "dave:$PW_DAVE" GET "$PULL_PROBE" || true
}

scenario_revoke() {
    local id rc out
    create REVOKE_TOKEN revoke --user alice --repositories 'team/*' --allow pull --expires 1h --name revoke-me
    usable "alice:$REVOKE_TOKEN"
    pass_if $? "$STORE: revoke: the token pulls before (200)"
    id=$(token_id "$REVOKE_TOKEN")
    out=$("$GH" token revoke --config "$GATE_CONF" "$id" 2>&1)
    check_eq "$STORE: revoke: token revoke ID exits 0" 0 "$?"
    wait_for 3 nginx_is 401 "alice:$REVOKE_TOKEN" GET "$PULL_PROBE"
    pass_if $? "$STORE: revoke: the revoked token gets 401 (took ${WAITED}s)"
    check_le "$STORE: revoke: ... within 2.5 s" "$WAITED" 2.5
    check_eq "$STORE: revoke: ... with one Basic challenge" "401 1" "$(challenge "alice:$REVOKE_TOKEN" "$PULL_PROBE")"
    out=$("$GH" token revoke --config "$GATE_CONF" 0123456789abcdef 2>&1)
    rc=$?
    check_eq "$STORE: revoke: token revoke of an unknown id exits 1" 1 "$rc"
    [ "$rc" = 1 ] || printf '%s\n' "$out" | diag 5

    create ALL1_TOKEN all-1 --user alice --repositories 'team/*' --allow pull --expires 1h --name all-1
    create ALL2_TOKEN all-2 --user alice --repositories 'team/*' --allow pull,push --expires 2h --name all-2
    create KEEP_TOKEN bob-keep --user bob --repositories 'team/*' --allow pull --expires 1h --name bob-keep
    usable "alice:$ALL2_TOKEN" || true
    check_eq "$STORE: revoke --all: alice's two tokens and bob's pull (200 200 200)" "200 200 200" \
        "$(via_nginx "alice:$ALL1_TOKEN" GET "$PULL_PROBE") $(via_nginx "alice:$ALL2_TOKEN" GET "$PULL_PROBE") $(via_nginx "bob:$KEEP_TOKEN" GET "$PULL_PROBE")"
    out=$("$GH" token revoke --config "$GATE_CONF" --user alice --all 2>&1)
    check_eq "$STORE: revoke --all: token revoke --user alice --all exits 0" 0 "$?"
    wait_for 3 nginx_is 401 "alice:$ALL1_TOKEN" GET "$PULL_PROBE" && wait_for 3 nginx_is 401 "alice:$ALL2_TOKEN" GET "$PULL_PROBE"
    pass_if $? "$STORE: revoke --all: both of alice's tokens get 401"
    check_eq "$STORE: revoke --all: ... bob's token still pulls (200)" 200 "$(via_nginx "bob:$KEEP_TOKEN" GET "$PULL_PROBE")"
    "$GH" token list --config "$GATE_CONF" --user alice --json >"$T/scan/list-after-revoke-$STORE.json" 2>>"$T/logs/cli.log"
    check_nomatch "$STORE: revoke --all: token list --user alice no longer shows them as usable (if listed, then as revoked)" \
        "$(token_id "$ALL1_TOKEN")|$(token_id "$ALL2_TOKEN")" \
        "$(python3 -c 'import json,sys; [print(t["id"]) for t in json.load(open(sys.argv[1]))["tokens"] if not t.get("revoked_at") and not t.get("revoked")]' "$T/scan/list-after-revoke-$STORE.json" 2>&1)"
}

EXPIRY_T0=
scenario_expiry_start() {
    EXPIRY_T0=$(now)
    create EXPIRY_TOKEN expiry --user bob --repositories 'team/*' --allow pull --expires 3s --name short
    check_eq "$STORE: expiry: token create --expires 3s exits 0" 0 "$CREATE_RC"
    usable "bob:$EXPIRY_TOKEN"
    pass_if $? "$STORE: expiry: the 3 s token pulls at first (after ${WAITED}s)"
}
scenario_expiry_end() {
    local left
    left=$(awk -v t0="$EXPIRY_T0" -v t="$(now)" 'BEGIN { l = t0 + 4.2 - t; printf "%.2f", (l > 0 ? l : 0) }')
    sleep "$left"
    check_eq "$STORE: expiry: 4.2 s after its creation the 3 s token gets 401 with one challenge" "401 1" \
        "$(challenge "bob:$EXPIRY_TOKEN" "$PULL_PROBE")"
}

# mask: secrets in diagnostic output shown as <secret> (the report must not leak them either)
mask() { sed -E 's/(gth_[0-9a-f]{16}_)[A-Za-z0-9_-]+/\1<secret>/g'; }
# reasons_of LINES: "COUNT REASON" for each distinct reason= of the audit lines
reasons_of() { printf '%s\n' "$1" | grep 'decision=' | sed -n 's/.* reason=\([^=]*\) [a-z_]*=.*/\1/p' | sort | uniq -c | sed 's/^ *//'; }

scenario_malformed() {
    local c0 c1 id secret altered char n codes lines reasons token_reason creds random
    create MAL_TOKEN malformed-base --user alice --repositories 'team/*' --allow pull --expires 1h --name malformed-base
    usable "alice:$MAL_TOKEN"
    pass_if $? "$STORE: malformed: the genuine token pulls (200)"
    id=$(token_id "$MAL_TOKEN")
    secret=${MAL_TOKEN:21}
    # one character of the secret changed (the 10th: never the last, whose low bits may be padding)
    char=${secret:9:1}
    if [ "$char" = A ]; then char=B; else char=A; fi
    altered="gth_${id}_${secret:0:9}$char${secret:10}"
    remember "$altered" "$STORE/malformed-altered"
    random=$(head -c 3000 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
    local -a names=("bob with alice's token (wrong owner)"
        "the token without its last character"
        "the token with one character of the secret changed"
        "the token with another id"
        "the token with one character more"
        "GTH_ upper-case prefix"
        "'gth_' alone"
        "a gth_ value of 300 characters"
        "the token as the user name (token:x)"
        "the token as user name and password")
    local -a sent=("bob:$MAL_TOKEN"
        "alice:${MAL_TOKEN%?}"
        "alice:$altered"
        "alice:gth_$(printf '%s' "$id" | tr '0-9a-f' '1-9a-f0')_$secret"
        "alice:${MAL_TOKEN}A"
        "alice:GTH_${MAL_TOKEN:4}"
        "alice:gth_"
        "alice:gth_${random:0:296}"
        "$MAL_TOKEN:x"
        "$MAL_TOKEN:$MAL_TOKEN")
    c0=$(decisions)
    codes=""
    for n in "${!names[@]}"; do
        creds=${sent[$n]}
        check_eq "$STORE: malformed: ${names[$n]} -> 401 with one Basic challenge" "401 1" "$(challenge "$creds" "$PULL_PROBE")"
        codes+=" $(direct "$P_GATE" "$creds" GET "$PULL_PROBE")"
    done
    # a gth_ value of 2000 characters: over the 512-byte password limit of any Basic login
    c1=$(decisions)
    check_eq "$STORE: malformed: a gth_ value of 2000 characters -> 401 with one Basic challenge" "401 1" \
        "$(challenge "alice:gth_${random:0:1996}" "$PULL_PROBE")"
    codes+=" $(direct "$P_GATE" "alice:gth_${random:0:1996}" GET "$PULL_PROBE")"
    check_nomatch "$STORE: malformed: none of the $((${#names[@]} + 1)) answered 5xx by Gatehouse itself (direct: $codes)" ' 5[0-9][0-9]' "$codes"

    lines=$(decisions_since "$c0" | head -n $((c1 - c0)))
    reasons=$(reasons_of "$lines")
    token_reason=$(printf '%s\n' "$reasons" | head -n1 | cut -d' ' -f2-)
    check_eq "$STORE: malformed: the $((c1 - c0)) audit lines of the token-shaped attempts give one and the same reason" 1 "$(printf '%s\n' "$reasons" | grep -c .)"
    check_eq "$STORE: malformed: ... 'invalid user name or password' (SPEC: never says which)" "invalid user name or password" "$token_reason"
    [ "$(printf '%s\n' "$reasons" | grep -c .)" = 1 ] || printf '%s\n' "$reasons" | sed 's/^/#   reasons: /'
    # Over-long credentials are refused before anyone looks at them, token-shaped or not: the
    # reason every over-long password gets, which says nothing about tokens.
    check_eq "$STORE: malformed: the 2000-character gth_ value gets the reason of any over-long password" \
        "malformed credentials: the credentials are too long" "$(reasons_of "$(decisions_since "$c1")" | cut -d' ' -f2- | sort -u | paste -sd'|' -)"
    lines=$(decisions_since "$c0" | grep -F -- "${secret:0:16}")
    check_eq "$STORE: malformed: the audit lines of these attempts hold no secret (a token sent as the user name included)" 0 "$(printf '%s' "$lines" | grep -c .)"
    [ -z "$lines" ] || printf '%s\n' "$lines" | mask | cut -c1-400 | diag 4
    check_eq "$STORE: malformed: the genuine token still pulls afterwards (200)" 200 "$(via_nginx "alice:$MAL_TOKEN" GET "$PULL_PROBE")"
}

scenario_cli_errors() {
    local rc out
    out=$("$GH" token create --config "$GATE_CONF" --user alice --repositories 'team/*' --allow pull --expires 31d 2>&1)
    rc=$?
    check_eq "$STORE: CLI: --expires 31d over max_lifetime $MAX_LIFETIME exits 2" 2 "$rc"
    check_nomatch "$STORE: CLI: ... and prints no token" 'gth_[0-9a-f]{16}_' "$out"
    out=$("$GH" token create --config "$GATE_CONF" --user alice --repositories 'team/*' --allow pull 2>&1)
    rc=$?
    check_eq "$STORE: CLI: no --expires exits non-zero" yes "$([ "$rc" != 0 ] && echo yes || echo "no (rc=$rc)")"
    check_nomatch "$STORE: CLI: ... and prints no token" 'gth_[0-9a-f]{16}_' "$out"
    out=$("$GH" token create --config "$GATE_CONF" --user nobody --repositories 'team/*' --allow pull --expires 1h 2>&1)
    check_eq "$STORE: CLI: --user nobody (in no backend) exits 2" 2 "$?"
    out=$("$GH" token create --config "$GATE_CONF" --user alice --repositories 'team/*' --allow pull --expires 10x 2>&1)
    check_eq "$STORE: CLI: --expires 10x exits 2" 2 "$?"
    create MAX_TOKEN max-lifetime --user alice --repositories 'team/*' --allow pull --expires "$MAX_LIFETIME" --name max
    check_eq "$STORE: CLI: --expires $MAX_LIFETIME (= max_lifetime) exits 0" 0 "$CREATE_RC"
    create JSON_TOKEN json --user carol --repositories 'team/*' --allow pull --expires 1h --name json-out --json
    check_eq "$STORE: CLI: token create --json exits 0" 0 "$CREATE_RC"
    local json_token
    json_token=$(printf '%s' "$CREATE_OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' 2>/dev/null)
    check_match "$STORE: CLI: --json prints one JSON object whose token field is the token" "$TOKEN_RE" "$json_token"
    [ -z "$json_token" ] || remember "$json_token" "$STORE/json"
}

scenario_self_service() {
    local status id token bob_id bob_token
    status=$(api GET /tokens/ "")
    check_eq "$STORE: self-service: GET /tokens/ (the page) answers 200 without credentials" 200 "$status"
    check_match "$STORE: self-service: ... as text/html" '^[Cc]ontent-[Tt]ype: text/html' "$(header_of Content-Type)"

    status=$(api POST /tokens "alice:$PW_ALICE" "${JSON[@]}" \
        -d '{"name":"self","policy":"registry","repositories":["team/*"],"actions":["pull"],"expires":"1d"}')
    check_eq "$STORE: self-service: POST /tokens with alice's password -> 201" 201 "$status"
    token=$(json_get "$T/api/body" token)
    id=$(json_get "$T/api/body" id)
    check_match "$STORE: self-service: ... the body's token is a token" "$TOKEN_RE" "$token"
    [ -z "$token" ] || remember "$token" "$STORE/self-service"
    check_eq "$STORE: self-service: ... id, owner, policy, repositories, actions, last_used_at" \
        "$(token_id "$token") alice registry [\"team/*\"] [\"pull\"] null" \
        "$id $(json_get "$T/api/body" owner) $(json_get "$T/api/body" policy) $(json_get "$T/api/body" repositories) $(json_get "$T/api/body" actions) $(json_get "$T/api/body" last_used_at)"
    usable "alice:$token"
    pass_if $? "$STORE: self-service: the new token pulls through nginx (after ${WAITED}s)"
    check_eq "$STORE: self-service: ... and cannot push (403)" 403 "$(via_nginx "alice:$token" POST "$PUSH_PROBE")"

    status=$(api GET /tokens "alice:$PW_ALICE")
    check_eq "$STORE: self-service: GET /tokens -> 200" 200 "$status"
    check_match "$STORE: self-service: ... lists the new token's id" "^$id\$" "$(json_ids "$T/api/body")"
    check_nomatch "$STORE: self-service: ... and no secret (no gth_ anywhere)" 'gth_' "$(cat "$T/api/body")"

    status=$(api POST /tokens "bob:$PW_BOB" "${JSON[@]}" \
        -d '{"name":"bobs","policy":"registry","repositories":["team/*"],"actions":["pull"],"expires":"1h"}')
    bob_token=$(json_get "$T/api/body" token)
    bob_id=$(json_get "$T/api/body" id)
    check_eq "$STORE: self-service: bob creates his own token (201)" 201 "$status"
    [ -z "$bob_token" ] || remember "$bob_token" "$STORE/self-service-bob"
    status=$(api GET /tokens "bob:$PW_BOB")
    check_nomatch "$STORE: self-service: bob's GET /tokens does not list alice's token" "^$id\$" "$(json_ids "$T/api/body")"

    check_eq "$STORE: self-service: POST /tokens with a token as the password -> 403" 403 \
        "$(api POST /tokens "alice:$token" "${JSON[@]}" -d '{"name":"x","policy":"registry","repositories":["team/*"],"actions":["pull"],"expires":"1h"}')"
    check_eq "$STORE: self-service: GET /tokens with a token as the password -> 403" 403 "$(api GET /tokens "alice:$token")"
    check_eq "$STORE: self-service: POST /tokens as text/plain -> 415" 415 \
        "$(api POST /tokens "alice:$PW_ALICE" -H 'Content-Type: text/plain' -d '{"name":"x","policy":"registry","repositories":["team/*"],"actions":["pull"],"expires":"1h"}')"
    check_eq "$STORE: self-service: POST /tokens with a body that is not JSON -> 400" 400 \
        "$(api POST /tokens "alice:$PW_ALICE" "${JSON[@]}" -d '{"name":')"
    check_match "$STORE: self-service: ... with {\"error\": …}" '"error" *:' "$(cat "$T/api/body")"
    check_eq "$STORE: self-service: POST /tokens with expires over max_lifetime (31d) -> 400" 400 \
        "$(api POST /tokens "alice:$PW_ALICE" "${JSON[@]}" -d '{"name":"x","policy":"registry","repositories":["team/*"],"actions":["pull"],"expires":"31d"}')"
    check_nomatch "$STORE: self-service: ... no token in that answer" 'gth_' "$(cat "$T/api/body")"

    check_eq "$STORE: self-service: alice's DELETE /tokens/<bob's id> -> 404" 404 "$(api DELETE "/tokens/$bob_id" "alice:$PW_ALICE")"
    check_eq "$STORE: self-service: DELETE /tokens/<unknown id> -> 404" 404 "$(api DELETE /tokens/0123456789abcdef "alice:$PW_ALICE")"
    usable "bob:$bob_token"
    pass_if $? "$STORE: self-service: ... bob's token still pulls (200)"
    check_eq "$STORE: self-service: DELETE /tokens/<own id> -> 204" 204 "$(api DELETE "/tokens/$id" "alice:$PW_ALICE")"
    wait_for 3 nginx_is 401 "alice:$token" GET "$PULL_PROBE"
    pass_if $? "$STORE: self-service: the deleted token gets 401 (took ${WAITED}s)"
    check_le "$STORE: self-service: ... within 2.5 s" "$WAITED" 2.5

    status=$(api GET /tokens "alice:wrong-password")
    check_eq "$STORE: self-service: wrong password -> 401 with a Basic challenge" "401 yes" \
        "$status $(header_of WWW-Authenticate | grep -qi '^www-authenticate: Basic' && echo yes || echo no)"
    status=$(api GET /tokens "")
    check_eq "$STORE: self-service: no credentials -> 401 with a Basic challenge" "401 yes" \
        "$status $(header_of WWW-Authenticate | grep -qi '^www-authenticate: Basic' && echo yes || echo no)"
    status=$(api GET /tokens "alice:wrong-password" -H 'X-Requested-With: XMLHttpRequest')
    check_eq "$STORE: self-service: wrong password with X-Requested-With: XMLHttpRequest -> 401 without WWW-Authenticate" "401 0" \
        "$status $(grep -ci '^www-authenticate:' "$T/api/headers")"
}

scenario_no_secret() {
    local scan=$T/scan/$STORE files f
    mkdir -p "$scan"
    "$GH" token list --config "$GATE_CONF" >"$scan/list.txt" 2>>"$T/logs/cli.log"
    check_eq "$STORE: token list exits 0" 0 "$?"
    "$GH" token list --config "$GATE_CONF" --json >"$scan/list.json" 2>>"$T/logs/cli.log"
    check_eq "$STORE: token list --json exits 0" 0 "$?"
    # alice's CI token went with `revoke --user alice --all`: dave's (pull, push) is still there
    local dave_id
    dave_id=$(token_id "$DAVE_TOKEN")
    check_match "$STORE: token list shows its header and dave's token" \
        "ID +NAME +OWNER +POLICY +SCOPE +EXPIRES +LAST-USED.*$dave_id" "$(tr '\n' ' ' <"$scan/list.txt")"
    "$GH" token list --config "$GATE_CONF" --user bob >"$scan/list-bob.txt" 2>>"$T/logs/cli.log"
    check_nomatch "$STORE: token list --user bob does not show dave's token" "$dave_id" "$(cat "$scan/list-bob.txt")"
    check_match "$STORE: ... but shows bob's" "$(token_id "$KEEP_TOKEN")" "$(cat "$scan/list-bob.txt")"
    check_eq "$STORE: token list --json: dave's token as created (owner, backend, policy, repositories, actions, name)" \
        'dave local registry ["team/*"] ["pull", "push"] dave' \
        "$(python3 - "$scan/list.json" "$dave_id" <<'PY'
import json, sys
for t in json.load(open(sys.argv[1]))["tokens"]:
    if t.get("id") == sys.argv[2]:
        print(t.get("owner"), t.get("backend"), t.get("policy"), json.dumps(t.get("repositories")), json.dumps(t.get("actions")), t.get("name"))
PY
)"
    check_match "$STORE: token list --json: created_at, expires_at and last_used_at (dave's token was used) are RFC 3339 UTC" \
        '^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}(\.[0-9]+)?Z ?){3}$' \
        "$(python3 -c 'import json,sys; t=[t for t in json.load(open(sys.argv[1]))["tokens"] if t.get("id")==sys.argv[2]][0]; print(t["created_at"], t["expires_at"], t["last_used_at"])' "$scan/list.json" "$dave_id" 2>&1)"
    check_nomatch "$STORE: token list --json has no token field" '"token" *:' "$(cat "$scan/list.json")"

    curl -s --max-time 10 "http://127.0.0.1:$P_GATE/metrics" >"$scan/metrics.txt"
    [ -z "$GATE_B_PID" ] || curl -s --max-time 10 "http://127.0.0.1:$P_GATE_B/metrics" >"$scan/metrics-b.txt"
    local result value
    for result in allowed denied refused; do
        value=$(grep -E "^gatehouse_token_logins_total\{.*result=\"$result\"" "$scan/metrics.txt" | awk '{ s += $NF } END { print s + 0 }')
        check_eq "$STORE: /metrics counts token logins with result=\"$result\" (> 0: $value)" yes "$(awk -v v="$value" 'BEGIN { print (v > 0 ? "yes" : "no") }')"
    done

    # one pattern per token: the first 16 characters of its secret (96 bits; a cut or
    # partly logged secret is found too)
    : >"$T/secret-patterns"
    for f in "${!SEEN_TOKENS[@]}"; do
        [ "${#SEEN_TOKENS[$f]}" -ge 37 ] && printf '%s\n' "${SEEN_TOKENS[$f]:21:16}" >>"$T/secret-patterns"
    done
    echo "# $STORE: looking for ${#SEEN_TOKENS[@]} tokens' secrets"
    # leaks FILE...: "label in file" for every secret found
    leaks() {
        local hit n
        grep -raHoF -f "$T/secret-patterns" "$@" 2>/dev/null | sort -u | while IFS= read -r hit; do
            for n in "${!SEEN_TOKENS[@]}"; do
                case $hit in *"${SEEN_TOKENS[$n]:21:16}") echo "${SEEN_LABELS[$n]} in ${hit%:*}" ;; esac
            done
        done
    }
    check_eq "$STORE: no token secret in Gatehouse's log (stdout and stderr)" "" "$(leaks "$GATE_LOG" ${GATE_B_LOG:+"$GATE_B_LOG"})"
    check_eq "$STORE: no token secret in the CLI's standard error" "" "$(leaks "$T/logs/cli.log")"
    check_eq "$STORE: no token secret in nginx's access and error logs" "" "$(leaks "$N/logs")"
    check_eq "$STORE: no token secret in /metrics" "" "$(leaks "$scan"/metrics*.txt)"
    check_eq "$STORE: no token secret in token list or token list --json" "" "$(leaks "$scan"/list*)"
    if [ "$STORE" = sqlite ]; then
        files=("$T"/sqlite/tokens.db*)
        echo "# sqlite: store files: $(cd "$T/sqlite" && echo tokens.db*)"
        check_eq "$STORE: no token secret in the SQLite store files (db, -wal, -shm)" "" "$(leaks "${files[@]}")"
        # their printable runs, as strings(1) shows them (tr: no binutils needed)
        check_eq "$STORE: ... nor in their printable strings" 0 "$(cat "${files[@]}" | tr -c '[:print:]' '\n' | grep -cF -f "$T/secret-patterns")"
        check_match "$STORE: the SQLite files hold the tokens (dave's token's id is in them)" "$dave_id" "$(cat "${files[@]}" | tr -c '[:print:]' '\n')"
    else
        "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$(pg_env PG_PORT)" -U postgres gatehouse >"$scan/pg_dump.sql" 2>>"$T/logs/cli.log"
        check_match "$STORE: pg_dump of the store holds the tokens (dave's token's id is in it)" "$dave_id" "$(cat "$scan/pg_dump.sql")"
        check_eq "$STORE: no token secret in pg_dump of the store" "" "$(leaks "$scan/pg_dump.sql")"
        check_eq "$STORE: no token secret in PostgreSQL's data directory (tables, WAL) or its log" "" "$(leaks "$PG_DIR/data" "$PG_DIR/postgres.log")"
    fi
}

# ---------------------------------------------------------------- PostgreSQL: two instances, outage
scenario_two_instances() {
    GATE_B_CONF=$T/gatehouse-postgres-b.yaml
    GATE_B_LOG=$T/logs/gatehouse-postgres-b.log
    write_config "$GATE_B_CONF" "$P_GATE_B" "$STORE_URL"
    start_gate_b || { diag <"$GATE_B_LOG"; not_ok "postgres: a second Gatehouse on the same store starts"; return; }
    ok "postgres: a second Gatehouse (port $P_GATE_B) starts on the same store"
    local id status
    create SHARED_TOKEN shared --user alice --repositories 'team/*' --allow pull,push --expires 1h --name shared
    wait_for 3 both_are 200 "alice:$SHARED_TOKEN"
    pass_if $? "postgres: a CLI-made token passes on both instances (direct /auth/registry) (took ${WAITED}s)"
    check_le "postgres: ... within 2.5 s" "$WAITED" 2.5
    check_eq "postgres: ... push in scope on both (200 200), out of scope on both (403 403)" "200 200 403 403" \
        "$(direct "$P_GATE" "alice:$SHARED_TOKEN" POST "$PUSH_PROBE") $(direct "$P_GATE_B" "alice:$SHARED_TOKEN" POST "$PUSH_PROBE") $(direct "$P_GATE" "alice:$SHARED_TOKEN" POST /v2/other/app/blobs/uploads/) $(direct "$P_GATE_B" "alice:$SHARED_TOKEN" POST /v2/other/app/blobs/uploads/)"
    id=$(token_id "$SHARED_TOKEN")
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -u "alice:$PW_ALICE" -X DELETE "http://127.0.0.1:$P_GATE/tokens/$id")
    check_eq "postgres: DELETE /tokens/<id> on instance A directly -> 204" 204 "$status"
    wait_for 3 direct_is 401 "$P_GATE_B" "alice:$SHARED_TOKEN" GET "$PULL_PROBE"
    pass_if $? "postgres: instance B refuses the token revoked through A (401) (took ${WAITED}s)"
    check_le "postgres: ... within 2.5 s" "$WAITED" 2.5
    check_eq "postgres: ... and A refuses it too (401)" 401 "$(direct "$P_GATE" "alice:$SHARED_TOKEN" GET "$PULL_PROBE")"
}

scenario_postgres_outage() {
    local rc out
    create OUTAGE_TOKEN outage --user alice --repositories 'team/*' --allow pull --expires 1h --name outage
    wait_for 3 both_are 200 "alice:$OUTAGE_TOKEN"
    pass_if $? "postgres outage: before, the token passes on A and B (200)"
    postgres_fixture stop || not_ok "postgres outage: the fixture stops PostgreSQL"
    wait_for 5 direct_is 503 "$P_GATE" "alice:$OUTAGE_TOKEN" GET "$PULL_PROBE"
    pass_if $? "postgres outage: PostgreSQL stopped -> the token login answers 503 on A's /auth (took ${WAITED}s)"
    wait_for 3 direct_is 503 "$P_GATE_B" "alice:$OUTAGE_TOKEN" GET "$PULL_PROBE"
    pass_if $? "postgres outage: ... and on B's"
    check_eq "postgres outage: ... through nginx: 500 (the kit lets nothing through on a 503)" 500 "$(via_nginx "alice:$OUTAGE_TOKEN" GET "$PULL_PROBE")"
    check_eq "postgres outage: alice's password still logs in on A and B (200 200)" "200 200" \
        "$(direct "$P_GATE" "alice:$PW_ALICE" GET "$PULL_PROBE") $(direct "$P_GATE_B" "alice:$PW_ALICE" GET "$PULL_PROBE")"
    check_eq "postgres outage: ... and pushes through nginx (202)" 202 "$(via_nginx "alice:$PW_ALICE" POST "$PUSH_PROBE")"
    check_eq "postgres outage: a wrong password is still 401 (not 503)" 401 "$(direct "$P_GATE" "alice:wrong-password" GET "$PULL_PROBE")"
    out=$("$GH" token create --config "$GATE_CONF" --user alice --repositories 'team/*' --allow pull --expires 1h 2>&1)
    rc=$?
    check_eq "postgres outage: token create exits 2" 2 "$rc"
    check_nomatch "postgres outage: ... and prints no token" 'gth_[0-9a-f]{16}_' "$out"
    postgres_fixture resume || { diag <"$T/logs/postgres-fixture.log"; not_ok "postgres outage: the fixture starts PostgreSQL again on port $(pg_env PG_PORT)"; return; }
    wait_for 10 both_are 200 "alice:$OUTAGE_TOKEN"
    pass_if $? "postgres outage: PostgreSQL back on its port -> the token passes on A and B again (took ${WAITED}s)"
    check_eq "postgres outage: ... and through nginx (200)" 200 "$(via_nginx "alice:$OUTAGE_TOKEN" GET "$PULL_PROBE")"
    local value
    value=$(curl -s --max-time 10 "http://127.0.0.1:$P_GATE/metrics" | grep -E '^gatehouse_token_logins_total\{.*result="unavailable"' | awk '{ s += $NF } END { print s + 0 }')
    check_eq "postgres outage: /metrics counts the 503s as token logins with result=\"unavailable\" (> 0: $value)" yes "$(awk -v v="$value" 'BEGIN { print (v > 0 ? "yes" : "no") }')"
}

# ---------------------------------------------------------------- SQLite: a corrupt store file
scenario_sqlite_corrupt() {
    local db=$T/sqlite/tokens.db out rc
    create CORRUPT_TOKEN corrupt --user alice --repositories 'team/*' --allow pull --expires 1h --name corrupt
    usable "alice:$CORRUPT_TOKEN"
    pass_if $? "sqlite corrupt: before, the token passes (200)"
    # garbage over the whole file, in place (the server's open descriptor sees it), and over
    # the WAL if there is one
    for f in "$db" "$db-wal"; do
        [ -f "$f" ] && head -c "$(stat -c %s "$f")" /dev/urandom | dd of="$f" conv=notrunc status=none
    done
    wait_for 5 direct_is 503 "$P_GATE" "alice:$CORRUPT_TOKEN" GET "$PULL_PROBE"
    pass_if $? "sqlite corrupt: the store file overwritten with garbage -> the token login answers 503 (took ${WAITED}s; got $(direct "$P_GATE" "alice:$CORRUPT_TOKEN" GET "$PULL_PROBE"))"
    check_eq "sqlite corrupt: alice's password still logs in (200)" 200 "$(direct "$P_GATE" "alice:$PW_ALICE" GET "$PULL_PROBE")"
    out=$("$GH" token list --config "$GATE_CONF" 2>&1)
    rc=$?
    check_eq "sqlite corrupt: token list exits 2" 2 "$rc"
    stop_gate
    start_gate
    pass_if $? "sqlite corrupt: Gatehouse starts with the corrupt store file"
    if [ -n "$GATE_PID" ] && alive "$GATE_PID"; then
        check_eq "sqlite corrupt: after the restart the token login answers 503" 503 "$(direct "$P_GATE" "alice:$CORRUPT_TOKEN" GET "$PULL_PROBE")"
        check_eq "sqlite corrupt: ... alice's password logs in (200 direct, 202 push through nginx)" "200 202" \
            "$(direct "$P_GATE" "alice:$PW_ALICE" GET "$PULL_PROBE") $(via_nginx "alice:$PW_ALICE" POST "$PUSH_PROBE")"
        check_eq "sqlite corrupt: ... a wrong password is still 401" 401 "$(direct "$P_GATE" "alice:wrong-password" GET "$PULL_PROBE")"
    fi
}

# ================================================================ one store
store_suite() {
    STORE=$1
    local t0
    t0=$(now)
    echo "# ---------------- store: $STORE"
    SEEN_TOKENS=()
    SEEN_LABELS=()
    GATE_B_PID='' GATE_B_LOG=''
    case $STORE in
    sqlite)
        mkdir -p "$T/sqlite"
        STORE_URL=sqlite:$T/sqlite/tokens.db
        ;;
    postgres)
        PG_DIR=$T/postgres
        postgres_fixture start || { diag <"$T/logs/postgres-fixture.log"; die "postgres fixture did not start"; }
        STORE_URL=$(pg_env POSTGRES_URL)
        echo "# postgres: $STORE_URL (fixture started in $(elapsed "$t0" "$(now)")s)"
        ;;
    esac
    GATE_CONF=$T/gatehouse-$STORE.yaml
    GATE_LOG=$T/logs/gatehouse-$STORE.log
    write_config "$GATE_CONF" "$P_GATE" "$STORE_URL"
    if out=$("$GH" config check --config "$GATE_CONF" 2>&1); then
        ok "$STORE: gatehouse config check accepts the tokens section (store $STORE_URL)"
    else
        not_ok "$STORE: gatehouse config check accepts the tokens section"; printf '%s\n' "$out" | diag
    fi
    start_gate || { diag <"$GATE_LOG"; die "$STORE: gatehouse did not start"; }
    [ -n "${BASE_SEEDED:-}" ] || { seed_base_image; BASE_SEEDED=1; }

    scenario_ci_job
    scenario_expiry_start
    scenario_pull_only
    scenario_groups
    scenario_owner_removed
    scenario_revoke
    scenario_expiry_end
    scenario_malformed
    scenario_cli_errors
    scenario_self_service
    if [ "$STORE" = postgres ]; then
        scenario_two_instances
        scenario_postgres_outage
    fi
    scenario_no_secret
    [ "$STORE" = sqlite ] && scenario_sqlite_corrupt

    if [ -n "$GATE_B_PID" ]; then
        stop_gate_b
        check_eq "$STORE: Gatehouse B exits 0 on SIGTERM (${STOP_SECS}s)" 0 "$STOP_RC"
    fi
    if [ -n "$GATE_PID" ] && alive "$GATE_PID"; then
        stop_gate
        check_eq "$STORE: Gatehouse exits 0 on SIGTERM with the token store open (${STOP_SECS}s)" 0 "$STOP_RC"
    elif [ -n "$GATE_PID" ]; then
        stop_gate
        not_ok "$STORE: Gatehouse is still running at the end of the suite (it exited by itself with status $STOP_RC)"
    fi
    if [ "$STORE" = postgres ]; then postgres_fixture stop; fi
    echo "# measure: store $STORE: $(elapsed "$t0" "$(now)")s"
}

for s in $STORES; do store_suite "$s"; done

echo "# measure: total run time $(elapsed "$START" "$(now)")s (stores: $STORES)"
if [ "$FAILED" -gt 0 ]; then
    echo "# logs: $T/logs, $N/logs (set KEEP_TMP=1 to keep them)"
    for f in "$T"/logs/gatehouse-*.log; do
        [ -f "$f" ] || continue
        echo "# --- $(basename "$f") (tail)"; diag 8 <"$f"
    done
    echo "# --- nginx error.log (tail)"; diag 5 <"$N/logs/error.log"
fi
finish
