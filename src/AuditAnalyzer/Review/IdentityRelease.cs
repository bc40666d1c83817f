using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using CrmSecurity.AuditAnalyzer.Service;

namespace CrmSecurity.AuditAnalyzer.Review;

/// <summary>
/// Who may see real identities in bulk (the findings list, the export feed) and how a finding is shown either way.
/// The right is the one that lets a reviewer reveal one finding (<c>update</c> on <c>audit_finding</c>), asked for
/// explicitly (<c>identities=true</c>) with a reason, and audited per finding before the response is written.
/// </summary>
internal static class IdentityRelease
{
    public const int MaxReason = ReviewActions.MaxReason;

    /// <summary>The request header that carries the reason for a bulk release (percent-encoded where it is not ASCII).</summary>
    public const string ReasonHeader = "Reveal-Reason";

    /// <summary>
    /// The reason for a bulk release, from the <c>Reveal-Reason</c> header. A reason in the query string is refused:
    /// it names the case and often the person investigated, and URLs are written to proxy, load-balancer and browser
    /// logs the audit trail does not protect (OWASP ASVS 4.0.3 V8.3.1: no sensitive data in query strings).
    /// </summary>
    public static ReviewProblem? ReadReason(HttpRequest request, out string? reason)
    {
        reason = null;
        if (request.Query.ContainsKey("reason"))
        {
            return ReviewProblem.Invalid("reason", $"A reason in the URL is refused because URLs are logged along the way; send it in the {ReasonHeader} header (percent-encode characters outside ASCII).");
        }

        var values = request.Headers[ReasonHeader];
        if (values.Count > 1)
        {
            return ReviewProblem.Invalid("reason", $"Send one {ReasonHeader} header, not {values.Count}.");
        }

        reason = values.Count == 1 ? Uri.UnescapeDataString(values[0]!) : null;
        return null;
    }

    /// <summary>Null when the request may go on: either pseudonymous, or a release the caller may make with a reason.</summary>
    public static ReviewProblem? Check(ReviewCaller caller, bool release, string? reason)
    {
        if (!release)
        {
            return null;
        }

        if (caller.CannotReview is { } why)
        {
            return ReviewProblem.Forbidden($"Real identities are released only to callers who may reveal findings: {why} Leave out identities=true for pseudonymous findings.");
        }

        return string.IsNullOrWhiteSpace(reason) || reason.Trim().Length > MaxReason
            ? ReviewProblem.Invalid("reason", $"identities=true needs a reason of 1 to {MaxReason} characters in the {ReasonHeader} header; it goes into the audit trail with each released finding.")
            : null;
    }

    /// <summary>The row's pseudonym (rows stored before pseudonyms existed get it computed).</summary>
    public static string PseudonymOf(StoredFindingRow row, byte[] key) =>
        string.IsNullOrEmpty(row.Pseudonym) ? Pseudonyms.Of(key, row.UserId) : row.Pseudonym;

    /// <summary>The finding's JSON: pseudonymous, or (released) as stored with the pseudonym added as <c>user</c>.</summary>
    public static string Json(StoredFindingRow row, byte[] key, bool released, PeerGroupSizes groups)
    {
        var pseudonym = PseudonymOf(row, key);
        if (!released)
        {
            return PseudonymousView.FindingJson(row.Json, row.UserId, row.UserName, pseudonym, row.PeerGroup, key, groups);
        }

        var node = JsonNode.Parse(row.Json) as JsonObject ?? [];
        node["user"] = pseudonym;
        return node.ToJsonString();
    }
}
