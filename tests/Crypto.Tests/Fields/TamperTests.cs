using System.Buffers.Binary;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Tests.Support;

namespace CrmSecurity.Crypto.Tests.Fields;

public sealed class TamperTests : IDisposable
{
    private static readonly FieldContext Email = new("acme", "contacts", "email");
    private readonly Keyset _keyset = KeysetBuilder.CreateNew("fields").Build();

    [Fact]
    public void Flipping_any_bit_of_a_randomized_ciphertext_makes_it_fail_without_plaintext()
    {
        using var encryptor = _keyset.CreateFieldEncryptor(Email);
        var ciphertext = encryptor.EncryptString("alice@example.com", "42");

        for (var bit = 0; bit < ciphertext.Length * 8; bit++)
        {
            var tampered = (byte[])ciphertext.Clone();
            tampered[bit / 8] ^= (byte)(1 << (bit % 8));
            var error = Assert.Throws<FieldDecryptionException>(() => encryptor.Decrypt(tampered, "42"));
            Assert.True(Enum.IsDefined(error.Reason));
        }
    }

    [Fact]
    public void A_row_id_of_up_to_1024_utf8_bytes_is_bound_and_a_longer_one_is_refused()
    {
        using var encryptor = _keyset.CreateFieldEncryptor(Email);
        var ascii = new string('r', 1024);
        var multibyte = new string('€', 341) + "r"; // 341 * 3 + 1 = 1024 UTF-8 bytes

        Assert.Equal("v", encryptor.DecryptString(encryptor.EncryptString("v", ascii), ascii));
        Assert.Equal("v", encryptor.DecryptString(encryptor.EncryptString("v", multibyte), multibyte));
        Assert.Throws<ArgumentException>(() => encryptor.EncryptString("v", ascii + "r"));
        Assert.Throws<ArgumentException>(() => encryptor.EncryptString("v", new string('€', 342))); // 342 chars, 1026 bytes
        Assert.Throws<ArgumentException>(() => encryptor.Decrypt(encryptor.EncryptString("v", "1"), new string('€', 342)));
        var error = Assert.Throws<FieldDecryptionException>(() => encryptor.DecryptString(encryptor.EncryptString("v", "é"), "e"));
        Assert.Equal(DecryptFailureReason.RowMismatch, error.Reason);
    }

