#!/usr/bin/env bash
# Makes `import wand` find BUILD/python for Debian's python3 and for whichever python3 comes first
# on PATH (pyenv's, say): a wand.pth naming it in each one's user site-packages (both 3.11 share
# ~/.local/lib/python3.11/site-packages). An interpreter without a user site (a virtual
# environment) is left alone: there, `pip install --no-build-isolation src/python` (README).
# Usage: scripts/python_path.sh [build-dir]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$(cd "${1:-build}" && pwd)/python"
for py in /usr/bin/python3 "$(command -v python3 || true)"; do
  [ -n "$py" ] && [ -x "$py" ] || continue
  site=$("$py" -c 'import site, sys; sys.exit(0 if site.ENABLE_USER_SITE else 1)' 2>/dev/null &&
         "$py" -m site --user-site) || continue
  mkdir -p "$site" && echo "$dir" >"$site/wand.pth"
done
