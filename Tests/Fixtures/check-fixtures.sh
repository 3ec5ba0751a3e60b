#!/usr/bin/env bash
# Smoke test of the LDAP fixtures: starts slapd.sh (twice, in parallel: default and
# --anon-dn) and samba-ad.sh, proves their contents with ldapsearch / ldapwhoami / kinit,
# stops them, checks that nothing outside the fixture directories was written, and prints
# "N passed, M failed" (exit 0 only when nothing failed).
#
#   check-fixtures.sh [all|slapd|samba]     (default all; samba needs root and free AD ports)
#
# Set KEEP=1 to keep the work directory.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WHAT=${1:-all}
case $WHAT in all | slapd | samba) ;; *) echo "usage: check-fixtures.sh [all|slapd|samba]" >&2; exit 2 ;; esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-fixtures.XXXXXX")
MARKER="$WORK/marker"
touch "$MARKER"
sleep 0.01
mkdir -p "$WORK/home"
# The ldap tools must not read the caller's ~/.ldaprc, ./ldaprc or LDAP* variables.
export HOME="$WORK/home"
cd "$WORK" || exit 2
for v in $(env | sed -n 's/^\(LDAP[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
bad() {
    FAIL=$((FAIL + 1))
    echo "not ok - $1"
    [ -n "${2:-}" ] && printf '%s\n' "$2" | head -15 | sed 's/^/#   /'
    return 0
}
# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "expected: [$2]"$'\n'"actual:   [$3]"; fi; }

now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }
TIMINGS=""
timing() { TIMINGS+="$1: $2 s"$'\n'; }

# Decoded values of ATTR (case-insensitive) from LDIF on stdin, one per line, sorted.
ldif_values() {
    local attr=$1 line
    shopt -s nocasematch
    while IFS= read -r line; do
        case $line in
        "$attr:: "*) printf '%s' "${line#*:: }" | base64 -d; echo ;;
        "$attr: "*) printf '%s\n' "${line#*: }" ;;
        esac
    done | LC_ALL=C sort
    shopt -u nocasematch
}
join_lines() { paste -sd, -; }

# bind_code -> "RC" or "RC/data XXX" for an AD-style bind (rootDSE read after the bind)
ad_bind() { # URL NAME PASSWORD [more ldapsearch args]
    local url=$1 name=$2 pw=$3 out rc data
    shift 3
    out=$(ldapsearch -x -o nettimeout=5 -H "$url" -D "$name" -w "$pw" "$@" -s base -b "" dnsHostName 2>&1)
    rc=$?
    data=$(printf '%s' "$out" | sed -n 's/.*AcceptSecurityContext error, data \([0-9a-f]*\),.*/\1/p' | head -1)
    if [ -n "$data" ]; then echo "$rc/data $data"; else echo "$rc"; fi
}
# slapd: "RC whoami-output"
sl_whoami() { # URL DN PASSWORD [args]
    local url=$1 dn=$2 pw=$3 out rc
    shift 3
    out=$(ldapwhoami -x -o nettimeout=5 -H "$url" -D "$dn" -w "$pw" "$@" 2>/dev/null)
    rc=$?
    echo "$rc $out"
}

require_env_keys() { # DESCRIPTION FILE KEYS...
    local desc=$1 file=$2 missing="" k
    shift 2
    for k in "$@"; do grep -q "^$k=." "$file" || missing+=" $k"; done
    if [ -z "$missing" ]; then ok "$desc"; else bad "$desc" "missing:$missing"; fi
}
env_is_plain() { # DESCRIPTION FILE: sourceable and parseable as KEY=value without quoting
    if grep -qvE '^[A-Z][A-Z0-9_]*=[^][[:space:]"'"'"'`$\\;&|<>()*?{}!#~]*$' "$2"; then
        bad "$1" "$(grep -vE '^[A-Z][A-Z0-9_]*=[^][[:space:]"'"'"'`$\\;&|<>()*?{}!#~]*$' "$2")"
    else
        ok "$1"
    fi
}
password_file_ok() { # DESCRIPTION FILE PASSWORD
    local mode content
    mode=$(stat -c %a "$2" 2>/dev/null)
    content=$(cat "$2"; echo x)
    if [ "$mode" = 600 ] && [ "$content" = "${3}x" ]; then ok "$1"; else bad "$1" "mode=$mode content=[${content%x}]"; fi
}
# A process counts as gone once it is a zombie: PID 1 of some containers reaps late.
alive() { local s; s=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]; }
port_closed() { # PORT
    python3 -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(0 if s.connect_ex(('127.0.0.1', int(sys.argv[1]))) else 1)" "$1"
}

