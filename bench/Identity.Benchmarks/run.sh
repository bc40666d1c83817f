#!/usr/bin/env bash
# Client-credentials tokens per second per core on loopback HTTP, with wrk as the concurrent load tool.
#
#   bench/Identity.Benchmarks/run.sh [seconds] [connections]      (defaults: 20 s measured, 32 connections)
#   BENCH_ONLY=shipped bench/Identity.Benchmarks/run.sh           one configuration only (or a list: "no-analyzer shipped")
#
# The service is pinned to CPU 0 (taskset) and wrk to CPU 1, so the service's rate is its rate on one core.
# Each configuration gets a fresh SQLite database, 30 s of warm-up (BENCH_WARMUP), then the measured run. Besides wrk's rate and
# latency, the service's own CPU time over the run is read from /proc: tokens per CPU-second is the per-core
# rate even when other work shares the machine (wrk's wall-clock rate then understates it). Configurations:
#   stock      OpenIddict defaults: a token row per token in SQLite, PBKDF2 client-secret check per request, RS256
#   +secrets   verified client secrets remembered as keyed digests (PBKDF2 once per process)
#   +es256     access tokens signed with ES256
#   shipped    + client-credentials access tokens without a token row, revocable through the revocation list
#   no-analyzer   shipped, with the AuditAnalyzer module off: no in-process copy of Identity's events, no scoring
#   no-scoring    shipped, with the analyzer's background scoring off: the in-process hand-off of every token's event alone
# no-analyzer, no-scoring and shipped side by side give the hand-off's and the scorer's shares of a token's cost.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/deps.sh
. "$root/scripts/lib/deps.sh"
seconds=${1:-20}
connections=${2:-32}
# Tiered compilation with dynamic PGO needs tens of seconds on one busy core to reach its final code
# (profiled with perf: methods were still being re-jitted 30 s in); measure the steady state a service runs in.
warmup=${BENCH_WARMUP:-30}
port=${BENCH_PORT:-5190}
[ "$(nproc)" -ge 2 ] || { echo "error: needs 2 CPUs (service on one, wrk on the other)" >&2; exit 1; }

deps_ensure_apt wrk
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
dotnet build src/Server -c Release -o "$root/artifacts/bench/server" -v q -nologo >/dev/null
work=$(mktemp -d /tmp/crm-identity-bench.XXXXXX)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# utime + stime of a process, in clock ticks (proc(5)): the service's own CPU, whatever else runs on the machine.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

run() {
  local name=$1; shift
  [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $name "* ]] || return 0
  rm -rf "$work/db" && mkdir -p "$work/db"
  env "$@" \
    ASPNETCORE_ENVIRONMENT=Benchmark DOTNET_ENVIRONMENT=Benchmark Modules__Crypto__Enabled=false \
    Identity__DemoMode=true Identity__AllowHttp=true \
    Identity__Throttling__TokenPerIpPerSecond=1000000 Identity__Throttling__TokenPerClientPerSecond=1000000 \
    Database__Provider=Sqlite "Database__ConnectionString=Data Source=$work/db/security.db" \
    taskset -c 0 dotnet "$root/artifacts/bench/server/CrmSecurity.Server.dll" --urls "http://127.0.0.1:$port" >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/health/live" >/dev/null 2>&1 && break
    sleep 0.2
  done
  taskset -c 1 wrk -t1 -c"$connections" -d"${warmup}s" -s bench/Identity.Benchmarks/client-credentials.lua "http://127.0.0.1:$port/connect/token" >/dev/null
  local result cpu_before cpu_after
  cpu_before=$(cpu_ticks "$server_pid")
  result=$(taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" -s bench/Identity.Benchmarks/client-credentials.lua "http://127.0.0.1:$port/connect/token" | grep '^RESULT')
  cpu_after=$(cpu_ticks "$server_pid")
  local ok cpu_seconds per_cpu_second
  ok=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$result")
  cpu_seconds=$(awk -v a="$cpu_before" -v b="$cpu_after" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')
  per_cpu_second=$(awk -v n="$ok" -v s="$cpu_seconds" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
  local rows
  rows=$(sqlite3 "$work/db/security.db" "select count(*) from OpenIddictTokens" 2>/dev/null || echo "?")
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
  printf '%-9s %s service_cpu_s=%s tokens_per_cpu_second=%s token_rows=%s\n' "$name" "${result#RESULT }" "$cpu_seconds" "$per_cpu_second" "$rows"
}

echo "wrk $(wrk -v 2>&1 | head -n1 | awk '{print $2}'), 1 thread, $connections connections, ${seconds}s after ${warmup}s warm-up; service on CPU 0, wrk on CPU 1"
run stock \
  Identity__Performance__ClientCredentialsTokenStorage=Database Identity__Performance__CacheVerifiedClientSecrets=false Identity__SigningKeys__AccessTokenAlgorithm=RS256
run +secrets \
  Identity__Performance__ClientCredentialsTokenStorage=Database Identity__Performance__CacheVerifiedClientSecrets=true Identity__SigningKeys__AccessTokenAlgorithm=RS256
run +es256 \
  Identity__Performance__ClientCredentialsTokenStorage=Database Identity__Performance__CacheVerifiedClientSecrets=true Identity__SigningKeys__AccessTokenAlgorithm=ES256
run shipped \
  Identity__Performance__ClientCredentialsTokenStorage=RevocationList Identity__Performance__CacheVerifiedClientSecrets=true Identity__SigningKeys__AccessTokenAlgorithm=ES256
run no-analyzer Modules__AuditAnalyzer__Enabled=false \
  Identity__Performance__ClientCredentialsTokenStorage=RevocationList Identity__Performance__CacheVerifiedClientSecrets=true Identity__SigningKeys__AccessTokenAlgorithm=ES256
run no-scoring AuditAnalyzer__Live__Scoring=false \
  Identity__Performance__ClientCredentialsTokenStorage=RevocationList Identity__Performance__CacheVerifiedClientSecrets=true Identity__SigningKeys__AccessTokenAlgorithm=ES256
