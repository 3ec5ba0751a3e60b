#!/usr/bin/env bash
# Hostile HTTP input against the running service (issue 8): over-long and repeated
# headers, invalid UTF-8, NUL / bare CR / bare LF, obs-fold, request smuggling shapes,
# pipelining, HTTP/1.0 and 0.9, garbage, slow clients, thousands of idle connections.
# Each case asserts one defined answer, and after each one a normal request on a new
# connection must still get the right answer. The cases live in hostile_http.py (Python 3
# standard library, raw sockets, a deadline on every exchange); this wrapper makes the
# temp dir, the htpasswd/htgroups files and a YAML configuration (the seed policy, an
# `idle_timeout` of IDLE_TIMEOUT_EXPECTED seconds; `gatehouse config check` must accept
# it), starts `gatehouse serve --config` on a free loopback port, runs the cases and stops
# Gatehouse with SIGTERM (it must exit 0).
#
# Needs: python3, apache2-utils (htpasswd), curl. No root needed.
#
# Usage:   Tests/e2e/hostile-http.sh
# Env:     GATEHOUSE_BIN          the gatehouse binary (default: .build/debug/gatehouse in
#                                 the repository); it is copied to the temp dir before use
#          IDLE_TIMEOUT_EXPECTED  whole seconds (>= 1): Gatehouse is configured with this
#                                 idle_timeout and must close idle connections after it
#                                 (default 2); 0: no idle_timeout in the configuration
#                                 (Gatehouse's default, 75 s) and nothing about it asserted
#          IDLE_CONNECTIONS       idle connections to hold open at once (default 2000)
#          KEEP_TMP=1             keep the temp directory (gatehouse log) after the run
#
# Output: one `ok - ...` / `not ok - ...` line per assertion, `# ...` lines with what was
# sent and what came back, `# measure: ...` lines, and finally `N passed, M failed`;
# exit status 1 if anything failed.
set -u

REPO=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib/common.sh
. "$REPO/Tests/lib/common.sh"
gatehouse_bin .build/debug/gatehouse
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-2000}
IDLE_TIMEOUT_EXPECTED=${IDLE_TIMEOUT_EXPECTED:-2}
export IDLE_TIMEOUT_EXPECTED IDLE_CONNECTIONS

need_tools python3 htpasswd curl
[ -x "$GATEHOUSE_BIN" ] || die "no gatehouse binary at $GATEHOUSE_BIN (set GATEHOUSE_BIN)"
case $IDLE_TIMEOUT_EXPECTED in
    *[!0-9]* | '') die "IDLE_TIMEOUT_EXPECTED must be whole seconds (0: not asserted), not '$IDLE_TIMEOUT_EXPECTED'" ;;
esac
START=$(now)

GATE_PID=
cleanup() {
    stop_all "$GATE_PID"
    remove_tmp
}
make_tmp hostile
copy_gatehouse
GOOD=alice:alice-hostile-pw
NOPUSH=bob:bob-hostile-pw
htpasswd -cbB -C 4 "$T/htpasswd" "${GOOD%%:*}" "${GOOD#*:}" 2>/dev/null || die "htpasswd"
htpasswd -bB -C 4 "$T/htpasswd" "${NOPUSH%%:*}" "${NOPUSH#*:}" 2>/dev/null || die "htpasswd"
printf 'pushers: %s\n' "${GOOD%%:*}" >"$T/htgroups"

PORT=$(free_ports 1) || die "no free port"

