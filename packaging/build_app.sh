#!/usr/bin/env bash
# Build the standalone lssviewer app (PyInstaller, one folder) and a tarball of it, then smoke-test it.
#
#   bash packaging/build_app.sh                    # -> dist/lssviewer/ and dist/lssviewer-VERSION-linux-x86_64.tar.gz
#   nice -n 15 bash packaging/build_app.sh         # on a shared machine
#
# Options:
#   --python PY             interpreter whose environment provides torch, Qt, ... (default: .venv/bin/python).
#                           For a CUDA build, point it at an environment with a CUDA torch (packaging/README.md).
#   --allow-missing-resources  build even when the shipped model or demo suite is missing (a development
#                           build; the smoke test then only checks that the window comes up)
#   --no-smoke              skip the smoke test (e.g. on a machine without Xvfb)
#   --no-tarball            skip the tarball
#
# Steps: wheel (pip wheel of a clean copy, no network) -> private install (pip install --target
# build/app/site) -> PyInstaller (packaging/lssviewer.spec) -> .desktop entry + icon + installer beside
# the binary -> smoke test under `xvfb-run -a` with an EMPTY environment (no PYTHONPATH, no venv on PATH:
# only the app folder) -> tarball.
# Prints the build time and sizes at the end, and writes them to dist/lssviewer-build.json.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

PY=.venv/bin/python
ALLOW_MISSING=0
SMOKE=1
TARBALL=1
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PY=$2; shift 2 ;;
    --allow-missing-resources) ALLOW_MISSING=1; shift ;;
    --no-smoke) SMOKE=0; shift ;;
    --no-tarball) TARBALL=0; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "build_app: unknown option $1" >&2; exit 2 ;;
  esac
done

