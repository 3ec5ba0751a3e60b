#!/usr/bin/env bash
# End-to-end test of the nginx kit (nginx/*.conf, nginx/gatehouse.service):
# skopeo and curl -> private nginx (TLS) -> auth_request -> Gatehouse -> Debian's
# docker-registry, all on loopback, nothing written outside a temp directory.
#
# Needs (Debian packages): nginx-light (or nginx), docker-registry, skopeo,
# apache2-utils, openssl, curl, python3, iproute2 (ss); for the ldap backend also
# slapd and ldap-utils; systemd (optional, for `systemd-analyze verify`).
# No Docker engine. Run as root.
#
# Usage:   Tests/e2e/nginx-registry-e2e.sh
# Env:     GATEHOUSE_BIN  the gatehouse binary (default: .build/debug/gatehouse in the
#                         repository); it is copied to the temp dir before use
#          BACKENDS       which Gatehouse backends to run the scenarios with, in this
#                         order: "htpasswd ldap" (default), "htpasswd" or "ldap"
#          KEEP_TMP=1     keep the temp directory (logs, configs) after the run
#
# Backends: first Gatehouse serves htpasswd/htgroups files and the whole kit is
# exercised (pushes, pulls, refusals, mounts, web app, load balancer, timings,
# Gatehouse down, SIGHUP). Then the same nginx is pointed at a Gatehouse with an
# `ldap` backend (a throwaway slapd from Tests/Fixtures/slapd.sh, over ldaps://) and
# the core registry scenarios run again, followed by the directory's outages:
# slapd stopped, restarted by the fixture (new ports and CA: new config + SIGHUP),
# restarted on the same ports, and hung (SIGSTOP).
#
# The nginx configuration includes the shipped files: nginx/gatehouse-auth.conf and
# nginx/gatehouse-identity.conf directly (DIR/snippets is a symlink to nginx/);
# gatehouse-upstream.conf, registry.conf, registry-behind-lb.conf and webapp.conf
# through copies in which sed replaces only ports, certificate paths and the
# load balancer's address (the test checks that no other line differs).
#
# Output: one `ok - ...` / `not ok - ...` line per assertion, `# measure: ...`
# lines, and finally `N passed, M failed`; exit status 1 if anything failed.
set -u

REPO=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib/common.sh
. "$REPO/Tests/lib/common.sh"
gatehouse_bin .build/debug/gatehouse

BACKENDS=${BACKENDS:-htpasswd ldap}
want() { case " $BACKENDS " in *" $1 "*) return 0 ;; esac; return 1; }

for b in $BACKENDS; do
    case $b in htpasswd | ldap) ;; *) die "BACKENDS: unknown backend '$b' (htpasswd, ldap)" ;; esac
done
want htpasswd || want ldap || die "BACKENDS names no backend"
need_tools nginx docker-registry skopeo openssl curl python3 htpasswd ss
if want ldap; then
    for tool in slapd slapadd ldapwhoami ldapadd setsid; do
        command -v "$tool" >/dev/null || die "missing tool for BACKENDS=ldap: $tool (apt-get install slapd ldap-utils)"
    done
fi
[ -x "$GATEHOUSE_BIN" ] || die "no gatehouse binary at $GATEHOUSE_BIN (set GATEHOUSE_BIN)"
START=$(now)

REG_PID= GATE_PID= NGX1_PID= NGX2_PID= LDAP_DIR=
cleanup() {
    stop_all "$NGX1_PID" "$NGX2_PID" "$GATE_PID" "$REG_PID"
    if [ -n "$LDAP_DIR" ]; then
        # a slapd left stopped (SIGSTOP) by an interrupted run would ignore SIGTERM
        [ -s "$LDAP_DIR/slapd.pid" ] && kill -CONT "$(cat "$LDAP_DIR/slapd.pid")" 2>/dev/null
        slapd_fixture stop
    fi
    remove_tmp
}
make_tmp e2e
chmod 755 "$T"

mkdir -p "$T"/{logs,pki,certs,registry,images,skopeo} || die "mkdir"
copy_gatehouse

# ---------------------------------------------------------------- ports, PKI
read -r P_REG P_GATE P_NGX P_DIRECT P_WIKI P_ECHO P_LBV P_LBF < <(free_ports 8) || die "no free ports"
echo "# ports: registry=$P_REG gatehouse=$P_GATE nginx=$P_NGX direct=$P_DIRECT wiki=$P_WIKI echo=$P_ECHO lb-variant=$P_LBV lb-front=$P_LBF"

loopback_pki "$T/pki" "Gatehouse e2e CA"
cp "$T/pki/ca.crt" "$T/certs/ca.crt"
CURL=(curl -sS --cacert "$T/pki/ca.crt" --max-time 30)

# wait_http URL [CURL ARGS...]: until the URL answers at all (any status)
wait_http() {
    local url=$1
    shift
    wait_for 10 http_answers "$url" "" --cacert "$T/pki/ca.crt" "$@"
}

# ---------------------------------------------------------------- registry
start_registry "$P_REG"
registry_requests() { grep -Ec 'HTTP/1\.[01]" [0-9]{3} ' "$T/logs/registry.log"; }

# ---------------------------------------------------------------- gatehouse
PW_READER=reader-e2e-pw PW_PUSHER=pusher-e2e-pw PW_ADMIN=admin-e2e-pw PW_XUSER=xuser-e2e-pw
{
    printf '%s' "$PW_READER" | "$GH" hash --cost 5 reader &&
    printf '%s' "$PW_PUSHER" | "$GH" hash --cost 5 pusher &&
    printf '%s' "$PW_ADMIN" | "$GH" hash --cost 5 admin &&
    htpasswd -nbB -C 5 xuser "$PW_XUSER" | sed '/^$/d'    # an Apache-made line too
} >"$T/htpasswd" 2>"$T/logs/hash.log" || { diag <"$T/logs/hash.log"; die "gatehouse hash"; }
cat >"$T/htgroups" <<EOF
pushers: pusher
registry-admins: admin
xteam: xuser
EOF
# xteam may do nothing under team/, pull and push under x/, pull elsewhere
RULES=('{groups: [registry-admins], allow: [pull, push, delete, catalog]}'
    '{groups: [xteam], repositories: ["team/**"], allow: []}'
    '{groups: [xteam], repositories: ["x/**"], allow: [pull, push]}'
    '{groups: [pushers], allow: [pull, push]}'
    '{users: ["*"], allow: [pull]}')
cat >"$T/gatehouse.yaml" <<EOF
listen: 127.0.0.1:$P_GATE
realm: Registry
trusted_proxies: [127.0.0.1/32, "::1/128"]
default_policy: registry
backends:
  - {name: local, type: htpasswd, file: $T/htpasswd, groups_file: $T/htgroups}
$(registry_policy_yaml "${RULES[@]}")
$(wiki_policy_yaml)
EOF
"$GH" config check --config "$T/gatehouse.yaml" >"$T/logs/config-check.log" 2>&1 ||
    { diag <"$T/logs/config-check.log"; die "gatehouse config check"; }
# The running Gatehouse's configuration and log (the ldap scenarios switch both)
GATE_CONF=$T/gatehouse.yaml
GATE_LOG=$T/logs/gatehouse.log
start_gate() {
    "$GH" serve --config "$GATE_CONF" >>"$GATE_LOG" 2>&1 &
    GATE_PID=$!
    wait_http "http://127.0.0.1:$P_GATE/healthz"
}
# stop_gate: SIGTERM; sets GATE_RC (exit status) and GATE_STOP (seconds)
stop_gate() {
    stop_pid "$GATE_PID"
    GATE_RC=$STOP_RC GATE_STOP=$STOP_SECS GATE_PID=
}
# decisions: audit lines so far (one per auth subrequest)
# (after 0.1 s: audit lines are written in batches every 50 ms)
decisions() { sleep 0.1; grep -c 'decision=' "$GATE_LOG"; }
# decisions_since N: the audit lines after the first N
decisions_since() { sleep 0.1; grep 'decision=' "$GATE_LOG" | tail -n +$(($1 + 1)); }
# latency_stats N COUNT: "median X ms, max Y ms" of the audit lines N+1 .. N+COUNT
latency_stats() {
    decisions_since "$1" | head -n "$2" | sed -n 's/.* latency_ms=\([0-9.]*\) .*/\1/p' | sort -n |
        awk '{ v[NR] = $1 } END { if (NR) printf "median %.2f ms, max %.2f ms (%d decisions)", v[int((NR + 1) / 2)], v[NR], NR }'
}
settle() { sleep 0.3; }
start_gate || { diag <"$T/logs/gatehouse.log"; die "gatehouse did not start"; }

