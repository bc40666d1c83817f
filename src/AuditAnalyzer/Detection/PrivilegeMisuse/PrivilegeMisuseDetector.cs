using System.Collections.Concurrent;
using CrmSecurity.AuditAnalyzer.Baselines;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>
/// Privilege misuse: escalation (a grant used within hours for something rare), self-grants,
/// administrators reading business data beyond their norm, first-seen entity/actions rare among peers,
/// mass decrypt, dormant accounts active again, and any activity after termination.
/// </summary>
internal sealed class PrivilegeMisuseDetector : IDetector
{
    public static PrivilegeMisuseDetector Instance { get; } = new();

    public string Name => DetectorNames.PrivilegeMisuse;

    /// <summary>ECS event.category: privilege misuse is about identity and access.</summary>
    public string EcsCategory => "iam";

    public IReadOnlyList<string> Codes { get; } = [ReasonCodes.Escalation, ReasonCodes.SelfGrant, ReasonCodes.AdminDataAccess, ReasonCodes.FirstSeenRare, ReasonCodes.MassDecrypt, ReasonCodes.Dormant, ReasonCodes.AfterTermination];

    public void Evaluate(AccessEvent e, in UserView view, ScoringPolicy policy, List<Signal> signals)
    {
        var rules = policy.Privilege;
        var p = view.Profile;
        var b = view.Baseline;

        if (view.Directory?.Terminated is { } terminated && view.Time.Day > terminated.DayNumber)
        {
            var score = e.Succeeded ? 92 : 50;
            DetectorSignals.Add(signals, view, e, ReasonCodes.AfterTermination, score * policy.Weight(ReasonCodes.AfterTermination),
                $"activity after termination: terminated {terminated:yyyy-MM-dd}, actual {AccessActions.Name(e.Action)} on {view.Time.Local:yyyy-MM-dd HH:mm} local ({view.Time.Day - terminated.DayNumber} days later)",
                0, view.Time.Day - terminated.DayNumber);
        }

        if (p.DormantGapDays > 0 && e.Succeeded)
        {
            var touches = AccessActions.TouchesData(e.Action);
            var score = touches ? 70 : 50;
            DetectorSignals.Add(signals, view, e, ReasonCodes.Dormant, score * policy.Weight(ReasonCodes.Dormant),
                $"account active again after {p.DormantGapDays} days without any activity: typical gap {p.TypicalGapDays} days, actual {p.DormantGapDays}{(touches ? $"; {AccessActions.Name(e.Action)} of {e.Entity ?? "data"}" : "")}",
                p.TypicalGapDays, p.DormantGapDays);
        }

        if (IsGrant(e, rules) && string.Equals(e.TargetUser, e.UserId, StringComparison.Ordinal))
        {
            DetectorSignals.Add(signals, view, e, ReasonCodes.SelfGrant, 78 * policy.Weight(ReasonCodes.SelfGrant),
                $"granted '{e.Privilege}' to themselves: typical none (grants come from another administrator), actual a self-grant",
                0, 1);
        }

        var key = view.EntityAction;
        var firstSeen = view.FirstSeenEntityAction;
        if (firstSeen && e.Succeeded)
        {
            var peerShare = view.Peers.MemberShare(key!);
            var peerCount = view.Peers.Members.Count;
            var sensitive = e.Action is AccessAction.Export or AccessAction.Decrypt or AccessAction.Impersonate or AccessAction.AdminChange
                || policy.LimitFor(e.Entity) is not null;
            var grant = LatestGrant(b.Grants, e.UtcTicks, rules.EscalationWindow.Ticks);
            if (grant is not null && (peerCount < 5 || peerShare <= 0.2))
            {
                var hours = TimeSpan.FromTicks(e.UtcTicks - grant.Ticks).TotalHours;
                var score = 60 + (25 * (1 - (peerCount < 5 ? 0.5 : peerShare / 0.2))) + (sensitive ? 10 : 0);
                DetectorSignals.Add(signals, view, e, ReasonCodes.Escalation, score * policy.Weight(ReasonCodes.Escalation),
                    $"'{grant.Privilege}' granted by {grant.GrantedBy} and used {hours:0.#} h later for {Describe(e)}: typical never done by this user and by {Numbers.Percent(peerShare)} of {peerCount} peers, actual {Numbers.N(e.RecordCount)} records",
                    peerShare, 1);
            }
            else if (!p.Learning && peerCount >= 5 && peerShare <= rules.FirstSeenMaxPeerShare && IsBusinessOrSensitive(e, policy))
            {
                var score = 45 + (20 * (1 - (peerShare / Math.Max(rules.FirstSeenMaxPeerShare, 1e-9)))) + (sensitive ? 10 : 0);
                DetectorSignals.Add(signals, view, e, ReasonCodes.FirstSeenRare, score * policy.Weight(ReasonCodes.FirstSeenRare),
                    $"first {Describe(e)} for this user after {p.ActiveDaysBefore} active days: typical done by {Numbers.Percent(peerShare)} of {peerCount} peers ({view.Peers.Group}), actual {Numbers.N(e.RecordCount)} records",
                    peerShare, 1);
            }
        }

        ref readonly var today = ref b.Today;
        if (e.Action == AccessAction.Decrypt && e.Succeeded && today.Decrypted > p.DecryptThreshold)
        {
            var score = ScoreCurve.Over(today.Decrypted, p.DecryptThreshold, 55);
            DetectorSignals.Add(signals, view, e, ReasonCodes.MassDecrypt, score * policy.Weight(ReasonCodes.MassDecrypt),
                $"sensitive values decrypted today: typical {Numbers.N(p.Decrypt.Median)}, actual {Numbers.N(today.Decrypted)} (highest day before: {Numbers.N(p.Decrypt.Max)})",
                p.Decrypt.Median, today.Decrypted);
        }

        if (view.IsAdmin && AccessActions.ReadsData(e.Action) && e.Succeeded && IsBusiness(e, policy) && today.AdminBusinessRead > p.AdminReadThreshold)
        {
            var score = ScoreCurve.Over(today.AdminBusinessRead, p.AdminReadThreshold, 50);
            DetectorSignals.Add(signals, view, e, ReasonCodes.AdminDataAccess, score * policy.Weight(ReasonCodes.AdminDataAccess),
                $"administrator reading business data: typical {Numbers.N(p.AdminRead.Median)} records a day, actual {Numbers.N(today.AdminBusinessRead)} today ({e.Entity})",
                p.AdminRead.Median, today.AdminBusinessRead);
        }
    }

