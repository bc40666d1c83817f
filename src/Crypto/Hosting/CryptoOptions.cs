namespace CrmSecurity.Crypto.Hosting;

/// <summary>Settings of the Crypto module, bound from the <c>Crypto</c> section and validated at start.</summary>
public sealed class CryptoOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Crypto";

    /// <summary>Whether the module runs (and its settings are checked at start). Key-management verbs always turn it on.</summary>
    public bool Enabled { get; set; }

    /// <summary>The keyring file; relative paths are relative to the working directory.</summary>
    public string KeyringPath { get; set; } = "data/keyring.json";

    /// <summary>Whether the keyring must exist and load at start (off only for <c>keys init</c> and <c>keys restore</c>).</summary>
    public bool RequireKeyring { get; set; } = true;

    /// <summary>Where the key-encryption key comes from.</summary>
    public MasterKeyOptions MasterKey { get; set; } = new();

    /// <summary>The PKCS#11 token, when <see cref="MasterKeyOptions.Source"/> is <c>Pkcs11</c>.</summary>
    public Pkcs11Options Pkcs11 { get; set; } = new();

    /// <summary>JSON Lines file that crypto access events (shreds, decrypts) are appended to, for the audit pipeline.</summary>
    public string AccessEventLog { get; set; } = "data/crypto-access-events.jsonl";

    /// <summary>
    /// How often, in seconds, a running encryption service looks at the keyring file and loads a changed one (a rotation
    /// or destroy made by a verb or on another host) without a restart; 0 turns reloading off. Default 10.
    /// </summary>
    public double KeyringReloadSeconds { get; set; } = 10;

    /// <summary>Where data-subject keys are kept: with the keys, never in the data database.</summary>
    public SubjectKeyStoreOptions SubjectKeys { get; set; } = new();
}

/// <summary>
/// The subject-key store (<c>Crypto:SubjectKeys</c>). By default a SQLite file <c>subject-keys.db</c> in the
/// keyring's directory; a server database of its own can be named instead, never the data database.
/// </summary>
public sealed class SubjectKeyStoreOptions
{
    /// <summary>The default file name, in the keyring's directory.</summary>
    public const string DefaultFileName = "subject-keys.db";

    /// <summary><c>Sqlite</c> (default), <c>PostgreSql</c> or <c>SqlServer</c>.</summary>
    public string Provider { get; set; } = "Sqlite";

    /// <summary>Connection string; empty for SQLite means <see cref="DefaultFileName"/> beside the keyring. Required for the server providers.</summary>
    public string? ConnectionString { get; set; }
}

/// <summary>The key-encryption key's source.</summary>
public sealed class MasterKeyOptions
{
    /// <summary><c>Environment</c> (default), <c>File</c> or <c>Pkcs11</c>.</summary>
    public string Source { get; set; } = "Environment";

    /// <summary>Environment variable holding the base64 master key (Source = Environment).</summary>
    public string Variable { get; set; } = Providers.LocalMasterKey.DefaultVariable;

    /// <summary>Key file with the master key in base64 or raw (Source = File).</summary>
    public string? File { get; set; }
}

/// <summary>A PKCS#11 token holding the key-encryption key.</summary>
public sealed class Pkcs11Options
{
    /// <summary>Path of the PKCS#11 module (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so).</summary>
    public string? ModulePath { get; set; }

    /// <summary>Label of the token (slot ids are not stable; the token is found by label).</summary>
    public string? TokenLabel { get; set; }

    /// <summary>Environment variable holding the user PIN (never put the PIN itself in a settings file).</summary>
    public string PinVariable { get; set; } = "CRM_SECURITY_PKCS11_PIN";

    /// <summary>CKA_LABEL of the AES key-encryption key on the token.</summary>
    public string KeyLabel { get; set; } = "crm-security-kek";
}
