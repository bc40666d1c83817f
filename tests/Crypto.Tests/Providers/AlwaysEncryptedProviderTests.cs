using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.SqlServer;

namespace CrmSecurity.Crypto.Tests.Providers;

public sealed class AlwaysEncryptedProviderTests : IDisposable
{
    private readonly LocalMasterKey _kek = LocalMasterKey.Generate();
    private readonly KeyringColumnMasterKeyStoreProvider _provider;

    public AlwaysEncryptedProviderTests() => _provider = new KeyringColumnMasterKeyStoreProvider(_kek);

    [Fact]
    public void A_column_encryption_key_round_trips()
    {
        var cek = RandomNumberGenerator.GetBytes(32);

        var blob = _provider.EncryptColumnEncryptionKey(_kek.KeyId, "RSA_OAEP", cek);

        Assert.Equal(cek, _provider.DecryptColumnEncryptionKey(_kek.KeyId.ToUpperInvariant(), "RSA_OAEP", blob));
    }

    [Fact]
    public void The_blob_has_SqlClients_layout_of_version_lengths_key_path_ciphertext_and_signature()
    {
        var cek = RandomNumberGenerator.GetBytes(32);

        var blob = _provider.EncryptColumnEncryptionKey(_kek.KeyId, "RSA_OAEP", cek);

        var path = Encoding.Unicode.GetBytes(_kek.KeyId.ToLowerInvariant());
        var pathLength = BinaryPrimitives.ReadInt16LittleEndian(blob.AsSpan(1));
        var ciphertextLength = BinaryPrimitives.ReadInt16LittleEndian(blob.AsSpan(3));
        Assert.Equal(0x01, blob[0]);
        Assert.Equal(path.Length, pathLength);
        Assert.Equal(40, ciphertextLength); // KWP of 32 bytes
        Assert.Equal(path, blob.AsSpan(5, pathLength).ToArray());
        Assert.Equal(5 + pathLength + ciphertextLength + 40, blob.Length);
        Assert.Equal(cek, _kek.UnwrapKey(blob.AsSpan(5 + pathLength, ciphertextLength)));
        Assert.Equal(SHA256.HashData(blob.AsSpan(0, blob.Length - 40)), _kek.UnwrapKey(blob.AsSpan(blob.Length - 40)));
    }

    [Fact]
    public void A_blob_with_any_byte_changed_is_refused()
    {
        var blob = _provider.EncryptColumnEncryptionKey(_kek.KeyId, "RSA_OAEP", RandomNumberGenerator.GetBytes(32));

        for (var i = 0; i < blob.Length; i++)
        {
            var tampered = (byte[])blob.Clone();
            tampered[i] ^= 0x01;
            Assert.ThrowsAny<CryptographicException>(() => _provider.DecryptColumnEncryptionKey(_kek.KeyId, "RSA_OAEP", tampered));
        }
    }

    [Fact]
    public void A_truncated_or_extended_blob_is_refused()
    {
        var blob = _provider.EncryptColumnEncryptionKey(_kek.KeyId, "RSA_OAEP", RandomNumberGenerator.GetBytes(32));

        Assert.ThrowsAny<CryptographicException>(() => _provider.DecryptColumnEncryptionKey(_kek.KeyId, "RSA_OAEP", blob[..^1]));
        Assert.ThrowsAny<CryptographicException>(() => _provider.DecryptColumnEncryptionKey(_kek.KeyId, "RSA_OAEP", [.. blob, 0]));
        Assert.ThrowsAny<CryptographicException>(() => _provider.DecryptColumnEncryptionKey(_kek.KeyId, "RSA_OAEP", blob[..10]));
    }

    [Fact]
    public void A_signature_from_another_master_key_is_refused()
    {
        using var other = LocalMasterKey.Generate();
        var otherProvider = new KeyringColumnMasterKeyStoreProvider(other);
        var blob = _provider.EncryptColumnEncryptionKey(_kek.KeyId, "RSA_OAEP", RandomNumberGenerator.GetBytes(32));
        var forged = otherProvider.EncryptColumnEncryptionKey(other.KeyId, "RSA_OAEP", RandomNumberGenerator.GetBytes(32));
        var spliced = blob[..^40].Concat(forged[^40..]).ToArray();

        Assert.ThrowsAny<CryptographicException>(() => _provider.DecryptColumnEncryptionKey(_kek.KeyId, "RSA_OAEP", spliced));
        Assert.Throws<ArgumentException>(() => _provider.DecryptColumnEncryptionKey(other.KeyId, "RSA_OAEP", blob));
    }

    [Fact]
    public void Master_key_metadata_signatures_verify_and_bind_the_enclave_flag()
    {
        var signature = _provider.SignColumnMasterKeyMetadata(_kek.KeyId, allowEnclaveComputations: true);

        Assert.True(_provider.VerifyColumnMasterKeyMetadata(_kek.KeyId, allowEnclaveComputations: true, signature));
        Assert.False(_provider.VerifyColumnMasterKeyMetadata(_kek.KeyId, allowEnclaveComputations: false, signature));
        var tampered = (byte[])signature.Clone();
        tampered[3] ^= 0x80;
        Assert.False(_provider.VerifyColumnMasterKeyMetadata(_kek.KeyId, allowEnclaveComputations: true, tampered));
        Assert.False(_provider.VerifyColumnMasterKeyMetadata(_kek.KeyId, allowEnclaveComputations: true, signature[..^8]));
    }

    [Fact]
    public void Only_the_algorithm_name_SQL_Server_writes_is_accepted()
    {
        Assert.Throws<ArgumentException>(() => _provider.EncryptColumnEncryptionKey(_kek.KeyId, "AES_KWP", RandomNumberGenerator.GetBytes(32)));
    }

    public void Dispose() => _kek.Dispose();
}
