using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CrmSecurity.Samples.Crm.Security;

/// <summary>
/// The relying party's side of OpenID Connect Back-Channel Logout 1.0: <c>POST /backchannel-logout</c> takes the service's
/// logout token, validates it as §2.6 says (signature against the provider's JWKS, <c>iss</c>, <c>aud</c>, <c>typ</c>
/// <c>logout+jwt</c>, the logout event, no <c>nonce</c>, <c>sub</c> or <c>sid</c>), and ends the sessions it names: the
/// cookie check refuses a session whose <c>sid</c> ended, or whose user's sessions all ended after it started.
/// Kept in memory: a sample with one instance; a real CRM keeps it where all its instances see it.
/// </summary>
internal sealed class BackchannelLogoutReceiver(IOptionsMonitor<OpenIdConnectOptions> oidc, ILogger<BackchannelLogoutReceiver> logger)
{
    private const string LogoutEvent = "http://schemas.openid.net/event/backchannel-logout";
    private readonly ConcurrentDictionary<string, DateTimeOffset> _endedSessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _endedUsers = new(StringComparer.Ordinal);
    private readonly JsonWebTokenHandler _handler = new();

    /// <summary>The endpoint: 200 when the sessions ended, 400 for a token that is not a valid logout token (§2.8).</summary>
    public async Task<IResult> ReceiveAsync(HttpContext http)
    {
        var form = await http.Request.ReadFormAsync(http.RequestAborted);
        if (form["logout_token"].ToString() is not { Length: > 0 } token)
        {
            return Results.BadRequest(new { error = "invalid_request", error_description = "logout_token is missing." });
        }

        var options = oidc.Get(OpenIdConnectDefaults.AuthenticationScheme);
        var configuration = await options.ConfigurationManager!.GetConfigurationAsync(http.RequestAborted);
        var result = await _handler.ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = configuration.Issuer,
            ValidAudience = options.ClientId,
            IssuerSigningKeys = configuration.SigningKeys,
            // §2.6 / RFC 8725 §3.11: explicit typing, so an ID token can never be replayed here as a logout token.
            ValidTypes = ["logout+jwt"],
        });
        if (!result.IsValid || result.SecurityToken is not JsonWebToken jwt || !IsLogoutToken(jwt, out var subject, out var sessionId))
        {
            Log.RefusedLogoutToken(logger, result.Exception?.Message ?? "not a logout token");
            return Results.BadRequest(new { error = "invalid_request", error_description = "The logout token is not valid." });
        }

        var now = DateTimeOffset.UtcNow;
        if (sessionId is not null)
        {
            _endedSessions[sessionId] = now;
        }
        else
        {
            _endedUsers[subject!] = now;
        }

        Log.SessionsEnded(logger, subject ?? "?", sessionId is null ? "all" : "one");
        return Results.Ok();
    }

    /// <summary>For <c>CookieAuthenticationEvents.OnValidatePrincipal</c>: a session the service ended is over here too.</summary>
    public async Task ValidateAsync(CookieValidatePrincipalContext context)
    {
        var principal = context.Principal;
        var ended = principal?.FindFirst("sid")?.Value is { } sid && _endedSessions.ContainsKey(sid)
            || (principal?.FindFirst("sub")?.Value is { } sub && _endedUsers.TryGetValue(sub, out var at) && context.Properties.IssuedUtc is { } issued && issued <= at);
        if (ended)
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
        }
    }

    /// <summary>§2.6 steps 3-5: the logout event, a sub or a sid, and no nonce.</summary>
    private static bool IsLogoutToken(JsonWebToken jwt, out string? subject, out string? sessionId)
    {
        subject = jwt.TryGetPayloadValue<string>("sub", out var sub) ? sub : null;
        sessionId = jwt.TryGetPayloadValue<string>("sid", out var sid) ? sid : null;
        if (jwt.TryGetPayloadValue<object>("nonce", out _) || (subject is null && sessionId is null))
        {
            return false;
        }

        return jwt.TryGetPayloadValue<JsonElement>("events", out var events)
            && events.ValueKind == JsonValueKind.Object
            && events.TryGetProperty(LogoutEvent, out var logout)
            && logout.ValueKind == JsonValueKind.Object;
    }
}
