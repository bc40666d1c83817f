-- wrk script for the decision API load run (run-http.sh). BENCH_PATH "check": POST /authz/v1/check for the user in
-- BENCH_USER with the bearer token in BENCH_TOKEN; "empty": GET of the path given to wrk (an empty endpoint).
-- Counts answers by status so failures are reported instead of hidden in the rate.
local mode = os.getenv("BENCH_MODE") or "empty"
if mode == "check" then
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  wrk.body = '{"user_id":"' .. os.getenv("BENCH_USER") .. '","entity":"contact","action":"update",' ..
    '"record":{"id":"c-42","owner":"someone-else","business_unit":"sales-west"}}'
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  other = 0
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local total_ok, total_other = 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_other = total_other + thread:get("other")
  end
  local seconds = summary.duration / 1e6
  io.write(string.format("RESULT requests_per_second=%.0f ok=%d non_200=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.2f socket_errors=%d\n",
    total_ok / seconds, total_ok, total_other,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
