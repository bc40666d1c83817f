using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// The device authorization grant's polling rules (RFC 8628 §3.5) that OpenIddict leaves out: a client that polls the token
/// endpoint with a device code sooner than the interval gets <c>slow_down</c>, and its interval grows by 5 seconds for
/// that and every later request. OpenIddict answers <c>authorization_pending</c>, <c>access_denied</c> and
/// <c>expired_token</c> itself. Kept in memory per instance: a courtesy throttle on top of the token endpoint's rate limit,
/// not a security boundary (the device code is a 256-bit secret and the user code is throttled where it is typed).
/// </summary>
internal sealed class DevicePolling(TimeProvider time)
{
    /// <summary>RFC 8628 §3.2: without an <c>interval</c> in the device response the client waits 5 seconds between polls.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    /// <summary>RFC 8628 §3.5: each <c>slow_down</c> adds 5 seconds.</summary>
    public static readonly TimeSpan Increment = TimeSpan.FromSeconds(5);

    private const int MaxEntries = 100_000;

    /// <summary>How long a device code's polling state is kept after its last poll (longer than any device code lives).</summary>
    private static readonly TimeSpan Retention = TimeSpan.FromHours(1);

    private readonly ConcurrentDictionary<string, Poll> _polls = new(StringComparer.Ordinal);

    /// <summary>Records a poll with <paramref name="deviceCode"/>; true when it came too soon (answer <c>slow_down</c>).</summary>
    public bool TooSoon(string deviceCode)
    {
        var now = time.GetUtcNow();
        // Keyed by a digest: the device code itself is a bearer secret and is not kept.
        var key = Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(deviceCode)));
        if (_polls.Count >= MaxEntries)
        {
            foreach (var stale in _polls.Where(entry => now - entry.Value.Last > Retention).Select(entry => entry.Key).ToList())
            {
                _polls.TryRemove(stale, out _);
            }
        }

        var tooSoon = false;
        _polls.AddOrUpdate(
            key,
            _ => new Poll(now, Interval),
            (_, previous) =>
            {
                tooSoon = now - previous.Last < previous.Interval;
                return tooSoon ? new Poll(now, previous.Interval + Increment) : previous with { Last = now };
            });
        return tooSoon;
    }

    private sealed record Poll(DateTimeOffset Last, TimeSpan Interval);
}

/// <summary>Answers <c>slow_down</c> to a device-code token request that came sooner than the client's interval (RFC 8628 §3.5).</summary>
internal sealed class SlowDownDevicePolling(DevicePolling polling) : IOpenIddictServerHandler<ValidateTokenRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenRequestContext>()
            .UseSingletonHandler<SlowDownDevicePolling>()
            .SetOrder(int.MinValue + 100_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ValidateTokenRequestContext context)
    {
        if (context.Request.IsDeviceCodeGrantType() && context.Request.DeviceCode is { Length: > 0 } deviceCode && polling.TooSoon(deviceCode))
        {
            context.Reject(error: Errors.SlowDown, description: "The client polled too fast: wait at least 5 seconds more between requests (RFC 8628, section 3.5).");
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// User codes are typed by people (RFC 8628 §6.1): case does not matter. The codes are made of upper-case letters only, so
/// what the user typed is read in upper case before OpenIddict, which ignores characters outside the charset (dashes,
/// spaces), looks it up.
/// </summary>
internal sealed class NormalizeUserCode : IOpenIddictServerHandler<ExtractEndUserVerificationRequestContext>
{
    /// <summary>
    /// RFC 8628 §6.1's example charset: 20 consonants, no vowels (no words), none that looks like a digit or another letter.
    /// Eight of them carry 20^8 (about 2^34.6) possibilities, the section's recommendation, shown as XXXX-XXXX.
    /// </summary>
    public static readonly string[] Charset = ["B", "C", "D", "F", "G", "H", "J", "K", "L", "M", "N", "P", "Q", "R", "S", "T", "V", "W", "X", "Z"];

    public const int Length = 8;

    public const string DisplayFormat = "{0}{1}{2}{3}-{4}{5}{6}{7}";

    /// <summary>The code as the device shows it (XXXX-XXXX), whatever case, dashes or spaces the user typed.</summary>
    public static string Display(string? typed)
    {
        var letters = (typed ?? "").ToUpperInvariant().Where(c => Charset.Contains(c.ToString(), StringComparer.Ordinal)).ToArray();
        // The same grouping as DisplayFormat: two groups of four.
        return letters.Length == Length ? new string(letters, 0, 4) + "-" + new string(letters, 4, 4) : new string(letters);
    }

    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ExtractEndUserVerificationRequestContext>()
            .UseSingletonHandler<NormalizeUserCode>()
            .SetOrder(int.MaxValue - 100_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ExtractEndUserVerificationRequestContext context)
    {
        if (context.Request?.UserCode is { Length: > 0 } code)
        {
            context.Request.UserCode = code.ToUpperInvariant();
        }

        return ValueTask.CompletedTask;
    }
}
