#!/usr/bin/env bash
# A throwaway OpenLDAP server (slapd 2.5, back_mdb + memberof) on two free loopback ports,
# with a private CA for ldaps:// and StartTLS. Everything lives in DIR.
#
#   slapd.sh start DIR [--anon-dn]   # generate, load, start, wait until ready, write DIR/env
#   slapd.sh stop DIR                # stop the slapd started for DIR (no-op if none)
#
# --anon-dn adds "allow bind_anon_dn": a bind with a DN and an EMPTY password then succeeds
# as anonymous, which is what Active Directory does (RFC 4513 unauthenticated bind).
# See README.md beside this file for the directory's contents. Needs: slapd, ldap-utils,
# openssl, python3. Runs as root or as a normal user (ports are unprivileged).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tls-ca.sh
. "$HERE/tls-ca.sh"
# shellcheck source=../lib/process.sh
. "$HERE/../lib/process.sh"

BASE_DN="dc=gatehouse,dc=test"
PEOPLE_DN="ou=people,$BASE_DN"
GROUPS_DN="ou=groups,$BASE_DN"
SERVICES_DN="ou=services,$BASE_DN"
BIND_DN="cn=gatehouse,$SERVICES_DN"
BIND_PASSWORD="gatehouse-svc-pw"
ROOT_DN="cn=admin,$BASE_DN"
ROOT_PASSWORD="admin-pw"

die() { echo "slapd.sh: $*" >&2; exit 1; }
usage() { echo "usage: slapd.sh start DIR [--anon-dn] | slapd.sh stop DIR" >&2; exit 2; }

# Every client tool below must ignore ~/.ldaprc, ./ldaprc and LDAP* variables of the caller.
export LDAPNOINIT=1

b64() { printf '%s' "$1" | base64 -w0; }

pid_is_our_slapd() { # PID DIR
    local pid=$1 dir=$2
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = slapd ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/slapd.conf"
}

cmd_stop() {
    local dir=$1 pid=""
    [ -d "$dir" ] || return 0
    [ -s "$dir/slapd.pid" ] && pid=$(cat "$dir/slapd.pid")
    if [ -z "$pid" ] && [ -s "$dir/env" ]; then
        pid=$(sed -n 's/^SLAPD_PID=//p' "$dir/env")
    fi
    if [ -z "$pid" ] || ! pid_is_our_slapd "$pid" "$dir"; then
        rm -f "$dir/slapd.pid"
        return 0
    fi
    if ! term_wait "$pid" 10; then
        echo "slapd.sh: slapd $pid ignored SIGTERM for 10 s, sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        while alive "$pid"; do sleep 0.05; done
    fi
    rm -f "$dir/slapd.pid"
}

hash_pw() { slappasswd -h '{SSHA}' -s "$1"; }
# shellcheck disable=SC2016 # a literal crypt salt format
hash_crypt6() { slappasswd -h '{CRYPT}' -c '$6$rounds=5000$%.16s' -s "$1"; }