# ---------------------------------------------------------------- nginx configurations
# subst FILE DST SED-SCRIPT N: copy nginx/FILE, replacing only deployment values
# (ports, certificate paths, addresses); N = the number of lines that must change
subst() {
    kit_copy "$1" "$2" "$3"
    if kit_only "$4" 'listen|server|ssl_certificate|ssl_certificate_key|proxy_pass|set_real_ip_from'; then
        ok "copy of nginx/$1 differs only in $KIT_CHANGED deployment lines (ports, certificates, addresses)"
    else
        not_ok "copy of nginx/$1 differs only in deployment lines (changed $KIT_CHANGED, expected $4)"
        printf '%s\n' "$KIT_DIFF" | diag
    fi
}
NGX_USER="$(id -un) $(id -gn)"
# nginx_http_common DIR: the start of both instances' http {} body (the access log shows which
# user the gate passed upstream)
nginx_http_common() {
    local d=$1
    cat <<EOF
    default_type application/octet-stream;
    log_format e2e '\$remote_addr gate_user=\$gatehouse_user "\$request" \$status \$body_bytes_sent \$request_time';
    access_log $d/logs/access.log e2e;
EOF
}
N1=$T/n1
N2=$T/n2
nginx_dir "$N1"
nginx_dir "$N2"
KEY=$T/pki/server.key CRT=$T/pki/server.crt

subst gatehouse-upstream.conf "$N1/conf.d/gatehouse-upstream.conf" "s#server 127\.0\.0\.1:9180;#server 127.0.0.1:$P_GATE;#" 1
subst registry.conf "$N1/conf.d/registry.conf" "
s#listen 443 ssl;#listen 127.0.0.1:$P_NGX ssl;#
s#server 127\.0\.0\.1:5000;#server 127.0.0.1:$P_REG;#
s#/etc/nginx/ssl/registry\.example\.com\.crt#$CRT#
s#/etc/nginx/ssl/registry\.example\.com\.key#$KEY#" 4
subst webapp.conf "$N1/conf.d/webapp.conf" "
s#listen 443 ssl;#listen 127.0.0.1:$P_WIKI ssl;#
s#proxy_pass http://127\.0\.0\.1:8080;#proxy_pass http://127.0.0.1:$P_ECHO;#
s#/etc/nginx/ssl/wiki\.example\.com\.crt#$CRT#
s#/etc/nginx/ssl/wiki\.example\.com\.key#$KEY#" 4
cp "$N1/conf.d/gatehouse-upstream.conf" "$N2/conf.d/gatehouse-upstream.conf"
subst registry-behind-lb.conf "$N2/conf.d/registry-behind-lb.conf" "
s#listen 8080;#listen 127.0.0.1:$P_LBV;#
s#set_real_ip_from 10\.0\.0\.0/8;#set_real_ip_from 127.0.0.1/32;#
s#server 127\.0\.0\.1:5000;#server 127.0.0.1:$P_REG;#" 3

# Instance 1: registry.conf + webapp.conf, plus test-only servers: an echo
# upstream for the web app and the same registry without Gatehouse (baseline).
nginx_conf "$N1" "$NGX_USER" 2 512 notice <<EOF
$(nginx_http_common "$N1")
    include conf.d/gatehouse-upstream.conf;
    include conf.d/registry.conf;
    include conf.d/webapp.conf;

    # Test only: the web app's upstream echoes what it received.
    server {
        listen 127.0.0.1:$P_ECHO;
        location / {
            return 200 "x-auth-user=[\$http_x_auth_user] x-auth-groups=[\$http_x_auth_groups] authorization=[\$http_authorization] uri=[\$request_uri]\n";
        }
    }

    # Test only: the same registry through nginx without auth_request (baseline).
    upstream registry_direct {
        server 127.0.0.1:$P_REG;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$P_DIRECT ssl;
        ssl_certificate $CRT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        client_max_body_size 0;
        chunked_transfer_encoding on;
        location /v2/ {
            add_header Docker-Distribution-Api-Version \$docker_distribution_api_version always;
            proxy_pass http://registry_direct;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering off;
            proxy_set_header Host \$http_host;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_read_timeout 900;
        }
    }
EOF

# Instance 2: registry-behind-lb.conf, plus a test-only "load balancer" that
# terminates TLS and sets X-Forwarded-For (a simulated client 192.0.2.10) and
# X-Forwarded-Proto, like an ELB in HTTPS mode.
nginx_conf "$N2" "$NGX_USER" 1 256 notice <<EOF
$(nginx_http_common "$N2")
    include conf.d/gatehouse-upstream.conf;
    include conf.d/registry-behind-lb.conf;

    server {
        listen 127.0.0.1:$P_LBF ssl;
        ssl_certificate $CRT;
        ssl_certificate_key $KEY;
        client_max_body_size 0;
        location / {
            proxy_pass http://127.0.0.1:$P_LBV;
            proxy_http_version 1.1;
            proxy_request_buffering off;
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For 192.0.2.10;
            proxy_set_header X-Forwarded-Proto https;
            proxy_read_timeout 900;
        }
    }
EOF

for n in 1 2; do
    d=$T/n$n
    if nginx_check "$d"; then
        ok "nginx -t accepts instance $n ($(cd "$d/conf.d" && echo *.conf | sed 's/ /, /g'), snippets/gatehouse-auth.conf, snippets/gatehouse-identity.conf)"
    else
        not_ok "nginx -t accepts instance $n"
        printf '%s\n' "$NGINX_OUT" | diag
    fi
done
nginx_start "$N1"
NGX1_PID=$!
nginx_start "$N2"
NGX2_PID=$!
wait_http "https://127.0.0.1:$P_NGX/v2/" || { diag <"$N1/logs/error.log"; die "nginx 1 did not start"; }
wait_http "https://127.0.0.1:$P_LBF/v2/" || { diag <"$N2/logs/error.log"; die "nginx 2 did not start"; }

# Tab characters and indentation of the shipped files
if grep -n "$(printf '\t')" "$KIT"/*.conf "$KIT"/gatehouse.service >/dev/null; then
    not_ok "shipped nginx kit files contain no tabs"
else
    ok "shipped nginx kit files contain no tabs"
fi

# ---------------------------------------------------------------- systemd unit
if command -v systemd-analyze >/dev/null; then
    sed "s#/usr/local/bin/gatehouse#$GH#g" "$KIT/gatehouse.service" >"$T/gatehouse.service"
    out=$(systemd-analyze verify "$T/gatehouse.service" 2>&1)
    rc=$?
    if [ $rc -eq 0 ] && [ -z "$out" ]; then
        ok "systemd-analyze verify accepts nginx/gatehouse.service without warnings"
    else
        not_ok "systemd-analyze verify accepts nginx/gatehouse.service without warnings"
        printf '%s\n' "$out" | diag
    fi
    exposure=$(systemd-analyze security --offline=yes "$T/gatehouse.service" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: *//p')
    [ -n "$exposure" ] && echo "# measure: systemd-analyze security exposure of gatehouse.service: $exposure"
else
    echo "# skip: systemd-analyze not available"
fi

# ---------------------------------------------------------------- OCI images
# make_image DIR TAG SIZE...: an OCI layout with one gzip'ed tar of random bytes
# per size; prints the manifest digest and the layer digests.
make_image() {
    python3 - "$@" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out, tag, sizes = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3:]]
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return "sha256:" + d
layers, diff_ids = [], []
for i, size in enumerate(sizes):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("data/layer%d.bin" % i)
        info.size, info.mtime, info.mode = size, 0, 0o644
        tf.addfile(info, io.BytesIO(os.urandom(size)))
    tar = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    gz = gzip.compress(tar, compresslevel=1, mtime=0)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "digest": put(gz), "size": len(gz)})
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
manifest = json.dumps({"schemaVersion": 2,
                       "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": put(config), "size": len(config)},
                       "layers": layers}).encode()
