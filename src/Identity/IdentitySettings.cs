using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity;

/// <summary>Settings of the OpenID Connect provider, bound from the <c>Identity</c> section and validated at start.</summary>
internal sealed class IdentitySettings
{
    public const string Section = "Identity";

    /// <summary>
    /// The public origin of the service (absolute URI): the OpenID Connect issuer and the base of every link it mails.
    /// Required in Production. Empty outside Production: the host's own first listening address, never a request's Host.
    /// </summary>
    public string? Issuer { get; set; }

    /// <summary>Accept plain HTTP (loopback, tests). OAuth 2.0 requires TLS everywhere else (RFC 6749 §3.1).</summary>
    public bool AllowHttp { get; set; }

    /// <summary>Seed demo users and clients on an empty database. Refused in Production.</summary>
    public bool DemoMode { get; set; }

    /// <summary>
    /// People reach the admin pages, the admin and incident APIs and the auditors' review pages and findings API only after
    /// two-step verification (OWASP ASVS V4.3.1).
    /// Unset: on in Production, off elsewhere.
    /// </summary>
    public bool? AdminsRequireSecondFactor { get; set; }

    /// <summary>Where Data Protection keys (cookies, signing-key wrapping) live: <c>Database</c> or a directory path.</summary>
    public string DataProtectionKeys { get; set; } = "Database";

    public TokenSettings Tokens { get; set; } = new();

    public SigningKeySettings SigningKeys { get; set; } = new();

    public PasswordSettings Passwords { get; set; } = new();

    public LockoutSettings Lockout { get; set; } = new();

    public ThrottlingSettings Throttling { get; set; } = new();

    public SessionSettings Sessions { get; set; } = new();

    public PerformanceSettings Performance { get; set; } = new();

    public AuthorizationSettings Authorization { get; set; } = new();

    /// <summary>API scopes and the audience (resource) each one grants.</summary>
    public List<ApiScopeSettings> ApiScopes { get; set; } = [];

    /// <summary>Clients registered (created or updated) at start.</summary>
    public List<ClientSettings> Clients { get; set; } = [];

    /// <summary>How the keys of clients registered with a <see cref="ClientSettings.JwksUri"/> are fetched and cached.</summary>
    public ClientJwksSettings ClientJwks { get; set; } = new();

    /// <summary>Which sign-ins need two-step verification before a code is issued, and how fresh a sign-in must be to turn it off.</summary>
    public MfaSettings Mfa { get; set; } = new();

    /// <summary>Delivery of OpenID Connect Back-Channel Logout 1.0 logout tokens to clients that registered a URI.</summary>
    public BackchannelLogoutSettings BackchannelLogout { get; set; } = new();

    /// <summary>Risk that changes access: the access analyzer's open findings about a user change the decisions about them.</summary>
    public Authorization.Risk.RiskAccessSettings RiskAccess { get; set; } = new();

    /// <summary>DPoP (RFC 9449): how fresh a proof must be and whether the server hands out nonces.</summary>
    public DpopSettings Dpop { get; set; } = new();

    /// <summary>Passkeys (WebAuthn): the relying party id and the origins assertions may come from (docs/identity-passkeys.md).</summary>
    public Passkeys.PasskeySettings Passkeys { get; set; } = new();
}

/// <summary>
/// DPoP proofs (RFC 9449, docs/identity-clients.md "DPoP"): at the token endpoint and at every API of this host.
/// </summary>
internal sealed class DpopSettings
{
    /// <summary>
    /// How far a proof's <c>iat</c> may lie in the past (and, a tenth of it, in the future for clock skew): RFC 9449 §4.3
    /// item 11 "within an acceptable window". A proof's <c>jti</c> is remembered that long, so a replay is refused (§11.1).
    /// </summary>
    public TimeSpan ProofLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// RFC 9449 §8: the token endpoint requires a nonce it issued in every proof; a proof without one (or with an expired
    /// one) gets <c>use_dpop_nonce</c> and a fresh <c>DPoP-Nonce</c> header. Limits pre-generated proofs to the nonce's life.
    /// </summary>
    public bool RequireNonce { get; set; }

