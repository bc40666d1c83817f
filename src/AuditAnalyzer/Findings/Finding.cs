using System.Text.Json.Serialization;
using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Findings;

/// <summary>
/// A scored, explained finding: the one model that scoring writes and the review queue, the exports and
/// <c>evaluate</c> read, through one JSON contract (<see cref="FindingJson"/>). The id is derived from user and window
/// start, so re-scoring the same evidence gives the same id. Numbers are held as they are shown (the score whole, a
/// reason's score to a tenth), so what a reviewer reads is what the severity was decided on.
/// </summary>
internal sealed record Finding
{
    [JsonPropertyOrder(0)]
    public required string Id { get; init; }

    [JsonPropertyOrder(1)]
    public required string UserId { get; init; }

    [JsonPropertyOrder(2)]
    public string? UserName { get; init; }

    [JsonPropertyOrder(3)]
    public string? PeerGroup { get; init; }

    /// <summary>The detector of the strongest reason.</summary>
    [JsonPropertyOrder(4)]
    public required string Detector { get; init; }

    [JsonPropertyOrder(5)]
    public required IReadOnlyList<string> Detectors { get; init; }

    /// <summary>
    /// 0-100, whole, rounded down: against whole severity thresholds (the policy's) a score rounded down has the same
    /// severity as before rounding, so a finding never shows "50" and "low" together.
    /// </summary>
    [JsonPropertyOrder(6)]
    public required double Score { get; init => field = Math.Floor(value); }

    [JsonPropertyOrder(7)]
    public required Severity Severity { get; init; }

    [JsonPropertyOrder(8)]
    public required DateTimeOffset WindowStart { get; init => field = value.ToUniversalTime(); }

    [JsonPropertyOrder(9)]
    public required DateTimeOffset WindowEnd { get; init => field = value.ToUniversalTime(); }

    /// <summary>Event time at which the finding first reached medium severity (or its last signal if it never did).</summary>
    [JsonPropertyOrder(10)]
    public required DateTimeOffset DetectedAt { get; init => field = value.ToUniversalTime(); }

    /// <summary>Strongest first.</summary>
    [JsonPropertyOrder(11)]
    public required IReadOnlyList<Reason> Reasons { get; init; }

    [JsonPropertyOrder(12)]
    public required IReadOnlyList<string> EventIds { get; init; }

    /// <summary>True when the user was in learning mode (too little own history) for any reason.</summary>
    [JsonPropertyOrder(13)]
    public bool Learning { get; init; }

    /// <summary>True when several detectors contributed (written for readers of the JSON; derived, never read back).</summary>
    [JsonPropertyOrder(14)]
    public bool Correlated => Detectors.Count > 1;
}

/// <summary>
/// One reason of a finding: what is typical for this user (or their peers) against what happened. The code is
/// stable (<see cref="ReasonCodes"/>): evaluation, policy weights and suppressions refer to it; its detector is the
/// code's first part. Typical and actual are rounded to three decimals; a value that is not a finite number is none.
/// </summary>
internal sealed record Reason(string Code, double Score, string Text, double? Typical, double? Actual)
{
    [JsonPropertyOrder(0)]
    public string Code { get; init; } = Code;

    /// <summary>Written for readers of the JSON; derived from the code, never read back.</summary>
    [JsonPropertyOrder(1)]
    public string Detector => ReasonCodes.DetectorOf(Code);

    [JsonPropertyOrder(2)]
    public double Score { get; init => field = Math.Round(value, 1); } = Math.Round(Score, 1);

    [JsonPropertyOrder(3)]
    public string Text { get; init; } = Text;

    [JsonPropertyOrder(4)]
    public double? Typical { get; init => field = Measure(value); } = Measure(Typical);

    [JsonPropertyOrder(5)]
    public double? Actual { get; init => field = Measure(value); } = Measure(Actual);

    private static double? Measure(double? value) => value is { } v && double.IsFinite(v) ? Math.Round(v, 3) : null;
}
