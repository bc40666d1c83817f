using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Crypto.Providers;
using Microsoft.Data.SqlClient;

namespace CrmSecurity.Crypto.SqlServer;

/// <summary>
/// A SQL Server Always Encrypted key store provider backed by our key-encryption keys, so a CRM on SQL Server
/// keeps Always Encrypted while the column master key (CMK) is one of our KEKs (local master key or PKCS#11
/// token). Register it with <c>SqlConnection.RegisterColumnEncryptionKeyStoreProviders</c> under
/// <see cref="Name"/>; the CMK's <c>KEY_PATH</c> is the KEK's <see cref="IKeyEncryptionKey.KeyId"/>.
/// </summary>
/// <remarks>
/// The encrypted column encryption key (CEK) has SqlClient's layout: version <c>0x01</c>, key path length
/// (2 bytes, little-endian), ciphertext length (2 bytes, little-endian), key path (UTF-16LE, lower-case),
/// ciphertext, signature. Here the ciphertext is the CEK wrapped with AES-KWP (RFC 5649) under the KEK, and the
/// signature is <c>KWP(KEK, SHA-256(everything before the signature))</c> (40 bytes): the KEK holder's MAC,
/// checked in constant time. CMK metadata signatures are <c>KWP(KEK, SHA-256(UTF-16LE(lower(provider name +
/// key path + allowEnclaveComputations))))</c>, as SqlClient hashes it. SQL Server only accepts the CMK
/// algorithm name <c>RSA_OAEP</c> in its metadata, so that is the name this provider accepts, although it wraps with AES-KWP.
/// </remarks>
public sealed class KeyringColumnMasterKeyStoreProvider : SqlColumnEncryptionKeyStoreProvider
{
    /// <summary>The provider name to register (custom names must not start with <c>MSSQL_</c>).</summary>
    public const string Name = "CRM_SECURITY_KEYRING";

    /// <summary>The only algorithm name SQL Server writes in CEK metadata.</summary>
    public const string Algorithm = "RSA_OAEP";

    private const byte Version = 0x01;
    private const int SignatureLength = 40; // KWP of a 32-byte hash
    private static readonly Lock RegistrationGate = new();
    private static readonly List<IKeyEncryptionKey> Registered = [];
    private static bool? s_registeredWithSqlClient;
    private readonly Func<string, IKeyEncryptionKey?> _resolve;

    /// <summary>Creates the provider.</summary>
    /// <param name="resolve">Finds the KEK whose <see cref="IKeyEncryptionKey.KeyId"/> is the given master key path (case-insensitive), or null.</param>
    public KeyringColumnMasterKeyStoreProvider(Func<string, IKeyEncryptionKey?> resolve)
    {
        ArgumentNullException.ThrowIfNull(resolve);
        _resolve = resolve;
    }

    /// <summary>Creates the provider for one KEK.</summary>
    /// <param name="kek">The KEK; the CMK's key path must be its key id.</param>
    public KeyringColumnMasterKeyStoreProvider(IKeyEncryptionKey kek)
        : this(path => string.Equals(path, kek?.KeyId, StringComparison.OrdinalIgnoreCase) ? kek : null)
    {
        ArgumentNullException.ThrowIfNull(kek);
    }

    /// <summary>
    /// Makes <paramref name="kek"/> a column master key that <c>Microsoft.Data.SqlClient</c> resolves for every connection
    /// of this process: the first call registers the provider under <see cref="Name"/> with
    /// <c>SqlConnection.RegisterColumnEncryptionKeyStoreProviders</c> (which SqlClient allows once per process); later calls
    /// only add their KEK to what it resolves, so the service host and a CRM app's own code can both call it. The provider
    /// finds a KEK by its <see cref="IKeyEncryptionKey.KeyId"/>, the column master key's <c>KEY_PATH</c>.
    /// </summary>
    /// <param name="kek">The key-encryption key; the caller keeps it open while connections may need it.</param>
    /// <returns>False when another component registered SqlClient's custom providers first, so this provider could not be added.</returns>
    public static bool Register(IKeyEncryptionKey kek)
    {
        ArgumentNullException.ThrowIfNull(kek);
        lock (RegistrationGate)
        {
            if (!Registered.Contains(kek))
            {
                Registered.Add(kek);
            }

            if (s_registeredWithSqlClient is null)
            {
                try
                {
                    SqlConnection.RegisterColumnEncryptionKeyStoreProviders(new Dictionary<string, SqlColumnEncryptionKeyStoreProvider>
                    {
                        [Name] = new KeyringColumnMasterKeyStoreProvider(ResolveRegistered),
                    });
                    s_registeredWithSqlClient = true;
                }
                catch (InvalidOperationException)
                {
                    // SqlClient accepts one set of custom providers per process and someone else's came first.
                    s_registeredWithSqlClient = false;
                }
            }

            return s_registeredWithSqlClient.Value;
        }
    }

    /// <summary>Stops resolving <paramref name="kek"/> (before it is disposed: a host stopping); SqlClient keeps the provider, which then finds no key at that path.</summary>
    internal static void Unregister(IKeyEncryptionKey kek)
    {
        lock (RegistrationGate)
        {
            Registered.Remove(kek);
        }
    }

    private static IKeyEncryptionKey? ResolveRegistered(string masterKeyPath)
    {
        lock (RegistrationGate)
        {
            // The most recently registered KEK with that id: a host started later in the same process replaces an earlier one.
            return Registered.LastOrDefault(k => string.Equals(k.KeyId, masterKeyPath, StringComparison.OrdinalIgnoreCase));
        }
    }

