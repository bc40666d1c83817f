namespace CrmSecurity.Crypto.Fields;

/// <summary>Why a ciphertext could not be decrypted. Every decrypt failure is a <see cref="FieldDecryptionException"/> with one of these.</summary>
public enum DecryptFailureReason
{
    /// <summary>Shorter than the smallest valid ciphertext (cut off, or empty).</summary>
    Truncated = 1,

    /// <summary>The format version byte is not one this library reads.</summary>
    UnsupportedFormatVersion = 2,

    /// <summary>The text form is malformed: wrong prefix, characters outside base64url, padding, or non-canonical encoding.</summary>
    InvalidEncoding = 3,

    /// <summary>Randomized ciphertext given to a deterministic encryptor or the other way round, or an unknown algorithm byte.</summary>
    WrongMode = 4,

    /// <summary>The ciphertext names another keyset (another keyring, tenant key or data subject): wrong key.</summary>
    WrongKeyset = 5,

    /// <summary>The ciphertext names a key version this keyset does not have.</summary>
    UnknownKeyVersion = 6,

    /// <summary>The key version was destroyed; the value can never be decrypted again.</summary>
    KeyDestroyed = 7,

    /// <summary>The data subject's key was shredded; the value can never be decrypted again.</summary>
    SubjectShredded = 8,

    /// <summary>The ciphertext belongs to another tenant, table or column.</summary>
    ColumnMismatch = 9,

    /// <summary>The ciphertext belongs to another row.</summary>
    RowMismatch = 10,

    /// <summary>The authentication tag does not verify: the bytes were changed (including bytes added at the end), or the key material differs.</summary>
    AuthenticationFailed = 11,
}
