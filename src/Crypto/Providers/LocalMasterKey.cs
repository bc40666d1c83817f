using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Crypto.Primitives;

namespace CrmSecurity.Crypto.Providers;

/// <summary>
/// A 256-bit master key held in this process (from an environment variable or a key file) used as the KEK with
/// AES-KWP (RFC 5649). Its id is <c>local:</c> plus a 64-bit key check value (HMAC-SHA-256 of a fixed label),
/// which identifies the key without revealing it.
/// </summary>
public sealed class LocalMasterKey : IKeyEncryptionKey
{
    /// <summary>Default environment variable holding the base64 master key.</summary>
    public const string DefaultVariable = "CRM_SECURITY_MASTER_KEY";

    private readonly SecretBytes _key;

    private LocalMasterKey(SecretBytes key)
    {
        _key = key;
        Span<byte> check = stackalloc byte[32];
        HMACSHA256.HashData(key.Span, Encoding.ASCII.GetBytes("crm-security/kek-check-value/v1"), check);
        KeyId = "local:" + Convert.ToHexStringLower(check[..8]);
    }

    /// <inheritdoc />
    public string KeyId { get; }

    /// <summary>Makes a new random master key (for <c>keys init</c> and tests).</summary>
    public static LocalMasterKey Generate() => new(SecretBytes.Random(32));

    /// <summary>Reads the master key from base64 text (32 bytes once decoded).</summary>
    /// <param name="base64">The key in base64.</param>
    /// <param name="source">Where the text came from, named in errors (never the value).</param>
    /// <exception cref="KeyManagementException">The text is not base64 of 32 bytes.</exception>
    public static LocalMasterKey FromBase64(string base64, string source)
    {
        var buffer = new byte[64];
        try
        {
            if (!Convert.TryFromBase64String(base64.Trim(), buffer, out var written) || written != 32)
            {
                throw new KeyManagementException($"{source} must hold a 256-bit key in base64 (32 bytes, for example from `openssl rand -base64 32`).");
            }

            return new LocalMasterKey(SecretBytes.CopyOf(buffer.AsSpan(0, 32)));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer);
        }
    }

    /// <summary>Reads the master key from an environment variable holding base64.</summary>
    /// <param name="variable">The variable's name.</param>
    /// <exception cref="KeyManagementException">The variable is missing or malformed; the message names it.</exception>
    public static LocalMasterKey FromEnvironment(string variable = DefaultVariable)
    {
        var value = Environment.GetEnvironmentVariable(variable);
        return string.IsNullOrWhiteSpace(value)
            ? throw new KeyManagementException($"The environment variable {variable} that should hold the master key is not set. Set it to 32 random bytes in base64 (`openssl rand -base64 32`).")
            : FromBase64(value, $"The environment variable {variable}");
    }

    /// <summary>Reads the master key from a file holding base64 text or 32 raw bytes.</summary>
    /// <param name="path">The key file.</param>
    /// <exception cref="KeyManagementException">The file is missing, unreadable or malformed; the message names it.</exception>
    public static LocalMasterKey FromFile(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KeyManagementException($"The master key file '{path}' cannot be read: {e.Message}", e);
        }

        try
        {
            return bytes.Length == 32
                ? new LocalMasterKey(SecretBytes.CopyOf(bytes))
                : FromBase64(Encoding.ASCII.GetString(bytes), $"The master key file '{path}'");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    /// <summary>The key as base64; public only through <see cref="Keys.Insecure.InsecureCleartextKeyMaterial"/>.</summary>
    internal string ExportPlaintextBase64() => Convert.ToBase64String(_key.Span);

    /// <inheritdoc />
    public byte[] WrapKey(ReadOnlySpan<byte> key) => KeyWrap.Wrap(_key.Span, key);

    /// <inheritdoc />
    public byte[] UnwrapKey(ReadOnlySpan<byte> wrapped)
    {
        try
        {
            return KeyWrap.Unwrap(_key.Span, wrapped);
        }
        catch (CryptographicException e)
        {
            // RFC 5649 §3: the integrity check failed; wrong KEK or altered bytes.
            throw new KeyManagementException($"A wrapped key does not unwrap under the master key {KeyId}: wrong master key or altered data.", e);
        }
    }

    /// <summary>Zeroes the key.</summary>
    public void Dispose() => _key.Dispose();

    /// <summary>The key id only.</summary>
    public override string ToString() => $"LocalMasterKey {KeyId}";
}
