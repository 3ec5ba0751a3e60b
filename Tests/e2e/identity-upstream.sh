#!/usr/bin/env bash
# End-to-end test of the identity that reaches the protected upstream (SPEC "Identity to the
# upstream") through the shipped nginx kit: curl -> private nginx -> auth_request -> Gatehouse
# (htpasswd backend) -> a recording upstream that writes down every request it receives.
#
#   - a user in 300 long-named groups: nginx takes the gate's large answer (gatehouse-auth.conf's
#     proxy_buffer_size) and the upstream gets all 300 names, whole and sorted;
#   - a user in 2000 such groups (~94 KB of names): X-Auth-Groups stays within 49,152 bytes,
#     whole names only, and X-Auth-Groups-Truncated: true says that names are missing;
#   - a policy's `upstream_groups` globs choose which groups are sent;
#   - a comma inside a group name arrives as %2C;
#   - X-Auth-* headers a client sends never reach the upstream (gatehouse-identity.conf);
#   - path tricks on an http policy (`..;`, `;params`, case, a missing trailing slash,
#     encoded dots) are refused and never reach the upstream.
#
# The nginx configuration includes nginx/gatehouse-auth.conf and nginx/gatehouse-identity.conf
# as shipped (DIR/snippets is a symlink to nginx/) and a copy of gatehouse-upstream.conf in
# which only the server line differs (checked). The recording upstream is a Python 3
# http.server on loopback that answers 200 to every method and appends one JSON line per
# request (method, raw path, every header in order) to T/upstream.jsonl before it answers.
#
# Needs (Debian packages): nginx-light (or nginx), apache2-utils (htpasswd), curl, python3.
# Run as root. Everything lives in a temp dir; all servers listen on free loopback ports.
#
# Usage:   Tests/e2e/identity-upstream.sh
# Env:     GATEHOUSE_BIN  the gatehouse binary (default: .build/debug/gatehouse in the
#                         repository); it is copied to the temp dir before use
#          KEEP_TMP=1     keep the temp directory (logs, configs, the upstream's record)
#
# Output: one `ok - ...` / `not ok - ...` line per assertion, `# measure: ...` lines, and
# finally `N passed, M failed`; exit status 1 if anything failed.
set -u

REPO=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib/common.sh
. "$REPO/Tests/lib/common.sh"
gatehouse_bin .build/debug/gatehouse

need_tools nginx curl python3 htpasswd
[ -x "$GATEHOUSE_BIN" ] || die "no gatehouse binary at $GATEHOUSE_BIN (set GATEHOUSE_BIN)"
START=$(now)

UP_PID= GATE_PID= NGX_PID=
cleanup() {
    stop_all "$NGX_PID" "$GATE_PID" "$UP_PID"
    remove_tmp
}
make_tmp identity
chmod 755 "$T"
mkdir -p "$T/logs" || die "mkdir"
copy_gatehouse

read -r P_UP P_GATE P_NGX < <(free_ports 3) || die "no free ports"
echo "# ports: upstream=$P_UP gatehouse=$P_GATE nginx=$P_NGX"

# ---------------------------------------------------------------- the recording upstream
REC=$T/upstream.jsonl
cat >"$T/upstream.py" <<'PY'
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, log = int(sys.argv[1]), sys.argv[2]
out = open(log, "a", encoding="utf-8")
lock = threading.Lock()

class Recorder(BaseHTTPRequestHandler):
    def __getattr__(self, name):          # do_GET, do_POST, do_ANYTHING: every method
        if name.startswith("do_"):
            return self.record
        raise AttributeError(name)

    def record(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 0:
            self.rfile.read(n)
        line = json.dumps({"method": self.command, "path": self.path,
                           "headers": [[k, v] for k, v in self.headers.items()]})
        with lock:                        # written before the answer: a 200 means it is there
            out.write(line + "\n")
            out.flush()
        body = b"recorded\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", port), Recorder).serve_forever()
