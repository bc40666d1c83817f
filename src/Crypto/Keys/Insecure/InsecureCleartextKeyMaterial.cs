using CrmSecurity.Crypto.Providers;

namespace CrmSecurity.Crypto.Keys.Insecure;

/// <summary>
/// The one way key material leaves the library in clear, kept apart the way Tink keeps
/// <c>InsecureCleartextKeysetHandle</c> apart: a namespace and a name that say what it is, so every use is easy to find
/// in a review (<c>grep -r Insecure</c>) and nothing reaches it by completing a method name on <see cref="Keyset"/>.
/// For an operator who must hand a key to another system, a development host writing its own master key file, and
/// tests that prove key material never appears where it must not (logs, files, backups).
/// </summary>
public static class InsecureCleartextKeyMaterial
{
    /// <summary>
    /// A copy of version <paramref name="version"/>'s 32-byte root key. The caller owns the copy and should zero it
    /// (<see cref="System.Security.Cryptography.CryptographicOperations.ZeroMemory"/>).
    /// </summary>
    /// <param name="keyset">The keyset holding the version.</param>
    /// <param name="version">The key version to export.</param>
    /// <exception cref="InvalidOperationException">The version does not exist or is destroyed.</exception>
    public static byte[] Export(Keyset keyset, uint version)
    {
        ArgumentNullException.ThrowIfNull(keyset);
        return keyset.ExportPlaintextKeyMaterial(version);
    }

    /// <summary>
    /// A local master key (the key-encryption key of a keyring file) as base64, for an operator to store it, for example
    /// in a secret store, or for a development host that writes its own key file.
    /// </summary>
    /// <param name="key">The key.</param>
    public static string ExportBase64(LocalMasterKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return key.ExportPlaintextBase64();
    }
}
