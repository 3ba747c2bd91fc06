#!/usr/bin/env bash
# Runs every test: the Rust workspace, then the Python suite against a fresh build of the
# extension. Extra arguments go to pytest (e.g. ./scripts/test.sh -k runtime -n 2).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

ensure_venv
pip_ensure 'import numpy, pytest, xdist' numpy pytest pytest-xdist
ensure_maturin
# Optional references for comparison tests: skip them when pip cannot install them.
if ! "$venv_python" -c 'import autograd, scipy' 2>/dev/null; then
    log "installing autograd and scipy (optional)"
    "$venv_python" -m pip install -q autograd scipy ||
        log "warning: could not install autograd/scipy; tests that need them will skip"
fi

failed=()

log "cargo test --workspace --no-fail-fast"
if ! cargo test --workspace --no-fail-fast; then
    failed+=("cargo test")
fi

if build_extension; then
    log "python -m pytest tests/python -q"
    status=0
    "$venv_python" -m pytest tests/python -q "$@" || status=$?
    if [ "$status" -eq 5 ]; then
        log "pytest collected no tests"
    elif [ "$status" -ne 0 ]; then
        failed+=("pytest (exit $status)")
    fi
else
    failed+=("maturin develop (Python tests not run)")
fi

if [ "${#failed[@]}" -ne 0 ]; then
    printf 'FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
log "all tests passed"