mdigest = put(manifest)
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": mdigest, "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion": "1.0.0"}')
print(mdigest, *[l["digest"] for l in layers])
PY
}
MIB=1048576
read -r MULTI_DIGEST MULTI_L1 MULTI_L2 MULTI_L3 < <(make_image "$T/images/multi" v1 $((1 * MIB)) $((2 * MIB)) $((MIB / 2))) || die "image multi"
[ -n "${MULTI_L3:-}" ] || die "image multi layout"
echo "# images: multi $MULTI_DIGEST (3 layers)"
if want htpasswd; then  # the 100 MiB image is for the htpasswd scenarios only
    read -r BIG_DIGEST BIG_L1 < <(make_image "$T/images/big" v1 $((100 * MIB))) || die "image big"
    [ -n "${BIG_L1:-}" ] || die "image big layout"
    echo "# images: big $BIG_DIGEST (1 layer of 100 MiB, $(stat -c %s "$T/images/big/blobs/sha256/${BIG_L1#sha256:}") bytes gzip'ed)"
fi

# ---------------------------------------------------------------- skopeo
skopeo_setup
R=127.0.0.1:$P_NGX
OCI_ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'

# ================================================================ scenarios: htpasswd
htpasswd_scenarios() {
    # --- pusher pushes the 3-layer image
    c0=$(decisions)
    a0=$(wc -l <"$N1/logs/access.log")
    t0=$(now)
    out=$(sk copy --dest-cert-dir "$T/certs" --dest-creds "pusher:$PW_PUSHER" \
        "oci:$T/images/multi:v1" "docker://$R/team/app:v1" 2>&1)
    rc=$?
    TIME_PUSH_MULTI=$(elapsed "$t0" "$(now)")
    settle
    N_PUSH_MULTI=$(($(decisions) - c0))
    LAT_PUSH_MULTI=$(latency_stats "$c0" "$N_PUSH_MULTI")
    N_CLIENT_REQ=$(($(wc -l <"$N1/logs/access.log") - a0))
    if [ $rc -eq 0 ]; then ok "pusher pushes a 3-layer image (team/app:v1)"; else not_ok "pusher pushes a 3-layer image"; printf '%s\n' "$out" | diag; fi
    check_eq "one auth subrequest per client request (nginx access log vs. Gatehouse audit lines)" "$N_CLIENT_REQ" "$N_PUSH_MULTI"
    echo "# measure: auth subrequests for a push of 3 gzip layers + config + manifest: $N_PUSH_MULTI (notes: 5*L+6 = 21)"
    echo "# measure: push of 3 layers (3.5 MiB) with htpasswd: ${TIME_PUSH_MULTI}s; decision latency $LAT_PUSH_MULTI"

    conns=$(ss -Htn state established "( dport = :$P_GATE )" | wc -l)
    if [ "$conns" -ge 1 ]; then ok "nginx keeps idle keep-alive connections to Gatehouse ($conns open)"; else not_ok "nginx keeps idle keep-alive connections to Gatehouse (0 open)"; fi

    # --- pusher pushes the 100 MiB image (timed, through Gatehouse)
    c0=$(decisions)
    t0=$(now)
    out=$(sk copy --dest-cert-dir "$T/certs" --dest-creds "pusher:$PW_PUSHER" \
        "oci:$T/images/big:v1" "docker://$R/team/big:v1" 2>&1)
    rc=$?
    t1=$(now)
    settle
    N_PUSH_BIG=$(($(decisions) - c0))
    TIME_GATE_1=$(elapsed "$t0" "$t1")
    if [ $rc -eq 0 ]; then ok "pusher pushes an image with a 100 MiB layer (team/big:v1)"; else not_ok "pusher pushes an image with a 100 MiB layer"; printf '%s\n' "$out" | diag; fi
    echo "# measure: auth subrequests for a push of 1 layer of 100 MiB: $N_PUSH_BIG"
    check_nomatch "the 100 MiB PATCH streams to the registry (no request body spooled to a temp file)" \
        "buffered to a temporary file" "$(cat "$N1/logs/error.log")"

    # --- reader pulls and lists tags
    c0=$(decisions)
    out=$(sk copy --src-cert-dir "$T/certs" --src-creds "reader:$PW_READER" \
        "docker://$R/team/app:v1" "oci:$T/images/pulled:v1" 2>&1)
    rc=$?
    settle
    N_PULL_MULTI=$(($(decisions) - c0))
    if [ $rc -eq 0 ]; then ok "reader pulls team/app:v1"; else not_ok "reader pulls team/app:v1"; printf '%s\n' "$out" | diag; fi
    pulled=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$T/images/pulled/index.json" 2>/dev/null)
    check_eq "the pulled manifest is the pushed one" "$MULTI_DIGEST" "$pulled"
    echo "# measure: auth subrequests for a pull of 3 layers: $N_PULL_MULTI (notes: L+3 = 6)"

    c0=$(decisions)
    out=$(sk copy --src-cert-dir "$T/certs" --src-creds "reader:$PW_READER" \
        "docker://$R/team/big:v1" "oci:$T/images/pulledbig:v1" 2>&1)
    rc=$?
    settle
    N_PULL_BIG=$(($(decisions) - c0))
    if [ $rc -eq 0 ]; then ok "reader pulls team/big:v1 (100 MiB)"; else not_ok "reader pulls team/big:v1"; printf '%s\n' "$out" | diag; fi
    echo "# measure: auth subrequests for a pull of 1 layer of 100 MiB: $N_PULL_BIG"

    out=$(sk list-tags --cert-dir "$T/certs" --creds "reader:$PW_READER" "docker://$R/team/app" 2>&1)
    check_match "reader lists the tags of team/app" '"v1"' "$out"

    # --- reader may not push: new repository, and existing blobs
    c0=$(decisions)
    out=$(sk copy --dest-cert-dir "$T/certs" --dest-creds "reader:$PW_READER" \
        "oci:$T/images/multi:v1" "docker://$R/team/readers-own:v1" 2>&1)
    rc=$?
    settle
    if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'denied'; then
        ok "reader's push to a new repository is refused with 'denied'"
    else
        not_ok "reader's push to a new repository is refused with 'denied' (rc=$rc)"; printf '%s\n' "$out" | diag
    fi
    echo "# measure: auth subrequests for the refused push (new repository): $(($(decisions) - c0))"
    c0=$(decisions)
    out=$(sk copy --dest-cert-dir "$T/certs" --dest-creds "reader:$PW_READER" \
        "oci:$T/images/multi:v1" "docker://$R/team/app:v1" 2>&1)
    rc=$?
    settle
    if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'manifest' && printf '%s' "$out" | grep -q 'denied'; then
        ok "reader's re-push of existing blobs to team/app is refused at the manifest PUT with 'denied'"
    else
        not_ok "reader's re-push of existing blobs is refused at the manifest PUT with 'denied' (rc=$rc)"; printf '%s\n' "$out" | diag
    fi
    echo "# measure: auth subrequests for the refused re-push (blobs exist): $(($(decisions) - c0))"
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -u "reader:$PW_READER" -H "$OCI_ACCEPT" "https://$R/v2/team/readers-own/manifests/v1")
    check_eq "reader's refused push left no manifest behind (404)" 404 "$code"

    # --- no credentials / wrong password: 401, exactly one WWW-Authenticate, Docker JSON
    for who in "no credentials" "wrong password"; do
        auth=()
        [ "$who" = "wrong password" ] && auth=(-u "reader:not-$PW_READER")
        for path in /v2/ /v2/team/app/manifests/v1; do
            resp=$("${CURL[@]}" -i "${auth[@]}" -H "$OCI_ACCEPT" "https://$R$path" | tr -d '\r')
            status=$(printf '%s\n' "$resp" | head -n1 | awk '{print $2}')
            n_www=$(printf '%s\n' "$resp" | grep -ci '^www-authenticate:')
            check_eq "$who, GET $path: 401" 401 "$status"
            check_eq "$who, GET $path: exactly one WWW-Authenticate header" 1 "$n_www"
            check_match "$who, GET $path: Basic challenge with realm and charset" \
                '^[Ww][Ww][Ww]-[Aa]uthenticate: Basic realm="Registry", charset="UTF-8"$' "$(printf '%s\n' "$resp" | grep -i '^www-authenticate:')"
            check_match "$who, GET $path: Docker JSON UNAUTHORIZED body and API version header" \
                '"code":"UNAUTHORIZED"' "$resp"
            check_match "$who, GET $path: Docker-Distribution-Api-Version on the 401" \
                '^Docker-Distribution-Api-Version: registry/2.0$' "$resp"
        done
    done
    out=$(sk inspect --cert-dir "$T/certs" --creds "reader:wrong" "docker://$R/team/app:v1" 2>&1)
    check_match "skopeo with a wrong password fails with 'unauthorized'" 'unauthorized' "$out"

    # --- wrong passwords under the default lockout cost nobody else anything. Every client
    # reaches nginx from 127.0.0.1 here: the office behind one NAT. A CI job retrying a stale
    # secret 12 times (one mistake), 15 made-up users, skopeo with 3 wrong passwords for pusher;
    # then reader and pusher pull and push as before.
    codes=""
    for i in $(seq 1 12); do
        codes+=" $("${CURL[@]}" -o /dev/null -w '%{http_code}' -u "reader:stale-secret" "https://$R/v2/team/app/tags/list")"
    done
    for i in $(seq 1 15); do
        codes+=" $("${CURL[@]}" -o /dev/null -w '%{http_code}' -u "ghost$i:guess$i" "https://$R/v2/team/app/tags/list")"
    done
    check_eq "27 wrong logins from one address: 27 x 401" "$(printf ' 401%.0s' $(seq 1 27))" "$codes"
    for i in 1 2 3; do sk inspect --cert-dir "$T/certs" --creds "pusher:wrong-$i" "docker://$R/team/app:v1" >/dev/null 2>&1; done
    out=$(sk inspect --cert-dir "$T/certs" --creds "reader:$PW_READER" "docker://$R/team/app:v1" 2>&1)
    check_match "after them, reader (whose stale secret failed 12 times) pulls with skopeo" '"Digest"' "$out"
    out=$(sk copy --dest-cert-dir "$T/certs" --dest-creds "pusher:$PW_PUSHER" \
        "oci:$T/images/multi:v1" "docker://$R/team/after-wrong:v1" 2>&1)
    rc=$?
    pass_if $rc "after them, pusher (3 wrong passwords first) pushes team/after-wrong with skopeo"
    [ $rc = 0 ] || printf '%s\n' "$out" | diag
    resp=$("${CURL[@]}" -I "https://$R/v2/team/app/blobs/$MULTI_L1" | tr -d '\r')
    check_match "anonymous HEAD of a blob: 401" '^HTTP/1.1 401' "$resp"

    # --- catalog: admin only
    resp=$("${CURL[@]}" -i -u "pusher:$PW_PUSHER" -H 'X-Auth-User: admin' -H 'X-Auth-Groups: registry-admins' "https://$R/v2/_catalog" | tr -d '\r')
    check_match "pusher gets 403 for _catalog (even claiming X-Auth-User: admin)" '^HTTP/1.1 403' "$resp"
    check_match "the 403 has the Docker JSON DENIED body" '"code":"DENIED"' "$resp"
    check_match "the 403 has Docker-Distribution-Api-Version" '^Docker-Distribution-Api-Version: registry/2.0$' "$resp"
    check_eq "the 403 carries no WWW-Authenticate" 0 "$(printf '%s\n' "$resp" | grep -ci '^www-authenticate:')"
    resp=$("${CURL[@]}" -i -u "admin:$PW_ADMIN" "https://$R/v2/_catalog" | tr -d '\r')
    check_match "admin gets 200 for _catalog" '^HTTP/1.1 200' "$resp"
    check_match "admin's catalog lists team/app and team/big" '"team/app".*"team/big"|"team/big".*"team/app"' "$resp"

    # --- cross-repository mount: push on the target and pull on the source
    mount_url() { echo "https://$R/v2/$1/blobs/uploads/?mount=$2&from=$3"; }
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -u "xuser:$PW_XUSER" -X POST "https://$R/v2/x/own/blobs/uploads/")
    check_eq "xuser may start an upload in x/own (202)" 202 "$code"
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -u "xuser:$PW_XUSER" -I "https://$R/v2/team/app/blobs/$MULTI_L1")
    check_eq "xuser may not read team/app's blobs (403)" 403 "$code"
    for from in team/app team%2Fapp; do
        resp=$("${CURL[@]}" -i -u "xuser:$PW_XUSER" -X POST "$(mount_url x/stolen "$MULTI_L1" "$from")" | tr -d '\r')
        check_match "xuser's mount of a team/app blob into x/stolen (from=$from) is refused: 403 DENIED" '^HTTP/1.1 403' "$resp"
    done
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -u "admin:$PW_ADMIN" -I "https://$R/v2/x/stolen/blobs/$MULTI_L1")
    check_eq "the blob did not appear in x/stolen (404)" 404 "$code"
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -u "admin:$PW_ADMIN" -X POST "$(mount_url x/mounted "$MULTI_L1" team%2Fapp)")
    check_eq "admin's mount of the same blob (from=team%2Fapp, as skopeo sends it) succeeds (201)" 201 "$code"
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -u "admin:$PW_ADMIN" -I "https://$R/v2/x/mounted/blobs/$MULTI_L1")
    check_eq "the mounted blob exists in x/mounted (200)" 200 "$code"
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -u "pusher:$PW_PUSHER" -X DELETE "https://$R/v2/x/mounted/blobs/$MULTI_L1")
    check_eq "pusher may not delete (403)" 403 "$code"
    # nginx normalizes the path for location matching but passes the raw URI both to
    # the registry and (as X-Original-URI) to the gate: dot segments must be refused.
    for path in "/v2/x/../team/app/manifests/v1" "/v2/x/%2e%2e/team/app/manifests/v1" "/v2/x%2F..%2Fteam/app/manifests/v1"; do
        code=$("${CURL[@]}" --path-as-is -o /dev/null -w '%{http_code}' -u "xuser:$PW_XUSER" -H "$OCI_ACCEPT" "https://$R$path")
        check_eq "xuser cannot reach team/app through $path (403)" 403 "$code"
    done

    # --- web app (webapp.conf, policy wiki) and identity headers
    W=https://127.0.0.1:$P_WIKI
    resp=$("${CURL[@]}" -i -u "reader:$PW_READER" -H 'X-Auth-User: admin' -H 'X-Auth-Groups: registry-admins' "$W/wiki/x" | tr -d '\r')
    check_match "web app: reader may GET /wiki/x (200)" '^HTTP/1.1 200' "$resp"
    check_match "web app: the upstream sees the gate's user, not the client's X-Auth-User: admin" \
        'x-auth-user=\[reader\] x-auth-groups=\[\] ' "$resp"
    check_match "web app: the client's Authorization header does not reach the upstream" 'authorization=\[\]' "$resp"
    resp=$("${CURL[@]}" -i -u "admin:$PW_ADMIN" -H 'X-Auth-User: reader' "$W/wiki/page?a=1" | tr -d '\r')
    check_match "web app: admin's groups reach the upstream" 'x-auth-user=\[admin\] x-auth-groups=\[registry-admins\]' "$resp"
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -u "reader:$PW_READER" -X POST -d 'x=1' "$W/wiki/x")
    check_eq "web app: reader's POST /wiki/x is refused (403)" 403 "$code"
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -u "reader:$PW_READER" "$W/admin/")
    check_eq "web app: GET outside /wiki/ is refused (403)" 403 "$code"
    resp=$("${CURL[@]}" -i "$W/wiki/x" | tr -d '\r')
    check_match "web app: anonymous GET gets 401" '^HTTP/1.1 401' "$resp"
    check_eq "web app: the 401 has exactly one WWW-Authenticate" 1 "$(printf '%s\n' "$resp" | grep -ci '^www-authenticate:')"
    check_match "web app: decisions come from policy wiki" 'policy=wiki' "$(grep 'uri=/wiki/x' "$T/logs/gatehouse.log")"

    # --- registry behind a load balancer (registry-behind-lb.conf)
    LB=127.0.0.1:$P_LBF
    c0=$(decisions)
    out=$(sk copy --dest-cert-dir "$T/certs" --dest-creds "pusher:$PW_PUSHER" \
        "oci:$T/images/multi:v1" "docker://$LB/team/via-lb:v1" 2>&1)
    rc=$?
    settle
    if [ $rc -eq 0 ]; then ok "behind a load balancer: pusher pushes team/via-lb:v1 (upload URLs keep https and the port)"; else not_ok "behind a load balancer: pusher pushes team/via-lb:v1"; printf '%s\n' "$out" | diag; fi
    lb_lines=$(tail -n +$((c0 + 1)) <(grep 'decision=' "$T/logs/gatehouse.log"))
    check_match "behind a load balancer: Gatehouse sees the client's address (192.0.2.10)" 'client=192\.0\.2\.10' "$lb_lines"
    check_nomatch "behind a load balancer: Gatehouse never sees the balancer's address as the client" 'client=127\.0\.0\.1' "$lb_lines"
    out=$(sk copy --dest-cert-dir "$T/certs" --dest-creds "reader:$PW_READER" \
        "oci:$T/images/multi:v1" "docker://$LB/team/via-lb-reader:v1" 2>&1)
    check_match "behind a load balancer: reader's push is refused with 'denied'" 'denied' "$out"
    resp=$("${CURL[@]}" -i "https://$LB/v2/" | tr -d '\r')
    check_eq "behind a load balancer: anonymous /v2/ gets 401 with one WWW-Authenticate" "401 1" \
        "$(printf '%s\n' "$resp" | head -n1 | awk '{print $2}') $(printf '%s\n' "$resp" | grep -ci '^www-authenticate:')"

    # --- 100 MiB push timings: with Gatehouse vs. the same nginx without auth_request
    # (alternating; every push goes to a new repository with a fresh skopeo cache, so
    # each one uploads the whole layer: checked in the registry's log)
    D=127.0.0.1:$P_DIRECT
    # timed_push HOST REPO [CREDS]: sets TIMED (seconds) and TIMED_RC
    timed_push() {
        local creds=() t0 t1
        [ -n "${3:-}" ] && creds=(--dest-creds "$3")
        t0=$(now)
        sk copy --dest-cert-dir "$T/certs" "${creds[@]}" "oci:$T/images/big:v1" "docker://$1/$2:v1" >"$T/logs/timed-push.log" 2>&1
        TIMED_RC=$?
        t1=$(now)
        TIMED=$(elapsed "$t0" "$t1")
        [ $TIMED_RC -eq 0 ] || diag <"$T/logs/timed-push.log"
    }
    TIMES_GATE="$TIME_GATE_1" TIMES_DIRECT="" timed_fail=0
    for round in 1 2 3; do
        timed_push "$D" "direct/big$round"
        [ $TIMED_RC -eq 0 ] || timed_fail=1
        TIMES_DIRECT="$TIMES_DIRECT $TIMED"
        timed_push "$R" "team/big-timed$round" "pusher:$PW_PUSHER"
        [ $TIMED_RC -eq 0 ] || timed_fail=1
        TIMES_GATE="$TIMES_GATE $TIMED"
    done
    uploads=0
    for repo in team/big direct/big1 direct/big2 direct/big3 team/big-timed1 team/big-timed2 team/big-timed3; do
        grep -q "\"PATCH /v2/$repo/blobs/uploads/" "$T/logs/registry.log" && uploads=$((uploads + 1))
    done
    if [ $timed_fail -eq 0 ] && [ $uploads -eq 7 ]; then
        ok "timed 100 MiB pushes with and without Gatehouse succeed, each uploading the layer"
    else
        not_ok "timed 100 MiB pushes with and without Gatehouse succeed, each uploading the layer ($uploads of 7 uploaded)"
    fi
    median() { printf '%s\n' $* | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    echo "# measure: 100 MiB push (skopeo, nginx TLS) with Gatehouse:$(printf ' %ss' $TIMES_GATE) -> median $(median $TIMES_GATE)s"
    echo "# measure: 100 MiB push (skopeo, nginx TLS) without auth_request:$(printf ' %ss' $TIMES_DIRECT) -> median $(median $TIMES_DIRECT)s"

    # --- Gatehouse down: nginx answers 500 and nothing reaches the registry
    stop_gate
    check_eq "Gatehouse exits 0 on SIGTERM" 0 "$GATE_RC"
    echo "# measure: Gatehouse stop on SIGTERM (with nginx's idle keep-alive connections open): ${GATE_STOP}s"
    reg0=$(registry_requests)
    codes=""
    codes+=$("${CURL[@]}" -o /dev/null -w '%{http_code} ' -u "reader:$PW_READER" "https://$R/v2/")
    codes+=$("${CURL[@]}" -o /dev/null -w '%{http_code} ' -u "reader:$PW_READER" -H "$OCI_ACCEPT" "https://$R/v2/team/app/manifests/v1")
    codes+=$("${CURL[@]}" -o /dev/null -w '%{http_code} ' -u "pusher:$PW_PUSHER" -I "https://$R/v2/team/app/blobs/$MULTI_L1")
    codes+=$("${CURL[@]}" -o /dev/null -w '%{http_code} ' -u "pusher:$PW_PUSHER" -X POST "https://$R/v2/team/app/blobs/uploads/")
    codes+=$("${CURL[@]}" -o /dev/null -w '%{http_code} ' "https://$R/v2/")
    codes+=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -u "reader:$PW_READER" "$W/wiki/x")
    check_eq "Gatehouse stopped: nginx answers 500 to every request (registry and web app)" "500 500 500 500 500 500" "$codes"
    out=$(sk inspect --cert-dir "$T/certs" --creds "reader:$PW_READER" "docker://$R/team/app:v1" 2>&1)
    check_match "Gatehouse stopped: skopeo fails with status 500" '500' "$out"
    sleep 0.2
    check_eq "Gatehouse stopped: no request reached the registry" "$reg0" "$(registry_requests)"
    check_match "Gatehouse stopped: error.log names the failed auth request" \
        'auth request unexpected status: 50[0-9]|connect\(\) failed .*_gatehouse_auth' "$(cat "$N1/logs/error.log")"

    # --- Gatehouse restarted: works again without touching nginx
    start_gate || not_ok "Gatehouse restarts on the same port"
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -u "reader:$PW_READER" "https://$R/v2/")
    check_eq "Gatehouse restarted: reader logs in again without restarting nginx (200)" 200 "$code"
    out=$(sk inspect --cert-dir "$T/certs" --creds "reader:$PW_READER" "docker://$R/team/app:v1" 2>&1)
    check_match "Gatehouse restarted: skopeo inspect works" "$MULTI_DIGEST" "$out"
    if kill -0 "$NGX1_PID" 2>/dev/null; then ok "nginx kept running throughout (pid $NGX1_PID)"; else not_ok "nginx kept running throughout"; fi

    # --- reload (the unit's ExecReload): a user added to htpasswd can log in after SIGHUP
    printf '%s' late-e2e-pw | "$GH" hash --cost 5 late >>"$T/htpasswd"
    kill -HUP "$GATE_PID"
    code=000
    for i in $(seq 1 30); do
        code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -u "late:late-e2e-pw" "https://$R/v2/")
        [ "$code" = 200 ] && break
        sleep 0.1
    done
    check_eq "after SIGHUP a user added to htpasswd logs in (200)" 200 "$code"
    kill -0 "$GATE_PID" 2>/dev/null && ok "Gatehouse keeps running after SIGHUP" || not_ok "Gatehouse keeps running after SIGHUP"
}

