#!/usr/bin/env bash
# Loopback load run of the encryption service (issue 16): 32-byte values through POST /crypto/v1/encrypt (one value
# per call), then through POST /crypto/v1/encrypt/batch (--batch values per call), in the same run against the same
# real service process (Release build, fresh SQLite database and keyring).
#
#   bench/LoadRun/run-crypto.sh [seconds] [clients] [batch]     defaults: 30 16 1000
#
# Prints requests and values per second and p50/p90/p99/max per operation; exits non-zero on any error. The load
# generator runs on the same cores as the service: divide by the cores of the machine for a per-core figure.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
seconds=${1:-30}
clients=${2:-16}
batch=${3:-1000}
port=${BENCH_PORT:-5193}

export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
dotnet build src/Server -c Release -o "$root/artifacts/bench/server" -v q -nologo >/dev/null
dotnet build bench/LoadRun -c Release -o "$root/artifacts/bench/loadrun" -v q -nologo >/dev/null
work=$(mktemp -d /tmp/crm-crypto-load-run.XXXXXX)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

secret=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
export ASPNETCORE_ENVIRONMENT=Benchmark DOTNET_ENVIRONMENT=Benchmark \
  CRM_SECURITY_MASTER_KEY="$(head -c 32 /dev/urandom | base64)" Crypto__KeyringPath="$work/keyring.json" \
  Crypto__AccessEventLog="$work/crypto-events.jsonl" \
  Database__Provider=Sqlite "Database__ConnectionString=Data Source=$work/security.db"
dotnet "$root/artifacts/bench/server/CrmSecurity.Server.dll" keys init >"$work/keys-init.log" 2>&1 || { cat "$work/keys-init.log" >&2; exit 1; }

env Modules__Crypto__Enabled=true Modules__AuditAnalyzer__Enabled=false Identity__AllowHttp=true \
  Identity__Throttling__TokenPerIpPerSecond=1000000 Identity__Throttling__TokenPerClientPerSecond=1000000 \
  Identity__Clients__0__ClientId=bench-crypto "Identity__Clients__0__ClientSecret=$secret" \
  Identity__Clients__0__GrantTypes__0=client_credentials Identity__Clients__0__Scopes__0=crypto:encrypt \
  Identity__Clients__0__Tenants__0=bench Crypto__Service__MaxBatchItems="$batch" \
  "Serilog__MinimumLevel__Default=Warning" \
  dotnet "$root/artifacts/bench/server/CrmSecurity.Server.dll" --urls "http://127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
  curl -fs "http://127.0.0.1:$port/health/live" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.2
done

# One after the other against the same server process, each with the whole machine: single values, then batches.
for ops in encrypt encrypt-batch; do
  dotnet "$root/artifacts/bench/loadrun/CrmSecurity.LoadRun.dll" --url "http://127.0.0.1:$port" \
    --clients "$clients" --seconds "$seconds" --warmup 5 --ops "$ops" --batch "$batch" \
    --client bench-crypto --secret "$secret" --tenant bench
done