PY
: >"$REC"
python3 "$T/upstream.py" "$P_UP" "$REC" >"$T/logs/upstream.log" 2>&1 &
UP_PID=$!
wait_for 10 http_answers "http://127.0.0.1:$P_UP/_ready" 200 || { diag <"$T/logs/upstream.log"; die "recording upstream did not start"; }

# rec.py: questions about what the upstream recorded (the last request for a raw path)
cat >"$T/rec.py" <<'PY'
import json, sys, urllib.parse

log, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
recs = [json.loads(l) for l in open(log, encoding="utf-8") if l.strip()]

def last(path):
    found = [r for r in recs if r["path"] == path]
    return found[-1] if found else None

def values(r, name):
    return [v for k, v in r["headers"] if k.lower() == name.lower()]

if cmd == "count":                        # requests so far
    print(len(recs))
elif cmd == "seen":                       # PATH: requests for exactly this raw path
    print(sum(r["path"] == args[0] for r in recs))
elif cmd == "header":                     # PATH NAME: the values as a JSON list ("-" if no request)
    r = last(args[0])
    print(json.dumps(values(r, args[1])) if r else "-")
elif cmd == "anywhere":                   # PATH WORD: header lines of that request containing WORD
    r = last(args[0])
    print(sum(args[1].lower() in (k + ": " + v).lower() for k, v in r["headers"]) if r else "-")
elif cmd == "groups":                     # PATH EXPECTED-FILE: facts about X-Auth-Groups
    r = last(args[0])
    if r is None:
        print("record=none")
        sys.exit(0)
    expected = [l for l in open(args[1], encoding="utf-8").read().split("\n") if l]
    known = set(expected)
    got = values(r, "X-Auth-Groups")
    items = got[0].split(",") if got and got[0] else []
    names = [urllib.parse.unquote(i) for i in items]
    print("headers=%d" % len(got))
    print("bytes=%d" % (len(got[0].encode("latin-1")) if got else 0))
    print("items=%d" % len(items))
    print("unknown=%d" % sum(i not in known for i in items))
    print("duplicates=%d" % (len(items) - len(set(items))))
    print("sorted=%s" % ("yes" if names == sorted(names) else "no"))
    print("equal=%s" % ("yes" if items == expected else "no"))
    print("prefix=%s" % ("yes" if items == expected[:len(items)] else "no"))
    print("first=%s" % (items[0] if items else ""))
    print("last=%s" % (items[-1] if items else ""))
else:
    sys.exit("rec.py: unknown command " + cmd)
PY
rec() { python3 "$T/rec.py" "$REC" "$@"; }
# fact KEY FACTS: the value of KEY=... in rec groups' output
fact() { printf '%s\n' "$2" | sed -n "s/^$1=//p"; }

# ---------------------------------------------------------------- users, groups, Gatehouse
for u in big300 big2000 alice; do htpasswd -nbB -C 5 "$u" "$u-identity-pw"; done 2>"$T/logs/htpasswd.log" |
    sed '/^$/d' >"$T/htpasswd"
[ "$(grep -c : "$T/htpasswd")" = 3 ] || { diag <"$T/logs/htpasswd.log"; die "htpasswd"; }
# Group names of 46 (Team001) and 47 (Team0001) characters, as AD groups tend to be
seq -f 'GG-Corp-Application-Team%03g-Readers-Production' 1 300 >"$T/expected-big300"
seq -f 'GG-Corp-Application-Team%04g-Readers-Production' 1 2000 >"$T/expected-big2000"
seq -f 'GG-Corp-Application-Team%03g-Readers-Production' 1 9 >"$T/expected-slim-big300"
seq -f 'GG-Corp-Application-Team%04g-Readers-Production' 1 99 >"$T/expected-slim-big2000"
{
    sed 's/$/: big300/' "$T/expected-big300"
    sed 's/$/: big2000/' "$T/expected-big2000"
    echo 'wiki-editors: alice'
    echo 'Ops,Admins: alice'
} >"$T/htgroups"

cat >"$T/gatehouse.yaml" <<EOF
listen: 127.0.0.1:$P_GATE
backends:
  - {name: local, type: htpasswd, file: $T/htpasswd, groups_file: $T/htgroups}