cleanup() {
    [ -d "$WORK/slapd-a" ] && "$HERE/slapd.sh" stop "$WORK/slapd-a" >/dev/null 2>&1
    [ -d "$WORK/slapd-b" ] && "$HERE/slapd.sh" stop "$WORK/slapd-b" >/dev/null 2>&1
    [ -d "$WORK/ad" ] && "$HERE/samba-ad.sh" stop "$WORK/ad" >/dev/null 2>&1
    if [ "${KEEP:-0}" = 1 ]; then echo "# kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# =============================================================================== slapd
check_slapd() {
    echo "# --- slapd.sh: start two servers in parallel (default and --anon-dn)"
    local t0 ra rb
    t0=$(now)
    "$HERE/slapd.sh" start "$WORK/slapd-a" >"$WORK/slapd-a.out" 2>&1 &
    ra=$!
    "$HERE/slapd.sh" start "$WORK/slapd-b" --anon-dn >"$WORK/slapd-b.out" 2>&1 &
    rb=$!
    wait $ra && ok "slapd.sh start DIR" || { bad "slapd.sh start DIR" "$(cat "$WORK/slapd-a.out")"; return; }
    wait $rb && ok "slapd.sh start DIR --anon-dn (in parallel)" || { bad "slapd.sh start --anon-dn" "$(cat "$WORK/slapd-b.out")"; return; }
    timing "slapd: two parallel starts" "$(secs "$t0")"

    local A="$WORK/slapd-a/env" B="$WORK/slapd-b/env"
    require_env_keys "slapd env has every key" "$A" LDAP_URL LDAPS_URL LDAP_PORT LDAPS_PORT CA_FILE \
        BASE_DN PEOPLE_DN GROUPS_DN BIND_DN BIND_PASSWORD BIND_PASSWORD_FILE SLAPD_PID
    env_is_plain "slapd env needs no shell quoting" "$A"
    (
        # shellcheck disable=SC1090
        . "$A"
        local SA_PORT=$LDAP_PORT SA_PID=$SLAPD_PID
        # shellcheck disable=SC1090
        . "$B"
        [ "$SA_PORT" != "$LDAP_PORT" ] && [ "$SA_PID" != "$SLAPD_PID" ]
    ) && ok "parallel servers have their own ports and pids" || bad "parallel servers share ports or pids"

    # shellcheck disable=SC1090
    . "$A"
    password_file_ok "BIND_PASSWORD_FILE is 0600 and holds exactly the password" "$BIND_PASSWORD_FILE" "$BIND_PASSWORD"
    expect_eq "SLAPD_PID is a slapd process" slapd "$(cat /proc/"$SLAPD_PID"/comm 2>/dev/null)"
    expect_eq "service account binds (whoami)" "0 dn:$BIND_DN" "$(sl_whoami "$LDAP_URL" "$BIND_DN" "$BIND_PASSWORD")"
    expect_eq "service account binds with -y BIND_PASSWORD_FILE" "0 dn:$BIND_DN" \
        "$(out=$(ldapwhoami -x -H "$LDAP_URL" -D "$BIND_DN" -y "$BIND_PASSWORD_FILE" 2>/dev/null); echo "$? $out")"
    local S=(-x -LLL -o ldif-wrap=no -H "$LDAP_URL" -D "$BIND_DN" -w "$BIND_PASSWORD")

    # search (escaped filter) -> exactly one DN -> bind as it
    local spec uid_filter pw dn n who
    for spec in "alice|alice|alice-pw" "bob|bob|bob-pw" "carol|carol|carol-pw" 'star|\2a|star-pw' \
        'paren|a\29\28uid=\2a|paren-pw' "jörg|jörg|jörg-pw" "jane|jane|jane-pw"; do
        IFS='|' read -r name uid_filter pw <<<"$spec"
        dn=$(ldapsearch "${S[@]}" -b "$PEOPLE_DN" -z 2 "(&(objectClass=inetOrgPerson)(uid=$uid_filter))" 1.1 | ldif_values dn)
        n=$(printf '%s' "$dn" | grep -c .)
        if [ "$n" != 1 ]; then bad "search (uid=$uid_filter) finds exactly one entry" "found $n: $dn"; continue; fi
        who=$(sl_whoami "$LDAP_URL" "$dn" "$pw")
        expect_eq "user $name: search (uid=$uid_filter) + bind as $dn" "0 dn:$dn" "$who"
    done
    expect_eq "(uid=*) unescaped hits the size limit 2 (rc 4)" 4 \
        "$(ldapsearch "${S[@]}" -b "$PEOPLE_DN" -z 2 '(uid=*)' 1.1 >/dev/null 2>&1; echo $?)"
    expect_eq "alice: wrong password -> 49" 49 "$(sl_whoami "$LDAP_URL" "uid=alice,$PEOPLE_DN" wrong | cut -d' ' -f1)"
    expect_eq "nopassword (no userPassword) -> 49" 49 "$(sl_whoami "$LDAP_URL" "uid=nopassword,$PEOPLE_DN" anything | cut -d' ' -f1)"
    expect_eq "non-existent DN -> 49" 49 "$(sl_whoami "$LDAP_URL" "uid=nobody,$PEOPLE_DN" anything | cut -d' ' -f1)"
    expect_eq "default slapd: DN + empty password -> 53 (unauthenticated bind disallowed)" 53 \
        "$(sl_whoami "$LDAP_URL" "uid=alice,$PEOPLE_DN" "" | cut -d' ' -f1)"
    expect_eq "bob's userPassword is {CRYPT}\$6\$" '{CRYPT}$6$' \
        "$(ldapsearch -x -LLL -o ldif-wrap=no -H "$LDAP_URL" -D "$ROOT_DN" -w "$ROOT_PASSWORD" -b "uid=bob,$PEOPLE_DN" -s base userPassword | ldif_values userPassword | cut -c1-10)"
    expect_eq "alice's userPassword is {SSHA}" '{SSHA}' \
        "$(ldapsearch -x -LLL -o ldif-wrap=no -H "$LDAP_URL" -D "$ROOT_DN" -w "$ROOT_PASSWORD" -b "uid=alice,$PEOPLE_DN" -s base userPassword | ldif_values userPassword | cut -c1-6)"
    expect_eq "the service account cannot read userPassword" "" \
        "$(ldapsearch "${S[@]}" -b "uid=alice,$PEOPLE_DN" -s base userPassword | ldif_values userPassword)"
    expect_eq "anonymous subtree search sees nothing" "" \
        "$(ldapsearch -x -LLL -H "$LDAP_URL" -b "$BASE_DN" '(objectClass=*)' 1.1 2>/dev/null | ldif_values dn)"

    # groups
    expect_eq "alice memberOf = pushers, readers" "cn=pushers,$GROUPS_DN,cn=readers,$GROUPS_DN" \
        "$(ldapsearch "${S[@]}" -b "uid=alice,$PEOPLE_DN" -s base memberOf | ldif_values memberOf | join_lines)"
    expect_eq "jane memberOf = pushers" "cn=pushers,$GROUPS_DN" \
        "$(ldapsearch "${S[@]}" -b "$PEOPLE_DN" '(uid=jane)' memberOf | ldif_values memberOf | join_lines)"
    expect_eq "carol memberOf = (none)" "" \
        "$(ldapsearch "${S[@]}" -b "uid=carol,$PEOPLE_DN" -s base memberOf | ldif_values memberOf | join_lines)"
    expect_eq "groupOfNames with member=alice: pushers, readers" "pushers,readers" \
        "$(ldapsearch "${S[@]}" -b "$GROUPS_DN" "(&(objectClass=groupOfNames)(member=uid=alice,$PEOPLE_DN))" cn | ldif_values cn | join_lines)"
    expect_eq "groupOfNames with member=jane's DN (filter-escaped): pushers" "pushers" \
        "$(ldapsearch "${S[@]}" -b "$GROUPS_DN" "(member=cn=Doe\\5c, Jane \\28Contractor\\29,$PEOPLE_DN)" cn | ldif_values cn | join_lines)"
    expect_eq "groupOfUniqueNames with uniqueMember=bob: auditors" "auditors" \
        "$(ldapsearch "${S[@]}" -b "$GROUPS_DN" "(&(objectClass=groupOfUniqueNames)(uniqueMember=uid=bob,$PEOPLE_DN))" cn | ldif_values cn | join_lines)"
    expect_eq "posixGroup with memberUid=bob: developers" "developers" \
        "$(ldapsearch "${S[@]}" -b "$GROUPS_DN" "(&(objectClass=posixGroup)(memberUid=bob))" cn | ldif_values cn | join_lines)"

    # TLS
    expect_eq "ldaps:// verifies against CA_FILE" "0 dn:uid=alice,$PEOPLE_DN" \
        "$(LDAPTLS_CACERT=$CA_FILE LDAPTLS_REQCERT=demand sl_whoami "$LDAPS_URL" "uid=alice,$PEOPLE_DN" alice-pw)"
    expect_eq "StartTLS (-ZZ) verifies against CA_FILE" "0 dn:uid=alice,$PEOPLE_DN" \
        "$(LDAPTLS_CACERT=$CA_FILE LDAPTLS_REQCERT=demand sl_whoami "$LDAP_URL" "uid=alice,$PEOPLE_DN" alice-pw -ZZ)"
    expect_eq "ldaps:// against the system CA bundle fails (-1)" 255 \
        "$(LDAPTLS_CACERT=/etc/ssl/certs/ca-certificates.crt LDAPTLS_REQCERT=demand sl_whoami "$LDAPS_URL" "$BIND_DN" "$BIND_PASSWORD" | cut -d' ' -f1)"
    expect_eq "ldaps://localhost fails (the certificate names only IP 127.0.0.1)" 255 \
        "$(LDAPTLS_CACERT=$CA_FILE LDAPTLS_REQCERT=demand sl_whoami "ldaps://localhost:$LDAPS_PORT" "$BIND_DN" "$BIND_PASSWORD" | cut -d' ' -f1)"
    expect_eq "CA is CA:TRUE with keyCertSign, cRLSign; server cert has IP:127.0.0.1 + serverAuth" "ok" \
        "$(t=$(openssl x509 -in "$CA_FILE" -noout -text); s=$(openssl x509 -in "${CA_FILE%/*}/server.crt" -noout -text)
           grep -q 'CA:TRUE' <<<"$t" && grep -q 'Certificate Sign, CRL Sign' <<<"$t" &&
           grep -q 'IP Address:127.0.0.1' <<<"$s" && grep -q 'TLS Web Server Authentication' <<<"$s" && echo ok)"

    # --anon-dn server: AD's "unauthenticated bind" succeeds as anonymous
    # shellcheck disable=SC1090
    . "$B"
    expect_eq "--anon-dn: DN + empty password -> 0, whoami anonymous" "0 anonymous" \
        "$(sl_whoami "$LDAP_URL" "uid=alice,$PEOPLE_DN" "")"
    expect_eq "--anon-dn: non-existent DN + empty password -> 0, anonymous" "0 anonymous" \
        "$(sl_whoami "$LDAP_URL" "uid=nobody,$PEOPLE_DN" "")"
    expect_eq "--anon-dn: alice with her password still binds as alice" "0 dn:uid=alice,$PEOPLE_DN" \
        "$(sl_whoami "$LDAP_URL" "uid=alice,$PEOPLE_DN" alice-pw)"
    expect_eq "--anon-dn: wrong password -> 49" 49 "$(sl_whoami "$LDAP_URL" "uid=alice,$PEOPLE_DN" wrong | cut -d' ' -f1)"

    # stop, restart on the same DIR, stop
    # shellcheck disable=SC1090
    . "$A"
    local pid=$SLAPD_PID port=$LDAP_PORT
    t0=$(now)
    "$HERE/slapd.sh" stop "$WORK/slapd-a" && ok "slapd.sh stop DIR" || bad "slapd.sh stop DIR"
    timing "slapd: stop" "$(secs "$t0")"
    { ! alive "$pid" && port_closed "$port"; } && ok "after stop: process gone, port closed" \
        || bad "after stop: process or port still there"
    t0=$(now)
    if "$HERE/slapd.sh" start "$WORK/slapd-a" >"$WORK/slapd-a.out" 2>&1; then
        timing "slapd: restart on the same DIR" "$(secs "$t0")"
        # shellcheck disable=SC1090
        . "$A"
        expect_eq "re-run start on the same DIR: carol binds" "0 dn:uid=carol,$PEOPLE_DN" \
            "$(sl_whoami "$LDAP_URL" "uid=carol,$PEOPLE_DN" carol-pw)"
    else
        bad "re-run start on the same DIR" "$(cat "$WORK/slapd-a.out")"
    fi
    "$HERE/slapd.sh" start "$WORK/slapd-a" >"$WORK/slapd-a.out" 2>&1 \
        && ok "start on a DIR whose slapd is running replaces it" || bad "start over a running slapd" "$(cat "$WORK/slapd-a.out")"
    "$HERE/slapd.sh" stop "$WORK/slapd-a" && "$HERE/slapd.sh" stop "$WORK/slapd-b" \
        && "$HERE/slapd.sh" stop "$WORK/slapd-b" && ok "stop both (a second stop is a no-op)" || bad "stop both"
}

# =============================================================================== samba
check_samba() {
    echo "# --- samba-ad.sh"
    if [ "$(id -u)" != 0 ]; then bad "samba-ad.sh needs root"; return; fi
    local t0 kind
    t0=$(now)
    if "$HERE/samba-ad.sh" start "$WORK/ad" >"$WORK/ad.out" 2>&1; then
        ok "samba-ad.sh start DIR"
    else
        bad "samba-ad.sh start DIR" "$(cat "$WORK/ad.out")"
        return
    fi
    kind=$(sed -n 's/.*DC ready (\([a-z]*\) start).*/\1/p' "$WORK/ad.out")
    timing "samba: $kind start" "$(secs "$t0")"
    local E="$WORK/ad/env"
    require_env_keys "AD env has every key" "$E" AD_LDAP_URL AD_LDAPS_URL AD_CA_FILE AD_BASE_DN \
        AD_BIND_DN AD_BIND_PASSWORD AD_BIND_PASSWORD_FILE AD_DOMAIN AD_REALM AD_UPN_SUFFIX \
        AD_PASSWORD_ALICE AD_PASSWORD_BOB AD_PASSWORD_CAROL AD_PASSWORD_DAVE AD_PASSWORD_ERIN \
        AD_PASSWORD_FRANK AD_PASSWORD_GINA AD_PASSWORD_HANK AD_PASSWORD_JDOE AD_PASSWORD_JOERG SAMBA_PID \
        AD_KRB5_CONF AD_HTTP_KEYTAB AD_HTTP_SPN AD_HTTP_HOST AD_HTTP_ACCOUNT
    env_is_plain "AD env needs no shell quoting" "$E"
    # shellcheck disable=SC1090
    . "$E"
    password_file_ok "AD_BIND_PASSWORD_FILE is 0600 and holds exactly the password" "$AD_BIND_PASSWORD_FILE" "$AD_BIND_PASSWORD"
    expect_eq "SAMBA_PID is the samba master" samba "$(cat /proc/"$SAMBA_PID"/comm 2>/dev/null)"

    local U=$AD_LDAP_URL UD="CN=Users,$AD_BASE_DN"
    local S=(-x -LLL -o ldif-wrap=no -H "$U" -D "$AD_BIND_DN" -w "$AD_BIND_PASSWORD")
    expect_eq "anonymous rootDSE read: dnsHostName" dc1.gatehouse.test \
        "$(ldapsearch -x -LLL -H "$U" -s base -b "" dnsHostName | ldif_values dnsHostName)"
    expect_eq "anonymous subtree search -> 1 operationsError" 1 \
        "$(ldapsearch -x -LLL -H "$U" -b "$AD_BASE_DN" '(objectClass=user)' 1.1 >/dev/null 2>&1; echo $?)"
    expect_eq "service account binds (DN)" 0 "$(ad_bind "$U" "$AD_BIND_DN" "$AD_BIND_PASSWORD")"
    expect_eq "service account binds with -y AD_BIND_PASSWORD_FILE" 0 \
        "$(ldapsearch -x -H "$U" -D "$AD_BIND_DN" -y "$AD_BIND_PASSWORD_FILE" -s base -b "" >/dev/null 2>&1; echo $?)"
    expect_eq "service account: password never expires (UF_DONT_EXPIRE_PASSWD)" 65536 \
        "$(( $(ldapsearch "${S[@]}" -b "$AD_BIND_DN" -s base userAccountControl | ldif_values userAccountControl) & 65536 ))"

    # each good user: find by sAMAccountName, bind by DN, UPN and DOMAIN\user
    local spec sam pwvar pw dn
    for spec in alice:ALICE bob:BOB carol:CAROL jdoe:JDOE jörg:JOERG; do
        sam=${spec%%:*}
        pwvar=AD_PASSWORD_${spec#*:}
        pw=${!pwvar}
        dn=$(ldapsearch "${S[@]}" -b "$AD_BASE_DN" -z 2 "(&(objectClass=user)(sAMAccountName=$sam))" 1.1 | ldif_values dn)
        if [ "$(printf '%s' "$dn" | grep -c .)" != 1 ]; then bad "search (sAMAccountName=$sam): exactly one entry" "$dn"; continue; fi
        expect_eq "$sam: bind as DN $dn" 0 "$(ad_bind "$U" "$dn" "$pw")"
        expect_eq "$sam: bind as UPN $sam@$AD_UPN_SUFFIX" 0 "$(ad_bind "$U" "$sam@$AD_UPN_SUFFIX" "$pw")"
        expect_eq "$sam: bind as $AD_DOMAIN\\$sam" 0 "$(ad_bind "$U" "$AD_DOMAIN\\$sam" "$pw")"
    done
    expect_eq "bare sAMAccountName as bind name -> 49 data 52e" "49/data 52e" "$(ad_bind "$U" alice "$AD_PASSWORD_ALICE")"
    expect_eq "alice: wrong password -> 49 data 52e" "49/data 52e" "$(ad_bind "$U" "CN=alice,$UD" Wrong-Pass1)"
    expect_eq "unknown user -> 49 data 52e" "49/data 52e" "$(ad_bind "$U" "nobody@$AD_UPN_SUFFIX" Wrong-Pass1)"
    expect_eq "alice DN + empty password -> 49 data 52e (Samba; real AD: 0 anonymous)" "49/data 52e" \
        "$(ad_bind "$U" "CN=alice,$UD" "")"
    expect_eq "jörg: NFD password (o + U+0308) -> 49 data 52e (byte-exact)" "49/data 52e" \
        "$(ad_bind "$U" "jörg@$AD_UPN_SUFFIX" "$(printf 'Jo\xcc\x88rg-Pass1')")"

    # account states: the sub-code shows only with the right password
    expect_eq "dave (disabled): right password -> 49 data 533" "49/data 533" "$(ad_bind "$U" "CN=dave,$UD" "$AD_PASSWORD_DAVE")"
    expect_eq "erin (must change password): -> 49 data 773" "49/data 773" "$(ad_bind "$U" "CN=erin,$UD" "$AD_PASSWORD_ERIN")"
    expect_eq "frank (account expired): -> 49 data 701" "49/data 701" "$(ad_bind "$U" "CN=frank,$UD" "$AD_PASSWORD_FRANK")"
    expect_eq "gina (locked out): -> 49 data 775" "49/data 775" "$(ad_bind "$U" "CN=gina,$UD" "$AD_PASSWORD_GINA")"
    expect_eq "hank (password expired): -> 49 data 532" "49/data 532" "$(ad_bind "$U" "CN=hank,$UD" "$AD_PASSWORD_HANK")"
    expect_eq "dave with a wrong password -> 49 data 52e" "49/data 52e" "$(ad_bind "$U" "CN=dave,$UD" Wrong-Pass1)"
    expect_eq "hank with a wrong password -> 49 data 52e" "49/data 52e" "$(ad_bind "$U" "CN=hank,$UD" Wrong-Pass1)"
    expect_eq "gina (locked) with a wrong password -> 49 data 775 too" "49/data 775" "$(ad_bind "$U" "CN=gina,$UD" Wrong-Pass1)"
    expect_eq "dave: userAccountControl has ACCOUNTDISABLE (2)" 2 \
        "$(( $(ldapsearch "${S[@]}" -b "CN=dave,$UD" -s base userAccountControl | ldif_values userAccountControl) & 2 ))"
    local u want
    for spec in erin:8388608 hank:8388608 gina:16 frank:0 alice:0; do
        u=${spec%%:*} want=${spec#*:}
        expect_eq "$u: msDS-User-Account-Control-Computed = $want" "$want" \
            "$(ldapsearch "${S[@]}" -b "CN=$u,$UD" -s base msDS-User-Account-Control-Computed | ldif_values msDS-User-Account-Control-Computed)"
    done

    # groups
    expect_eq "alice memberOf = registry-pushers" "CN=registry-pushers,$UD" \
        "$(ldapsearch "${S[@]}" -b "CN=alice,$UD" -s base memberOf | ldif_values memberOf | join_lines)"
    expect_eq "bob memberOf = team-a (direct groups only)" "CN=team-a,$UD" \
        "$(ldapsearch "${S[@]}" -b "CN=bob,$UD" -s base memberOf | ldif_values memberOf | join_lines)"
    expect_eq "carol memberOf = (none), primaryGroupID 513" "|513" \
        "$(ldapsearch "${S[@]}" -b "CN=carol,$UD" -s base memberOf | ldif_values memberOf | join_lines)|$(ldapsearch "${S[@]}" -b "CN=carol,$UD" -s base primaryGroupID | ldif_values primaryGroupID)"
    expect_eq "team-a memberOf = developers" "CN=developers,$UD" \
        "$(ldapsearch "${S[@]}" -b "CN=team-a,$UD" -s base memberOf | ldif_values memberOf | join_lines)"
    expect_eq "bob's groups via member:1.2.840.113556.1.4.1941: developers, team-a" "developers,team-a" \
        "$(ldapsearch "${S[@]}" -b "$AD_BASE_DN" "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:=CN=bob,$UD))" cn | ldif_values cn | join_lines)"
    expect_eq "alice's groups via 1.2.840.113556.1.4.1941: registry-pushers" "registry-pushers" \
        "$(ldapsearch "${S[@]}" -b "$AD_BASE_DN" "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:=CN=alice,$UD))" cn | ldif_values cn | join_lines)"
    expect_eq "bob matches memberOf:1.2.840.113556.1.4.1941:=developers" "bob" \
        "$(ldapsearch "${S[@]}" -b "$AD_BASE_DN" "(&(sAMAccountName=bob)(memberOf:1.2.840.113556.1.4.1941:=CN=developers,$UD))" sAMAccountName | ldif_values sAMAccountName)"
    expect_eq "bob: tokenGroups (base read) holds 4 SIDs" 4 \
        "$(ldapsearch "${S[@]}" -b "CN=bob,$UD" -s base tokenGroups | grep -ci '^tokenGroups:')"
    local jdn='CN=Doe\, Jane (Contractor),'"$UD"
    expect_eq "jdoe's DN has an escaped comma" "$jdn" \
        "$(ldapsearch "${S[@]}" -b "$AD_BASE_DN" '(sAMAccountName=jdoe)' 1.1 | ldif_values dn)"
    expect_eq "registry-pushers members: jdoe, alice (C-sorted)" "$jdn|CN=alice,$UD" \
        "$(ldapsearch "${S[@]}" -b "CN=registry-pushers,$UD" -s base member | ldif_values member | paste -sd'|' -)"
    expect_eq "group search with jdoe's DN filter-escaped finds registry-pushers" "registry-pushers" \
        "$(ldapsearch "${S[@]}" -b "$AD_BASE_DN" "(&(objectClass=group)(member=CN=Doe\\5c, Jane \\28Contractor\\29,$UD))" cn | ldif_values cn | join_lines)"
    expect_eq "(sAMAccountName=JÖRG) finds jörg (case-insensitive)" "jörg" \
        "$(ldapsearch "${S[@]}" -b "$AD_BASE_DN" '(sAMAccountName=JÖRG)' sAMAccountName | ldif_values sAMAccountName)"

    # TLS
    expect_eq "ldaps:// verifies against AD_CA_FILE" 0 \
        "$(LDAPTLS_CACERT=$AD_CA_FILE LDAPTLS_REQCERT=demand ad_bind "$AD_LDAPS_URL" "$AD_BIND_DN" "$AD_BIND_PASSWORD")"
    expect_eq "ldaps://localhost verifies too (SAN DNS:localhost)" 0 \
        "$(LDAPTLS_CACERT=$AD_CA_FILE LDAPTLS_REQCERT=demand ad_bind ldaps://localhost:636 "$AD_BIND_DN" "$AD_BIND_PASSWORD")"
    expect_eq "StartTLS (-ZZ) on 389 verifies against AD_CA_FILE" 0 \
        "$(LDAPTLS_CACERT=$AD_CA_FILE LDAPTLS_REQCERT=demand ad_bind "$U" "$AD_BIND_DN" "$AD_BIND_PASSWORD" -ZZ)"
    expect_eq "ldaps:// against the system CA bundle fails (-1)" 255 \
        "$(LDAPTLS_CACERT=/etc/ssl/certs/ca-certificates.crt LDAPTLS_REQCERT=demand ad_bind "$AD_LDAPS_URL" "$AD_BIND_DN" "$AD_BIND_PASSWORD")"
    expect_eq "Global Catalog (3268) finds alice" "alice" \
        "$(ldapsearch -x -LLL -H ldap://127.0.0.1:3268 -D "$AD_BIND_DN" -w "$AD_BIND_PASSWORD" -b "$AD_BASE_DN" '(sAMAccountName=alice)' sAMAccountName | ldif_values sAMAccountName)"

    # Kerberos with the private krb5.conf
    if command -v kinit >/dev/null; then
        expect_eq "kinit alice@$AD_REALM" 0 \
            "$(printf '%s\n' "$AD_PASSWORD_ALICE" | KRB5_CONFIG=$AD_KRB5_CONFIG KRB5CCNAME=FILE:$WORK/ccache kinit "alice@$AD_REALM" >/dev/null 2>&1; echo $?)"
        expect_eq "kinit dave (disabled): credentials revoked" 1 \
            "$(printf '%s\n' "$AD_PASSWORD_DAVE" | KRB5_CONFIG=$AD_KRB5_CONFIG KRB5CCNAME=FILE:$WORK/ccache kinit "dave@$AD_REALM" 2>&1 | grep -c 'revoked')"
        # the SPNEGO service principal: its keytab (AES, kvno 2) and a service ticket for it
        expect_eq "AD_HTTP_KEYTAB holds $AD_HTTP_SPN, kvno 2, aes128 and aes256 keys only" \
            "2 $AD_HTTP_SPN aes128-cts-hmac-sha1-96;2 $AD_HTTP_SPN aes256-cts-hmac-sha1-96" \
            "$(klist -k -e "$AD_HTTP_KEYTAB" 2>&1 | awk '$2 ~ /@/ { gsub(/[()]/, "", $3); print $1, $2, $3 }' | LC_ALL=C sort | paste -sd';' -)"
        expect_eq "AD_HTTP_KEYTAB is 0600" 600 "$(stat -c %a "$AD_HTTP_KEYTAB" 2>/dev/null)"
        printf '%s\n' "$AD_PASSWORD_ALICE" | KRB5_CONFIG=$AD_KRB5_CONF KRB5CCNAME=FILE:$WORK/ccache kinit "alice@$AD_REALM" >/dev/null 2>&1
        expect_eq "alice gets a service ticket for HTTP/$AD_HTTP_HOST (kvno 2)" "$AD_HTTP_SPN: kvno = 2" \
            "$(KRB5_CONFIG=$AD_KRB5_CONF KRB5CCNAME=FILE:$WORK/ccache kvno "HTTP/$AD_HTTP_HOST" 2>&1)"
        expect_eq "... encrypted with aes256 (msDS-SupportedEncryptionTypes 24 on $AD_HTTP_ACCOUNT)" 1 \
            "$(KRB5_CONFIG=$AD_KRB5_CONF KRB5CCNAME=FILE:$WORK/ccache klist -e 2>&1 | grep -A1 "$AD_HTTP_SPN" | grep -c 'aes256-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96')"
    fi

    # a second DC cannot start while this one holds the ports
    if "$HERE/samba-ad.sh" start "$WORK/ad-second" >"$WORK/ad-second.out" 2>&1; then
        bad "a second DC refuses to start while the ports are taken" "it started"
        "$HERE/samba-ad.sh" stop "$WORK/ad-second"
    elif grep -q 'already in use' "$WORK/ad-second.out" && [ "$(ad_bind "$U" "$AD_BIND_DN" "$AD_BIND_PASSWORD")" = 0 ]; then
        ok "a second DC refuses to start while the ports are taken (first one unharmed)"
    else
        bad "a second DC refuses to start while the ports are taken" "$(cat "$WORK/ad-second.out")"
    fi

    # a change made by a test is gone after the next start (snapshot restored)
    local pid=$SAMBA_PID
    t0=$(now)
    if "$HERE/samba-ad.sh" stop "$WORK/ad"; then ok "samba-ad.sh stop DIR"; else bad "samba-ad.sh stop DIR"; fi
    timing "samba: stop" "$(secs "$t0")"
    local still=""
    alive "$pid" && still+=" pid $pid"
    for p in 88 135 389 464 636 3268 3269; do port_closed $p || still+=" tcp/$p"; done
    [ -z "$still" ] && ok "after stop: master gone, AD ports closed" || bad "after stop: still there:$still"
}

