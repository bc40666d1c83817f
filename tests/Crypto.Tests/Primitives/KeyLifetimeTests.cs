using System.Reflection;
using System.Security.Cryptography;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Primitives;

namespace CrmSecurity.Crypto.Tests.Primitives;

/// <summary>Derived column keys and their pooled cipher objects end with their owner; row ids have a hard limit.</summary>
public sealed class KeyLifetimeTests
{
    private static readonly FieldContext Email = new("acme", "contacts", "email");

    [Fact]
    public void Disposing_a_column_key_slot_disposes_every_pooled_cipher_and_zeroes_the_derived_key()
    {
        var created = new List<TrackedCipher>();
        var secret = SecretBytes.Random(32);
        var bytes = Backing(secret);
        var slot = new ColumnKeys<TrackedCipher>.Slot(1, secret, key =>
        {
            var cipher = new TrackedCipher(key.ToArray());
            created.Add(cipher);
            return cipher;
        });
        var first = slot.Rent();
        var second = slot.Rent();
        slot.Return(first);
        slot.Return(second);
        Assert.NotEqual(new byte[32], bytes); // random key material before

        slot.Dispose();

        Assert.Equal(2, created.Count);
        Assert.All(created, c => Assert.True(c.Disposed));
        Assert.True(secret.IsDisposed);
        Assert.Equal(new byte[32], bytes); // the pinned buffer itself is zero, not just unreachable
        Assert.Throws<ObjectDisposedException>(() => slot.Rent());
    }

    [Fact]
    public void A_cipher_returned_to_a_pool_after_it_was_disposed_is_disposed_not_kept()
    {
        var pool = new Pool<TrackedCipher>(() => new TrackedCipher([]));
        var rented = pool.Rent();

        pool.Dispose();
        pool.Return(rented);

        Assert.True(rented.Disposed);
    }

    [Fact]
    public void A_disposed_field_encryptor_refuses_to_encrypt_or_decrypt()
    {
        using var keyset = KeysetBuilder.CreateNew("fields").Build();
        var encryptor = keyset.CreateFieldEncryptor(Email);
        var ciphertext = encryptor.EncryptString("x", "1");

        encryptor.Dispose();

        Assert.Throws<ObjectDisposedException>(() => encryptor.EncryptString("x", "1"));
        Assert.Throws<ObjectDisposedException>(() => encryptor.DecryptString(ciphertext, "1"));
    }

    [Fact]
    public void A_row_id_of_1024_UTF8_bytes_is_accepted_and_one_byte_more_is_refused_naming_the_row_id()
    {
        using var keyset = KeysetBuilder.CreateNew("fields").Build();
        using var encryptor = keyset.CreateFieldEncryptor(Email);
        var longest = new string('r', FieldEncryptor.MaxRowIdBytes);
        var ciphertext = encryptor.EncryptString("v", longest);

        var ascii = Assert.Throws<ArgumentException>(() => encryptor.EncryptString("v", longest + "r"));
        // 341 euro signs are 1,023 bytes, plus two ASCII bytes: 343 characters but 1,025 bytes.
        var multibyte = Assert.Throws<ArgumentException>(() => encryptor.EncryptString("v", new string('€', 341) + "rr"));
        var onDecrypt = Assert.Throws<ArgumentException>(() => encryptor.DecryptString(ciphertext, longest + "r"));

        Assert.Equal("v", encryptor.DecryptString(ciphertext, longest));
        Assert.All(new[] { ascii, multibyte, onDecrypt }, e =>
        {
            Assert.Equal("rowId", e.ParamName);
            Assert.Contains("longer than 1024 UTF-8 bytes", e.Message, StringComparison.Ordinal);
        });
    }

    private static byte[] Backing(SecretBytes secret) =>
        (byte[])typeof(SecretBytes).GetField("_bytes", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(secret)!;

    internal sealed class TrackedCipher(byte[] key) : IDisposable
    {
        public bool Disposed { get; private set; }

        public void Dispose()
        {
            CryptographicOperations.ZeroMemory(key);
            Disposed = true;
        }
    }
}
