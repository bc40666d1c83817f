using System.Buffers.Text;
using System.Text;

namespace CrmSecurity.Crypto.Fields;

/// <summary>The text form of a field ciphertext: <c>cf1:</c> followed by the binary form in base64url without padding (RFC 4648 §5).</summary>
public static class FieldText
{
    /// <summary>The prefix of every text-form ciphertext.</summary>
    public const string Prefix = "cf1:";

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>True when <paramref name="value"/> looks like a text-form ciphertext (starts with the prefix).</summary>
    /// <param name="value">A column value.</param>
    public static bool IsCiphertext(string? value) => value is not null && value.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>Encodes a binary ciphertext in the text form.</summary>
    /// <param name="binary">The binary form.</param>
    public static string Encode(ReadOnlySpan<byte> binary) => Prefix + Base64Url.EncodeToString(binary);

    /// <summary>Decodes the text form strictly: only the prefix and the base64url alphabet, no padding, canonical final bits.</summary>
    /// <param name="text">The text form.</param>
    /// <exception cref="FieldDecryptionException">With <see cref="DecryptFailureReason.InvalidEncoding"/>.</exception>
    public static byte[] Decode(string text)
    {
        if (text is null || !text.StartsWith(Prefix, StringComparison.Ordinal))
        {
            throw new FieldDecryptionException(DecryptFailureReason.InvalidEncoding, $"It does not start with '{Prefix}'.");
        }

        var body = text.AsSpan(Prefix.Length);
        foreach (var c in body)
        {
            // RFC 4648 §5 alphabet only: '=' padding, '+', '/', whitespace are all refused.
            if (!(c is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_'))
            {
                throw new FieldDecryptionException(DecryptFailureReason.InvalidEncoding, "It contains a character outside base64url.");
            }
        }

        if (body.Length % 4 == 1)
        {
            throw new FieldDecryptionException(DecryptFailureReason.InvalidEncoding, "Its base64url length is impossible.");
        }

        byte[] bytes;
        try
        {
            bytes = Base64Url.DecodeFromChars(body);
        }
        catch (FormatException)
        {
            throw new FieldDecryptionException(DecryptFailureReason.InvalidEncoding, "Its base64url encoding is not canonical.");
        }

        // Canonical form only: unused low bits of the last character must be zero, so one ciphertext has one text form.
        if (!Base64Url.EncodeToString(bytes).AsSpan().SequenceEqual(body))
        {
            throw new FieldDecryptionException(DecryptFailureReason.InvalidEncoding, "Its base64url encoding is not canonical.");
        }

        return bytes;
    }

    internal static string Utf8(ReadOnlySpan<byte> bytes) => StrictUtf8.GetString(bytes);
}
