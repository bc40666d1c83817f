using System.Security.Cryptography;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Passkeys;

/// <summary>
/// WebAuthn ceremonies through ASP.NET Core Identity's passkey handler (<see cref="IPasskeyHandler{TUser}"/>: it builds the
/// options, checks the attestation or assertion, the signature, the relying party id hash, the origin and the flags), with
/// the ceremony's state kept server-side instead of in Identity's two-factor cookie:
/// <list type="bullet">
/// <item>a challenge answers once (WebAuthn Level 3 §13.4.3): the row is deleted by the request that uses it, before the
/// answer is checked, so a replayed assertion finds no ceremony however the cookie was copied;</item>
/// <item>a ceremony has one purpose and, except a passwordless sign-in, one user: a registration challenge never signs
/// anyone in, and a second-factor challenge is answered only by a passkey of the user who passed the password step;</item>
/// <item>Identity's own <c>SignInManager.MakePasskeyRequestOptionsAsync</c> keeps its state in the cookie that also names the
/// user between the password and the second step, and would overwrite it.</item>
/// </list>
/// </summary>
internal sealed class PasskeyCeremonies(IPasskeyHandler<CrmUser> handler, IdentityStore store, TimeProvider time, IOptions<IdentitySettings> settings)
{
    /// <summary>The browser's handle on its ceremony (random, HttpOnly, SameSite=Strict, only under <c>/account</c>).</summary>
    public const string CookieName = "crm.passkey";

    public const string Register = "register";

    public const string SignIn = "sign-in";

    public const string SecondFactor = "second-factor";

    /// <summary>Starts registering a passkey for <paramref name="user"/>: the <c>PublicKeyCredentialCreationOptions</c> JSON.</summary>
    public async Task<string> BeginRegistrationAsync(CrmUser user, HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(user);
        var entity = new PasskeyUserEntity { Id = user.Id, Name = user.UserName ?? user.Id, DisplayName = user.DisplayName ?? user.UserName ?? user.Id };
        var options = await handler.MakeCreationOptionsAsync(entity, http);
        await StartAsync(http, Register, user.Id, options.AttestationState);
        return options.CreationOptionsJson;
    }

    /// <summary>Checks the authenticator's answer to this browser's registration ceremony for <paramref name="user"/>.</summary>
    public async Task<PasskeyAttestationResult?> FinishRegistrationAsync(CrmUser user, string credentialJson, HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (await TakeAsync(http, Register, user.Id) is not { } ceremony)
        {
            return null;
        }

        var result = await handler.PerformAttestationAsync(new PasskeyAttestationContext { CredentialJson = credentialJson, AttestationState = ceremony.State, HttpContext = http });
        // WebAuthn Level 3 §7.1: the credential is registered for the user the options named, and only for that user.
        return result.Succeeded && result.UserEntity.Id != user.Id ? null : result;
    }

    /// <summary>
    /// Starts a sign-in (<paramref name="user"/> null: any discoverable passkey, WebAuthn Level 3 §5.1.4 empty
    /// <c>allowCredentials</c>) or a second step (the user's own passkeys only): the <c>PublicKeyCredentialRequestOptions</c> JSON.
    /// </summary>
    public async Task<string> BeginAssertionAsync(CrmUser? user, HttpContext http)
    {
        var options = await handler.MakeRequestOptionsAsync(user, http);
        await StartAsync(http, user is null ? SignIn : SecondFactor, user?.Id, options.AssertionState);
        return options.RequestOptionsJson;
    }

    /// <summary>
    /// Checks the authenticator's answer to this browser's sign-in ceremony. For a second step (<paramref name="userId"/> set)
    /// the passkey must be that user's (WebAuthn Level 3 §7.2 step 6: the credential belongs to the identified user).
    /// </summary>
    public async Task<PasskeyAssertionResult<CrmUser>?> FinishAssertionAsync(string credentialJson, string? userId, HttpContext http)
    {
        if (await TakeAsync(http, userId is null ? SignIn : SecondFactor, userId) is not { } ceremony)
        {
            return null;
        }

        var result = await handler.PerformAssertionAsync(new PasskeyAssertionContext { CredentialJson = credentialJson, AssertionState = ceremony.State, HttpContext = http });
        return result.Succeeded && userId is not null && result.User.Id != userId ? null : result;
    }

    private async Task StartAsync(HttpContext http, string purpose, string? userId, string? state)
    {
        var now = time.GetUtcNow();
        var lifetime = settings.Value.Passkeys.CeremonyLifetime;
        // Ceremonies nobody finished: gone once expired, so the table holds only live challenges.
        await store.PasskeyCeremonies.Where(c => c.ExpiresAt < now).ExecuteDeleteAsync(http.RequestAborted);
        var handle = Base64Url(RandomNumberGenerator.GetBytes(32));
        store.PasskeyCeremonies.Add(new PasskeyCeremonyRecord { Id = Hash(handle), Purpose = purpose, UserId = userId, State = state ?? "", ExpiresAt = now + lifetime });
        await store.SaveChangesAsync(http.RequestAborted);
        http.Response.Cookies.Append(CookieName, handle, new CookieOptions
        {
            HttpOnly = true,
            Secure = http.Request.IsHttps,
            SameSite = SameSiteMode.Strict,
            Path = "/account",
            MaxAge = lifetime,
            IsEssential = true,
        });
    }

    /// <summary>The browser's ceremony, removed from the store by this call (so by no other), if it is live and of this purpose and user.</summary>
    private async Task<PasskeyCeremonyRecord?> TakeAsync(HttpContext http, string purpose, string? userId)
    {
        if (!http.Request.Cookies.TryGetValue(CookieName, out var handle) || string.IsNullOrEmpty(handle) || handle.Length > 100)
        {
            return null;
        }

        http.Response.Cookies.Delete(CookieName, new CookieOptions { Path = "/account", Secure = http.Request.IsHttps, SameSite = SameSiteMode.Strict, HttpOnly = true });
        var id = Hash(handle);
        var ceremony = await store.PasskeyCeremonies.AsNoTracking().FirstOrDefaultAsync(c => c.Id == id, http.RequestAborted);
        // WebAuthn Level 3 §13.4.3: one use per challenge. The delete is the claim: of two requests with one ceremony only
        // the one whose delete removed the row goes on, on every instance sharing the database.
        if (ceremony is null || await store.PasskeyCeremonies.Where(c => c.Id == id).ExecuteDeleteAsync(http.RequestAborted) != 1)
        {
            return null;
        }

        return ceremony.Purpose == purpose && ceremony.UserId == userId && ceremony.ExpiresAt > time.GetUtcNow() ? ceremony : null;
    }

    private static string Hash(string handle) => Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(handle)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
