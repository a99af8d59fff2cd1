#!/usr/bin/env bash
# Installs, builds, checks the host, runs sample programs in the sandbox, and evaluates
# HumanEval's 164 reference solutions (from ../shared/data) in it.
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
echo
HE=../shared/data/humaneval/HumanEval.jsonl
if [ -f "$HE" ]; then
  echo "== HumanEval reference solutions, each isolated in the sandbox =="
  $W eval --dataset "$HE" --reference --k 1 --out build/humaneval-reference.jsonl
else
  echo "(skipping HumanEval: $HE not found; put the shared data beside the repository)"
fi
echo
echo "== a word problem, answered offline by wand's own model: it writes a program, the sandbox runs it =="
$W solve --show-program "A bakery bakes 6 trays of 12 cookies. It sells 20 cookies in the morning and 16 in the afternoon. The rest are packed in bags of 4. How many bags are filled?"
