#!/usr/bin/env bash
# Make .venv on a fresh Debian 12: the Debian packages QGIS needs, then pinned Python packages.
set -euo pipefail
cd "$(dirname "$0")/.."

debs="qgis python3-qgis python3-gdal python3-pyproj python3-matplotlib python3-scipy python3-venv"
missing=""
for p in $debs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "error: Debian packages missing:$missing" >&2
    echo "  fix: sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
  fi
  echo "installing Debian packages:$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

# xvfb only serves the real-desktop test, which skips (saying why) without it: a failed install must not stop the set-up.
if ! dpkg -s xvfb >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb >/dev/null; } \
    || echo "warning: could not install xvfb; the desktop test will be skipped (fix: apt-get install xvfb)" >&2
fi

[ -x .venv/bin/python ] || /usr/bin/python3 -m venv --system-site-packages .venv
.venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -r requirements.txt 2>&1 | grep -v "is ignored" || true
.venv/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import osgeo.gdal_array, qgis.core, osmium, shapely, numba, torch" \
  || { echo "error: the venv is incomplete (see the messages above)" >&2; exit 1; }
touch .venv/.installed
