#!/usr/bin/env bash
# Runs the runtime benchmark (benches/runtime/run.py): Tangent's generated gradients against
# hand-written NumPy gradients, autograd and JAX. Extra arguments go to run.py, e.g.
#   ./scripts/bench.sh --quick
#   ./scripts/bench.sh --only logistic,rnn --out /tmp/runtime
# autograd, JAX and matplotlib are optional: when pip cannot install them, the benchmark skips
# those contenders (or the chart) and says so in its results.
#   TANGENT_BENCH_BUILD=0   use the extension already in .venv (do not rebuild it)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

ensure_venv
pip_ensure 'import numpy' numpy
# Optional peers, one at a time so that one failure does not keep the others out.
optional() {
    local check="$1"
    shift
    if ! "$venv_python" -c "$check" 2>/dev/null; then
        log "installing $* (optional)"
        "$venv_python" -m pip install -q "$@" ||
            log "note: could not install $*; the benchmark will skip what needs it"
    fi
}
optional 'import autograd' autograd
optional 'import jax, jaxlib' jax jaxlib
optional 'import matplotlib' matplotlib

if [ "${TANGENT_BENCH_BUILD:-1}" != 0 ]; then
    build_extension
fi
log "benches/runtime/run.py $*"
exec "$venv_python" "$ROOT/benches/runtime/run.py" "$@"
