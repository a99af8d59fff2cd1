#!/usr/bin/env bash
# Installs, builds and runs the whole test suite (see the README).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
cd build
ctest --output-on-failure --timeout 900 -j1 "$@"