    /// <summary>How long a nonce the server issued is accepted.</summary>
    public TimeSpan NonceLifetime { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// MFA policy at the authorization endpoint (docs/identity-clients.md, "MFA policy"): a code is issued only for a session
/// that passed two-step verification when the client requires it (<see cref="ClientSettings.RequireMfa"/>), a requested
/// scope is listed in <see cref="Scopes"/>, the user holds a role listed in <see cref="Roles"/>, or the request asks for
/// the <c>mfa</c> acr value. The admin and review areas have their own switch, <c>Identity:AdminsRequireSecondFactor</c>.
/// </summary>
internal sealed class MfaSettings
{
    /// <summary>Scopes whose tokens need two-step verification, e.g. <c>crypto:decrypt</c>.</summary>
    public List<string> Scopes { get; set; } = [];

    /// <summary>Roles (of the authorization model, direct or through a team) whose holders always need two-step verification.</summary>
    public List<string> Roles { get; set; } = [];

    /// <summary>
    /// How recent the sign-in must be for two-step verification to be turned off (OWASP ASVS 4.0.3 V3.7.1, re-authentication
    /// before a sensitive change): an older session is sent to sign in again first.
    /// </summary>
    public TimeSpan FreshAuthenticationToTurnOff { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>Back-channel logout delivery: asynchronous, retried with backoff, never on the sign-out's own request.</summary>
internal sealed class BackchannelLogoutSettings
{
    /// <summary>How many times a logout token is POSTed before it is given up (the first try included).</summary>
    public int MaxAttempts { get; set; } = 5;

    /// <summary>The wait before the second try; it doubles before each further try.</summary>
    public TimeSpan FirstRetryDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long one POST may take.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// Fetching a client's JWKS from its <c>jwks_uri</c> (RFC 7591 §2, OpenID Connect Core §9/§10.1.1): a request the service
/// makes to an address a client registered, so it is bounded in time and size, cached, rate-limited, and refused for
/// addresses inside the service's own network (OWASP SSRF Prevention Cheat Sheet).
/// </summary>
internal sealed class ClientJwksSettings
{
    /// <summary>Longest wait for a JWKS response (connect, headers and body).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Largest JWKS accepted, in bytes; a longer response is refused unread.</summary>
    public int MaxResponseBytes { get; set; } = 64 * 1024;

    /// <summary>Shortest time a fetched JWKS is kept (also when the response says <c>no-store</c>, <c>no-cache</c> or nothing).</summary>
    public TimeSpan MinCacheDuration { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Longest time a fetched JWKS is kept, whatever <c>Cache-Control: max-age</c> says.</summary>
    public TimeSpan MaxCacheDuration { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// An assertion naming a <c>kid</c> the cached JWKS lacks fetches the JWKS again (the client rotated its key), at most
    /// once per this interval per URI, so assertions with made-up key ids cannot make the service hammer the URI.
    /// </summary>
    public TimeSpan UnknownKeyRefetchInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Development and Testing only: allow <c>http://</c> JWKS URIs on a loopback host (<c>localhost</c>, 127.0.0.0/8, ::1)
    /// and connections to loopback addresses. Refused in any other environment.
    /// </summary>
    public bool AllowLoopbackHttp { get; set; }

    /// <summary>
    /// Networks (CIDR, e.g. <c>10.20.0.0/16</c>) a JWKS URI may resolve to although they are private, link-local or
    /// otherwise internal: for clients whose key server is inside the company network. Empty: none.
    /// </summary>
    public List<string> AllowedNetworks { get; set; } = [];
}

internal sealed class TokenSettings
{
    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(10);

    public TimeSpan IdentityTokenLifetime { get; set; } = TimeSpan.FromMinutes(10);

    public TimeSpan AuthorizationCodeLifetime { get; set; } = TimeSpan.FromMinutes(2);

    public TimeSpan RefreshTokenLifetime { get; set; } = TimeSpan.FromDays(14);

    public TimeSpan IssuedTokenLifetime { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long a device code and its user code can be approved (RFC 8628 §3.2 <c>expires_in</c>).</summary>
    public TimeSpan DeviceCodeLifetime { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How long a spent refresh token may be presented again (a client retrying after a lost response).
    /// Zero: any reuse revokes the whole chain (RFC 9700 §4.14.2). OpenIddict's own default is 30 seconds.
    /// </summary>
    public TimeSpan RefreshTokenReuseLeeway { get; set; } = TimeSpan.Zero;
}

internal sealed class SigningKeySettings
{
    /// <summary>A new key generation is created this often.</summary>
    public TimeSpan RotationInterval { get; set; } = TimeSpan.FromDays(30);

    /// <summary>A new key is in JWKS this long before it signs, so resource servers' caches see it first.</summary>
    public TimeSpan PublishLead { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How often each instance re-reads the key table (other instances may have rotated).</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Access-token signature algorithm: <c>ES256</c> (fast, default) or <c>RS256</c>. ID tokens are always RS256 (OpenID Connect Core §15.1).</summary>
    public string AccessTokenAlgorithm { get; set; } = "ES256";
}

internal sealed class PasswordSettings
{
    /// <summary>OWASP ASVS 4.0.3 V2.1.1: at least 12 characters (NIST SP 800-63B §5.1.1.2 allows 8; the bank's bar is higher).</summary>
    public int MinimumLength { get; set; } = 12;

    /// <summary>Deny-list file, one password per line. Empty: the list shipped with the service.</summary>
    public string? DenyListPath { get; set; }

    /// <summary>
    /// How long a password-reset link (mailed, or the first administrator's setup link) works; it works once either way,
    /// since setting the password changes the security stamp the token is bound to (OWASP ASVS 4.0.3 V2.5.1, V2.3.1).
    /// </summary>
    public TimeSpan ResetLinkLifetime { get; set; } = TimeSpan.FromHours(24);
}

internal sealed class LockoutSettings
{
    public int MaxFailedAttempts { get; set; } = 5;

    public TimeSpan Duration { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>Sign-in sessions (the service's own cookie), OWASP ASVS 4.0.3 V3.3.2: re-authentication after an idle period and periodically.</summary>
internal sealed class SessionSettings
{
    /// <summary>A session unused this long ends (sliding).</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>A session ends this long after the user authenticated, however active it is.</summary>
    public TimeSpan AbsoluteTimeout { get; set; } = TimeSpan.FromHours(12);
}

internal sealed class ThrottlingSettings
{
    /// <summary>Sign-in form posts per client IP per minute.</summary>
    public int LoginPerIpPerMinute { get; set; } = 30;

    /// <summary>Sign-in form posts per user name per minute (known or not, so throttling reveals nothing).</summary>
    public int LoginPerAccountPerMinute { get; set; } = 10;

    /// <summary>Token, introspection and revocation requests per client IP per second.</summary>
    public int TokenPerIpPerSecond { get; set; } = 200;

    /// <summary>Token, introspection and revocation requests per client_id per second.</summary>
    public int TokenPerClientPerSecond { get; set; } = 100;

    /// <summary>Forgot-password posts per client IP per hour.</summary>
    public int ForgotPasswordPerIpPerHour { get; set; } = 20;

    /// <summary>Forgot-password posts per address typed per hour (known or not, so throttling reveals nothing).</summary>
    public int ForgotPasswordPerAddressPerHour { get; set; } = 3;

    /// <summary>Reset-password posts per client IP per minute.</summary>
    public int ResetPasswordPerIpPerMinute { get; set; } = 10;

    /// <summary>Reset-password posts per user the link names per minute.</summary>
    public int ResetPasswordPerUserPerMinute { get; set; } = 5;

    /// <summary>Second-factor (authenticator or recovery code) posts per client IP per minute.</summary>
    public int TwoFactorPerIpPerMinute { get; set; } = 30;

    /// <summary>Second-factor posts per user (the one who passed the password step) per minute.</summary>
    public int TwoFactorPerUserPerMinute { get; set; } = 5;

    /// <summary>Device user codes tried on the verification page per client IP per minute (RFC 8628 §5.1).</summary>
    public int DeviceCodePerIpPerMinute { get; set; } = 30;

    /// <summary>Device user codes tried on the verification page per signed-in user per minute (RFC 8628 §5.1).</summary>
    public int DeviceCodePerUserPerMinute { get; set; } = 10;
}

internal sealed class PerformanceSettings
{
    /// <summary>
    /// <c>RevocationList</c> (default): client-credentials access tokens get no token row; revocation goes to a
    /// revocation list checked at introspection. <c>Database</c>: OpenIddict's stock token row for every token.
    /// </summary>
    public string ClientCredentialsTokenStorage { get; set; } = "RevocationList";

    /// <summary>Remember a keyed digest of a client secret once PBKDF2 accepted it, so later requests skip PBKDF2.</summary>
    public bool CacheVerifiedClientSecrets { get; set; } = true;
}

internal sealed class AuthorizationSettings
{
    /// <summary>The policy files (entities, role templates, field security profiles, business units). Empty: the files shipped next to the executable.</summary>
    public string? PolicyDirectory { get; set; }

    /// <summary>How often each instance checks the model version (changes made on another instance).</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Largest admin API request body, in bytes.</summary>
    public int MaxRequestBodyBytes { get; set; } = 256 * 1024;

    /// <summary>The directory the policy files are read from.</summary>
    public string ResolvedPolicyDirectory => string.IsNullOrWhiteSpace(PolicyDirectory)
        ? Path.Combine(AppContext.BaseDirectory, "policies", "authorization")
        : Path.GetFullPath(PolicyDirectory, Environment.CurrentDirectory);
}

internal sealed class ApiScopeSettings
{
    public string Name { get; set; } = "";

    public string Audience { get; set; } = "";

    public string? DisplayName { get; set; }

    /// <summary>
    /// Only a client acting for itself (client credentials) may hold this scope: no user obtains it in any flow
    /// (authorization code, refresh, token exchange), e.g. <c>events:write</c>, whose sender is the client.
    /// </summary>
    public bool ClientCredentialsOnly { get; set; }
}

internal sealed class ClientSettings
{
    public string ClientId { get; set; } = "";

    public string? DisplayName { get; set; }

    /// <summary>Confidential clients have a secret or keys (<see cref="Jwks"/>); public clients (SPAs, native apps) have neither.</summary>
    public string? ClientSecret { get; set; }

    /// <summary>
    /// The client's public keys as a JSON Web Key Set (RFC 7517 §5), as JSON text: the client then authenticates at the token,
    /// introspection and revocation endpoints with <c>private_key_jwt</c> (RFC 7523 §2.2, OpenID Connect Core §9).
    /// Without a <see cref="ClientSecret"/> the client is key-only: a secret it presents is refused.
    /// </summary>
    public string? Jwks { get; set; }

    /// <summary>
    /// Instead of <see cref="Jwks"/> (exactly one of the two): an https URL where the client publishes its JWKS
    /// (RFC 7591 §2 <c>jwks_uri</c>). The service fetches and caches it (<see cref="IdentitySettings.ClientJwks"/>) and
    /// fetches it again when an assertion names a key it does not know, so the client rotates keys without a restart here.
    /// </summary>
    public string? JwksUri { get; set; }

    /// <summary>
    /// <c>authorization_code</c>, <c>client_credentials</c>, <c>refresh_token</c>, <c>urn:ietf:params:oauth:grant-type:token-exchange</c>,
    /// <c>urn:ietf:params:oauth:grant-type:device_code</c> (RFC 8628, off unless listed).
    /// </summary>
    public List<string> GrantTypes { get; set; } = [];

    public List<string> Scopes { get; set; } = [];

    public List<string> RedirectUris { get; set; } = [];

    public List<string> PostLogoutRedirectUris { get; set; } = [];

    /// <summary>First-party clients skip the consent page; third-party clients ask the user once.</summary>
    public bool FirstParty { get; set; } = true;

    public bool RequirePushedAuthorization { get; set; }

    /// <summary>
    /// The tenants whose data the client serves: its own tokens (client credentials) carry one <c>tenant</c> claim each,
    /// and the encryption service and event ingestion refuse any other tenant. Empty: no tenant at all (deny by default).
    /// Required for clients with a scope in <see cref="Clients.ClientRegistry.TenantBoundScopes"/>.
    /// </summary>
    public List<string> Tenants { get; set; } = [];

    /// <summary>Every sign-in to this client needs two-step verification: a password-only session is stepped up first.</summary>
    public bool RequireMfa { get; set; }

    /// <summary>
    /// RFC 9449 §5.2 <c>dpop_bound_access_tokens</c>: the client must send a DPoP proof with every token request; a request
    /// without one is refused with <c>invalid_dpop_proof</c>, so this client never holds a plain bearer token.
    /// </summary>
    public bool RequireDpop { get; set; }

    /// <summary>
    /// OpenID Connect Back-Channel Logout 1.0 §2.2 <c>backchannel_logout_uri</c>: where the service POSTs a logout token when
    /// a user of this client signs out, is disabled, or has their sessions revoked. https only (loopback http under
    /// <c>Identity:ClientJwks:AllowLoopbackHttp</c>), and reached through the same address guard as <c>jwks_uri</c>.
    /// </summary>
    public string? BackchannelLogoutUri { get; set; }

    /// <summary>§2.2 <c>backchannel_logout_session_required</c>: the client needs the <c>sid</c> claim in the logout token.</summary>
    public bool BackchannelLogoutSessionRequired { get; set; }
}

internal sealed class IdentitySettingsValidator(IHostEnvironment environment, IConfiguration configuration) : IValidateOptions<IdentitySettings>
{
    private static readonly string[] KnownGrants =
    [
        "authorization_code", "client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange",
        "urn:ietf:params:oauth:grant-type:device_code",
    ];

    public ValidateOptionsResult Validate(string? name, IdentitySettings settings)
    {
        var errors = new List<string>();
        if (!string.IsNullOrWhiteSpace(settings.Issuer)
            && (!Uri.TryCreate(settings.Issuer, UriKind.Absolute, out var issuer) || issuer.Query.Length > 0 || issuer.Fragment.Length > 0))
        {
            // OpenID Connect Discovery §3: the issuer is an https URL without query or fragment.
            errors.Add($"Identity:Issuer '{settings.Issuer}' is not an absolute URL without query or fragment. Set it to the public base address, e.g. https://login.example.com/.");
        }
        else if (!string.IsNullOrWhiteSpace(settings.Issuer) && !settings.AllowHttp && !settings.Issuer.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            // OpenID Connect Discovery §3 and RFC 8414 §2: the issuer uses the https scheme.
            errors.Add($"Identity:Issuer '{settings.Issuer}' must use https. Use the public https address, or set Identity:AllowHttp to true for a loopback test setup.");
        }

        if (environment.IsProduction())
        {
            ValidatePublicOrigin(settings, errors);
        }

        if (settings.DemoMode && environment.IsProduction())
        {
            errors.Add("Identity:DemoMode is true but the environment is Production. Demo users have published passwords: set Identity:DemoMode to false.");
        }

        var keys = settings.SigningKeys;
        if (keys.RotationInterval <= keys.PublishLead)
        {
            errors.Add("Identity:SigningKeys:RotationInterval must be longer than Identity:SigningKeys:PublishLead.");
        }

        if (keys.RefreshInterval <= TimeSpan.Zero || keys.RefreshInterval >= keys.PublishLead)
        {
            errors.Add("Identity:SigningKeys:RefreshInterval must be positive and shorter than Identity:SigningKeys:PublishLead, so every instance publishes a new key before any signs with it.");
        }

        if (keys.AccessTokenAlgorithm is not ("ES256" or "RS256"))
        {
            errors.Add($"Identity:SigningKeys:AccessTokenAlgorithm '{keys.AccessTokenAlgorithm}' is not supported. Use ES256 or RS256.");
        }

        if (settings.Performance.ClientCredentialsTokenStorage is not ("RevocationList" or "Database"))
        {
            errors.Add($"Identity:Performance:ClientCredentialsTokenStorage '{settings.Performance.ClientCredentialsTokenStorage}' is not supported. Use RevocationList or Database.");
        }

        if (settings.Passwords.MinimumLength < 8)
        {
            // NIST SP 800-63B §5.1.1.2: at least 8 characters.
            errors.Add("Identity:Passwords:MinimumLength must be at least 8.");
        }

        if (settings.Passwords.ResetLinkLifetime <= TimeSpan.Zero || settings.Passwords.ResetLinkLifetime > TimeSpan.FromDays(7))
        {
            // OWASP ASVS 4.0.3 V2.3.1: an activation or recovery secret expires after a short period.
            errors.Add($"Identity:Passwords:ResetLinkLifetime '{settings.Passwords.ResetLinkLifetime}' must be positive and at most 7 days, e.g. 24:00:00 or 1.00:00:00.");
        }

        if (settings.Lockout.MaxFailedAttempts < 1 || settings.Lockout.Duration <= TimeSpan.Zero)
        {
            errors.Add("Identity:Lockout:MaxFailedAttempts must be at least 1 and Identity:Lockout:Duration positive.");
        }

        var throttling = settings.Throttling;
        if (throttling.LoginPerIpPerMinute < 1 || throttling.LoginPerAccountPerMinute < 1 || throttling.TokenPerIpPerSecond < 1 || throttling.TokenPerClientPerSecond < 1
            || throttling.ForgotPasswordPerIpPerHour < 1 || throttling.ForgotPasswordPerAddressPerHour < 1 || throttling.ResetPasswordPerIpPerMinute < 1
            || throttling.ResetPasswordPerUserPerMinute < 1 || throttling.TwoFactorPerIpPerMinute < 1 || throttling.TwoFactorPerUserPerMinute < 1
            || throttling.DeviceCodePerIpPerMinute < 1 || throttling.DeviceCodePerUserPerMinute < 1)
        {
            errors.Add("Identity:Throttling limits must all be at least 1.");
        }

        if (settings.Sessions.IdleTimeout <= TimeSpan.Zero || settings.Sessions.AbsoluteTimeout < settings.Sessions.IdleTimeout)
        {
            errors.Add("Identity:Sessions:IdleTimeout must be positive and Identity:Sessions:AbsoluteTimeout at least as long, e.g. 00:30:00 and 12:00:00.");
        }

        if (settings.Authorization.RefreshInterval <= TimeSpan.Zero)
        {
            errors.Add("Identity:Authorization:RefreshInterval must be positive, e.g. 00:00:01.");
        }

        if (settings.Authorization.MaxRequestBodyBytes < 1024)
        {
            errors.Add("Identity:Authorization:MaxRequestBodyBytes must be at least 1024.");
        }

        Clients.ClientJwksUri.ValidateSettings(settings.ClientJwks, environment, errors);
        Protocol.StepUp.ValidateSettings(settings.Mfa, errors);
        Protocol.BackchannelLogout.ValidateSettings(settings.BackchannelLogout, errors);
        if (settings.RiskAccess.Enabled)
        {
            Authorization.Risk.RiskAccess.Read(settings.RiskAccess.Policy, errors);
        }

        Protocol.Dpop.DpopProofs.ValidateSettings(settings.Dpop, errors);
        Passkeys.PasskeySettings.Validate(settings.Passkeys, errors);

        foreach (var (scope, index) in settings.ApiScopes.Select((s, i) => (s, i)))
        {
            if (string.IsNullOrWhiteSpace(scope.Name) || string.IsNullOrWhiteSpace(scope.Audience))
            {
                errors.Add($"Identity:ApiScopes:{index} needs both Name and Audience.");
            }
        }

        foreach (var (client, index) in settings.Clients.Select((c, i) => (c, i)))
        {
            ValidateClient(client, $"Identity:Clients:{index}", settings.ClientJwks, errors);
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>
    /// Production needs a fixed public origin and a Host allow-list: without them the service would trust the Host header,
    /// which the sender of a request chooses (reset links, issuer; OWASP ASVS 4.0.3 V14.1.x hardened configuration).
    /// </summary>
    private void ValidatePublicOrigin(IdentitySettings settings, List<string> errors)
    {
        if (string.IsNullOrWhiteSpace(settings.Issuer))
        {
            errors.Add("Identity:Issuer is required in Production: set it to the public https address of the service, e.g. https://login.example.com/. Reset links and the OpenID Connect issuer are built from it, never from a request's Host header.");
        }

        // The host-filtering middleware reads the top-level AllowedHosts (';'-separated); '*' or nothing lets any Host through.
        var allowed = (configuration["AllowedHosts"] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (allowed.Length == 0 || allowed.Contains("*", StringComparer.Ordinal))
        {
            var suggestion = Uri.TryCreate(settings.Issuer, UriKind.Absolute, out var issuer) ? issuer.Host : "login.example.com";
            errors.Add($"AllowedHosts is {(allowed.Length == 0 ? "not set" : "'*'")} in Production, so requests with any Host header are served. Set AllowedHosts to the issuer's host name, e.g. {suggestion}.");
        }
    }

    private static void ValidateClient(ClientSettings client, string path, ClientJwksSettings jwksSettings, List<string> errors)
    {
        if (string.IsNullOrWhiteSpace(client.ClientId))
        {
            errors.Add($"{path}:ClientId is required.");
            return;
        }

        foreach (var grant in client.GrantTypes.Where(grant => !KnownGrants.Contains(grant)))
        {
            // Implicit and password grants are deliberately unavailable (RFC 9700 §2.1.2, §2.4).
            errors.Add($"{path}:GrantTypes '{grant}' is not supported for client '{client.ClientId}'. Use: {string.Join(", ", KnownGrants)}.");
        }

        if (client.ClientSecret is null && !Clients.ClientKeys.HasKeys(client) && !Clients.ClientJwksUri.HasUri(client) && client.GrantTypes.Contains("client_credentials"))
        {
            errors.Add($"{path}: client '{client.ClientId}' uses client_credentials and so needs a ClientSecret, Jwks or JwksUri (public clients cannot authenticate).");
        }

        Clients.ClientKeys.Validate(client, path, errors);
        Clients.ClientJwksUri.Validate(client, path, jwksSettings, errors);
        Protocol.BackchannelLogout.Validate(client, path, jwksSettings, errors);

        if (client.GrantTypes.Contains("authorization_code") && client.RedirectUris.Count == 0)
        {
            errors.Add($"{path}:RedirectUris is required for client '{client.ClientId}', which uses authorization_code.");
        }

        Clients.ClientRegistry.ValidateTenants(client, path, errors);

        foreach (var uri in client.RedirectUris.Concat(client.PostLogoutRedirectUris))
        {
            // RFC 9700 §4.1.3: exact matching, so a redirect URI is absolute and has no fragment (RFC 6749 §3.1.2).
            if (!Uri.TryCreate(uri, UriKind.Absolute, out var parsed) || parsed.Fragment.Length > 0)
            {
                errors.Add($"{path}: redirect URI '{uri}' of client '{client.ClientId}' must be an absolute URI without a fragment.");
            }
        }
    }
}
