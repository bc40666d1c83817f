using System.Security.Claims;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization;
using CrmSecurity.Identity.Clients;
using CrmSecurity.Identity.Contracts;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Demo;
using CrmSecurity.Identity.Events;
using CrmSecurity.Identity.Federation;
using CrmSecurity.Identity.Incident;
using CrmSecurity.Identity.Keys;
using CrmSecurity.Identity.Passkeys;
using CrmSecurity.Identity.Pages.Shared;
using CrmSecurity.Identity.Protocol;
using CrmSecurity.Identity.Throttling;
using CrmSecurity.Identity.Users;
using CrmSecurity.Shared;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity;

/// <summary>What the host gives the Identity module: its database and where its tables are registered.</summary>
public sealed class IdentityModuleOptions
{
    /// <summary>How the module's store reaches the host's database (the host's provider choice). Required.</summary>
    public Action<IServiceProvider, DbContextOptionsBuilder>? Database { get; set; }

    /// <summary>
    /// Called for the module's tables (name in <c>crm_schema_modules</c>, its DbContext, its schema version), so that the
    /// host creates and checks them at start like every module's.
    /// </summary>
    public Action<string, Type, int>? Tables { get; set; }

    /// <summary>
    /// Only what reading the admin audit trail needs (the store and <see cref="IAuditTrailVerifier"/>), for a verb that
    /// must write nothing: none of the module's start-up work (seeding, sealing, client registration) is added.
    /// </summary>
    public bool AuditTrailReaderOnly { get; set; }
}

/// <summary>The Identity module: OpenID Connect provider, users, sign-in pages, incident response.</summary>
public static class IdentityModule
{
    /// <summary>Authentication scheme of the admin endpoints: bearer access tokens of this server.</summary>
    public const string AdminScheme = "IdentityAdmin";

    /// <summary>
    /// Schema version of the module's tables (2: the authorization model and the audit trail; 3: users' <c>ZoneInfo</c>;
    /// 4: record shares keep the record's location; <c>identity_secrets</c>, the module's own secrets wrapped by the
    /// installation's key-encryption key; <c>identity_ended_sessions</c>, sign-in sessions ended by signing out; 5:
    /// <c>identity_sessions</c>, the open sign-in sessions their owners see and end; 6: <c>identity_client_assertions</c>,
    /// client assertions already used, refused if replayed; 7: users' <c>Hired</c> and <c>Terminated</c> dates, nullable columns
    /// added to older databases in place; 8: passkeys, ASP.NET Core Identity's <c>AspNetUserPasskeys</c> (its schema version 3)
    /// with <c>identity_passkey_ceremonies</c>, challenges under way, and <c>identity_passkey_uses</c>, when each was last used;
    /// 9: users' <c>ExternalId</c> and <c>Department</c> for SCIM provisioning, nullable columns added in place).
    /// </summary>
    public const int SchemaVersion = 9;

    /// <summary>The name of the module's <see cref="System.Diagnostics.Metrics.Meter"/> (sign-ins, tokens, decisions).</summary>
    public const string MeterName = IdentityMetrics.MeterName;

    /// <summary>
    /// Adds the Identity module on the host's database (<see cref="IdentityModuleOptions.Database"/>), or with
    /// <see cref="IdentityModuleOptions.AuditTrailReaderOnly"/> only what reading the admin audit trail needs.
    /// </summary>
    public static IHostApplicationBuilder AddIdentity(this IHostApplicationBuilder builder, Action<IdentityModuleOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var module = new IdentityModuleOptions();
        configure(module);
        var database = module.Database ?? throw new InvalidOperationException($"{nameof(IdentityModuleOptions)}.{nameof(IdentityModuleOptions.Database)} is required.");
        module.Tables?.Invoke("identity", typeof(IdentityStore), SchemaVersion);
        if (module.AuditTrailReaderOnly)
        {
            builder.Services.AddDbContextPool<IdentityStore>((provider, options) =>
            {
                database(provider, options);
                options.UseOpenIddict();
            });
            builder.Services.AddScoped<IAuditTrailVerifier, AuditChainVerifier>();
            return builder;
        }

        return AddModule(builder, database);
    }

