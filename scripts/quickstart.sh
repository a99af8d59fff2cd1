#!/usr/bin/env bash
# Installs, builds, checks the host and runs programs in the sandbox on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
W=build/src/cli/wand
$W doctor
echo
echo "== one Python program in the sandbox =="
$W exec examples/primes.py || true
echo
echo "== a batch in five languages, as JSON lines =="
$W exec --jsonl < examples/batch.jsonl
