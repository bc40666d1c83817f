using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Threading.Channels;
using CrmSecurity.Identity.Clients;
using CrmSecurity.Identity.Keys;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// OpenID Connect Back-Channel Logout 1.0: when a user signs out here, or an administrator disables them or revokes their
/// sessions, every client registered with a <c>backchannel_logout_uri</c> that holds tokens of the user gets a logout token
/// (§2.4) POSTed as the <c>logout_token</c> form field (§2.5). Which clients: those with any token of the subject in the
/// token store, a superset of the clients of this one session (a client whose session is already gone ignores the token).
/// Delivery is <see cref="BackchannelLogoutSender"/>'s: after the sign-out's response, retried, and only to addresses the
/// <see cref="JwksAddressGuard"/> allows.
/// </summary>
internal sealed class BackchannelLogout(
    IOpenIddictApplicationManager applications, IOpenIddictTokenManager tokens, BackchannelLogoutSender sender)
{
    /// <summary>The application property holding the client's back-channel logout URI.</summary>
    public const string UriProperty = "crm_security_backchannel_logout_uri";

    /// <summary>The application property holding <c>backchannel_logout_session_required</c>.</summary>
    public const string SessionRequiredProperty = "crm_security_backchannel_logout_session_required";

    /// <summary>Checks <see cref="ClientSettings.BackchannelLogoutUri"/> with the rules of a <c>jwks_uri</c>.</summary>
    public static void Validate(ClientSettings client, string path, ClientJwksSettings jwksSettings, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(jwksSettings);
        ArgumentNullException.ThrowIfNull(errors);
        if (string.IsNullOrWhiteSpace(client.BackchannelLogoutUri))
        {
            if (client.BackchannelLogoutSessionRequired)
            {
                errors.Add($"{path}:BackchannelLogoutSessionRequired is set for client '{client.ClientId}' without a BackchannelLogoutUri. Set the URI, or remove the flag.");
            }

            return;
        }

        // Back-Channel Logout 1.0 §2.2: an absolute URL without a fragment; like jwks_uri, https (a request this service
        // makes to an address a client chose), loopback http only where Identity:ClientJwks:AllowLoopbackHttp allows it.
        if (ClientJwksUri.RefusalOf(client.BackchannelLogoutUri.Trim(), jwksSettings.AllowLoopbackHttp) is { } refusal)
        {
            errors.Add($"{path}:BackchannelLogoutUri of client '{client.ClientId}' {refusal.Replace("client-jwks.json", "backchannel-logout", StringComparison.Ordinal)}");
        }
    }

    /// <summary>Checks the <c>Identity:BackchannelLogout</c> settings.</summary>
    public static void ValidateSettings(BackchannelLogoutSettings settings, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(errors);
        if (settings.MaxAttempts is < 1 or > 20)
        {
            errors.Add("Identity:BackchannelLogout:MaxAttempts must be between 1 and 20, e.g. 5.");
        }

        if (settings.FirstRetryDelay <= TimeSpan.Zero)
        {
            errors.Add("Identity:BackchannelLogout:FirstRetryDelay must be positive, e.g. 00:00:02.");
        }

        if (settings.Timeout <= TimeSpan.Zero)
        {
            errors.Add("Identity:BackchannelLogout:Timeout must be positive, e.g. 00:00:05.");
        }
    }

    /// <summary>
    /// Queues logout tokens for <paramref name="subject"/> to every client with a back-channel logout URI that holds tokens
    /// of the subject. <paramref name="sessionId"/> is the session that ended, or null when all of them did (disable, revoke).
    /// </summary>
    public async Task NotifyAsync(string subject, string? sessionId, CancellationToken cancellationToken)
    {
        await foreach (var application in applications.ListAsync(count: null, offset: null, cancellationToken))
        {
            var properties = await applications.GetPropertiesAsync(application, cancellationToken);
            if (!properties.TryGetValue(UriProperty, out var uri) || uri.ValueKind != JsonValueKind.String
                || await applications.GetClientIdAsync(application, cancellationToken) is not { } clientId
                || await applications.GetIdAsync(application, cancellationToken) is not { } applicationId)
            {
                continue;
            }

            var holdsTokens = false;
            await foreach (var _ in tokens.FindAsync(subject, applicationId, status: null, type: null, cancellationToken))
            {
                holdsTokens = true;
                break;
            }

            if (holdsTokens)
            {
                sender.Enqueue(new LogoutNotice(clientId, uri.GetString()!, subject, sessionId));
            }
        }
    }
}

