using System.Reflection;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Keys.Insecure;
using CrmSecurity.Crypto.Tests.Support;

namespace CrmSecurity.Crypto.Tests.Keys;

public sealed class KeysetTests
{
    private static readonly FieldContext Email = new("acme", "contacts", "email");

    [Fact]
    public void Key_material_leaves_the_library_in_clear_only_through_the_insecure_namespace()
    {
        // As Tink's InsecureCleartextKeysetHandle: no public member of the library hands out key material unless its
        // namespace and name say so, so every use shows up in a review.
        var clear = typeof(Keyset).Assembly.GetExportedTypes()
            .SelectMany(type => type.GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Where(member => member.Name.Contains("Plaintext", StringComparison.OrdinalIgnoreCase) || member.Name.Contains("Cleartext", StringComparison.OrdinalIgnoreCase)
                || member.Name.Contains("KeyMaterial", StringComparison.OrdinalIgnoreCase) || member.DeclaringType!.Namespace!.EndsWith(".Insecure", StringComparison.Ordinal))
            .Select(member => $"{member.DeclaringType!.FullName}.{member.Name}")
            .Distinct()
            .ToList();

        Assert.Equal(["CrmSecurity.Crypto.Keys.Insecure.InsecureCleartextKeyMaterial.Export", "CrmSecurity.Crypto.Keys.Insecure.InsecureCleartextKeyMaterial.ExportBase64"], clear);
    }

    [Fact]
    public void Rotation_adds_a_primary_version_and_keeps_old_data_readable()
    {
        using var original = KeysetBuilder.CreateNew("fields").Build();
        using var v1 = original.CreateFieldEncryptor(Email);
        var old = v1.EncryptString("alice@example.com", "42");

        using var rotated = TestKeys.Rotated(original);
        using var v2 = rotated.CreateFieldEncryptor(Email);
        var fresh = v2.EncryptString("bob@example.com", "43");

        Assert.Equal(2u, rotated.PrimaryVersion);
        Assert.Equal(KeyStatus.DecryptOnly, rotated.Versions[0].Status);
        Assert.Equal("alice@example.com", v2.DecryptString(old, "42"));
        Assert.Equal(2u, FieldCiphertext.Inspect(fresh).KeyVersion);
        Assert.True(v2.NeedsReencryption(old));
        Assert.False(v2.NeedsReencryption(fresh));
    }

    [Fact]
    public void A_destroyed_version_makes_its_data_unreadable_with_a_reason_saying_so()
    {
        using var original = KeysetBuilder.CreateNew("fields").Build();
        using var v1 = original.CreateFieldEncryptor(Email);
        var old = v1.EncryptString("alice@example.com", "42");

        var builder = KeysetBuilder.From(original);
        builder.AddVersion();
        builder.Destroy(1);
        using var destroyed = builder.Build();
        using var encryptor = destroyed.CreateFieldEncryptor(Email);

        Assert.Equal(KeyStatus.Destroyed, destroyed.Versions[0].Status);
        Assert.Equal(DecryptFailureReason.KeyDestroyed, Assert.Throws<FieldDecryptionException>(() => encryptor.Decrypt(old, "42")).Reason);
        Assert.Throws<InvalidOperationException>(() => InsecureCleartextKeyMaterial.Export(destroyed, 1));
    }

    [Fact]
    public void A_version_newer_than_the_keyset_knows_is_reported_as_unknown()
    {
        using var original = KeysetBuilder.CreateNew("fields").Build();
        using var rotated = TestKeys.Rotated(original);
        using var newer = rotated.CreateFieldEncryptor(Email);
        using var older = original.CreateFieldEncryptor(Email);

        var error = Assert.Throws<FieldDecryptionException>(() => older.Decrypt(newer.EncryptString("x", "1"), "1"));

        Assert.Equal(DecryptFailureReason.UnknownKeyVersion, error.Reason);
    }

    [Fact]
    public void The_primary_can_be_neither_destroyed_nor_retired()
    {
        using var keyset = KeysetBuilder.CreateNew("fields").Build();
        var builder = KeysetBuilder.From(keyset);

        Assert.Throws<InvalidOperationException>(() => builder.Destroy(1));
        Assert.Throws<InvalidOperationException>(() => builder.MarkDecryptOnly(1));
    }

    [Fact]
    public void A_staged_version_decrypts_before_it_becomes_primary()
    {
        using var original = KeysetBuilder.CreateNew("fields").Build();
        var builder = KeysetBuilder.From(original);
        var staged = builder.AddVersion(makePrimary: false);
        using var withStaged = builder.Build();

        Assert.Equal(1u, withStaged.PrimaryVersion);
        Assert.Equal(KeyStatus.Active, withStaged.Versions[(int)staged - 1].Status);
        Assert.False(withStaged.Versions[(int)staged - 1].IsPrimary);
    }

    [Fact]
    public void ToString_and_exception_messages_never_show_key_material()
    {
        using var keyset = TestKeys.Fixed();
        using var encryptor = keyset.CreateFieldEncryptor(Email);
        var material = Convert.ToHexString(InsecureCleartextKeyMaterial.Export(keyset, 1));
        var error = Assert.Throws<FieldDecryptionException>(() => encryptor.DecryptString(encryptor.EncryptString("secret-value", "1"), "2"));

        foreach (var text in new[] { keyset.ToString(), encryptor.ToString(), error.ToString(), string.Join(",", keyset.Versions) })
        {
            Assert.DoesNotContain(material, text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(Convert.ToBase64String(InsecureCleartextKeyMaterial.Export(keyset, 1)), text, StringComparison.Ordinal);
            Assert.DoesNotContain("secret-value", text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Disposing_a_keyset_zeroes_its_key_material_and_stops_its_use()
    {
        var keyset = KeysetBuilder.CreateNew("fields").Build();
        var material = keyset.Keys[0].Material!;

        keyset.Dispose();

        Assert.True(material.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => material.Span.ToArray());
        Assert.Throws<ObjectDisposedException>(() => keyset.CreateFieldEncryptor(Email));
    }

    [Fact]
    public void Encryptors_are_safe_to_share_between_threads()
    {
        using var keyset = KeysetBuilder.CreateNew("fields").Build();
        using var encryptor = keyset.CreateFieldEncryptor(Email);
        using var deterministic = keyset.CreateDeterministicFieldEncryptor(Email);

        Parallel.For(0, 2000, i =>
        {
            var row = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal("v" + row, encryptor.DecryptString(encryptor.EncryptString("v" + row, row), row));
            Assert.Equal("v" + row, deterministic.DecryptString(deterministic.EncryptString("v" + row)));
        });
    }

    [Fact]
    public void Deterministic_encryption_gives_equal_ciphertexts_for_equal_values_and_randomized_does_not()
    {
        using var keyset = KeysetBuilder.CreateNew("fields").Build();
        using var encryptor = keyset.CreateFieldEncryptor(Email);
        using var deterministic = keyset.CreateDeterministicFieldEncryptor(Email);

        Assert.Equal(deterministic.EncryptString("a@b.c"), deterministic.EncryptString("a@b.c"));
        Assert.NotEqual(encryptor.EncryptString("a@b.c", "1"), encryptor.EncryptString("a@b.c", "1"));
    }
}
