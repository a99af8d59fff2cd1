#!/usr/bin/env bash
# The README's offline install into a user's virtual environment: `pip install --no-build-isolation
# src/python` against the existing build (WAND_BUILD), then `import wand` from the venv, outside
# the repository, with no PYTHONPATH. Exit 77 (skipped) where python3 cannot make a venv with pip.
set -euo pipefail
src=$1 build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv" >/dev/null 2>&1 || { echo "no venv/ensurepip for python3: skipped"; exit 77; }
"$tmp/venv/bin/python" -c "import setuptools" 2>/dev/null || { echo "the venv has no setuptools: skipped"; exit 77; }
unset PYTHONPATH
WAND_BUILD=$build "$tmp/venv/bin/pip" install --no-build-isolation --no-index --quiet "$src/src/python"
cd "$tmp"
"$tmp/venv/bin/python" -c "
import wand, wand.rewards
assert wand.__file__.startswith('$tmp/venv'), wand.__file__
assert wand.Sandbox(cells=1, preload=()).run('print(6*7)').stdout == '42\n'
print('installed at', wand.__file__)"
