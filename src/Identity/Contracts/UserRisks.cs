namespace CrmSecurity.Identity.Contracts;

/// <summary>
/// The access analyzer's current view of a user's risk, as decisions consult it: the riskiest finding about the user that
/// is still in effect. Supplied by the host (the analyzer module); without it no decision changes with risk.
/// </summary>
public interface IUserRisks
{
    /// <summary>The user's riskiest finding in effect, or null. Called on every decision: must not touch a database.</summary>
    UserRisk? Find(string userId);
}

/// <summary>A finding that may change what the user may do.</summary>
/// <param name="FindingId">The finding, as auditors see it in the review queue.</param>
/// <param name="Severity"><c>medium</c>, <c>high</c> or <c>critical</c>.</param>
/// <param name="Detector">What kind of finding (<c>bulk_export</c>, <c>odd_hours</c>, ...).</param>
/// <param name="TopReason">Its strongest reason, in words.</param>
/// <param name="DetectedAt">When it was detected.</param>
public sealed record UserRisk(string FindingId, string Severity, string Detector, string TopReason, DateTimeOffset DetectedAt);

/// <summary>No analyzer: nothing is ever in effect.</summary>
internal sealed class NoUserRisks : IUserRisks
{
    public UserRisk? Find(string userId) => null;
}
