using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;

namespace CrmSecurity.CrmAuthorization;

/// <summary>The decision API could not give an answer; callers deny (the message names what failed, never a token).</summary>
public sealed class CrmDecisionException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CrmDecisionException(string message, HttpStatusCode? status = null, Exception? inner = null)
        : base(message, inner) => Status = status;

    /// <summary>Creates the exception.</summary>
    public CrmDecisionException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public CrmDecisionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public CrmDecisionException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The decision API's status code, when it answered.</summary>
    public HttpStatusCode? Status { get; }
}

/// <summary>
/// Fetches users' <see cref="CrmAccessProfile"/>s from the decision API with the app's own client-credentials token,
/// and caches each per user at its <c>perm_ver</c>: a token carrying a newer <c>perm_ver</c> fetches at once; otherwise
/// a cached profile is revalidated every <see cref="CrmAuthorizationOptions.ProfileRevalidation"/> with its ETag.
/// Thread-safe; registered as a singleton by <see cref="CrmAuthorizationExtensions.AddCrmAuthorization"/>.
/// </summary>
public sealed class CrmDecisions : IDisposable
{
    internal const string HttpClientName = "CrmSecurity.CrmAuthorization";
    private static readonly TimeSpan TokenSafety = TimeSpan.FromSeconds(30);

    private readonly IHttpClientFactory _clients;
    private readonly IOptionsMonitor<JwtBearerOptions> _bearer;
    private readonly CrmAuthorizationOptions _options;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, CachedProfile> _profiles = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, CachedCheck> _checks = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _tokenLock = new(1, 1);
    private AppToken? _token;
    private readonly DpopSigner? _dpop;
    private string? _dpopNonce;

    internal CrmDecisions(IHttpClientFactory clients, IOptionsMonitor<JwtBearerOptions> bearer, IOptions<CrmAuthorizationOptions> options, TimeProvider time)
    {
        _clients = clients;
        _bearer = bearer;
        _options = options.Value;
        _time = time;
        _dpop = _options.UseDpop ? new DpopSigner(time) : null;
    }

    /// <summary>Profile fetches that went to the service (200 or 304), for metrics.</summary>
    public long Fetches => Interlocked.Read(ref _fetches);

    private long _fetches;

