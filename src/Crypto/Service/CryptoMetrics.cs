using System.Diagnostics.Metrics;
using CrmSecurity.Crypto.Events;

namespace CrmSecurity.Crypto.Service;

/// <summary>The Crypto module's meter: every decrypt through the service, as its access events record them, and every rewrap.</summary>
internal static class CryptoMetrics
{
    public const string MeterName = "CrmSecurity.Crypto";

    private static readonly Meter Meter = new(MeterName);

    /// <summary>Decrypts through the service, tagged <c>outcome</c> (success, denied, error).</summary>
    public static readonly Counter<long> Decrypts = Meter.CreateCounter<long>(
        "crm_security.crypto.decrypts", "{decrypt}", "Decrypts through the service, by outcome");

    /// <summary>Values rewrapped through the service, tagged <c>outcome</c> (success, denied, error).</summary>
    public static readonly Counter<long> Rewraps = Meter.CreateCounter<long>(
        "crm_security.crypto.rewraps", "{value}", "Values rewrapped to the current key version through the service, by outcome");
}

/// <summary>Counts every decrypt on the module's meter, then hands the event to the sink the host chose.</summary>
internal sealed class CountingEventSink(ICryptoEventSink inner) : ICryptoEventSink
{
    public ValueTask WriteAsync(CryptoAccessEvent accessEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(accessEvent);
        if (accessEvent.Action == "decrypt")
        {
            CryptoMetrics.Decrypts.Add(1, new KeyValuePair<string, object?>("outcome", accessEvent.Outcome));
        }

        return inner.WriteAsync(accessEvent, cancellationToken);
    }
}
