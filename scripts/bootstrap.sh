#!/usr/bin/env bash
# Idempotent set-up of everything `make demo` / `make test` need, on a fresh Debian machine:
# system packages (flite, espeak-ng, libsndfile), a .venv with the pinned stack, fairseq-fixed
# built against that stack, and ae_hubert installed in editable mode.
# A stamp file records the hash of the inputs, so a second run is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}
STAMP=$VENV/.ae_hubert_stamp
want=$(cat requirements.txt scripts/bootstrap.sh setup.py | sha1sum | cut -d' ' -f1)

# --- system packages --------------------------------------------------------------------------
need_apt=()
command -v flite >/dev/null || need_apt+=(flite)
command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
ldconfig -p | grep 'libespeak-ng.so.1' >/dev/null || need_apt+=(libespeak-ng1)
ldconfig -p | grep 'libsndfile.so' >/dev/null || need_apt+=(libsndfile1)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[bootstrap] apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi

# --- python stack -------------------------------------------------------------------------------
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade "pip<26" "setuptools<81" wheel
# torch first, exact pin: the CPU wheel on disk. Anything looser can pull a multi-GB CUDA build.
pip install torch==2.13.0
pip install -r requirements.txt
# fairseq-fixed: its C++/Cython extensions must be compiled against the numpy/torch above, and its
# declared dependencies (old hydra/omegaconf/numpy pins) must not be resolved by pip.
if ! "$VENV/bin/python" -c "import fairseq, fairseq.data.data_utils_fast" 2>/dev/null; then
  echo "[bootstrap] building fairseq-fixed (a few minutes)"
  MAX_JOBS=2 pip install --no-build-isolation --no-deps fairseq-fixed==0.12.3.1
fi
pip install --no-build-isolation --no-deps -e .
echo "$want" > "$STAMP"
echo "[bootstrap] environment ready in $VENV"
