using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace CrmSecurity.AuditAnalyzer.Export;

/// <summary>
/// Standard Webhooks signatures (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md,
/// "Signature scheme"): <c>webhook-signature: v1,&lt;base64 HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")&gt;</c>.
/// Receivers call <see cref="Verify"/> on the raw body before they parse it.
/// </summary>
public static class WebhookSignature
{
    /// <summary>Header names of the spec ("Webhook headers").</summary>
    public const string IdHeader = "webhook-id";

    /// <summary>Unix time in seconds when the call was signed.</summary>
    public const string TimestampHeader = "webhook-timestamp";

    /// <summary>Space-separated list of <c>v1,&lt;base64&gt;</c> signatures.</summary>
    public const string SignatureHeader = "webhook-signature";

    /// <summary>Shortest key accepted: a key below the hash output length weakens HMAC-SHA256 (RFC 2104 §3).</summary>
    public const int MinimumKeyBytes = 32;

    /// <summary>How far a timestamp may be from the receiver's clock, either way (the spec's replay protection).</summary>
    public static readonly TimeSpan DefaultTolerance = TimeSpan.FromMinutes(5);

    private const string SecretPrefix = "whsec_";
    private const string Version = "v1,";

    /// <summary>The signature header value for one call.</summary>
    public static string Sign(string secret, string id, long timestamp, string body)
    {
        var key = KeyOf(secret) ?? throw new ArgumentException("The secret after whsec_ is not valid base64.", nameof(secret));
        return Version + Convert.ToBase64String(Mac(key, id, timestamp.ToString(CultureInfo.InvariantCulture), body));
    }

    /// <summary>
    /// True when <paramref name="timestamp"/> is within <paramref name="tolerance"/> of <paramref name="now"/> and one of the
    /// <c>v1</c> signatures in <paramref name="signatureHeader"/> matches, compared in constant time.
    /// </summary>
    public static bool Verify(string secret, string id, string timestamp, string body, string signatureHeader, DateTimeOffset now, TimeSpan? tolerance = null)
    {
        ArgumentNullException.ThrowIfNull(secret);
        if (KeyOf(secret) is not { } key || string.IsNullOrEmpty(id) || string.IsNullOrEmpty(signatureHeader) || body is null)
        {
            return false;
        }

        // Standard Webhooks "Verifying signatures": reject a timestamp outside the tolerance, so a captured call cannot be replayed later.
        if (!long.TryParse(timestamp, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds > DateTimeOffset.MaxValue.ToUnixTimeSeconds())
        {
            return false;
        }

        var age = now - DateTimeOffset.FromUnixTimeSeconds(seconds);
        if (age.Duration() > (tolerance ?? DefaultTolerance))
        {
            return false;
        }

        var expected = Mac(key, id, timestamp, body);
        var matched = false;
        foreach (var entry in signatureHeader.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!entry.StartsWith(Version, StringComparison.Ordinal))
            {
                continue; // another scheme (v1a, ...): not ours to check
            }

            var candidate = new byte[32];
            if (Convert.TryFromBase64String(entry[Version.Length..], candidate, out var written) && written == candidate.Length)
            {
                // Constant time: the comparison must not reveal how many leading bytes of a forged signature were right.
                matched |= CryptographicOperations.FixedTimeEquals(candidate, expected);
            }
        }

        return matched;
    }

    /// <summary>The HMAC key: base64 after <c>whsec_</c> (as the spec's libraries take it), else the secret's UTF-8 bytes; null when the base64 is bad.</summary>
    internal static byte[]? KeyOf(string secret)
    {
        if (!secret.StartsWith(SecretPrefix, StringComparison.Ordinal))
        {
            return Encoding.UTF8.GetBytes(secret);
        }

        try
        {
            return Convert.FromBase64String(secret[SecretPrefix.Length..]);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static byte[] Mac(byte[] key, string id, string timestamp, string body) =>
        HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{id}.{timestamp}.{body}"));
}
