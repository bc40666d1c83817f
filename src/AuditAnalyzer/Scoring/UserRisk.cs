namespace CrmSecurity.AuditAnalyzer.Scoring;

/// <summary>A user's risk over the recent past: findings decayed by age (half-life 7 days) and combined.</summary>
internal sealed record UserRisk(string UserId, string? UserName, double Risk, int Findings, double TopScore, string TopReason);
