namespace CrmSecurity.Crypto.Keys;

/// <summary>What a key version may still be used for.</summary>
public enum KeyStatus
{
    /// <summary>Decrypts; encrypts when it is the keyset's primary. A new version can be added active but not yet primary, so every host knows it before any host encrypts with it.</summary>
    Active = 1,

    /// <summary>Decrypts old data only; never encrypts. Versions that were primary become decrypt-only on rotation.</summary>
    DecryptOnly = 2,

    /// <summary>The key material is gone: data encrypted under it can never be decrypted again.</summary>
    Destroyed = 3,
}

/// <summary>Metadata of one key version; never carries key material.</summary>
/// <param name="Version">Version number, counted from 1 within the keyset.</param>
/// <param name="Status">What the version may be used for.</param>
/// <param name="CreatedAt">When the version was made.</param>
/// <param name="IsPrimary">Whether new data is encrypted under this version.</param>
public sealed record KeyVersionInfo(uint Version, KeyStatus Status, DateTimeOffset CreatedAt, bool IsPrimary);
