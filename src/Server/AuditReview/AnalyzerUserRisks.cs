using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.Identity.Contracts;

namespace CrmSecurity.Server.AuditReview;

/// <summary>Identity's view of a user's risk, from the live analyzer's snapshot of open findings (no database access per decision).</summary>
internal sealed class AnalyzerUserRisks(LiveUserRisks risks) : IUserRisks
{
    public UserRisk? Find(string userId) =>
        risks.Find(userId) is { } f ? new UserRisk(f.FindingId, f.Severity, f.Detector, f.TopReason, f.DetectedAt) : null;
}