write_base_ldif() { # FILE
    local jorg_dn="uid=jörg,$PEOPLE_DN"
    cat >"$1" <<EOF
dn: $BASE_DN
objectClass: top
objectClass: dcObject
objectClass: organization
o: Gatehouse tests
dc: gatehouse

dn: $PEOPLE_DN
objectClass: organizationalUnit
ou: people

dn: $GROUPS_DN
objectClass: organizationalUnit
ou: groups

dn: $SERVICES_DN
objectClass: organizationalUnit
ou: services

dn: $BIND_DN
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: gatehouse
description: Gatehouse service account (search only)
userPassword: $(hash_pw "$BIND_PASSWORD")

dn: uid=alice,$PEOPLE_DN
objectClass: inetOrgPerson
objectClass: posixAccount
uid: alice
cn: Alice Liddell
sn: Liddell
givenName: Alice
mail: alice@gatehouse.test
uidNumber: 10001
gidNumber: 10000
homeDirectory: /home/alice
loginShell: /bin/bash
userPassword: $(hash_pw alice-pw)

dn: uid=bob,$PEOPLE_DN
objectClass: inetOrgPerson
objectClass: posixAccount
uid: bob
cn: Bob Builder
sn: Builder
givenName: Bob
mail: bob@gatehouse.test
uidNumber: 10002
gidNumber: 10000
homeDirectory: /home/bob
loginShell: /bin/bash
userPassword: $(hash_crypt6 bob-pw)

dn: uid=carol,$PEOPLE_DN
objectClass: inetOrgPerson
objectClass: posixAccount
uid: carol
cn: Carol Danvers
sn: Danvers
givenName: Carol
uidNumber: 10003
gidNumber: 10000
homeDirectory: /home/carol
userPassword: $(hash_pw carol-pw)

dn: cn=star,$PEOPLE_DN
objectClass: inetOrgPerson
uid: *
cn: star
sn: Star
description: uid is a single asterisk (filter escaping)
userPassword: $(hash_pw star-pw)

dn: cn=paren,$PEOPLE_DN
objectClass: inetOrgPerson
uid: a)(uid=*
cn: paren
sn: Paren
description: uid contains parentheses and an asterisk (filter injection)
userPassword: $(hash_pw paren-pw)

dn:: $(b64 "$jorg_dn")
objectClass: inetOrgPerson
uid:: $(b64 "jörg")
cn:: $(b64 "Jörg Müller")
sn:: $(b64 "Müller")
givenName:: $(b64 "Jörg")
userPassword: $(hash_pw "jörg-pw")

dn: cn=Doe\, Jane (Contractor),$PEOPLE_DN
objectClass: inetOrgPerson
uid: jane
cn: Doe, Jane (Contractor)
sn: Doe
givenName: Jane
mail: jane@gatehouse.test
userPassword: $(hash_pw jane-pw)

dn: uid=nopassword,$PEOPLE_DN
objectClass: inetOrgPerson
uid: nopassword
cn: No Password
sn: Password
description: entry without userPassword: every simple bind must fail
EOF
}

write_groups_ldif() { # FILE
    cat >"$1" <<EOF
dn: cn=pushers,$GROUPS_DN
objectClass: groupOfNames
cn: pushers
member: uid=alice,$PEOPLE_DN
member: cn=Doe\, Jane (Contractor),$PEOPLE_DN

dn: cn=readers,$GROUPS_DN
objectClass: groupOfNames
cn: readers
member: uid=alice,$PEOPLE_DN

dn: cn=auditors,$GROUPS_DN
objectClass: groupOfUniqueNames
cn: auditors
uniqueMember: uid=bob,$PEOPLE_DN

dn: cn=developers,$GROUPS_DN
objectClass: posixGroup
cn: developers
gidNumber: 20001
memberUid: bob
EOF
}

write_conf() { # DIR ANON_DN(0|1)
    local dir=$1 anon=$2
    {
        echo "# generated by slapd.sh: throwaway test server"
        for s in core cosine inetorgperson nis; do echo "include /etc/ldap/schema/$s.schema"; done
        cat <<EOF
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile $dir/slapd.pid
argsfile $dir/slapd.args
loglevel stats
TLSCACertificateFile $dir/tls/ca.crt
TLSCertificateFile $dir/tls/server.crt
TLSCertificateKeyFile $dir/tls/server.key
EOF
        [ "$anon" = 1 ] && echo "allow bind_anon_dn"
        cat <<EOF

database mdb
maxsize 16777216
dbnosync
suffix "$BASE_DN"
rootdn "$ROOT_DN"
rootpw $(hash_pw "$ROOT_PASSWORD")
directory $dir/db
index objectClass,uid,cn,member,uniqueMember,memberUid eq
overlay memberof
access to attrs=userPassword by anonymous auth by self write by * none
access to * by users read by * none
EOF
    } >"$dir/slapd.conf"
}

wait_ready() { # DIR PID PORT -> 0 ready, 1 died, 2 timeout
    local dir=$1 pid=$2 port=$3
    for _ in $(seq 1 200); do # 10 s
        alive "$pid" || return 1
        if ldapwhoami -x -o nettimeout=2 -H "ldap://127.0.0.1:$port/" -D "$BIND_DN" \
            -w "$BIND_PASSWORD" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.05
    done
    return 2
}

