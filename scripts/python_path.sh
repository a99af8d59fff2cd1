#!/usr/bin/env bash
# Makes `import wand` find the module built in BUILD/python.
#   scripts/python_path.sh [build-dir]              for Debian's python3 and whichever python3 comes
#       first on PATH (pyenv's, say): a wand.pth naming BUILD/python in each one's user
#       site-packages (the 3.11 ones share ~/.local/lib/python3.11/site-packages); an interpreter
#       without a user site (inside a virtual environment) is left alone. setup.sh runs this.
#   scripts/python_path.sh [build-dir] --venv DIR   copies the package into the virtual environment
#       DIR (its own site-packages; no network, no pip), so it keeps working without the build.
set -euo pipefail
caller=$PWD  # --venv DIR is where the caller means it, before the cd to the repository
cd "$(dirname "$0")/.."
build=build venv=
while (($#)); do
  case $1 in
    --venv) venv=${2:?--venv needs a directory}; [[ $venv = /* ]] || venv=$caller/$venv; shift 2 ;;
    *) build=$1; shift ;;
  esac
done
dir="$(cd "$build" && pwd)/python"
[ -f "$dir/wand/__init__.py" ] || { echo "python_path.sh: $dir/wand is not built (cmake --build $build --target wand_python)" >&2; exit 2; }
if [ -n "$venv" ]; then
  [ -x "$venv/bin/python" ] || { echo "python_path.sh: --venv $venv: no bin/python there" >&2; exit 2; }
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  rm -rf "$site/wand" && mkdir -p "$site/wand" && cp "$dir"/wand/*.py "$dir"/wand/_wand*.so "$site/wand/"
  echo "wand installed in $site/wand"
  exit 0
fi
for py in /usr/bin/python3 "$(command -v python3 || true)"; do
  [ -n "$py" ] && [ -x "$py" ] || continue
  site=$("$py" -c 'import site, sys; sys.exit(0 if site.ENABLE_USER_SITE else 1)' 2>/dev/null &&
         "$py" -m site --user-site) || continue
  mkdir -p "$site" && echo "$dir" >"$site/wand.pth"
done
