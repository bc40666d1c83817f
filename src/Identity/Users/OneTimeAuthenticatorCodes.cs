using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Identity;

namespace CrmSecurity.Identity.Users;

/// <summary>
/// Authenticator codes (RFC 6238: HMAC-SHA-1, 30-second steps, 6 digits, two steps of clock drift either way, as the
/// stock provider) that are each accepted once: the step a code matched is recorded and later codes must be from a later
/// step (OWASP ASVS 4.0.3 V2.8.4, RFC 6238 §5.2). The stock provider accepted the same code again for two and a half
/// minutes, so someone who saw it typed could replay it. Recording the step updates the user row under its concurrency
/// stamp, so two requests racing with one code cannot both pass. The candidates are compared in constant time. A code of
/// a step already used is marked on the request (<see cref="IsReplay"/>), so the refusal is logged as a replay (V2.8.5).
/// </summary>
internal sealed class OneTimeAuthenticatorCodes(TimeProvider time, IHttpContextAccessor requests) : IUserTwoFactorTokenProvider<CrmUser>
{
    private static readonly object ReplayItem = new();

    private const string Provider = "[CrmSecurity]";
    private const string LastStepName = "AuthenticatorLastStep";
    private const int Drift = 2;

    public async Task<bool> CanGenerateTwoFactorTokenAsync(UserManager<CrmUser> manager, CrmUser user) =>
        !string.IsNullOrWhiteSpace(await manager.GetAuthenticatorKeyAsync(user));

    /// <summary>The code comes from the user's app; the server never generates one.</summary>
    public Task<string> GenerateAsync(string purpose, UserManager<CrmUser> manager, CrmUser user) => Task.FromResult(string.Empty);

    public async Task<bool> ValidateAsync(string purpose, string token, UserManager<CrmUser> manager, CrmUser user)
    {
        if (token is not { Length: 6 } || !token.All(char.IsAsciiDigit) || await manager.GetAuthenticatorKeyAsync(user) is not { Length: > 0 } key)
        {
            return false;
        }

        var secret = Base32(key);
        var last = long.TryParse(await manager.GetAuthenticationTokenAsync(user, Provider, LastStepName), NumberStyles.None, CultureInfo.InvariantCulture, out var step)
            ? step
            : long.MinValue;
        var now = time.GetUtcNow().ToUnixTimeSeconds() / 30;
        var typed = Encoding.ASCII.GetBytes(token);
        long? matched = null;
        var used = false;
        try
        {
            for (var candidate = now - Drift; candidate <= now + Drift; candidate++)
            {
                // Every candidate is computed and compared, used steps included, so timing does not tell which matched.
                var equal = CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Code(secret, candidate)), typed);
                if (equal && candidate > last && matched is null)
                {
                    matched = candidate;
                }

                used |= equal && candidate <= last;
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }

        if (matched is not { } accepted)
        {
            if (used && requests.HttpContext is { } http)
            {
                http.Items[ReplayItem] = true;
            }

            return false;
        }

        var recorded = await manager.SetAuthenticationTokenAsync(user, Provider, LastStepName, accepted.ToString(CultureInfo.InvariantCulture));
        return recorded.Succeeded;
    }

    /// <summary>Whether this request's second step was refused because its code had already been used.</summary>
    public static bool IsReplay(HttpContext http) => http.Items.ContainsKey(ReplayItem);

    private static string Code(byte[] secret, long step)
    {
        Span<byte> counter = stackalloc byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(counter, step);
#pragma warning disable CA5350 // RFC 6238 as every authenticator app computes it is defined on HMAC-SHA-1.
        var hash = HMACSHA1.HashData(secret, counter);
#pragma warning restore CA5350
        var offset = hash[^1] & 0x0f;
        var binary = ((hash[offset] & 0x7f) << 24) | (hash[offset + 1] << 16) | (hash[offset + 2] << 8) | hash[offset + 3];
        return (binary % 1_000_000).ToString("D6", CultureInfo.InvariantCulture);
    }

    /// <summary>RFC 4648 base32, as Identity generates authenticator keys (upper case, no padding).</summary>
    private static byte[] Base32(string text)
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        var output = new List<byte>(text.Length * 5 / 8);
        int buffer = 0, bits = 0;
        foreach (var c in text.Trim().TrimEnd('=').ToUpperInvariant())
        {
            var value = alphabet.IndexOf(c, StringComparison.Ordinal);
            if (value < 0)
            {
                continue; // spaces or dashes a key may have been written with
            }

            buffer = (buffer << 5) | value;
            bits += 5;
            if (bits >= 8)
            {
                output.Add((byte)(buffer >> (bits - 8)));
                bits -= 8;
            }
        }

        return [.. output];
    }
}
