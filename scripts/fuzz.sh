#!/usr/bin/env bash
# Runs both fuzzers for longer than CI does.
#
#   ./scripts/fuzz.sh                      # 10 minutes: half engine robustness, half differential
#   ./scripts/fuzz.sh --minutes 60         # longer
#   ./scripts/fuzz.sh --seed 42            # reproducible (default: a fresh random seed each run)
#   ./scripts/fuzz.sh --only engine        # or: --only differential
#   ./scripts/fuzz.sh --effects            # differential: with programs with effects (issue 13)
#
# 1. Engine robustness (tests/fuzz_engine.rs, proptest, release build): random programs of the
#    supported subset, arbitrary bytes and token soups, and the repository's Python files
#    truncated and mutated, through every entry point of the engine. Property: a result or a
#    diagnostic, never a panic, a hang or invalid Python. Failures are shrunk by proptest and
#    printed with the seed that reproduces them (TANGENT_FUZZ_SEED=... cargo test --release
#    --test fuzz_engine NAME); known bugs owned elsewhere are counted and listed, not fatal
#    (TANGENT_FUZZ_STRICT=1 makes them fatal).
# 2. Differential (tests/python/fuzzgen.py, against the extension built by scripts/_env.sh):
#    random differentiable programs; gradients against finite differences, forward against
#    reverse mode, optimized against unoptimized, split against joint motion, Hessian-vector
#    products, autograd when installed. Failures are minimized and written to
#    target/fuzz-failures/; move the ones that show a real bug to
#    tests/fixtures/fuzz_regressions/ (test_fuzz_differential.py::test_regression runs them)
#    and fix the engine.
#    With --effects, most programs are of the effects class (random draws, lists and prints
#    passed down to helpers, in-place writes, `out=`, views and aliases; every derivative call
#    must also have the effects of one call of f); their acceptance is counted apart, and their
#    failures go to target/fuzz-failures-effects/ (keep them in
#    tests/fixtures/fuzz_regressions_effects/, run by test_effects_regression).
#
# Exit status 1 when either fuzzer found a failure.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

minutes=10
seed=""
only=""
effects=()
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) minutes="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        --only) only="$2"; shift 2 ;;
        --effects) effects=(--effects); shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$seed" ]; then
    seed="$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"
fi
case "$only" in
    ""|engine|differential) ;;
    *) echo "--only takes engine or differential" >&2; exit 2 ;;
esac
# Each fuzzer gets its share of the time; the engine's share is split between its three input
# kinds (programs, noise, mutated files), which run one after another.
share=$minutes
if [ -z "$only" ]; then
    share=$(awk "BEGIN { print $minutes / 2 }")
fi
log "seed $seed, ${minutes} minutes"

failed=()

if [ "$only" != differential ]; then
    per_test=$(awk "BEGIN { s = int($share * 60 / 3); print (s < 1 ? 1 : s) }")
    log "engine robustness fuzzer: 3 x ${per_test} s (release build)"
    if ! TANGENT_FUZZ_SEED="$seed" TANGENT_FUZZ_SECONDS="$per_test" TANGENT_FUZZ_CASES="${TANGENT_FUZZ_CASES:-500}" \
        TANGENT_FUZZ_CASE_TIMEOUT_MS="${TANGENT_FUZZ_CASE_TIMEOUT_MS:-10000}" \
        cargo test --release --test fuzz_engine -- --nocapture --test-threads 1 programs noise_text mutated_files; then
        failed+=("engine robustness fuzzer")
    fi
fi

if [ "$only" != engine ]; then
    ensure_venv
    pip_ensure 'import numpy, pytest' numpy pytest
    # The extension must be the engine of this checkout (TANGENT_FUZZ_NO_BUILD=1 skips this).
    if [ "${TANGENT_FUZZ_NO_BUILD:-0}" != 1 ] || ! "$venv_python" -c 'import tangent._engine' 2>/dev/null; then
        build_extension
    fi
    out="$ROOT/target/fuzz-failures"
    if [ "${#effects[@]}" -ne 0 ]; then
        out="$ROOT/target/fuzz-failures-effects"
    fi
    log "differential fuzzer${effects:+ (with the effects class)}: ${share} minutes; minimized failures go to $out"
    if ! "$venv_python" "$ROOT/tests/python/fuzzgen.py" --seed "$seed" --minutes "$share" --save "$out" ${effects[@]+"${effects[@]}"}; then
        failed+=("differential fuzzer")
    fi
fi

if [ "${#failed[@]}" -ne 0 ]; then
    printf 'FAILED: %s\n' "${failed[@]}" >&2
    echo "seed $seed (rerun with --seed $seed${effects:+ --effects})" >&2
    exit 1
fi
log "no failures (seed $seed)"
