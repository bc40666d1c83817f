using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Protocol;
using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;
using OpenIddictConstants = OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Pages.Connect;

/// <summary>
/// The authorization endpoint after OpenIddict has validated the request (client, exact redirect URI, response
/// type, PKCE S256, scopes, permissions): signs the user in if needed, asks third-party consent, issues the code.
/// </summary>
internal sealed class AuthorizeModel(
    UserManager<CrmUser> users,
    SignInManager<CrmUser> signIn,
    IOpenIddictApplicationManager applications,
    IOpenIddictAuthorizationManager authorizations,
    ScopeResources scopeManager,
    IDataProtectionProvider protection,
    ClientOnlyScopes clientOnly,
    IOptions<IdentitySettings> settings,
    TimeProvider time) : PageModel
{
    /// <summary>The hidden form field that carries what the consent page showed.</summary>
    public const string ConsentField = "consent";

    private const string Scheme = OpenIddictServerAspNetCoreDefaults.AuthenticationScheme;
    private static readonly TimeSpan ConsentLifetime = TimeSpan.FromMinutes(10);
    // RFC 8176 §2 values a session may record besides pwd: otp after an authenticator code, hwk/swk for a passkey, mfa;
    // fed after a sign-in through an upstream provider (Federation.FederatedSignIn).
    private static readonly string[] RecordedMethods = ["pwd", "otp", "hwk", "swk", "mfa", Federation.FederatedSignIn.FederatedMethod];
    private static readonly string[] FormOnlyFields = ["decision", ConsentField, "__RequestVerificationToken"];

    public string ApplicationName { get; private set; } = "";

    public IReadOnlyList<string> Scopes { get; private set; } = [];

    public IReadOnlyList<KeyValuePair<string, string>> Parameters { get; private set; } = [];

    public string Consent { get; private set; } = "";

    public Task<IActionResult> OnGetAsync() => AuthorizeAsync(decision: null);

    public Task<IActionResult> OnPostAsync([FromForm(Name = "decision")] string? decision) => AuthorizeAsync(decision);

    private async Task<IActionResult> AuthorizeAsync(string? decision)
    {
        var cancellationToken = HttpContext.RequestAborted;
        var request = HttpContext.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("The OpenID Connect request cannot be retrieved.");

        // A client-only scope (events:write) is never asked of a user; the client hears why at once
        // on its redirect URI (RFC 6749 §4.1.2.1), before anyone signs in.
        if (clientOnly.FirstIn(request.GetScopes()) is { } clientScope)
        {
            return Error(Errors.InvalidScope, ClientOnlyScopes.Description(clientScope));
        }

        var session = await HttpContext.AuthenticateAsync(IdentityConstants.ApplicationScheme);

        // OpenID Connect Core §3.1.2.1: prompt=login and max_age force a fresh sign-in. max_age counts from when the user
        // last authenticated (auth_time), not from the cookie's last renewal, which every request moves forward.
        var authenticatedAt = session.Principal is { } current ? CrmSignInManager.AuthenticatedAt(current) ?? session.Properties?.IssuedUtc : null;
        var tooOld = request.MaxAge is { } maxAge && (authenticatedAt is not { } at || time.GetUtcNow() - at > TimeSpan.FromSeconds(maxAge));
        if (!session.Succeeded || tooOld || (request.HasPromptValue(PromptValues.Login) && decision is null))
        {
            if (request.HasPromptValue(PromptValues.None))
            {
                return Error(Errors.LoginRequired, "The user is not signed in.");
            }

            return Challenge(new AuthenticationProperties { RedirectUri = ReturnUrlWithoutPromptLogin() }, IdentityConstants.ApplicationScheme);
        }

        var user = await users.GetUserAsync(session.Principal!);
        if (user is null || user.IsDisabled)
        {
            await signIn.SignOutAsync();
            return Challenge(new AuthenticationProperties { RedirectUri = ReturnUrlWithoutPromptLogin() }, IdentityConstants.ApplicationScheme);
        }

        // RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6: a refusal is honoured whatever was consented before, including
        // under prompt=consent; anything but an explicit "accept" is a refusal (deny by default).
        if (decision is not null && !string.Equals(decision, "accept", StringComparison.Ordinal))
        {
            return Error(Errors.AccessDenied, "The user denied the request.");
        }

        var application = await applications.FindByClientIdAsync(request.ClientId!, cancellationToken)
            ?? throw new InvalidOperationException("OpenIddict validated a client that does not exist.");
        var applicationId = await applications.GetIdAsync(application, cancellationToken);
        var requested = request.GetScopes();
        var model = HttpContext.RequestServices.GetRequiredService<Authorization.Store.AuthorizationModel>();

        // MFA policy (Protocol.StepUp): the client, a scope, a role of the user or acr_values may need a second factor.
        // A password-only session gets no code for them, whatever else it holds (OWASP ASVS 4.0.3 V2.1, step-up).
        if (!StepUp.HasMfa(session.Principal!)
            && await StepUp.WhyRequiredAsync(request.AcrValues, requested, applications, application, await model.RolesOfAsync(user.Id, user.PermissionModelVersion, cancellationToken), settings.Value.Mfa, cancellationToken) is { } why)
        {
            if (request.HasPromptValue(PromptValues.None))
            {
                // OpenID Connect Core §3.1.2.6: the second step needs the user, which prompt=none forbids.
                return Error(Errors.InteractionRequired, $"Two-step verification is required ({why}).");
            }

            if (!await users.GetTwoFactorEnabledAsync(user) && (await users.GetPasskeysAsync(user)).Count == 0)
            {
                // Nothing to step up with (no authenticator app, no passkey): the person enrols first, then signs in again.
                return Redirect("/account/two-factor?required=app");
            }

            await StepUp.BeginAsync(HttpContext, user.Id, session.Principal!.FindFirst(EndedSessions.SessionIdClaim)?.Value);
            return Redirect("/account/login-2fa?ReturnUrl=" + Uri.EscapeDataString(ReturnUrlWithoutPromptLogin()));
        }

        var existing = new List<object>();
        await foreach (var authorization in authorizations.FindAsync(user.Id, applicationId, Statuses.Valid, AuthorizationTypes.Permanent, requested, cancellationToken))
        {
            existing.Add(authorization);
        }

        var consentType = await applications.GetConsentTypeAsync(application, cancellationToken);
        if (consentType == ConsentTypes.Explicit)
        {
            // An "accept" counts only for what this user was shown, for this client, redirect URI and scope set: the
            // consent form cannot be replayed or edited to approve scopes the page did not show.
            var accepted = decision is not null && ConsentMatches(Request.Form[ConsentField], user.Id, request);
            // OpenID Connect Core §3.1.2.1: prompt=consent asks again even when consent was given before.
            var mustAsk = existing.Count == 0 || request.HasPromptValue(PromptValues.Consent);
            if (mustAsk && !accepted)
            {
                if (request.HasPromptValue(PromptValues.None))
                {
                    return Error(Errors.ConsentRequired, "The user has not consented to this client.");
                }

                ApplicationName = await applications.GetLocalizedDisplayNameAsync(application, cancellationToken) ?? request.ClientId!;
                Scopes = [.. requested];
                Parameters = [.. request.GetParameters()
                    .Where(parameter => !FormOnlyFields.Contains(parameter.Key))
                    .Select(parameter => new KeyValuePair<string, string>(parameter.Key, (string?)parameter.Value ?? ""))];
                Consent = ProtectConsent(user.Id, request);
                return Page();
            }
        }

        var principal = await ClaimsContract.ForUserAsync(model, user, requested, AuthenticationMethods(session.Principal!), cancellationToken);
        if (authenticatedAt is { } authTime)
        {
            ClaimsContract.SetAuthenticationTime(principal, authTime);
        }

        // OpenID Connect Core §2 acr: the class this sign-in meets; Back-Channel Logout 1.0 §2.1 sid: the session, so a
        // logout token naming it ends the client's session that came from this one.
        ClaimsContract.SetSessionClaims(principal, StepUp.AcrOf(session.Principal!), session.Principal!.FindFirst(EndedSessions.SessionIdClaim)?.Value,
            session.Principal!.FindFirst(Federation.FederatedSignIn.IdpClaim)?.Value);

        principal.SetResources(await ProtocolEndpoints.ResourcesAsync(scopeManager, requested, cancellationToken));

        // Remembered consent: a permanent authorization, so the user is asked once per client and scope set.
        if (consentType == ConsentTypes.Explicit)
        {
            var authorization = existing.LastOrDefault() ?? await authorizations.CreateAsync(
                principal, user.Id, applicationId!, AuthorizationTypes.Permanent, principal.GetScopes(), cancellationToken);
            principal.SetAuthorizationId(await authorizations.GetIdAsync(authorization, cancellationToken));
        }

        return SignIn(principal, Scheme);
    }

    /// <summary>
    /// RFC 8176 values of the session as its sign-in recorded them: <c>pwd</c> with <c>otp</c> and <c>mfa</c> after a code,
    /// <c>hwk</c> or <c>swk</c> (with <c>mfa</c> when the authenticator verified the user) for a passkey, with or without
    /// <c>pwd</c> before it. A session that recorded no method (an older cookie) was a password sign-in.
    /// </summary>
    private static List<string> AuthenticationMethods(ClaimsPrincipal session)
    {
        var recorded = session.FindAll(CrmSignInManager.AmrClaim).Select(claim => claim.Value).ToHashSet(StringComparer.Ordinal);
        List<string> methods = [.. RecordedMethods.Where(recorded.Contains)];
        return methods.Count == 0 || (!recorded.Contains("hwk") && !recorded.Contains("swk") && !recorded.Contains("pwd") && !recorded.Contains(Federation.FederatedSignIn.FederatedMethod)) ? ["pwd", .. methods] : methods;
    }

    private string ProtectConsent(string userId, OpenIddictRequest request) =>
        Protector().Protect(ConsentSubject(userId, request), ConsentLifetime);

    private bool ConsentMatches(string? ticket, string userId, OpenIddictRequest request)
    {
        if (string.IsNullOrEmpty(ticket))
        {
            return false;
        }

        try
        {
            var shown = Encoding.UTF8.GetBytes(Protector().Unprotect(ticket));
            var now = Encoding.UTF8.GetBytes(ConsentSubject(userId, request));
            return CryptographicOperations.FixedTimeEquals(shown, now);
        }
        catch (CryptographicException)
        {
            return false; // altered, expired or made by another key ring: ask again
        }
    }

    private ITimeLimitedDataProtector Protector() =>
        protection.CreateProtector("CrmSecurity.Identity.Consent.v1").ToTimeLimitedDataProtector();

    /// <summary>What a consent decision applies to: the user, the client, where the code goes, and the exact scope set.</summary>
    private static string ConsentSubject(string userId, OpenIddictRequest request) => JsonSerializer.Serialize(new[]
    {
        userId,
        request.ClientId ?? "",
        request.RedirectUri ?? "",
        string.Join(' ', request.GetScopes().Order(StringComparer.Ordinal)),
    });

    private string ReturnUrlWithoutPromptLogin()
    {
        var parameters = Request.HasFormContentType
            ? Request.Form.Where(p => !FormOnlyFields.Contains(p.Key)).ToList()
            : [.. Request.Query];
        var kept = parameters
            .Where(p => !(p.Key == OpenIddictConstants.Parameters.Prompt && p.Value.ToString().Split(' ').Contains(PromptValues.Login)))
            .SelectMany(p => p.Value.Select(value => new KeyValuePair<string, string?>(p.Key, value)));
        return Request.PathBase + Request.Path + QueryString.Create(kept);
    }

    private ForbidResult Error(string error, string description) => Forbid(
        new AuthenticationProperties(new Dictionary<string, string?>
        {
            [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
            [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
        }),
        Scheme);
}
