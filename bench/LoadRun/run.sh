#!/usr/bin/env bash
# Loopback load run: 200 concurrent clients mixing token requests, decision checks and event batches for 60 s
# against the real service (Release build, fresh SQLite database, demo data), with zero errors expected.
#
#   bench/LoadRun/run.sh [seconds] [clients] [operations]     defaults: 60 200 token,check,events
#
# Prints p50/p90/p99/max per operation and exits non-zero on any error. Throttling limits are raised for the
# run (they exist to stop one client hammering the service, which is what a load run does).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/deps.sh
. "$root/scripts/lib/deps.sh"
seconds=${1:-60}
clients=${2:-200}
ops=${3:-token,check,events}
port=${BENCH_PORT:-5191}

deps_ensure_apt sqlite3
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
dotnet build src/Server -c Release -o "$root/artifacts/bench/server" -v q -nologo >/dev/null
dotnet build bench/LoadRun -c Release -o "$root/artifacts/bench/loadrun" -v q -nologo >/dev/null
work=$(mktemp -d /tmp/crm-load-run.XXXXXX)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

env ASPNETCORE_ENVIRONMENT=Benchmark DOTNET_ENVIRONMENT=Benchmark Modules__Crypto__Enabled=false \
  Identity__DemoMode=true Identity__AllowHttp=true \
  Identity__Throttling__TokenPerIpPerSecond=1000000 Identity__Throttling__TokenPerClientPerSecond=1000000 \
  Database__Provider=Sqlite "Database__ConnectionString=Data Source=$work/security.db" \
  dotnet "$root/artifacts/bench/server/CrmSecurity.Server.dll" --urls "http://127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
  curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.2
done

# Decision checks are made for the demo sales rep.
user=$(sqlite3 "$work/security.db" "select Id from AspNetUsers where UserName = 'alice'")
dotnet "$root/artifacts/bench/loadrun/CrmSecurity.LoadRun.dll" --url "http://127.0.0.1:$port" \
  --clients "$clients" --seconds "$seconds" --warmup 10 --ops "$ops" --user "$user"
