#!/usr/bin/env bash
# The software bill of materials of what ships (OWASP ASVS 4.0.3 V14.2.5): every NuGet package the service runs with,
# direct and transitive, and the project's own libraries, as CycloneDX 1.6 JSON (artifacts/sbom/crm-security.cdx.json).
# Development-only packages (analyzers) and test projects are left out. Needs a restored src/Server (any build does it).
# Usage: scripts/sbom.sh [output-directory]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:-artifacts/sbom}"
dotnet tool restore >/dev/null
dotnet tool run dotnet-CycloneDX src/Server/Server.csproj --recursive --include-project-references --exclude-test-projects \
  --exclude-dev --disable-package-restore --spec-version 1.6 --set-name crm-security \
  --output "$out" --output-format Json --filename crm-security.cdx.json >/dev/null 2> >(grep -v "Consider removing --recursive" >&2)
bom="$out/crm-security.cdx.json"
components=$(grep -o '"bom-ref"' "$bom" | wc -l)
# A bill that misses the packages the security of the service rests on is not one.
for package in OpenIddict.Server Microsoft.AspNetCore.Identity.EntityFrameworkCore Microsoft.EntityFrameworkCore.Sqlite CrmSecurity.Crypto; do
  grep -q "\"name\": *\"$package\"" "$bom" || { echo "error: the SBOM $bom does not list $package" >&2; exit 1; }
done
echo "SBOM: $bom ($components components)"
