-- wrk script: POSTs one JSON body (WAND_BODY_FILE) and counts answers by class, so the test can
-- assert no 5xx (wrk itself only counts "non-2xx/3xx"). Prints one line at the end:
--   WAND ok=N client_errors=N server_errors=N p50_us=N p99_us=N rps=N socket_errors=N
local f = assert(io.open(os.getenv("WAND_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok, c4, c5 = 0, 0, 0 end
function response(status, headers, body)
  if status >= 500 then c5 = c5 + 1 elseif status >= 400 then c4 = c4 + 1 else ok = ok + 1 end
end
function done(summary, latency, requests)
  local t_ok, t4, t5 = 0, 0, 0
  for _, t in ipairs(threads) do
    t_ok = t_ok + t:get("ok"); t4 = t4 + t:get("c4"); t5 = t5 + t:get("c5")
  end
  local e = summary.errors
  io.write(string.format("WAND ok=%d client_errors=%d server_errors=%d p50_us=%d p99_us=%d rps=%.1f socket_errors=%d\n",
    t_ok, t4, t5, latency:percentile(50), latency:percentile(99), summary.requests / (summary.duration / 1e6),
    e.connect + e.read + e.write + e.timeout))
end
