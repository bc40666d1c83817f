using System.Diagnostics.Metrics;

namespace CrmSecurity.Server.EncryptionService;

/// <summary>The Crypto module's meter: every decrypt through the service, as its access events record them.</summary>
internal static class CryptoMetrics
{
    public const string MeterName = "CrmSecurity.Crypto";

    private static readonly Meter Meter = new(MeterName);

    /// <summary>Decrypts through the service, tagged <c>outcome</c> (success, denied, error).</summary>
    public static readonly Counter<long> Decrypts = Meter.CreateCounter<long>(
        "crm_security.crypto.decrypts", "{decrypt}", "Decrypts through the service, by outcome");
}