    /// <summary>
    /// The profile of the signed-in user of <paramref name="user"/> (its <c>sub</c>, at least at its <c>perm_ver</c>).
    /// A client's own token (client credentials: <c>sub</c> = <c>client_id</c>, RFC 9068 §2.2) is no user and is refused.
    /// </summary>
    public Task<CrmAccessProfile> ProfileAsync(ClaimsPrincipal user, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        var subject = user.FindFirst("sub")?.Value;
        if (string.IsNullOrEmpty(subject) || subject == user.FindFirst("client_id")?.Value)
        {
            throw new CrmDecisionException("The token names no user (no sub, or a client acting for itself); CRM permissions belong to users.");
        }

        var permVer = long.TryParse(user.FindFirst("perm_ver")?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? version : (long?)null;
        return ProfileAsync(subject, permVer, cancellationToken);
    }

    /// <summary>The profile of user <paramref name="userId"/>, at least at <paramref name="permVer"/> when given.</summary>
    public async Task<CrmAccessProfile> ProfileAsync(string userId, long? permVer, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(userId);
        _profiles.TryGetValue(userId, out var cached);
        if (cached is not null && (permVer is null || cached.Profile.PermVer >= permVer) && _time.GetElapsedTime(cached.CheckedAt) < _options.ProfileRevalidation)
        {
            return cached.Profile;
        }

        var path = $"users/{Uri.EscapeDataString(userId)}/profile" + (permVer is { } v ? $"?perm_ver={v.ToString(CultureInfo.InvariantCulture)}" : "");
        using var response = await SendAsync(HttpMethod.Get, path, null, cached?.Profile.PermVer, cancellationToken);
        Interlocked.Increment(ref _fetches);
        if (response.StatusCode == HttpStatusCode.NotModified && cached is not null)
        {
            Remember(userId, cached.Profile);
            return cached.Profile;
        }

        if (!response.IsSuccessStatusCode)
        {
            _profiles.TryRemove(userId, out _);
            throw new CrmDecisionException($"The decision API answered {(int)response.StatusCode} for the profile of user '{userId}': {await DetailAsync(response, cancellationToken)}", response.StatusCode);
        }

        var body = await response.Content.ReadFromJsonAsync<ProfileResponse>(cancellationToken)
            ?? throw new CrmDecisionException($"The decision API sent an empty profile for user '{userId}'.");
        var profile = new CrmAccessProfile(body);
        Remember(userId, profile);
        return profile;
    }

    /// <summary>
    /// The service's check (<c>POST /authz/v1/check</c>) for the signed-in user of <paramref name="user"/>: unlike the
    /// profile, its answer carries what risk does to this one decision, a refusal (basis <c>risk</c>) or an obligation such
    /// as <c>{"type":"step_up","value":"mfa"}</c> the app must meet before acting on the allow. Without a record the answer
    /// (whether the user may do the action at all) is cached per user, <c>perm_ver</c>, entity and action for
    /// <see cref="CrmAuthorizationOptions.ProfileRevalidation"/>, so risk that begins or ends reaches the app within it.
    /// </summary>
    public async Task<CheckResponse> CheckAsync(ClaimsPrincipal user, string entity, CrmAction action, CrmRecord? record = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentException.ThrowIfNullOrEmpty(entity);
        var subject = user.FindFirst("sub")?.Value;
        if (string.IsNullOrEmpty(subject) || subject == user.FindFirst("client_id")?.Value)
        {
            throw new CrmDecisionException("The token names no user (no sub, or a client acting for itself); CRM permissions belong to users.");
        }

        var permVer = long.TryParse(user.FindFirst("perm_ver")?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? version : (long?)null;
        var key = record is null ? string.Create(CultureInfo.InvariantCulture, $"{subject}\n{permVer}\n{entity}\n{action.Name()}") : null;
        if (key is not null && _checks.TryGetValue(key, out var cached) && _time.GetElapsedTime(cached.CheckedAt) < _options.ProfileRevalidation)
        {
            return cached.Response;
        }

        var request = new CheckRequest { UserId = subject, Entity = entity, Action = action.Name(), Record = record, PermVer = permVer };
        using var response = await SendAsync(HttpMethod.Post, "check", request, etag: null, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new CrmDecisionException($"The decision API answered {(int)response.StatusCode} to the check of {entity}:{action.Name()} for user '{subject}': {await DetailAsync(response, cancellationToken)}", response.StatusCode);
        }

        var answer = await response.Content.ReadFromJsonAsync<CheckResponse>(cancellationToken)
            ?? throw new CrmDecisionException($"The decision API sent an empty check for user '{subject}'.");
        if (key is not null)
        {
            if (_checks.Count >= _options.MaxCachedProfiles)
            {
                _checks.Clear();
            }

            _checks[key] = new CachedCheck(answer, _time.GetTimestamp());
        }

        return answer;
    }

    private void Remember(string userId, CrmAccessProfile profile)
    {
        if (_profiles.Count >= _options.MaxCachedProfiles)
        {
            _profiles.Clear(); // bounded memory; profiles are fetched again as users come back
        }

        _profiles[userId] = new CachedProfile(profile, _time.GetTimestamp());
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, object? body, long? etag, CancellationToken cancellationToken)
    {
        var http = _clients.CreateClient(HttpClientName);
        for (var attempt = 0; ; attempt++)
        {
            using var request = new HttpRequestMessage(method, new Uri(DecisionApi(), path));
            if (body is not null)
            {
                request.Content = JsonContent.Create(body, body.GetType());
            }

            var token = await TokenAsync(cancellationToken);
            if (token.Dpop && _dpop is not null)
            {
                // RFC 9449 §7.1: the DPoP scheme, and a proof for this request with the token's hash (ath).
                request.Headers.Authorization = new AuthenticationHeaderValue("DPoP", token.Value);
                request.Headers.Add("DPoP", _dpop.Proof(method, request.RequestUri!, token.Value, nonce: null));
            }
            else
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token.Value);
            }

            if (etag is { } tag)
            {
                request.Headers.IfNoneMatch.Add(new EntityTagHeaderValue($"\"{tag.ToString(CultureInfo.InvariantCulture)}\""));
            }

            var response = await http.SendAsync(request, cancellationToken);
            if (response.StatusCode != HttpStatusCode.Unauthorized || attempt > 0)
            {
                return response;
            }

            // The app's token expired early or was revoked: get a new one once.
            response.Dispose();
            Volatile.Write(ref _token, null);
        }
    }