    private static IHostApplicationBuilder AddModule(IHostApplicationBuilder builder, Action<IServiceProvider, DbContextOptionsBuilder> database)
    {
        var services = builder.Services;
        services.AddOptions<IdentitySettings>().Bind(builder.Configuration.GetSection(IdentitySettings.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<IdentitySettings>, IdentitySettingsValidator>();
        services.TryAddSingleton(TimeProvider.System);
        services.AddHttpContextAccessor();

        // Pooled: OpenIddict and Identity resolve the context for nearly every request, often without a query.
        services.AddDbContextPool<IdentityStore>((provider, options) =>
        {
            database(provider, options);
            options.UseOpenIddict();
        });

        AddDataProtection(builder);
        AddPeople(services);
        AddOpenIddict(services);
        AddAdminAuthentication(services);
        services.AddFederation(builder.Configuration);
        services.AddIdentityThrottling();
        services.AddAuthorizationModel();
        services.AddIdentityAdmin();
        services.AddPasskeys();

        services.TryAddSingleton<PublicOrigin>();
        services.AddSingleton<ClientOnlyScopes>();
        services.AddPageSecurityHeaders();

        services.AddSingleton<SigningKeyRing>();
        services.AddSingleton<KeyRingOptionsSetup>();
        services.AddSingleton<IConfigureOptions<OpenIddictServerOptions>>(provider => provider.GetRequiredService<KeyRingOptionsSetup>());
        services.AddSingleton<IOptionsChangeTokenSource<OpenIddictServerOptions>>(provider => provider.GetRequiredService<KeyRingOptionsSetup>());
        services.AddSingleton<VerifiedSecretCache>();
        services.AddSingleton<ClientJwksFetcher>();
        services.AddSingleton<DevicePolling>();
        services.AddSingleton<Protocol.Dpop.DpopNonces>();
        services.AddSingleton<Protocol.Dpop.DpopProofs>();
        services.AddSingleton<ScopeResources>();
        services.AddScoped<ClientRegistry>();
        services.AddSingleton<ClientRules>();
        services.AddScoped<RevocationList>();
        services.AddScoped<IncidentResponse>();
        services.AddScoped<PasswordSignIn>();
        services.AddScoped<CredentialChanges>();
        services.AddScoped<EndedSessions>();
        services.AddScoped<SignInSessions>();
        services.AddScoped<BackchannelLogout>();
        services.AddSingleton<BackchannelLogoutSender>();
        services.AddHostedService(provider => provider.GetRequiredService<BackchannelLogoutSender>());

        services.AddSingleton<DatabaseEventSink>();
        services.AddSingleton<IAccessEventSink>(provider => provider.GetRequiredService<DatabaseEventSink>());
        services.AddSingleton<AccessEvents>();
        services.AddSingleton<IAccessEventLog>(provider => provider.GetRequiredService<AccessEvents>());

        // The public contract other modules use (src/Identity/Contracts): people, rights, the audit trail.
        services.AddSingleton<IPeopleDirectory, ModelPeopleDirectory>();
        services.AddSingleton<ICrmRights, ModelCrmRights>();
        services.AddSingleton<IUnmaskedReads, ModelUnmaskedReads>();
        services.TryAddSingleton<IUserRisks, NoUserRisks>();
        services.AddSingleton(provider =>
        {
            var settings = provider.GetRequiredService<IOptions<IdentitySettings>>().Value.RiskAccess;
            var levels = settings.Enabled ? Authorization.Risk.RiskAccess.Read(settings.Policy, []) : new Dictionary<string, Authorization.Risk.RiskEffect>();
            return new Authorization.Risk.RiskAccess(levels, provider.GetRequiredService<IUserRisks>(), settings.Enabled);
        });
        services.AddSingleton<ISigningKeys, RingSigningKeys>();
        services.AddScoped<IRegisteredClients, OpenIddictRegisteredClients>();
        services.AddSingleton(provider =>
        {
            var options = new DbContextOptionsBuilder<IdentityStore>();
            database(provider, options);
            options.UseOpenIddict();
            return new DetachedStoreOptions(options.Options);
        });
        services.AddSingleton<IAuditTrail, TransactionalAuditTrail>();
        services.AddScoped<IAuditTrailVerifier, AuditChainVerifier>();
        services.AddSingleton<IAccountMail>(provider => new PickupDirectoryMail(
            Path.GetFullPath(builder.Configuration["Identity:MailPickupDirectory"] is { Length: > 0 } pickup ? pickup : "data/mail"),
            provider.GetRequiredService<TimeProvider>(),
            provider.GetRequiredService<IOptions<IdentitySettings>>().Value.Passwords.ResetLinkLifetime));
        services.AddScoped<IFirstAdministrator, FirstAdministratorSetup>();
        services.AddScoped<IClientAdministration, CommandLineClientAdministration>();

        // Order matters: keys first (OpenIddict needs them), second-factor secrets of an older build protected, then the
        // authorization model, then demo data, then
        // configured clients, then the event writer and the model refresh.
        if (string.IsNullOrWhiteSpace(builder.Configuration["Identity:DataProtectionKeys"])
            || string.Equals(builder.Configuration["Identity:DataProtectionKeys"], "Database", StringComparison.OrdinalIgnoreCase))
        {
            services.AddHostedService<KeyRingProtectionStartup>();
        }

        services.AddHostedService<SigningKeyRingService>();
        services.AddHostedService<UserSecretsUpgrade>();
        services.AddAuthorizationStartup();
        services.AddSingleton<DemoSeeder>();
        services.AddSingleton<IDemoSeeding>(provider => provider.GetRequiredService<DemoSeeder>());
        services.AddHostedService(provider => provider.GetRequiredService<DemoSeeder>());
        services.AddHostedService<ClientSync>();
        services.AddHostedService(provider => provider.GetRequiredService<DatabaseEventSink>());
        services.AddAuthorizationRefresh();

        services.AddRazorPages().AddApplicationPart(typeof(IdentityModule).Assembly);
        return builder;
    }

    /// <summary>Maps the OpenID Connect endpoints, the sign-in and account pages, and the incident-response calls.</summary>
    public static IEndpointRouteBuilder MapIdentity(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapRazorPages();
        endpoints.MapPasskeyScript();
        endpoints.MapProtocolEndpoints();
        endpoints.MapIncidentEndpoints();
        Authorization.Decisions.DecisionEndpoints.MapDecisionEndpoints(endpoints);
        Authorization.Decisions.AuthZenEndpoints.MapAuthZenEndpoints(endpoints);
        endpoints.MapIdentityAdmin();
        Scim.ScimEndpoints.MapScimEndpoints(endpoints);
        return endpoints;
    }

    private static void AddDataProtection(IHostApplicationBuilder builder)
    {
        // Cookies and wrapped signing keys must be readable by every instance: keys live in the shared database
        // by default (never in the home directory, which differs per machine and container).
        var location = builder.Configuration["Identity:DataProtectionKeys"];
        var protection = builder.Services.AddDataProtection().SetApplicationName("crm-security");
        if (string.IsNullOrWhiteSpace(location) || string.Equals(location, "Database", StringComparison.OrdinalIgnoreCase))
        {
            protection.PersistKeysToDbContext<IdentityStore>();
        }
        else
        {
            protection.PersistKeysToFileSystem(new DirectoryInfo(Path.GetFullPath(location)));
        }

        // Every key of the ring is wrapped by the installation's key-encryption key, which the host provides and which
        // is never stored beside the keys (OWASP ASVS 4.0.3 V6.4.1): a copy of the database alone signs nothing.
        // The key is resolved when a key is first written (during start-up), never while the host is being built.
        builder.Services.AddSingleton<IConfigureOptions<KeyManagementOptions>>(services => new ConfigureOptions<KeyManagementOptions>(options =>
            options.XmlEncryptor = new KekXmlEncryptor(() => services.GetService<Crypto.Providers.IKeyEncryptionKey>()
                ?? throw new InvalidOperationException("The Identity module needs the installation's key-encryption key: the host registers CrmSecurity.Crypto.Providers.IKeyEncryptionKey (Crypto:MasterKey)."))));
    }

    private static void AddPeople(IServiceCollection services)
    {
        services.AddIdentity<CrmUser, IdentityRole>()
            .AddEntityFrameworkStores<IdentityStore>()
            .AddDefaultTokenProviders()
            .AddTokenProvider<OneTimeAuthenticatorCodes>(TokenOptions.DefaultAuthenticatorProvider)
            .AddSignInManager<CrmSignInManager>()
            .AddUserStore<CrmUserStore>()
            .AddPasswordValidator<PasswordDenyList>();
        services.AddScoped(provider => (CrmSignInManager)provider.GetRequiredService<SignInManager<CrmUser>>());
        services.AddOptions<DataProtectionTokenProviderOptions>().Configure<IOptions<IdentitySettings>>((options, settings) =>
            options.TokenLifespan = settings.Value.Passwords.ResetLinkLifetime);
        services.AddSingleton<CommonPasswords>();
        services.AddSingleton<IdentitySecrets>();
        services.AddSingleton<UserSecretProtection>();

        services.AddOptions<IdentityOptions>().Configure<IOptions<IdentitySettings>>((options, settings) =>
        {
            // NIST SP 800-63B §5.1.1.2: length and a deny list, no composition rules.
            options.Password.RequiredLength = settings.Value.Passwords.MinimumLength;
            options.Password.RequireDigit = false;
            options.Password.RequireLowercase = false;
            options.Password.RequireUppercase = false;
            options.Password.RequireNonAlphanumeric = false;
            options.Password.RequiredUniqueChars = 1;
            options.Lockout.MaxFailedAccessAttempts = settings.Value.Lockout.MaxFailedAttempts;
            options.Lockout.DefaultLockoutTimeSpan = settings.Value.Lockout.Duration;
            options.Lockout.AllowedForNewUsers = true;
            options.User.RequireUniqueEmail = true;
            // Passkeys (AspNetUserPasskeys) are Identity's store schema version 3; IdentityStore fixes its model at it too.
            options.Stores.SchemaVersion = IdentitySchemaVersions.Version3;
            // Tokens carry these claim names, so the cookie principal uses them too.
            options.ClaimsIdentity.UserIdClaimType = Claims.Subject;
            options.ClaimsIdentity.UserNameClaimType = Claims.Name;
            options.ClaimsIdentity.RoleClaimType = Claims.Role;
            options.ClaimsIdentity.EmailClaimType = Claims.Email;
        });

        // Every request re-checks the security stamp, so disabling a user or revoking their sessions ends
        // their sign-in cookie at once rather than after the default 30 minutes. The re-issued cookie keeps how and when
        // the user authenticated (amr, auth_time): Identity rebuilds the principal from the user and would drop them.
        services.Configure<SecurityStampValidatorOptions>(options =>
        {
            options.ValidationInterval = TimeSpan.Zero;
            options.OnRefreshingPrincipal = context =>
            {
                if (context.NewPrincipal?.Identity is ClaimsIdentity identity && context.CurrentPrincipal is { } current)
                {
                    identity.AddClaims(CrmSignInManager.Carried(current).Where(claim => !identity.HasClaim(claim.Type, claim.Value)));
                }

                return Task.CompletedTask;
            };
        });

        services.AddOptions<CookieAuthenticationOptions>(IdentityConstants.ApplicationScheme).Configure<IOptions<IdentitySettings>>((options, settings) =>
        {
            options.LoginPath = "/account/login";
            options.LogoutPath = "/connect/logout";
            options.AccessDeniedPath = "/account/login";
            // Lax, not Strict: a client sends the browser here with a top-level GET from its own site (RFC 6749 §4.1.1).
            SecureCookie(options.Cookie, "crm.identity", SameSiteMode.Lax, settings.Value);
            options.ExpireTimeSpan = settings.Value.Sessions.IdleTimeout;
            options.SlidingExpiration = true;
        });
        services.AddOptions<CookieAuthenticationOptions>(IdentityConstants.ApplicationScheme).PostConfigure<IOptions<IdentitySettings>, TimeProvider>((options, settings, time) =>
        {
            // OWASP ASVS 4.0.3 V3.3.2: an active session still ends AbsoluteTimeout after the user authenticated.
            var checkStamp = options.Events.OnValidatePrincipal;
            var absolute = settings.Value.Sessions.AbsoluteTimeout;
            options.Events.OnValidatePrincipal = async context =>
            {
                var authenticatedAt = (context.Principal is { } principal ? CrmSignInManager.AuthenticatedAt(principal) : null) ?? context.Properties.IssuedUtc;
                // OWASP ASVS 4.0.3 V3.3.1: a session signed out is over for every copy of its cookie, not just the browser's.
                var ended = context.Principal?.FindFirst(EndedSessions.SessionIdClaim)?.Value is { } sessionId
                    && await context.HttpContext.RequestServices.GetRequiredService<EndedSessions>().IsEndedAsync(sessionId, context.HttpContext.RequestAborted);
                if (ended || authenticatedAt is not { } at || time.GetUtcNow() - at > absolute)
                {
                    context.RejectPrincipal();
                    await context.HttpContext.SignOutAsync(IdentityConstants.ApplicationScheme);
                    return;
                }

                await checkStamp(context);
            };
        });
        services.AddOptions<CookieAuthenticationOptions>(IdentityConstants.TwoFactorUserIdScheme).Configure<IOptions<IdentitySettings>>((options, settings) =>
            SecureCookie(options.Cookie, "crm.2fa", SameSiteMode.Strict, settings.Value));
        services.AddOptions<CookieAuthenticationOptions>(IdentityConstants.TwoFactorRememberMeScheme).Configure<IOptions<IdentitySettings>>((options, settings) =>
            SecureCookie(options.Cookie, "crm.2fa-remember", SameSiteMode.Strict, settings.Value));
        services.AddOptions<CookieAuthenticationOptions>(IdentityConstants.ExternalScheme).Configure<IOptions<IdentitySettings>>((options, settings) =>
            SecureCookie(options.Cookie, "crm.external", SameSiteMode.Lax, settings.Value));
        services.AddOptions<AntiforgeryOptions>().Configure<IOptions<IdentitySettings>>((options, settings) =>
            SecureCookie(options.Cookie, "crm.antiforgery", SameSiteMode.Strict, settings.Value));
    }

    /// <summary>
    /// Cookie flags (OWASP ASVS 4.0.3 V3.4): HttpOnly, SameSite, and when the public origin is https, Secure always and the
    /// <c>__Host-</c> prefix (RFC 6265bis §4.1.3.2: host-only, path /, Secure), so no sibling subdomain can set or shadow it.
    /// Over plain HTTP (AllowHttp, loopback tests) neither is possible: browsers refuse Secure and prefixed cookies there.
    /// </summary>
    private static void SecureCookie(CookieBuilder cookie, string name, SameSiteMode sameSite, IdentitySettings settings)
    {
        var https = !settings.AllowHttp
            || (Uri.TryCreate(settings.Issuer, UriKind.Absolute, out var issuer) && issuer.Scheme == Uri.UriSchemeHttps);
        cookie.Name = https ? "__Host-" + name : name;
        cookie.SecurePolicy = https ? CookieSecurePolicy.Always : CookieSecurePolicy.SameAsRequest;
        cookie.HttpOnly = true;
        cookie.SameSite = sameSite;
        cookie.Path = "/";
        cookie.Domain = null;
    }

    private static void AddOpenIddict(IServiceCollection services)
    {
        services.AddOpenIddict()
            .AddCore(options =>
            {
                options.UseEntityFrameworkCore().UseDbContext<IdentityStore>();
                options.ReplaceApplicationManager(typeof(SecretCachingApplicationManager<>));
            })
            .AddServer(options =>
            {
                options.SetAuthorizationEndpointUris("connect/authorize")
                    .SetPushedAuthorizationEndpointUris("connect/par")
                    .SetTokenEndpointUris("connect/token")
                    .SetIntrospectionEndpointUris("connect/introspect")
                    .SetRevocationEndpointUris("connect/revoke")
                    .SetUserInfoEndpointUris("connect/userinfo")
                    .SetEndSessionEndpointUris("connect/logout")
                    .SetDeviceAuthorizationEndpointUris("connect/device")
                    .SetEndUserVerificationEndpointUris("connect/verify")
                    .SetJsonWebKeySetEndpointUris(".well-known/jwks");

                // Implicit, hybrid and password grants are not enabled (RFC 9700 §2.1.2, §2.4).
                options.AllowAuthorizationCodeFlow()
                    .AllowClientCredentialsFlow()
                    .AllowRefreshTokenFlow()
                    .AllowTokenExchangeFlow()
                    // RFC 8628, for CLI tools and kiosks; a client gets it only when its GrantTypes list the device code grant.
                    .AllowDeviceAuthorizationFlow();

                // RFC 8628 §6.1: letters people type without confusion, enough of them to resist guessing (with throttling).
                options.SetUserCodeCharset(NormalizeUserCode.Charset)
                    .SetUserCodeLength(NormalizeUserCode.Length)
                    .SetUserCodeDisplayFormat(NormalizeUserCode.DisplayFormat);

                // RFC 7636 / RFC 9700 §2.1.1: PKCE for every authorization code request.
                options.RequireProofKeyForCodeExchange();
                options.RegisterScopes(Scopes.OpenId, Scopes.Profile, Scopes.Email, Scopes.OfflineAccess, ClaimsContract.RolesScope);
                options.RegisterClaims(
                    Claims.Subject, Claims.Name, Claims.PreferredUsername, Claims.Email, Claims.EmailVerified, Claims.Role,
                    ClaimsContract.Tenant, ClaimsContract.BusinessUnit, ClaimsContract.PermissionModelVersion, Claims.AuthenticationMethodReference,
                    Claims.AuthenticationTime, Claims.AuthenticationContextReference, ClaimsContract.SessionId, FederatedSignIn.IdpClaim);

                // Access tokens are signed JWTs (RFC 9068) that any JwtBearer resource server validates.
                options.DisableAccessTokenEncryption();

                options.UseAspNetCore()
                    .EnableAuthorizationEndpointPassthrough()
                    .EnableTokenEndpointPassthrough()
                    .EnableUserInfoEndpointPassthrough()
                    .EnableEndSessionEndpointPassthrough()
                    .EnableEndUserVerificationEndpointPassthrough();

                options.AddEventHandler(UsePublicOrigin.Descriptor);
                options.AddEventHandler(MarkFormPostResponses.Descriptor);
                options.AddEventHandler(RejectClientOnlyScopesInPushedRequests.Descriptor);
                options.AddEventHandler(RejectClientOnlyScopesInTokenRequests.Descriptor);
                options.AddEventHandler(RejectClientOnlyScopesForUsers.Descriptor);
                options.AddEventHandler(UseKeyRingCredentials.Descriptor);
                options.AddEventHandler(RejectRevokedTokens.Descriptor);
                options.AddEventHandler(AcceptClientAssertionTypes.Descriptor);
                options.AddEventHandler(ResolveRemoteClientKeys.Descriptor);
                options.AddEventHandler(MarkClientAssertionPrincipal.Descriptor);
                options.AddEventHandler(RejectReplayedClientAssertions.Descriptor);
                options.AddEventHandler(ClientAssertionFailures.Descriptor);
                options.RemoveEventHandler(OpenIddictServerHandlers.Revocation.RevokeToken.Descriptor);
                options.AddEventHandler(RevokeTokenOrListIt.Descriptor);
                options.AddEventHandler(SlowDownDevicePolling.Descriptor);
                options.AddEventHandler(NormalizeUserCode.Descriptor);
                options.AddEventHandler(WriteTokenIssuedEvent.Descriptor);
                options.AddEventHandler(WriteTokenRejectedEvent.Descriptor);
                options.AddEventHandler(WriteTokenRevokedEvent.Descriptor);
                options.AddEventHandler(AdvertiseLogoutAndAcr.Descriptor);
                // RFC 9449 DPoP: OpenIddict 7.9 has no DPoP of its own (only mTLS-bound tokens), so these handlers add it.
                options.AddEventHandler(Protocol.Dpop.ValidateDpopProofAtTokenEndpoint.Descriptor);
                options.AddEventHandler(Protocol.Dpop.BindTokensToDpopKey.Descriptor);
                options.AddEventHandler(Protocol.Dpop.AnswerDpopTokenType.Descriptor);
                options.AddEventHandler(Protocol.Dpop.SendDpopNonce.Descriptor);
                options.AddEventHandler(Protocol.Dpop.AdvertiseDpop.Descriptor);
                options.AddEventHandler(Protocol.Dpop.ExtractDpopUserInfoToken.Descriptor);
                options.AddEventHandler(Protocol.Dpop.ValidateDpopAtUserInfo.Descriptor);
                options.AddEventHandler(Protocol.Dpop.LeaveDpopBindingToDpopHandlers.Descriptor);
            });

        services.AddOptions<OpenIddictServerOptions>().Configure<IOptions<IdentitySettings>, TimeProvider>((options, settings, time) =>
        {
            var value = settings.Value;
            options.TimeProvider = time;
            // The issuer is the public origin (UsePublicOrigin puts every request on it when Identity:Issuer is empty,
            // outside Production): discovery and iss never follow a request's Host header.
            if (!string.IsNullOrWhiteSpace(value.Issuer))
            {
                options.Issuer = new Uri(value.Issuer.Trim(), UriKind.Absolute);
            }

            options.AccessTokenLifetime = value.Tokens.AccessTokenLifetime;
            options.IdentityTokenLifetime = value.Tokens.IdentityTokenLifetime;
            options.AuthorizationCodeLifetime = value.Tokens.AuthorizationCodeLifetime;
            options.RefreshTokenLifetime = value.Tokens.RefreshTokenLifetime;
            options.IssuedTokenLifetime = value.Tokens.IssuedTokenLifetime;
            // RFC 8628 §3.2 expires_in: the device code and its user code live as long.
            options.DeviceCodeLifetime = value.Tokens.DeviceCodeLifetime;
            options.UserCodeLifetime = value.Tokens.DeviceCodeLifetime;

            // RFC 9700 §4.14.2: a spent refresh token presented again revokes the chain. OpenIddict's default
            // 30-second grace would accept the replay; the setting defaults to zero.
            options.RefreshTokenReuseLeeway = value.Tokens.RefreshTokenReuseLeeway;

            foreach (var scope in value.ApiScopes)
            {
                options.Scopes.Add(scope.Name);
            }

            // RFC 9700 §2.1.1: only S256; "plain" would let an intercepted challenge be replayed as the verifier.
            options.CodeChallengeMethods.Remove(CodeChallengeMethods.Plain);
        });

        services.AddOptions<OpenIddictServerAspNetCoreOptions>().Configure<IOptions<IdentitySettings>>((options, settings) =>
            // OAuth 2.0 requires TLS (RFC 6749 §3.1, §3.2); plain HTTP only where explicitly allowed (loopback, tests).
            options.DisableTransportSecurityRequirement = settings.Value.AllowHttp);
    }

    private static void AddAdminAuthentication(IServiceCollection services)
    {
        services.AddAuthentication().AddIdentityBearer(AdminScheme, IncidentEndpoints.AdminAudience);

        services.AddAuthorizationBuilder().AddPolicy(IncidentEndpoints.Policy, policy => policy
            .AddAuthenticationSchemes(AdminScheme)
            .RequireAuthenticatedUser()
            // RFC 9068 §2.2.3 / RFC 8693 §4.2: the one space-delimited scope claim holds identity.admin; rights come from the model.
            .RequireAssertion(context => ScopeClaims.HasScope(context.User, IncidentEndpoints.AdminScope)));
    }

}