    private static readonly ConcurrentDictionary<(string Entity, AccessAction Action), string> Keys = new();

    /// <summary>The entity/action pair first-seen checks track; null for events that touch no entity.</summary>
    public static string? EntityActionKey(AccessEvent e) => e.Action switch
    {
        AccessAction.Login or AccessAction.LoginFailed or AccessAction.Logout => null,
        AccessAction.AdminChange or AccessAction.Impersonate => AccessActions.Name(e.Action),
        _ => e.Entity is null ? null : Key(e.Entity, e.Action),
    };

    private static string Key(string entity, AccessAction action)
    {
        if (Keys.TryGetValue((entity, action), out var key))
        {
            return key;
        }

        key = string.Concat(entity, ":", AccessActions.Name(action));
        // Entities are few; a flood of distinct ones is not cached, so the cache stays small.
        if (Keys.Count < 100_000)
        {
            Keys.TryAdd((entity, action), key);
        }

        return key;
    }

    /// <summary>The latest grant at or before <paramref name="ticks"/> and at most <paramref name="window"/> ticks older.</summary>
    private static Grant? LatestGrant(List<Grant> grants, long ticks, long window)
    {
        // A loop, not LastOrDefault with a lambda: the closure over the event was allocated on every event scored.
        for (var i = grants.Count - 1; i >= 0; i--)
        {
            var g = grants[i];
            if (g.Ticks <= ticks && ticks - g.Ticks <= window)
            {
                return g;
            }
        }

        return null;
    }

    /// <summary>
    /// A successful administrative change that gives its target a privilege: not a revoke, and not one of the policy's
    /// <see cref="PrivilegePolicy.NotGrants"/> (an unlock or an MFA reset has the shape of a grant but grants nothing).
    /// </summary>
    public static bool IsGrant(AccessEvent e, PrivilegePolicy rules) =>
        e.Action is AccessAction.AdminChange or AccessAction.Assign && e.Succeeded && e.Privilege is { } privilege
        && !rules.NotGrants.Contains(privilege) && !IsRevoke(e);

    public static bool IsRevoke(AccessEvent e) =>
        e.Details is { } details && details.StartsWith("revoke", StringComparison.OrdinalIgnoreCase);

    private static bool IsBusiness(AccessEvent e, ScoringPolicy policy) =>
        e.Entity is not null && (policy.BusinessEntities.Count == 0 || policy.BusinessEntities.Contains(e.Entity));

    private static bool IsBusinessOrSensitive(AccessEvent e, ScoringPolicy policy) =>
        e.Action is AccessAction.Impersonate or AccessAction.AdminChange || IsBusiness(e, policy) || policy.LimitFor(e.Entity) is not null;

    private static string Describe(AccessEvent e) => e.Action switch
    {
        AccessAction.AdminChange => "administrative change",
        AccessAction.Impersonate => "impersonation of another user",
        _ => $"{AccessActions.Name(e.Action)} of {e.Entity}",
    };
}

/// <summary>The detector's name in findings.</summary>
internal static partial class DetectorNames
{
    public const string PrivilegeMisuse = "privilege_misuse";
}

/// <summary>The detector's stable reason codes.</summary>
internal static partial class ReasonCodes
{
    public const string Escalation = "privilege_misuse.escalation";

    public const string SelfGrant = "privilege_misuse.self_grant";

    public const string AdminDataAccess = "privilege_misuse.admin_data_access";

    public const string FirstSeenRare = "privilege_misuse.first_seen_rare";

    public const string MassDecrypt = "privilege_misuse.mass_decrypt";

    public const string Dormant = "privilege_misuse.dormant_reactivated";

    public const string AfterTermination = "privilege_misuse.after_termination";
}
