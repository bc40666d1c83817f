using CrmSecurity.Crypto.Hosting;
using CrmSecurity.Crypto.Keys.Insecure;
using CrmSecurity.Crypto.Providers;

namespace CrmSecurity.Server.Hosting;

/// <summary>
/// Outside Production only: a master key file (and, with Crypto on, a keyring) generated in the data directory, so
/// `dotnet run` and the tests work out of the box. In Production a missing key stops start-up (exit 78) naming the setting.
/// </summary>
internal static class DevelopmentMasterKey
{
    /// <summary>Where a generated development master key goes, in the keyring's directory.</summary>
    public const string FileName = "development-master-key";

    /// <summary>
    /// Only when nothing is configured: the default source (an environment variable) with the variable unset, and no
    /// key file. A configured key is never replaced, and a wrong one still fails start-up.
    /// </summary>
    /// <param name="configuration">The host's configuration; pointed at the key file.</param>
    /// <param name="generate">The service generates the key and keyring; verbs only use them once the service made them.</param>
    /// <param name="messages">Where to say which key is used (stdout for the service, stderr for verbs).</param>
    /// <param name="createKeyring">Also make a development keyring when there is none (the Crypto module is on).</param>
    public static void UseWhenNoneConfigured(IConfigurationManager configuration, bool generate, TextWriter messages, bool createKeyring = true)
    {
        // A key source the operator chose, or a variable they named (set or not: an unset one must stop start-up naming
        // it, not be replaced by a development key), is a configured key.
        var source = configuration["Crypto:MasterKey:Source"];
        if ((!string.IsNullOrEmpty(source) && !string.Equals(source, "Environment", StringComparison.OrdinalIgnoreCase))
            || !string.IsNullOrEmpty(configuration["Crypto:MasterKey:Variable"])
            || !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(LocalMasterKey.DefaultVariable)))
        {
            return;
        }

        var keyringPath = Path.GetFullPath(configuration["Crypto:KeyringPath"] is { Length: > 0 } configured ? configured : new CryptoOptions().KeyringPath);
        var directory = Path.GetDirectoryName(keyringPath)!;
        var keyFile = Path.Combine(directory, FileName);
        if (!generate && !File.Exists(keyFile))
        {
            return;
        }

        Directory.CreateDirectory(directory);
        if (!File.Exists(keyFile) && TryCreate(keyFile))
        {
            messages.WriteLine($"Crypto: generated a DEVELOPMENT master key in {keyFile}. It is for development only: it sits beside the data it protects. Configure Crypto:MasterKey (Environment, File or Pkcs11) anywhere else.");
        }
        else
        {
            messages.WriteLine($"Crypto: using the DEVELOPMENT master key in {keyFile} (development only; configure Crypto:MasterKey anywhere else).");
        }

        if (generate && createKeyring && !File.Exists(keyringPath))
        {
            using var kek = LocalMasterKey.FromFile(keyFile);
            using var keyring = Keyring.CreateNew();
            keyring.Save(keyringPath, kek);
            messages.WriteLine($"Crypto: created the development keyring {keyringPath} under {kek.KeyId}.");
        }

        configuration["Crypto:MasterKey:Source"] = "File";
        configuration["Crypto:MasterKey:File"] = keyFile;
        configuration["Crypto:KeyringPath"] = keyringPath;
    }

    /// <summary>
    /// Writes a new key to a temporary file and moves it into place, so a host starting at the same moment (tests start
    /// several) either wins or finds the other's complete key, never half of one. False when another host won.
    /// </summary>
    private static bool TryCreate(string keyFile)
    {
        var temporary = keyFile + "." + Guid.NewGuid().ToString("N") + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            // Owner-only from the moment it exists, never readable by others even briefly.
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var generated = LocalMasterKey.Generate())
        using (var writer = new StreamWriter(temporary, System.Text.Encoding.ASCII, options))
        {
            writer.Write(InsecureCleartextKeyMaterial.ExportBase64(generated));
        }

        try
        {
            File.Move(temporary, keyFile, overwrite: false);
            return true;
        }
        catch (IOException) when (File.Exists(keyFile))
        {
            File.Delete(temporary);
            return false;
        }
    }
}
