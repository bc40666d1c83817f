using System.Security.Cryptography;
using System.Text;

namespace CrmSecurity.AuditAnalyzer.Review;

/// <summary>
/// The name the review queue shows instead of a user id: <c>user-</c> and 8 hex digits of HMAC-SHA-256 under the
/// installation's own key. Stable per installation (the same user is recognisable across findings), not reversible
/// without the key, and different between installations, so pseudonyms from two sites cannot be joined.
/// </summary>
internal static class Pseudonyms
{
    public const string Prefix = "user-";

    public static string Of(ReadOnlySpan<byte> key, string userId)
    {
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(userId), mac);
        return Prefix + Convert.ToHexStringLower(mac[..4]);
    }

    public static bool LooksLikeOne(string value) =>
        value.Length == Prefix.Length + 8 && value.StartsWith(Prefix, StringComparison.Ordinal) && value.AsSpan(Prefix.Length).ContainsOnlyHex();
}

internal static class HexSpans
{
    public static bool ContainsOnlyHex(this ReadOnlySpan<char> value)
    {
        foreach (var c in value)
        {
            if (!char.IsAsciiHexDigitLower(c))
            {
                return false;
            }
        }

        return true;
    }
}