default_policy: wiki
policies:
  wiki:
    type: http
    rules:
      - {groups: [wiki-editors], paths: ["/wiki/admin/**"]}
      - {users: ["*"], methods: [], paths: ["/wiki/admin/**"]}
      - {users: ["*"], paths: ["/wiki/**"]}
  slim:
    type: http
    upstream_groups: ["GG-Corp-Application-Team00*"]
    rules:
      - {users: ["*"], paths: ["/slim/**"]}
EOF
if out=$("$GH" config check --config "$T/gatehouse.yaml" 2>&1); then
    ok "gatehouse config check accepts the configuration (upstream_groups, methods: [])"
else
    not_ok "gatehouse config check accepts the configuration (upstream_groups, methods: [])"
    printf '%s\n' "$out" | diag
fi
"$GH" serve --config "$T/gatehouse.yaml" >"$T/logs/gatehouse.log" 2>&1 &
GATE_PID=$!
wait_for 10 http_answers "http://127.0.0.1:$P_GATE/healthz" 200 || { diag <"$T/logs/gatehouse.log"; die "gatehouse did not start"; }

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
# Two policies in one server: $gatehouse_policy is set in each location, never at server
# level (gatehouse-auth.conf's comments say why).
nginx_conf "$N" "$(id -un) $(id -gn)" 1 256 notice <<EOF
    default_type text/plain;
    log_format identity '\$remote_addr gate_user=\$gatehouse_user "\$request" \$status';
    access_log $N/logs/access.log identity;
    include conf.d/gatehouse-upstream.conf;

    upstream recorder {
        server 127.0.0.1:$P_UP;
    }

    server {
        listen 127.0.0.1:$P_NGX;
        include snippets/gatehouse-auth.conf;

        location / {
            set \$gatehouse_policy wiki;
            auth_request /_gatehouse_auth;
            proxy_pass http://recorder;
            include snippets/gatehouse-identity.conf;
        }

        location /slim/ {
            set \$gatehouse_policy slim;
            auth_request /_gatehouse_auth;
            proxy_pass http://recorder;
            include snippets/gatehouse-identity.conf;
        }
    }
EOF
if nginx_check "$N"; then
    ok "nginx -t accepts snippets/gatehouse-auth.conf and snippets/gatehouse-identity.conf as shipped"
else
    not_ok "nginx -t accepts snippets/gatehouse-auth.conf and snippets/gatehouse-identity.conf as shipped"
    printf '%s\n' "$NGINX_OUT" | diag
    die "nginx configuration"
fi
nginx_start "$N"
NGX_PID=$!
BASE=http://127.0.0.1:$P_NGX
wait_for 10 http_answers "$BASE/wiki/" || { diag <"$N/logs/error.log"; die "nginx did not start"; }

CURL=(curl -sS --path-as-is --max-time 10)
# status_of USER PATH [CURL-ARGS...]: the status of a GET of PATH through nginx as USER
status_of() {
    local user=$1 path=$2
    shift 2
    "${CURL[@]}" -o /dev/null -w '%{http_code}' -u "$user:$user-identity-pw" "$@" "$BASE$path"
}
# absent_or_empty DESC JSON-LIST: ok when the header was not sent or sent empty
absent_or_empty() {
    case $2 in '[]' | '[""]') ok "$1" ;; *) not_ok "$1"; echo "#   got: $2" | cut -c1-300 ;; esac
}
too_big() { grep -c 'too big header' "$N/logs/error.log"; }

# ---------------------------------------------------------------- 1. 300 groups
P=/wiki/page-big300
check_eq "big300 (300 groups) GET $P through nginx: 200" 200 "$(status_of big300 "$P")"
check_eq "big300: the upstream got X-Auth-User: big300" '["big300"]' "$(rec header "$P" X-Auth-User)"
F=$(rec groups "$P" "$T/expected-big300")
check_eq "big300: the upstream got one X-Auth-Groups with exactly the 300 names, whole and sorted" \
    "headers=1 items=300 equal=yes" "headers=$(fact headers "$F") items=$(fact items "$F") equal=$(fact equal "$F")"
