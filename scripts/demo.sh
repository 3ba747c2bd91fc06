#!/usr/bin/env bash
# Builds everything and shows Tangent at work on examples/logistic.py:
# the generated gradient source (CLI), then tangent.grad checked against finite differences.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

ensure_venv
pip_ensure 'import numpy' numpy
ensure_maturin
build_extension

log "building the CLI"
cargo build -q -p tangent-cli

log "tangent grad examples/logistic.py:loss"
cargo run -q -p tangent-cli -- grad examples/logistic.py:loss

log "python examples/logistic.py"
"$venv_python" examples/logistic.py
