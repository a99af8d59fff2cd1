#!/usr/bin/env bash
# wand's MCP client as the conformance suite runs a client: the server's URL is the last
# argument, the scenario in $MCP_CONFORMANCE_SCENARIO; $WAND is the wand binary.
url=${!#}
case ${MCP_CONFORMANCE_SCENARIO:-} in
  tools_call) exec "$WAND" tools call add_numbers '{"a": 2, "b": 3}' --mcp "$url" ;;
  *) exec "$WAND" tools list --mcp "$url" ;;
esac
