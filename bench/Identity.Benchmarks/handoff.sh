#!/usr/bin/env bash
# Prices the in-process hand-off of Identity's access events to the analyzer (issue 17): client-credentials tokens per
# CPU-second of the service with the hand-off off and on, run ALTERNATELY (off, on, off, on, ...) so that both see the
# same minutes of a shared, noisy machine; then the medians, the spread and the ratio.
#
#   bench/Identity.Benchmarks/handoff.sh [pairs] [seconds] [connections]     (defaults: 4 pairs, 20 s measured, 32 connections)
#   BENCH_CONFIGS="off on noscore" ...     configurations per round (default "off on"); BENCH_WARMUP (default 30 s)
#
# Measured as bench/Identity.Benchmarks/run.sh's "shipped" configuration (service on CPU 0, wrk on CPU 1, fresh SQLite
# database, service CPU read from /proc), without the demo history (AuditAnalyzer:DemoHistory:Enabled=false), so the
# scorer's background work is only what the hand-off gives it:
#   off      AuditAnalyzer:IdentityEvents:Enabled=false: Identity's events are not copied to the analyzer
#   on       as shipped: every token's event is serialized, stored in the analyzer's table and scored
#   noscore  on, with the analyzer's background scoring off (AuditAnalyzer:Live:Scoring=false): the hand-off alone
#   before   on, run from another build (BENCH_BEFORE_DIR: a Release output of src/Server, e.g. of an earlier commit), to
#            compare two versions of the hand-off in the same minutes
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/deps.sh
. "$root/scripts/lib/deps.sh"
pairs=${1:-4}
seconds=${2:-20}
connections=${3:-32}
warmup=${BENCH_WARMUP:-30}
configs=${BENCH_CONFIGS:-off on}
port=${BENCH_PORT:-5192}
[ "$(nproc)" -ge 2 ] || { echo "error: needs 2 CPUs (service on one, wrk on the other)" >&2; exit 1; }

deps_ensure_apt wrk
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
server_dir=${BENCH_SERVER_DIR:-$root/artifacts/bench/handoff-server}
[ -n "${BENCH_NO_BUILD:-}" ] || dotnet build src/Server -c Release -o "$server_dir" -v q -nologo >/dev/null
work=$(mktemp -d /tmp/crm-handoff-bench.XXXXXX)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

run() {
  local name=$1
  local extra=() dir=$server_dir
  case "$name" in
    off) extra=(AuditAnalyzer__IdentityEvents__Enabled=false) ;;
    on) extra=() ;;
    noscore) extra=(AuditAnalyzer__Live__Scoring=false) ;;
    before) dir=${BENCH_BEFORE_DIR:?set BENCH_BEFORE_DIR to the other build}; extra=() ;;
    *) echo "error: unknown configuration '$name' (off, on, noscore, before)" >&2; exit 2 ;;
  esac
  rm -rf "$work/db" && mkdir -p "$work/db"
  env "${extra[@]}" \
    ASPNETCORE_ENVIRONMENT=Benchmark DOTNET_ENVIRONMENT=Benchmark Modules__Crypto__Enabled=false \
    Identity__DemoMode=true Identity__AllowHttp=true AuditAnalyzer__DemoHistory__Enabled=false \
    Identity__Throttling__TokenPerIpPerSecond=1000000 Identity__Throttling__TokenPerClientPerSecond=1000000 \
    Identity__Performance__ClientCredentialsTokenStorage=RevocationList Identity__Performance__CacheVerifiedClientSecrets=true \
    Identity__SigningKeys__AccessTokenAlgorithm=ES256 \
    Database__Provider=Sqlite "Database__ConnectionString=Data Source=$work/db/security.db" \
    taskset -c 0 dotnet "$dir/CrmSecurity.Server.dll" --urls "http://127.0.0.1:$port" >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$port/health/live" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.2
  done
  taskset -c 1 wrk -t1 -c"$connections" -d"${warmup}s" -s bench/Identity.Benchmarks/client-credentials.lua "http://127.0.0.1:$port/connect/token" >/dev/null
  local result cpu_before cpu_after load
  cpu_before=$(cpu_ticks "$server_pid")
  result=$(taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" -s bench/Identity.Benchmarks/client-credentials.lua "http://127.0.0.1:$port/connect/token" | grep '^RESULT')
  cpu_after=$(cpu_ticks "$server_pid")
  load=$(cut -d' ' -f1 /proc/loadavg)
  local ok cpu_seconds per_cpu_second rows
  ok=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$result")
  cpu_seconds=$(awk -v a="$cpu_before" -v b="$cpu_after" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')
  per_cpu_second=$(awk -v n="$ok" -v s="$cpu_seconds" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
  # Rows the analyzer stored under client "identity": zero with the hand-off off, one per token with it on.
  rows=$(sqlite3 "$work/db/security.db" "select count(*) from analyzer_live_events where client_id = 'identity'" 2>/dev/null || echo "?")
  printf '%s %-7s %s service_cpu_s=%s tokens_per_cpu_second=%s identity_rows=%s load1=%s\n' \
    "$(date -u +%H:%M:%S)" "$name" "${result#RESULT }" "$cpu_seconds" "$per_cpu_second" "$rows" "$load" | tee -a "$work/results"
}

deps_ensure_apt sqlite3
echo "wrk, 1 thread, $connections connections, ${seconds}s after ${warmup}s warm-up; service on CPU 0, wrk on CPU 1; $pairs rounds of: $configs"
for _ in $(seq 1 "$pairs"); do
  for config in $configs; do
    run "$config"
  done
done

echo "--- tokens per CPU-second: median (min-max) per configuration"
for config in $configs; do
  grep " $config " "$work/results" | sed -n 's/.*tokens_per_cpu_second=\([0-9]*\).*/\1/p' | sort -n | awk -v name="$config" '
    { v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%-7s median %.0f (%d-%d, n=%d)\n", name, m, v[1], v[NR], NR }'
done | tee "$work/summary"
off=$(awk '$1 == "off" { print $3 }' "$work/summary")
on=$(awk '$1 == "on" { print $3 }' "$work/summary")
if [ -n "$off" ] && [ -n "$on" ]; then
  awk -v off="$off" -v on="$on" 'BEGIN { printf "on/off = %.3f (the hand-off costs %.1f%% of token throughput per CPU-second)\n", on / off, (1 - on / off) * 100 }'
  # Per-round ratios: each "on" against the "off" run just before it (same minutes).
  awk '$2 == "off" { split($0, a, "tokens_per_cpu_second="); split(a[2], b, " "); off = b[1] }
       $2 == "on" && off { split($0, a, "tokens_per_cpu_second="); split(a[2], b, " "); printf "%s ", sprintf("%.3f", b[1] / off) }
       END { print "" }' "$work/results" | sed 's/^/per-round on\/off: /'
fi