case "$PY" in /*) ;; *) PY="$REPO/$PY" ;; esac  # some steps run in subdirectories

say() { echo "build_app: $*"; }
die() { echo "build_app: error: $*" >&2; exit 1; }

[ -x "$PY" ] || command -v "$PY" >/dev/null 2>&1 || die "no Python at $PY (run packaging/setup.sh, or pass --python)"
"$PY" -c "import PyInstaller" 2>/dev/null || die "PyInstaller is missing: $PY -m pip install pyinstaller"
VERSION=$("$PY" -c "import re,sys; print(re.search(r'^__version__\s*=\s*[\"\']([^\"\']+)', open('lssviewer/_version.py').read(), re.M)[1])")
PLATFORM=$("$PY" -c "import platform,sys; print({'linux':'linux','darwin':'macos','win32':'windows'}.get(sys.platform, sys.platform) + '-' + platform.machine().lower())")

for need in "models/default/model.json:built-in model (resources/models/default)" "demo/demo_suite.h5:demo suite (resources/demo/demo_suite.h5)"; do
  if [ ! -f "resources/${need%%:*}" ]; then
    if [ "$ALLOW_MISSING" = 1 ]; then say "warning: the ${need#*:} is missing: development build"
    else die "the ${need#*:} is missing (pass --allow-missing-resources for a development build)"; fi
  fi
done

START=$(date +%s)
WORK=build/app
rm -rf "$WORK" dist/lssviewer dist/lssviewer.app
mkdir -p "$WORK" dist

say "1/5 wheel"
# Built from a clean copy: an in-tree build would leave build/lib behind, whose stale files setuptools
# puts into later wheels.
mkdir -p "$WORK/src"
cp pyproject.toml README.md "$WORK/src/"
for d in lssviewer resources; do
  tar --exclude=__pycache__ --exclude='*.pyc' --exclude='*.nbi' --exclude='*.nbc' -cf - "$d" | tar -C "$WORK/src" -xf -
done
(cd "$WORK/src" && "$PY" -m pip wheel . --no-deps --no-build-isolation --no-index -q -w ../wheel)
WHEEL=$(ls "$WORK"/wheel/lssviewer-"$VERSION"-*.whl)

say "2/5 private install of $(basename "$WHEEL")"
"$PY" -m pip install --no-deps --no-index -q --target "$WORK/site" "$WHEEL"

say "3/5 PyInstaller (several minutes)"
T0=$(date +%s)
LSSVIEWER_PYI_SITE="$REPO/$WORK/site" PYTHONPATH="$REPO/$WORK/site" \
  "$PY" -m PyInstaller packaging/lssviewer.spec --noconfirm --log-level WARN \
  --distpath dist --workpath "$WORK/pyinstaller"
PYI_S=$(( $(date +%s) - T0 ))
APP=dist/lssviewer
BIN=$APP/lssviewer
[ -x "$BIN" ] || [ -x "$BIN.exe" ] || die "PyInstaller produced no $BIN"

say "4/5 desktop entry and icon"
cp resources/lssviewer.desktop "$APP/lssviewer.desktop"
cp resources/icon/lssviewer.png "$APP/lssviewer.png"
cp packaging/install_desktop_entry.sh "$APP/install-desktop-entry.sh"
chmod +x "$APP/install-desktop-entry.sh"

SMOKE_LINE="not run"
if [ "$SMOKE" = 1 ]; then
  say "5/5 smoke test (xvfb-run, empty environment)"
  command -v xvfb-run >/dev/null || die "xvfb-run is missing (apt-get install xvfb xauth), or pass --no-smoke"
  "$BIN" --version | grep -qx "lssviewer $VERSION" || die "'$BIN --version' does not print 'lssviewer $VERSION'"
  HOME_TMP=$(mktemp -d)
  REQUIRE="model,demo"; [ "$ALLOW_MISSING" = 1 ] && REQUIRE=""
  set +e
  OUT=$(cd "$HOME_TMP" && env -i PATH=/usr/bin:/bin HOME="$HOME_TMP" XDG_CONFIG_HOME="$HOME_TMP/config" \
        LANG=C.UTF-8 LSSVIEWER_SMOKE_TEST=1 LSSVIEWER_SMOKE_REQUIRE="$REQUIRE" LSSVIEWER_SMOKE_TIMEOUT=300 \
        LSSVIEWER_SMOKE_SCREENSHOT="$REPO/$WORK/smoke.png" \
        timeout 420 xvfb-run -a -s "-screen 0 1600x1000x24" "$REPO/$BIN" 2>"$REPO/$WORK/smoke.stderr")
  RC=$?
  set -e
  rm -rf "$HOME_TMP"
  echo "$OUT"
  SMOKE_LINE=$(echo "$OUT" | grep '^lssviewer smoke test:' | tail -1)
  if [ $RC -ne 0 ] || ! echo "$SMOKE_LINE" | grep -q ': OK '; then
    tail -20 "$WORK/smoke.stderr" >&2
    die "smoke test failed (exit status $RC; stderr in $WORK/smoke.stderr)"
  fi
  echo "$SMOKE_LINE" | grep -q "package $REPO/$APP/" || die "the smoke test did not run the frozen copy: $SMOKE_LINE"
  VTK_WANT=$(cd "$WORK" && PYTHONPATH="$REPO/packaging" "$PY" -c \
    "from lssviewer_app import vtk_classes_resolved as f; print('%d/%d' % f())")
  echo "$SMOKE_LINE" | grep -q "vtk classes $VTK_WANT;" \
    || die "the app resolves fewer of PyVista's VTK classes than the build environment ($VTK_WANT): $SMOKE_LINE"
  say "smoke test passed (screenshot: $WORK/smoke.png)"
fi

TAR=""
if [ "$TARBALL" = 1 ]; then
  TAR=dist/lssviewer-$VERSION-$PLATFORM.tar.gz
  say "tarball $TAR"
  tar -C dist -czf "$TAR" lssviewer
fi

TOTAL_S=$(( $(date +%s) - START ))
APP_MB=$(du -sm "$APP" | cut -f1)
TAR_MB=$([ -n "$TAR" ] && du -sm "$TAR" | cut -f1 || echo null)
FILES=$(find "$APP" -type f | wc -l)
"$PY" - "$VERSION" "$PLATFORM" "$TOTAL_S" "$PYI_S" "$APP_MB" "$TAR_MB" "$FILES" "$SMOKE_LINE" <<'EOF'
import json, sys
v, plat, total, pyi, app, tar, files, smoke = sys.argv[1:]
info = {"version": v, "platform": plat, "build_seconds": int(total), "pyinstaller_seconds": int(pyi),
        "app_folder_MiB": int(app), "tarball_MiB": None if tar == "null" else int(tar), "files": int(files),
        "smoke_test": smoke}
json.dump(info, open("dist/lssviewer-build.json", "w"), indent=2)
print(f"build_app: done in {int(total) / 60:.1f} min (PyInstaller {int(pyi) / 60:.1f} min); "
      f"dist/lssviewer {app} MiB in {files} files; tarball {tar} MiB")
EOF
echo "build_app: top of the app folder by size:"
du -sm "$APP"/_internal/* 2>/dev/null | sort -rn | head -12