/// <summary>One logout token to deliver.</summary>
internal sealed record LogoutNotice(string ClientId, string Uri, string Subject, string? SessionId);

/// <summary>
/// Delivers logout tokens off the request path. Each notice is tried up to <c>Identity:BackchannelLogout:MaxAttempts</c>
/// times, waiting <c>FirstRetryDelay</c> and then twice as long before each further try, on a network error, a timeout or a
/// 5xx answer (a 4xx says the client refused the token: trying again changes nothing, §2.8). Notices are delivered
/// concurrently, so one slow client does not hold back the others.
/// </summary>
internal sealed partial class BackchannelLogoutSender : BackgroundService
{
    /// <summary>Back-Channel Logout 1.0 §2.4: the event that makes a JWT a logout token.</summary>
    public const string LogoutEvent = "http://schemas.openid.net/event/backchannel-logout";

    /// <summary>§2.4 / RFC 8725 §3.11: the explicit type of a logout token.</summary>
    public const string TokenType = "logout+jwt";

    private readonly Channel<LogoutNotice> _queue = Channel.CreateBounded<LogoutNotice>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropOldest });
    private readonly BackchannelLogoutSettings _settings;
    private readonly SigningKeyRing _ring;
    private readonly PublicOrigin _origin;
    private readonly TimeProvider _time;
    private readonly ILogger<BackchannelLogoutSender> _logger;
    private readonly HttpClient _http;
    private readonly JsonWebTokenHandler _handler = new() { SetDefaultTimesOnTokenCreation = false };
    private long _delivered;

    public BackchannelLogoutSender(
        IOptions<IdentitySettings> settings, SigningKeyRing ring, PublicOrigin origin, TimeProvider time, ILogger<BackchannelLogoutSender> logger)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _settings = settings.Value.BackchannelLogout;
        _ring = ring;
        _origin = origin;
        _time = time;
        _logger = logger;
        var jwks = settings.Value.ClientJwks;
        // The same SSRF guard as jwks_uri (OWASP SSRF Prevention Cheat Sheet): both are URLs a client registered.
        var guard = new JwksAddressGuard(jwks.AllowLoopbackHttp, [.. jwks.AllowedNetworks.Select(n => IPNetwork.Parse(n))]);
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false, // a redirect would lead past the guard to an address the client did not register
            UseProxy = false,
            UseCookies = false,
            ConnectTimeout = _settings.Timeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            ConnectCallback = (context, cancellationToken) => guard.ConnectAsync(context.DnsEndPoint, cancellationToken),
        };
        _http = new HttpClient(handler) { Timeout = _settings.Timeout, MaxResponseContentBufferSize = 64 * 1024 };
    }

    /// <summary>How many logout tokens a client accepted (metrics, tests).</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Queues a notice; never waits (the queue drops its oldest entry when 10,000 are waiting).</summary>
    public void Enqueue(LogoutNotice notice) => _queue.Writer.TryWrite(notice);

    /// <summary>The logout token of <paramref name="notice"/> (§2.4), signed like an ID token (RS256, the ring's current key).</summary>
    public string CreateToken(LogoutNotice notice)
    {
        ArgumentNullException.ThrowIfNull(notice);
        var now = _time.GetUtcNow().UtcDateTime;
        var claims = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["jti"] = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)),
            ["sub"] = notice.Subject,
            // §2.4: events holds the logout event with an empty object; no nonce (§2.4: a nonce is prohibited, so a logout
            // token can never pass for an ID token).
            ["events"] = new Dictionary<string, object>(StringComparer.Ordinal) { [LogoutEvent] = new Dictionary<string, object>() },
        };
        if (notice.SessionId is not null)
        {
            claims["sid"] = notice.SessionId;
        }

        return _handler.CreateToken(new SecurityTokenDescriptor
        {
            TokenType = TokenType,
            Issuer = _origin.Value.AbsoluteUri,
            Audience = notice.ClientId,
            IssuedAt = now,
            // §2.4 exp: short, the token is used at once.
            Expires = now.AddMinutes(2),
            Claims = claims,
            SigningCredentials = _ring.Current.Rs256,
        });
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var running = new List<Task>();
        try
        {
            await foreach (var notice in _queue.Reader.ReadAllAsync(stoppingToken))
            {
                running.RemoveAll(task => task.IsCompleted);
                running.Add(DeliverAsync(notice, stoppingToken));
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Host stopping: notices still waiting are dropped, as a crash would drop them.
        }

        await Task.WhenAll(running).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task DeliverAsync(LogoutNotice notice, CancellationToken stoppingToken)
    {
        var delay = _settings.FirstRetryDelay;
        for (var attempt = 1; attempt <= _settings.MaxAttempts; attempt++)
        {
            string? failure;
            try
            {
                using var content = new FormUrlEncodedContent([new KeyValuePair<string, string>("logout_token", CreateToken(notice))]);
                using var response = await _http.PostAsync(new Uri(notice.Uri), content, stoppingToken);
                if (response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref _delivered);
                    LogDelivered(_logger, notice.ClientId, attempt);
                    return;
                }

                failure = $"HTTP {(int)response.StatusCode}";
                if ((int)response.StatusCode is >= 400 and < 500)
                {
                    LogGivenUp(_logger, notice.ClientId, attempt, failure);
                    return;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception error) when (error is HttpRequestException or TaskCanceledException or AddressRefusedException or IOException)
            {
                failure = error is TaskCanceledException ? "timed out" : error.Message;
            }

            if (attempt == _settings.MaxAttempts)
            {
                LogGivenUp(_logger, notice.ClientId, attempt, failure);
                return;
            }

            LogRetrying(_logger, notice.ClientId, attempt, failure, delay);
            try
            {
                await Task.Delay(delay, _time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            delay *= 2;
        }
    }

    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }

    // The logout token itself is never logged: it is a bearer credential for ending the user's sessions at the client.
    [LoggerMessage(EventId = 4700, Level = LogLevel.Information, Message = "Delivered a back-channel logout token to client {ClientId} (attempt {Attempt})")]
    private static partial void LogDelivered(ILogger logger, string clientId, int attempt);

    [LoggerMessage(EventId = 4701, Level = LogLevel.Warning, Message = "Back-channel logout to client {ClientId} failed (attempt {Attempt}: {Failure}); trying again in {Delay}")]
    private static partial void LogRetrying(ILogger logger, string clientId, int attempt, string failure, TimeSpan delay);

    [LoggerMessage(EventId = 4702, Level = LogLevel.Error, Message = "Back-channel logout to client {ClientId} given up after attempt {Attempt}: {Failure}")]
    private static partial void LogGivenUp(ILogger logger, string clientId, int attempt, string failure);
}

/// <summary>
/// Discovery (OpenID Connect Discovery 1.0 §3; Back-Channel Logout 1.0 §2.1): <c>backchannel_logout_supported</c>,
/// <c>backchannel_logout_session_supported</c> (logout tokens carry <c>sid</c>, ID tokens too), and
/// <c>acr_values_supported</c> (<see cref="StepUp"/>).
/// </summary>
internal sealed class AdvertiseLogoutAndAcr : IOpenIddictServerHandler<HandleConfigurationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<HandleConfigurationRequestContext>()
            .UseSingletonHandler<AdvertiseLogoutAndAcr>()
            .SetOrder(int.MaxValue - 100_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(HandleConfigurationRequestContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Metadata["backchannel_logout_supported"] = true;
        context.Metadata["backchannel_logout_session_supported"] = true;
        context.Metadata[OpenIddictConstants.Metadata.AcrValuesSupported] = JsonSerializer.SerializeToElement(StepUp.Supported);
        return ValueTask.CompletedTask;
    }
}