cmd_start() {
    local dir=$1 anon=$2
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    case $dir in *[[:space:]\"\'\$\\]*) die "DIR must not contain white space, quotes, \$ or backslashes: $dir" ;; esac
    command -v slapd >/dev/null || die "slapd not installed (apt-get install slapd ldap-utils)"
    cmd_stop "$dir"
    rm -rf "$dir/db" "$dir/tls"
    rm -f "$dir/env" "$dir/slapd.conf" "$dir/slapd.log" "$dir/slapd.args" "$dir/base.ldif" \
        "$dir/groups.ldif" "$dir/bind-password"
    mkdir -p "$dir/db"
    chmod 700 "$dir/db"

    fixture_make_tls "$dir/tls" 127.0.0.1 "IP:127.0.0.1"
    write_conf "$dir" "$anon"
    write_base_ldif "$dir/base.ldif"
    write_groups_ldif "$dir/groups.ldif"
    slaptest -Q -u -f "$dir/slapd.conf" >/dev/null 2>&1 || {
        slaptest -u -f "$dir/slapd.conf" >&2 || true
        die "slaptest rejected $dir/slapd.conf"
    }
    slapadd -q -f "$dir/slapd.conf" -l "$dir/base.ldif" >"$dir/slapadd.log" 2>&1 || {
        cat "$dir/slapadd.log" >&2
        die "slapadd failed"
    }

    local ports p1 p2 pid rc
    for _ in 1 2 3 4 5; do
        ports=$(free_ports 2)
        p1=${ports% *}
        p2=${ports#* }
        # -d 256 (stats) keeps slapd in the foreground, so $! is its pid; setsid detaches it
        # from the caller's process group and terminal. No fd of the caller is inherited.
        setsid slapd -d 256 -h "ldap://127.0.0.1:$p1/ ldaps://127.0.0.1:$p2/" \
            -f "$dir/slapd.conf" </dev/null >/dev/null 2>>"$dir/slapd.log" &
        pid=$!
        rc=0
        wait_ready "$dir" "$pid" "$p1" || rc=$?
        [ "$rc" = 0 ] && break
        if [ "$rc" = 2 ]; then
            kill -TERM "$pid" 2>/dev/null || true
            tail -20 "$dir/slapd.log" >&2
            die "slapd did not answer within 10 s"
        fi
        # slapd died: most likely a port taken between picking and binding; try others.
        wait "$pid" 2>/dev/null || true
        if ! grep -q 'bind(.*) failed\|errno=98\|Address already in use' "$dir/slapd.log"; then
            tail -20 "$dir/slapd.log" >&2
            die "slapd exited during start-up (log: $dir/slapd.log)"
        fi
        echo "slapd.sh: ports $p1/$p2 were taken, retrying" >&2
        rm -f "$dir/slapd.pid"
    done
    [ "$rc" = 0 ] || die "could not start slapd on free ports after 5 attempts"
    [ "$(cat "$dir/slapd.pid" 2>/dev/null)" = "$pid" ] || echo "$pid" >"$dir/slapd.pid"

    # Groups go in over the network so that the memberof overlay fills memberOf.
    ldapadd -x -H "ldap://127.0.0.1:$p1/" -D "$ROOT_DN" -w "$ROOT_PASSWORD" \
        -f "$dir/groups.ldif" >"$dir/ldapadd.log" 2>&1 || {
        cat "$dir/ldapadd.log" >&2
        cmd_stop "$dir"
        die "adding the groups failed"
    }

    (umask 077 && printf '%s' "$BIND_PASSWORD" >"$dir/bind-password")
    cat >"$dir/env.tmp" <<EOF
LDAP_URL=ldap://127.0.0.1:$p1
LDAPS_URL=ldaps://127.0.0.1:$p2
LDAP_PORT=$p1
LDAPS_PORT=$p2
CA_FILE=$dir/tls/ca.crt
BASE_DN=$BASE_DN
PEOPLE_DN=$PEOPLE_DN
GROUPS_DN=$GROUPS_DN
SERVICES_DN=$SERVICES_DN
BIND_DN=$BIND_DN
BIND_PASSWORD=$BIND_PASSWORD
BIND_PASSWORD_FILE=$dir/bind-password
ROOT_DN=$ROOT_DN
ROOT_PASSWORD=$ROOT_PASSWORD
ANON_DN_BIND=$anon
SLAPD_PID=$pid
EOF
    mv "$dir/env.tmp" "$dir/env"
}

[ $# -ge 2 ] || usage
case "$1" in
start)
    anon=0
    [ "${3:-}" = "--anon-dn" ] && anon=1
    [ $# -le 3 ] || usage
    [ $# -eq 2 ] || [ "$anon" = 1 ] || usage
    cmd_start "$2" "$anon"
    ;;
stop)
    [ $# -eq 2 ] || usage
    [ -d "$2" ] || exit 0
    cmd_stop "$(cd "$2" && pwd -P)"
    ;;
*) usage ;;
esac
