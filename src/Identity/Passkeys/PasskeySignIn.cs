using System.Text.Json;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Events;
using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Passkeys;

/// <summary>
/// Sign-in with a passkey, passwordless or as the second step after a password, with what the password path has:
/// the same throttle (the posts go to the sign-in pages, <c>Throttling</c>), lockout (a failed assertion against a
/// user's passkey counts as a wrong password, OWASP ASVS 4.0.3 V2.2.1; a locked-out or disabled user is refused), and an
/// access event for every attempt (<c>login</c> / <c>login_failed</c> with the amr values).
/// </summary>
internal sealed class PasskeySignIn(
    PasskeyCeremonies ceremonies,
    UserManager<CrmUser> users,
    CrmSignInManager signIn,
    IdentityStore store,
    AccessEvents events)
{
    /// <summary>Passwordless sign-in: the passkey names its user (a discoverable credential's user handle).</summary>
    public async Task<bool> SignInAsync(string credentialJson, HttpContext http)
    {
        var result = await ceremonies.FinishAssertionAsync(credentialJson, userId: null, http);
        if (result is not { Succeeded: true })
        {
            // The credential id says whose passkey was tried: that user's failure count goes up, as for a wrong password.
            await FailedAsync(await OwnerAsync(credentialJson), result is null ? "passkey_challenge_unknown_or_used" : "passkey_rejected", http);
            return false;
        }

        return await CompleteAsync(result.User, result.Passkey, afterPassword: false, http);
    }

    /// <summary>Second step: a passkey of the user who passed the password step, and no one else's.</summary>
    public async Task<bool> SecondFactorAsync(string credentialJson, HttpContext http)
    {
        var user = await signIn.GetTwoFactorAuthenticationUserAsync();
        if (user is null)
        {
            return false;
        }

        var result = await ceremonies.FinishAssertionAsync(credentialJson, user.Id, http);
        if (result is not { Succeeded: true })
        {
            await FailedAsync(user, result is null ? "passkey_challenge_unknown_used_or_not_users" : "passkey_rejected", http);
            return false;
        }

        return await CompleteAsync(user, result.Passkey, afterPassword: true, http);
    }

    private async Task<bool> CompleteAsync(CrmUser user, UserPasskeyInfo passkey, bool afterPassword, HttpContext http)
    {
        // The new signature counter and flags (WebAuthn Level 3 §7.2 steps 21-22), so a cloned authenticator shows.
        if (!(await users.AddOrUpdatePasskeyAsync(user, passkey)).Succeeded)
        {
            await FailedAsync(user, "passkey_update_failed", http);
            return false;
        }

        var result = await signIn.PasskeySignInAsync(user, passkey, afterPassword);
        if (!result.Succeeded)
        {
            await WriteAsync(http, user, AccessActions.LoginFailed, user.IsDisabled ? "disabled" : result.IsLockedOut ? "locked_out" : "not_allowed", Outcomes.Denied);
            return false;
        }

        await RecordUseAsync(user, passkey.CredentialId, http);
        var methods = string.Join(',', PasskeyMethods.For(passkey, afterPassword));
        await WriteAsync(http, user, AccessActions.Login, $"amr={methods}; passkey", Outcomes.Success);
        return true;
    }

    private async Task FailedAsync(CrmUser? user, string why, HttpContext http)
    {
        if (user is null)
        {
            await WriteAsync(http, null, AccessActions.LoginFailed, why, Outcomes.Denied);
            return;
        }

        await users.AccessFailedAsync(user);
        await WriteAsync(http, user, AccessActions.LoginFailed, why, Outcomes.Denied);
        if (await users.IsLockedOutAsync(user))
        {
            await WriteAsync(http, user, AccessActions.Lockout, "too_many_failures", Outcomes.Denied);
        }
    }

    /// <summary>The owner of the credential an assertion names (its <c>rawId</c>), or null when it names none of ours.</summary>
    private async Task<CrmUser?> OwnerAsync(string credentialJson)
    {
        try
        {
            using var document = JsonDocument.Parse(credentialJson);
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("rawId", out var rawId) && rawId.ValueKind == JsonValueKind.String
                && PasskeyIds.TryDecode(rawId.GetString(), out var id))
            {
                return await users.FindByPasskeyIdAsync(id);
            }
        }
        catch (JsonException)
        {
            // Not JSON: nobody's passkey; the attempt is still written.
        }

        return null;
    }

    private async Task RecordUseAsync(CrmUser user, byte[] credentialId, HttpContext http)
    {
        var id = PasskeyIds.Encode(credentialId);
        var now = events.Time.GetUtcNow();
        var use = await store.PasskeyUses.FirstOrDefaultAsync(u => u.CredentialId == id, http.RequestAborted);
        if (use is null)
        {
            store.PasskeyUses.Add(new PasskeyUseRecord { CredentialId = id, UserId = user.Id, LastUsedAt = now });
        }
        else
        {
            use.LastUsedAt = now;
        }

        await store.SaveChangesAsync(http.RequestAborted);
    }

    private ValueTask WriteAsync(HttpContext http, CrmUser? user, string action, string details, string outcome) =>
        events.WriteSignInAsync(http, user?.Id ?? "unknown", user?.UserName, user?.Tenant, action, details, outcome);
}

/// <summary>Credential ids as the pages and the browser carry them: base64url without padding (WebAuthn Level 3 §5.1).</summary>
internal static class PasskeyIds
{
    public static string Encode(byte[] id) => Convert.ToBase64String(id).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static bool TryDecode(string? value, out byte[] id)
    {
        id = [];
        if (string.IsNullOrEmpty(value) || value.Length > 1400)
        {
            return false;
        }

        var base64 = value.Replace('-', '+').Replace('_', '/');
        base64 = base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '=');
        var buffer = new byte[base64.Length];
        if (!Convert.TryFromBase64String(base64, buffer, out var written) || written == 0)
        {
            return false;
        }

        id = buffer[..written];
        return true;
    }
}
