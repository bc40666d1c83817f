namespace CrmSecurity.Crypto.Providers;

/// <summary>
/// A key-management operation failed: a keyring that cannot be read or does not verify, a wrong KEK, a
/// backup with the wrong passphrase, a token that cannot be found. The message names what failed and how to
/// fix it; it never contains key material.
/// </summary>
public sealed class KeyManagementException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KeyManagementException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What failed and how to fix it.</param>
    public KeyManagementException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">What failed and how to fix it.</param>
    /// <param name="innerException">The cause.</param>
    public KeyManagementException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
