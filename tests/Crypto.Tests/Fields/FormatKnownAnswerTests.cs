using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Tests.Support;

namespace CrmSecurity.Crypto.Tests.Fields;

/// <summary>
/// Known answers for our own format, computed independently from the byte-by-byte description of docs/crypto-formats.md
/// (with Python's `cryptography`: HKDF-SHA-256, AESGCM, AESSIV, HMAC), for root key 00..1f and keyset id 01020304.
/// A change to the format or the key derivation breaks these.
/// </summary>
public sealed class FormatKnownAnswerTests
{
    private const string GcmCiphertext =
        "0101010203040000000164ad0260000102030405060708090a0b37a61c1f9ffa1800e50bdd6e63a0d9c6d4043ddda0bc7b28c918c659d5b406eb96";

    private const string SivCiphertext = "010201020304000000018b150000f8aefc0b8ec1dcc85832b3ceaf9b72efd48d7e15f6ddd42af1";

    [Fact]
    public void A_randomized_ciphertext_built_from_the_documented_format_decrypts()
    {
        using var keyset = TestKeys.Fixed();
        using var encryptor = keyset.CreateFieldEncryptor(new FieldContext("acme", "contacts", "email"));

        Assert.Equal("alice@example.com", encryptor.DecryptString(Convert.FromHexString(GcmCiphertext), "42"));
    }

    [Fact]
    public void A_deterministic_ciphertext_matches_the_documented_format_exactly()
    {
        using var keyset = TestKeys.Fixed();
        using var encryptor = keyset.CreateDeterministicFieldEncryptor(new FieldContext("acme", "contacts", "national_id"));

        Assert.Equal(SivCiphertext, Convert.ToHexStringLower(encryptor.EncryptString("AB123456C")));
        Assert.Equal("AB123456C", encryptor.DecryptString(Convert.FromHexString(SivCiphertext)));
    }

    [Fact]
    public void The_header_of_a_new_ciphertext_is_laid_out_as_documented()
    {
        using var keyset = TestKeys.Fixed();
        using var encryptor = keyset.CreateFieldEncryptor(new FieldContext("acme", "contacts", "email"));

        var ciphertext = encryptor.EncryptString("alice@example.com", "42");

        // Same header as the independent answer (format 01, GCM 01, keyset 01020304, version 1, column and row checks).
        Assert.Equal(GcmCiphertext[..28], Convert.ToHexStringLower(ciphertext.AsSpan(0, 14)));
        Assert.Equal(14 + 12 + "alice@example.com".Length + 16, ciphertext.Length);
        Assert.NotEqual(GcmCiphertext, Convert.ToHexStringLower(ciphertext)); // a fresh random nonce
    }

    [Fact]
    public void The_text_form_is_the_prefix_and_unpadded_base64url_of_the_binary_form()
    {
        using var keyset = TestKeys.Fixed();
        using var encryptor = keyset.CreateDeterministicFieldEncryptor(new FieldContext("acme", "contacts", "national_id"));

        var text = encryptor.EncryptText("AB123456C");

        Assert.Equal("cf1:" + Convert.ToBase64String(Convert.FromHexString(SivCiphertext)).TrimEnd('=').Replace('+', '-').Replace('/', '_'), text);
        Assert.Equal("AB123456C", encryptor.DecryptText(text));
    }

    [Fact]
    public void A_blind_index_matches_the_documented_derivation()
    {
        using var keyset = TestKeys.Fixed();
        using var index = keyset.CreateBlindIndex(new FieldContext("acme", "contacts", "email"), new BlindIndexDefinition("email_idx", 20, Normaliser.Email));

        Assert.Equal("7cf6a0", Convert.ToHexStringLower(index.Compute("  Alice@Example.COM ")));
    }
}