# Thousands of idle connections need as many descriptors in Gatehouse (systemd units set
# LimitNOFILE); raise the soft limit for it if the hard limit allows.
need=$((IDLE_CONNECTIONS + 256))
[ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$need" ] && ulimit -Sn "$need" 2>/dev/null
echo "# gatehouse on 127.0.0.1:$PORT; open files limit $(ulimit -Sn); idle timeout: ${IDLE_TIMEOUT_EXPECTED}s (0: Gatehouse's default, not asserted)"

# The configuration: the embedded defaults' seed policy (members of `pushers` may pull and
# push, any user may pull) on the htpasswd backend, plus the idle timeout under test.
{
    echo "listen: 127.0.0.1:$PORT"
    [ "$IDLE_TIMEOUT_EXPECTED" != 0 ] && echo "idle_timeout: ${IDLE_TIMEOUT_EXPECTED}s"
    cat <<EOF
backends:
  - {name: local, type: htpasswd, file: $T/htpasswd, groups_file: $T/htgroups}
EOF
    registry_policy_yaml
} >"$T/gatehouse.yaml"
if out=$("$GH" config check --config "$T/gatehouse.yaml" 2>&1); then
    ok "gatehouse config check accepts the configuration (idle_timeout: $([ "$IDLE_TIMEOUT_EXPECTED" = 0 ] && echo 'default' || echo "${IDLE_TIMEOUT_EXPECTED}s"))"
else
    { cat "$T/gatehouse.yaml"; printf '%s\n' "$out"; } | diag 30
    die "gatehouse config check refuses $T/gatehouse.yaml"
fi

"$GH" serve --config "$T/gatehouse.yaml" >"$T/gatehouse.log" 2>&1 </dev/null &
GATE_PID=$!
# up_or_gone (for wait_for): Gatehouse answers /healthz (UP=1), or it has exited: stop waiting
UP=
up_or_gone() {
    http_answers "http://127.0.0.1:$PORT/healthz" 200 && { UP=1; return 0; }
    ! kill -0 "$GATE_PID" 2>/dev/null
}
wait_for 10 up_or_gone
[ -n "$UP" ] || { diag <"$T/gatehouse.log"; die "gatehouse did not answer /healthz on port $PORT"; }
ok "gatehouse serves /healthz"

# The cases. Their own ok/not ok lines pass straight through; the counts come back in the
# last line "# counts: N M".
OUT=$T/cases.out
timeout 150 python3 "$REPO/Tests/e2e/hostile_http.py" --port "$PORT" --pid "$GATE_PID" \
    --good "$GOOD" --nopush "$NOPUSH" --log "$T/gatehouse.log" | tee "$OUT"
rc=${PIPESTATUS[0]}
read -r p f < <(sed -n 's/^# counts: \([0-9]*\) \([0-9]*\)$/\1 \2/p' "$OUT" | tail -n1)
PASSED=$((PASSED + ${p:-0}))
FAILED=$((FAILED + ${f:-0}))
if [ -z "${p:-}" ]; then
    not_ok "hostile_http.py finished and reported its counts (exit status $rc$([ "$rc" = 124 ] && echo ': timed out after 150 s'))"
elif [ "$rc" -ne 0 ] && [ "${f:-0}" = 0 ]; then
    not_ok "hostile_http.py exits 0 when nothing failed (exit status $rc)"
fi

# Gatehouse must still be there, and stop cleanly.
if kill -0 "$GATE_PID" 2>/dev/null; then
    ok "gatehouse is still running after the hostile input"
    t0=$(now)
    if term_wait "$GATE_PID" 10; then
        wait "$GATE_PID"
        GATE_RC=$?
        GATE_PID=
        if [ "$GATE_RC" = 0 ]; then ok "gatehouse exits 0 on SIGTERM"; else not_ok "gatehouse exits 0 on SIGTERM (exit status $GATE_RC)"; fi
        echo "# measure: gatehouse stopped $(elapsed "$t0" "$(now)")s after SIGTERM"
    else
        not_ok "gatehouse exits within 10 s of SIGTERM"
        kill -KILL "$GATE_PID" 2>/dev/null
        wait "$GATE_PID" 2>/dev/null
        GATE_PID=
    fi
else
    wait "$GATE_PID"
    not_ok "gatehouse is still running after the hostile input (it exited with status $?)"
    GATE_PID=
fi
if grep -Eqi 'fatal error|crash|stack trace|precondition failed' "$T/gatehouse.log"; then
    not_ok "gatehouse's log shows no crash"
    grep -Ei -m5 'fatal error|crash|stack trace|precondition failed' "$T/gatehouse.log" | diag
fi

echo "# measure: total run time $(elapsed "$START" "$(now)")s"
if [ "$FAILED" -gt 0 ]; then
    echo "# --- gatehouse.log (tail)"
    diag 10 <"$T/gatehouse.log"
fi
finish
