#!/usr/bin/env bash
# Installs what wand needs from Debian's packages (only what is missing) and builds it.
# Usage: scripts/setup.sh [build-dir]     (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libseccomp-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libicu-dev libtorch-dev libcurl4-openssl-dev libssl-dev libcpp-httplib-dev libsqlite3-dev clang libclang-rt-14-dev
  python3 python3-numpy python3-sympy nodejs bubblewrap
  # The Python module (src/python): pybind11 and the interpreter's headers.
  pybind11-dev python3-dev
  # An optimized libblas.so.3 for libtorch's and numpy's fp32 matmuls (Debian's default is the
  # reference BLAS: wand-train ran 4x slower on it).
  libopenblas0-pthread
  # A run store shared by many workers (--store postgresql://...): libpq, and the server the
  # store's tests start; Slurm and munge for the job-array test (deploy/slurm).
  libpq-dev postgresql slurm-wlm munge
  # The load-balancer test and the soak run (deploy/): nginx in front of workers, wrk for load,
  # python3-yaml to check the Kubernetes manifests.
  nginx wrk python3-yaml
)
# npm comes with some Node.js builds; Debian ships it as its own package.
command -v npm >/dev/null || PACKAGES+=(npm)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The official OpenAI client, for the test that talks to `wand serve` (pinned in package-lock.json).
if [ ! -d tests/node/node_modules/openai ]; then
  npm ci --prefix tests/node --no-audit --no-fund --loglevel=error >/dev/null
fi
# The official MCP servers, TypeScript SDK and conformance suite, for the MCP tests (tests/mcp).
if [ ! -d tests/mcp/node_modules/@modelcontextprotocol/sdk ]; then
  npm ci --prefix tests/mcp --no-audit --no-fund --loglevel=error >/dev/null
fi

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)"

# `import wand` from this build (a wand.pth in the user's site-packages; README: Python).
scripts/python_path.sh "$BUILD"
