#!/usr/bin/env bash
# Creates or updates a virtualenv with the known-good OpenMMLab set and
# mmsupertickets installed in editable mode. Idempotent: a stamp holding the
# hash of every input file makes a second run return at once.
#
#   tools/setup_env.sh [VENV]        (default: .venv at the repository root)
#   MMCV_WHEEL_DIR=dir               where a prebuilt mmcv-2.1.0 wheel may lie
#                                    (default: ../shared/wheels)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
WHEEL_DIR="${MMCV_WHEEL_DIR:-$ROOT/../shared/wheels}"
MMCV_VERSION=2.1.0

inputs_hash() {
  cat "$ROOT"/requirements/*.txt "$ROOT/setup.py" "$ROOT/tools/setup_env.sh" | sha256sum | cut -d' ' -f1
}
STAMP="$VENV/.mmsupertickets-setup"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(inputs_hash)" ]; then
  echo "setup: $VENV is up to date"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -c "$ROOT/requirements/constraints.txt")

"${PIP[@]}" -r "$ROOT/requirements/torch.txt"

if ! "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
  wheel=$(ls "$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl 2>/dev/null | head -n1 || true)
  if [ -n "$wheel" ]; then
    echo "setup: installing prebuilt $wheel"
    "$PY" -m pip install --disable-pip-version-check --no-deps --force-reinstall "$wheel"
  else
    # No prebuilt wheel: build mmcv with ops. torch>=2.10 headers need C++20;
    # -g0 cuts the build from over an hour to about 15 minutes on 2 cores.
    echo "setup: building mmcv $MMCV_VERSION from source (about 15 minutes on 2 cores)"
    build=$(mktemp -d)
    "$PY" -m pip download --disable-pip-version-check --no-deps --no-binary :all: -d "$build" "mmcv==$MMCV_VERSION"
    tar -xzf "$build"/mmcv-$MMCV_VERSION.tar.gz -C "$build"
    sed -i 's/-std=c++17/-std=c++20/g' "$build/mmcv-$MMCV_VERSION/setup.py"
    "${PIP[@]}" ninja wheel
    (cd "$build/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" CFLAGS="-g0 -O2" \
      "$PY" -m pip wheel --no-build-isolation --no-deps -w "$build/dist" .)
    "$PY" -m pip install --disable-pip-version-check --no-deps "$build"/dist/mmcv-*.whl
    rm -rf "$build"
  fi
fi

"${PIP[@]}" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"

# The binary xtcocotools wheel is built against numpy 1.x; build it here.
if ! "$PY" -c "import xtcocotools.coco" 2>/dev/null; then
  "$PY" -m pip install --disable-pip-version-check --no-binary xtcocotools --no-build-isolation \
    --force-reinstall --no-deps xtcocotools==1.14.3
fi
"$PY" -m pip install --disable-pip-version-check --no-deps mmpose==1.3.2
"$PY" -m pip install --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT"

"$PY" - <<'PYEOF'
import mmcv.ops, mmseg, mmpose.models, mmpretrain, xtcocotools.coco, torch
print('setup: torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmseg', mmseg.__version__)
PYEOF
inputs_hash > "$STAMP"
echo "setup: done ($VENV)"