    private Uri DecisionApi() => _options.DecisionApi ?? new Uri(_options.Issuer!, "authz/v1/");

    /// <summary>The app's own access token for the decision API (client credentials, RFC 6749 §4.4), reused until shortly before it expires.</summary>
    private async ValueTask<AppToken> TokenAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _token) is { } token && token.Until > _time.GetUtcNow())
        {
            return token;
        }

        await _tokenLock.WaitAsync(cancellationToken);
        try
        {
            if (Volatile.Read(ref _token) is { } again && again.Until > _time.GetUtcNow())
            {
                return again;
            }

            var bearer = _bearer.Get(CrmAuthorizationDefaults.Scheme);
            var configuration = await bearer.ConfigurationManager!.GetConfigurationAsync(cancellationToken);
            var endpoint = configuration.TokenEndpoint ?? throw new CrmDecisionException("The issuer's discovery document names no token_endpoint.");
            var response = await RequestTokenAsync(new Uri(endpoint), cancellationToken);
            if (_dpop is not null && response.StatusCode == HttpStatusCode.BadRequest && response.Headers.Contains("DPoP-Nonce"))
            {
                // RFC 9449 §8: the server wants its nonce in the proof (use_dpop_nonce); try once more with it.
                response.Dispose();
                response = await RequestTokenAsync(new Uri(endpoint), cancellationToken);
            }

            using var answered = response;
            if (!response.IsSuccessStatusCode)
            {
                throw new CrmDecisionException($"The token endpoint refused client '{_options.ClientId}' scope '{_options.DecisionScope}' with {(int)response.StatusCode}: {await DetailAsync(response, cancellationToken)}", response.StatusCode);
            }

            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
            var value = json.RootElement.GetProperty("access_token").GetString()!;
            var lifetime = json.RootElement.TryGetProperty("expires_in", out var expires) ? TimeSpan.FromSeconds(expires.GetInt32()) : TimeSpan.FromMinutes(5);
            // RFC 9449 §5: token_type DPoP says the token is bound and must be sent with proofs.
            var dpop = json.RootElement.TryGetProperty("token_type", out var type) && string.Equals(type.GetString(), "DPoP", StringComparison.OrdinalIgnoreCase);
            var fresh = new AppToken(value, _time.GetUtcNow() + (lifetime > TokenSafety * 2 ? lifetime - TokenSafety : lifetime / 2), dpop);
            Volatile.Write(ref _token, fresh);
            return fresh;
        }
        finally
        {
            _tokenLock.Release();
        }
    }

    /// <summary>The error text of a refusal (problem details' detail, or OAuth's error), without echoing any token.</summary>
    private static async Task<string> DetailAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
            foreach (var name in new[] { "detail", "error_description", "error", "title" })
            {
                if (json.RootElement.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String)
                {
                    return value.GetString()!;
                }
            }
        }
        catch (JsonException)
        {
            // Not JSON: the status code says enough.
        }

        return response.ReasonPhrase ?? "no detail";
    }

    /// <summary>Releases the token lock.</summary>
    public void Dispose()
    {
        _tokenLock.Dispose();
        _dpop?.Dispose();
    }

    /// <summary>One client-credentials request; with DPoP, a proof (with the last nonce the server gave) and the nonce it answers kept.</summary>
    private async Task<HttpResponseMessage> RequestTokenAsync(Uri endpoint, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, endpoint)
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = _options.DecisionScope }),
        };

        // RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and base64-encoded.
        var credentials = $"{Uri.EscapeDataString(_options.ClientId!)}:{Uri.EscapeDataString(_options.ClientSecret!)}";
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials)));
        if (_dpop is not null)
        {
            request.Headers.Add("DPoP", _dpop.Proof(HttpMethod.Post, endpoint, accessToken: null, Volatile.Read(ref _dpopNonce)));
        }

        var response = await _clients.CreateClient(HttpClientName).SendAsync(request, cancellationToken);
        if (_dpop is not null && response.Headers.TryGetValues("DPoP-Nonce", out var nonces) && nonces.FirstOrDefault() is { Length: > 0 } nonce)
        {
            Volatile.Write(ref _dpopNonce, nonce);
        }

        return response;
    }

    private sealed record AppToken(string Value, DateTimeOffset Until, bool Dpop);

    private sealed record CachedProfile(CrmAccessProfile Profile, long CheckedAt);

    private sealed record CachedCheck(CheckResponse Response, long CheckedAt);
}
