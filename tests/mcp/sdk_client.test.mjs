// The official MCP TypeScript SDK's client (@modelcontextprotocol/sdk) against `wand mcp`, over
// stdio and over Streamable HTTP: the handshake, tools/list, each tool, bad arguments, an unknown
// tool, progress and log notifications, and the HTTP server's Origin check.
// Usage: node sdk_client.test.mjs WAND_BINARY   (exit 77: the packages are not installed)
import { spawn } from "node:child_process";
import assert from "node:assert/strict";

let Client, StdioClientTransport, StreamableHTTPClientTransport;
try {
  ({ Client } = await import("@modelcontextprotocol/sdk/client/index.js"));
  ({ StdioClientTransport } = await import("@modelcontextprotocol/sdk/client/stdio.js"));
  ({ StreamableHTTPClientTransport } = await import("@modelcontextprotocol/sdk/client/streamableHttp.js"));
} catch {
  console.error("SKIP: @modelcontextprotocol/sdk is not installed (scripts/setup.sh runs npm ci in tests/mcp)");
  process.exit(77);
}

const wand = process.argv[2];
const json = (result) => result.structuredContent;

async function exercise(client, label) {
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name), ["execute_code", "evaluate", "solve"], label);
  for (const t of tools) assert.equal(t.inputSchema.type, "object", `${label}: ${t.name}`);

  const run = await client.callTool({ name: "execute_code", arguments: { code: "print(6*7)" } });
  assert.equal(run.isError, false, label);
  assert.equal(json(run).status, "ok");
  assert.equal(json(run).stdout, "42\n");
  assert.equal(JSON.parse(run.content[0].text).stdout, "42\n");

  const c = await client.callTool({ name: "execute_code", arguments: { language: "c", code: "int main(){return 3;}" } });
  assert.equal(json(c).status, "runtime_error");
  assert.equal(json(c).exit_code, 3);

  const hostile = await client.callTool({ name: "execute_code", arguments: { code: "import socket\nsocket.create_connection(('1.1.1.1', 80), 2)" } });
  assert.equal(json(hostile).status, "runtime_error", "no network in the sandbox");

  const bad = await client.callTool({ name: "execute_code", arguments: { code: "print(1)", timeout: -1 } });
  assert.equal(bad.isError, true);
  assert.equal(bad.content[0].text, "execute_code: field 'timeout': must be a positive number of seconds up to 86400, got -1");

  const missing = await client.callTool({ name: "evaluate", arguments: { completion: "x" } });
  assert.equal(missing.isError, true);
  assert.equal(missing.content[0].text, "evaluate: missing required argument 'task'");

  const task = {
    task_id: "demo/0", prompt: "def add(a, b):\n", entry_point: "add", canonical_solution: "    return a + b\n",
    test: "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 4\n",
  };
  const pass = await client.callTool({ name: "evaluate", arguments: { task, completion: "    return a + b\n" } });
  assert.equal(json(pass).passed, true, JSON.stringify(pass));
  const fail = await client.callTool({ name: "evaluate", arguments: { task, completion: "    return a - b\n" } });
  assert.equal(json(fail).passed, false);
  assert.equal(json(fail).error_class, "wrong_answer");
  assert.match(json(fail).feedback, /expected 3, got -1/);
  // strict judges assert tasks only: for a word problem it is refused, not ignored.
  const word = { question: "What is 2 + 2?", answer: "#### 4" };
  const strict = await client.callTool({ name: "evaluate", arguments: { task: word, completion: "answer = 4\n", strict: true } });
  assert.equal(strict.isError, true);
  assert.equal(strict.content[0].text,
    "evaluate: argument 'strict': the task is a gsm8k task; strict is for assert tasks (HumanEval, MBPP)");

  await assert.rejects(client.callTool({ name: "no_such_tool", arguments: {} }), /Unknown tool: 'no_such_tool'/);

  // Progress for a call that asked for it.
  const progress = [];
  const solved = await client.callTool(
    { name: "solve", arguments: { question: "A bakery bakes 6 trays of 12 cookies. It sells 20 cookies in the morning and 16 in the afternoon. The rest are packed in bags of 4. How many bags are filled?" } },
    undefined,
    { onprogress: (p) => progress.push(p.progress), timeout: 120000 },
  );
  assert.equal(json(solved).answer, "9", JSON.stringify(solved));
  assert.match(json(solved).program, /answer/);
  // The SDK drops a notification it handles after the response (its handler is gone by then), so
  // the last one (1) may be missing.
  assert.equal(progress[0], 0, JSON.stringify(progress));
  assert.ok(progress.length >= 2 && progress.every((p) => p >= 0 && p <= 1), JSON.stringify(progress));

  // Log messages once a level is set.
  const logs = [];
  const { LoggingMessageNotificationSchema } = await import("@modelcontextprotocol/sdk/types.js");
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => logs.push(n.params.data));
  await client.setLoggingLevel("info");
  await client.callTool({ name: "execute_code", arguments: { code: "pass" } });
  assert.deepEqual(logs, ["execute_code started", "execute_code finished"], label);
  await client.setLoggingLevel("error");
  console.log(`ok - ${label}`);
}

// stdio: the client starts `wand mcp` itself.
{
  const client = new Client({ name: "sdk-test", version: "1.0.0" });
  await client.connect(new StdioClientTransport({ command: wand, args: ["mcp", "--cells", "2"] }));
  assert.equal(client.getServerVersion().name, "wand");
  await exercise(client, "stdio");
  await client.close();
}

// Streamable HTTP: `wand mcp --http 0` prints its address.
const server = spawn(wand, ["mcp", "--http", "0", "--cells", "2"], { stdio: ["ignore", "ignore", "pipe"] });
process.on("exit", () => server.exitCode === null && server.kill("SIGTERM"));
const url = await new Promise((resolve, reject) => {
  let err = "";
  const timer = setTimeout(() => reject(new Error(`wand mcp --http did not start: ${err}`)), 30000);
  server.stderr.on("data", (d) => {
    err += d;
    const m = err.match(/(http:\/\/127\.0\.0\.1:\d+\/mcp)/);
    if (m) {
      clearTimeout(timer);
      resolve(m[1]);
    }
  });
  server.on("exit", (code) => reject(new Error(`wand mcp --http exited with ${code}: ${err}`)));
});
{
  const client = new Client({ name: "sdk-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  await exercise(client, "streamable http");
  await client.close();
}
// A page on another origin (DNS rebinding) is refused.
const evil = await fetch(url, {
  method: "POST",
  headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream", Origin: "http://evil.example.com" },
  body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
});
assert.equal(evil.status, 403);
assert.equal((await fetch(url)).status, 405);
server.kill("SIGTERM");
console.log("ok - origin check");
