#!/usr/bin/env bash
# Runs every test: the Rust workspace, then the Python suite against a fresh build of the
# extension. Extra arguments go to pytest (e.g. ./scripts/test.sh -k runtime -n 2).
#
# The Python suite runs under pytest-xdist: a worker that hangs or runs out of memory (e.g. an
# endless loop in generated code) is killed and replaced, its test fails, and the run goes on.
#   TANGENT_TEST_JOBS       pytest-xdist workers (-n), default auto (one per core)
#   TANGENT_TEST_TIMEOUT    seconds per Python test (pytest-timeout), default 300
#   TANGENT_TEST_MEMORY_KB  address-space limit per pytest process (ulimit -v), default 8 GiB
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

ensure_venv
pip_ensure 'import numpy, pytest, xdist, pytest_timeout' numpy pytest pytest-xdist pytest-timeout
# A real Jupyter kernel for the notebook tests (test_notebook.py).
pip_ensure 'import nbclient, nbformat, ipykernel' nbclient nbformat ipykernel
ensure_maturin
# Optional references for comparison tests: skip them when pip cannot install them.
if ! "$venv_python" -c 'import autograd, scipy' 2>/dev/null; then
    log "installing autograd and scipy (optional)"
    "$venv_python" -m pip install -q autograd scipy ||
        log "warning: could not install autograd/scipy; tests that need them will skip"
fi

# scikit-learn: its functions, called as installed, are followed (test_installed_packages.py).
if ! "$venv_python" -c 'import sklearn' 2>/dev/null; then
    log "installing scikit-learn (optional)"
    "$venv_python" -m pip install -q scikit-learn ||
        log "warning: could not install scikit-learn; tests that need it will skip"
fi

failed=()

log "cargo test --workspace --no-fail-fast"
# (stdin closed: rustc reads a probe program from it when cargo first runs)
if ! cargo test --workspace --no-fail-fast </dev/null; then
    failed+=("cargo test")
fi

if build_extension; then
    log "python -m pytest tests/python -q (-n ${TANGENT_TEST_JOBS:-auto})"
    status=0
    (
        ulimit -v "${TANGENT_TEST_MEMORY_KB:-8388608}" 2>/dev/null || true
        exec "$venv_python" -m pytest tests/python -q -n "${TANGENT_TEST_JOBS:-auto}" \
            --timeout="${TANGENT_TEST_TIMEOUT:-300}" --timeout-method=thread "$@"
    ) || status=$?
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
