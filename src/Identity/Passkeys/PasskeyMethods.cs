using Microsoft.AspNetCore.Identity;

namespace CrmSecurity.Identity.Passkeys;

/// <summary>
/// The RFC 8176 <c>amr</c> values of a sign-in with a passkey, from what the authenticator reported in its flags
/// (WebAuthn Level 3 §6.1 authenticator data: UV, BE):
/// <list type="bullet">
/// <item><c>hwk</c> (proof of possession of a hardware-secured key) for a device-bound passkey (BE not set: its private key
/// cannot leave the authenticator); <c>swk</c> (software-secured key) for a backup-eligible, synced passkey, whose key
/// the sync provider copies between devices;</item>
/// <item><c>mfa</c> when the authenticator verified the user (UV, WebAuthn Level 3 §6.2.3: a PIN or biometric checked on the
/// authenticator): something the user has and something they know or are, NIST SP 800-63B §5.1.9 multi-factor
/// cryptographic authenticator; and always after a password, which is a second, independent factor;</item>
/// <item><c>pwd</c> first when the passkey was the second step after a password.</item>
/// </list>
/// A passkey that only tested presence (UV not set) is one factor: no <c>mfa</c>, so the acr stays
/// <c>urn:crm-security:acr:pwd</c> and step-up policies ask for more.
/// </summary>
internal static class PasskeyMethods
{
    public const string HardwareKey = "hwk";

    public const string SoftwareKey = "swk";

    /// <summary>The amr values, in the order tokens carry them.</summary>
    public static string[] For(UserPasskeyInfo passkey, bool afterPassword)
    {
        ArgumentNullException.ThrowIfNull(passkey);
        var key = passkey.IsBackupEligible ? SoftwareKey : HardwareKey;
        return afterPassword ? ["pwd", key, "mfa"]
            : passkey.IsUserVerified ? [key, "mfa"]
            : [key];
    }
}
