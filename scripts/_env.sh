# Shared set-up for scripts/*.sh (sourced, not run). Idempotent.
#   ROOT          the repository root (the scripts cd there)
#   VENV          $ROOT/.venv, created with $PYTHON (default python3, needs >= 3.11)
#   venv_python   the venv's interpreter

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
venv_python="$VENV/bin/python"

log() { printf '==> %s\n' "$*" >&2; }

ensure_venv() {
    if ! "$venv_python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
        if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
            echo "error: $PYTHON is missing or older than Python 3.11 (set PYTHON=...)" >&2
            exit 1
        fi
        log "creating $VENV"
        "$PYTHON" -m venv --clear "$VENV"
        "$venv_python" -m pip install -q --upgrade pip
    fi
}

# pip_ensure "import check" requirement...: installs only when the import check fails,
# so a set-up venv needs no network.
pip_ensure() {
    local check="$1"
    shift
    if ! "$venv_python" -c "$check" 2>/dev/null; then
        log "installing $* into .venv"
        "$venv_python" -m pip install -q "$@"
    fi
}

ensure_maturin() {
    if ! "$VENV/bin/maturin" --version >/dev/null 2>&1; then
        log "installing maturin into .venv"
        "$venv_python" -m pip install -q 'maturin>=1.16,<2'
    fi
}

# Builds the Rust extension (debug profile) into the venv as an editable install.
build_extension() {
    ensure_maturin
    log "building tangent._engine (maturin develop)"
    (cd "$ROOT/pyhooks" && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" \
        "$VENV/bin/maturin" develop --quiet)
    install_import_hook_pth
}

# `maturin develop` installs an editable wheel without the files listed in [tool.maturin]
# include, so the import hook's start-up file is copied into site-packages here (and recorded
# in the dist-info RECORD so that `pip uninstall tangent` removes it).
install_import_hook_pth() {
    "$venv_python" - "$ROOT/pyhooks/python/tangent_hook.pth" <<'PY'
import base64, glob, hashlib, os, shutil, sys, sysconfig
src = sys.argv[1]
site = sysconfig.get_path("purelib")
dst = os.path.join(site, os.path.basename(src))
shutil.copyfile(src, dst)
data = open(dst, "rb").read()
digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
line = f"{os.path.basename(dst)},sha256={digest},{len(data)}\n"
for record in glob.glob(os.path.join(site, "tangent-*.dist-info", "RECORD")):
    rows = [r for r in open(record) if not r.startswith(os.path.basename(dst) + ",")]
    open(record, "w").writelines(rows + [line])
PY
}
