using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;

namespace CrmSecurity.Samples.Crm.Events;

/// <summary>One access event in the service's contract (design.md): snake_case JSON, one per line.</summary>
public sealed record AccessEvent
{
    [JsonPropertyName("event_id")] public string EventId { get; init; } = Guid.NewGuid().ToString("N");
    [JsonPropertyName("timestamp")] public DateTimeOffset Timestamp { get; init; } = DateTimeOffset.UtcNow;
    [JsonPropertyName("user_id")] public required string UserId { get; init; }
    [JsonPropertyName("user_name")] public string? UserName { get; init; }
    [JsonPropertyName("action")] public required string Action { get; init; }
    [JsonPropertyName("entity")] public string? Entity { get; init; }
    [JsonPropertyName("record_id")] public string? RecordId { get; init; }
    [JsonPropertyName("record_owner")] public string? RecordOwner { get; init; }
    [JsonPropertyName("record_business_unit")] public string? RecordBusinessUnit { get; init; }
    [JsonPropertyName("record_count")] public long? RecordCount { get; init; }
    [JsonPropertyName("fields")] public IReadOnlyList<string>? Fields { get; init; }
    [JsonPropertyName("source_ip")] public string? SourceIp { get; init; }
    [JsonPropertyName("client_id")] public string? ClientId { get; init; }
    [JsonPropertyName("tenant")] public string? Tenant { get; init; }
    [JsonPropertyName("details")] public string? Details { get; init; }
    [JsonPropertyName("outcome")] public string Outcome { get; init; } = "success";
}

/// <summary>Settings of the event feed to the service.</summary>
public sealed class EventFeedOptions
{
    /// <summary>The service's ingestion endpoint; empty switches the feed off (events are then only logged as counts).</summary>
    public string? Endpoint { get; set; }

    /// <summary>Token endpoint for the client-credentials grant.</summary>
    public string? TokenEndpoint { get; set; }

    public string? ClientId { get; set; }

    public string? ClientSecret { get; set; }

    /// <summary>The tenant of the sample's data: every event names it (the service accepts only tenants the client serves).</summary>
    public string? Tenant { get; set; }

    public string Scope { get; set; } = "events:write";

    /// <summary>Events held in memory while the service is unreachable; beyond it the oldest are dropped and counted.</summary>
    public int Capacity { get; set; } = 100_000;
}

/// <summary>
/// Queues access events and posts them in JSON Lines batches to the service with a client-credentials token.
/// Writers never wait on the network; a failed batch is retried with back-off and never split or reordered.
/// </summary>
public sealed class AccessEventSender : BackgroundService
{
    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };
    private readonly Channel<AccessEvent> _queue;
    private readonly EventFeedOptions _options;
    private readonly HttpClient _http;
    private readonly ILogger<AccessEventSender> _logger;
    private string? _token;
    private DateTimeOffset _tokenExpires;
    private long _dropped;

    public AccessEventSender(EventFeedOptions options, HttpClient http, ILogger<AccessEventSender> logger)
    {
        _options = options;
        _http = http;
        _logger = logger;
        _queue = Channel.CreateBounded<AccessEvent>(new BoundedChannelOptions(options.Capacity)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        }, _ => Interlocked.Increment(ref _dropped));
    }

    /// <summary>Events accepted so far (for the tests and the status line).</summary>
    public long Sent { get; private set; }

    /// <summary>Queues one event (stamped with this app's client id and tenant); never blocks.</summary>
    public void Write(AccessEvent accessEvent) => _queue.Writer.TryWrite(accessEvent with
    {
        ClientId = accessEvent.ClientId ?? _options.ClientId,
        Tenant = accessEvent.Tenant ?? _options.Tenant,
    });

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (string.IsNullOrEmpty(_options.Endpoint))
        {
            Log.FeedOff(_logger);
        }

        var batch = new List<AccessEvent>(500);
        var delay = TimeSpan.FromSeconds(1);
        while (await _queue.Reader.WaitToReadAsync(stoppingToken))
        {
            while (batch.Count < 500 && _queue.Reader.TryRead(out var next))
            {
                batch.Add(next);
            }

            if (string.IsNullOrEmpty(_options.Endpoint))
            {
                batch.Clear();
                continue;
            }

            try
            {
                await PostAsync(batch, stoppingToken);
                Sent += batch.Count;
                batch.Clear();
                delay = TimeSpan.FromSeconds(1);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                Log.PostFailed(_logger, batch.Count, ex.Message, delay);
                await Task.Delay(delay, stoppingToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
            }

            var dropped = Interlocked.Exchange(ref _dropped, 0);
            if (dropped > 0)
            {
                Log.Dropped(_logger, dropped);
            }
        }
    }

    private async Task PostAsync(List<AccessEvent> batch, CancellationToken cancellationToken)
    {
        var body = new StringBuilder();
        foreach (var accessEvent in batch)
        {
            body.Append(JsonSerializer.Serialize(accessEvent, Json)).Append('\n');
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, _options.Endpoint)
        {
            Content = new StringContent(body.ToString(), Encoding.UTF8, "application/x-ndjson"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await TokenAsync(cancellationToken));
        using var response = await _http.SendAsync(request, cancellationToken);
        if (response.StatusCode == System.Net.HttpStatusCode.Unauthorized)
        {
            _token = null;
        }

        var status = (int)response.StatusCode;
        if (status is 400 or 413)
        {
            // The batch itself is refused (no valid line, or too large): sending it again cannot help, and holding it
            // would stop every later event. Say so and drop it; the lines the service rejected are named in its answer.
            Log.BatchRefused(_logger, batch.Count, status);
            return;
        }

        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"the service answered {status}", null, response.StatusCode);
        }
    }

    private async Task<string> TokenAsync(CancellationToken cancellationToken)
    {
        if (_token is not null && DateTimeOffset.UtcNow < _tokenExpires)
        {
            return _token;
        }

        using var content = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["scope"] = _options.Scope,
        });
        using var request = new HttpRequestMessage(HttpMethod.Post, _options.TokenEndpoint) { Content = content };
        // RFC 6749 §2.3.1: client_secret_basic, names and secrets form-encoded before base64.
        var credentials = $"{Uri.EscapeDataString(_options.ClientId ?? "")}:{Uri.EscapeDataString(_options.ClientSecret ?? "")}";
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials)));
        using var response = await _http.SendAsync(request, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"the token endpoint answered {(int)response.StatusCode}", null, response.StatusCode);
        }

        using var document = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(cancellationToken));
        _token = document.RootElement.GetProperty("access_token").GetString();
        var lifetime = document.RootElement.TryGetProperty("expires_in", out var expires) ? expires.GetInt32() : 300;
        _tokenExpires = DateTimeOffset.UtcNow.AddSeconds(Math.Max(lifetime - 30, 10));
        return _token!;
    }
}
