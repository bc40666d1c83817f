-- wrk script: client-credentials token requests (RFC 6749 §4.4) with client_secret_basic.
-- Counts the answers by status so the run reports failures instead of hiding them in the rate.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
-- demo-crm:demo-crm-secret
wrk.headers["Authorization"] = "Basic ZGVtby1jcm06ZGVtby1jcm0tc2VjcmV0"
wrk.body = "grant_type=client_credentials&scope=crm.api"

local statuses = {}
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
  io.write(string.format("RESULT tokens_per_second=%.0f ok=%d non_200=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f socket_errors=%d\n",
    total_ok / seconds, total_ok, total_other,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
