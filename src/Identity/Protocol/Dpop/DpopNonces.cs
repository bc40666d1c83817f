using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Protocol.Dpop;

/// <summary>
/// Server-provided DPoP nonces (RFC 9449 §8): a nonce is a random value sealed with its expiry by Data Protection, so
/// every instance sharing the key ring accepts it without shared state, and nobody but the server can make one. The
/// output is base64url, inside the NQCHAR set §8.1 allows.
/// </summary>
internal sealed class DpopNonces(IDataProtectionProvider protection, IOptions<IdentitySettings> settings, TimeProvider time)
{
    private readonly ITimeLimitedDataProtector _protector = protection.CreateProtector("CrmSecurity.Identity.DpopNonce.v1").ToTimeLimitedDataProtector();

    /// <summary>A fresh nonce, accepted for <see cref="DpopSettings.NonceLifetime"/>.</summary>
    public string Issue() =>
        _protector.Protect(Convert.ToHexString(RandomNumberGenerator.GetBytes(8)), time.GetUtcNow() + settings.Value.Dpop.NonceLifetime);

    /// <summary>True for a nonce this server issued that has not expired.</summary>
    public bool IsValid(string? nonce)
    {
        if (string.IsNullOrEmpty(nonce) || nonce.Length > 1024)
        {
            return false;
        }

        try
        {
            _protector.Unprotect(nonce, out var expiration);
            return expiration > time.GetUtcNow();
        }
        catch (CryptographicException)
        {
            return false;
        }
    }
}
