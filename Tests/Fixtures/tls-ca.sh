# shellcheck shell=bash
# Sourced by slapd.sh and samba-ad.sh: a throwaway private CA and one server certificate.
#
#   fixture_make_tls OUTDIR SERVER_CN SAN_LIST
#
# writes OUTDIR/ca.crt, ca.key, server.crt, server.key (keys 0600). SAN_LIST is an
# openssl subjectAltName value, e.g. "IP:127.0.0.1,DNS:localhost". ECDSA P-256 keys: key
# generation is instant (RSA-2048 costs 0.1-0.5 s per key on a busy 2-core machine).
fixture_make_tls() {
    local out=$1 cn=$2 sans=$3
    mkdir -p "$out"
    rm -f "$out"/ca.crt "$out"/ca.key "$out"/server.crt "$out"/server.key "$out"/server.csr "$out"/server.ext
    (
        umask 077
        openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$out/ca.key" -out "$out/ca.crt" -days 3650 \
            -subj "/O=Gatehouse tests/CN=Gatehouse test CA $(date +%s)-$$-$RANDOM" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -addext "subjectKeyIdentifier=hash" 2>/dev/null
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$out/server.key" -out "$out/server.csr" -subj "/CN=$cn" 2>/dev/null
        cat >"$out/server.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$sans
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
        openssl x509 -req -in "$out/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
            -set_serial "0x$(openssl rand -hex 8)" -days 825 -extfile "$out/server.ext" \
            -out "$out/server.crt" 2>/dev/null
    ) || { echo "fixture_make_tls: openssl failed" >&2; return 1; }
    rm -f "$out/server.csr" "$out/server.ext"
    chmod 600 "$out/ca.key" "$out/server.key"
    chmod 644 "$out/ca.crt" "$out/server.crt"
    openssl verify -CAfile "$out/ca.crt" "$out/server.crt" >/dev/null \
        || { echo "fixture_make_tls: the new server certificate does not verify" >&2; return 1; }
}
