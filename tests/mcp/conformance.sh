#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
# package-lock.json) against wand: server scenarios against `wand mcp --http`, client scenarios
# against wand's MCP client (`wand tools list|call --mcp URL`, conformance_client.sh).
# Usage: conformance.sh WAND_BINARY [--all]   Exit 77: the package is not installed.
# Without --all it runs the scenarios wand passes (README: MCP) and fails if one fails; --all runs
# every scenario and prints which pass, for the README's table.
set -uo pipefail
cd "$(dirname "$0")"
WAND=$1
ALL=${2:-}
CONFORMANCE=node_modules/@modelcontextprotocol/conformance/dist/index.js
[ -f "$CONFORMANCE" ] || { echo "SKIP: npm ci --prefix tests/mcp has not been run" >&2; exit 77; }

SERVER_PASS=(server-initialize ping logging-set-level tools-list dns-rebinding-protection)
CLIENT_PASS=(initialize tools_call)

log=$(mktemp)
"$WAND" mcp --http 0 --cells 2 2>"$log" &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q "serving MCP at" "$log" && break; sleep 0.1; done
url=$(grep -o 'http://127.0.0.1:[0-9]*/mcp' "$log") || { echo "wand mcp --http did not start: $(cat "$log")" >&2; exit 1; }

if [ -n "$ALL" ]; then
  servers=$(node "$CONFORMANCE" list | sed -n '/^Server scenarios/,/^$/p' | sed -n 's/^  - //p')
  clients=$(node "$CONFORMANCE" list | sed -n '/^Client scenarios/,/^$/p' | sed -n 's/^  - //p' | grep -v '^auth/')
else
  servers=${SERVER_PASS[*]}
  clients=${CLIENT_PASS[*]}
fi
failed=0
for s in $servers; do
  if node "$CONFORMANCE" server --url "$url" --scenario "$s" >/tmp/conformance-$$.out 2>&1; then
    echo "pass  server $s"
  else
    echo "FAIL  server $s"; failed=1
    [ -z "$ALL" ] && tail -20 /tmp/conformance-$$.out
  fi
done
for s in $clients; do
  if WAND="$WAND" node "$CONFORMANCE" client --command "$PWD/conformance_client.sh" --scenario "$s" --timeout 60000 >/tmp/conformance-$$.out 2>&1; then
    echo "pass  client $s"
  else
    echo "FAIL  client $s"; failed=1
    [ -z "$ALL" ] && tail -20 /tmp/conformance-$$.out
  fi
done
rm -f /tmp/conformance-$$.out
[ -n "$ALL" ] || exit $failed