# ================================================================ scenarios: ldap
# The same nginx (same upstream port) in front of a Gatehouse whose only backend is a
# throwaway OpenLDAP (Tests/Fixtures/slapd.sh, its README lists the entries): alice
# (groups pushers, readers), bob (auditors, developers), carol (no group).
LDAP_ALICE=alice:alice-pw LDAP_BOB=bob:bob-pw LDAP_CAROL=carol:carol-pw
# slapd_start: (re)start the fixture's slapd in LDAP_DIR (new ports, new CA, same
# entries); sets SLAPD_START (seconds).
slapd_start() {
    local t0
    t0=$(now)
    slapd_fixture start || return 1
    SLAPD_START=$(elapsed "$t0" "$(now)")
}
slapd_lines() { wc -l <"$LDAP_DIR/slapd.log"; }
# http_status USER:PW CURL-ARGS... URL: the HTTP status only
http_status() {
    local creds=$1
    shift
    "${CURL[@]}" -o /dev/null -w '%{http_code}' -u "$creds" "$@"
}
# write_ldap_config: the Gatehouse configuration for the slapd described by LDAP_DIR/env.
# The credential cache is off here: these checks are about what the directory answers, and a
# cached success would (rightly) keep serving while slapd is stopped.
# The directory's group is "auditors": LDAP group names compare case-insensitively.
LDAP_RULES=('{groups: [Auditors], allow: [pull, catalog]}' '{groups: [pushers], allow: [pull, push]}'
    '{users: ["*"], allow: [pull]}')
