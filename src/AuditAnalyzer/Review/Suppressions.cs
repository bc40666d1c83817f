namespace CrmSecurity.AuditAnalyzer.Review;

/// <summary>What a suppression's scope names.</summary>
internal static class SuppressionScope
{
    public const string User = "user";

    /// <summary>The finding's peer group (department) when the directory knows it.</summary>
    public const string Group = "group";

    public const string Detector = "detector";

    /// <summary>A CRM entity any of the finding's events touched.</summary>
    public const string Entity = "entity";

    public static readonly IReadOnlyList<string> All = [User, Group, Detector, Entity];
}

/// <summary>The facts of a finding a suppression can match on.</summary>
internal sealed record FindingFacts(string UserId, string? PeerGroup, string Detector, IReadOnlyCollection<string> Entities);

/// <summary>
/// A suppression as matching needs it. <paramref name="CreatedBy"/> and <paramref name="Owner"/> are user ids: a
/// suppression never covers the people who made or own it. <paramref name="EndTicks"/> is when it stops at the latest:
/// its expiry, capped at its creation plus the longest lifetime in force (older suppressions "until 9999" included).
/// </summary>
internal sealed record ActiveSuppression(string Id, string ScopeKind, string ScopeValue, long EndTicks, long? RevokedTicks, string CreatedBy, string Owner);

/// <summary>Suppression matching, a pure function of the finding's facts, the suppressions and the time.</summary>
internal static class SuppressionMatcher
{
    /// <summary>Active: not revoked and not past its (capped) end at <paramref name="nowTicks"/>. Ended and revoked ones stop applying.</summary>
    public static bool IsActive(ActiveSuppression s, long nowTicks) =>
        s.RevokedTicks is null && s.EndTicks > nowTicks;

    /// <summary>When a suppression ends: its expiry, but never later than <paramref name="maxLifetime"/> after it was made (none: that cap).</summary>
    public static long EndOf(long createdTicks, long? expiresTicks, TimeSpan maxLifetime)
    {
        var cap = createdTicks > DateTimeOffset.MaxValue.UtcTicks - maxLifetime.Ticks ? DateTimeOffset.MaxValue.UtcTicks : createdTicks + maxLifetime.Ticks;
        return expiresTicks is { } expires && expires < cap ? expires : cap;
    }

    public static bool Matches(ActiveSuppression s, FindingFacts f) =>
        // A suppression cannot cover the reviewer who made it or the person who owns it (separation of duties).
        !string.Equals(f.UserId, s.CreatedBy, StringComparison.Ordinal) && !string.Equals(f.UserId, s.Owner, StringComparison.Ordinal) && s.ScopeKind switch
    {
        SuppressionScope.User => string.Equals(s.ScopeValue, f.UserId, StringComparison.Ordinal),
        SuppressionScope.Group => f.PeerGroup is not null && string.Equals(s.ScopeValue, f.PeerGroup, StringComparison.OrdinalIgnoreCase),
        SuppressionScope.Detector => string.Equals(s.ScopeValue, f.Detector, StringComparison.Ordinal),
        SuppressionScope.Entity => f.Entities.Contains(s.ScopeValue, StringComparer.OrdinalIgnoreCase),
        _ => false, // an unknown kind never suppresses: a finding is shown rather than hidden by mistake
    };

    /// <summary>The first active suppression (oldest first as given) that matches, or null.</summary>
    public static ActiveSuppression? FirstMatch(IEnumerable<ActiveSuppression> suppressions, FindingFacts finding, long nowTicks) =>
        suppressions.FirstOrDefault(s => IsActive(s, nowTicks) && Matches(s, finding));
}
