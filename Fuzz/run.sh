#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ and runs each for SECONDS_PER_TARGET (default 60),
# one after the other, on a copy of its seed corpus (Fuzz/Corpus/<target>) in a temporary
# folder, so the committed corpora stay small. Prints per target the executions, executions
# per second, coverage and whether a crash or broken invariant was found; exits 1 if any was.
#
#   Fuzz/run.sh            # 60 s per target
#   Fuzz/run.sh 10         # CI smoke run
#   FUZZ_TARGETS="basic config" Fuzz/run.sh 600
#   GATEHOUSE_FUZZ_KNOWN=grapheme Fuzz/run.sh 3600   # look past a finding already reported
#   FUZZ_ASAN=0 FUZZ_TARGETS=config Fuzz/run.sh 3600  # libFuzzer without ASan: 2-3x the executions
#
# Environment: FUZZ_TARGETS (default: all), FUZZ_ARTIFACTS (where crash inputs and logs are
# kept; default Fuzz/.build/fuzz-artifacts), FUZZ_KEEP_CORPUS=1 (keep the grown corpus there
# too), FUZZ_SKIP_BUILD=1, FUZZ_MAX_LEN (overrides the per-target input size limit),
# FUZZ_EXTRA (more libFuzzer flags, e.g. -runs=10000000), GATEHOUSE_FUZZ_KNOWN, FUZZ_ASAN=0
# (build and run with -sanitize=fuzzer only, in Fuzz/.build-fuzzer-only).
# Reproduce a saved input: Fuzz/.build/release/fuzz-<target> <file>
set -euo pipefail

seconds="${1:-60}"
fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$fuzz_dir")"
targets="${FUZZ_TARGETS:-basic htpasswd htgroups registry-uri config}"
artifacts="${FUZZ_ARTIFACTS:-$fuzz_dir/.build/fuzz-artifacts}"
if [ "${FUZZ_ASAN:-1}" = 0 ]; then
    sanitizers=fuzzer scratch="$fuzz_dir/.build-fuzzer-only"
else
    sanitizers=fuzzer,address scratch="$fuzz_dir/.build"
fi
bin="$scratch/release"

command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
if [ "${FUZZ_SKIP_BUILD:-0}" != 1 ]; then
    # -sanitize=fuzzer,address reaches every Swift module, GatehouseCore included, so that the
    # fuzzer sees its coverage; -parse-as-library is set per target in Fuzz/Package.swift.
    nice -n 19 swift build -c release \
        --package-path "$fuzz_dir" --scratch-path "$scratch" \
        -Xswiftc -sanitize="$sanitizers"
fi

# Swift's crash backtracer reads memory that ASan guards and muddles the report.
export SWIFT_BACKTRACE=enable=no
export GATEHOUSE_FUZZ_KNOWN="${GATEHOUSE_FUZZ_KNOWN:-}"
# Swift's regex parser (used by the registry reference router) leaks its AST once per
# compiled Regex; that is the toolchain's, not Gatehouse's.
export LSAN_OPTIONS="suppressions=$fuzz_dir/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

max_len() {
    if [ -n "${FUZZ_MAX_LEN:-}" ]; then echo "$FUZZ_MAX_LEN"; return; fi
    case "$1" in
        basic) echo 4200 ;;
        registry-uri) echo 8400 ;;
        config) echo 8192 ;;
        # Line-based files: 2 KiB holds plenty of lines and keeps executions fast.
        *) echo 2048 ;;
    esac
}

work="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$artifacts"
failed=0
summary=()
for target in $targets; do
    corpus="$work/$target"
    mkdir -p "$corpus" "$artifacts/$target"
    cp "$fuzz_dir/Corpus/$target/." "$corpus" -R
    log="$artifacts/$target/fuzz.log"
    dict=()
    [ -f "$fuzz_dir/Dictionaries/$target.dict" ] && dict=(-dict="$fuzz_dir/Dictionaries/$target.dict")
    before="$(find "$artifacts/$target" -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' | wc -l)"
    echo "== fuzz-$target: ${seconds}s (log: $log)"
    status=0
    # shellcheck disable=SC2086
    nice -n 10 "$bin/fuzz-$target" "$corpus" "${dict[@]}" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$target")" \
        -print_final_stats=1 -artifact_prefix="$artifacts/$target/" ${FUZZ_EXTRA:-} >"$log" 2>&1 || status=$?
    after="$(find "$artifacts/$target" -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' | wc -l)"
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    coverage="$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)"
    corpus_size="$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1)"
    if [ "$status" -ne 0 ] || [ "$after" -gt "$before" ]; then
        failed=1
        verdict="FINDING (exit $status)"
        reason="$(grep -m1 -E 'INVARIANT VIOLATION|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|Fatal error|deadly signal' "$log" || true)"
        input="$(grep -o "Test unit written to .*" "$log" | tail -1 | sed 's/Test unit written to //')"
        verdict="$verdict: ${reason:0:400}${input:+ — input: $input}"
    else
        verdict="no finding"
    fi
    line="fuzz-$target: ${runs:-?} executions, ${speed:-?} exec/s, ${coverage:-cov: ?}, ${corpus_size:-corp: ?}; $verdict"
    echo "$line"
    summary+=("$line")
    if [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ]; then
        rm -rf "$artifacts/$target/corpus" && cp -R "$corpus" "$artifacts/$target/corpus"
    fi
done

echo
echo "== summary (${seconds}s per target${GATEHOUSE_FUZZ_KNOWN:+, known findings skipped: $GATEHOUSE_FUZZ_KNOWN})"
printf '%s\n' "${summary[@]}"
exit "$failed"