    /// <inheritdoc />
    public override byte[] EncryptColumnEncryptionKey(string masterKeyPath, string encryptionAlgorithm, byte[] columnEncryptionKey)
    {
        ArgumentNullException.ThrowIfNull(columnEncryptionKey);
        if (columnEncryptionKey.Length == 0)
        {
            throw new ArgumentException("The column encryption key is empty.", nameof(columnEncryptionKey));
        }

        CheckAlgorithm(encryptionAlgorithm);
        var kek = Resolve(masterKeyPath);
        var path = Encoding.Unicode.GetBytes(masterKeyPath.ToLowerInvariant());
        var ciphertext = kek.WrapKey(columnEncryptionKey);
        if (path.Length > short.MaxValue || ciphertext.Length > short.MaxValue)
        {
            throw new ArgumentException("The master key path or the wrapped key is too long for the format.", nameof(masterKeyPath));
        }

        var body = new byte[5 + path.Length + ciphertext.Length];
        body[0] = Version;
        BinaryPrimitives.WriteInt16LittleEndian(body.AsSpan(1), (short)path.Length);
        BinaryPrimitives.WriteInt16LittleEndian(body.AsSpan(3), (short)ciphertext.Length);
        path.CopyTo(body, 5);
        ciphertext.CopyTo(body, 5 + path.Length);
        var signature = Sign(kek, body);
        return [.. body, .. signature];
    }

    /// <inheritdoc />
    public override byte[] DecryptColumnEncryptionKey(string masterKeyPath, string encryptionAlgorithm, byte[] encryptedColumnEncryptionKey)
    {
        ArgumentNullException.ThrowIfNull(encryptedColumnEncryptionKey);
        CheckAlgorithm(encryptionAlgorithm);
        var kek = Resolve(masterKeyPath);
        var blob = encryptedColumnEncryptionKey;
        if (blob.Length < 5 + SignatureLength)
        {
            throw new CryptographicException("The encrypted column encryption key is truncated.");
        }

        if (blob[0] != Version)
        {
            throw new CryptographicException($"The encrypted column encryption key has version 0x{blob[0]:x2}; expected 0x{Version:x2}.");
        }

        var pathLength = BinaryPrimitives.ReadInt16LittleEndian(blob.AsSpan(1));
        var ciphertextLength = BinaryPrimitives.ReadInt16LittleEndian(blob.AsSpan(3));
        if (pathLength < 0 || ciphertextLength < 16 || 5 + pathLength + ciphertextLength + SignatureLength != blob.Length)
        {
            throw new CryptographicException("The encrypted column encryption key's lengths do not match its size.");
        }

        var body = blob.AsSpan(0, blob.Length - SignatureLength);
        if (!Verify(kek, body, blob.AsSpan(body.Length)))
        {
            throw new CryptographicException($"The signature of the encrypted column encryption key does not verify under master key '{masterKeyPath}'.");
        }

        // The key path inside the blob is covered by the signature; it must also be the path SQL Server asked for.
        var path = Encoding.Unicode.GetString(blob.AsSpan(5, pathLength));
        if (!string.Equals(path, masterKeyPath.ToLowerInvariant(), StringComparison.Ordinal))
        {
            throw new CryptographicException("The encrypted column encryption key was made for another master key path.");
        }

        try
        {
            return kek.UnwrapKey(blob.AsSpan(5 + pathLength, ciphertextLength));
        }
        catch (KeyManagementException e)
        {
            throw new CryptographicException("The encrypted column encryption key does not unwrap.", e);
        }
    }

    /// <inheritdoc />
    public override byte[] SignColumnMasterKeyMetadata(string masterKeyPath, bool allowEnclaveComputations) =>
        Sign(Resolve(masterKeyPath), MetadataHashInput(masterKeyPath, allowEnclaveComputations));

    /// <inheritdoc />
    public override bool VerifyColumnMasterKeyMetadata(string masterKeyPath, bool allowEnclaveComputations, byte[] signature)
    {
        ArgumentNullException.ThrowIfNull(signature);
        return Verify(Resolve(masterKeyPath), MetadataHashInput(masterKeyPath, allowEnclaveComputations), signature);
    }

    private static byte[] MetadataHashInput(string masterKeyPath, bool allowEnclaveComputations)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(masterKeyPath);
        return Encoding.Unicode.GetBytes((Name + masterKeyPath + allowEnclaveComputations).ToLowerInvariant());
    }

    private static byte[] Sign(IKeyEncryptionKey kek, ReadOnlySpan<byte> data) => kek.WrapKey(SHA256.HashData(data));

    private static bool Verify(IKeyEncryptionKey kek, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        if (signature.Length != SignatureLength)
        {
            return false;
        }

        byte[] unwrapped;
        try
        {
            unwrapped = kek.UnwrapKey(signature);
        }
        catch (KeyManagementException)
        {
            return false; // RFC 5649 §3 integrity check failed: not made by this KEK
        }

        return CryptographicOperations.FixedTimeEquals(unwrapped, SHA256.HashData(data));
    }

    private IKeyEncryptionKey Resolve(string masterKeyPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(masterKeyPath);
        return _resolve(masterKeyPath) ?? throw new ArgumentException($"No key-encryption key has the id '{masterKeyPath}'.", nameof(masterKeyPath));
    }

    private static void CheckAlgorithm(string encryptionAlgorithm)
    {
        if (!string.Equals(encryptionAlgorithm, Algorithm, StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException($"The key encryption algorithm must be '{Algorithm}' (the name SQL Server's metadata uses).", nameof(encryptionAlgorithm));
        }
    }
}