write_ldap_config() {
    cat >"$T/gatehouse-ldap.yaml" <<EOF
listen: 127.0.0.1:$P_GATE
realm: Registry
trusted_proxies: [127.0.0.1/32, "::1/128"]
default_policy: registry
cache: {max_entries: 0}
backends:
$(ldap_backend_yaml)
$(registry_policy_yaml "${LDAP_RULES[@]}")
$(wiki_policy_yaml)
EOF
}

ldap_scenarios() {
    local t0 c0 a0 e0 s0 rc out resp acc sl who path auth status n_www n_client codes reg0 i
    local old_urls new_urls old_ca new_ca slapd_pid cpu0 cpu1 t_hang first lat
    local W=https://127.0.0.1:$P_WIKI
    local MANIFEST=$T/images/multi/blobs/sha256/${MULTI_DIGEST#sha256:}
    local OCI_MANIFEST='Content-Type: application/vnd.oci.image.manifest.v1+json'
    echo "# --- backend ldap: Gatehouse with one ldap backend (slapd fixture, ldaps://)"

    LDAP_DIR=$T/ldap
    slapd_start || { diag <"$T/logs/slapd-fixture.log"; die "slapd fixture did not start"; }
    echo "# ldap: slapd at $(ldap_env LDAP_URL) and $(ldap_env LDAPS_URL) (fixture start ${SLAPD_START}s)"
    write_ldap_config
    out=$("$GH" config check --config "$T/gatehouse-ldap.yaml" 2>&1)
    if [ $? -eq 0 ]; then ok "ldap: gatehouse config check accepts the ldap backend"; else not_ok "ldap: gatehouse config check accepts the ldap backend"; printf '%s\n' "$out" | diag; fi
    out=$(printf '%s' alice-pw | "$GH" ldap test --config "$T/gatehouse-ldap.yaml" --user alice --password-stdin 2>&1)
    rc=$?
    if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q 'alice: pushers, readers'; then
        ok "ldap: gatehouse ldap test: TLS verified, alice binds, groups pushers and readers"
    else
        not_ok "ldap: gatehouse ldap test (rc=$rc)"; printf '%s\n' "$out" | diag
    fi

    # nginx stays as it is: the Gatehouse behind its upstream port changes.
    [ -n "$GATE_PID" ] && stop_gate
    GATE_CONF=$T/gatehouse-ldap.yaml
    GATE_LOG=$T/logs/gatehouse-ldap.log
    start_gate || { diag <"$GATE_LOG"; die "gatehouse with the ldap backend did not start"; }

    # --- alice (group pushers) pushes the 3-layer image
    c0=$(decisions)
    a0=$(wc -l <"$N1/logs/access.log")
    s0=$(slapd_lines)
    t0=$(now)
    out=$(sk copy --dest-cert-dir "$T/certs" --dest-creds "$LDAP_ALICE" \
        "oci:$T/images/multi:v1" "docker://$R/corp/app:v1" 2>&1)
    rc=$?
    TIME_LDAP_PUSH=$(elapsed "$t0" "$(now)")
    settle
    N_LDAP_PUSH=$(($(decisions) - c0))
    n_client=$(($(wc -l <"$N1/logs/access.log") - a0))
    if [ $rc -eq 0 ]; then ok "ldap: alice (LDAP group pushers) pushes a 3-layer image (corp/app:v1)"; else not_ok "ldap: alice pushes a 3-layer image"; printf '%s\n' "$out" | diag; fi
    check_eq "ldap: one auth subrequest per client request (nginx access log vs. Gatehouse audit lines)" "$n_client" "$N_LDAP_PUSH"
    want htpasswd && check_eq "ldap: the push takes as many auth subrequests as with htpasswd" "$N_PUSH_MULTI" "$N_LDAP_PUSH"
    acc=$(tail -n +$((a0 + 1)) "$N1/logs/access.log")
    check_eq "ldap: every request of the push that passed the gate went upstream with X-Auth-User alice (access log; the rest are anonymous 401s)" \
        "$n_client" "$(($(grep -c ' gate_user=alice "' <<<"$acc") + $(grep -c ' gate_user= ".*" 401 ' <<<"$acc")))"
    sl=$(tail -n +$((s0 + 1)) "$LDAP_DIR/slapd.log")
    echo "# measure: ldap: auth subrequests for alice's push of 3 gzip layers + config + manifest: $N_LDAP_PUSH$(want htpasswd && echo " (htpasswd: $N_PUSH_MULTI)")"
    echo "# measure: ldap: that push took ${TIME_LDAP_PUSH}s$(want htpasswd && echo " (htpasswd: ${TIME_PUSH_MULTI}s)"); decision latency $(latency_stats "$c0" "$N_LDAP_PUSH")"
    echo "# measure: ldap: directory operations for that push (slapd stats log): $(grep -c ' SRCH base=' <<<"$sl") searches, $(grep -c ' BIND dn="uid=alice,[^"]*" method=' <<<"$sl") binds as alice, $(grep -c ' BIND dn=.* method=' <<<"$sl") binds in all, $(grep -c ' ACCEPT from ' <<<"$sl") new connections"

    # --- carol (no group) pulls and lists tags
    c0=$(decisions)
    out=$(sk copy --src-cert-dir "$T/certs" --src-creds "$LDAP_CAROL" \
        "docker://$R/corp/app:v1" "oci:$T/images/ldap-pulled:v1" 2>&1)
    rc=$?
    settle
    N_LDAP_PULL=$(($(decisions) - c0))
    if [ $rc -eq 0 ]; then ok "ldap: carol (no group) pulls corp/app:v1"; else not_ok "ldap: carol pulls corp/app:v1"; printf '%s\n' "$out" | diag; fi
    check_eq "ldap: the manifest carol pulled is the one alice pushed" "$MULTI_DIGEST" \
        "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$T/images/ldap-pulled/index.json" 2>/dev/null)"
    out=$(sk list-tags --cert-dir "$T/certs" --creds "$LDAP_CAROL" "docker://$R/corp/app" 2>&1)
    check_match "ldap: carol lists the tags of corp/app" '"v1"' "$out"

    # --- carol may not push: a new repository, and existing blobs (manifest PUT only)
    out=$(sk copy --dest-cert-dir "$T/certs" --dest-creds "$LDAP_CAROL" \
        "oci:$T/images/multi:v1" "docker://$R/corp/carols-own:v1" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'denied'; then
        ok "ldap: carol's push to a new repository is refused with 'denied'"
    else
        not_ok "ldap: carol's push to a new repository is refused with 'denied' (rc=$rc)"; printf '%s\n' "$out" | diag
    fi
    check_eq "ldap: carol's refused push left no manifest behind (404)" 404 \
        "$(http_status "$LDAP_CAROL" -H "$OCI_ACCEPT" "https://$R/v2/corp/carols-own/manifests/v1")"
    c0=$(decisions)
    out=$(sk copy --dest-cert-dir "$T/certs" --dest-creds "$LDAP_CAROL" \
        "oci:$T/images/multi:v1" "docker://$R/corp/app:v1" 2>&1)
    rc=$?
    settle
    if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'manifest' && printf '%s' "$out" | grep -q 'denied'; then
        ok "ldap: carol's re-push of existing blobs to corp/app is refused at the manifest PUT with 'denied'"
    else
        not_ok "ldap: carol's re-push of existing blobs is refused at the manifest PUT with 'denied' (rc=$rc)"; printf '%s\n' "$out" | diag
    fi
    check_eq "ldap: in that re-push the manifest PUT was the only refused request" "PUT /v2/corp/app/manifests/v1 user=carol" \
        "$(decisions_since "$c0" | grep 'decision=deny' | sed 's/.* method=\([A-Z]*\) .* uri=\([^ ]*\) user=\([^ ]*\) .*/\1 \2 user=\3/')"

    # --- no credentials, wrong password, unknown user: 401 with exactly one challenge
    for who in "no credentials" "wrong password" "unknown user"; do
        case $who in
        "no credentials") auth=() ;;
        "wrong password") auth=(-u "alice:not-alice-pw") ;;
        *) auth=(-u "mallory:alice-pw") ;;
        esac
        for path in /v2/ /v2/corp/app/manifests/v1; do
            resp=$("${CURL[@]}" -i "${auth[@]}" -H "$OCI_ACCEPT" "https://$R$path" | tr -d '\r')
            status=$(printf '%s\n' "$resp" | head -n1 | awk '{print $2}')
            n_www=$(printf '%s\n' "$resp" | grep -ci '^www-authenticate:')
            check_eq "ldap: $who, GET $path: 401 with exactly one WWW-Authenticate" "401 1" "$status $n_www"
            check_match "ldap: $who, GET $path: Basic challenge with realm and charset, Docker UNAUTHORIZED body" \
                '^[Ww][Ww][Ww]-[Aa]uthenticate: Basic realm="Registry", charset="UTF-8"$' \
                "$(printf '%s\n' "$resp" | grep -i '^www-authenticate:')$(printf '%s' "$resp" | grep -q '"code":"UNAUTHORIZED"' || echo ' (no UNAUTHORIZED body)')"
        done
    done
    out=$(sk inspect --cert-dir "$T/certs" --creds "alice:wrong" "docker://$R/corp/app:v1" 2>&1)
    check_match "ldap: skopeo with a wrong password fails with 'unauthorized'" 'unauthorized' "$out"
    check_eq "ldap: user '*' with alice's password gets 401 (the login is escaped in the filter)" 401 "$(http_status '*:alice-pw' "https://$R/v2/")"

    # --- the identity the upstream sees is the gate's (web app echo upstream)
    resp=$("${CURL[@]}" -u "$LDAP_ALICE" -H 'X-Auth-User: admin' -H 'X-Auth-Groups: registry-admins' "$W/wiki/x")
    check_match "ldap: web app: the upstream sees alice and her LDAP groups, not the client's X-Auth-User: admin, and no Authorization" \
        '^x-auth-user=\[alice\] x-auth-groups=\[pushers,readers\] authorization=\[\] ' "$resp"
    resp=$("${CURL[@]}" -u "$LDAP_BOB" -H 'X-Auth-User: alice' "$W/wiki/x")
    check_match "ldap: web app: bob's groups from groupOfUniqueNames and posixGroup reach the upstream" \
        '^x-auth-user=\[bob\] x-auth-groups=\[auditors,developers\] ' "$resp"
    resp=$("${CURL[@]}" -u "$LDAP_CAROL" -H 'X-Auth-Groups: pushers' "$W/wiki/x")
    check_match "ldap: web app: carol arrives with no groups (the client's X-Auth-Groups: pushers is dropped)" \
        '^x-auth-user=\[carol\] x-auth-groups=\[\] ' "$resp"

    # --- group names compare case-insensitively: rule "Auditors", directory "auditors"
    resp=$("${CURL[@]}" -i -u "$LDAP_BOB" "https://$R/v2/_catalog" | tr -d '\r')
    check_match "ldap: bob (auditors) gets _catalog through the rule for group Auditors (200)" '^HTTP/1.1 200' "$resp"
    check_match "ldap: bob's catalog lists corp/app" '"corp/app"' "$resp"
    check_eq "ldap: alice (pushers) does not get _catalog (403)" 403 "$(http_status "$LDAP_ALICE" "https://$R/v2/_catalog")"

    # --- slapd stopped: every request with credentials gets nginx's 500, nothing passes
    slapd_fixture stop
    reg0=$(registry_requests)
    c0=$(decisions)
    e0=$(wc -l <"$N1/logs/error.log")
    codes="$(http_status "$LDAP_ALICE" "https://$R/v2/")"
    codes+=" $(http_status "$LDAP_CAROL" -H "$OCI_ACCEPT" "https://$R/v2/corp/app/manifests/v1")"
    codes+=" $(http_status "$LDAP_ALICE" -I "https://$R/v2/corp/app/blobs/$MULTI_L1")"
    codes+=" $(http_status "$LDAP_ALICE" -X POST "https://$R/v2/corp/app/blobs/uploads/")"
    codes+=" $(http_status "alice:not-alice-pw" "https://$R/v2/")"
    codes+=" $(http_status "$LDAP_ALICE" "$W/wiki/x")"
    check_eq "ldap: slapd stopped: nginx answers 500 to every request with credentials (right or wrong password, registry and web app)" \
        "500 500 500 500 500 500" "$codes"
    check_eq "ldap: slapd stopped: Gatehouse answered each of them 503 (decision=unavailable)" 6 \
        "$(decisions_since "$c0" | grep -c 'decision=unavailable .*status=503')"
    check_match "ldap: slapd stopped: nginx's error.log names the gate's 503" 'auth request unexpected status: 503' \
        "$(tail -n +$((e0 + 1)) "$N1/logs/error.log")"
    check_eq "ldap: slapd stopped: an anonymous GET /v2/ still gets the 401 challenge" 401 \
        "$("${CURL[@]}" -o /dev/null -w '%{http_code}' "https://$R/v2/")"
    out=$(sk inspect --cert-dir "$T/certs" --creds "$LDAP_ALICE" "docker://$R/corp/app:v1" 2>&1)
    check_match "ldap: slapd stopped: skopeo fails with status 500" '500' "$out"
    check_eq "ldap: slapd stopped: Gatehouse's /readyz answers 503" 503 \
        "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$P_GATE/readyz")"
    sleep 0.2
    check_eq "ldap: slapd stopped: no request reached the registry" "$reg0" "$(registry_requests)"

    # --- slapd started again by the fixture (same DIR): new ports and a new CA?
    old_urls="$(ldap_env LDAP_URL) $(ldap_env LDAPS_URL)"
    old_ca=$(sha256sum <"$(ldap_env CA_FILE)")
    slapd_start || { diag <"$T/logs/slapd-fixture.log"; die "slapd fixture did not restart"; }
    new_urls="$(ldap_env LDAP_URL) $(ldap_env LDAPS_URL)"
    new_ca=$(sha256sum <"$(ldap_env CA_FILE)")
    echo "# ldap: the fixture restarted slapd in ${SLAPD_START}s: $old_urls -> $new_urls$([ "$old_urls" = "$new_urls" ] && echo " (same ports)"); CA $([ "$old_ca" = "$new_ca" ] && echo unchanged || echo "regenerated (same path)")"
    if [ "$old_urls" != "$new_urls" ]; then
        reg0=$(registry_requests)
        check_eq "ldap: slapd back on other ports, Gatehouse not reloaded yet: still 500" 500 "$(http_status "$LDAP_ALICE" "https://$R/v2/")"
        check_eq "ldap: ... and nothing reached the registry" "$reg0" "$(registry_requests)"
        write_ldap_config
        out=$("$GH" config check --config "$GATE_CONF" 2>&1) || { not_ok "ldap: the regenerated configuration passes config check"; printf '%s\n' "$out" | diag; }
        c0=$(grep -c 'configuration reloaded' "$GATE_LOG")
        t0=$(now)
        kill -HUP "$GATE_PID"
        first=000
        for i in $(seq 1 50); do
            first=$(http_status "$LDAP_ALICE" "https://$R/v2/")
            [ "$first" = 200 ] && break
            sleep 0.1
        done
        check_eq "ldap: after the new configuration and SIGHUP alice logs in again without touching nginx (200)" 200 "$first"
        echo "# measure: ldap: first 200 $(elapsed "$t0" "$(now)")s after SIGHUP"
        # The file watcher may take the edit before the signal arrives (config check runs in
        # between): one reload or two, never none.
        reloads=$(grep -c 'configuration reloaded' "$GATE_LOG")
        check_eq "ldap: Gatehouse logged the reload" yes "$([ "$reloads" -ge $((c0 + 1)) ] && [ "$reloads" -le $((c0 + 2)) ] && echo yes || echo "no: $c0 -> $reloads")"
    else
        first=000
        for i in $(seq 1 50); do
            first=$(http_status "$LDAP_ALICE" "https://$R/v2/")
            [ "$first" = 200 ] && break
            sleep 0.1
        done
        check_eq "ldap: slapd back on the same ports: alice logs in again without SIGHUP (200)" 200 "$first"
    fi
    out=$(sk copy --dest-cert-dir "$T/certs" --dest-creds "$LDAP_ALICE" \
        "oci:$T/images/multi:v1" "docker://$R/corp/after-restart:v1" 2>&1)
    if [ $? -eq 0 ]; then ok "ldap: after the restart alice pushes corp/after-restart:v1"; else not_ok "ldap: after the restart alice pushes corp/after-restart:v1"; printf '%s\n' "$out" | diag; fi
    out=$(sk inspect --cert-dir "$T/certs" --creds "$LDAP_CAROL" "docker://$R/corp/after-restart:v1" 2>&1)
    check_match "ldap: after the restart carol inspects it" "$MULTI_DIGEST" "$out"
    check_eq "ldap: after the restart carol's manifest PUT is refused (403)" 403 \
        "$(http_status "$LDAP_CAROL" -X PUT -H "$OCI_MANIFEST" --data-binary "@$MANIFEST" "https://$R/v2/corp/app/manifests/v2")"
    check_eq "ldap: ... and corp/app:v2 does not exist (404)" 404 "$(http_status "$LDAP_ALICE" -H "$OCI_ACCEPT" "https://$R/v2/corp/app/manifests/v2")"
    check_eq "ldap: after the restart /readyz answers 200" 200 \
        "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$P_GATE/readyz")"

    # --- slapd restarted on its own ports (a directory server's restart): pooled
    # connections are dead; Gatehouse must notice by itself, without SIGHUP
    slapd_fixture stop
    if slapd_same_ports; then
        check_eq "ldap: slapd restarted on the same ports: the first request afterwards succeeds without SIGHUP (200)" 200 \
            "$(http_status "$LDAP_ALICE" "https://$R/v2/")"
        check_eq "ldap: ... alice may start an upload (202), carol may not (403)" "202 403" \
            "$(http_status "$LDAP_ALICE" -X POST "https://$R/v2/corp/app/blobs/uploads/") $(http_status "$LDAP_CAROL" -X POST "https://$R/v2/corp/app/blobs/uploads/")"
    else
        not_ok "ldap: slapd restarts on its previous ports (taken meanwhile?)"; diag <"$LDAP_DIR/slapd.log"
        slapd_fixture stop
        echo "# skip: slapd hung (no slapd running)"
        stop_gate
        return
    fi

    # --- slapd hung (SIGSTOP: TCP connections are still accepted, nothing answers)
    slapd_pid=$(cat "$LDAP_DIR/slapd.pid")
    reg0=$(registry_requests)
    c0=$(decisions)
    e0=$(wc -l <"$N1/logs/error.log")
    cpu0=$(proc_cpu "$GATE_PID")
    kill -STOP "$slapd_pid"
    t0=$(now)
    status=$(http_status "$LDAP_ALICE" -X POST "https://$R/v2/corp/app/blobs/uploads/")
    t_hang=$(elapsed "$t0" "$(now)")
    cpu1=$(proc_cpu "$GATE_PID")
    kill -CONT "$slapd_pid"
    sleep 0.5
    check_eq "ldap: slapd hung: nginx answers 500 to alice's upload" 500 "$status"
    check_eq "ldap: slapd hung: nothing reached the registry" "$reg0" "$(registry_requests)"
    first=$(decisions_since "$c0" | head -n1)
    lat=$(printf '%s' "$first" | sed -n 's/.* latency_ms=\([0-9]*\).*/\1/p')
    echo "# measure: ldap: slapd hung: nginx answered $status after ${t_hang}s; Gatehouse's decision: $(printf '%s' "$first" | grep -o 'decision=[a-z]*') status=$(printf '%s' "$first" | sed -n 's/.* status=\([0-9]*\) .*/\1/p') after ${lat:-?} ms; Gatehouse CPU during the hang: $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')s"
    printf '%s' "$first" | grep -q 'decision=unavailable .*status=503' && [ "${lat:-99999}" -lt 9500 ]
    pass_if $? "ldap: slapd hung: Gatehouse answers 503 (timeout: 5s) before nginx gives up (proxy_read_timeout 10s in gatehouse-auth.conf)"
    awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { exit !(b - a < 1.0) }'
    pass_if $? "ldap: slapd hung: Gatehouse does not spin while it waits (< 1 s CPU)"
    check_eq "ldap: after SIGCONT the answers are right again: alice may upload (202), carol may not (403)" "202 403" \
        "$(http_status "$LDAP_ALICE" -X POST "https://$R/v2/corp/app/blobs/uploads/") $(http_status "$LDAP_CAROL" -X POST "https://$R/v2/corp/app/blobs/uploads/")"
    resp="$("${CURL[@]}" -u "$LDAP_ALICE" "$W/wiki/x")$("${CURL[@]}" -u "$LDAP_CAROL" "$W/wiki/x")"
    check_match "ldap: after SIGCONT each user's identity reaches the upstream (no crossed answers)" \
        '^x-auth-user=\[alice\] x-auth-groups=\[pushers,readers\] .*x-auth-user=\[carol\] x-auth-groups=\[\] ' "$(printf '%s' "$resp" | tr '\n' ' ')"

    stop_gate
    check_eq "ldap: Gatehouse exits 0 on SIGTERM with LDAP connections open" 0 "$GATE_RC"
    echo "# measure: ldap: Gatehouse stop on SIGTERM (LDAP pools open): ${GATE_STOP}s"
}

# ================================================================ run
want htpasswd && htpasswd_scenarios
want ldap && ldap_scenarios

# ---------------------------------------------------------------- summary
if want htpasswd; then
    echo "# measure: auth subrequests per operation (htpasswd): push 3 layers $N_PUSH_MULTI, push 100 MiB $N_PUSH_BIG, pull 3 layers $N_PULL_MULTI, pull 100 MiB $N_PULL_BIG"
fi
if want ldap; then
    echo "# measure: auth subrequests per operation (ldap): push 3 layers $N_LDAP_PUSH, pull 3 layers $N_LDAP_PULL"
fi
echo "# measure: total run time $(elapsed "$START" "$(now)")s (backends: $BACKENDS)"
if [ "$FAILED" -gt 0 ]; then
    echo "# logs: $T/logs, $N1/logs, $N2/logs (set KEEP_TMP=1 to keep them)"
    echo "# --- $(basename "$GATE_LOG") (tail)"; diag 10 <"$GATE_LOG"
    echo "# --- nginx 1 error.log (tail)"; diag 10 <"$N1/logs/error.log"
fi
finish
