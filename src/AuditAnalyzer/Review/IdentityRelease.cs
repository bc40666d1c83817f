using System.Text.Json.Nodes;
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
            ? ReviewProblem.Invalid("reason", $"identities=true needs a reason of 1 to {MaxReason} characters; it goes into the audit trail with each released finding.")
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
