#!/usr/bin/env bash
# Creates or updates a virtualenv with one tested OpenMMLab stack and
# mmsupertickets installed in editable mode. Idempotent: a stamp holding the
# hash of every input file makes a second run return at once.
#
#   tools/setup_env.sh [VENV]        default: .venv (current), .venv-classic
#   STACK=current|classic            current: torch 2.14, NumPy 2 (default)
#                                    classic: torch 2.1, NumPy 1.26
#   MMCV_WHEEL_DIR=dir               where a prebuilt mmcv-2.1.0 wheel may lie
#                                    (default: ../shared/wheels, and its
#                                    torch-2.1.2/ folder for the classic stack)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STACK="${STACK:-current}"
PYTHON="${PYTHON:-python3.11}"
MMCV_VERSION=2.1.0
case "$STACK" in
  current)
    VENV="${1:-$ROOT/.venv}"
    TORCH_REQS="$ROOT/requirements/torch.txt"
    CONSTRAINTS="$ROOT/requirements/constraints.txt"
    WHEEL_DIR="${MMCV_WHEEL_DIR:-$ROOT/../shared/wheels}"
    CXX_STD=c++20  # torch>=2.10 headers need C++20
    ;;
  classic)
    VENV="${1:-$ROOT/.venv-classic}"
    TORCH_REQS="$ROOT/requirements/torch-classic.txt"
    CONSTRAINTS="$ROOT/requirements/constraints-classic.txt"
    WHEEL_DIR="${MMCV_WHEEL_DIR:-$ROOT/../shared/wheels/torch-2.1.2}"
    CXX_STD=c++17
    ;;
  *) echo "setup: STACK must be current or classic, got '$STACK'" >&2; exit 2 ;;
esac

inputs_hash() {
  { echo "$STACK"; cat "$ROOT"/requirements/*.txt "$ROOT/setup.py" "$ROOT/tools/setup_env.sh"; } | sha256sum | cut -d' ' -f1
}
STAMP="$VENV/.mmsupertickets-setup"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(inputs_hash)" ]; then
  echo "setup: $VENV ($STACK stack) is up to date"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $PYTHON ($STACK stack)"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# No wheel cache: it would keep a second copy of the CUDA wheels (several GB
# per stack) on the disk the tests run on.
export PIP_NO_CACHE_DIR=1
PIP=("$PY" -m pip install --disable-pip-version-check -c "$CONSTRAINTS")

"${PIP[@]}" -r "$TORCH_REQS"

if ! "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
  wheel=$(ls "$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl 2>/dev/null | head -n1 || true)
  if [ -n "$wheel" ]; then
    echo "setup: installing prebuilt $wheel"
    "$PY" -m pip install --disable-pip-version-check --no-deps --force-reinstall "$wheel"
  else
    # No prebuilt wheel: build mmcv with ops (-g0 cuts the build from over
    # an hour to about 15 minutes on 2 cores).
    echo "setup: building mmcv $MMCV_VERSION from source with $CXX_STD (10-15 minutes on 2 cores)"
    build=$(mktemp -d)
    "$PY" -m pip download --disable-pip-version-check --no-deps --no-binary :all: -d "$build" "mmcv==$MMCV_VERSION"
    tar -xzf "$build"/mmcv-$MMCV_VERSION.tar.gz -C "$build"
    sed -i "s/-std=c++17/-std=$CXX_STD/g" "$build/mmcv-$MMCV_VERSION/setup.py"
    "$PY" -m pip install --disable-pip-version-check ninja wheel
    (cd "$build/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" CFLAGS="-g0 -O2" \
      "$PY" -m pip wheel --no-build-isolation --no-deps -w "$build/dist" .)
    "$PY" -m pip install --disable-pip-version-check --no-deps "$build"/dist/mmcv-*.whl
    rm -rf "$build"
  fi
fi

R="$ROOT/requirements"
"${PIP[@]}" -r "$R/mmcv.txt" -r "$R/runtime.txt" -r "$R/seg.txt" -r "$R/cls.txt" \
  -r "$R/pose.txt" -r "$R/deploy.txt" -r "$R/tests.txt"

# The binary xtcocotools wheel is built against numpy 1.x: with NumPy 2 it
# fails at import, so it is built from source there.
if ! "$PY" -c "import xtcocotools.coco" 2>/dev/null; then
  "${PIP[@]}" cython
  "$PY" -m pip install --disable-pip-version-check --no-binary xtcocotools --no-build-isolation \
    --force-reinstall --no-deps xtcocotools==1.14.3
fi
"$PY" -m pip install --disable-pip-version-check --no-deps mmpose==1.3.2
# mim (for `mim train mmsupertickets ...`): openmim's own pins (setuptools,
# requests, rich) would downgrade the stack, so it goes in without them and
# with the packages its commands import.
"$PY" -m pip install --disable-pip-version-check --no-deps openmim==0.3.9
"${PIP[@]}" -r "$R/mim.txt"
"$PY" -m pip install --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT"

"$PY" - <<'PYEOF'
import mmcv.ops, mmseg, mmpose.models, mmpretrain, xtcocotools.coco, torch, numpy
print('setup: torch', torch.__version__, 'numpy', numpy.__version__, 'mmcv', mmcv.__version__,
      'mmseg', mmseg.__version__)
PYEOF
inputs_hash > "$STAMP"
echo "setup: done ($VENV, $STACK stack)"
