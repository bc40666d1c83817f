using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Crypto.Primitives;

namespace CrmSecurity.Crypto.Providers;

/// <summary>
/// Authenticated encryption of small secrets at rest (an authenticator key, a client's stored credential) under one
/// 256-bit key: AES-256-GCM with a random 96-bit nonce per value (NIST SP 800-38D §8.2.2) and caller-given associated
/// data that binds the value to its place (for example the user id it belongs to), so a value copied to another row
/// does not open. Text form: <c>sb1:</c> + base64url(nonce ‖ ciphertext ‖ tag). Thread-safe.
/// </summary>
public sealed class SecretBox : IDisposable
{
    private const string Prefix = "sb1:";
    private const int NonceBytes = 12;
    private const int TagBytes = 16;

    private readonly SecretBytes _key;

    /// <summary>Creates a box under <paramref name="key"/> (32 bytes); the key is copied and zeroed on dispose.</summary>
    /// <param name="key">The 256-bit key.</param>
    public SecretBox(ReadOnlySpan<byte> key)
    {
        if (key.Length != 32)
        {
            throw new ArgumentException("A SecretBox key is 32 bytes (AES-256).", nameof(key));
        }

        _key = SecretBytes.CopyOf(key);
    }

    /// <summary>Whether <paramref name="value"/> has the sealed form (it may still fail to open).</summary>
    /// <param name="value">Text read from storage.</param>
    public static bool IsSealed(string? value) => value is not null && value.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>Encrypts <paramref name="plaintext"/> bound to <paramref name="associatedData"/>.</summary>
    /// <param name="plaintext">The secret.</param>
    /// <param name="associatedData">What the value belongs to; the same text is needed to open it.</param>
    public string Seal(string plaintext, string associatedData)
    {
        ArgumentNullException.ThrowIfNull(plaintext);
        ArgumentNullException.ThrowIfNull(associatedData);
        var input = Encoding.UTF8.GetBytes(plaintext);
        var output = new byte[NonceBytes + input.Length + TagBytes];
        try
        {
            var nonce = output.AsSpan(0, NonceBytes);
            RandomNumberGenerator.Fill(nonce);
            using var aes = new AesGcm(_key.Span, TagBytes);
            aes.Encrypt(nonce, input, output.AsSpan(NonceBytes, input.Length), output.AsSpan(NonceBytes + input.Length), Encoding.UTF8.GetBytes(associatedData));
            return Prefix + Base64Url(output);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(input);
        }
    }

    /// <summary>Decrypts a value made by <see cref="Seal"/> with the same associated data.</summary>
    /// <param name="sealedText">The stored text.</param>
    /// <param name="associatedData">What the value belongs to.</param>
    /// <exception cref="CryptographicException">The value was altered, belongs to other associated data, or is not sealed under this key.</exception>
    public string Open(string sealedText, string associatedData)
    {
        ArgumentNullException.ThrowIfNull(sealedText);
        ArgumentNullException.ThrowIfNull(associatedData);
        if (!IsSealed(sealedText))
        {
            throw new CryptographicException("The value is not in the sealed form (sb1:...).");
        }

        byte[] input;
        try
        {
            input = FromBase64Url(sealedText[Prefix.Length..]);
        }
        catch (FormatException e)
        {
            throw new CryptographicException("The sealed value is damaged (not base64url).", e);
        }

        if (input.Length < NonceBytes + TagBytes)
        {
            throw new CryptographicException("The sealed value is too short to hold a nonce and a tag.");
        }

        var plaintext = new byte[input.Length - NonceBytes - TagBytes];
        try
        {
            using var aes = new AesGcm(_key.Span, TagBytes);
            aes.Decrypt(input.AsSpan(0, NonceBytes), input.AsSpan(NonceBytes, plaintext.Length), input.AsSpan(NonceBytes + plaintext.Length), plaintext, Encoding.UTF8.GetBytes(associatedData));
            return Encoding.UTF8.GetString(plaintext);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    /// <summary>Zeroes the key.</summary>
    public void Dispose() => _key.Dispose();

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static byte[] FromBase64Url(string text)
    {
        var padded = text.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(padded.PadRight(padded.Length + ((4 - (padded.Length % 4)) % 4), '='));
    }
}
