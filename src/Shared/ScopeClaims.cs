using System.Security.Claims;

namespace CrmSecurity.Shared;

// The one check of the scopes an OAuth access token grants, for every bearer API of the service. A linked source file
// compiled into each module that needs it (internal there), so no module references another.
internal static class ScopeClaims
{
    // The access token claim that carries the granted scopes (RFC 8693 §4.2, RFC 9068 §2.2.3).
    public const string Claim = "scope";

    // Whether the token's one scope claim holds scope. RFC 8693 §4.2 (which RFC 9068 §2.2.3
    // uses): the claim is a single JSON string of space-delimited values; RFC 6749 §3.3: the values are case-sensitive.
    // A token carrying the claim more than once (an array) is not in that form and grants nothing; scp is not read.
    public static bool HasScope(ClaimsPrincipal principal, string scope)
    {
        ArgumentNullException.ThrowIfNull(principal);
        string? value = null;
        foreach (var claim in principal.FindAll(Claim))
        {
            if (value is not null)
            {
                return false; // RFC 8693 §4.2: one string, not several values
            }

            value = claim.Value;
        }

        // RFC 6749 §3.3: space-delimited, case-sensitive (ordinal) values.
        return value is not null && value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(scope, StringComparer.Ordinal);
    }
}