    [Fact]
    public void Flipping_any_bit_of_a_deterministic_ciphertext_makes_it_fail()
    {
        using var encryptor = _keyset.CreateDeterministicFieldEncryptor(Email);
        var ciphertext = encryptor.EncryptString("alice@example.com");

        for (var bit = 0; bit < ciphertext.Length * 8; bit++)
        {
            var tampered = (byte[])ciphertext.Clone();
            tampered[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.Throws<FieldDecryptionException>(() => encryptor.Decrypt(tampered));
        }
    }

    [Theory]
    [InlineData(0, DecryptFailureReason.UnsupportedFormatVersion)]
    [InlineData(1, DecryptFailureReason.WrongMode)]
    [InlineData(2, DecryptFailureReason.WrongKeyset)]
    [InlineData(6, DecryptFailureReason.UnknownKeyVersion)]
    [InlineData(10, DecryptFailureReason.ColumnMismatch)]
    [InlineData(12, DecryptFailureReason.RowMismatch)]
    [InlineData(14, DecryptFailureReason.AuthenticationFailed)]
    [InlineData(30, DecryptFailureReason.AuthenticationFailed)]
    public void A_changed_byte_is_reported_with_the_reason_for_its_position(int position, DecryptFailureReason reason)
    {
        using var encryptor = _keyset.CreateFieldEncryptor(Email);
        var tampered = encryptor.EncryptString("alice@example.com", "42");
        tampered[position] ^= 0x40;

        Assert.Equal(reason, Assert.Throws<FieldDecryptionException>(() => encryptor.Decrypt(tampered, "42")).Reason);
    }

    [Fact]
    public void A_value_copied_to_another_row_fails_to_decrypt()
    {
        using var encryptor = _keyset.CreateFieldEncryptor(Email);
        var ciphertext = encryptor.EncryptString("alice@example.com", "42");

        Assert.Equal(DecryptFailureReason.RowMismatch, Assert.Throws<FieldDecryptionException>(() => encryptor.Decrypt(ciphertext, "43")).Reason);
    }

    [Fact]
    public void A_value_moved_to_another_row_with_a_colliding_row_check_still_fails_authentication()
    {
        using var encryptor = _keyset.CreateFieldEncryptor(Email);
        var ciphertext = encryptor.EncryptString("alice@example.com", "42");
        var target = FindRowWithSameCheck("42");

        // The 16-bit row check is only a diagnostic; the row id itself is in the associated data.
        Assert.Equal(DecryptFailureReason.AuthenticationFailed, Assert.Throws<FieldDecryptionException>(() => encryptor.Decrypt(ciphertext, target)).Reason);
    }

    [Theory]
    [InlineData("globex", "contacts", "email")]
    [InlineData("acme", "leads", "email")]
    [InlineData("acme", "contacts", "phone")]
    public void A_value_copied_to_another_tenant_table_or_column_fails_to_decrypt(string tenant, string table, string column)
    {
        using var source = _keyset.CreateFieldEncryptor(Email);
        using var target = _keyset.CreateFieldEncryptor(new FieldContext(tenant, table, column));
        using var deterministicSource = _keyset.CreateDeterministicFieldEncryptor(Email);
        using var deterministicTarget = _keyset.CreateDeterministicFieldEncryptor(new FieldContext(tenant, table, column));

        Assert.Equal(DecryptFailureReason.ColumnMismatch, Assert.Throws<FieldDecryptionException>(() => target.Decrypt(source.EncryptString("a@b.c", "42"), "42")).Reason);
        Assert.Equal(DecryptFailureReason.ColumnMismatch, Assert.Throws<FieldDecryptionException>(() => deterministicTarget.Decrypt(deterministicSource.EncryptString("a@b.c"))).Reason);
    }

    [Fact]
    public void A_column_swap_whose_check_collides_still_fails_authentication()
    {
        using var source = _keyset.CreateFieldEncryptor(Email);
        var ciphertext = source.EncryptString("a@b.c", "42");
        var column = FindColumnWithSameCheck(ciphertext);
        using var target = _keyset.CreateFieldEncryptor(new FieldContext("acme", "contacts", column));

        Assert.Equal(DecryptFailureReason.AuthenticationFailed, Assert.Throws<FieldDecryptionException>(() => target.Decrypt(ciphertext, "42")).Reason);
    }

    [Fact]
    public void Swapping_the_key_version_in_the_header_fails_authentication()
    {
        using var rotated = TestKeys.Rotated(_keyset);
        using var encryptor = rotated.CreateFieldEncryptor(Email);
        var ciphertext = encryptor.EncryptString("alice@example.com", "42");
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32BigEndian(ciphertext.AsSpan(6)));
        BinaryPrimitives.WriteUInt32BigEndian(ciphertext.AsSpan(6), 1);

        Assert.Equal(DecryptFailureReason.AuthenticationFailed, Assert.Throws<FieldDecryptionException>(() => encryptor.Decrypt(ciphertext, "42")).Reason);
    }

    [Fact]
    public void Every_truncation_is_refused_and_short_ones_are_reported_as_truncated()
    {
        using var encryptor = _keyset.CreateFieldEncryptor(Email);
        var ciphertext = encryptor.EncryptString("alice@example.com", "42");

        for (var length = 0; length < ciphertext.Length; length++)
        {
            var error = Assert.Throws<FieldDecryptionException>(() => encryptor.Decrypt(ciphertext.AsSpan(0, length), "42"));
            if (length < FieldEncryptor.Overhead)
            {
                Assert.Equal(DecryptFailureReason.Truncated, error.Reason);
            }
        }
    }

    [Fact]
    public void Bytes_appended_to_a_ciphertext_are_refused()
    {
        using var encryptor = _keyset.CreateFieldEncryptor(Email);
        using var deterministic = _keyset.CreateDeterministicFieldEncryptor(Email);

        byte[] padded = [.. encryptor.EncryptString("alice@example.com", "42"), 0];
        byte[] paddedDeterministic = [.. deterministic.EncryptString("alice@example.com"), 0];

        Assert.Equal(DecryptFailureReason.AuthenticationFailed, Assert.Throws<FieldDecryptionException>(() => encryptor.Decrypt(padded, "42")).Reason);
        Assert.Equal(DecryptFailureReason.AuthenticationFailed, Assert.Throws<FieldDecryptionException>(() => deterministic.Decrypt(paddedDeterministic)).Reason);
    }

