// The official OpenAI client (npm package `openai`) talks to `wand serve` running the shipped
// model: list models, chat and completions, streamed and not, prompt scoring (echo, logprobs),
// and the client's own error types for an unknown model and bad requests.
// Usage: node openai_client.test.mjs WAND_BINARY MODEL.gguf   (exit 77: the package is missing)
import { spawn } from "node:child_process";
import assert from "node:assert/strict";

let OpenAI;
try {
  ({ default: OpenAI } = await import("openai"));
} catch {
  console.error("SKIP: the `openai` npm package is not installed (scripts/setup.sh runs npm ci in tests/node)");
  process.exit(77);
}

const [wand, model] = process.argv.slice(2);
const server = spawn(wand, ["serve", "--model", `local:${model}`, "--port", "0", "--threads", "2"], {
  stdio: ["ignore", "ignore", "pipe"],
});
const stopServer = () => server.exitCode === null && server.kill("SIGTERM");
process.on("exit", stopServer);

// The server prints its address on stderr once it listens.
const baseURL = await new Promise((resolve, reject) => {
  let err = "";
  const timer = setTimeout(() => reject(new Error(`wand serve did not start: ${err}`)), 30000);
  server.stderr.on("data", (d) => {
    err += d;
    const m = err.match(/at (http:\/\/127\.0\.0\.1:\d+\/v1)/);
    if (m) {
      clearTimeout(timer);
      resolve(m[1]);
    }
  });
  server.on("exit", (code) => reject(new Error(`wand serve exited with ${code}: ${err}`)));
});

const client = new OpenAI({ baseURL, apiKey: "not-needed", maxRetries: 0 });
const prompt = "Question: Ann has 5 pens and buys 7 more. How many pens does she have?\nProgram:\n";

const models = await client.models.list();
assert.deepEqual(models.data.map((m) => m.id), ["wand-pot"]);

const completion = await client.completions.create({ model: "wand-pot", prompt, max_tokens: 48, stop: ["\n\n"], temperature: 0 });
const text = completion.choices[0].text;
assert.match(text, /answer =/);
assert.ok(completion.usage.completion_tokens > 0 && completion.usage.prompt_tokens > 0);

// Streamed pieces add up to the same greedy text.
let streamed = "";
for await (const chunk of await client.completions.create({ model: "wand-pot", prompt, max_tokens: 48, stop: ["\n\n"], temperature: 0, stream: true }))
  streamed += chunk.choices[0]?.text ?? "";
assert.equal(streamed, text);

const chat = await client.chat.completions.create({
  model: "wand-pot",
  messages: [{ role: "user", content: "Ann has 5 pens." }],
  max_tokens: 12,
  n: 2,
  temperature: 1,
  seed: 3,
});
assert.equal(chat.object, "chat.completion");
assert.equal(chat.choices.length, 2);
for (const c of chat.choices) {
  assert.equal(c.message.role, "assistant");
  assert.equal(typeof c.message.content, "string");
}

let chatStreamed = "", usage = null, finish = null;
const stream = await client.chat.completions.create({
  model: "wand-pot",
  messages: [{ role: "user", content: "Ann has 5 pens." }],
  max_tokens: 12,
  temperature: 0,
  stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    chatStreamed += c.delta?.content ?? "";
    finish = c.finish_reason ?? finish;
  }
}
assert.ok(chatStreamed.length > 0);
assert.ok(["stop", "length"].includes(finish));
assert.ok(usage && usage.completion_tokens > 0 && usage.completion_tokens <= 12);

// Scoring a prompt as lm-evaluation-harness does: echo, no generation, one alternative per position.
const scored = await client.completions.create({ model: "wand-pot", prompt, echo: true, max_tokens: 0, logprobs: 1 });
const lp = scored.choices[0].logprobs;
assert.equal(scored.choices[0].text, prompt);
assert.equal(lp.tokens.join(""), prompt);
assert.equal(lp.token_logprobs[0], null);
assert.ok(lp.token_logprobs.slice(1).every((x) => x <= 0));
assert.ok(lp.top_logprobs.slice(1).every((top) => Object.keys(top).length === 1));

const withLogprobs = await client.chat.completions.create({
  model: "wand-pot",
  messages: [{ role: "user", content: "Ann has 5 pens." }],
  max_tokens: 6,
  temperature: 0,
  logprobs: true,
  top_logprobs: 2,
});
for (const t of withLogprobs.choices[0].logprobs.content) assert.equal(t.top_logprobs.length, 2);

await assert.rejects(
  client.completions.create({ model: "wand-pot", prompt: "7 ".repeat(300) }),
  (e) => e instanceof OpenAI.BadRequestError && e.code === "context_length_exceeded",
);
await assert.rejects(
  client.chat.completions.create({ model: "wand-pot", messages: [{ role: "user" }] }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === "messages[0].content",
);
await assert.rejects(
  client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }),
  (e) => e instanceof OpenAI.NotFoundError && /does not exist/.test(e.message),
);
await assert.rejects(
  client.completions.create({ model: "wand-pot", prompt, max_tokens: -1 }),
  (e) => e instanceof OpenAI.BadRequestError && /max_tokens/.test(e.message),
);

stopServer();
console.log(`ok: the openai npm client (models, completions, chat, streaming, logprobs, errors) against ${baseURL}`);
process.exit(0); // do not wait for the HTTP agent's idle sockets
