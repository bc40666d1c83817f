using CrmSecurity.Crypto.Providers;

namespace CrmSecurity.Crypto.Hosting;

/// <summary>Opens the configured key-encryption key; errors name the setting to fix.</summary>
public static class KeyEncryptionKeys
{
    /// <summary>The sources <see cref="MasterKeyOptions.Source"/> accepts.</summary>
    public static readonly IReadOnlyList<string> Sources = ["Environment", "File", "Pkcs11"];

    /// <summary>Opens the KEK described by <paramref name="options"/>.</summary>
    /// <param name="options">The module's settings.</param>
    /// <param name="createIfMissing">For PKCS#11: generate the key on the token when it has none (for <c>keys init</c>).</param>
    /// <param name="workingDirectory">Base of relative paths.</param>
    /// <exception cref="KeyManagementException">The message starts with the setting to fix.</exception>
    public static IKeyEncryptionKey Open(CryptoOptions options, bool createIfMissing = false, string? workingDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var source = Sources.FirstOrDefault(s => string.Equals(s, options.MasterKey.Source, StringComparison.OrdinalIgnoreCase))
            ?? throw new KeyManagementException($"Crypto:MasterKey:Source '{options.MasterKey.Source}' is not supported. Use one of: {string.Join(", ", Sources)}.");
        try
        {
            switch (source)
            {
                case "Environment":
                    return LocalMasterKey.FromEnvironment(options.MasterKey.Variable);
                case "File":
                    return string.IsNullOrWhiteSpace(options.MasterKey.File)
                        ? throw new KeyManagementException("it is required when Crypto:MasterKey:Source is File.")
                        : LocalMasterKey.FromFile(Path.GetFullPath(options.MasterKey.File, workingDirectory ?? Environment.CurrentDirectory));
                default:
                    return OpenPkcs11(options.Pkcs11, createIfMissing);
            }
        }
        catch (KeyManagementException e) when (!e.Message.StartsWith("Crypto:", StringComparison.Ordinal))
        {
            var setting = source switch
            {
                "Environment" => "Crypto:MasterKey:Variable",
                "File" => "Crypto:MasterKey:File",
                _ when e.Message.StartsWith("No PKCS#11 token", StringComparison.Ordinal) => "Crypto:Pkcs11:TokenLabel",
                _ when e.Message.Contains("secret key", StringComparison.Ordinal) => "Crypto:Pkcs11:KeyLabel",
                _ when e.Message.Contains("PIN", StringComparison.Ordinal) => "Crypto:Pkcs11:PinVariable",
                _ when e.Message.Contains("cannot be loaded", StringComparison.Ordinal) => "Crypto:Pkcs11:ModulePath",
                _ => "Crypto:Pkcs11",
            };
            throw new KeyManagementException($"{setting}: {e.Message}", e);
        }
    }

    private static Pkcs11KeyEncryptionKey OpenPkcs11(Pkcs11Options options, bool createIfMissing)
    {
        if (string.IsNullOrWhiteSpace(options.ModulePath) || !File.Exists(options.ModulePath))
        {
            throw new KeyManagementException($"Crypto:Pkcs11:ModulePath '{options.ModulePath}' is not a PKCS#11 module file. Set it to the module's path (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so).");
        }

        if (string.IsNullOrWhiteSpace(options.TokenLabel))
        {
            throw new KeyManagementException("Crypto:Pkcs11:TokenLabel is required when Crypto:MasterKey:Source is Pkcs11.");
        }

        var pin = Environment.GetEnvironmentVariable(options.PinVariable);
        if (string.IsNullOrEmpty(pin))
        {
            throw new KeyManagementException($"Crypto:Pkcs11:PinVariable: the environment variable {options.PinVariable} holding the token PIN is not set.");
        }

        return Pkcs11KeyEncryptionKey.Open(options.ModulePath, options.TokenLabel, pin, options.KeyLabel, createIfMissing);
    }
}
