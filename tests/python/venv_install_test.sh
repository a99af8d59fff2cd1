#!/usr/bin/env bash
# The README's install into a user's own virtual environment, offline: a fresh venv, the package
# copied in by scripts/python_path.sh --venv, then `import wand` from the venv outside the
# repository with no PYTHONPATH. Exit 77 (skipped) where python3 cannot make a venv.
set -euo pipefail
src=$1 build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv --without-pip "$tmp/venv" >/dev/null 2>&1 || { echo "python3 cannot make a venv: skipped"; exit 77; }
unset PYTHONPATH
cd "$tmp"
"$src/scripts/python_path.sh" "$build" --venv venv  # relative: to where it is run, not to the repository
"$tmp/venv/bin/python" -c "
import wand, wand.rewards
assert wand.__file__.startswith('$tmp/venv'), wand.__file__
assert wand.Sandbox(cells=1, preload=()).run('print(6*7)').stdout == '42\n'
assert wand.rewards.compute_score('gsm8k', 'The answer is 42.', '42') == 1.0"
if "$src/scripts/python_path.sh" "$build" --venv "$tmp/none" 2>/dev/null; then echo "--venv without a venv was accepted"; exit 1; fi
