namespace CrmSecurity.Crypto.Providers;

/// <summary>
/// A key-encryption key (KEK): wraps and unwraps data keys with AES Key Wrap with Padding (RFC 5649), wherever
/// the KEK lives (a master key in this process, a PKCS#11 token, ...). The KEK itself never leaves its provider
/// through this interface.
/// </summary>
public interface IKeyEncryptionKey : IDisposable
{
    /// <summary>
    /// A stable, non-secret identifier of this KEK (for example <c>local:3f9a...</c> or <c>pkcs11:token/label</c>),
    /// recorded next to wrapped keys so the right KEK is used to unwrap them.
    /// </summary>
    string KeyId { get; }

    /// <summary>Wraps <paramref name="key"/> (RFC 5649).</summary>
    /// <param name="key">The key bytes (1 byte or more).</param>
    byte[] WrapKey(ReadOnlySpan<byte> key);

    /// <summary>Unwraps a value made by <see cref="WrapKey"/>.</summary>
    /// <param name="wrapped">The wrapped key.</param>
    /// <exception cref="KeyManagementException">The integrity check failed (wrong KEK or altered bytes).</exception>
    byte[] UnwrapKey(ReadOnlySpan<byte> wrapped);
}