# =============================================================================== outside writes
check_outside_writes() {
    echo "# --- nothing written outside the fixture directories"
    local found
    # /tmp and /work hold other programs' files (the fixtures keep their temporary files in
    # DIR/tmp); /run/systemd is touched by service management of unrelated packages.
    found=$(find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path "$WORK" -o -path /tmp -o -path /run/systemd \
        -o -path /work -o -path /var/tmp/gatehouse-samba-cache -o -path "$(cd "$HERE/../.." && pwd)" \) -prune \
        -o -newer "$MARKER" ! -type d -print 2>/dev/null | head -20)
    found+=$(find /tmp -maxdepth 1 -newer "$MARKER" \( -name 'krb5cc*' -o -name '*samba*' -o -name '*slapd*' \
        -o -name '*ldap*' -o -name '*.tdb' -o -name '*.ldb' \) -print 2>/dev/null)
    found+=$(find /dev/shm -newer "$MARKER" ! -type d -print 2>/dev/null)
    [ -z "$found" ] && ok "find / -xdev -newer MARKER: no file written outside DIR and the snapshot cache" \
        || bad "files written outside the fixture directories" "$found"
}

case $WHAT in
all) check_slapd; check_samba ;;
slapd) check_slapd ;;
samba) check_samba ;;
esac
check_outside_writes

printf '%s' "$TIMINGS" | sed 's/^/# timing: /'
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
