namespace CrmSecurity.AuditAnalyzer.Review;

/// <summary>Where a finding stands in review.</summary>
internal static class ReviewStatus
{
    public const string New = "new";
    public const string Acknowledged = "acknowledged";
    public const string Confirmed = "confirmed";
    public const string Dismissed = "dismissed";
    public const string Resolved = "resolved";

    /// <summary>Matched an active suppression when it was stored (or when the suppression was applied); out of the default queue.</summary>
    public const string Suppressed = "suppressed";

    public static readonly IReadOnlyList<string> All = [New, Acknowledged, Confirmed, Dismissed, Resolved, Suppressed];

    /// <summary>What the queue shows when no status filter is given: the findings that still need a reviewer.</summary>
    public static readonly IReadOnlyList<string> Open = [New, Acknowledged];
}

/// <summary>What a reviewer concluded.</summary>
internal static class Disposition
{
    public const string TruePositive = "true_positive";
    public const string BenignTruePositive = "benign_true_positive";
    public const string FalsePositive = "false_positive";
    public const string Duplicate = "duplicate";

    public static readonly IReadOnlyList<string> All = [TruePositive, BenignTruePositive, FalsePositive, Duplicate];
}

/// <summary>A refused review step: the field at fault (for problem details) or a conflict with the current state.</summary>
internal sealed record ReviewRefusal(string? Field, string Message, bool Conflict = false);

/// <summary>
/// The review state machine, a pure function of (from, to, disposition):
/// <c>new -> acknowledged | confirmed | dismissed</c>, <c>acknowledged -> confirmed | dismissed | resolved</c>,
/// <c>confirmed -> resolved</c>, <c>suppressed -> acknowledged</c> (a reviewer pulls a suppressed finding back).
/// Dismissed and resolved are final. Confirm and resolve take true_positive or benign_true_positive (resolve keeps the
/// confirmed disposition when none is given); dismiss takes false_positive, benign_true_positive or duplicate, and a
/// duplicate names the other finding.
/// </summary>
internal static class ReviewStateMachine
{
    private static readonly Dictionary<string, string[]> Allowed = new(StringComparer.Ordinal)
    {
        [ReviewStatus.New] = [ReviewStatus.Acknowledged, ReviewStatus.Confirmed, ReviewStatus.Dismissed],
        [ReviewStatus.Acknowledged] = [ReviewStatus.Confirmed, ReviewStatus.Dismissed, ReviewStatus.Resolved],
        [ReviewStatus.Confirmed] = [ReviewStatus.Resolved],
        [ReviewStatus.Suppressed] = [ReviewStatus.Acknowledged],
        [ReviewStatus.Dismissed] = [],
        [ReviewStatus.Resolved] = [],
    };

    public static IReadOnlyList<string> Next(string from) => Allowed.TryGetValue(from, out var next) ? next : [];

    /// <summary>The disposition the finding ends with, or why the step is refused.</summary>
    public static (string? Disposition, ReviewRefusal? Refusal) Check(
        string from, string to, string? currentDisposition, string? disposition, string? duplicateOf, string findingId)
    {
        if (!ReviewStatus.All.Contains(to, StringComparer.Ordinal) || to == ReviewStatus.New || to == ReviewStatus.Suppressed)
        {
            return (null, new ReviewRefusal("status", $"status must be one of acknowledged, confirmed, dismissed, resolved; '{to}' is not (suppress through a suppression)."));
        }

        if (!Next(from).Contains(to, StringComparer.Ordinal))
        {
            var allowed = Next(from) is { Count: > 0 } next ? string.Join(", ", next) : "nothing (it is final)";
            return (null, new ReviewRefusal("status", $"A finding cannot go from {from} to {to}; from {from} it may go to {allowed}.", Conflict: true));
        }

        if (disposition is not null && !Disposition.All.Contains(disposition, StringComparer.Ordinal))
        {
            return (null, new ReviewRefusal("disposition", $"disposition must be one of {string.Join(", ", Disposition.All)}; '{disposition}' is not."));
        }

        if (duplicateOf is not null && disposition != Disposition.Duplicate)
        {
            return (null, new ReviewRefusal("duplicate_of", "duplicate_of is only given with the disposition duplicate."));
        }

        switch (to)
        {
            case ReviewStatus.Acknowledged:
                return disposition is null ? (currentDisposition, null) : (null, new ReviewRefusal("disposition", "Acknowledging takes no disposition; give it when confirming, dismissing or resolving."));
            case ReviewStatus.Confirmed:
            case ReviewStatus.Resolved:
                var chosen = disposition ?? (to == ReviewStatus.Resolved ? currentDisposition : null);
                if (chosen is not (Disposition.TruePositive or Disposition.BenignTruePositive))
                {
                    return (null, new ReviewRefusal("disposition", $"Moving to {to} needs the disposition true_positive or benign_true_positive."));
                }

                return (chosen, null);
            default:
                if (disposition is not (Disposition.FalsePositive or Disposition.BenignTruePositive or Disposition.Duplicate))
                {
                    return (null, new ReviewRefusal("disposition", "Dismissing needs the disposition false_positive, benign_true_positive or duplicate."));
                }

                if (disposition == Disposition.Duplicate && string.IsNullOrWhiteSpace(duplicateOf))
                {
                    return (null, new ReviewRefusal("duplicate_of", "A duplicate names the finding it duplicates in duplicate_of."));
                }

                if (duplicateOf == findingId)
                {
                    return (null, new ReviewRefusal("duplicate_of", "A finding cannot duplicate itself."));
                }

                return (disposition, null);
        }
    }
}
