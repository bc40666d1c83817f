#!/usr/bin/env bash
# Loopback HTTP latency of the decision API's check endpoint next to an empty endpoint, in the same run, with wrk.
#
#   bench/Authorization.Benchmarks/run-http.sh [seconds] [connections...]     (defaults: 15 s, connections 1 and 16)
#
# The real host (Release build, demo mode, SQLite) is pinned to CPU 0 (taskset) and wrk to CPU 1. For each
# connection count: warm-up of both endpoints (BENCH_WARMUP seconds, default 20), then empty and check measured
# alternately, twice each. Empty endpoint: GET /health/live (routing, no authentication, no body). Check: POST
# /authz/v1/check with a client-credentials token (scope authz.decide): JwtBearer validation (ES256 signature),
# the scope policy, JSON body, the decision and its explanation. The demo model is small (9 users); the size of the
# model does not enter an HTTP decision beyond the in-process cost measured by the BenchmarkDotNet run.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/deps.sh
. "$root/scripts/lib/deps.sh"
seconds=${1:-15}
shift || true
connections=("${@:-1 16}")
read -r -a connections <<<"${connections[*]}"
warmup=${BENCH_WARMUP:-20}
port=${BENCH_PORT:-5191}
[ "$(nproc)" -ge 2 ] || { echo "error: needs 2 CPUs (service on one, wrk on the other)" >&2; exit 1; }

deps_ensure_apt wrk sqlite3
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
dotnet build src/Server -c Release -o "$root/artifacts/bench/authz-server" -v q -nologo >/dev/null
work=$(mktemp -d /tmp/crm-authz-bench.XXXXXX)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

ASPNETCORE_ENVIRONMENT=Benchmark DOTNET_ENVIRONMENT=Benchmark Modules__Crypto__Enabled=false \
  Identity__DemoMode=true Identity__AllowHttp=true \
  Identity__Throttling__TokenPerIpPerSecond=1000000 Identity__Throttling__TokenPerClientPerSecond=1000000 \
  Serilog__MinimumLevel__Default=Warning \
  Database__Provider=Sqlite Database__ConnectionString="Data Source=$work/security.db" \
  taskset -c 0 dotnet "$root/artifacts/bench/authz-server/CrmSecurity.Server.dll" --urls "http://127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
  curl -fs "http://127.0.0.1:$port/health/live" >/dev/null 2>&1 && break
  sleep 0.2
done

token=$(curl -fs -u demo-crm:demo-crm-secret -d grant_type=client_credentials -d scope=authz.decide "http://127.0.0.1:$port/connect/token" \
  | sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p')
[ -n "$token" ] || { echo "error: no token for scope authz.decide" >&2; exit 1; }
user=$(sqlite3 "$work/security.db" "select Id from AspNetUsers where UserName = 'alice'")
[ -n "$user" ] || { echo "error: demo user alice not found" >&2; exit 1; }
export BENCH_TOKEN=$token BENCH_USER=$user
curl -fs -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d "{\"user_id\":\"$user\",\"entity\":\"contact\",\"action\":\"update\",\"record\":{\"id\":\"c-42\",\"owner\":\"someone-else\",\"business_unit\":\"sales-west\"}}" \
  "http://127.0.0.1:$port/authz/v1/check" | sed 's/^/check answer: /' | cut -c1-200
echo

measure() { # mode connections duration
  local path=/health/live
  [ "$1" = check ] && path=/authz/v1/check
  BENCH_MODE=$1 taskset -c 1 wrk -t1 -c"$2" -d"$3s" -s bench/Authorization.Benchmarks/decision.lua "http://127.0.0.1:$port$path" | grep '^RESULT' || true
}

echo "wrk $(wrk -v 2>&1 | head -n1 | awk '{print $2}'), 1 thread, ${seconds}s per measurement after ${warmup}s warm-up; service on CPU 0, wrk on CPU 1"
for c in "${connections[@]}"; do
  measure empty "$c" "$warmup" >/dev/null
  measure check "$c" "$warmup" >/dev/null
  for round in 1 2; do
    printf 'c=%-3s round %s empty %s\n' "$c" "$round" "$(measure empty "$c" "$seconds" | sed 's/^RESULT //')"
    printf 'c=%-3s round %s check %s\n' "$c" "$round" "$(measure check "$c" "$seconds" | sed 's/^RESULT //')"
  done
done
