-- wrk script of the benchmark: POST the body file $BENCH_BODY to $BENCH_PATH with the
-- headers every variant gets, plus $BENCH_HEADERS ("name: value|name: value"); at the end
-- print one line "BENCH_JSON {...}" with the counts and latency percentiles (µs).
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
-- The client's own credential: replaced by the provider key by every gateway variant
-- (LiteLLM checks it as its master key).
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_CLIENT_KEY") or "sk-bench-client")
-- The route of envoy/demo.yaml routes by this header: plain Envoy needs it from the client,
-- the gateway (and the Lua filter) overwrite it.
wrk.headers["x-ai-gateway-cluster"] = "mock"
for pair in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^|]+") do
  local name, value = string.match(pair, "^%s*([^:]+):%s*(.-)%s*$")
  if name then
    wrk.headers[name] = value
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "stdev": %.1f, "min": %d, "max": %d, ' ..
    '"p50": %d, "p75": %d, "p90": %d, "p99": %d, "p99_9": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.min, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
