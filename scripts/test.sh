#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine that has only the .NET SDK.
#
#   ./scripts/test.sh                         every test project
#   ./scripts/test.sh --project tests/X.Tests  arguments are passed on to `dotnet test`
#
# It installs what the tests need when it is missing (apt: PostgreSQL, SoftHSM2, Authlib, chromium for browser tests; npm packages of interop
# tests from their package-lock.json), starts a throw-away
# PostgreSQL on 127.0.0.1, runs the tests, stops what it started, and ends with the line
# `tests: N passed, N failed[, N skipped]` computed from the TRX result files.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/deps.sh
. "$root/scripts/lib/deps.sh"
# shellcheck source=scripts/lib/postgres.sh
. "$root/scripts/lib/postgres.sh"

export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

work=$(mktemp -d /tmp/crm-security-tests.XXXXXX)
results="$root/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"

cleanup() {
  postgres_stop || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== dependencies"
deps_ensure_apt postgresql softhsm2
# Authlib: a third-party private_key_jwt client (tests/Identity.Tests/Interop/authlib); openssl for the key commands of docs/identity.md ("Keys instead of a secret").
deps_ensure_apt python3-authlib python3-requests python3-cryptography openssl

echo "== PostgreSQL"
postgres_start
export CRM_SECURITY_TEST_POSTGRES="Host=127.0.0.1;Port=$POSTGRES_PORT;Username=postgres;Include Error Detail=true"
echo "PostgreSQL $(postgres_version) on 127.0.0.1:$POSTGRES_PORT (data in $POSTGRES_DIR)"

echo "== SoftHSM2"
# A private token directory: tests initialise their own tokens in it and nothing outlives the run.
mkdir -p "$work/softhsm/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/softhsm/tokens" > "$work/softhsm/softhsm2.conf"
export SOFTHSM2_CONF="$work/softhsm/softhsm2.conf"
export CRM_SECURITY_TEST_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so
echo "module $CRM_SECURITY_TEST_PKCS11_MODULE, tokens in $work/softhsm/tokens"

echo "== Chromium (browser tests)"
# tests/EndToEnd.Tests drive Debian's chromium through Microsoft.Playwright (its own browser download does not work
# here). Installed only when the browser tests run: all projects, or a --project naming them.
case " $* " in
  *EndToEnd*|"  ") deps_ensure_apt chromium; export CRM_SECURITY_TEST_CHROMIUM=/usr/bin/chromium; echo "chromium at $CRM_SECURITY_TEST_CHROMIUM" ;;
  *) echo "skipped (no browser tests in this run)" ;;
esac

echo "== npm packages (interop tests)"
# Identity's interop tests drive the service with openid-client from npm; package-lock.json pins the versions.
if ! command -v npm >/dev/null 2>&1; then
  deps_ensure_apt nodejs npm
fi
for folder in tests/*/Interop/*/; do
  [ -f "$folder/package-lock.json" ] || continue
  (cd "$folder" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || { echo "error: npm ci failed in $folder" >&2; exit 1; }
  echo "installed $(node -p "Object.keys(require('./${folder}package.json').dependencies).join(', ')") in $folder"
done

echo "== tests"
status=0
supply_chain=0 # the vulnerable-package check or the SBOM failed
# `dotnet test` refuses --solution together with --project (or another target).
own_target=0
for argument in "$@"; do
  case "$argument" in --project|--project=*|--solution|--solution=*|--directory|--directory=*|--test-modules|--test-modules=*) own_target=1 ;; esac
done
if [ "$own_target" -eq 1 ]; then
  dotnet test --report-xunit-trx --results-directory "$results" "$@" || status=$?
else
  # One build, then one run per project with its own TRX name: the runner's default name is a timestamp
  # to the second, so two projects finishing in the same second overwrote each other's results.
  if dotnet build Security.sln -nologo -clp:ErrorsOnly; then
    echo "== vulnerable packages"
    # Every package, direct and transitive, against the feed's advisory data: a known-vulnerable package fails the run
    # (it is counted as one failure below). When the advisory data cannot be read the run says so and goes on.
    if audit=$(dotnet list Security.sln package --vulnerable --include-transitive 2>&1); then
      if grep -q "has the following vulnerable packages" <<<"$audit"; then
        grep -E "has the following vulnerable packages|^ *>" <<<"$audit" >&2
        echo "error: vulnerable packages (see above); update them in Directory.Packages.props" >&2
        supply_chain=1
      else
        echo "none known ($(grep -c "has no vulnerable packages" <<<"$audit") projects checked)"
      fi
    else
      echo "warning: the vulnerability check could not run:" >&2
      tail -n 3 <<<"$audit" >&2
    fi
    echo "== software bill of materials"
    # What ships, for the bank's inventory (ASVS V14.2.5); a bill that cannot be made counts as one failure below.
    if ! scripts/sbom.sh "$(dirname "$results")/sbom"; then
      echo "error: the SBOM could not be made (scripts/sbom.sh)" >&2
      supply_chain=1
    fi
    while IFS= read -r project; do
      name=$(basename "$project" .csproj)
      dotnet test --project "$project" --no-build --report-xunit-trx --report-xunit-trx-filename "$name.trx" \
        --results-directory "$results" "$@" || status=$?
    done < <(find tests -name '*.Tests.csproj' | sort)
  else
    status=1
  fi
fi

# The summary comes from the TRX files, not from the runner's console output.
passed=0 failed=0 skipped=0 files=0
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  files=$((files + 1))
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  attr() { printf '%s' "$counters" | sed -n "s/.* $1=\"\\([0-9]*\\)\".*/\\1/p"; }
  passed=$((passed + $(attr passed)))
  failed=$((failed + $(attr failed) + $(attr error) + $(attr timeout) + $(attr aborted)))
  skipped=$((skipped + $(attr notExecuted)))
done

# A test project that produced no TRX (build failure, crashed test host) counts as one failure each.
projects=$(find tests -name '*.Tests.csproj' | wc -l)
if [ "$#" -eq 0 ] && [ "$files" -lt "$projects" ]; then
  missing=$((projects - files))
  echo "error: $missing of $projects test projects produced no results (build failure or crashed test host); counted as failures" >&2
  failed=$((failed + missing))
fi
if [ "$supply_chain" -ne 0 ]; then
  failed=$((failed + 1))
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "error: dotnet test exited with $status but no test failed; counted as one failure" >&2
  failed=1
fi

# Name every failed test, with the first lines of its message, so a CI log that keeps only its tail still says what
# broke and why (the TRX holds the whole story).
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$trx" <<'PY' || true
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
for result in ET.parse(sys.argv[1]).getroot().iterfind(".//t:UnitTestResult", ns):
    if result.get("outcome") in ("Failed", "Error", "Timeout", "Aborted"):
        message = result.findtext(".//t:ErrorInfo/t:Message", default="", namespaces=ns).strip().splitlines()
        print("FAILED " + result.get("testName", "?"))
        for line in message[:4]:
            print("    " + line[:300])
PY
  else
    grep -o '<UnitTestResult [^>]*outcome="\(Failed\|Error\|Timeout\|Aborted\)"[^>]*>' "$trx" \
      | sed -n 's/.*testName="\([^"]*\)".*/FAILED \1/p' || true
  fi
done

summary="tests: $passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
[ "$failed" -eq 0 ]
