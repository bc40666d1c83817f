using System.Security.Cryptography;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Tests.Support;

namespace CrmSecurity.Crypto.Tests.Providers;

/// <summary>Against a real SoftHSM2 token that the tests initialise.</summary>
public sealed class Pkcs11Tests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-pkcs11-").FullName;

    [Fact]
    public void A_key_generated_on_the_token_wraps_and_unwraps_a_data_key()
    {
        using var kek = Pkcs11KeyEncryptionKey.Open(SoftHsm.ModulePath, SoftHsm.TokenLabel, SoftHsm.Pin, "kek-" + Guid.NewGuid().ToString("N")[..8], createIfMissing: true);
        var key = RandomNumberGenerator.GetBytes(40);

        var wrapped = kek.WrapKey(key);

        Assert.Equal(48, wrapped.Length); // RFC 5649: 8-byte integrity block + 40 bytes rounded up to 8
        Assert.Equal(key, kek.UnwrapKey(wrapped));
        Assert.StartsWith("pkcs11:" + SoftHsm.TokenLabel + "/", kek.KeyId, StringComparison.Ordinal);
    }

    [Fact]
    public void A_keyring_wrapped_on_the_token_loads_again_in_a_new_session()
    {
        var label = "kek-" + Guid.NewGuid().ToString("N")[..8];
        var path = Path.Combine(_directory, "keyring.json");
        byte[] ciphertext;
        using (var kek = Pkcs11KeyEncryptionKey.Open(SoftHsm.ModulePath, SoftHsm.TokenLabel, SoftHsm.Pin, label, createIfMissing: true))
        using (var keyring = Keyring.CreateNew())
        {
            using var encryptor = keyring.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(new FieldContext("acme", "contacts", "email"));
            ciphertext = encryptor.EncryptString("alice@example.com", "7");
            keyring.Save(path, kek);
        }

        using var reopened = Pkcs11KeyEncryptionKey.Open(SoftHsm.ModulePath, SoftHsm.TokenLabel, SoftHsm.Pin, label);
        using var loaded = Keyring.Load(path, reopened);
        using var again = loaded.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(new FieldContext("acme", "contacts", "email"));

        Assert.Equal("alice@example.com", again.DecryptString(ciphertext, "7"));
    }

    [Fact]
    public void An_altered_wrapped_key_is_refused_by_the_token()
    {
        using var kek = Pkcs11KeyEncryptionKey.Open(SoftHsm.ModulePath, SoftHsm.TokenLabel, SoftHsm.Pin, "kek-" + Guid.NewGuid().ToString("N")[..8], createIfMissing: true);
        var wrapped = kek.WrapKey(RandomNumberGenerator.GetBytes(32));
        wrapped[^1] ^= 1;

        Assert.Throws<KeyManagementException>(() => kek.UnwrapKey(wrapped));
    }

    [Fact]
    public void A_token_label_that_does_not_exist_is_named_in_the_error()
    {
        var error = Assert.Throws<KeyManagementException>(() => Pkcs11KeyEncryptionKey.Open(SoftHsm.ModulePath, "no-such-token", SoftHsm.Pin, "kek"));

        Assert.Contains("'no-such-token'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_key_label_that_does_not_exist_is_named_in_the_error()
    {
        var error = Assert.Throws<KeyManagementException>(() => Pkcs11KeyEncryptionKey.Open(SoftHsm.ModulePath, SoftHsm.TokenLabel, SoftHsm.Pin, "no-such-key"));

        Assert.Contains("'no-such-key'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_wrong_pin_is_refused()
    {
        var error = Assert.Throws<KeyManagementException>(() => Pkcs11KeyEncryptionKey.Open(SoftHsm.ModulePath, SoftHsm.TokenLabel, "wrong-pin", "kek"));

        Assert.Contains("PIN", error.Message, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
