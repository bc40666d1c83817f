using System.Runtime.CompilerServices;
using CrmSecurity.AuditAnalyzer.Organisation;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Review;

/// <summary>
/// k-anonymity for peer groups (L. Sweeney, "k-anonymity: a model for protecting privacy", 2002): before a reveal, a
/// finding names its peer group only when the directory holds at least <see cref="ReviewOptions.MinPeerGroupSize"/>
/// members of it. A group of one ("Compliance / auditor") names the user as surely as a reveal, without the audit
/// entry. A group the directory does not know counts as empty (deny by default).
/// </summary>
internal sealed class PeerGroupSizes(LiveDirectory directory, IOptions<ReviewOptions> options)
{
    private readonly ConditionalWeakTable<UserDirectory, Dictionary<string, int>> _sizes = [];

    public int MinSize => options.Value.MinPeerGroupSize;

    /// <summary>What a group is called where it is too small to name.</summary>
    public string Withheld => $"(a peer group of fewer than {MinSize} people)";

    public int SizeOf(string group)
    {
        var current = directory.Current;
        var sizes = _sizes.GetValue(current, static d => d.Users.GroupBy(u => u.PeerGroup, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.Count(), StringComparer.OrdinalIgnoreCase));
        return sizes.GetValueOrDefault(group);
    }

    /// <summary>Whether the group may be named to someone who has not revealed the user.</summary>
    public bool MayName(string? group) => group is null || MinSize <= 1 || SizeOf(group) >= MinSize;

    /// <summary>The group as it may be shown before a reveal, or null when it must not be named.</summary>
    public string? Shown(string? group) => MayName(group) ? group : null;

    /// <summary>A reason text with the group's name withheld where it is too small (detectors write "peers (group)").</summary>
    public string Redact(string text, string? group) =>
        group is { Length: > 0 } && !MayName(group) ? text.Replace(group, Withheld, StringComparison.OrdinalIgnoreCase) : text;
}