absent_or_empty "big300: no X-Auth-Groups-Truncated (all groups fit)" "$(rec header "$P" X-Auth-Groups-Truncated)"
echo "# measure: big300's X-Auth-Groups: $(fact bytes "$F") bytes, $(fact items "$F") names"

# ---------------------------------------------------------------- 2. 2000 groups: truncated
P=/wiki/page-big2000
e0=$(too_big)
check_eq "big2000 (2000 groups, ~94 KB of names) GET $P through nginx: 200, not 500" 200 "$(status_of big2000 "$P")"
check_eq "big2000: nginx logged no 'upstream sent too big header'" 0 "$(($(too_big) - e0))"
check_eq "big2000: the upstream got X-Auth-User: big2000" '["big2000"]' "$(rec header "$P" X-Auth-User)"
check_eq "big2000: the upstream got X-Auth-Groups-Truncated: true" '["true"]' "$(rec header "$P" X-Auth-Groups-Truncated)"
F=$(rec groups "$P" "$T/expected-big2000")
check_eq "big2000: exactly one X-Auth-Groups header" 1 "$(fact headers "$F")"
check_le "big2000: X-Auth-Groups is at most 49,152 bytes ($(fact bytes "$F"))" "$(fact bytes "$F")" 49152
check_eq "big2000: every item is one of big2000's group names, whole (no cut name), none twice" \
    "unknown=0 duplicates=0" "unknown=$(fact unknown "$F") duplicates=$(fact duplicates "$F")"
check_eq "big2000: the items are sorted" yes "$(fact sorted "$F")"
n=$(fact items "$F")
check_eq "big2000: more than 900 and fewer than 2000 names were sent ($n)" yes \
    "$([ "${n:-0}" -gt 900 ] && [ "${n:-0}" -lt 2000 ] && echo yes || echo no)"
echo "# measure: big2000's X-Auth-Groups: $(fact bytes "$F") bytes, $n names ($(fact first "$F") .. $(fact last "$F")); the first $n of the sorted list: $(fact prefix "$F")"

# ---------------------------------------------------------------- 3. upstream_groups
P=/slim/x-big300
check_eq "policy slim: big300 GET $P: 200" 200 "$(status_of big300 "$P")"
F=$(rec groups "$P" "$T/expected-slim-big300")
check_eq "policy slim (upstream_groups [GG-Corp-Application-Team00*]): big300's upstream gets only Team001..Team009 (9 names)" \
    "headers=1 items=9 equal=yes" "headers=$(fact headers "$F") items=$(fact items "$F") equal=$(fact equal "$F")"
P=/slim/x-big2000
check_eq "policy slim: big2000 GET $P: 200" 200 "$(status_of big2000 "$P")"
F=$(rec groups "$P" "$T/expected-slim-big2000")
check_eq "policy slim: big2000's upstream gets only Team0001..Team0099 (99 names)" \
    "headers=1 items=99 equal=yes" "headers=$(fact headers "$F") items=$(fact items "$F") equal=$(fact equal "$F")"
absent_or_empty "policy slim: big2000's 99 names fit: no X-Auth-Groups-Truncated" "$(rec header "$P" X-Auth-Groups-Truncated)"

# ---------------------------------------------------------------- 4. a comma in a group name
P=/wiki/page-alice
check_eq "alice GET $P: 200" 200 "$(status_of alice "$P")"
check_eq "alice: X-Auth-Groups is Ops%2CAdmins,wiki-editors (comma encoded, sorted by raw name)" \
    '["Ops%2CAdmins,wiki-editors"]' "$(rec header "$P" X-Auth-Groups)"

# ---------------------------------------------------------------- 5. the client's own X-Auth-* headers
FORGED=(-H 'X-Auth-User: forged-admin' -H 'X-Auth-Groups: wiki-editors,forged-admins'
    -H 'X-Auth-Email: forged@example.com' -H 'X-Auth-Name: Forged Name'
    -H 'X-Auth-Groups-Truncated: forged' -H 'X_Auth_User: forged-underscore')
