using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Detection;

/// <summary>The <c>privilege</c> section of the policy.</summary>
internal sealed record PrivilegePolicy
{
    public TimeSpan EscalationWindow { get; init; } = TimeSpan.FromHours(24);

    /// <summary>A first-seen entity/action is rare when at most this share of peers has ever done it.</summary>
    public double FirstSeenMaxPeerShare { get; init; } = 0.05;

    public int DormantDays { get; init; } = 45;

    public double MassDecryptMinValues { get; init; } = 200;

    public double MassDecryptOverHistoryMax { get; init; } = 3;

    public double AdminDataMinRecords { get; init; } = 500;

    public double AdminDataOverHistoryMax { get; init; } = 3;

    /// <summary>
    /// Privileges of administrative changes that give the target nothing they could not do before (an unlock, an MFA
    /// reset, a time zone): never a grant, so never a self-grant and no escalation window. Defaults: Identity's own.
    /// </summary>
    public IReadOnlySet<string> NotGrants { get; init; } = PolicyReader.Set(
        ["user.unlock", "user.reset_mfa", "user.revoke", "user.password_removed", "user.zoneinfo", "user.employment", "client.revoke", "model.recompute"]);

    /// <summary>Reads the policy file's section, each problem named with file, line and setting.</summary>
    internal static PrivilegePolicy Read(PolicySection s)
    {
        var d = new PrivilegePolicy();
        var result = new PrivilegePolicy
        {
            EscalationWindow = TimeSpan.FromHours(s.Number("escalation_window_hours", d.EscalationWindow.TotalHours, 1, 24 * 30)),
            FirstSeenMaxPeerShare = s.Number("first_seen_max_peer_share", d.FirstSeenMaxPeerShare, 0, 1),
            DormantDays = s.Integer("dormant_days", d.DormantDays, 7, 3650),
            MassDecryptMinValues = s.Number("mass_decrypt_min_values", d.MassDecryptMinValues, 1, 1e9),
            MassDecryptOverHistoryMax = s.Number("mass_decrypt_over_history_max", d.MassDecryptOverHistoryMax, 1, 1000),
            AdminDataMinRecords = s.Number("admin_data_min_records", d.AdminDataMinRecords, 1, 1e9),
            AdminDataOverHistoryMax = s.Number("admin_data_over_history_max", d.AdminDataOverHistoryMax, 1, 1000),
            NotGrants = PolicyReader.Set(s.Strings("not_grants", [.. d.NotGrants])),
        };
        s.RejectUnknown();
        return result;
    }
}