    [Fact]
    public void A_ciphertext_from_another_keyset_is_reported_as_the_wrong_key()
    {
        using var other = KeysetBuilder.CreateNew("fields").Build();
        using var encryptor = _keyset.CreateFieldEncryptor(Email);
        using var otherEncryptor = other.CreateFieldEncryptor(Email);

        Assert.Equal(DecryptFailureReason.WrongKeyset, Assert.Throws<FieldDecryptionException>(() => otherEncryptor.Decrypt(encryptor.EncryptString("x", "1"), "1")).Reason);
    }

    [Fact]
    public void Key_material_that_differs_under_the_same_keyset_id_fails_authentication()
    {
        using var fixedKeys = TestKeys.Fixed();
        using var impostor = Support.TestKeys.WithSameIdAndOtherMaterial(fixedKeys);
        using var encryptor = fixedKeys.CreateFieldEncryptor(Email);
        using var impostorEncryptor = impostor.CreateFieldEncryptor(Email);

        Assert.Equal(DecryptFailureReason.AuthenticationFailed, Assert.Throws<FieldDecryptionException>(() => impostorEncryptor.Decrypt(encryptor.EncryptString("x", "1"), "1")).Reason);
    }

    [Fact]
    public void Randomized_and_deterministic_ciphertexts_are_not_accepted_by_the_other_mode()
    {
        using var randomized = _keyset.CreateFieldEncryptor(Email);
        using var deterministic = _keyset.CreateDeterministicFieldEncryptor(Email);

        Assert.Equal(DecryptFailureReason.WrongMode, Assert.Throws<FieldDecryptionException>(() => randomized.Decrypt(deterministic.EncryptString("x"), "1")).Reason);
        Assert.Equal(DecryptFailureReason.WrongMode, Assert.Throws<FieldDecryptionException>(() => deterministic.Decrypt(randomized.EncryptString("x", "1"))).Reason);
    }

    [Theory]
    [InlineData("")]
    [InlineData("cf2:AQE")]
    [InlineData("cf1:AQE=")]
    [InlineData("cf1:AQ+/")]
    [InlineData("cf1:AQ E")]
    [InlineData("cf1:A")]
    [InlineData("cf1:AR")]
    public void Malformed_text_forms_are_reported_as_invalid_encoding(string text)
    {
        using var encryptor = _keyset.CreateFieldEncryptor(Email);

        Assert.Equal(DecryptFailureReason.InvalidEncoding, Assert.Throws<FieldDecryptionException>(() => encryptor.DecryptText(text, "1")).Reason);
    }

    [Fact]
    public void A_text_form_with_a_changed_character_fails()
    {
        using var encryptor = _keyset.CreateFieldEncryptor(Email);
        var text = encryptor.EncryptText("alice@example.com", "42");

        for (var i = FieldText.Prefix.Length; i < text.Length; i++)
        {
            var changed = text[..i] + (text[i] == 'A' ? 'B' : 'A') + text[(i + 1)..];
            Assert.Throws<FieldDecryptionException>(() => encryptor.DecryptText(changed, "42"));
        }
    }

    private static string FindRowWithSameCheck(string row)
    {
        var target = CiphertextHeader.RowCheck(System.Text.Encoding.UTF8.GetBytes(row));
        for (var i = 0; ; i++)
        {
            var candidate = "r" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (CiphertextHeader.RowCheck(System.Text.Encoding.UTF8.GetBytes(candidate)) == target)
            {
                return candidate;
            }
        }
    }

    private static string FindColumnWithSameCheck(byte[] ciphertext)
    {
        var target = BinaryPrimitives.ReadUInt16BigEndian(ciphertext.AsSpan(10));
        for (var i = 0; ; i++)
        {
            var candidate = "c" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (CiphertextHeader.ColumnCheck(new FieldContext("acme", "contacts", candidate).Encode()) == target)
            {
                return candidate;
            }
        }
    }

    public void Dispose() => _keyset.Dispose();
}
