using System.Security.Claims;
using CrmSecurity.Identity.Events;
using CrmSecurity.Identity.Protocol;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace CrmSecurity.Identity.Federation;

/// <summary>
/// Sign-in through upstream OpenID Connect providers: one ASP.NET Core OpenID Connect handler per configured provider
/// (authorization code flow with PKCE, its own callback path), signing into Identity's external cookie; the sign-in page
/// then links or creates the account (<see cref="FederatedSignIn"/>).
/// </summary>
internal static partial class FederationServices
{
    /// <summary>The authentication scheme of provider <paramref name="name"/>.</summary>
    public static string Scheme(string name) => "federation." + name;

    /// <summary>Where provider <paramref name="name"/> sends the browser back with the code (registered at the provider).</summary>
    public static string CallbackPath(string name) => $"/federation/{name}/callback";

    /// <summary>Claims the handler adds to the external principal: which provider, and the issuer of the validated ID token.</summary>
    public const string ProviderClaim = "crm.federation.provider";

    public const string IssuerClaim = "crm.federation.iss";

    public static IServiceCollection AddFederation(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<FederationSettings>().Bind(configuration.GetSection(FederationSettings.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<FederationSettings>, FederationSettingsValidator>();
        services.AddScoped<FederatedSignIn>();

        // Schemes are fixed when the host is built, so the names are read here; everything else comes from the validated
        // options when a handler first runs.
        var authentication = services.AddAuthentication();
        foreach (var provider in configuration.GetSection(FederationSettings.Section + ":Providers").GetChildren())
        {
            var name = provider.Key;
            authentication.AddOpenIdConnect(Scheme(name), provider["DisplayName"], _ => { });
            services.AddOptions<OpenIdConnectOptions>(Scheme(name))
                .Configure<IOptions<FederationSettings>, IOptions<IdentitySettings>>((options, federation, identity) =>
                    Configure(options, name, federation.Value.Providers[name], identity.Value));
        }

        return services;
    }

    private static void Configure(OpenIdConnectOptions options, string name, FederationProviderSettings provider, IdentitySettings identity)
    {
        options.Authority = provider.Authority;
        options.ClientId = provider.ClientId;
        options.ClientSecret = provider.ClientSecret;
        // OpenID Connect Core §3.1 authorization code flow, with PKCE (RFC 7636; RFC 9700 §2.1.1 for confidential clients too).
        options.ResponseType = OpenIdConnectResponseType.Code;
        options.UsePkce = true;
        // The code comes back in the query of a top-level GET, so the correlation and nonce cookies can be SameSite=Lax
        // (form_post would need SameSite=None, sent with every cross-site request).
        options.ResponseMode = OpenIdConnectResponseMode.Query;
        options.CallbackPath = CallbackPath(name);
        options.SignInScheme = IdentityConstants.ExternalScheme;
        options.RequireHttpsMetadata = !identity.AllowHttp;
        options.MapInboundClaims = false;
        options.SaveTokens = false;
        options.GetClaimsFromUserInfoEndpoint = false;
        options.DisableTelemetry = true;
        // OpenID Connect Core §3.1.2.1 / §15.5.2: a nonce in every request, checked against the ID token (the handler's
        // protocol validator refuses a token whose nonce is not one this browser's nonce cookie holds).
        options.ProtocolValidator.RequireNonce = true;
        options.Scope.Clear();
        options.Scope.Add("openid");
        foreach (var scope in provider.Scopes.Where(s => s != "openid"))
        {
            options.Scope.Add(scope);
        }

        var https = !identity.AllowHttp
            || (Uri.TryCreate(identity.Issuer, UriKind.Absolute, out var issuer) && issuer.Scheme == Uri.UriSchemeHttps);
        foreach (var cookie in new[] { options.CorrelationCookie, options.NonceCookie })
        {
            cookie.SameSite = SameSiteMode.Lax;
            cookie.SecurePolicy = https ? CookieSecurePolicy.Always : CookieSecurePolicy.SameAsRequest;
            cookie.HttpOnly = true;
        }

        options.Events = new OpenIdConnectEvents
        {
            OnRedirectToIdentityProvider = context =>
            {
                // The redirect URI is on the public origin, never on whatever Host header this request carried.
                var origin = context.HttpContext.RequestServices.GetRequiredService<PublicOrigin>();
                context.ProtocolMessage.RedirectUri = origin.Link(CallbackPath(name).TrimStart('/')).AbsoluteUri;
                return Task.CompletedTask;
            },
            OnTokenValidated = context =>
            {
                // The handler has checked the ID token (signature, iss against discovery, aud, exp, nonce; OpenID Connect Core
                // §3.1.3.7) and the code exchange (PKCE). Record which provider and which issuer vouched for this subject.
                var subject = context.Principal?.FindFirst("sub");
                if (context.Principal?.Identity is not ClaimsIdentity identity || subject is null || string.IsNullOrEmpty(subject.Issuer)
                    || subject.Issuer == ClaimsIdentity.DefaultIssuer)
                {
                    context.Fail("The upstream ID token has no subject.");
                    return Task.CompletedTask;
                }

                identity.AddClaim(new Claim(ProviderClaim, name));
                identity.AddClaim(new Claim(IssuerClaim, subject.Issuer));
                return Task.CompletedTask;
            },
            OnRemoteFailure = async context =>
            {
                // A callback with a wrong or missing state, a replayed or foreign code, a nonce this browser never sent, an
                // error from the provider: nobody is signed in; the page says so and the attempt is written.
                var services = context.HttpContext.RequestServices;
                LogRemoteFailure(services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(FederationServices)), name, context.Failure?.GetType().Name ?? "none");
                var events = services.GetRequiredService<AccessEvents>();
                await events.WriteAsync(new AccessEvent
                {
                    Timestamp = events.Time.GetUtcNow(),
                    UserId = "unknown",
                    Action = AccessActions.LoginFailed,
                    SourceIp = context.HttpContext.Connection.RemoteIpAddress?.ToString(),
                    UserAgent = context.HttpContext.Request.Headers.UserAgent.ToString(),
                    Outcome = Outcomes.Denied,
                    Details = $"federation_callback_refused; idp={name}",
                }, context.HttpContext.RequestAborted);
                context.Response.Redirect("/account/login?handler=FederationFailed&provider=" + Uri.EscapeDataString(name));
                context.HandleResponse();
            },
        };
    }

    // The failure's type only: its message can quote what the provider sent.
    [LoggerMessage(EventId = 4470, Level = LogLevel.Warning, Message = "Sign-in through upstream provider {Provider} was refused at the callback ({Failure})")]
    private static partial void LogRemoteFailure(ILogger logger, string provider, string failure);
}
