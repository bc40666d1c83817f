using System.Security.Cryptography;
using CrmSecurity.Crypto.Providers;

namespace CrmSecurity.Crypto.Tests.Providers;

/// <summary>Secrets an installation keeps in its database: wrapped by the KEK, or sealed in a <see cref="SecretBox"/>.</summary>
public sealed class SecretsAtRestTests
{
    [Fact]
    public void A_wrapped_secret_opens_with_its_kek_and_names_that_kek()
    {
        using var kek = LocalMasterKey.Generate();
        var stored = WrappedSecret.Create(kek, 32, out var secret);

        Assert.StartsWith("kwp1:" + kek.KeyId + ":", stored, StringComparison.Ordinal);
        Assert.Equal(kek.KeyId, WrappedSecret.KekIdOf(stored));
        Assert.DoesNotContain(Convert.ToBase64String(secret), stored, StringComparison.Ordinal);
        Assert.Equal(secret, WrappedSecret.Unwrap(kek, stored));
    }

    [Fact]
    public void A_wrapped_secret_does_not_open_under_another_kek_and_the_error_names_both()
    {
        using var installation = LocalMasterKey.Generate();
        using var other = LocalMasterKey.Generate();
        var stored = WrappedSecret.Wrap(installation, RandomNumberGenerator.GetBytes(32));

        var error = Assert.Throws<KeyManagementException>(() => WrappedSecret.Unwrap(other, stored));

        Assert.Contains(installation.KeyId, error.Message, StringComparison.Ordinal);
        Assert.Contains(other.KeyId, error.Message, StringComparison.Ordinal);
        Assert.Contains("Crypto:MasterKey", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_altered_wrapped_secret_is_refused()
    {
        using var kek = LocalMasterKey.Generate();
        var stored = WrappedSecret.Wrap(kek, RandomNumberGenerator.GetBytes(32));
        var bytes = Convert.FromBase64String(stored[(stored.LastIndexOf(':') + 1)..]);
        bytes[5] ^= 1;
        var altered = stored[..(stored.LastIndexOf(':') + 1)] + Convert.ToBase64String(bytes);

        Assert.Throws<KeyManagementException>(() => WrappedSecret.Unwrap(kek, altered));
        Assert.Throws<KeyManagementException>(() => WrappedSecret.Unwrap(kek, "a clear secret"));
    }

    [Fact]
    public void A_sealed_value_opens_only_with_the_same_associated_data()
    {
        using var box = new SecretBox(RandomNumberGenerator.GetBytes(32));
        var sealedText = box.Seal("JBSWY3DPEHPK3PXP", "user:alice");

        Assert.True(SecretBox.IsSealed(sealedText));
        Assert.DoesNotContain("JBSWY3DPEHPK3PXP", sealedText, StringComparison.Ordinal);
        Assert.Equal("JBSWY3DPEHPK3PXP", box.Open(sealedText, "user:alice"));
        Assert.ThrowsAny<CryptographicException>(() => box.Open(sealedText, "user:bob"));
    }

    [Fact]
    public void Sealing_twice_gives_different_texts_and_an_altered_text_does_not_open()
    {
        using var box = new SecretBox(RandomNumberGenerator.GetBytes(32));
        var first = box.Seal("same", "ad");
        var second = box.Seal("same", "ad");
        Assert.NotEqual(first, second);

        var flipped = first[..^2] + (first[^2] == 'A' ? 'B' : 'A') + first[^1];
        Assert.ThrowsAny<CryptographicException>(() => box.Open(flipped, "ad"));
        using var otherKey = new SecretBox(RandomNumberGenerator.GetBytes(32));
        Assert.ThrowsAny<CryptographicException>(() => otherKey.Open(first, "ad"));
        Assert.ThrowsAny<CryptographicException>(() => box.Open("not sealed", "ad"));
    }
}
