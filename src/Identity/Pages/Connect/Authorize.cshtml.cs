using Microsoft.AspNetCore;
using System.Security.Claims;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Protocol;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Abstractions;
using OpenIddictConstants = OpenIddict.Abstractions.OpenIddictConstants;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

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
    TimeProvider time) : PageModel
{
    private const string Scheme = OpenIddictServerAspNetCoreDefaults.AuthenticationScheme;

    public string ApplicationName { get; private set; } = "";

    public IReadOnlyList<string> Scopes { get; private set; } = [];

    public IReadOnlyList<KeyValuePair<string, string>> Parameters { get; private set; } = [];

    public Task<IActionResult> OnGetAsync() => AuthorizeAsync(decision: null);

    public Task<IActionResult> OnPostAsync([FromForm(Name = "decision")] string? decision) => AuthorizeAsync(decision);

    private async Task<IActionResult> AuthorizeAsync(string? decision)
    {
        var cancellationToken = HttpContext.RequestAborted;
        var request = HttpContext.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("The OpenID Connect request cannot be retrieved.");
        var session = await HttpContext.AuthenticateAsync(IdentityConstants.ApplicationScheme);

        // OpenID Connect Core §3.1.2.1: prompt=login and max_age force a fresh sign-in.
        var authenticatedAt = session.Properties?.IssuedUtc;
        var tooOld = request.MaxAge is { } maxAge && authenticatedAt is { } at && time.GetUtcNow() - at > TimeSpan.FromSeconds(maxAge);
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

        var application = await applications.FindByClientIdAsync(request.ClientId!, cancellationToken)
            ?? throw new InvalidOperationException("OpenIddict validated a client that does not exist.");
        var applicationId = await applications.GetIdAsync(application, cancellationToken);
        var requested = request.GetScopes();

        var existing = new List<object>();
        await foreach (var authorization in authorizations.FindAsync(user.Id, applicationId, Statuses.Valid, AuthorizationTypes.Permanent, requested, cancellationToken))
        {
            existing.Add(authorization);
        }

        var consentType = await applications.GetConsentTypeAsync(application, cancellationToken);
        // OpenID Connect Core §3.1.2.1: prompt=consent asks again even when consent was given before.
        var askAgain = request.HasPromptValue(PromptValues.Consent) && decision is null;
        if (consentType == ConsentTypes.Explicit && (existing.Count == 0 || askAgain))
        {
            if (decision == "deny")
            {
                return Error(Errors.AccessDenied, "The user denied the request.");
            }

            if (decision != "accept")
            {
                if (request.HasPromptValue(PromptValues.None))
                {
                    return Error(Errors.ConsentRequired, "The user has not consented to this client.");
                }

                ApplicationName = await applications.GetLocalizedDisplayNameAsync(application, cancellationToken) ?? request.ClientId!;
                Scopes = [.. requested];
                Parameters = [.. request.GetParameters()
                    .Where(parameter => parameter.Key != "decision" && parameter.Key != "__RequestVerificationToken")
                    .Select(parameter => new KeyValuePair<string, string>(parameter.Key, (string?)parameter.Value ?? ""))];
                return Page();
            }
        }

        var principal = await ClaimsContract.ForUserAsync(HttpContext.RequestServices.GetRequiredService<Authorization.Store.AuthorizationModel>(), user, requested, AuthenticationMethods(session.Principal!), cancellationToken);
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

    private static IEnumerable<string> AuthenticationMethods(ClaimsPrincipal session)
    {
        // RFC 8176: SignInManager records "pwd" or "mfa"; a two-factor sign-in here means password plus TOTP.
        var amr = session.FindAll("amr").Select(claim => claim.Value).ToList();
        return amr.Contains("mfa") ? ["pwd", "otp", "mfa"] : ["pwd"];
    }

    private string ReturnUrlWithoutPromptLogin()
    {
        var parameters = Request.HasFormContentType
            ? Request.Form.Where(p => p.Key != "__RequestVerificationToken" && p.Key != "decision").ToList()
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