P=/wiki/forged-alice
check_eq "alice with forged X-Auth-* headers GET $P: 200" 200 "$(status_of alice "$P" "${FORGED[@]}")"
check_eq "forged: the upstream got X-Auth-User alice (once), not the client's" '["alice"]' "$(rec header "$P" X-Auth-User)"
check_eq "forged: the upstream got alice's X-Auth-Groups (once), not the client's" '["Ops%2CAdmins,wiki-editors"]' "$(rec header "$P" X-Auth-Groups)"
absent_or_empty "forged: no X-Auth-Email (htpasswd has none), not the client's" "$(rec header "$P" X-Auth-Email)"
absent_or_empty "forged: no X-Auth-Name (htpasswd has none), not the client's" "$(rec header "$P" X-Auth-Name)"
absent_or_empty "forged: no X-Auth-Groups-Truncated, not the client's" "$(rec header "$P" X-Auth-Groups-Truncated)"
check_eq "forged: no header the upstream got carries a client's 'forged' value (X_Auth_User included)" 0 "$(rec anywhere "$P" forged)"
absent_or_empty "forged: no Authorization header reaches the upstream" "$(rec header "$P" Authorization)"
P=/wiki/forged-big2000
check_eq "big2000 sending X-Auth-Groups-Truncated: false GET $P: 200" 200 "$(status_of big2000 "$P" -H 'X-Auth-Groups-Truncated: false')"
check_eq "forged: big2000's upstream gets the gate's X-Auth-Groups-Truncated: true only" '["true"]' "$(rec header "$P" X-Auth-Groups-Truncated)"
P=/wiki/forged-big300
check_eq "big300 sending X-Auth-Groups-Truncated: true GET $P: 200" 200 "$(status_of big300 "$P" -H 'X-Auth-Groups-Truncated: true')"
absent_or_empty "forged: big300's upstream gets no X-Auth-Groups-Truncated (the gate sent none)" "$(rec header "$P" X-Auth-Groups-Truncated)"

# ---------------------------------------------------------------- 6. path tricks (policy wiki)
# refused USER PATH STATUS-REGEX WHY: refused with a status matching the regex, and nothing
# reached the upstream
refused() {
    local n0 code
    n0=$(rec count)
    code=$(status_of "$1" "$2")
    check_match "$1 GET $2 is refused: $3 ($4; got $code)" "^($3)\$" "$code"
    check_eq "$1 GET $2: the upstream received no request" "0 0" "$(($(rec count) - n0)) $(rec seen "$2")"
}
# passed USER PATH WHY: 200, and the upstream got the path (raw) with the user
passed() {
    check_eq "$1 GET $2: 200 ($3)" 200 "$(status_of "$1" "$2")"
    check_eq "$1 GET $2: the upstream got it as $1" "[\"$1\"]" "$(rec header "$2" X-Auth-User)"
}
refused big300 /wiki/admin/x 403 "not in wiki-editors: rule 2 denies /wiki/admin/**"
refused big300 '/wiki/..;/admin/x' 403 "..; is .. to a servlet container"
refused big300 '/wiki/admin;x/secret' 403 "judged as /wiki/admin/secret"
refused big300 /wiki/ADMIN/secret 403 "paths compare case-insensitively"
refused big300 /wiki/admin 403 "/wiki/admin/** covers /wiki/admin itself"
refused big300 /wiki/%2e%2e/admin '403|400' "encoded dots"
passed big300 '/wiki/page;jsessionid=1' "a ;parameter on an allowed path"
passed alice /wiki/admin/x "alice is in wiki-editors"

# ---------------------------------------------------------------- summary
echo "# measure: total run time $(elapsed "$START" "$(now)")s"
if [ "$FAILED" -gt 0 ]; then
    echo "# logs: $T (set KEEP_TMP=1 to keep them)"
    echo "# --- gatehouse.log (tail)"; diag 10 <"$T/logs/gatehouse.log"
    echo "# --- nginx error.log (tail)"; diag 10 <"$N/logs/error.log"
fi
finish
