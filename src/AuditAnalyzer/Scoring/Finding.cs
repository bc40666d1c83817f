using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Scoring;

/// <summary>
/// A scored, explained finding: the shape the JSON Lines output, the review queue and SIEM exports
/// share. The id is derived from user and window start, so re-scoring the same evidence gives the same id.
/// </summary>
internal sealed record Finding
{
    public required string Id { get; init; }

    public required string UserId { get; init; }

    public string? UserName { get; init; }

    public string? PeerGroup { get; init; }

    /// <summary>The detector of the strongest reason.</summary>
    public required string Detector { get; init; }

    public required IReadOnlyList<string> Detectors { get; init; }

    public required double Score { get; init; }

    public required Severity Severity { get; init; }

    public required DateTimeOffset WindowStart { get; init; }

    public required DateTimeOffset WindowEnd { get; init; }

    /// <summary>Event time at which the finding first reached medium severity (or its last signal if it never did).</summary>
    public required DateTimeOffset DetectedAt { get; init; }

    /// <summary>Strongest first.</summary>
    public required IReadOnlyList<Reason> Reasons { get; init; }

    public required IReadOnlyList<string> EventIds { get; init; }

    /// <summary>True when the user was in learning mode (too little own history) for any reason.</summary>
    public bool Learning { get; init; }

    /// <summary>True when several detectors contributed.</summary>
    public bool Correlated => Detectors.Count > 1;
}

/// <summary>A user's risk over the recent past: findings decayed by age (half-life 7 days) and combined.</summary>
internal sealed record UserRisk(string UserId, string? UserName, double Risk, int Findings, double TopScore, string TopReason);
