using System.Diagnostics.Metrics;

namespace CrmSecurity.Identity;

/// <summary>The Identity module's meter (OpenTelemetry names; the host exports them).</summary>
internal static class IdentityMetrics
{
    public const string MeterName = "CrmSecurity.Identity";

    private static readonly Meter Meter = new(MeterName);

    /// <summary>Tokens issued by the token endpoint, tagged <c>grant_type</c>.</summary>
    public static readonly Counter<long> TokensIssued = Meter.CreateCounter<long>(
        "crm_security.identity.tokens_issued", "{token}", "Tokens issued by the token endpoint, by grant type");

    /// <summary>Decisions of the HTTP decision API, tagged <c>outcome</c> (allow or deny).</summary>
    public static readonly Counter<long> AuthorizationDecisions = Meter.CreateCounter<long>(
        "crm_security.identity.authorization_decisions", "{decision}", "Authorization decisions of the decision API, by outcome");
}
