using System.Security.Cryptography;

namespace CrmSecurity.Crypto.Fields;

/// <summary>
/// The one exception every decrypt failure raises. <see cref="Reason"/> says which failure it was; no
/// plaintext, partial or whole, is ever returned with it, and its message never contains key material or
/// plaintext.
/// </summary>
public sealed class FieldDecryptionException : CryptographicException
{
    /// <summary>Creates the exception with the default message for <paramref name="reason"/>.</summary>
    /// <param name="reason">Which failure happened.</param>
    public FieldDecryptionException(DecryptFailureReason reason)
        : base(DefaultMessage(reason)) => Reason = reason;

    /// <summary>Creates the exception with a message adding detail (never secrets).</summary>
    /// <param name="reason">Which failure happened.</param>
    /// <param name="detail">Extra detail appended to the default message.</param>
    public FieldDecryptionException(DecryptFailureReason reason, string detail)
        : base($"{DefaultMessage(reason)} {detail}") => Reason = reason;

    /// <summary>Creates the exception (for serializers and analyzers); the reason is <see cref="DecryptFailureReason.AuthenticationFailed"/>.</summary>
    public FieldDecryptionException()
        : this(DecryptFailureReason.AuthenticationFailed)
    {
    }

    /// <summary>Creates the exception with a custom message; the reason is <see cref="DecryptFailureReason.AuthenticationFailed"/>.</summary>
    /// <param name="message">The message.</param>
    public FieldDecryptionException(string message)
        : base(message) => Reason = DecryptFailureReason.AuthenticationFailed;

    /// <summary>Creates the exception with a custom message and inner exception; the reason is <see cref="DecryptFailureReason.AuthenticationFailed"/>.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public FieldDecryptionException(string message, Exception innerException)
        : base(message, innerException) => Reason = DecryptFailureReason.AuthenticationFailed;

    /// <summary>Which failure happened.</summary>
    public DecryptFailureReason Reason { get; }

    private static string DefaultMessage(DecryptFailureReason reason) => reason switch
    {
        DecryptFailureReason.Truncated => "The ciphertext is truncated: it is shorter than the smallest valid ciphertext.",
        DecryptFailureReason.UnsupportedFormatVersion => "The ciphertext has a format version this library does not read.",
        DecryptFailureReason.InvalidEncoding => "The ciphertext text form is malformed (prefix or base64url).",
        DecryptFailureReason.WrongMode => "The ciphertext was made in another encryption mode (randomized vs deterministic) or with an unknown algorithm.",
        DecryptFailureReason.WrongKeyset => "The ciphertext was made with another keyset: wrong key.",
        DecryptFailureReason.UnknownKeyVersion => "The ciphertext names a key version this keyset does not have.",
        DecryptFailureReason.KeyDestroyed => "The key version of this ciphertext was destroyed; it can never be decrypted.",
        DecryptFailureReason.SubjectShredded => "The data subject's key was shredded; this value can never be decrypted.",
        DecryptFailureReason.ColumnMismatch => "The ciphertext belongs to another tenant, table or column.",
        DecryptFailureReason.RowMismatch => "The ciphertext belongs to another row.",
        DecryptFailureReason.AuthenticationFailed => "The ciphertext failed authentication: it was altered, or made with different key material.",
        _ => "The ciphertext could not be decrypted.",
    };
}
